#include "agent/rule_constraint.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace vipportd::agent {

AddressScope RuleConstraint::everything() {
    // Built once: every default RuleConstraint starts from it (the interpreter makes one per
    // test), and unite() sorts and merges each time.
    static const AddressScope kEverything = [] {
        AddressScope s = AddressScope::all(Family::v4);
        s.unite(AddressScope::all(Family::v6));
        return s;
    }();
    return kEverything;
}

RuleConstraint RuleConstraint::for_family(Family f) {
    RuleConstraint c;
    c.daddr = AddressScope::all(f);
    return c;
}

bool RuleConstraint::impossible() const {
    // No temporary sets: this runs before every expression of every rule interpreted.
    return daddr.empty() || (!tcp && !udp) || no_service_port(dports);
}

std::vector<RuleConstraint> RuleConstraint::subtracted(const RuleConstraint& box) const {
    std::vector<RuleConstraint> out;
    AddressScope outside = box.daddr.complement_within(Family::v4);
    outside.unite(box.daddr.complement_within(Family::v6));
    RuleConstraint a = *this;
    a.daddr = daddr.intersected(outside);
    if (!a.impossible()) {
        out.push_back(std::move(a));
    }
    RuleConstraint b = *this;
    b.daddr = daddr.intersected(box.daddr);
    b.tcp = tcp && !box.tcp;
    b.udp = udp && !box.udp;
    if (!b.impossible()) {
        out.push_back(std::move(b));
    }
    RuleConstraint d = *this;
    d.daddr = daddr.intersected(box.daddr);
    d.tcp = tcp && box.tcp;
    d.udp = udp && box.udp;
    d.dports = dports.subtracted(box.dports);
    if (!d.impossible()) {
        out.push_back(std::move(d));
    }
    return out;
}

void RuleConstraint::append_claims(RuleOrigin origin, std::vector<Claim>& out) const {
    if (impossible()) {
        return;
    }
    for (const auto& reason : uncertain) {
        if (!origin.reason.empty()) {
            origin.reason += "; ";
        }
        origin.reason += reason;
    }
    const Certainty certainty = uncertain.empty() ? Certainty::exact : Certainty::uncertain;
    const PortSet ports = dports.intersected(PortSet::range(1, 65535));
    for (const auto& [on, proto] : {std::pair{tcp, Protocol::tcp}, std::pair{udp, Protocol::udp}}) {
        if (on) {
            out.push_back(Claim{proto, ports, daddr, certainty, origin});
        }
    }
}

