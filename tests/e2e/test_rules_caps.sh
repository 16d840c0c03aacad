#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# e2e: the daemon without CAP_NET_ADMIN. nf_tables refuses every request without it (kernel.md §6),
# so by default ([sources] nftables = "required") every query fails with 503 SYS.1006 naming the
# nftables source; with nftables = "optional" the answer is sockets-only, provided the legacy
# source can do without capabilities too (iptables_legacy = "off", or no legacy table listed and
# the names file readable). With CAP_NET_ADMIN alone the rules count again.
#
#   bash tests/e2e/test_rules_caps.sh /path/to/vipportd      (root; needs setpriv, nft, iptables)
#
# Capabilities are dropped with setpriv (util-linux) inside each namespace, which execs the daemon
# in place:
#   NOBODY:   --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all
#             (an unprivileged user with no capability at all)
#   ROOTLESS: --inh-caps=-all --bounding-set=-all
#             (uid 0 with an empty bounding set: execve grants root no capability, but root still
#             owns the 0440 root:root /proc/self/net/ip_tables_names)
# The daemon listens on 127.0.0.1:18080 (> 1024: no CAP_NET_BIND_SERVICE needed).
#
# Every namespace: veth vip0 <-> peer0, VIP 192.0.2.10/24 (uuid VIP), a socket tcp 192.0.2.10:22
# (held by root; sock_diag needs no privilege) and one nft rule DNATing tcp 80 of the VIP, so a
# sockets-only answer ([22]) and a full one ([22, 80]) differ.

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
e2e_require_root
for tool in setpriv nft iptables-legacy; do
    command -v "$tool" >/dev/null ||
        e2e_die "$tool (packages util-linux, nftables, iptables) is required"
done

VIP=d1c2b3a4958647768798a9bacbdcedfe
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all --)
ROOTLESS=(setpriv --inh-caps=-all --bounding-set=-all --)
# uid 65534 with CAP_NET_ADMIN only, kept across execve as an ambient capability.
# shellcheck disable=SC2054 # the commas belong to setpriv's capability lists
NET_ADMIN=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=+net_admin
    --ambient-caps=+net_admin --bounding-set=-all,+net_admin --)

# The daemon must be able to read its configuration as uid 65534.
chmod 0755 "$E2E_TMP"

# The exact 503 bodies: zstack.cpp source_failed() wraps the source's error, which is what the
# daemon logs at start-up ("source=... failed: ..."), checked below as well.
NFT_EPERM="nf_tables: GETGEN: Operation not permitted"
LEGACY_EACCES="iptables-legacy: open /proc/self/net/ip_tables_names: Permission denied"
LEGACY_EPERM="iptables-legacy: nat: socket(AF_INET, SOCK_RAW, IPPROTO_RAW): Operation not permitted"
sys1006() {
    printf '{"error":{"code":"SYS.1006","description":"An operation failed","details":"%s"}}' \
        "failed to read kernel state from source[$1]: $2"
}

# new_ns VAR: a namespace with the VIP, the socket on tcp 22 and the nft DNAT of tcp 80.
new_ns() {
    local created
    e2e_netns_create created
    e2e_veth "$created" vip0 peer0
    e2e_addr "$created" vip0 192.0.2.10/24
    e2e_hold "$created" tcp:192.0.2.10:22
    ip netns exec "$created" nft -f - <<'EOF'
table ip zs_nat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 192.0.2.10 tcp dport 80 dnat to 10.0.0.5:8080 comment "pf rule@PREROUTING"
	}
}
EOF
    printf -v "$1" '%s' "$created"
}

# config NAME [SOURCES_TOML]: a configuration with the VIP and an optional [sources] table.
config() {
    e2e_config "$1" <<EOF
listen = ["127.0.0.1:$E2E_PORT"]
log_level = "debug"

[[vip]]
uuid = "$VIP"
ip = "192.0.2.10"
${2:-}
EOF
}

# expect_refused WHAT NS SOURCE ERROR: both protocols answer 503 SYS.1006 naming SOURCE with
# ERROR, and the daemon's start-up log said the same.
expect_refused() {
    local what=$1 ns=$2 source=$3 error=$4 proto
    for proto in TCP UDP; do
        e2e_get "$ns" "/zstack/v1/vips/$VIP/usedports?protocol=$proto"
        expect_status "$what, $proto" 503
        expect_body "$what, $proto" "$(sys1006 "$source" "$error")"
        expect_header "$what, $proto" Content-Type "application/json; charset=utf-8"
    done
    expect_contains "$what: start-up log" "source=$source required=true failed: $error" \
        "$(cat "$E2E_DAEMON_LOG")"
}

# expect_caps WHAT PID MASK: PID is the daemon itself (setpriv exec'd it) and its effective
# capability mask is MASK.
expect_caps() {
    expect_eq "$1: process" vipportd "$(cat "/proc/$2/comm")"
    expect_eq "$1: CapEff" "$3" "$(awk '$1 == "CapEff:" { print $2 }' "/proc/$2/status")"
}

# ---- 1. default sources, uid 65534 without capabilities: 503 naming nftables --------------------
# nftables comes before iptables-legacy (sources.cpp), and both fail; the first required failure
# is the one reported (Snapshot::failed_required).
new_ns NS1
E2E_DAEMON_WRAP=("${NOBODY[@]}")
e2e_daemon_start "$NS1" "$(config default.toml)"
expect_caps "uid 65534, no capabilities" "$E2E_DAEMON_PID" 0000000000000000
expect_eq "uid 65534, no capabilities: uid" 65534 \
    "$(awk '$1 == "Uid:" { print $2 }' "/proc/$E2E_DAEMON_PID/status")"
