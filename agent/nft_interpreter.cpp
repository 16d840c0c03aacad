#include "agent/nft_interpreter.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "agent/rule_constraint.hpp"
#include "netlink/xt_blobs.hpp"

namespace vipportd::agent {

namespace nft = netlink::nft;
namespace xt = netlink::xt;
using netlink::Errc;
using netlink::Error;
using netlink::Result;

namespace {

using Bytes = std::vector<std::uint8_t>;
using ByteSpan = std::span<const std::uint8_t>;

// The register file: NFT_REG_1..4 / NFT_REG32_00..15 alias 64 bytes (kernel.md §2.8).
constexpr std::size_t kRegBytes = nft::kRegisterSlots * 4;

constexpr std::uint8_t kProtoTcp = 6;   // IPPROTO_TCP
constexpr std::uint8_t kProtoUdp = 17;  // IPPROTO_UDP

// x_tables targets by what they do to the packets they match (net/netfilter/xt_*.c,
// net/ipv4/netfilter/ipt_*.c): a verdict ends the packet's traversal, XT_CONTINUE goes on.
constexpr std::array<std::string_view, 8> kTerminalTargets{
    "SNAT", "MASQUERADE", "REJECT", "NFQUEUE", "QUEUE", "SYNPROXY", "CLUSTERIP", "DROP"};
constexpr std::array<std::string_view, 22> kContinuingTargets{
    "MARK",    "CONNMARK",    "LOG", "NFLOG",     "TRACE", "CT",     "NOTRACK",  "DSCP",
    "TOS",     "TTL",         "HL",  "CLASSIFY",  "SET",   "TCPMSS", "CHECKSUM", "AUDIT",
    "SECMARK", "CONNSECMARK", "TEE", "IDLETIMER", "LED",   "HMARK"};
// Expressions without a test and without a verdict: they change nothing a claim depends on.
constexpr std::array<std::string_view, 3> kPassiveExpressions{"log", "notrack", "last"};

bool contains(std::span<const std::string_view> list, std::string_view name) {
    return std::find(list.begin(), list.end(), name) != list.end();
}

// ---- register contents ----

enum class Kind : std::uint8_t {
    daddr,      // destination address (possibly a prefix of it, possibly masked)
    l4proto,    // meta l4proto, ip protocol, ip6 nexthdr: 1 byte
    nfproto,    // meta nfproto: 1 byte
    ethertype,  // meta protocol: 2 bytes
    dport,      // transport header + 2, 2 bytes
    source,     // saddr, sport, tcp flags: narrow the rule, not the claim
    other,      // anything else: a test on it is not interpreted
};

/// A run of register bytes loaded from one header field (or one meta/ct key).
struct Field {
    Kind kind = Kind::other;
    Family family = Family::v4;           // daddr
    std::size_t field_offset = 0;         // byte of the field the run starts at
    std::array<std::uint8_t, 16> mask{};  // daddr after bitwise: and-mask over the run's bytes
    bool masked = false;
    std::string what;  // source/other: "ip saddr", "meta iifname", ...
};

struct RegByte {
    enum class Tag : std::uint8_t { unknown, field, imm };
    Tag tag = Tag::unknown;
    std::uint8_t value = 0;   // imm
    std::uint8_t index = 0;   // field: byte index within the run
    std::uint16_t field = 0;  // field: index into State::fields
};

struct State {
    RuleConstraint box;
    bool exact = true;  // box is exactly the packets this path matches: it may be subtracted
    std::array<RegByte, kRegBytes> regs{};
    std::vector<Field> fields;
    std::string comment;  // from an xt "comment" match

    /// As a fresh State on box, keeping the buffers: the walker evaluates every rule in one.
    void reset(const RuleConstraint& b) {
        box = b;
        exact = true;
        regs.fill(RegByte{});
        fields.clear();
        comment.clear();
    }
};

/// Consecutive operand bytes with one meaning.
/// Offsets and lengths fit a byte: an operand lies within the 64-byte register file.
/// No default member values: Segments' array is left uninitialized (each Segment is written
/// whole by push_back), where zeroing it was 512 bytes of stores per test of every rule.
struct Segment {
    RegByte::Tag tag;
    std::uint8_t offset;  // in the operand
    std::uint8_t len;
    std::uint8_t reg_at;  // register byte of the first operand byte
    std::uint16_t field;
    std::uint8_t index;  // field: index within the run of the first byte
};

/// An operand's segments, inline (at most one per register byte): operands are read for every
/// cmp, range, bitwise and lookup, and a vector here was an allocation per test of every rule.
class Segments {
  public:
    void push_back(const Segment& s) { items_[n_++] = s; }
    [[nodiscard]] Segment& back() { return items_[n_ - 1]; }
    [[nodiscard]] bool empty() const { return n_ == 0; }
    [[nodiscard]] std::size_t size() const { return n_; }
    [[nodiscard]] const Segment* begin() const { return items_.data(); }
    [[nodiscard]] const Segment* end() const { return items_.data() + n_; }

  private:
    std::array<Segment, kRegBytes> items_;  // 8 bytes each; [0, n_) written
    std::size_t n_ = 0;
};

/// The operand reg[sreg .. sreg + len), nullopt when it leaves the register file.
std::optional<Segments> read_operand(const State& st, std::uint32_t reg, std::size_t len) {
    const auto slot = nft::slot_of_register(reg);
    if (!slot || len == 0 || *slot * 4 + len > kRegBytes) {
        return std::nullopt;
    }
    Segments out;
    for (std::size_t i = 0; i < len; ++i) {
        const std::size_t at = *slot * 4 + i;
        const RegByte& b = st.regs[at];
        if (!out.empty()) {
            Segment& last = out.back();
            const RegByte& prev = st.regs[at - 1];
            const bool same =
                last.tag == b.tag && (b.tag != RegByte::Tag::field ||
                                      (b.field == prev.field && b.index == prev.index + 1));
            if (same) {
                ++last.len;
                continue;
            }
        }
        out.push_back(Segment{b.tag, static_cast<std::uint8_t>(i), 1, static_cast<std::uint8_t>(at),
                              b.field, b.index});
    }
    return out;
}

// Big-endian byte-string arithmetic for cmp lt/gt bounds (memcmp order, nft_cmp.c).
bool decrement(std::span<std::uint8_t> b) {
    for (std::size_t i = b.size(); i-- > 0;) {
        if (b[i]-- != 0) {
            return true;
        }
    }
    return false;
}

bool increment(std::span<std::uint8_t> b) {
    for (std::size_t i = b.size(); i-- > 0;) {
        if (++b[i] != 0) {
            return true;
        }
    }
    return false;
}

bool in_range(ByteSpan v, ByteSpan lo, ByteSpan hi) {
    return std::memcmp(lo.data(), v.data(), v.size()) <= 0 &&
           std::memcmp(v.data(), hi.data(), v.size()) <= 0;
}

std::uint16_t be16(ByteSpan b) { return static_cast<std::uint16_t>((b[0] << 8) | b[1]); }

AddressScope complement_both(const AddressScope& s) {
    AddressScope out = s.complement_within(Family::v4);
    out.unite(s.complement_within(Family::v6));
    return out;
}

AddressScope families(bool v4, bool v6) {
    AddressScope s;
    if (v4) {
        s.unite(AddressScope::all(Family::v4));
    }
    if (v6) {
        s.unite(AddressScope::all(Family::v6));
    }
    return s;
}

// Dimensions of a RuleConstraint a test restricts.
constexpr unsigned kDimDaddr = 1;
constexpr unsigned kDimProto = 2;
constexpr unsigned kDimPorts = 4;

/// What a test (or one set element) says about the operand, projected on the claim dimensions.
/// The dimensions are kept apart, not as a RuleConstraint: daddr means something only once a
/// test restricted it (kDimDaddr), so a test on ports or protocols no longer copies "every
/// address", which was an allocation per cmp of every rule.
struct Tuple {
    bool never = false;  // no TCP/UDP packet of interest satisfies it
    AddressScope daddr;  // valid when dims has kDimDaddr; otherwise every address
    bool tcp = true;
    bool udp = true;
    PortSet dports = PortSet::all();
    unsigned dims = 0;
    bool source = false;              // a source-side field took part
    std::vector<std::string> others;  // fields whose test is not interpreted

