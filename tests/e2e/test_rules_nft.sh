#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# e2e: netfilter claims from native nftables rules (written by the real `nft -f`), combined with
# real sockets in one answer, and rule changes seen by the next query without a restart.
#
#   bash tests/e2e/test_rules_nft.sh /path/to/vipportd      (root; needs nft)
#
# What counts as a claim (agent/nft_interpreter.hpp, kernel.md §2.8): a DNAT or REDIRECT in a nat
# chain reached from the prerouting (or output) hook, or a tproxy at prerouting, claims every
# (destination address, protocol, destination port) it can rewrite, minus what earlier rules on the
# way accept or return; a rule with no destination address claims the ports on every address of
# its family; filter verdicts (accept) and dormant tables claim nothing. Port 0 is never listed.
# Sockets count as in test_usedports.sh.
#
# Namespace layout: veth vip0 <-> peer0, both ends inside the namespace.
#   vip0  192.0.2.10/24  VIP A (uuid A): port forwarding, DNS redirect, kube services, sockets
#         192.0.2.20/24  VIP B (uuid B): EIP, whole-IP DNAT
#         2001:db8::10/64 VIP 6 (uuid V6): ip6 DNAT, inet ipv6 DNAT, a socket
# Sockets held by vipportd_holdport:
#   tcp 192.0.2.10:22, tcp 192.0.2.10:80 (also DNATed: listed once), udp 192.0.2.10:123,
#   tcp [2001:db8::10]:443
# Table `ip more` adds further shapes on 192.0.2.50-192.0.2.160, queried as literal addresses.
# The daemon listens on 127.0.0.1:18080 only.

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
e2e_require_root
command -v nft >/dev/null || e2e_die "nft (package nftables) is required"

A=5b0c6f3e2d1a49878c7e6f5d4c3b2a19
B=c4d3e2f1a0b94c8d7e6f5a4b3c2d1e0f
V6=0f1e2d3c4b5a69788796a5b4c3d2e1f0

e2e_netns_create NS
e2e_veth "$NS" vip0 peer0
e2e_addr "$NS" vip0 192.0.2.10/24
e2e_addr "$NS" vip0 192.0.2.20/24
e2e_addr "$NS" vip0 2001:db8::10/64

e2e_hold "$NS" tcp:192.0.2.10:22 tcp:192.0.2.10:80 udp:192.0.2.10:123 'tcp:[2001:db8::10]:443'

