#include "agent/rule_constraint.hpp"

#include <algorithm>
#include <string>
#include <unordered_map>

namespace vipportd::agent {

AddressScope RuleConstraint::everything() {
    AddressScope s = AddressScope::all(Family::v4);
    s.unite(AddressScope::all(Family::v6));
    return s;
}

RuleConstraint RuleConstraint::for_family(Family f) {
    RuleConstraint c;
    c.daddr = AddressScope::all(f);
    return c;
}

bool RuleConstraint::impossible() const {
    return daddr.empty() || (!tcp && !udp) || dports.intersected(PortSet::range(1, 65535)).empty();
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
    std::string k;
    for (const std::string* part :
         {&o.source, &o.family, &o.table, &o.chain, &o.kind, &o.target, &o.comment, &o.reason}) {
        k += *part;
        k += '\0';
    }
    for (const auto& p : o.path) {
        k += p;
        k += '\1';
    }
    k += std::to_string(o.handle) + '\0' + std::to_string(static_cast<int>(c.protocol)) + '\0' +
         std::to_string(static_cast<int>(c.certainty));
    return k;
}

}  // namespace

void merge_claims(std::vector<Claim>& claims) {
    std::unordered_map<std::string, std::vector<std::size_t>> groups;
    std::vector<bool> dropped(claims.size(), false);
    for (std::size_t i = 0; i < claims.size(); ++i) {
        const auto* o = std::get_if<RuleOrigin>(&claims[i].origin);
        if (o == nullptr) {
            continue;
        }
        auto& group = groups[merge_key(claims[i], *o)];
        group.push_back(i);
        if (group.size() < 2) {
            continue;
        }
        // Fold the new claim into an earlier one of its group, then keep folding the grown claim
        // until nothing in the group shares its scope or its ports any more.
        std::size_t cur = i;
        bool again = true;
        while (again) {
            again = false;
            for (const std::size_t j : group) {
                if (j == cur || dropped[j]) {
                    continue;
                }
                Claim& a = claims[std::min(j, cur)];
                Claim& b = claims[std::max(j, cur)];
                if (a.scope == b.scope) {
                    a.ports.unite(b.ports);
                } else if (a.ports == b.ports) {
                    a.scope.unite(b.scope);
                } else {
                    continue;
                }
                dropped[std::max(j, cur)] = true;
                cur = std::min(j, cur);
                again = true;
                break;
            }
        }
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