    void restrict_daddr(AddressScope s) {
        daddr = (dims & kDimDaddr) != 0 ? daddr.intersected(s) : std::move(s);
        dims |= kDimDaddr;
    }
    /// RuleConstraint::impossible() of box(), without building it.
    [[nodiscard]] bool impossible() const {
        return ((dims & kDimDaddr) != 0 && daddr.empty()) || (!tcp && !udp) ||
               RuleConstraint::no_service_port(dports);
    }
    /// As a constraint: every address when no test restricted them.
    [[nodiscard]] RuleConstraint box() const {
        RuleConstraint b;
        if ((dims & kDimDaddr) != 0) {
            b.daddr = daddr;
        }
        b.tcp = tcp;
        b.udp = udp;
        b.dports = dports;
        return b;
    }
};

void add_reason(RuleConstraint& c, const std::string& reason) {
    if (std::find(c.uncertain.begin(), c.uncertain.end(), reason) == c.uncertain.end()) {
        c.widen(reason);
    }
}

/// box's restriction in dimension dim, complemented (dim is one of kDim*).
RuleConstraint complement_dim(const RuleConstraint& box, unsigned dim) {
    RuleConstraint c;
    if (dim == kDimDaddr) {
        c.daddr = complement_both(box.daddr);
    } else if (dim == kDimProto) {
        c.tcp = !box.tcp;
        c.udp = !box.udp;
    } else {
        c.dports = box.dports.complement();
    }
    return c;
}

/// Merges boxes equal in two of the three dimensions (same reasons) into one.
void merge_boxes(std::vector<RuleConstraint>& boxes) {
    for (std::size_t i = 0; i < boxes.size(); ++i) {
        for (std::size_t j = i + 1; j < boxes.size();) {
            RuleConstraint& a = boxes[i];
            const RuleConstraint& b = boxes[j];
            bool merged = false;
            if (a.uncertain == b.uncertain) {
                const bool addr = a.daddr == b.daddr;
                const bool proto = a.tcp == b.tcp && a.udp == b.udp;
                const bool ports = a.dports == b.dports;
                if (addr && proto) {
                    a.dports.unite(b.dports);
                    merged = true;
                } else if (addr && ports) {
                    a.tcp = a.tcp || b.tcp;
                    a.udp = a.udp || b.udp;
                    merged = true;
                } else if (proto && ports) {
                    a.daddr.unite(b.daddr);
                    merged = true;
                }
            }
            if (merged) {
                boxes.erase(boxes.begin() + static_cast<std::ptrdiff_t>(j));
                j = i + 1;
            } else {
                ++j;
            }
        }
    }
}

/// Large sets: groups by (protocols, ports) uniting addresses, then by (addresses, protocols)
/// uniting ports, in O(n log n); merge_boxes() finishes what is left.
void merge_many_boxes(std::vector<RuleConstraint>& boxes) {
    if (boxes.size() <= 64) {
        merge_boxes(boxes);
        return;
    }
    auto pass = [&](bool by_ports) {
        std::map<std::string, std::size_t> index;
        std::vector<RuleConstraint> out;
        std::vector<std::vector<AddressRange>> ranges;
        for (auto& b : boxes) {
            std::string key = std::string(b.tcp ? "t" : "") + (b.udp ? "u" : "") + "|" +
                              (by_ports ? b.dports.to_string() : b.daddr.to_string());
            for (const auto& r : b.uncertain) {
                key += "|" + r;
            }
            auto [it, fresh] = index.emplace(key, out.size());
            if (fresh) {
                out.push_back(b);
                ranges.emplace_back(b.daddr.ranges().begin(), b.daddr.ranges().end());
            } else if (by_ports) {
                auto& acc = ranges[it->second];
                acc.insert(acc.end(), b.daddr.ranges().begin(), b.daddr.ranges().end());
            } else {
                out[it->second].dports.unite(b.dports);
            }
        }
        if (by_ports) {
            for (std::size_t i = 0; i < out.size(); ++i) {
                out[i].daddr = AddressScope::from_ranges(std::move(ranges[i]));
            }
        }
        boxes = std::move(out);
    };
    pass(true);
    pass(false);
    if (boxes.size() <= 64) {
        merge_boxes(boxes);
    }
}

/// One element of a set as an inclusive range of keys. fieldwise: the range applies to each
/// concatenated field separately (points, and pipapo KEY..KEY_END); otherwise it is one range
/// over the whole key in memcmp order (rbtree intervals).
struct ElemRange {
    Bytes lo;
    Bytes hi;
    bool fieldwise = true;
    const nft::SetElem* elem = nullptr;  // data / verdict
};

/// Expands a set's elements into ranges (kernel.md §2.1 set flags, §2.4 (f), (n), (o)):
/// rbtree interval sets list a start (flag 0) and an exclusive end (NFT_SET_ELEM_INTERVAL_END)
/// per interval, the lowest end marking the gap below the first interval; pipapo sets send
/// KEY and KEY_END, both inclusive. The catch-all element is returned separately.
std::vector<ElemRange> expand(const nft::Set& set, const nft::SetElem** catchall) {
    std::vector<ElemRange> out;
    *catchall = nullptr;
    std::vector<const nft::SetElem*> elems;
    for (const auto& e : set.elements) {
        if (e.catchall()) {
            *catchall = &e;
        } else if (e.key.size() == set.key_len &&
                   (e.key_end.empty() || e.key_end.size() == e.key.size())) {
            elems.push_back(&e);
        }
    }
    const bool rbtree = set.is_interval() &&
                        std::none_of(elems.begin(), elems.end(),
                                     [](const nft::SetElem* e) { return !e->key_end.empty(); });
    if (!rbtree) {
        for (const auto* e : elems) {
            if (e->interval_end()) {
                continue;
            }
            out.push_back({e->key, e->key_end.empty() ? e->key : e->key_end, true, e});
        }
        // Hash sets dump in hash order, which differs from boot to boot: sort, so that paths
        // (and claims) come out in the same order for the same ruleset.
        std::stable_sort(out.begin(), out.end(),
                         [](const ElemRange& a, const ElemRange& b) { return a.lo < b.lo; });
        return out;
    }
    std::stable_sort(elems.begin(), elems.end(), [](const nft::SetElem* a, const nft::SetElem* b) {
        if (a->key != b->key) {
            return a->key < b->key;
        }
        return a->interval_end() && !b->interval_end();  // an end before a start at one key
    });
    for (std::size_t i = 0; i < elems.size(); ++i) {
        if (elems[i]->interval_end()) {
            continue;
        }
        Bytes hi(set.key_len, 0xff);  // no end element: the interval runs to the top
        if (i + 1 < elems.size() && elems[i + 1]->interval_end()) {
            hi = elems[i + 1]->key;
            if (!decrement(hi)) {
                continue;  // empty interval
            }
        }
        out.push_back({elems[i]->key, std::move(hi), false, elems[i]});
    }
    return out;
}

// ---- what earlier rules already took ----

bool overlaps(const PortSet& a, const PortSet& b) {
    auto i = a.ranges().begin();
    auto j = b.ranges().begin();
    while (i != a.ranges().end() && j != b.ranges().end()) {
        if (i->last < j->first) {
            ++i;
        } else if (j->last < i->first) {
            ++j;
        } else {
            return true;
        }
    }
    return false;
}

bool overlaps(const AddressScope& a, const AddressScope& b) {
    for (const auto& x : a.ranges()) {
        for (const auto& y : b.ranges()) {
            if (x.first.family == y.first.family && !(x.last < y.first) && !(y.last < x.first)) {
                return true;
            }
        }
    }
    return false;
}

/// Some packet of interest is in both (their claim dimensions intersect).
bool overlaps(const RuleConstraint& a, const RuleConstraint& b) {
    return ((a.tcp && b.tcp) || (a.udp && b.udp)) && overlaps(a.dports, b.dports) &&
           overlaps(a.daddr, b.daddr);
}

/// s.intersected(AddressScope::all(f)) is not empty, without building either scope: the ranges
/// of a scope are valid (first <= last), so any range of family f is a witness.
bool has_family(const AddressScope& s, Family f) {
    return std::any_of(s.ranges().begin(), s.ranges().end(),
                       [f](const AddressRange& r) { return r.first.family == f; });
}

/// inner's ports other than 0 all lie in outer. PortSets are sorted, disjoint and non-adjacent,
/// so each (clipped) range of inner must sit inside one range of outer; no temporary sets (this
/// runs for every rule that ends a path).
bool ports_within(const PortSet& inner, const PortSet& outer) {
    auto o = outer.ranges().begin();
    for (const auto& r : inner.ranges()) {
        if (r.last < 1) {
            continue;  // port 0 is never claimed (append_claims limits ports to 1-65535)
        }
        const std::uint16_t first = std::max<std::uint16_t>(r.first, 1);
        while (o != outer.ranges().end() && o->last < first) {
            ++o;
        }
        if (o == outer.ranges().end() || o->first > first || o->last < r.last) {
            return false;
        }
    }
    return true;
}

/// outer contains every packet of interest of inner.
bool covers(const RuleConstraint& outer, const RuleConstraint& inner) {
    return (outer.tcp || !inner.tcp) && (outer.udp || !inner.udp) &&
           ports_within(inner.dports, outer.dports) &&
           inner.daddr.intersected(outer.daddr) == inner.daddr;
}

/// Calls f(address) for every address of s and returns true when s has at most limit of them;
/// otherwise returns false without calling f. Counted first, then visited: this runs twice for
/// every rule that ends a path, and collecting the addresses into an array first meant zeroing
/// and copying 16 of them each time.
template <class F>
bool for_few_addresses(const AddressScope& s, std::size_t limit, F&& f) {
    const auto next = [](InetAddress& a) {
        for (std::size_t i = a.size(); i-- > 0;) {  // callers stop at r.last: no overflow
            if (++a.bytes[i] != 0) {
                break;
            }
        }
    };
    std::size_t n = 0;
    for (const auto& r : s.ranges()) {
        for (InetAddress a = r.first;; next(a)) {
            if (++n > limit) {
                return false;
            }
            if (a == r.last) {
                break;
            }
        }
    }
    for (const auto& r : s.ranges()) {
        for (InetAddress a = r.first;; next(a)) {
            f(a);
            if (a == r.last) {
                break;
            }
        }
    }
    return true;
}

/// The packets that exact, path-ending rules of one chain already took (accept, drop, return,
/// goto, nat, ...), to be left out of what later rules on the same path claim. Kept as a list of
/// boxes instead of subtracting them from the path at once: a chain of thousands of DNAT rules,
/// one per VIP and port, would otherwise cut the path into thousands of pieces and make every
/// later rule pay for all of them. Indexed by address and by port, so a claim for one VIP and
/// port only looks at the few boxes that can touch it.
class Exclusions {
  public:
    static constexpr std::size_t kIndexed = 16;  // scopes of at most this many values are indexed

    void add(RuleConstraint box) {
        box.uncertain.clear();
        const auto id = static_cast<std::uint32_t>(boxes_.size());
        if (!for_few_addresses(box.daddr, kIndexed,
                               [&](const InetAddress& a) { by_addr_[a].push_back(id); })) {
            addr_wide_.push_back(id);
        }
        if (box.dports.count() <= kIndexed) {
            for (const auto& r : box.dports.ranges()) {
                for (std::uint32_t p = r.first; p <= r.last; ++p) {
                    by_port_[static_cast<std::uint16_t>(p)].push_back(id);
                }
            }
        } else {
            port_wide_.push_back(id);
        }
        boxes_.push_back(std::move(box));
    }