expect_refused "default sources, uid 65534, no capabilities" "$NS1" nftables "$NFT_EPERM"
# The same body, byte for byte, as a golden file.
e2e_get "$NS1" "/zstack/v1/vips/$VIP/usedports?protocol=TCP"
expect_json "default sources, uid 65534, no capabilities (golden)" rules/caps_nftables_eperm.json
e2e_daemon_stop

# ---- 2. default sources, uid 0 without capabilities: still 503 naming nftables -----------------
# Here the legacy source is fine (no table listed, names file readable by its owner); nftables
# alone fails.
new_ns NS2
E2E_DAEMON_WRAP=("${ROOTLESS[@]}")
e2e_daemon_start "$NS2" "$(config default-root.toml)"
expect_caps "uid 0, no capabilities" "$E2E_DAEMON_PID" 0000000000000000
expect_refused "default sources, uid 0, no capabilities" "$NS2" nftables "$NFT_EPERM"
expect_contains "uid 0, no capabilities: legacy source ok" "source=iptables-legacy ok" \
    "$(cat "$E2E_DAEMON_LOG")"
e2e_daemon_stop

# ---- 3. nftables optional, legacy off, uid 65534: sockets only -----------------------------------
# The DNAT of tcp 80 cannot be read: TCP is the socket's [22]; UDP has nothing.
new_ns NS3
E2E_DAEMON_WRAP=("${NOBODY[@]}")
e2e_daemon_start "$NS3" \
    "$(config optional-off.toml $'[sources]\nnftables = "optional"\niptables_legacy = "off"')"
expect_used_ports "nftables optional, legacy off, uid 65534: TCP sockets only" "$NS3" "$VIP" TCP 22
expect_used_ports "nftables optional, legacy off, uid 65534: UDP" "$NS3" "$VIP" UDP
expect_contains "nftables optional: the failure is logged" \
    "source=nftables required=false failed: $NFT_EPERM" "$(cat "$E2E_DAEMON_LOG")"
e2e_daemon_stop

# ---- 4. nftables optional, legacy auto, uid 0 without capabilities, no legacy table: sockets only
new_ns NS4
expect_eq "no legacy table in the namespace" "" \
    "$(ip netns exec "$NS4" cat /proc/net/ip_tables_names /proc/net/ip6_tables_names 2>/dev/null ||
        true)"
E2E_DAEMON_WRAP=("${ROOTLESS[@]}")
e2e_daemon_start "$NS4" "$(config optional-auto.toml $'[sources]\nnftables = "optional"')"
expect_used_ports "nftables optional, no legacy tables, uid 0: TCP sockets only" "$NS4" "$VIP" \
    TCP 22
expect_used_ports "nftables optional, no legacy tables, uid 0: UDP" "$NS4" "$VIP" UDP
e2e_daemon_stop

# ---- 5. nftables optional, legacy auto, but legacy unreadable: 503 naming iptables-legacy ------
# 5a. uid 0 without capabilities, with a legacy nat table listed: the raw socket is refused.
#     (iptables-legacy also loads x_tables where it is a module, so 5b has a names file to read.)
new_ns NS5
ip netns exec "$NS5" iptables-legacy -t nat -A PREROUTING -d 192.0.2.10/32 -p tcp -m tcp \
    --dport 8080 -j DNAT --to-destination 10.0.0.6
E2E_DAEMON_WRAP=("${ROOTLESS[@]}")
e2e_daemon_start "$NS5" "$(config optional-auto-legacy.toml $'[sources]\nnftables = "optional"')"
expect_refused "nftables optional, a legacy table, uid 0, no capabilities" "$NS5" \
    iptables-legacy "$LEGACY_EPERM"
e2e_daemon_stop
# 5b. uid 65534 cannot open the 0440 root:root names file, so it cannot tell "no legacy table"
#     from "tables it cannot read": the legacy source (always required) fails, although this
#     namespace has no legacy table.
new_ns NS6
E2E_DAEMON_WRAP=("${NOBODY[@]}")
e2e_daemon_start "$NS6" "$(config optional-auto-nobody.toml $'[sources]\nnftables = "optional"')"
expect_refused "nftables optional, legacy auto, uid 65534" "$NS6" iptables-legacy "$LEGACY_EACCES"
e2e_daemon_stop

# ---- 6. control: uid 65534 with CAP_NET_ADMIN only reads nf_tables, events included ------------
# CAP_NET_ADMIN is bit 12 (linux/capability.h): CapEff 0x1000.
new_ns NS7
E2E_DAEMON_WRAP=("${NET_ADMIN[@]}")
e2e_daemon_start "$NS7" "$(config net-admin.toml $'[sources]\niptables_legacy = "off"')"
expect_caps "uid 65534, CAP_NET_ADMIN" "$E2E_DAEMON_PID" 0000000000001000
expect_used_ports "CAP_NET_ADMIN: TCP socket + nft DNAT" "$NS7" "$VIP" TCP 22 80
ip netns exec "$NS7" nft add rule ip zs_nat prerouting ip daddr 192.0.2.10 udp dport 53 \
    redirect to :5353
expect_used_ports "CAP_NET_ADMIN: a rule added later (udp 53)" "$NS7" "$VIP" UDP 53
e2e_daemon_stop
expect_eq "exit status after SIGTERM (CAP_NET_ADMIN)" 0 "$E2E_RC"
E2E_DAEMON_WRAP=()

e2e_finish
