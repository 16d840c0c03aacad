#include "agent/model.hpp"

#include <algorithm>
#include <cctype>

#include "agent/socket_table.hpp"

namespace vipportd::agent {

std::string_view to_string(Protocol p) { return p == Protocol::tcp ? "TCP" : "UDP"; }

const RuleSite& RuleOrigin::at() const {
    static const RuleSite kNowhere;
    return site ? *site : kNowhere;
}

std::optional<Protocol> parse_protocol(std::string_view text) {
    std::string lower;
    lower.reserve(text.size());
    for (char c : text) {
        lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (lower == "tcp") {
        return Protocol::tcp;
    }
    if (lower == "udp") {
        return Protocol::udp;
    }
    return std::nullopt;
}

namespace {

// An IPv4 address as a host-order number (bytes[0..3] are network order).
std::uint32_t v4_value(const InetAddress& a) {
    return (std::uint32_t{a.bytes[0]} << 24) | (std::uint32_t{a.bytes[1]} << 16) |
           (std::uint32_t{a.bytes[2]} << 8) | std::uint32_t{a.bytes[3]};
}

InetAddress family_max(Family f) {
    InetAddress a{f, {}};
    std::fill_n(a.bytes.begin(), a.size(), std::uint8_t{0xff});
    return a;
}

// Next address within the family; returns false on overflow (a was the family's maximum).
bool increment(InetAddress& a) {
    for (std::size_t i = a.size(); i-- > 0;) {
        if (++a.bytes[i] != 0) {
            return true;
        }
    }
    return false;
}

bool decrement(InetAddress& a) {
    for (std::size_t i = a.size(); i-- > 0;) {
        if (a.bytes[i]-- != 0) {
            return true;
        }
    }
    return false;
}

// Lexicographic order on (family, bytes) is numeric order within a family, since bytes are
// network order and unused IPv4 bytes are zero.
bool adjacent_or_overlapping(const AddressRange& a, const AddressRange& b) {
    // assumes a.first <= b.first and same family
    InetAddress next = a.last;
    if (!increment(next)) {
        return true;
    }
    return b.first <= next;
}

}  // namespace

AddressScope AddressScope::exact(const InetAddress& a) {
    AddressScope s;
    const InetAddress u = a.unmapped();
    s.ranges_.push_back({u, u});
    return s;
}

AddressScope AddressScope::all(Family f) {
    AddressScope s;
    s.ranges_.push_back({InetAddress::any(f), family_max(f)});
    return s;
}

AddressScope AddressScope::prefix(const InetAddress& addr, unsigned prefix_len) {
    const InetAddress a = addr.unmapped();
    const unsigned bits = static_cast<unsigned>(a.size() * 8);
    if (addr.is_v4_mapped() && prefix_len >= 96) {
        prefix_len -= 96;
    }
    prefix_len = std::min(prefix_len, bits);
    InetAddress lo = a;
    InetAddress hi = a;
    for (unsigned bit = prefix_len; bit < bits; ++bit) {
        const auto mask = static_cast<std::uint8_t>(0x80u >> (bit % 8));
        lo.bytes[bit / 8] = static_cast<std::uint8_t>(lo.bytes[bit / 8] & ~mask);
        hi.bytes[bit / 8] = static_cast<std::uint8_t>(hi.bytes[bit / 8] | mask);
    }
    AddressScope s;
    s.ranges_.push_back({lo, hi});
    return s;
}

AddressScope AddressScope::from_ranges(std::vector<AddressRange> ranges) {
    AddressScope s;
    s.ranges_.assign(ranges.begin(), ranges.end());
    s.normalize();
    return s;
}

void AddressScope::normalize() {
    for (auto& r : ranges_) {
        r.first = r.first.unmapped();
        r.last = r.last.unmapped();
    }
    ranges_.erase(std::remove_if(ranges_.begin(), ranges_.end(),
                                 [](const AddressRange& r) {
                                     return r.first.family != r.last.family || r.last < r.first;
                                 }),
                  ranges_.end());
    std::sort(ranges_.begin(), ranges_.end(),
              [](const AddressRange& x, const AddressRange& y) { return x.first < y.first; });
    // Merge in place: out is the last kept range.
    auto out = ranges_.begin();
    for (auto cur = ranges_.begin(); cur != ranges_.end(); ++cur) {
        if (cur == ranges_.begin()) {
            continue;
        }
        if (out->first.family == cur->first.family && adjacent_or_overlapping(*out, *cur)) {
            out->last = std::max(out->last, cur->last);
        } else {
            *++out = *cur;
        }
    }
    if (!ranges_.empty()) {
        ranges_.erase(out + 1, ranges_.end());
    }
}

void AddressScope::add(AddressRange r) {
    ranges_.push_back(r);
    normalize();
}

void AddressScope::unite(const AddressScope& other) {
    ranges_.insert(ranges_.end(), other.ranges_.begin(), other.ranges_.end());
    normalize();
}

AddressScope AddressScope::intersected(const AddressScope& other) const {
    AddressScope out;
    for (const auto& a : ranges_) {
        for (const auto& b : other.ranges_) {
            if (a.first.family != b.first.family) {
                continue;
            }
            const InetAddress lo = std::max(a.first, b.first);
            const InetAddress hi = std::min(a.last, b.last);
            if (!(hi < lo)) {
                out.ranges_.push_back({lo, hi});
            }
        }
    }
    // Inputs are normalized, so pairwise intersections are already sorted and disjoint.
    return out;
}

AddressScope AddressScope::complement_within(Family f) const {
    AddressScope out;
    InetAddress next = InetAddress::any(f);
    bool exhausted = false;
    for (const auto& r : ranges_) {
        if (r.first.family != f) {
            continue;
        }
        if (next < r.first) {
            InetAddress before = r.first;
            decrement(before);
            out.ranges_.push_back({next, before});
        }
        next = r.last;
        if (!increment(next)) {
            exhausted = true;
            break;
        }
    }
    if (!exhausted) {
        out.ranges_.push_back({next, family_max(f)});
    }
    return out;
}

bool AddressScope::covers(const InetAddress& addr) const {
    const InetAddress a = addr.unmapped();
    return std::any_of(ranges_.begin(), ranges_.end(), [&](const AddressRange& r) {
        return r.first.family == a.family && !(a < r.first) && !(r.last < a);
    });
}

bool AddressScope::covers_all(Family f) const {
    return std::any_of(ranges_.begin(), ranges_.end(), [&](const AddressRange& r) {
        return r.first == InetAddress::any(f) && r.last == family_max(f);
    });
}

std::string AddressScope::to_string() const {
    std::string out;
    for (const auto& r : ranges_) {
        if (!out.empty()) {
            out += ", ";
        }
        if (r.first == InetAddress::any(r.first.family) && r.last == family_max(r.first.family)) {
            out += r.first.family == Family::v4 ? "0.0.0.0/0" : "::/0";
        } else if (r.first == r.last) {
            out += r.first.to_string();
        } else {
            out += r.first.to_string() + "-" + r.last.to_string();
        }
    }
    return out;
}

const SourceStatus* Snapshot::failed_required() const {
    for (const auto& s : sources) {
        if (s.required && !s.ok) {
            return &s;
        }
    }
    return nullptr;
}

ClaimIndex::ClaimIndex(const std::vector<Claim>& claims) {
    for (std::size_t i = 0; i < claims.size(); ++i) {
        const Claim& c = claims[i];
        const auto position = static_cast<std::uint32_t>(i);
        const auto& ranges = c.scope.ranges();
        // Few addresses per range: file the claim under each; otherwise it is wide.
        const auto small = [](const AddressRange& r) {
            if (r.first == r.last) {
                return true;
            }
            if (r.first.family != Family::v4) {
                return false;
            }
            return v4_value(r.last) - v4_value(r.first) < kExpand;
        };
        if (!ranges.empty() && std::all_of(ranges.begin(), ranges.end(), small)) {
            for (const auto& r : ranges) {
                if (r.first.family == Family::v4) {
                    for (std::uint32_t v = v4_value(r.first);; ++v) {
                        exact_.push_back({c.protocol, InetAddress::v4(v), position});
                        if (v == v4_value(r.last)) {
                            break;
                        }
                    }
                } else {
                    exact_.push_back({c.protocol, r.first, position});
                }
            }
        } else if (!ranges.empty()) {
            (c.protocol == Protocol::tcp ? wide_tcp_ : wide_udp_).push_back(position);
        }
    }
    std::sort(exact_.begin(), exact_.end());
    // A claim listed twice under one address (two ranges that meet it) is visited once.
    exact_.erase(std::unique(exact_.begin(), exact_.end()), exact_.end());
}

namespace {

// Visits the claims of list that cover vip for protocol p, through index when there is one.
template <typename Fn>
void for_each_covering(const std::vector<Claim>& list,
                       const ClaimIndex* index,
                       const InetAddress& vip,
                       Protocol p,
                       Fn&& fn) {
    if (index != nullptr) {
        const InetAddress a = vip.unmapped();
        index->visit(a, p, [&](std::uint32_t i) {
            if (list[i].scope.covers(a)) {
                fn(list[i]);
            }
        });
        return;
    }
    for (const auto& c : list) {
        if (c.protocol == p && c.scope.covers(vip)) {
            fn(c);
        }
    }
}

}  // namespace

PortSet Snapshot::used_ports(const InetAddress& vip, Protocol p) const {
    PortBitmap bits;
    if (sockets) {
        sockets->add_ports(vip, p, bits);
    }
    const auto add = [&](const Claim& c) { bits.set(c.ports); };
    for (std::size_t i = 0; i < claim_lists.size(); ++i) {
        for_each_covering(*claim_lists[i],
                          i < claim_indexes.size() ? claim_indexes[i].get() : nullptr, vip, p, add);
    }
    for_each_covering(claims, nullptr, vip, p, add);
    return bits.to_set();
}

PortSet Snapshot::used_ports_remembered(const InetAddress& vip, Protocol p) const {
    return ports_memo.get(vip, p, [&] { return used_ports(vip, p); });
}

PortsMemo& PortsMemo::operator=(const PortsMemo& other) {
    if (this != &other) {
        const std::lock_guard lock(mutex_);
        entries_.clear();
    }
    return *this;
}

PortSet PortsMemo::get(const InetAddress& vip,
                       Protocol p,
                       const std::function<PortSet()>& compute) const {
    {
        const std::lock_guard lock(mutex_);
        for (const Entry& e : entries_) {
            if (e.protocol == p && e.vip == vip) {
                return e.ports;
            }
        }
    }
    // Computed outside the lock: two first requests may both compute; the answers are equal.
    PortSet ports = compute();
    const std::lock_guard lock(mutex_);
    if (entries_.size() < kMaxEntries) {
        entries_.push_back({vip, p, ports});
    }
    return ports;
}

std::vector<Claim> Snapshot::claims_for(const InetAddress& vip, Protocol p) const {
    std::vector<Claim> out;
    if (sockets) {
        out = sockets->claims_for(vip, p);
    }
    const auto add = [&](const Claim& c) { out.push_back(c); };
    for (std::size_t i = 0; i < claim_lists.size(); ++i) {
        for_each_covering(*claim_lists[i],
                          i < claim_indexes.size() ? claim_indexes[i].get() : nullptr, vip, p, add);
    }
    for_each_covering(claims, nullptr, vip, p, add);
    return out;
}

std::shared_ptr<const Snapshot> Snapshot::summary() const {
    auto s = std::make_shared<Snapshot>();
    s->addresses = addresses;
    s->sources = sources;
    s->taken = taken;
    s->sequence = sequence;
    return s;
}

std::size_t Snapshot::size() const {
    std::size_t n = claims.size() + (sockets ? sockets->size() : 0);
    for (const auto& list : claim_lists) {
        n += list->size();
    }
    return n;
}

}  // namespace vipportd::agent