    /// Calls f(box) for every excluded box that overlaps b, in the order they were added, until
    /// f returns false.
    template <class F>
    void for_each_overlapping(const RuleConstraint& b, F&& f) const {
        // The index lists are only looked up first and counted; just the shorter side is
        // copied. Copying both made a chain of 10,000 DNAT rules on one port quadratic: every
        // rule copied the by-port list of all the rules before it only to throw it away.
        std::array<const std::vector<std::uint32_t>*, kIndexed + 1> addr_lists;
        std::array<const std::vector<std::uint32_t>*, kIndexed + 1> port_lists;
        std::size_t addr_n = 1;
        std::size_t port_n = 0;
        bool port_indexed = false;
        std::size_t addr_count = addr_wide_.size();
        std::size_t port_count = 0;
        addr_lists[0] = &addr_wide_;
        const bool by_addr = for_few_addresses(b.daddr, kIndexed, [&](const InetAddress& a) {
            if (auto it = by_addr_.find(a); it != by_addr_.end()) {
                addr_lists[addr_n++] = &it->second;
                addr_count += it->second.size();
            }
        });
        if (b.dports.count() <= kIndexed) {
            port_indexed = true;
            port_lists[port_n++] = &port_wide_;
            port_count = port_wide_.size();
            for (const auto& r : b.dports.ranges()) {
                for (std::uint32_t p = r.first; p <= r.last; ++p) {
                    if (auto it = by_port_.find(static_cast<std::uint16_t>(p));
                        it != by_port_.end()) {
                        port_lists[port_n++] = &it->second;
                        port_count += it->second.size();
                    }
                }
            }
        }
        if (!by_addr && !port_indexed) {
            for (const auto& box : boxes_) {
                if (overlaps(box, b) && !f(box)) {
                    return;
                }
            }
            return;
        }
        const bool by_port = port_indexed && (!by_addr || port_count < addr_count);
        const auto& lists = by_port ? port_lists : addr_lists;
        const std::size_t lists_n = by_port ? port_n : addr_n;
        const std::size_t count = by_port ? port_count : addr_count;
        // A box that overlaps b shares an address with it and a port with it, so when both
        // sides are indexed it is on both: the other side's ids are marked and only marked
        // candidates are tested. In a chain of one DNAT rule per VIP and port, the by-port list
        // holds the rules of every other VIP, each a failed overlap test (memcmp of addresses);
        // marking costs one store per id, so it is done while the other side is not much
        // longer.
        const std::size_t other_count = by_port ? addr_count : port_count;
        const bool filter = by_addr && port_indexed && other_count <= kFilterFactor * count + 16;
        if (filter) {
            if (marks_.size() < boxes_.size()) {
                marks_.resize(boxes_.size(), 0);
            }
            if (++epoch_ == 0) {  // wrapped: old marks could match again
                std::fill(marks_.begin(), marks_.end(), 0);
                epoch_ = 1;
            }
            const auto& others = by_port ? addr_lists : port_lists;
            for (std::size_t k = 0; k < (by_port ? addr_n : port_n); ++k) {
                for (const auto id : *others[k]) {
                    marks_[id] = epoch_;
                }
            }
        }
        const auto visit = [&](std::uint32_t id) {
            if (filter && marks_[id] != epoch_) {
                return true;
            }
            return !overlaps(boxes_[id], b) || f(boxes_[id]);
        };
        // Each list is in ascending id order; with one non-empty list it is walked in place.
        const std::vector<std::uint32_t>* only = nullptr;
        std::size_t non_empty = 0;
        for (std::size_t k = 0; k < lists_n; ++k) {
            if (!lists[k]->empty()) {
                only = lists[k];
                ++non_empty;
            }
        }
        if (non_empty <= 1) {
            if (only != nullptr) {
                for (const auto id : *only) {
                    if (!visit(id)) {
                        return;
                    }
                }
            }
            return;
        }
        std::vector<std::uint32_t> candidates;
        candidates.reserve(count);
        for (std::size_t k = 0; k < lists_n; ++k) {
            candidates.insert(candidates.end(), lists[k]->begin(), lists[k]->end());
        }
        std::sort(candidates.begin(), candidates.end());
        candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
        for (const auto id : candidates) {
            if (!visit(id)) {
                return;
            }
        }
    }

  private:
    // Hashed, not ordered: only find() is used, and a chain of 10,000 DNAT rules made the
    // ordered map's address comparisons (memcmp) a visible share of the walk.
    struct AddressHash {
        std::size_t operator()(const InetAddress& a) const noexcept {
            std::uint64_t h = static_cast<std::uint64_t>(a.family) + 0x9e3779b97f4a7c15ULL;
            for (const auto b : a.bytes) {
                h = (h ^ b) * 0x100000001b3ULL;  // FNV-1a
            }
            return static_cast<std::size_t>(h);
        }
    };
    std::vector<RuleConstraint> boxes_;
    std::unordered_map<InetAddress, std::vector<std::uint32_t>, AddressHash> by_addr_;
    std::vector<std::uint32_t> addr_wide_;
    std::unordered_map<std::uint16_t, std::vector<std::uint32_t>> by_port_;
    std::vector<std::uint32_t> port_wide_;
    // for_each_overlapping's filter: marks_[id] == epoch_ for the ids of the other side (scratch
    // space, reused across calls; the walker is single-threaded).
    static constexpr std::size_t kFilterFactor = 8;
    mutable std::vector<std::uint32_t> marks_;
    mutable std::uint32_t epoch_ = 0;
};

/// Part of the packets on one path through a chain: box, minus what exact rules before took.
struct Piece {
    RuleConstraint box;
    std::unique_ptr<Exclusions> taken;  // null: nothing taken yet
};

struct ChainRules {
    const nft::Chain* chain = nullptr;
    std::vector<const nft::Rule*> rules;
};

enum class Action { fallthrough, stop, ret, jump, go };

/// How one path through a rule ends.
struct Outcome {
    RuleConstraint box;
    bool exact = true;
    Action action = Action::fallthrough;
    std::string chain;               // jump / goto target
    std::vector<std::string> taint;  // for fallthrough: reasons for every path after the rule
};

class Walker {
  public:
    Walker(const nft::Ruleset& rs, const NftInterpretLimits& limits) : rs_(rs), limits_(limits) {
        // Typically a claim or two per rule: reserving spares the doubling series, which moved
        // every claim again and touched fresh memory each time.
        claims_.reserve(rs.rules.size());
        for (const auto& c : rs.chains) {
            chains_[key(c.family, c.table, c.name)].chain = &c;
        }
        // Rules come in dump order, chain after chain: look the chain up again only when it
        // changes (a key string and a map search per rule were a good part of the walk).
        const nft::Rule* prev = nullptr;
        ChainRules* target = nullptr;
        for (const auto& r : rs.rules) {
            if (prev == nullptr || r.family != prev->family || r.chain != prev->chain ||
                r.table != prev->table) {
                auto it = chains_.find(key(r.family, r.table, r.chain));
                target = it != chains_.end() ? &it->second : nullptr;
            }
            prev = &r;
            if (target != nullptr) {
                target->rules.push_back(&r);
            }
        }
    }

    Result<std::vector<Claim>> run() {
        for (const auto& c : rs_.chains) {
            const nft::Table* t = rs_.find_table(c.family, c.table);
            if (t == nullptr || t->dormant() || !c.hook) {
                continue;  // dormant tables hook nothing (NFT_TABLE_F_DORMANT)
            }
            std::optional<RuleConstraint> start;
            if (c.family == nft::kFamilyIpv4) {
                start = RuleConstraint::for_family(Family::v4);
            } else if (c.family == nft::kFamilyIpv6) {
                start = RuleConstraint::for_family(Family::v6);
            } else if (c.family == nft::kFamilyInet) {
                start = RuleConstraint::for_both_families();
            }
            const bool nat = c.type == "nat" && (c.hook->hooknum == nft::kHookPrerouting ||
                                                 c.hook->hooknum == nft::kHookOutput);
            const bool tproxy = c.type != "nat" && c.hook->hooknum == nft::kHookPrerouting;
            if (!start || (!nat && !tproxy)) {
                continue;
            }
            base_ = &c;
            auto r = walk(chains_.at(key(c.family, c.table, c.name)), pieces({*start}));
            if (!r) {
                return r.error();
            }
        }
        merge_claims(claims_);
        return std::move(claims_);
    }

  private:
    static std::string key(std::uint8_t family,
                           const std::string& table,
                           const std::string& chain) {
        return std::to_string(family) + '\0' + table + '\0' + chain;
    }

    std::string where(const nft::Rule& r) const {
        return nft::family_name(r.family) + " " + r.table + " " + r.chain + " handle " +
               std::to_string(r.handle);
    }

    // ---- chains ----

    static std::vector<Piece> pieces(std::vector<RuleConstraint> boxes) {
        std::vector<Piece> out;
        for (auto& b : boxes) {
            out.push_back(Piece{std::move(b), nullptr});
        }
        return out;
    }