# The ruleset, one `nft -f` transaction. ZStack itself writes only iptables rules (zstack-api.md
# §14.1); these are the same services in native syntax (kernel.md §2.4), plus the kube-proxy
# nftables layout of §2.4 (m).
RULES=$E2E_TMP/rules.nft
cat >"$RULES" <<'EOF'
table ip zs_nat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		# port forwarding, single port and range (§2.4 a, b)
		ip daddr 192.0.2.10 tcp dport 80 dnat to 10.0.0.5:8080 comment "pf rule@PREROUTING"
		ip daddr 192.0.2.10 tcp dport 1000-2000 dnat to 10.0.0.6:1000-2000 comment "pf rule@PREROUTING"
		ip daddr 192.0.2.10 udp dport 5000-5002 dnat to 10.0.0.6
		# DNS: udp 53 redirected to a local resolver
		ip daddr 192.0.2.10 udp dport 53 redirect to :5353
		# EIP: no protocol, no port: the whole IP (zstack-api.md §14.2)
		ip daddr 192.0.2.20 dnat to 10.0.0.7 comment "eip rule@PREROUTING"
	}
}
table ip kube {
	map service-ips {
		type ipv4_addr . inet_proto . inet_service : verdict
		elements = { 192.0.2.10 . tcp . 443 : goto svc-a,
			     192.0.2.10 . udp . 8053 : goto svc-b,
			     198.51.100.99 . tcp . 4444 : goto svc-a }
	}
	chain svc-a {
		meta l4proto tcp dnat to 10.0.0.20:8443
	}
	chain svc-b {
		meta l4proto udp dnat to 10.0.0.21:53
	}
	chain services {
		ip daddr . meta l4proto . th dport vmap @service-ips
	}
	chain nat-prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump services
	}
}
table inet mixed {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		meta nfproto ipv4 ip daddr 192.0.2.10 tcp dport 3306 dnat ip to 10.0.0.8
		meta nfproto ipv6 ip6 daddr 2001:db8::10 udp dport 4500 dnat ip6 to [2001:db8::8]
		# no destination address: every IPv4 address, no IPv6 one
		meta nfproto ipv4 tcp dport 2222 redirect to :22
	}
}
table ip6 v6nat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip6 daddr 2001:db8::10 tcp dport 80 dnat to [2001:db8::5]:8080
		ip6 daddr 2001:db8::10 tcp dport { 8000-8002, 9000 } dnat to [2001:db8::5]
	}
}
table ip filt {
	chain input {
		type filter hook input priority filter; policy accept;
		ip daddr 192.0.2.10 tcp dport 7272 accept
	}
}
# More native shapes (kernel.md §2.4 d, f, g, h, i, n, q) and chain-walk semantics, each on its
# own address (queried as literals below).
table ip more {
	set webports {
		type inet_service
		elements = { 8080, 8443 }
	}
	set vipranges {
		type ipv4_addr
		flags interval
		elements = { 192.0.2.96/28, 192.0.2.120-192.0.2.122 }
	}
	set pipset {
		type ipv4_addr . inet_service
		flags interval
		elements = { 192.0.2.90 . 7000-7010, 192.0.2.88/30 . 7100 }
	}
	map portmap {
		type inet_service : ipv4_addr . inet_service
		elements = { 9000 : 10.0.0.9 . 9090 }
	}
	chain sub {
		tcp dport != 25 return
		dnat to 10.0.0.50
	}
	chain g60 {
		tcp dport 30 dnat to 10.0.0.60
	}
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 192.0.2.50 jump sub
		ip daddr 192.0.2.50 tcp dport 26 dnat to 10.0.0.51
		ip daddr 192.0.2.60 goto g60
		ip daddr 192.0.2.60 tcp dport 31 dnat to 10.0.0.61
		ip daddr 192.0.2.70 tcp dport 22 accept
		ip daddr 192.0.2.70 dnat to 10.0.0.70
		ip daddr 192.0.2.80 tcp dport @webports dnat to 10.0.0.80
		ip daddr @vipranges tcp dport 25 redirect to :2525
		ip daddr . tcp dport @pipset dnat to 10.0.0.90
		ip daddr 192.0.2.130 dnat ip addr . port to tcp dport map @portmap
		ip daddr 192.0.2.140 udp dport != 53 dnat to 10.0.0.140
		ip daddr 192.0.2.150 meta l4proto { tcp, udp } th dport 7000 dnat to 10.0.0.11
	}
	chain mangle-pre {
		type filter hook prerouting priority mangle; policy accept;
		ip daddr 192.0.2.160 tcp dport 9999 tproxy to :8888
	}
}
table ip sleeping {
	flags dormant
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 192.0.2.10 tcp dport 6666 dnat to 10.0.0.66
	}
}
EOF
ip netns exec "$NS" nft -f "$RULES"

CFG=$(e2e_config vipportd.toml <<EOF
listen = ["127.0.0.1:$E2E_PORT"]
log_level = "debug"

[[vip]]
uuid = "$A"
ip = "192.0.2.10"

[[vip]]
uuid = "$B"
ip = "192.0.2.20"

[[vip]]
uuid = "$V6"
ip = "2001:db8::10"
EOF
)
e2e_daemon_start "$NS" "$CFG"
DAEMON=$E2E_DAEMON_PID

