#pragma once
// What a path through the netfilter chain graph can still match, accumulated test by test, and the
// claims it yields when it reaches a rewriting action (DNAT, REDIRECT, TPROXY, NETMAP). Shared by
// the nf_tables interpreter and the legacy iptables interpreter, so both widen and narrow the same
// way.

#include <string>
#include <vector>

#include "agent/model.hpp"

namespace vipportd::agent {

struct RuleConstraint {
    /// Destination addresses still matched; starts as every address of both families (a chain in
    /// an "ip" table starts with all of IPv4 only, see for_family()).
    AddressScope daddr = everything();
    bool tcp = true;  // l4 protocols still matched
    bool udp = true;
    PortSet dports = PortSet::all();  // destination ports still matched (0-65535)
    /// Why the constraint is wider than the rule really is (an expression not understood, an
    /// ipset, a mark). Empty means exact.
    std::vector<std::string> uncertain;

    static AddressScope everything();
    /// Constraint for a base chain of a table family: "ip" -> IPv4, "ip6" -> IPv6, "inet" -> both.
    static RuleConstraint for_family(Family f);
    static RuleConstraint for_both_families() { return RuleConstraint{}; }

    void restrict_daddr(const AddressScope& s) { daddr = daddr.intersected(s); }
    void restrict_protocols(bool allow_tcp, bool allow_udp) {
        tcp = tcp && allow_tcp;
        udp = udp && allow_udp;
    }
    void restrict_dports(const PortSet& p) { dports = dports.intersected(p); }
    void widen(std::string reason) { uncertain.push_back(std::move(reason)); }

    /// True when no packet can satisfy it any more (the path is dead).
    [[nodiscard]] bool impossible() const;
    /// True when p holds no port other than 0, which is never a service port: impossible()'s test
    /// of the ports, shared with the interpreter's per-test tuples.
    [[nodiscard]] static bool no_service_port(const PortSet& p) {
        // Ranges are sorted: only port 0 is left iff the highest range ends at 0.
        return p.empty() || p.ranges().back().last == 0;
    }
    /// This constraint minus the packets of box (only box's daddr, protocols and ports count), as
    /// up to three disjoint constraints: outside box's addresses; inside them but outside its
    /// protocols; inside both but outside its ports. Impossible pieces are left out; each piece
    /// keeps this constraint's reasons.
    [[nodiscard]] std::vector<RuleConstraint> subtracted(const RuleConstraint& box) const;
    /// Appends one claim per remaining protocol to out, ports limited to 1-65535 (port 0 is
    /// never a service port). Certainty is uncertain iff any reason was recorded; the reasons go
    /// to origin.reason. Appended, not returned: the interpreters collect every rule's claims in
    /// one list, and a vector per rule was an allocation per rule.
    void append_claims(RuleOrigin origin, std::vector<Claim>& out) const;
};

/// Folds claims that came from one rule over several disjoint paths back together: two claims
/// with the same protocol, certainty and origin (every RuleOrigin field) whose addresses or whose
/// ports are equal become one. Order is kept (a merged claim stays where the first one was).
void merge_claims(std::vector<Claim>& claims);

}  // namespace vipportd::agent