    // The packets of box that no exact rule before it (on this path, in this chain) took: box
    // minus the overlapping taken boxes, as disjoint pieces. Too many pieces: box itself,
    // widened.
    // The rule's name (where()) is only built when it is needed for a reason: building it for
    // every rule and piece was a string allocation per rule for nothing. Likewise box is only
    // copied once an earlier rule cuts into it, which for most rules none does.
    std::vector<RuleConstraint> untaken(RuleConstraint box,
                                        const Exclusions* taken,
                                        const nft::Rule& rule) const {
        std::vector<RuleConstraint> frags;
        bool cut = false;
        bool overflow = false;
        if (taken != nullptr) {
            taken->for_each_overlapping(box, [&](const RuleConstraint& t) {
                if (!cut) {
                    frags.push_back(box);
                    cut = true;
                }
                std::vector<RuleConstraint> next;
                for (const auto& f : frags) {
                    auto d = f.subtracted(t);
                    next.insert(next.end(), d.begin(), d.end());
                }
                frags = std::move(next);
                normalize(frags);
                overflow = frags.size() > limits_.max_paths;
                return !frags.empty() && !overflow;
            });
        }
        if (!cut) {
            frags.push_back(std::move(box));
            return frags;
        }
        if (overflow) {
            frags.clear();
            frags.push_back(std::move(box));
            add_reason(frags.back(),
                       where(rule) + ": too many disjoint paths, earlier rules not subtracted");
        }
        return frags;
    }

    // Runs the paths `in` through a chain; returns the paths that come back to the caller
    // (return, or the end of the chain).
    Result<std::vector<Piece>> walk(const ChainRules& ch, std::vector<Piece> in) {
        stack_.push_back(&ch);
        path_.push_back(ch.chain->name);
        sites_.emplace_back();
        std::vector<Piece> current = std::move(in);
        std::vector<Piece> returned;
        std::vector<Outcome> outcomes;
        std::vector<Piece> next;  // swapped with current after each rule: no vector per rule
        for (const nft::Rule* rule : ch.rules) {
            if (current.empty()) {
                break;
            }
            if (++steps_ > limits_.max_steps) {
                return Error::of(Errc::malformed,
                                 "nf_tables: ruleset too complex to interpret (more than " +
                                     std::to_string(limits_.max_steps) + " rule evaluations)");
            }
            next.clear();
            for (std::size_t k = 0; k < current.size(); ++k) {
                Piece& p = current[k];
                outcomes.clear();  // reused: one allocation per chain walk, not one per rule
                split_budget_ = limits_.max_split;
                taken_ = p.taken.get();
                scratch_.reset(p.box);  // reused: its field list keeps its capacity
                eval(*rule, 0, scratch_, outcomes);
                taken_ = nullptr;
                std::vector<std::string> taint;
                std::vector<Piece> back;  // what jumps brought back to the next rule
                bool gone = false;        // every packet of the piece left the chain
                for (auto& o : outcomes) {
                    if (o.action == Action::fallthrough) {
                        taint.insert(taint.end(), o.taint.begin(), o.taint.end());
                        continue;  // the packets go on: nothing taken
                    }
                    // Only the packets that go on somewhere (return, jump, goto) need the
                    // earlier rules subtracted; a stop (accept, drop, nat) just ends the path,
                    // and at 10,000 DNAT rules that subtraction was a tenth of the walk.
                    if (o.action == Action::ret) {
                        auto r = pieces(untaken(o.box, p.taken.get(), *rule));
                        std::move(r.begin(), r.end(), std::back_inserter(returned));
                    } else if (o.action == Action::jump || o.action == Action::go) {
                        auto r = follow(*rule, o.chain, untaken(o.box, p.taken.get(), *rule));
                        if (!r) {
                            return r.error();
                        }
                        if (o.action == Action::go) {
                            std::move(r->begin(), r->end(), std::back_inserter(returned));
                        } else if (o.exact &&
                                   current.size() + next.size() + back.size() + r->size() <=
                                       limits_.max_paths) {
                            std::move(r->begin(), r->end(), std::back_inserter(back));
                        } else {
                            // The packets that came back are part of p, which goes on whole.
                            if (o.exact) {
                                add_reason(p.box, where(*rule) +
                                                      ": too many disjoint paths, rule not "
                                                      "subtracted from the paths after it");
                            }
                            continue;
                        }
                    }
                    if (!o.exact) {
                        continue;  // only part of o.box really ended here: p goes on whole
                    }
                    if (covers(o.box, p.box)) {
                        gone = true;
                    } else {
                        if (!p.taken) {
                            p.taken = std::make_unique<Exclusions>();
                        }
                        p.taken->add(std::move(o.box));
                    }
                }
                if (!gone) {
                    for (const auto& t : taint) {
                        add_reason(p.box, t);
                    }
                    next.push_back(std::move(p));
                }
                for (auto& b : back) {
                    for (const auto& t : taint) {
                        add_reason(b.box, t);
                    }
                    next.push_back(std::move(b));
                }
            }
            current.swap(next);
        }
        std::move(current.begin(), current.end(), std::back_inserter(returned));
        stack_.pop_back();
        path_.pop_back();
        sites_.pop_back();
        return returned;
    }

    // jump/goto target: the paths that come back from it.
    Result<std::vector<Piece>> follow(const nft::Rule& rule,
                                      const std::string& target,
                                      std::vector<RuleConstraint> boxes) {
        if (boxes.empty()) {
            return std::vector<Piece>{};
        }
        auto it = chains_.find(key(rule.family, rule.table, target));
        const bool on_path = it != chains_.end() &&
                             std::find(stack_.begin(), stack_.end(), &it->second) != stack_.end();
        if (it == chains_.end() || on_path || stack_.size() >= limits_.max_depth) {
            // The kernel refuses loops and deep jump stacks (nf_tables_api.c
            // nft_chain_validate), so only crafted input gets here: assume the packets come back.
            for (auto& b : boxes) {
                add_reason(b, where(rule) + ": jump to '" + target + "' not followed (" +
                                  (it == chains_.end() ? "no such chain"
                                   : on_path           ? "loop"
                                                       : "jump stack too deep") +
                                  ")");
            }
            return pieces(std::move(boxes));
        }
        return walk(it->second, pieces(std::move(boxes)));
    }

    static void normalize(std::vector<RuleConstraint>& boxes) {
        boxes.erase(std::remove_if(boxes.begin(), boxes.end(),
                                   [](const RuleConstraint& c) { return c.impossible(); }),
                    boxes.end());
        merge_boxes(boxes);
    }

    // ---- rules ----

    void widen(State& st, const std::string& reason) {
        add_reason(st.box, reason);
        st.exact = false;
    }

    // Evaluates rule.exprs[i..] for one state, appending how each resulting path ends.
    // st is the caller's scratch: eval() may change it and move out of it.
    void eval(const nft::Rule& rule, std::size_t i, State& st, std::vector<Outcome>& out) {
        for (; i < rule.exprs.size(); ++i) {
            if (st.box.impossible()) {
                return;  // the rule does not match any packet of interest on this path
            }
            const nft::Expr& e = rule.exprs[i];
            const bool last = i + 1 == rule.exprs.size();
            if (const auto* p = std::get_if<nft::Payload>(&e)) {
                if (!payload(rule, i, *p, st, out)) {
                    return;  // split into one state per family, each evaluated on its own
                }
            } else if (const auto* m = std::get_if<nft::Meta>(&e)) {
                meta(*m, st);
            } else if (const auto* c = std::get_if<nft::Cmp>(&e)) {
                cmp(rule, *c, st);
            } else if (const auto* r = std::get_if<nft::Range>(&e)) {
                range(rule, *r, st);
            } else if (const auto* l = std::get_if<nft::Lookup>(&e)) {
                if (!lookup(rule, i, *l, st, out)) {
                    return;
                }
            } else if (const auto* b = std::get_if<nft::Bitwise>(&e)) {
                bitwise(*b, st);
            } else if (const auto* im = std::get_if<nft::Immediate>(&e)) {
                if (const auto* v = im->verdict()) {
                    if (!verdict(*v, st, out)) {
                        return;
                    }
                } else {
                    write_imm(st, im->dreg, *im->data());
                }
            } else if (const auto* n = std::get_if<nft::Nat>(&e)) {
                nat(rule, *n, st);
                out.push_back(Outcome{std::move(st.box), st.exact, Action::stop, {}, {}});
                return;  // nft_nat_eval: the verdict of nf_nat_setup_info(), NF_ACCEPT
            } else if (const auto* rd = std::get_if<nft::Redir>(&e)) {
                redir(rule, *rd, st);
                out.push_back(Outcome{std::move(st.box), st.exact, Action::stop, {}, {}});
                return;  // nft_redir_eval: NF_ACCEPT (or NF_DROP)
            } else if (const auto* tp = std::get_if<nft::Tproxy>(&e)) {
                // nft_tproxy_eval sets no verdict when it found a socket: the rule goes on.
                tproxy(rule, *tp, st);
            } else if (const auto* mt = std::get_if<nft::Match>(&e)) {
                match(rule, *mt, st);
            } else if (const auto* tg = std::get_if<nft::Target>(&e)) {
                if (!target(rule, *tg, st, out)) {
                    return;
                }
            } else if (std::holds_alternative<nft::Counter>(e)) {
                continue;
            } else if (const auto* ct = std::get_if<nft::Ct>(&e)) {
                if (ct->dreg) {
                    load_other(st, *ct->dreg, ct_len(ct->key), Kind::other,
                               "ct " + nft::ct_key_name(ct->key));
                }
            } else if (const auto* u = std::get_if<nft::Unknown>(&e)) {
                if (contains(kPassiveExpressions, u->name) && u->why.empty()) {
                    continue;
                }
                std::string reason = where(rule) + ": expression '" + u->name + "' not interpreted";
                if (!u->why.empty()) {
                    reason.append(" (").append(u->why).append(")");
                }
                widen(st, reason);
                // It may have loaded any register, and as the last expression it may have been
                // a verdict (reject, queue, ...): the paths after the rule are widened too.
                st.regs.fill(RegByte{});
                if (last) {
                    out.push_back(
                        Outcome{std::move(st.box), false, Action::fallthrough, {}, {reason}});
                    return;
                }
            }
        }
        if (!st.box.impossible()) {
            out.push_back(Outcome{std::move(st.box), st.exact, Action::fallthrough, {}, {}});
        }
    }

