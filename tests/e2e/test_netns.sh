#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# e2e: a VIP that lives in another network namespace ([[vip]] netns = "name").
#
#   bash tests/e2e/test_netns.sh /path/to/vipportd      (root; HOLDPORT=/path/to/vipportd_holdport)
#
# The daemon runs in namespace D; VIP "remote" (198.51.100.20) lives in namespace R, VIP "local"
# (198.51.100.20 too: the same address in two namespaces is two different VIPs) in D.
#   R: tcp 198.51.100.20:<p1> listen, udp 0.0.0.0:<p2>, nft DNAT tcp dport 4000-4002,
#      iptables-legacy DNAT udp dport 5353
#   D: tcp 198.51.100.20:<p3> listen
# Each VIP sees only its own namespace's sockets and rules; a namespace that does not exist
# answers SYS.1006 naming it, and the other VIPs keep answering.

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
e2e_require_root

API=/zstack/v1/vips

e2e_netns_create D
e2e_netns_create R
e2e_addr "$D" lo 198.51.100.20/32
e2e_addr "$R" lo 198.51.100.20/32

e2e_hold "$R" tcp:198.51.100.20:0 udp:0.0.0.0:0
read -r R_TCP R_UDP <<<"$E2E_HOLD_PORTS"
R_HOLD=$E2E_HOLD_PID
e2e_hold "$D" tcp:198.51.100.20:0
D_TCP=$E2E_HOLD_PORTS

ip netns exec "$R" nft -f - <<'NFT'
table ip nat {
    chain pre {
        type nat hook prerouting priority dstnat;
        ip daddr 198.51.100.20 tcp dport 4000-4002 dnat to 10.0.0.5
    }
}
NFT
ip netns exec "$R" iptables-legacy -t nat -A PREROUTING -d 198.51.100.20 -p udp --dport 5353 \
    -j DNAT --to-destination 10.0.0.5

CFG=$(e2e_config vipportd.toml <<EOF
listen = ["127.0.0.1:$E2E_PORT"]

[[vip]]
uuid = "remote"
ip = "198.51.100.20"
netns = "$R"

[[vip]]
uuid = "local"
ip = "198.51.100.20"

[[vip]]
uuid = "ghost"
ip = "198.51.100.21"
netns = "vipportd-e2e-no-such-namespace"
EOF
)
e2e_daemon_start "$D" "$CFG"

e2e_get "$D" "$API/remote/usedports?protocol=TCP"
expect_status "remote TCP" 200
expect_body "remote TCP: its namespace's listener and DNAT range" \
    "$(e2e_used_ports_body remote TCP "$R_TCP" 4000-4002)"

e2e_get "$D" "$API/remote/usedports?protocol=UDP"
expect_status "remote UDP" 200
expect_body "remote UDP: its wildcard socket and the legacy iptables DNAT" \
    "$(e2e_used_ports_body remote UDP "$R_UDP" 5353)"

e2e_get "$D" "$API/local/usedports?protocol=TCP"
expect_status "local TCP" 200
expect_body "local TCP: only the daemon's namespace" "$(e2e_used_ports_body local TCP "$D_TCP")"

e2e_get "$D" "$API/local/usedports?protocol=UDP"
expect_status "local UDP" 200
expect_body "local UDP: nothing of the other namespace" "$(e2e_used_ports_body local UDP)"

# A literal address is looked up in the daemon's own namespace.
e2e_get "$D" "$API/198.51.100.20/usedports?protocol=TCP"
expect_status "literal address" 200
expect_body "literal address: the daemon's namespace" \
    "$(e2e_used_ports_body 198.51.100.20 TCP "$D_TCP")"

e2e_get "$D" "$API/ghost/usedports?protocol=TCP"
expect_status "missing namespace" 503
expect_body "missing namespace" '{"error":{"code":"SYS.1006","description":"An operation failed","details":"failed to read kernel state from source[netns vipportd-e2e-no-such-namespace]: stat /run/netns/vipportd-e2e-no-such-namespace: No such file or directory"}}'

# Deleting the remote namespace fails its VIP only; re-creating it under the same name is seen.
e2e_release "$R_HOLD"
ip netns del "$R"
e2e_get "$D" "$API/remote/usedports?protocol=TCP"
expect_status "remote namespace deleted" 503
e2e_get "$D" "$API/local/usedports?protocol=TCP"
expect_status "local still answers" 200
ip netns add "$R"
ip -n "$R" link set lo up
e2e_addr "$R" lo 198.51.100.20/32
e2e_hold "$R" tcp:198.51.100.20:0
R_TCP2=$E2E_HOLD_PORTS
e2e_get "$D" "$API/remote/usedports?protocol=TCP"
expect_status "remote namespace re-created" 200
expect_body "remote namespace re-created: the new namespace's sockets only" \
    "$(e2e_used_ports_body remote TCP "$R_TCP2")"

e2e_daemon_stop
expect_eq "daemon exit status" 0 "$E2E_RC"
e2e_finish
