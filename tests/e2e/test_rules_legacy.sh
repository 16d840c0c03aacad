#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# e2e: netfilter claims from legacy iptables (x_tables, read with IPT_SO_GET_ENTRIES, kernel.md §3)
# written with iptables-legacy / ip6tables-legacy in the shapes ZStack writes (zstack-api.md
# §14.2), the kernel.md §3.2 example verbatim, legacy and nf_tables rules side by side, and
# changes seen without a restart (legacy tables have no events: every query re-reads them).
#
#   bash tests/e2e/test_rules_legacy.sh /path/to/vipportd      (root; needs iptables, nft)
#
# The rules are the same files as in test_rules_iptables_nft.sh (golden/rules/zstack_v{4,6}.rules,
# chains_v4.rules), so both backends must give the same answers. What counts as a claim
# (agent/ipt_legacy_source.hpp): DNAT/REDIRECT/NETMAP reached from nat PREROUTING (through jumps,
# after the RETURN/ACCEPT rules above them), TPROXY from mangle PREROUTING; filter rules claim
# nothing.
#
# Namespace 1 (ZStack shapes): veth vip0 <-> peer0, both ends inside the namespace.
#   vip0  192.0.2.10/24 VIP A, 192.0.2.20/24 VIP B (EIP), 192.0.2.40/24 VIP D (EIP + RETURNs),
#         2001:db8::10/64 VIP 6, 2001:db8::20/64 VIP 6B (EIP)
#   sockets: tcp 192.0.2.10:22, tcp 192.0.2.10:80, udp 192.0.2.10:123, tcp [2001:db8::10]:443
# Namespace 2: only the kernel.md §3.2 commands, VIP 1.2.3.4 (not configured on any interface:
# DNAT needs no local address).

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=zstack_shapes.sh
source "$(dirname "${BASH_SOURCE[0]}")/zstack_shapes.sh"
e2e_init "$@"
e2e_require_root
for tool in iptables-legacy-restore ip6tables-legacy-restore iptables-legacy nft; do
    command -v "$tool" >/dev/null || e2e_die "$tool (packages iptables, nftables) is required"
done

A=1f2e3d4c5b6a47988a7b6c5d4e3f2a1b
B=2a3b4c5d6e7f48a99b8c7d6e5f4a3b2c
D=3b4c5d6e7f8a49baac9d8e7f6a5b4c3d
V6=4c5d6e7f8a9b4acbbdae9f8a7b6c5d4e
V6B=5d6e7f8a9bac4bdccebfa09b8c7d6e5f
K=6e7f8a9bacbd4cedd0c0b1ac9d8e7f60

# ================================ ZStack shapes ===================================================
e2e_netns_create NS
e2e_veth "$NS" vip0 peer0
for addr in 192.0.2.10/24 192.0.2.20/24 192.0.2.40/24 2001:db8::10/64 2001:db8::20/64; do
    e2e_addr "$NS" vip0 "$addr"
done
e2e_hold "$NS" tcp:192.0.2.10:22 tcp:192.0.2.10:80 udp:192.0.2.10:123 'tcp:[2001:db8::10]:443'

ip netns exec "$NS" iptables-legacy-restore --noflush <"$E2E_GOLDEN/rules/zstack_v4.rules"
ip netns exec "$NS" iptables-legacy-restore --noflush <"$E2E_GOLDEN/rules/chains_v4.rules"
ip netns exec "$NS" ip6tables-legacy-restore --noflush <"$E2E_GOLDEN/rules/zstack_v6.rules"
# Everything went to x_tables: nf_tables is empty.
expect_eq "no nf_tables tables" "" "$(ip netns exec "$NS" nft list tables)"

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
uuid = "$D"
ip = "192.0.2.40"

[[vip]]
uuid = "$V6"
ip = "2001:db8::10"

[[vip]]
uuid = "$V6B"
ip = "2001:db8::20"
EOF
)
e2e_daemon_start "$NS" "$CFG"
DAEMON=$E2E_DAEMON_PID

check_zstack_shapes legacy legacy

# ---- both stacks at once: an nf_tables DNAT next to the legacy rules -----------------------------
ip netns exec "$NS" nft -f - <<'EOF'
table ip extra {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 192.0.2.10 tcp dport 7000 dnat to 10.0.0.70
	}
}
EOF
expect_used_ports "VIP A TCP with an nft rule beside legacy (tcp 7000)" "$NS" "$A" TCP \
    "${A_TCP[@]}" 7000
ip netns exec "$NS" nft delete table ip extra
expect_used_ports "VIP A TCP after deleting the nft table" "$NS" "$A" TCP "${A_TCP[@]}"

check_zstack_changes iptables-legacy

if _e2e_alive "$DAEMON"; then
    _e2e_ok "the first daemon is still running"
else
    _e2e_fail "the first daemon is still running"
fi
e2e_daemon_stop
expect_eq "exit status after SIGTERM" 0 "$E2E_RC"

# ================================ kernel.md §3.2, verbatim ========================================
e2e_netns_create NS2
ipt2() { ip netns exec "$NS2" iptables-legacy "$@"; }
ipt2 -t nat -A PREROUTING -d 1.2.3.4 -p tcp --dport 80 -j DNAT --to-destination 10.0.0.1:8080
ipt2 -t nat -N SVC
ipt2 -t nat -A PREROUTING -d 1.2.3.4 -p tcp -m multiport --dports 443,8000:8100 -j SVC
ipt2 -t nat -A PREROUTING -d 1.2.3.4 -p udp --dport 53 -j REDIRECT --to-ports 5353
ipt2 -t nat -A SVC -j DNAT --to-destination 10.0.0.2
CFG2=$(e2e_config kernel-example.toml <<EOF
listen = ["127.0.0.1:$E2E_PORT"]

[[vip]]
uuid = "$K"
ip = "1.2.3.4"
EOF
)
e2e_daemon_start "$NS2" "$CFG2"
# TCP: 80 (DNAT at offset 0); 443 and 8000-8100 (multiport, jump to SVC, whose DNAT has no
#      port test). UDP: 53 (REDIRECT). No sockets in this namespace but the daemon's own on
#      127.0.0.1.
expect_used_ports "kernel.md §3.2 TCP" "$NS2" "$K" TCP 80 443 8000-8100
expect_used_ports "kernel.md §3.2 UDP" "$NS2" "$K" UDP 53
expect_used_ports "kernel.md §3.2 TCP by literal address" "$NS2" 1.2.3.4 TCP 80 443 8000-8100
# Another address gets nothing (every rule has -d 1.2.3.4).
expect_used_ports "kernel.md §3.2: 1.2.3.5 TCP" "$NS2" 1.2.3.5 TCP
e2e_daemon_stop
expect_eq "exit status after SIGTERM (namespace 2)" 0 "$E2E_RC"

e2e_finish