    // ---- loads ----

    static std::size_t ct_len(std::uint32_t key) {
        // Sizes of the ct keys (net/netfilter/nft_ct.c nft_ct_get_init): addresses and labels
        // take 16 bytes, the rest at most 4.
        constexpr std::uint32_t kCtSrc = 8, kCtDst = 9, kCtLabels = 13, kCtSrcIp6 = 21,
                                kCtDstIp6 = 22;
        return key == kCtSrc || key == kCtDst || key == kCtLabels || key == kCtSrcIp6 ||
                       key == kCtDstIp6
                   ? 16
                   : 4;
    }

    // Marks reg[dreg .. dreg+len) as one field of the given kind; the rest of the last 32-bit
    // word is zeroed, as the kernel does (nft_payload_eval, nft_reg_store8/16).
    // parts/part_lens are spans over the caller's fixed arrays: two vectors per register load
    // were two allocations per payload/meta expression of every rule.
    static void load(State& st,
                     std::uint32_t dreg,
                     std::size_t len,
                     std::span<Field> parts,
                     std::span<const std::size_t> part_lens) {
        const auto slot = nft::slot_of_register(dreg);
        if (!slot || *slot * 4 + len > kRegBytes) {
            st.regs.fill(RegByte{});  // the kernel refuses such a register; trust nothing
            return;
        }
        std::size_t at = *slot * 4;
        for (std::size_t p = 0; p < parts.size(); ++p) {
            const auto id = static_cast<std::uint16_t>(st.fields.size());
            st.fields.push_back(std::move(parts[p]));
            for (std::size_t k = 0; k < part_lens[p]; ++k) {
                st.regs[at++] = RegByte{RegByte::Tag::field, 0, static_cast<std::uint8_t>(k), id};
            }
        }
        while (at % 4 != 0 && at < kRegBytes) {
            st.regs[at++] = RegByte{RegByte::Tag::imm, 0, 0, 0};
        }
    }

    static void load_other(
        State& st, std::uint32_t dreg, std::size_t len, Kind kind, std::string what) {
        Field f;
        f.kind = kind;
        f.what = std::move(what);
        const std::size_t lens[1] = {len};
        load(st, dreg, len, std::span<Field>(&f, 1), lens);
    }

    static void write_imm(State& st, std::uint32_t dreg, ByteSpan data) {
        const auto slot = nft::slot_of_register(dreg);
        if (!slot || *slot * 4 + data.size() > kRegBytes) {
            st.regs.fill(RegByte{});
            return;
        }
        std::size_t at = *slot * 4;
        for (const auto b : data) {
            st.regs[at++] = RegByte{RegByte::Tag::imm, b, 0, 0};
        }
        while (at % 4 != 0 && at < kRegBytes) {
            st.regs[at++] = RegByte{RegByte::Tag::imm, 0, 0, 0};  // nft_data_copy zero-pads
        }
    }

    // Returns false when it split the state by family (the halves were evaluated already).
    bool payload(const nft::Rule& rule,
                 std::size_t i,
                 const nft::Payload& p,
                 State& st,
                 std::vector<Outcome>& out) {
        if (p.sreg) {
            widen(st, where(rule) + ": payload write not interpreted");
            return true;
        }
        if (!p.dreg) {
            return true;
        }
        struct Span {
            std::size_t begin, end;
            Kind kind;
            const char* what;
        };
        // Fixed layouts, a base name that is only formatted into a reason when one is needed,
        // and the parts in fixed arrays (at most one run per layout field and one per gap
        // around them): no allocation per payload expression.
        static constexpr std::array<Span, 3> kIpv4{{{9, 10, Kind::l4proto, "ip protocol"},
                                                    {12, 16, Kind::source, "ip saddr"},
                                                    {16, 20, Kind::daddr, "ip daddr"}}};
        static constexpr std::array<Span, 3> kIpv6{{{6, 7, Kind::l4proto, "ip6 nexthdr"},
                                                    {8, 24, Kind::source, "ip6 saddr"},
                                                    {24, 40, Kind::daddr, "ip6 daddr"}}};
        static constexpr std::array<Span, 3> kTransport{{{0, 2, Kind::source, "th sport"},
                                                         {2, 4, Kind::dport, "th dport"},
                                                         {13, 14, Kind::source, "tcp flags"}}};
        std::span<const Span> layout;
        Family fam = Family::v4;
        const char* base = nullptr;
        if (p.base == nft::kPayloadNetworkHeader) {
            const bool v4 = has_family(st.box.daddr, Family::v4);
            const bool v6 = has_family(st.box.daddr, Family::v6);
            if (v4 && v6) {
                // inet without a preceding nfproto test: the same offsets mean different fields
                // in IPv4 and IPv6 headers, so evaluate both families separately.
                for (Family f : {Family::v4, Family::v6}) {
                    State half = st;
                    half.box.restrict_daddr(AddressScope::all(f));
                    eval(rule, i, half, out);
                }
                return false;
            }
            fam = v6 ? Family::v6 : Family::v4;
            if (fam == Family::v4) {
                // struct iphdr: protocol at 9, saddr at 12, daddr at 16 (RFC 791)
                layout = kIpv4;
                base = "ip header";
            } else {
                // struct ipv6hdr: nexthdr at 6, saddr at 8, daddr at 24 (RFC 8200)
                layout = kIpv6;
                base = "ip6 header";
            }
        } else if (p.base == nft::kPayloadTransportHeader) {
            // TCP/UDP/SCTP/DCCP/UDP-Lite: sport at 0, dport at 2; TCP flags at 13 (RFC 9293).
            layout = kTransport;
            base = "transport header";
        } else {
            base = p.base == nft::kPayloadLinkHeader ? "link header" : "inner header";
        }
        std::array<Field, 2 * kIpv4.size() + 1> parts;
        std::array<std::size_t, 2 * kIpv4.size() + 1> lens{};
        std::size_t n = 0;
        std::size_t pos = p.offset;
        const std::size_t end = std::size_t{p.offset} + p.len;
        while (pos < end) {
            const Span* hit = nullptr;
            std::size_t next = end;
            for (const auto& s : layout) {
                if (pos >= s.begin && pos < s.end) {
                    hit = &s;
                    next = std::min(end, s.end);
                    break;
                }
                if (s.begin > pos) {
                    next = std::min(next, s.begin);
                }
            }
            Field f;
            if (hit != nullptr) {
                f.kind = hit->kind;
                f.family = fam;
                f.field_offset = pos - hit->begin;
                f.what = hit->what;
            } else {
                f.kind = Kind::other;
                f.what = std::string(base) + " bytes " + std::to_string(pos) + "-" +
                         std::to_string(next - 1);
            }
            parts[n] = std::move(f);
            lens[n] = next - pos;
            ++n;
            pos = next;
        }
        load(st, *p.dreg, p.len, std::span<Field>(parts.data(), n),
             std::span<const std::size_t>(lens.data(), n));
        return true;
    }

    static void meta(const nft::Meta& m, State& st) {
        if (!m.dreg) {
            return;  // meta set: a side effect
        }
        switch (m.key) {
            case nft::kMetaL4proto:
                load_other(st, *m.dreg, 1, Kind::l4proto, "meta l4proto");
                return;
            case nft::kMetaNfproto:
                load_other(st, *m.dreg, 1, Kind::nfproto, "meta nfproto");
                return;
            case nft::kMetaProtocol:
                load_other(st, *m.dreg, 2, Kind::ethertype, "meta protocol");
                return;
            default:
                break;
        }
        // Interface names are IFNAMSIZ (16) bytes, everything else fits 4 (nft_meta.c).
        constexpr std::uint32_t kBriIifname = 17, kBriOifname = 18, kIifkind = 26, kOifkind = 27,
                                kSdifname = 34;
        const std::uint32_t k = m.key;
        const bool name = k == nft::kMetaIifname || k == nft::kMetaOifname || k == kBriIifname ||
                          k == kBriOifname || k == kIifkind || k == kOifkind || k == kSdifname;
        load_other(st, *m.dreg, name ? 16 : 4, Kind::other, "meta " + nft::meta_key_name(k));
    }

    // ---- tests ----

