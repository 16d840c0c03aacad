#pragma once
// nf_tables scenarios shared by the netns recorder (tests/netns/nft_record_test.cpp runs the
// commands in a fresh namespace, dumps the ruleset, compares the decoded rules with what
// `nft --debug=netlink` prints, and with VIPPORTD_RECORD_NFT=1 writes
// tests/fixtures/nft/<name>.txt) and the unit tests (which replay those fixtures through
// NftSource): the commands, and the exact claims interpret_nft must produce, in order
// (test::ipt::describe format).
//
// The encodings are those of kernel.md §2.4 (native nft, (a)-(q)) and §2.5 (iptables-nft, (A)-(I)),
// plus variants that exercise negation, chains and not-interpreted tests.

#include <string>
#include <vector>

namespace vipportd::test::nft {

struct Scenario {
    std::string name;  // tests/fixtures/nft/<name>.txt
    std::vector<std::string> commands;
    std::vector<std::string> claims;  // test::ipt::describe() of every claim, in order
};

inline const std::vector<Scenario>& scenarios() {
    static const std::vector<Scenario> all{
        // §2.4 (a)-(i) in an ip nat table, (q) tproxy in a filter chain at prerouting.
        {"native_ip",
         {R"(nft -f - <<'EOF'
table ip vipnat {
  set webports { type inet_service; elements = { 80, 443 } }
  set vipports { type ipv4_addr . inet_proto . inet_service; elements = { 1.2.3.4 . tcp . 8443 } }
  set vipranges { type ipv4_addr; flags interval; elements = { 1.2.3.0/28, 5.5.5.5-5.5.5.9 } }
  map portmap { type inet_service : ipv4_addr . inet_service; elements = { 9000 : 10.0.0.9 . 9090 } }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr 1.2.3.4 tcp dport 80 dnat to 10.0.0.5:8080
    ip daddr 1.2.3.4 tcp dport 1000-2000 dnat to 10.0.0.6
    ip daddr 1.2.3.4 udp dport { 53, 5353 } dnat to 10.0.0.7
    ip daddr 1.2.3.4 tcp dport @webports dnat to 10.0.0.8
    ip daddr . meta l4proto . th dport @vipports dnat to 10.0.0.10
    ip daddr @vipranges tcp dport 25 redirect to :2525
    ip daddr 1.2.3.4 dnat ip addr . port to tcp dport map @portmap
    ip daddr 1.2.3.4 meta l4proto { tcp, udp } th dport 7000 dnat to 10.0.0.11
    ip daddr 1.2.3.4 tcp dport != 22 counter
    ip daddr 1.2.3.5 tcp dport != 22 redirect to :3000 comment "not ssh"
  }
}
table ip mangle4 {
  chain pre {
    type filter hook prerouting priority mangle; policy accept;
    ip daddr 1.2.3.4 tcp dport 9999 tproxy to :8888
  }
}
EOF)"},
         {
             "ip vipnat prerouting#6 dnat '10.0.0.5:8080' TCP 80 @ 1.2.3.4 exact path=prerouting "
             "source=nftables",
             "ip vipnat prerouting#7 dnat '10.0.0.6' TCP 1000-2000 @ 1.2.3.4 exact "
             "path=prerouting source=nftables",
             "ip vipnat prerouting#9 dnat '10.0.0.7' UDP 53,5353 @ 1.2.3.4 exact path=prerouting "
             "source=nftables",
             // 80 went to 10.0.0.5 by handle 6 already: only 443 reaches this rule.
             "ip vipnat prerouting#10 dnat '10.0.0.8' TCP 443 @ 1.2.3.4 exact path=prerouting "
             "source=nftables",
             "ip vipnat prerouting#11 dnat '10.0.0.10' TCP 8443 @ 1.2.3.4 exact path=prerouting "
             "source=nftables",
             "ip vipnat prerouting#12 redirect ':2525' TCP 25 @ 1.2.3.0-1.2.3.15, 5.5.5.5-5.5.5.9 "
             "exact path=prerouting source=nftables",
             "ip vipnat prerouting#13 dnat '10.0.0.9:9090' TCP 9000 @ 1.2.3.4 exact "
             "path=prerouting source=nftables",
             "ip vipnat prerouting#15 dnat '10.0.0.11' TCP 7000 @ 1.2.3.4 exact path=prerouting "
             "source=nftables",
             "ip vipnat prerouting#15 dnat '10.0.0.11' UDP 7000 @ 1.2.3.4 exact path=prerouting "
             "source=nftables",
             // != 22, and 25 of 1.2.3.5 (inside 1.2.3.0/28) was redirected by handle 12.
             "ip vipnat prerouting#17 redirect ':3000' TCP 1-21,23-24,26-65535 @ 1.2.3.5 exact "
             "path=prerouting comment='not ssh' source=nftables",
             "ip mangle4 pre#2 tproxy ':8888' TCP 9999 @ 1.2.3.4 exact path=pre source=nftables",
         }},
        // §2.4 (j) and (k) verbatim in a filter table (accept claims nothing), and the same
        // shapes in an inet nat table: nfproto splits the families, a rule without an address
        // claims every address of both families.
        {"native_inet",
         {R"(nft -f - <<'EOF'
table inet filt {
  chain input {
    type filter hook input priority filter; policy accept;
    ip daddr 1.2.3.4 tcp dport 22 accept
    tcp dport 5000 ip daddr 1.2.3.4 accept
    meta nfproto ipv4 ip daddr 1.2.3.4 udp dport 123 accept
    ip6 daddr 2001:db8::1 tcp dport { 80, 443 } accept
  }
}
table inet vnat {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr 1.2.3.4 tcp dport 22 dnat ip to 10.0.0.1
    tcp dport 5000 ip daddr 1.2.3.4 dnat ip to 10.0.0.2:5001
    meta nfproto ipv4 ip daddr 1.2.3.4 udp dport 123 dnat ip to 10.0.0.3
    ip6 daddr 2001:db8::1 tcp dport { 80, 443 } dnat ip6 to [2001:db8::5]
    meta nfproto ipv6 ip6 daddr 2001:db8::/64 udp dport 53 redirect to :5353
    tcp dport 25 redirect to :2525
  }
}
EOF)"},
         {
             "inet vnat pre#2 dnat '10.0.0.1' TCP 22 @ 1.2.3.4 exact path=pre source=nftables",
             "inet vnat pre#3 dnat '10.0.0.2:5001' TCP 5000 @ 1.2.3.4 exact path=pre "
             "source=nftables",
             "inet vnat pre#4 dnat '10.0.0.3' UDP 123 @ 1.2.3.4 exact path=pre source=nftables",
             "inet vnat pre#6 dnat '2001:db8::5' TCP 80,443 @ 2001:db8::1 exact path=pre "
             "source=nftables",
             "inet vnat pre#7 redirect ':5353' UDP 53 @ 2001:db8::-2001:db8::ffff:ffff:ffff:ffff "
             "exact path=pre source=nftables",
             "inet vnat pre#8 redirect ':2525' TCP 25 @ 0.0.0.0/0, ::/0 exact path=pre "
             "source=nftables",
         }},
        // §2.4 (l): ip6 table, DNAT with port and redirect.
        {"native_ip6",
         {R"(nft -f - <<'EOF'
table ip6 v6nat {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip6 daddr 2001:db8::1 tcp dport 80 dnat to [2001:db8::5]:8080
    ip6 daddr 2001:db8::1 tcp dport 443 redirect to :8443
    ip6 daddr != 2001:db8::/32 udp dport 500-501 dnat to [2001:db8::6]
  }
  chain output {
    type nat hook output priority -100; policy accept;
    ip6 daddr 2001:db8::2 tcp dport 8080 redirect to :18080
  }
}
EOF)"},
         {
             "ip6 v6nat prerouting#3 dnat '[2001:db8::5]:8080' TCP 80 @ 2001:db8::1 exact "
             "path=prerouting source=nftables",
             "ip6 v6nat prerouting#4 redirect ':8443' TCP 443 @ 2001:db8::1 exact path=prerouting "
             "source=nftables",
             "ip6 v6nat prerouting#5 dnat '2001:db8::6' UDP 500-501 @ "
             "::-2001:db7:ffff:ffff:ffff:ffff:ffff:ffff, "
             "2001:db9::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff exact path=prerouting "
             "source=nftables",
             "ip6 v6nat output#6 redirect ':18080' TCP 8080 @ 2001:db8::2 exact path=output "
             "source=nftables",
         }},
        // §2.4 (m) kube-proxy nftables style (vmap of a concatenation, goto, jump), (n) pipapo,
        // (o) anonymous interval set and (p) anonymous verdict map, in filter chains (no claims)
        // and in a nat output chain.
        {"native_kube",
         {R"(nft -f - <<'EOF'
table ip kube {
  map service-ips {
    type ipv4_addr . inet_proto . inet_service : verdict
    elements = { 1.2.3.4 . tcp . 80 : goto svc-a, 1.2.3.5 . udp . 53 : goto svc-b }
  }
  set pipset {
    type ipv4_addr . inet_service; flags interval
    elements = { 1.2.3.4 . 80-90, 1.2.3.0/24 . 443 }
  }
  chain svc-a {
    meta l4proto tcp dnat to 10.0.0.20:8080
  }
  chain svc-b {
    meta l4proto udp dnat to 10.0.0.21
  }
  chain services {
    ip daddr . meta l4proto . th dport vmap @service-ips
  }
  chain nat-prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    jump services
  }
  chain filter-in {
    type filter hook input priority filter; policy accept;
    ip daddr . tcp dport @pipset accept
    tcp dport { 22, 8000-8100 } accept
    ip daddr 1.2.3.4 tcp dport vmap { 80 : accept, 81 : drop }
  }
  chain redirects {
    ip daddr . tcp dport @pipset redirect to :1
    tcp dport { 22, 8000-8100 } redirect to :2
  }
  chain nat-output {
    type nat hook output priority -100; policy accept;
    ip daddr 1.2.3.6 tcp dport vmap { 80 : jump redirects, 81 : drop, 82 : accept }
    ip daddr 1.2.3.4 jump redirects
  }
}
EOF)"},
         {
             "ip kube svc-a#10 dnat '10.0.0.20:8080' TCP 80 @ 1.2.3.4 exact "
             "path=nat-prerouting>services>svc-a source=nftables",
             "ip kube svc-b#11 dnat '10.0.0.21' UDP 53 @ 1.2.3.5 exact "
             "path=nat-prerouting>services>svc-b source=nftables",
             "ip kube redirects#19 redirect ':1' TCP 80-90,443 @ 1.2.3.4 exact "
             "path=nat-output>redirects source=nftables",
             "ip kube redirects#21 redirect ':2' TCP 22,8000-8100 @ 1.2.3.4 exact "
             "path=nat-output>redirects source=nftables",
         }},
        // §2.5 (A)-(D), (F), (I) verbatim, ZStack's comment shape (zstack-api.md §14.2), EIP,
        // NETMAP, SNAT and OUTPUT; and (G)'s other matches on a claiming path.
        {"iptables_nft",
         {
             "iptables-nft -t nat -A PREROUTING -d 1.2.3.4 -p tcp --dport 80 -j DNAT "
             "--to-destination 10.0.0.1:8080",
             "iptables-nft -t nat -A PREROUTING -d 1.2.3.4 -p tcp --dport 1000:2000 -j DNAT "
             "--to-destination 10.0.0.2",
             "iptables-nft -t nat -A PREROUTING -d 1.2.3.0/24 -p tcp --sport 1024:65535 --dport 25 "
             "-j DNAT --to-destination 10.0.0.5:2525",
             "iptables-nft -t nat -A PREROUTING -d 1.2.3.4 -p tcp -m multiport --dports "
             "80,443,8000:8100 -j DNAT --to-destination 10.0.0.3",
             "iptables-nft -t nat -A PREROUTING -d 1.2.3.4 -p udp --dport 53 -j REDIRECT "
             "--to-ports 5353",
             "iptables-nft -t nat -N KUBE-SVC-X",
             "iptables-nft -t nat -A PREROUTING -d 1.2.3.4/30 -p udp --dport 514 -j KUBE-SVC-X",
             "iptables-nft -t nat -A KUBE-SVC-X -p udp -j DNAT --to-destination "
             "10.0.0.10-10.0.0.12:1514-1520",
             "iptables-nft -t nat -N SVCR",
             "iptables-nft -t nat -A PREROUTING -d 1.2.3.6 -p tcp -j SVCR",
             "iptables-nft -t nat -A SVCR -p tcp ! --dport 1000:2000 -j RETURN",
             "iptables-nft -t nat -A SVCR -p tcp ! --dport 1500 -j REDIRECT --to-ports 3128",
             "iptables-nft -t nat -A PREROUTING -d 1.2.3.7/32 -p tcp -m tcp --dport 8080 -m "
             "comment "
             "--comment 'pf rule@PREROUTING' -j DNAT --to-destination 10.0.0.7:80",
             "iptables-nft -t nat -A PREROUTING -d 1.2.3.7/32 -p udp -m multiport --dports "
             "1000:2000 -m comment --comment 'pf rule@PREROUTING' -j DNAT --to-destination "
             "10.0.0.7:1000-2000",
             "iptables-nft -t nat -A PREROUTING -d 1.2.3.10/32 -m comment --comment "
             "'eip rule@PREROUTING' -j DNAT --to-destination 10.0.0.100",
             "iptables-nft -t nat -A PREROUTING -d 1.2.3.8 -p tcp --dport 9000 -m conntrack "
             "--ctstate NEW -j DNAT --to-destination 10.0.0.8",
             "iptables-nft -t nat -A PREROUTING -p tcp --dport 9001 -m addrtype --dst-type LOCAL "
             "-j "
             "REDIRECT --to-ports 9901",
             "iptables-nft -t nat -A PREROUTING -i eth0 -d 1.2.3.9 -p tcp --dport 9003 -j DNAT "
             "--to-destination 10.0.0.9",
             "iptables-nft -t nat -A PREROUTING ! -d 1.2.3.4 -p tcp --dport 9004 -j REDIRECT "
             "--to-ports 9904",
             "iptables-nft -t nat -A PREROUTING -d 1.2.3.4 -p tcp --syn --dport 9005 -j DNAT "
             "--to-destination 10.0.0.4",
             "iptables-nft -t nat -A PREROUTING -d 1.2.3.4 -p tcp -m tcp --tcp-option 2 --dport "
             "8500:8510 -j DNAT --to-destination 10.0.0.4",
             "iptables-nft -t nat -A PREROUTING -d 1.2.3.4 -p sctp --dport 3868 -j DNAT "
             "--to-destination 10.0.0.4",
             "iptables-nft -t nat -A PREROUTING -d 5.6.7.0/24 -j NETMAP --to 10.9.8.0/24",
             "iptables-nft -t nat -A POSTROUTING -s 10.0.0.0/8 -j SNAT --to-source 1.2.3.4",
             "iptables-nft -t nat -A OUTPUT -d 1.2.3.4 -p tcp --dport 7777 -j DNAT "
             "--to-destination 10.0.0.77",
             "iptables-nft -A INPUT -d 1.2.3.4 -p tcp --dport 22 -j ACCEPT",
             "iptables-nft -t mangle -A PREROUTING -d 1.2.3.4 -p tcp --dport 9999 -j TPROXY "
             "--on-port 8888 --on-ip 127.0.0.1 --tproxy-mark 0x1/0x1",
             "iptables-nft -t nat -A PREROUTING -p udp -m iprange --dst-range 1.2.3.20-1.2.3.30 "
             "--dport 9002 -j DNAT --to-destination 10.0.0.2",
             "iptables-nft -t nat -A PREROUTING -d 1.2.3.4 -p tcp --tcp-flags SYN,ACK SYN --dport "
             "9006 -j DNAT --to-destination 10.0.0.4",
             "iptables-nft -t nat -A PREROUTING -d 1.2.3.11 -p tcp -m tcp -j DNAT "
             "--to-destination 10.0.0.11",
         },
         {
             "ip nat PREROUTING#2 DNAT '10.0.0.1:8080' TCP 80 @ 1.2.3.4 exact path=PREROUTING "
             "source=nftables",
             "ip nat PREROUTING#3 DNAT '10.0.0.2' TCP 1000-2000 @ 1.2.3.4 exact path=PREROUTING "
             "source=nftables",
             // --sport narrows the rule, not the claim: exact, but not subtracted.
             "ip nat PREROUTING#4 DNAT '10.0.0.5:2525' TCP 25 @ 1.2.3.0-1.2.3.255 exact "
             "path=PREROUTING source=nftables",
             // 80 went to 10.0.0.1 by #2.
             "ip nat PREROUTING#5 DNAT '10.0.0.3' TCP 443,8000-8100 @ 1.2.3.4 exact "
             "path=PREROUTING source=nftables",
             "ip nat PREROUTING#6 REDIRECT ':5353' UDP 53 @ 1.2.3.4 exact path=PREROUTING "
             "source=nftables",
             "ip nat KUBE-SVC-X#9 DNAT '10.0.0.10-10.0.0.12:1514-1520' UDP 514 @ 1.2.3.4-1.2.3.7 "
             "exact path=PREROUTING>KUBE-SVC-X source=nftables",
             // ! --dport 1000:2000 returned, then ! --dport 1500.
             "ip nat SVCR#13 REDIRECT ':3128' TCP 1000-1499,1501-2000 @ 1.2.3.6 exact "
             "path=PREROUTING>SVCR source=nftables",
             "ip nat PREROUTING#14 DNAT '10.0.0.7:80' TCP 8080 @ 1.2.3.7 exact path=PREROUTING "
             "comment='pf rule@PREROUTING' source=nftables",
             "ip nat PREROUTING#15 DNAT '10.0.0.7:1000-2000' UDP 1000-2000 @ 1.2.3.7 exact "
             "path=PREROUTING comment='pf rule@PREROUTING' source=nftables",
             "ip nat PREROUTING#16 DNAT '10.0.0.100' TCP 1-65535 @ 1.2.3.10 exact path=PREROUTING "
             "comment='eip rule@PREROUTING' source=nftables",
             "ip nat PREROUTING#16 DNAT '10.0.0.100' UDP 1-65535 @ 1.2.3.10 exact path=PREROUTING "
             "comment='eip rule@PREROUTING' source=nftables",
             "ip nat PREROUTING#17 DNAT '10.0.0.8' TCP 9000 @ 1.2.3.8 uncertain path=PREROUTING "
             "reason='ip nat PREROUTING handle 17: match 'conntrack' (rev 3) not interpreted' "
             "source=nftables",
             // No address: every IPv4 address but 1.2.3.10, whose TCP the EIP (#16) took.
             "ip nat PREROUTING#18 REDIRECT ':9901' TCP 9001 @ 0.0.0.0-1.2.3.9, "
             "1.2.3.11-255.255.255.255 uncertain path=PREROUTING reason='ip nat PREROUTING handle "
             "18: match 'addrtype' (rev 1) not interpreted' source=nftables",
             "ip nat PREROUTING#19 DNAT '10.0.0.9' TCP 9003 @ 1.2.3.9 uncertain path=PREROUTING "
             "reason='ip nat PREROUTING handle 19: meta iifname test not interpreted' "
             "source=nftables",
             // ! -d 1.2.3.4; the uncertain #18 and #19 are not subtracted.
             "ip nat PREROUTING#20 REDIRECT ':9904' TCP 9004 @ 0.0.0.0-1.2.3.3, 1.2.3.5-1.2.3.9, "
             "1.2.3.11-255.255.255.255 exact path=PREROUTING source=nftables",
             // --syn, --tcp-option: the tcp flags/options narrow the rule, not the claim.
             "ip nat PREROUTING#21 DNAT '10.0.0.4' TCP 9005 @ 1.2.3.4 exact path=PREROUTING "
             "source=nftables",
             "ip nat PREROUTING#22 DNAT '10.0.0.4' TCP 8500-8510 @ 1.2.3.4 exact path=PREROUTING "
             "source=nftables",
             // The sctp DNAT (#23) claims nothing; TCP 9004 of 5.6.7.0/24 went to #20.
             "ip nat PREROUTING#24 NETMAP '10.9.8.0-10.9.8.255' UDP 1-65535 @ 5.6.7.0-5.6.7.255 "
             "exact path=PREROUTING source=nftables",
             "ip nat PREROUTING#24 NETMAP '10.9.8.0-10.9.8.255' TCP 1-9003,9005-65535 @ "
             "5.6.7.0-5.6.7.255 exact path=PREROUTING source=nftables",
             // iprange is not interpreted: every address the EIP and NETMAP left.
             "ip nat PREROUTING#29 DNAT '10.0.0.2' UDP 9002 @ 0.0.0.0-1.2.3.9, 1.2.3.11-5.6.6.255, "
             "5.6.8.0-255.255.255.255 uncertain path=PREROUTING reason='ip nat PREROUTING handle "
             "29: match 'iprange' (rev 1) not interpreted' source=nftables",
             "ip nat PREROUTING#30 DNAT '10.0.0.4' TCP 9006 @ 1.2.3.4 exact path=PREROUTING "
             "source=nftables",
             // -m tcp without ports: the whole protocol, but for what #20 took.
             "ip nat PREROUTING#31 DNAT '10.0.0.11' TCP 1-9003,9005-65535 @ 1.2.3.11 exact "
             "path=PREROUTING source=nftables",
             "ip nat OUTPUT#28 DNAT '10.0.0.77' TCP 7777 @ 1.2.3.4 exact path=OUTPUT "
             "source=nftables",
             "ip mangle PREROUTING#2 TPROXY '127.0.0.1:8888' TCP 9999 @ 1.2.3.4 exact "
             "path=PREROUTING source=nftables",
         }},
        // §2.5 (H) and the multiport form of ip6tables-nft.
        {"ip6tables_nft",
         {
             "ip6tables-nft -t nat -A PREROUTING -d 2001:db8::1 -p tcp --dport 80 -j DNAT "
             "--to-destination [2001:db8::5]:8080",
             "ip6tables-nft -A INPUT -d 2001:db8::1 -p tcp -m multiport --dports 80,443 -j ACCEPT",
             "ip6tables-nft -t nat -A PREROUTING -d 2001:db8::1 -p tcp -m multiport --dports "
             "1000:2000 -j DNAT --to-destination [2001:db8::6]:1000-2000",
             "ip6tables-nft -t nat -A PREROUTING -d 2001:db8::2 -p udp --dport 53 -j REDIRECT "
             "--to-ports 5353",
             "ip6tables-nft -t nat -A PREROUTING -d 2001:db8::/64 -p udp -m multiport ! --dports "
             "1:1023 -j DNAT --to-destination 2001:db8::7",
         },
         {
             "ip6 nat PREROUTING#2 DNAT '[2001:db8::5]:8080' TCP 80 @ 2001:db8::1 exact "
             "path=PREROUTING source=nftables",
             "ip6 nat PREROUTING#3 DNAT '[2001:db8::6]:1000-2000' TCP 1000-2000 @ 2001:db8::1 "
             "exact path=PREROUTING source=nftables",
             "ip6 nat PREROUTING#4 REDIRECT ':5353' UDP 53 @ 2001:db8::2 exact path=PREROUTING "
             "source=nftables",
             "ip6 nat PREROUTING#5 DNAT '2001:db8::7' UDP 1024-65535 @ "
             "2001:db8::-2001:db8::ffff:ffff:ffff:ffff exact path=PREROUTING source=nftables",
         }},
    };
    return all;
}

}  // namespace vipportd::test::nft
