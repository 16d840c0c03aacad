#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# e2e: netfilter claims from rules written with iptables-nft / ip6tables-nft (the nf_tables backend
# with x_tables compat matches and targets, kernel.md §2.5) in the shapes ZStack writes
# (zstack-api.md §14.2), combined with real sockets, and changes seen without a restart.
#
#   bash tests/e2e/test_rules_iptables_nft.sh /path/to/vipportd      (root; needs iptables)
#
# The rules: golden/rules/zstack_v4.rules and zstack_v6.rules, loaded with *-nft-restore --noflush
# as the router agent does, and golden/rules/chains_v4.rules (chain-walk semantics). What counts
# as a claim: DNAT/REDIRECT/NETMAP in the nat table's PREROUTING (through jumps), TPROXY in mangle
# PREROUTING; filter verdicts claim nothing; a rule's claim is what still reaches it after the
# RETURN/ACCEPT rules before it (agent/nft_interpreter.hpp, kernel.md §2.8).
#
# Namespace layout: veth vip0 <-> peer0, both ends inside the namespace.
#   vip0  192.0.2.10/24 VIP A, 192.0.2.20/24 VIP B (EIP), 192.0.2.40/24 VIP D (EIP + RETURNs),
#         2001:db8::10/64 VIP 6, 2001:db8::20/64 VIP 6B (EIP)
# Sockets: tcp 192.0.2.10:22, tcp 192.0.2.10:80, udp 192.0.2.10:123, tcp [2001:db8::10]:443.

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=zstack_shapes.sh
source "$(dirname "${BASH_SOURCE[0]}")/zstack_shapes.sh"
e2e_init "$@"
e2e_require_root
for tool in iptables-nft-restore ip6tables-nft-restore iptables-nft; do
    command -v "$tool" >/dev/null || e2e_die "$tool (package iptables) is required"
done

A=6a1b2c3d4e5f40718293a4b5c6d7e8f9
B=7b2c3d4e5f6a41829304b5c6d7e8f9a0
D=8c3d4e5f6a7b42939415c6d7e8f9a0b1
V6=9d4e5f6a7b8c43a4a526d7e8f9a0b1c2
V6B=ae5f6a7b8c9d44b5b637e8f9a0b1c2d3

e2e_netns_create NS
e2e_veth "$NS" vip0 peer0
for addr in 192.0.2.10/24 192.0.2.20/24 192.0.2.40/24 2001:db8::10/64 2001:db8::20/64; do
    e2e_addr "$NS" vip0 "$addr"
done
e2e_hold "$NS" tcp:192.0.2.10:22 tcp:192.0.2.10:80 udp:192.0.2.10:123 'tcp:[2001:db8::10]:443'

ip netns exec "$NS" iptables-nft-restore --noflush <"$E2E_GOLDEN/rules/zstack_v4.rules"
ip netns exec "$NS" iptables-nft-restore --noflush <"$E2E_GOLDEN/rules/chains_v4.rules"
ip netns exec "$NS" ip6tables-nft-restore --noflush <"$E2E_GOLDEN/rules/zstack_v6.rules"
# Everything went to nf_tables: no legacy table was created.
expect_eq "no legacy iptables tables" "" \
    "$(ip netns exec "$NS" cat /proc/net/ip_tables_names /proc/net/ip6_tables_names 2>/dev/null ||
        true)"

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

check_zstack_shapes iptables-nft iptables_nft

check_zstack_changes iptables-nft

if _e2e_alive "$DAEMON"; then
    _e2e_ok "the first daemon is still running"
else
    _e2e_fail "the first daemon is still running"
fi
e2e_daemon_stop
expect_eq "exit status after SIGTERM" 0 "$E2E_RC"

e2e_finish