    /// What one segment says when the operand bytes under it lie in [lo, hi].
    static void term(const State& st, const Segment& s, ByteSpan lo, ByteSpan hi, Tuple& t) {
        switch (s.tag) {
            case RegByte::Tag::imm: {
                std::array<std::uint8_t, kRegBytes> buf{};  // s.len <= kRegBytes: no allocation
                for (std::size_t k = 0; k < s.len; ++k) {
                    buf[k] = st.regs[s.reg_at + k].value;
                }
                if (!in_range(ByteSpan(buf.data(), s.len), lo, hi)) {
                    t.never = true;
                }
                return;
            }
            case RegByte::Tag::unknown:
                t.others.emplace_back("register contents unknown");
                return;
            case RegByte::Tag::field:
                break;
        }
        const Field& f = st.fields[s.field];
        const std::size_t at = f.field_offset + s.index;  // byte of the header field
        switch (f.kind) {
            case Kind::daddr: {
                const std::size_t alen = f.family == Family::v4 ? 4 : 16;
                if (at != 0 || s.len > alen) {
                    t.others.push_back("partial " + f.what);
                    return;
                }
                InetAddress first{f.family, {}};
                InetAddress last{f.family, {}};
                bool zero_seen = false;
                for (std::size_t k = 0; k < alen; ++k) {
                    const std::uint8_t m =
                        k < s.len ? (f.masked ? f.mask[s.index + k] : std::uint8_t{0xff}) : 0;
                    // A prefix mask: ones, then zeros (nft's `ip daddr 1.2.3.0/30`).
                    for (int bit = 7; bit >= 0; --bit) {
                        const bool one = (m >> bit) & 1;
                        if (one && zero_seen) {
                            t.others.push_back(f.what + " with a non-prefix mask");
                            return;
                        }
                        zero_seen = zero_seen || !one;
                    }
                    first.bytes[k] = k < s.len ? static_cast<std::uint8_t>(lo[k] & m) : 0;
                    last.bytes[k] = k < s.len ? static_cast<std::uint8_t>(hi[k] | ~m) : 0xff;
                }
                t.restrict_daddr(AddressScope::from_ranges({{first, last}}));
                return;
            }
            case Kind::l4proto:
                if (s.len != 1) {
                    break;
                }
                t.tcp = t.tcp && lo[0] <= kProtoTcp && kProtoTcp <= hi[0];
                t.udp = t.udp && lo[0] <= kProtoUdp && kProtoUdp <= hi[0];
                t.dims |= kDimProto;
                return;
            case Kind::nfproto:
                if (s.len != 1) {
                    break;
                }
                // NFPROTO_IPV4 2, NFPROTO_IPV6 10 (linux/netfilter.h)
                t.restrict_daddr(families(lo[0] <= 2 && 2 <= hi[0], lo[0] <= 10 && 10 <= hi[0]));
                return;
            case Kind::ethertype: {
                if (s.len != 2) {
                    break;
                }
                // ETH_P_IP 0x0800, ETH_P_IPV6 0x86dd (linux/if_ether.h)
                const auto a = be16(lo);
                const auto b = be16(hi);
                t.restrict_daddr(families(a <= 0x0800 && 0x0800 <= b, a <= 0x86dd && 0x86dd <= b));
                return;
            }
            case Kind::dport:
                if (at != 0 || s.len != 2) {
                    break;
                }
                t.dports = t.dports.intersected(
                    be16(lo) <= be16(hi) ? PortSet::range(be16(lo), be16(hi)) : PortSet{});
                t.dims |= kDimPorts;
                return;
            case Kind::source:
                t.source = true;
                return;
            case Kind::other:
                t.others.push_back(f.what);
                return;
        }
        t.others.push_back("partial " + f.what);
    }

    /// The operand in [lo, hi]: fieldwise per segment, or (fieldwise false, a real range over
    /// more than one segment) not representable.
    static Tuple tuple(
        const State& st, std::span<const Segment> segs, ByteSpan lo, ByteSpan hi, bool fieldwise) {
        Tuple t;
        std::size_t meaningful = 0;
        for (const auto& s : segs) {
            meaningful += s.tag == RegByte::Tag::imm ? 0 : 1;
        }
        if (!fieldwise && meaningful > 1 && !std::equal(lo.begin(), lo.end(), hi.begin())) {
            t.others.emplace_back("a range over a concatenation");
            return t;
        }
        for (const auto& s : segs) {
            term(st, s, lo.subspan(s.offset, s.len), hi.subspan(s.offset, s.len), t);
        }
        if (t.impossible()) {
            t.never = true;
        }
        return t;
    }

    // Applies "operand in [lo, hi]" (negated: "not in") to the state. Returns false when no
    // packet of interest can pass.
    bool apply(const nft::Rule& rule, State& st, const Tuple& t, bool negated) {
        auto ignore = [&] {
            for (const auto& o : t.others) {
                widen(st, where(rule) + ": " + o + " test not interpreted");
            }
            if (t.source) {
                st.exact = false;
            }
        };
        if (!negated) {
            if (t.never) {
                return false;
            }
            ignore();
            // A dimension the test did not restrict is still everything in t: intersecting
            // with it would only copy st.box's sets, so it is skipped.
            if ((t.dims & kDimDaddr) != 0) {
                st.box.restrict_daddr(t.daddr);
            }
            st.box.restrict_protocols(t.tcp, t.udp);
            if ((t.dims & kDimPorts) != 0) {
                st.box.restrict_dports(t.dports);
            }
            return !st.box.impossible();
        }
        if (t.never) {
            return true;  // the positive test never holds: its negation always does
        }
        if (!t.others.empty() || t.source) {
            ignore();
            return true;
        }
        if (t.dims == 0) {
            return false;  // only constants, all equal: the negation never holds
        }
        if (t.dims != kDimDaddr && t.dims != kDimProto && t.dims != kDimPorts) {
            widen(st, where(rule) + ": negated test over a concatenation not interpreted");
            return true;
        }
        const RuleConstraint c = complement_dim(t.box(), t.dims);
        st.box.restrict_daddr(c.daddr);
        st.box.restrict_protocols(c.tcp, c.udp);
        st.box.restrict_dports(c.dports);
        return !st.box.impossible();
    }

    void kill(State& st) { st.box.restrict_protocols(false, false); }

    void cmp(const nft::Rule& rule, const nft::Cmp& c, State& st) {
        auto segs = read_operand(st, c.sreg, c.data.size());
        if (!segs) {
            widen(st,
                  where(rule) + ": cmp on register " + std::to_string(c.sreg) + " not interpreted");
            return;
        }
        if (c.op == nft::kCmpEq || c.op == nft::kCmpNeq) {
            // Equality: lo == hi == data, read in place (no copies of the data per rule).
            if (!apply(rule, st, tuple(st, *segs, c.data, c.data, true), c.op == nft::kCmpNeq)) {
                kill(st);
            }
            return;
        }
        nft::RegData lo = c.data;  // inline copies: no allocation
        nft::RegData hi = c.data;
        bool ok = true;
        switch (c.op) {
            case nft::kCmpLt:
                std::fill(lo.begin(), lo.end(), 0);
                ok = decrement(hi);
                break;
            case nft::kCmpLte:
                std::fill(lo.begin(), lo.end(), 0);
                break;
            case nft::kCmpGt:
                std::fill(hi.begin(), hi.end(), 0xff);
                ok = increment(lo);
                break;
            case nft::kCmpGte:
                std::fill(hi.begin(), hi.end(), 0xff);
                break;
            default:
                widen(st, where(rule) + ": cmp op " + std::to_string(c.op) + " not interpreted");
                return;
        }
        if (!ok || !apply(rule, st, tuple(st, *segs, lo, hi, false), false)) {
            kill(st);
        }
    }

    void range(const nft::Rule& rule, const nft::Range& r, State& st) {
        auto segs = read_operand(st, r.sreg, r.from.size());
        if (!segs || r.from.size() != r.to.size()) {
            widen(st, where(rule) + ": range on register " + std::to_string(r.sreg) +
                          " not interpreted");
            return;
        }
        // nft_range_eval: from <= data <= to (memcmp), inverted for NFT_RANGE_NEQ.
        if (!apply(rule, st, tuple(st, *segs, r.from, r.to, false), r.op == nft::kRangeNeq)) {
            kill(st);
        }
    }

    static void bitwise(const nft::Bitwise& b, State& st) {
        auto segs = read_operand(st, b.sreg, b.len);
        const auto dslot = nft::slot_of_register(b.dreg);
        if (!segs || !dslot || *dslot * 4 + b.len > kRegBytes) {
            st.regs.fill(RegByte{});
            return;
        }
        std::array<RegByte, kRegBytes> result{};  // b.len <= kRegBytes (checked above)
        const bool mask_xor =
            b.op == nft::kBitwiseMaskXor && b.mask.size() >= b.len && b.xor_value.size() >= b.len;
        const bool xor_zero =
            mask_xor && std::all_of(b.xor_value.begin(), b.xor_value.begin() + b.len,
                                    [](std::uint8_t v) { return v == 0; });
        bool all_imm = true;
        for (const auto& s : *segs) {
            all_imm = all_imm && s.tag == RegByte::Tag::imm;
        }
        if (mask_xor && all_imm) {
            for (std::size_t k = 0; k < b.len; ++k) {
                const RegByte& src = st.regs[*nft::slot_of_register(b.sreg) * 4 + k];
                result[k] = RegByte{
                    RegByte::Tag::imm,
                    static_cast<std::uint8_t>((src.value & b.mask[k]) ^ b.xor_value[k]), 0, 0};
            }
        } else {
            // One new field for the result: a masked address prefix stays an address; a masked
            // source-side field stays source-side; anything else becomes "other".
            const Segment* first = nullptr;
            for (const auto& s : *segs) {
                if (s.tag == RegByte::Tag::field) {
                    first = &s;
                    break;
                }
            }
            Field f;
            f.kind = Kind::other;
            f.what = "bitwise result";
            if (first != nullptr) {
                const Field& src = st.fields[first->field];
                const bool single = segs->size() == 1;
                if (single && xor_zero && src.kind == Kind::daddr && first->index == 0) {
                    f = src;
                    for (std::size_t k = 0; k < b.len && k < f.mask.size(); ++k) {
                        const std::uint8_t old = src.masked ? src.mask[k] : 0xff;
                        f.mask[k] = static_cast<std::uint8_t>(old & b.mask[k]);
                    }
                    f.masked = true;
                } else if (src.kind == Kind::source) {
                    f.kind = Kind::source;
                    f.what = src.what;
                } else {
                    f.what = src.what + " (bitwise)";
                }
            }
            const auto id = static_cast<std::uint16_t>(st.fields.size());
            st.fields.push_back(std::move(f));
            for (std::size_t k = 0; k < b.len; ++k) {
                result[k] = RegByte{RegByte::Tag::field, 0, static_cast<std::uint8_t>(k), id};
            }
        }
        std::copy(result.begin(), result.begin() + b.len,
                  st.regs.begin() + static_cast<std::ptrdiff_t>(*dslot * 4));
    }

    // ---- sets ----