namespace {

// Claims can only merge when everything but their scope or ports is equal. They are grouped by a
// hash of those fields and compared field by field within a hash: building a key string per claim
// (and hashing it) was a tenth of interpreting 10,000 DNAT rules, each its own group.
std::size_t mix(std::size_t h, std::size_t v) {
    // boost::hash_combine's mixing step (boost/container_hash/hash.hpp)
    return h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

std::size_t site_hash(const RuleSite& at) {
    std::size_t h = 0;
    for (const std::string* part : {&at.source, &at.family, &at.table, &at.chain}) {
        h = mix(h, std::hash<std::string_view>{}(*part));
    }
    for (const auto& p : at.path) {
        h = mix(h, std::hash<std::string_view>{}(p));
    }
    return h;
}

std::size_t merge_hash(const Claim& c, const RuleOrigin& o, std::size_t site) {
    std::size_t h = site;
    for (const std::string* part : {&o.kind, &o.target, &o.comment, &o.reason}) {
        h = mix(h, std::hash<std::string_view>{}(*part));
    }
    h = mix(h, std::hash<std::uint64_t>{}(o.handle));
    return mix(h,
               static_cast<std::size_t>(c.protocol) << 8 | static_cast<std::size_t>(c.certainty));
}

bool mergeable(const Claim& a, const RuleOrigin& x, const Claim& b, const RuleOrigin& y) {
    return a.protocol == b.protocol && a.certainty == b.certainty && x.handle == y.handle &&
           x.kind == y.kind && x.target == y.target && x.comment == y.comment &&
           x.reason == y.reason && (x.site == y.site || x.at() == y.at());
}

// Folds the claims of one group (same merge key) until no two share their scope or their ports.
// Hash passes instead of pairwise comparisons: one rule over a 100,000-element set yields that
// many claims. Addresses are collected per surviving claim and united once per pass.
void merge_group(std::vector<Claim>& claims,
                 const std::vector<std::size_t>& group,
                 std::vector<bool>& dropped) {
    for (bool changed = true; changed;) {
        changed = false;
        for (const bool by_scope : {true, false}) {
            std::unordered_map<std::string, std::size_t> survivor;
            std::unordered_map<std::size_t, std::vector<AddressRange>> more;
            for (const std::size_t i : group) {
                if (dropped[i]) {
                    continue;
                }
                const std::string key =
                    by_scope ? claims[i].scope.to_string() : claims[i].ports.to_string();
                const auto [it, fresh] = survivor.emplace(key, i);
                if (fresh) {
                    continue;
                }
                Claim& into = claims[it->second];
                if (by_scope) {
                    into.ports.unite(claims[i].ports);
                } else {
                    auto& r = more[it->second];
                    r.insert(r.end(), claims[i].scope.ranges().begin(),
                             claims[i].scope.ranges().end());
                }
                dropped[i] = true;
                changed = true;
            }
            for (auto& [i, ranges] : more) {
                ranges.insert(ranges.end(), claims[i].scope.ranges().begin(),
                              claims[i].scope.ranges().end());
                claims[i].scope = AddressScope::from_ranges(std::move(ranges));
            }
        }
    }
}

}  // namespace

void merge_claims(std::vector<Claim>& claims) {
    // One hash entry per group and a group id per claim; member lists only for the groups that
    // have more than one claim. (A member vector per group and a second copy of every key cost
    // two allocations per claim, and 10,000 DNAT rules make 10,000 one-claim groups.)
    constexpr std::size_t kNone = static_cast<std::size_t>(-1);
    std::unordered_map<std::size_t, std::size_t> by_hash;  // hash -> its first group
    by_hash.reserve(claims.size());
    std::vector<std::size_t> first;  // group -> its first claim
    std::vector<std::size_t> next;   // group -> the next group of the same hash, or kNone
    std::vector<std::size_t> gid(claims.size(), kNone);
    std::vector<std::size_t> sizes;
    const RuleSite* last_site = nullptr;  // claims of one chain walk share their site
    std::size_t last_site_hash = 0;
    for (std::size_t i = 0; i < claims.size(); ++i) {
        const auto* o = std::get_if<RuleOrigin>(&claims[i].origin);
        if (o == nullptr) {
            continue;
        }
        if (&o->at() != last_site) {
            last_site = &o->at();
            last_site_hash = site_hash(*last_site);
        }
        const auto [it, fresh] =
            by_hash.emplace(merge_hash(claims[i], *o, last_site_hash), sizes.size());
        std::size_t g = it->second;
        std::size_t prev = kNone;
        while (!fresh && g != kNone &&
               !mergeable(claims[first[g]], std::get<RuleOrigin>(claims[first[g]].origin),
                          claims[i], *o)) {
            prev = g;
            g = next[g];
        }
        if (fresh || g == kNone) {
            g = sizes.size();
            sizes.push_back(0);
            first.push_back(i);
            next.push_back(kNone);
            if (prev != kNone) {
                next[prev] = g;
            }
        }
        gid[i] = g;
        ++sizes[g];
    }
    // Groups in order of first appearance (ids are handed out in that order), members in order.
    std::vector<std::size_t> slot(sizes.size(), kNone);
    std::vector<std::vector<std::size_t>> members;
    for (std::size_t g = 0; g < sizes.size(); ++g) {
        if (sizes[g] > 1) {
            slot[g] = members.size();
            members.emplace_back().reserve(sizes[g]);
        }
    }
    for (std::size_t i = 0; i < claims.size(); ++i) {
        if (gid[i] != kNone && slot[gid[i]] != kNone) {
            members[slot[gid[i]]].push_back(i);
        }
    }
    std::vector<bool> dropped(claims.size(), false);
    for (const auto& g : members) {
        merge_group(claims, g, dropped);
    }
    std::size_t out = 0;
    for (std::size_t i = 0; i < claims.size(); ++i) {
        if (!dropped[i]) {
            if (out != i) {
                claims[out] = std::move(claims[i]);
            }
            ++out;
        }
    }
    claims.resize(out);
}

}  // namespace vipportd::agent