# ---- VIP A: port forwarding, DNS, kube services, inet, and sockets in one answer ----------------
# TCP: sockets 22 and 80; zs_nat 80 (PF single port, the same port as the socket: listed once) and
#      1000-2000 (PF range); kube 443 (vmap element 192.0.2.10 . tcp . 443 -> goto svc-a, which
#      DNATs tcp); inet 3306 (nfproto ipv4) and 2222 (no address: every IPv4 address).
#      Not 7272 (filter accept, no rewrite), not 6666 (dormant table).
A_TCP=(22 80 443 1000-2000 2222 3306)
expect_used_ports "VIP A TCP (sockets + nft)" "$NS" "$A" TCP "${A_TCP[@]}"
# UDP: socket 123; zs_nat 53 (redirect) and 5000-5002; kube 8053 (element 192.0.2.10 . udp . 8053
#      -> goto svc-b, which DNATs udp). The inet redirect of 2222 is tcp only.
A_UDP=(53 123 5000-5002 8053)
expect_used_ports "VIP A UDP (sockets + nft)" "$NS" "$A" UDP "${A_UDP[@]}"
# The small body pinned byte for byte in a golden file as well.
e2e_get "$NS" "/zstack/v1/vips/$A/usedports?protocol=UDP"
expect_json "VIP A UDP (golden)" rules/nft_vip_a_udp.json

# ---- VIP B: EIP, every port of both protocols ---------------------------------------------------
# `ip daddr 192.0.2.20 dnat to 10.0.0.7` has no l4proto and no port test: TCP and UDP 1-65535
# (the address-less tcp 2222 falls inside).
for proto in TCP UDP; do
    expect_used_ports "VIP B $proto (EIP whole-IP DNAT)" "$NS" "$B" "$proto" 1-65535
    expect_eq "VIP B $proto: number of ports" 65535 "$(e2e_body_ports | wc -l)"
done

# ---- IPv6 VIP: ip6 table and inet nfproto ipv6 ------------------------------------------------
# TCP: socket 443; v6nat 80 and the anonymous set { 8000-8002, 9000 }. Not 2222 (nfproto ipv4).
expect_used_ports "IPv6 VIP TCP (socket + ip6 dnat)" "$NS" "$V6" TCP 80 443 8000-8002 9000
e2e_get "$NS" "/zstack/v1/vips/$V6/usedports?protocol=TCP"
expect_json "IPv6 VIP TCP (golden)" rules/nft_vip6_tcp.json
# UDP: inet 4500 (nfproto ipv6, ip6 daddr 2001:db8::10).
expect_used_ports "IPv6 VIP UDP (inet nfproto ipv6)" "$NS" "$V6" UDP 4500

# ---- literal addresses that are no VIP of the config ------------------------------------------
# 198.51.100.99: the kube element for tcp 4444, plus the address-less 2222. UDP: nothing.
expect_used_ports "198.51.100.99 TCP (kube element, no-address rule)" "$NS" 198.51.100.99 TCP \
    2222 4444
expect_used_ports "198.51.100.99 UDP" "$NS" 198.51.100.99 UDP
# 198.51.100.7: only the address-less inet redirect of tcp 2222.
expect_used_ports "198.51.100.7 TCP (no-address rule only)" "$NS" 198.51.100.7 TCP 2222
# 2001:db8::99: the address-less rule is IPv4 only; nothing else names it.
expect_used_ports "2001:db8::99 TCP (nothing)" "$NS" 2001:db8::99 TCP