    struct Alternatives {
        bool none = false;                  // no element can match
        std::vector<RuleConstraint> boxes;  // empty (and !none): unconstrained
        unsigned dims = 0;                  // when boxes.size() == 1: its single dimension
        bool source = false;
        std::vector<std::string> others;
    };

    static Alternatives alternatives(const State& st,
                                     std::span<const Segment> segs,
                                     const std::vector<const ElemRange*>& elems) {
        Alternatives a;
        std::vector<Tuple> tuples;
        unsigned all_dims = 0;
        for (const auto* e : elems) {
            Tuple t = tuple(st, segs, e->lo, e->hi, e->fieldwise);
            if (a.others.empty()) {
                a.others = t.others;
            }
            a.source = a.source || t.source;
            if (t.never) {
                continue;
            }
            if (t.dims == 0) {
                a.boxes.clear();
                return a;  // an element matching every packet of interest
            }
            all_dims |= t.dims;
            tuples.push_back(std::move(t));
        }
        if (tuples.empty()) {
            a.none = true;
            return a;
        }
        if (all_dims == kDimDaddr || all_dims == kDimProto || all_dims == kDimPorts) {
            RuleConstraint u;
            std::vector<AddressRange> ranges;
            bool tcp = false;
            bool udp = false;
            PortSet ports;
            for (const auto& t : tuples) {
                ranges.insert(ranges.end(), t.daddr.ranges().begin(), t.daddr.ranges().end());
                tcp = tcp || t.tcp;
                udp = udp || t.udp;
                ports.unite(t.dports);
            }
            if (all_dims == kDimDaddr) {
                u.daddr = AddressScope::from_ranges(std::move(ranges));
            } else if (all_dims == kDimProto) {
                u.restrict_protocols(tcp, udp);
            } else {
                u.dports = std::move(ports);
            }
            a.boxes.push_back(std::move(u));
            a.dims = all_dims;
            return a;
        }
        for (auto& t : tuples) {
            a.boxes.push_back(t.box());
        }
        merge_many_boxes(a.boxes);
        return a;
    }

    // Returns false when the state was split (the branches were evaluated) or ended.
    bool lookup(const nft::Rule& rule,
                std::size_t i,
                const nft::Lookup& l,
                State& st,
                std::vector<Outcome>& out) {
        const nft::Set* set = rs_.find_set(rule.family, rule.table, l.set);
        const std::string what = where(rule) + ": lookup in '" + l.set + "'";
        const bool vmap = l.dreg && *l.dreg == 0;
        const bool dmap = l.dreg && *l.dreg != 0;
        std::optional<Segments> segs;
        if (set != nullptr) {
            segs = read_operand(st, l.sreg, set->key_len);
        }
        if (set == nullptr || !segs) {
            widen(st, what + (set == nullptr ? ": no such set" : ": bad register"));
            if (vmap) {
                out.push_back(
                    Outcome{st.box, false, Action::fallthrough, {}, {what + " not interpreted"}});
                return false;
            }
            if (dmap) {
                write_unknown(st, *l.dreg, set == nullptr ? 16 : set->data_len);
            }
            return true;
        }
        const nft::SetElem* catchall = nullptr;
        const std::vector<ElemRange> ranges = expand(*set, &catchall);
        if (!vmap && !dmap) {
            std::vector<const ElemRange*> elems;
            for (const auto& r : ranges) {
                elems.push_back(&r);
            }
            Alternatives a = alternatives(st, *segs, elems);
            for (const auto& o : a.others) {
                widen(st, where(rule) + ": " + o + " test not interpreted");
            }
            if (a.source) {
                st.exact = false;
            }
            if (catchall != nullptr) {
                a.none = false;
                a.boxes.clear();  // the catch-all element matches everything else
            }
            if (l.inverted()) {
                if (a.none) {
                    return true;
                }
                if (a.boxes.empty()) {
                    if (a.others.empty() && !a.source) {
                        kill(st);
                    }
                    return true;
                }
                if (a.boxes.size() != 1 || a.dims == 0 || !a.others.empty() || a.source) {
                    widen(st, what + ": negated lookup over a concatenation not interpreted");
                    return true;
                }
                const RuleConstraint c = complement_dim(a.boxes.front(), a.dims);
                st.box.restrict_daddr(c.daddr);
                st.box.restrict_protocols(c.tcp, c.udp);
                st.box.restrict_dports(c.dports);
                return true;
            }
            if (a.none) {
                kill(st);
                return true;
            }
            if (a.boxes.size() <= 1) {
                if (!a.boxes.empty()) {
                    st.box.restrict_daddr(a.boxes[0].daddr);
                    st.box.restrict_protocols(a.boxes[0].tcp, a.boxes[0].udp);
                    st.box.restrict_dports(a.boxes[0].dports);
                }
                return true;
            }
            if (!take_budget(a.boxes.size())) {
                widen(st,
                      what + ": " + std::to_string(a.boxes.size()) + " alternatives not expanded");
                return true;
            }
            for (const auto& b : a.boxes) {
                State s = st;
                s.box.restrict_daddr(b.daddr);
                s.box.restrict_protocols(b.tcp, b.udp);
                s.box.restrict_dports(b.dports);
                eval(rule, i + 1, s, out);
            }
            return false;
        }
        // Maps: every element is its own path (its data or verdict differs). Verdict-map elements
        // with one verdict are folded together first, as a set would be.
        std::vector<std::pair<const nft::SetElem*, std::vector<const ElemRange*>>> groups;
        std::map<std::pair<std::int32_t, std::string>, std::size_t> by_verdict;
        for (const auto& r : ranges) {
            const nft::SetElem* e = r.elem;
            if (vmap && e->verdict) {
                const auto [it, fresh] = by_verdict.emplace(
                    std::pair{e->verdict->code, e->verdict->chain}, groups.size());
                if (!fresh) {
                    groups[it->second].second.push_back(&r);
                    continue;
                }
            }
            groups.push_back({e, {&r}});
        }
        if (!take_budget(groups.size() + 1)) {
            widen(st,
                  what + ": map of " + std::to_string(groups.size()) + " elements not expanded");
            if (vmap) {
                out.push_back(
                    Outcome{st.box, false, Action::fallthrough, {}, {what + " not expanded"}});
                return false;
            }
            write_unknown(st, *l.dreg, set->data_len);
            return true;
        }
        auto branch = [&](const nft::SetElem& e, State s) {
            if (vmap) {
                if (e.verdict && verdict(*e.verdict, s, out)) {
                    eval(rule, i + 1, s, out);
                }
            } else {
                write_imm(s, *l.dreg, e.data);
                eval(rule, i + 1, s, out);
            }
        };
        for (const auto& [elem, members] : groups) {
            Alternatives a = alternatives(st, *segs, members);
            if (a.none) {
                continue;
            }
            State base = st;
            for (const auto& o : a.others) {
                widen(base, where(rule) + ": " + o + " test not interpreted");
            }
            if (a.source) {
                base.exact = false;
            }
            if (a.boxes.empty()) {
                branch(*elem, std::move(base));
                continue;
            }
            for (const auto& b : a.boxes) {
                State s = base;
                s.box.restrict_daddr(b.daddr);
                s.box.restrict_protocols(b.tcp, b.udp);
                s.box.restrict_dports(b.dports);
                if (!s.box.impossible()) {
                    branch(*elem, std::move(s));
                }
            }
        }
        if (catchall != nullptr) {
            // Matches what no other element matched: approximated by the whole path.
            State s = st;
            widen(s, what + ": catch-all element approximated by every packet");
            branch(*catchall, std::move(s));
        }
        return false;  // no element matched: NFT_BREAK, the rule does not match
    }

    static void write_unknown(State& st, std::uint32_t dreg, std::size_t len) {
        const auto slot = nft::slot_of_register(dreg);
        if (!slot) {
            return;
        }
        for (std::size_t k = *slot * 4; k < std::min(kRegBytes, *slot * 4 + len); ++k) {
            st.regs[k] = RegByte{};
        }
    }

    bool take_budget(std::size_t n) {
        if (n > split_budget_) {
            return false;
        }
        split_budget_ -= n;
        return true;
    }

    // ---- verdicts and actions ----

    // Applies a verdict to a state. Returns true when evaluation continues with the next
    // expression (NFT_CONTINUE); otherwise the outcome was recorded.
    static bool verdict(const nft::Verdict& v, const State& st, std::vector<Outcome>& out) {
        if (st.box.impossible()) {
            return false;
        }
        Outcome o{st.box, st.exact, Action::stop, {}, {}};
        switch (v.code) {
            case nft::kVerdictContinue:
                return true;
            case nft::kVerdictBreak:
                o.action = Action::fallthrough;  // the rule stops; the packet goes on
                break;
            case nft::kVerdictReturn:
                o.action = Action::ret;
                break;
            case nft::kVerdictJump:
                o.action = Action::jump;
                o.chain = v.chain;
                break;
            case nft::kVerdictGoto:
                o.action = Action::go;
                o.chain = v.chain;
                break;
            default:
                break;  // accept, drop, queue, stolen: the packet leaves the chain
        }
        out.push_back(std::move(o));
        return false;
    }

    void emit(const nft::Rule& rule,
              const State& st,
              std::string kind,
              std::string target,
              std::optional<Family> only) {
        RuleConstraint c = st.box;
        if (only) {
            c.restrict_daddr(AddressScope::all(*only));
        }
        RuleOrigin o;
        o.site = site(rule);
        o.handle = rule.handle;
        o.kind = std::move(kind);
        o.target = std::move(target);
        o.comment = rule.comment ? *rule.comment : st.comment;
        auto parts = untaken(std::move(c), taken_, rule);
        for (std::size_t k = 0; k < parts.size(); ++k) {
            // The last part takes the origin itself instead of a copy of its strings.
            if (k + 1 == parts.size()) {
                parts[k].append_claims(std::move(o), claims_);
            } else {
                parts[k].append_claims(o, claims_);
            }
        }
    }

