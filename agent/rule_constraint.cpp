#include "agent/rule_constraint.hpp"

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

}  // namespace vipportd::agent