# ---- more native shapes and chain-walk semantics (table ip more), by literal address ----------
# Every IPv4 TCP answer also holds tcp 2222: the inet table's address-less redirect (see above).
ANY4=2222
# 192.0.2.50: `jump sub`; sub returns tcp other than 25 to pre and DNATs the rest (tcp 25, all UDP);
#   back in pre tcp 26 is DNATed. TCP 25-26, UDP 1-65535.
expect_used_ports "return resumes the caller: 192.0.2.50 TCP" "$NS" 192.0.2.50 TCP 25-26 "$ANY4"
expect_used_ports "return resumes the caller: 192.0.2.50 UDP" "$NS" 192.0.2.50 UDP 1-65535
# 192.0.2.60: `goto g60` takes every packet; g60 DNATs tcp 30, then its end ends pre (a goto does
#   not come back): the tcp 31 rule is unreachable.
expect_used_ports "goto never returns: 192.0.2.60 TCP" "$NS" 192.0.2.60 TCP 30 "$ANY4"
expect_used_ports "goto never returns: 192.0.2.60 UDP" "$NS" 192.0.2.60 UDP
# 192.0.2.70: tcp 22 accepted before the whole-IP DNAT (2222 lies in the TCP range).
expect_used_ports "accept before dnat: 192.0.2.70 TCP" "$NS" 192.0.2.70 TCP 1-21 23-65535
expect_used_ports "accept before dnat: 192.0.2.70 UDP" "$NS" 192.0.2.70 UDP 1-65535
# 192.0.2.80: named set @webports { 8080, 8443 }.
expect_used_ports "named set: 192.0.2.80 TCP" "$NS" 192.0.2.80 TCP 8080 8443 "$ANY4"
# @vipranges { 192.0.2.96/28, 192.0.2.120-192.0.2.122 } (interval set on the address): tcp 25 on
#   .96-.111 and .120-.122, at both ends of each interval; nothing just outside.
for addr in 192.0.2.96 192.0.2.111 192.0.2.120 192.0.2.122; do
    expect_used_ports "interval address set: $addr TCP" "$NS" "$addr" TCP 25 "$ANY4"
done
for addr in 192.0.2.95 192.0.2.112 192.0.2.119 192.0.2.123; do
    expect_used_ports "interval address set: $addr TCP (outside)" "$NS" "$addr" TCP "$ANY4"
done
# @pipset { 192.0.2.90 . 7000-7010, 192.0.2.88/30 . 7100 } (concatenated intervals): .90 gets
#   7000-7010 and 7100 (.88/30 = .88-.91), .89 only 7100, .92 nothing.
expect_used_ports "concatenated interval set: 192.0.2.90 TCP" "$NS" 192.0.2.90 TCP 7000-7010 7100 \
    "$ANY4"
expect_used_ports "concatenated interval set: 192.0.2.89 TCP" "$NS" 192.0.2.89 TCP 7100 "$ANY4"
expect_used_ports "concatenated interval set: 192.0.2.92 TCP" "$NS" 192.0.2.92 TCP "$ANY4"
# 192.0.2.130: `dnat ip addr . port to tcp dport map @portmap`, keys { 9000 }: TCP 9000.
expect_used_ports "dnat through a map: 192.0.2.130 TCP" "$NS" 192.0.2.130 TCP 9000 "$ANY4"
expect_used_ports "dnat through a map: 192.0.2.130 UDP" "$NS" 192.0.2.130 UDP
# 192.0.2.140: `udp dport != 53`: every UDP port but 53; no TCP.
expect_used_ports "negated port: 192.0.2.140 UDP" "$NS" 192.0.2.140 UDP 1-52 54-65535
expect_used_ports "negated port: 192.0.2.140 TCP" "$NS" 192.0.2.140 TCP "$ANY4"
# 192.0.2.150: `meta l4proto { tcp, udp } th dport 7000`: 7000 of both.
expect_used_ports "l4proto set + th dport: 192.0.2.150 TCP" "$NS" 192.0.2.150 TCP 7000 "$ANY4"
expect_used_ports "l4proto set + th dport: 192.0.2.150 UDP" "$NS" 192.0.2.150 UDP 7000
# 192.0.2.160: tproxy of tcp 9999 in a prerouting filter chain.
expect_used_ports "tproxy: 192.0.2.160 TCP" "$NS" 192.0.2.160 TCP 9999 "$ANY4"

# ---- changes are seen by the next query, without a restart --------------------------------------
nft_in() { ip netns exec "$NS" nft "$@"; }

# A new PF rule: tcp 6000 joins VIP A's list.
nft_in add rule ip zs_nat prerouting ip daddr 192.0.2.10 tcp dport 6000 dnat to 10.0.0.9 \
    comment '"e2e added"'
