#include "agent/rule_constraint.hpp"

#include <algorithm>
#include <string>
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
    // dports minus port 0 is empty iff its highest range ends at 0 (ranges are sorted): no
    // temporary PortSets, as this runs before every expression of every rule interpreted.
    return daddr.empty() || (!tcp && !udp) || dports.empty() || dports.ranges().back().last == 0;
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

std::vector<Claim> RuleConstraint::to_claims(RuleOrigin origin) const {
    std::vector<Claim> out;
    if (impossible()) {
        return out;
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
    return out;
}

namespace {

// Claims can only merge when everything but their scope or ports is equal; this key groups them,
// so merging stays linear in the number of rules however many claims there are.
std::string merge_key(const Claim& c, const RuleOrigin& o) {
    const RuleSite& at = o.at();
    std::string k;
    for (const std::string* part : {&at.source, &at.family, &at.table, &at.chain, &o.kind,
                                    &o.target, &o.comment, &o.reason}) {
        k += *part;
        k += '\0';
    }
    for (const auto& p : at.path) {
        k += p;
        k += '\1';
    }
    k += std::to_string(o.handle) + '\0' + std::to_string(static_cast<int>(c.protocol)) + '\0' +
         std::to_string(static_cast<int>(c.certainty));
    return k;
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
    std::unordered_map<std::string, std::size_t> ids;
    ids.reserve(claims.size());
    std::vector<std::size_t> gid(claims.size(), kNone);
    std::vector<std::size_t> sizes;
    for (std::size_t i = 0; i < claims.size(); ++i) {
        if (const auto* o = std::get_if<RuleOrigin>(&claims[i].origin)) {
            const auto [it, fresh] = ids.emplace(merge_key(claims[i], *o), sizes.size());
            if (fresh) {
                sizes.push_back(0);
            }
            gid[i] = it->second;
            ++sizes[it->second];
        }
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
