#pragma once
// Legacy iptables scenarios shared by the unit tests (which replay the blobs recorded from them,
// tests/fixtures/ipt/<name>.txt) and the netns tests (which run the commands against the real
// kernel): the commands, and the exact claims IptLegacySource must produce for them, in order.

#include <string>
#include <variant>
#include <vector>

#include "agent/model.hpp"

namespace vipportd::test::ipt {

struct Scenario {
    std::string name;  // fixture file tests/fixtures/ipt/<name>.txt
    std::vector<std::string> commands;
    std::vector<std::string> claims;  // describe() of every claim, in order
};

/// "ip nat PREROUTING#1 DNAT '10.0.0.1:8080' TCP 80 @ 1.2.3.4 exact path=PREROUTING"
/// (+ " comment='...'" and " reason='...'" when set).
inline std::string describe(const agent::Claim& c) {
    const auto& o = std::get<agent::RuleOrigin>(c.origin);
    std::string path;
    const agent::RuleSite& at = o.at();
    for (const auto& p : at.path) {
        path += (path.empty() ? "" : ">") + p;
    }
    std::string s =
        at.family + " " + at.table + " " + at.chain + "#" + std::to_string(o.handle) + " " +
        o.kind + " '" + o.target + "' " + std::string(agent::to_string(c.protocol)) + " " +
        c.ports.to_string() + " @ " + c.scope.to_string() +
        (c.certainty == agent::Certainty::exact ? " exact" : " uncertain") + " path=" + path;
    if (!o.comment.empty()) {
        s += " comment='" + o.comment + "'";
    }
    if (!o.reason.empty()) {
        s += " reason='" + o.reason + "'";
    }
    if (at.source != "iptables-legacy") {
        s += " source=" + at.source;
    }
    return s;
}

inline std::vector<std::string> describe(const std::vector<agent::Claim>& claims) {
    std::vector<std::string> out;
    for (const auto& c : claims) {
        out.push_back(describe(c));
    }
    return out;
}

inline const std::vector<Scenario>& scenarios() {
    static const std::vector<Scenario> all{
        // kernel.md §3.2, verbatim.
        {"kernel_md_3_2",
         {
             "iptables-legacy -t nat -A PREROUTING -d 1.2.3.4 -p tcp --dport 80 -j DNAT "
             "--to-destination 10.0.0.1:8080",
             "iptables-legacy -t nat -N SVC",
             "iptables-legacy -t nat -A PREROUTING -d 1.2.3.4 -p tcp -m multiport --dports "
             "443,8000:8100 -j SVC",
             "iptables-legacy -t nat -A PREROUTING -d 1.2.3.4 -p udp --dport 53 -j REDIRECT "
             "--to-ports 5353",
             "iptables-legacy -t nat -A SVC -j DNAT --to-destination 10.0.0.2",
         },
         {
             "ip nat PREROUTING#1 DNAT '10.0.0.1:8080' TCP 80 @ 1.2.3.4 exact path=PREROUTING",
             "ip nat SVC#1 DNAT '10.0.0.2' TCP 443,8000-8100 @ 1.2.3.4 exact path=PREROUTING>SVC",
             "ip nat PREROUTING#3 REDIRECT ':5353' UDP 53 @ 1.2.3.4 exact path=PREROUTING",
         }},
        // zstack-api.md §14.2 rule shapes (direct iptables mode), plus OUTPUT and TPROXY.
        {"zstack_nat",
         {
             "ipset create eip-group hash:ip",
             "iptables-legacy -t nat -A PREROUTING -d 1.2.3.4/32 -p tcp -m tcp --dport 80 -m "
             "comment --comment 'pf rule@PREROUTING' -j DNAT --to-destination 10.0.0.5:8080",
             "iptables-legacy -t nat -A PREROUTING -d 1.2.3.4/32 -p udp -m multiport --dports "
             "1000:2000 -m comment --comment 'pf rule@PREROUTING' -j DNAT --to-destination "
             "10.0.0.5:1000-2000",
             "iptables-legacy -t nat -A PREROUTING -d 1.2.3.5/32 -m comment --comment "
             "'eip rule@PREROUTING' -j DNAT --to-destination 10.0.0.9",
             "iptables-legacy -t nat -A PREROUTING -d 1.2.3.6/32 -p udp -m udp --dport 53 -j "
             "REDIRECT --to-ports 5353",
             "iptables-legacy -t nat -A PREROUTING -d 1.2.3.7/32 -m set --match-set eip-group src "
             "-j DNAT --to-destination 10.0.0.10",
             "iptables-legacy -t nat -A POSTROUTING -s 10.0.0.9/32 -j SNAT --to-source 1.2.3.5",
             "iptables-legacy -t nat -A OUTPUT -d 1.2.3.4/32 -p tcp -m tcp --dport 81 -j DNAT "
             "--to-destination 10.0.0.5:81",
             "iptables-legacy -t mangle -A PREROUTING -d 1.2.3.4/32 -p tcp -m tcp --dport 443 -j "
             "TPROXY --on-port 8888 --on-ip 127.0.0.1 --tproxy-mark 0x1/0x1",
         },
         {
             "ip nat PREROUTING#1 DNAT '10.0.0.5:8080' TCP 80 @ 1.2.3.4 exact path=PREROUTING "
             "comment='pf rule@PREROUTING'",
             "ip nat PREROUTING#2 DNAT '10.0.0.5:1000-2000' UDP 1000-2000 @ 1.2.3.4 exact "
             "path=PREROUTING comment='pf rule@PREROUTING'",
             "ip nat PREROUTING#3 DNAT '10.0.0.9' TCP 1-65535 @ 1.2.3.5 exact path=PREROUTING "
             "comment='eip rule@PREROUTING'",
             "ip nat PREROUTING#3 DNAT '10.0.0.9' UDP 1-65535 @ 1.2.3.5 exact path=PREROUTING "
             "comment='eip rule@PREROUTING'",
             "ip nat PREROUTING#4 REDIRECT ':5353' UDP 53 @ 1.2.3.6 exact path=PREROUTING",
             "ip nat PREROUTING#5 DNAT '10.0.0.10' TCP 1-65535 @ 1.2.3.7 uncertain "
             "path=PREROUTING reason='ip nat PREROUTING rule 5: match 'set' (rev 4) not "
             "interpreted'",
             "ip nat PREROUTING#5 DNAT '10.0.0.10' UDP 1-65535 @ 1.2.3.7 uncertain "
             "path=PREROUTING reason='ip nat PREROUTING rule 5: match 'set' (rev 4) not "
             "interpreted'",
             "ip nat OUTPUT#1 DNAT '10.0.0.5:81' TCP 81 @ 1.2.3.4 exact path=OUTPUT",
             "ip mangle PREROUTING#1 TPROXY '127.0.0.1:8888' TCP 443 @ 1.2.3.4 exact "
             "path=PREROUTING",
         }},
        // User chains: ACCEPT before a DNAT, RETURN on an inverted port range, nested jumps,
        // goto, and an uninterpreted match (addrtype).
        {"chains",
         {
             "iptables-legacy -t nat -N SVC",
             "iptables-legacy -t nat -N INNER",
             "iptables-legacy -t nat -A PREROUTING -d 1.2.3.4/32 -p tcp -m tcp --dport 22 -j "
             "ACCEPT",
             "iptables-legacy -t nat -A PREROUTING -d 1.2.3.0/24 -j SVC",
             "iptables-legacy -t nat -A PREROUTING -d 5.6.7.8/32 -j INNER",
             "iptables-legacy -t nat -A PREROUTING -d 5.6.7.8/32 -p tcp -j DNAT --to-destination "
             "10.0.0.4",
             "iptables-legacy -t nat -A PREROUTING -d 5.6.7.9/32 -g INNER",
             "iptables-legacy -t nat -A PREROUTING -d 5.6.7.9/32 -j DNAT --to-destination "
             "10.0.0.4",
             "iptables-legacy -t nat -A PREROUTING -d 1.2.3.4/32 -j DNAT --to-destination "
             "10.0.0.3",
             "iptables-legacy -t nat -A PREROUTING -p tcp -m tcp --dport 25 -m addrtype "
             "--dst-type LOCAL -j REDIRECT --to-ports 2525",
             "iptables-legacy -t nat -A SVC -p tcp -m tcp ! --dport 8000:8999 -j RETURN",
             "iptables-legacy -t nat -A SVC -d 1.2.3.4/32 -j INNER",
             "iptables-legacy -t nat -A SVC -p tcp -j DNAT --to-destination 10.0.0.2",
             "iptables-legacy -t nat -A INNER -p tcp -m tcp --dport 8080 -j REDIRECT --to-ports "
             "18080",
         },
         {
             "ip nat INNER#1 REDIRECT ':18080' TCP 8080 @ 1.2.3.4 exact path=PREROUTING>SVC>INNER",
             "ip nat SVC#3 DNAT '10.0.0.2' TCP 8000-8999 @ 1.2.3.0-1.2.3.3, 1.2.3.5-1.2.3.255 "
             "exact path=PREROUTING>SVC",
             "ip nat SVC#3 DNAT '10.0.0.2' TCP 8000-8079,8081-8999 @ 1.2.3.4 exact "
             "path=PREROUTING>SVC",
             "ip nat INNER#1 REDIRECT ':18080' TCP 8080 @ 5.6.7.8-5.6.7.9 exact "
             "path=PREROUTING>INNER",
             "ip nat PREROUTING#4 DNAT '10.0.0.4' TCP 1-8079,8081-65535 @ 5.6.7.8 exact "
             "path=PREROUTING",
             "ip nat PREROUTING#7 DNAT '10.0.0.3' TCP 1-21,23-7999,9000-65535 @ 1.2.3.4 exact "
             "path=PREROUTING",
             "ip nat PREROUTING#7 DNAT '10.0.0.3' UDP 1-65535 @ 1.2.3.4 exact path=PREROUTING",
             "ip nat PREROUTING#8 REDIRECT ':2525' TCP 25 @ 0.0.0.0-1.2.3.3, 1.2.3.5-5.6.7.7, "
             "5.6.7.10-255.255.255.255 uncertain path=PREROUTING reason='ip nat PREROUTING rule "
             "8: match 'addrtype' (rev 1) not interpreted'",
         }},
        // ip6tables: DNAT rev 2 with a port, REDIRECT, multiport, inverted destination and
        // protocol, TPROXY in mangle; and one IPv4 rule with an inverted port range.
        {"ip6",
         {
             "iptables-legacy -t nat -A PREROUTING -d 1.2.3.4/32 -p tcp -m tcp ! --dport 1:1023 "
             "-j REDIRECT --to-ports 3128",
             "ip6tables-legacy -t nat -A PREROUTING -d 2001:db8::1/128 -p tcp -m tcp --dport 80 "
             "-j DNAT --to-destination [2001:db8::5]:8080",
             "ip6tables-legacy -t nat -A PREROUTING -d 2001:db8::1/128 -p udp -m udp --dport 53 "
             "-j REDIRECT --to-ports 5353",
             "ip6tables-legacy -t nat -A PREROUTING -d 2001:db8::1/128 -p tcp -m multiport "
             "--dports 443,8000:8100 -j DNAT --to-destination 2001:db8::6",
             "ip6tables-legacy -t nat -A PREROUTING ! -d 2001:db8::/64 -p tcp -m tcp --dport 25 "
             "-j REDIRECT --to-ports 2525",
             "ip6tables-legacy -t nat -A PREROUTING -d 2001:db8::2/128 ! -p udp -j DNAT "
             "--to-destination 2001:db8::7",
             "ip6tables-legacy -t mangle -A PREROUTING -d 2001:db8::1/128 -p udp -m udp --dport "
             "443 -j TPROXY --on-port 8443",
         },
         {
             "ip nat PREROUTING#1 REDIRECT ':3128' TCP 1024-65535 @ 1.2.3.4 exact path=PREROUTING",
             "ip6 nat PREROUTING#1 DNAT '[2001:db8::5]:8080' TCP 80 @ 2001:db8::1 exact "
             "path=PREROUTING",
             "ip6 nat PREROUTING#2 REDIRECT ':5353' UDP 53 @ 2001:db8::1 exact path=PREROUTING",
             "ip6 nat PREROUTING#3 DNAT '2001:db8::6' TCP 443,8000-8100 @ 2001:db8::1 exact "
             "path=PREROUTING",
             "ip6 nat PREROUTING#4 REDIRECT ':2525' TCP 25 @ ::-2001:db7:ffff:ffff:ffff:ffff:ffff:"
             "ffff, 2001:db8:0:1::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff exact path=PREROUTING",
             "ip6 nat PREROUTING#5 DNAT '2001:db8::7' TCP 1-65535 @ 2001:db8::2 exact "
             "path=PREROUTING",
             "ip6 mangle PREROUTING#1 TPROXY ':8443' UDP 443 @ 2001:db8::1 exact path=PREROUTING",
         }},
    };
    return all;
}

}  // namespace vipportd::test::ipt