    // The site every claim of the chain being walked shares (rule is one of its rules).
    std::shared_ptr<const RuleSite> site(const nft::Rule& rule) {
        auto& s = sites_.back();
        if (!s) {
            s = std::make_shared<const RuleSite>(
                RuleSite{"nftables", nft::family_name(rule.family), rule.table, rule.chain, path_});
        }
        return s;
    }

    bool nat_base() const {
        return base_->type == "nat" && (base_->hook->hooknum == nft::kHookPrerouting ||
                                        base_->hook->hooknum == nft::kHookOutput);
    }
    bool tproxy_base() const { return base_->hook->hooknum == nft::kHookPrerouting; }

    static std::optional<Family> family_of(std::uint32_t nfproto) {
        if (nfproto == nft::kFamilyIpv4) {
            return Family::v4;
        }
        if (nfproto == nft::kFamilyIpv6) {
            return Family::v6;
        }
        return std::nullopt;
    }

    // The constant bytes reg[r .. r+len), nullopt when any of them is not a known constant.
    // Addresses and ports (len 2, 4 or 16) come back inline: no allocation per nat rule.
    static std::optional<nft::RegData> constant(const State& st, std::uint32_t r, std::size_t len) {
        const auto slot = nft::slot_of_register(r);
        if (!slot || len > nft::RegData::kCapacity || *slot * 4 + len > kRegBytes) {
            return std::nullopt;
        }
        std::array<std::uint8_t, nft::RegData::kCapacity> out{};
        for (std::size_t k = 0; k < len; ++k) {
            const RegByte& b = st.regs[*slot * 4 + k];
            if (b.tag != RegByte::Tag::imm) {
                return std::nullopt;
            }
            out[k] = b.value;
        }
        return nft::RegData::from(ByteSpan(out.data(), len));
    }

    static std::optional<std::uint16_t> port_in(const State& st, std::optional<std::uint32_t> r) {
        if (!r) {
            return std::nullopt;
        }
        auto b = constant(st, *r, 2);
        if (!b) {
            return std::nullopt;
        }
        return be16(*b);
    }

    static std::optional<InetAddress> addr_in(const State& st,
                                              std::optional<std::uint32_t> r,
                                              Family f) {
        if (!r) {
            return std::nullopt;
        }
        auto b = constant(st, *r, f == Family::v4 ? 4 : 16);
        if (!b) {
            return std::nullopt;
        }
        return InetAddress::from_bytes(f, b->data());
    }

    // "10.0.0.5:8080" from the registers (nft_nat_eval reads addresses and ports from them).
    static std::string nat_target(const State& st,
                                  std::optional<Family> f,
                                  std::optional<std::uint32_t> amin,
                                  std::optional<std::uint32_t> amax,
                                  std::optional<std::uint32_t> pmin,
                                  std::optional<std::uint32_t> pmax) {
        xt::NatTarget t;
        if (amin) {
            t.min_addr = addr_in(st, amin, f.value_or(Family::v4));
            t.max_addr = amax ? addr_in(st, amax, f.value_or(Family::v4)) : t.min_addr;
            if (!t.min_addr || !t.max_addr) {
                return {};  // from registers we could not follow
            }
        }
        if (pmin) {
            const auto lo = port_in(st, pmin);
            const auto hi = pmax ? port_in(st, pmax) : lo;
            if (!lo || !hi) {
                return {};
            }
            t.ports = xt::PortSpan{*lo, *hi};
        }
        return t.to_string();
    }

    void nat(const nft::Rule& rule, const nft::Nat& n, const State& st) {
        if (n.type != nft::kNatDnat || !nat_base()) {
            return;  // SNAT rewrites the source: no destination port is taken
        }
        const auto f = family_of(n.family);
        emit(rule, st, "dnat",
             nat_target(st, f, n.reg_addr_min, n.reg_addr_max, n.reg_proto_min, n.reg_proto_max),
             f);
    }

    void redir(const nft::Rule& rule, const nft::Redir& r, const State& st) {
        if (!nat_base()) {
            return;
        }
        emit(rule, st, "redirect",
             nat_target(st, std::nullopt, std::nullopt, std::nullopt, r.reg_proto_min,
                        r.reg_proto_max),
             std::nullopt);
    }

    void tproxy(const nft::Rule& rule, const nft::Tproxy& t, const State& st) {
        if (!tproxy_base()) {
            return;
        }
        const auto f = family_of(t.family);
        xt::TproxyTarget tt;
        bool known = true;
        if (t.reg_addr) {
            tt.address = addr_in(st, t.reg_addr, f.value_or(Family::v4));
            known = known && tt.address.has_value();
        }
        if (t.reg_port) {
            const auto p = port_in(st, t.reg_port);
            known = known && p.has_value();
            tt.port = p.value_or(0);
        }
        emit(rule, st, "tproxy", known ? tt.to_string() : std::string{}, f);
    }

    std::optional<Family> xt_family(const nft::Rule& rule) const {
        return family_of(rule.family);  // iptables-nft tables are ip or ip6
    }

    void match(const nft::Rule& rule, const nft::Match& m, State& st) {
        const std::string what = where(rule) + ": match '" + m.name.str() + "'";
        if (m.name == "tcp" || m.name == "udp") {
            const bool tcp = m.name == "tcp";
            auto d = tcp ? xt::decode_tcp(m.info) : xt::decode_udp(m.info);
            // xt_tcpudp.c registers .proto per match; nft_compat checks it against the rule's
            // NFTA_RULE_COMPAT protocol, so the rule really only sees that protocol.
            st.box.restrict_protocols(tcp, !tcp);
            if (!d) {
                widen(st, what + ": " + netlink::to_string(d.error()));
                return;
            }
            const PortSet p = PortSet::range(d->dports.first, d->dports.last);
            st.box.restrict_dports(d->invert_dports ? p.complement() : p);
            if (d->sports.first != 0 || d->sports.last != 65535 || d->invert_sports ||
                d->tcp_flags_or_options) {
                st.exact = false;
            }
        } else if (m.name == "multiport") {
            auto d = xt::decode_multiport(m.info, static_cast<std::uint8_t>(m.rev));
            if (!d) {
                widen(st, what + ": " + netlink::to_string(d.error()));
                return;
            }
            PortSet p;
            for (const auto& s : d->ports) {
                p.add(PortRange{s.first, s.last});
            }
            if (d->invert) {
                p = p.complement();
            }
            using D = xt::MultiportMatch::Direction;
            if (d->direction == D::source) {
                st.exact = false;
                return;
            }
            st.box.restrict_dports(p);
            if (d->direction == D::either) {
                st.exact = false;  // --ports also matches on the source port
            }
        } else if (m.name == "comment") {
            if (auto c = xt::decode_comment(m.info)) {
                st.comment = *c;
            }
        } else {
            widen(st, what + " (rev " + std::to_string(m.rev) + ") not interpreted");
        }
    }

    // Returns false when the target ended the rule (outcome recorded).
    bool target(const nft::Rule& rule, const nft::Target& t, State& st, std::vector<Outcome>& out) {
        const std::string n = t.name.str();
        const auto f = xt_family(rule);
        const bool nat = n == "DNAT" || n == "REDIRECT" || n == "NETMAP";
        if ((nat && nat_base()) || (n == "TPROXY" && tproxy_base())) {
            State s = st;
            std::string target;
            if (!f) {
                widen(s, where(rule) + ": target " + n + " in a " + nft::family_name(rule.family) +
                             " table not interpreted");
            } else if (n == "TPROXY") {
                auto d = xt::decode_tproxy(static_cast<std::uint8_t>(t.rev), *f, t.info);
                if (d) {
                    target = d->to_string();
                } else {
                    widen(s, where(rule) + ": target TPROXY: " + netlink::to_string(d.error()));
                }
            } else {
                auto d = xt::decode_nat(n, static_cast<std::uint8_t>(t.rev), *f, t.info);
                if (d) {
                    target = d->to_string();
                } else {
                    widen(s, where(rule) + ": target " + n + ": " + netlink::to_string(d.error()));
                }
            }
            emit(rule, s, n, std::move(target), std::nullopt);
            out.push_back(Outcome{st.box, st.exact, Action::stop, {}, {}});
            return false;
        }
        if (nat || n == "TPROXY" || contains(kTerminalTargets, n)) {
            out.push_back(Outcome{st.box, st.exact, Action::stop, {}, {}});
            return false;
        }
        if (!contains(kContinuingTargets, n)) {
            const std::string reason =
                where(rule) + ": target '" + n + "' not interpreted, assumed to continue";
            widen(st, reason);
            out.push_back(Outcome{st.box, false, Action::fallthrough, {}, {reason}});
            return false;
        }
        return true;
    }

    const nft::Ruleset& rs_;
    const NftInterpretLimits& limits_;
    std::map<std::string, ChainRules> chains_;
    const nft::Chain* base_ = nullptr;
    std::vector<const ChainRules*> stack_;
    std::vector<std::string> path_;
    // One per path_ entry: the site of the chain walked there, made at its first claim.
    std::vector<std::shared_ptr<const RuleSite>> sites_;
    State scratch_;  // the state a rule is evaluated in (walk() resets it per rule and piece)
    std::vector<Claim> claims_;
    std::size_t steps_ = 0;
    std::size_t split_budget_ = 0;
    const Exclusions* taken_ = nullptr;  // of the piece being evaluated
};

}  // namespace

Result<std::vector<Claim>> interpret_nft(const nft::Ruleset& ruleset,
                                         const NftInterpretLimits& limits) {
    return Walker(ruleset, limits).run();
}

}  // namespace vipportd::agent