expect_used_ports "after nft add rule (tcp 6000)" "$NS" "$A" TCP "${A_TCP[@]}" 6000
# ... and leaves it when deleted by handle.
handle=$(nft_in -a list chain ip zs_nat prerouting |
    sed -nE 's/.*"e2e added" # handle ([0-9]+)$/\1/p')
[[ -n $handle ]] || e2e_die "cannot find the handle of the added rule"
nft_in delete rule ip zs_nat prerouting handle "$handle"
expect_used_ports "after nft delete rule" "$NS" "$A" TCP "${A_TCP[@]}"

# A new verdict-map element (set element events, no rule change): udp 8054 via svc-b.
nft_in add element ip kube service-ips '{ 192.0.2.10 . udp . 8054 : goto svc-b }'
expect_used_ports "after nft add element (udp 8054)" "$NS" "$A" UDP "${A_UDP[@]}" 8054
nft_in delete element ip kube service-ips '{ 192.0.2.10 . udp . 8054 }'
expect_used_ports "after nft delete element" "$NS" "$A" UDP "${A_UDP[@]}"

# Making zs_nat dormant (a table flag change, no rule change) takes its PF, DNS and EIP rules out:
# VIP A keeps its sockets, kube 443/8053 and the inet 2222/3306; VIP B keeps only the inet
# address-less tcp 2222.
nft_in add table ip zs_nat '{ flags dormant; }'
expect_used_ports "VIP A TCP after zs_nat became dormant" "$NS" "$A" TCP 22 80 443 2222 3306
expect_used_ports "VIP A UDP after zs_nat became dormant" "$NS" "$A" UDP 123 8053
expect_used_ports "VIP B TCP after zs_nat became dormant" "$NS" "$B" TCP 2222
expect_used_ports "VIP B UDP after zs_nat became dormant" "$NS" "$B" UDP
# nft 1.0.6 cannot clear the flag again (`flags 0` is a syntax error): reload the table instead.
nft_in delete table ip zs_nat
nft_in -f - <<<"$(sed -n '/^table ip zs_nat {/,/^}/p' "$RULES")"
expect_used_ports "VIP A TCP after reloading zs_nat" "$NS" "$A" TCP "${A_TCP[@]}"
expect_used_ports "VIP B UDP after reloading zs_nat" "$NS" "$B" UDP 1-65535

# Removing the EIP rule frees every port of VIP B at once, but for the address-less tcp 2222.
handle=$(nft_in -a list chain ip zs_nat prerouting |
    sed -nE 's/.*"eip rule@PREROUTING" # handle ([0-9]+)$/\1/p')
[[ -n $handle ]] || e2e_die "cannot find the handle of the EIP rule"
nft_in delete rule ip zs_nat prerouting handle "$handle"
expect_used_ports "VIP B TCP after deleting the EIP rule" "$NS" "$B" TCP 2222
expect_used_ports "VIP B UDP after deleting the EIP rule" "$NS" "$B" UDP

# An empty ruleset leaves the sockets alone.
nft_in flush ruleset
expect_used_ports "VIP A TCP after nft flush ruleset (sockets only)" "$NS" "$A" TCP 22 80
expect_used_ports "VIP A UDP after nft flush ruleset (sockets only)" "$NS" "$A" UDP 123
expect_used_ports "IPv6 VIP TCP after nft flush ruleset (sockets only)" "$NS" "$V6" TCP 443
# ... and the whole ruleset back in one transaction.
nft_in -f "$RULES"
expect_used_ports "VIP A TCP after reloading the ruleset" "$NS" "$A" TCP "${A_TCP[@]}"
expect_used_ports "VIP B UDP after reloading the ruleset" "$NS" "$B" UDP 1-65535

# Every answer above came from the daemon started once at the top.
if _e2e_alive "$DAEMON"; then
    _e2e_ok "the first daemon is still running"
else
    _e2e_fail "the first daemon is still running"
fi

e2e_daemon_stop
expect_eq "exit status after SIGTERM" 0 "$E2E_RC"

e2e_finish
