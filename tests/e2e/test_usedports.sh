#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# e2e: GET/HEAD /zstack/v1/vips/{uuid}/usedports against real sockets in a private namespace.
#
#   bash tests/e2e/test_usedports.sh /path/to/vipportd      (root; HOLDPORT=/path/to/vipportd_holdport)
#
# Namespace layout: veth vip0 <-> peer0, both ends inside the namespace.
#   vip0   192.0.2.10/24, 2001:db8::10/64   the VIPs (uuid V4 and V6 below)
#   peer0  192.0.2.1/24                     another local address, not a VIP
# Sockets held by vipportd_holdport:
#   tcp 192.0.2.10:80 listen         -> V4 TCP
#   tcp 0.0.0.0:22 listen            -> V4 TCP (IPv4 wildcard), not V6
#   tcp [::]:8443 dual-stack listen  -> V4 TCP and V6 TCP
#   tcp [::]:9443 v6only listen      -> V6 TCP only, never V4 (kernel.md §1.6)
#   tcp 192.0.2.10:7777 bound only   -> V4 TCP with sources.tcp_bound_inactive = true (set below;
#                                       the default leaves it out, checked at the end)
#   tcp 192.0.2.1:81 listen          -> nobody's: another address
#   udp 192.0.2.10:53                -> V4 UDP
#   udp [::]:123 v6only              -> V6 UDP only
# The daemon listens on 127.0.0.1:18080 only, so its own socket covers no VIP.

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
e2e_require_root

V4=3f2c9d1e7b8a4c5d9e0f1a2b3c4d5e6f
V6=8e1d2c3b4a5f60718293a4b5c6d7e8f9
API=/zstack/v1/vips

e2e_netns_create NS
e2e_veth "$NS" vip0 peer0
e2e_addr "$NS" vip0 192.0.2.10/24
e2e_addr "$NS" vip0 2001:db8::10/64
e2e_addr "$NS" peer0 192.0.2.1/24

e2e_hold "$NS" tcp:192.0.2.10:80 tcp:0.0.0.0:22 'tcp:[::]:8443:dual' 'tcp:[::]:9443:v6only' \
    tcp:192.0.2.10:7777:bound tcp:192.0.2.1:81 udp:192.0.2.10:53 'udp:[::]:123:v6only'

CFG=$(e2e_config vipportd.toml <<EOF
listen = ["127.0.0.1:$E2E_PORT"]
log_level = "debug"

[[vip]]
uuid = "$V4"
ip = "192.0.2.10"

[[vip]]
uuid = "$V6"
ip = "2001:db8::10"

[sources]
tcp_bound_inactive = true
EOF
)
e2e_daemon_start "$NS" "$CFG"

# ---- by uuid and by literal address, TCP and UDP, IPv4 and IPv6 ---------------------------------
e2e_get "$NS" "$API/$V4/usedports?protocol=TCP"
expect_status "TCP by uuid (IPv4 VIP)" 200
expect_json "TCP by uuid (IPv4 VIP)" usedports/tcp_v4.json
expect_header "TCP by uuid (IPv4 VIP)" Content-Type "application/json; charset=utf-8"

e2e_get "$NS" "$API/192.0.2.10/usedports?protocol=TCP"
expect_status "TCP by literal IPv4" 200
expect_json "TCP by literal IPv4" usedports/tcp_v4_literal.json

e2e_get "$NS" "$API/$V4/usedports?protocol=UDP"
expect_status "UDP by uuid (IPv4 VIP)" 200
expect_json "UDP by uuid (IPv4 VIP)" usedports/udp_v4.json

e2e_get "$NS" "$API/192.0.2.10/usedports?protocol=UDP"
expect_status "UDP by literal IPv4" 200
expect_json "UDP by literal IPv4" usedports/udp_v4_literal.json

e2e_get "$NS" "$API/$V6/usedports?protocol=TCP"
expect_status "TCP by uuid (IPv6 VIP)" 200
expect_json "TCP by uuid (IPv6 VIP)" usedports/tcp_v6.json

e2e_get "$NS" "$API/2001:db8::10/usedports?protocol=TCP"
expect_status "TCP by literal IPv6" 200
expect_json "TCP by literal IPv6" usedports/tcp_v6_literal.json

e2e_get "$NS" "$API/$V6/usedports?protocol=UDP"
expect_status "UDP by uuid (IPv6 VIP)" 200
expect_json "UDP by uuid (IPv6 VIP)" usedports/udp_v6.json

# An address configured nowhere still gets the wildcard listeners of its family, and [] for none.
e2e_get "$NS" "$API/198.51.100.7/usedports?protocol=TCP"
expect_status "TCP by unassigned literal" 200
expect_json "TCP by unassigned literal" usedports/tcp_unassigned_literal.json
e2e_get "$NS" "$API/198.51.100.7/usedports?protocol=UDP"
expect_status "UDP by unassigned literal (empty list)" 200
expect_json "UDP by unassigned literal (empty list)" usedports/udp_unassigned_literal.json

# ---- protocol spelling (vipportd accepts any case, answers upper case; values are trimmed) -------
e2e_get "$NS" "$API/$V4/usedports?protocol=tcp"
expect_status "lower-case tcp" 200
expect_json "lower-case tcp" usedports/tcp_v4.json
e2e_get "$NS" "$API/$V4/usedports?protocol=uDp"
expect_status "mixed-case uDp" 200
expect_json "mixed-case uDp" usedports/udp_v4.json
e2e_get "$NS" "$API/$V4/usedports?protocol=%20TCP%20"
expect_status "protocol with spaces" 200
expect_json "protocol with spaces" usedports/tcp_v4.json
# Unknown parameters, tags and a uuid parameter are ignored (the path wins).
e2e_get "$NS" "$API/$V4/usedports?systemTags=a&systemTags=b&requestIp=10.0.0.1&uuid=x&protocol=TCP"
expect_status "ignored parameters" 200
expect_json "ignored parameters" usedports/tcp_v4.json

# ---- X-JSON-Schema, as the Java SDK sends it ---------------------------------------------------
e2e_get "$NS" "$API/$V4/usedports?protocol=TCP" -H "X-JSON-Schema: true" \
    -H "X-Job-UUID: 0123456789abcdef0123456789abcdef"
expect_status "X-JSON-Schema" 200
expect_json "X-JSON-Schema" usedports/tcp_v4_schema.json
e2e_get "$NS" "$API/$V4/usedports?protocol=TCP" -H "X-JSON-Schema: false"
expect_status "X-JSON-Schema: false (presence counts)" 200
expect_json "X-JSON-Schema: false (presence counts)" usedports/tcp_v4_schema.json

# ---- HEAD: the GET headers, no body --------------------------------------------------------------
get_length=$(wc -c <"$E2E_GOLDEN/usedports/tcp_v4.json")
get_length=$((get_length - 1)) # the golden file's final newline is not part of the body
e2e_raw "$NS" $'HEAD '"$API/$V4"$'/usedports?protocol=TCP HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: OAuth e2e-session\r\nConnection: close\r\n\r\n'
expect_status "HEAD" 200
expect_header "HEAD" Content-Length "$get_length"
expect_header "HEAD" Content-Type "application/json; charset=utf-8"
expect_body "HEAD" ""

# ---- every answer comes from a snapshot taken after the request arrived ------------------------
e2e_hold "$NS" tcp:192.0.2.10:443
extra=$E2E_HOLD_PID
e2e_get "$NS" "$API/$V4/usedports?protocol=TCP"
expect_status "new listener shows at once" 200
expect_json "new listener shows at once" usedports/tcp_v4_with_443.json
e2e_release "$extra"
e2e_get "$NS" "$API/$V4/usedports?protocol=TCP"
expect_status "closed listener disappears at once" 200
expect_json "closed listener disappears at once" usedports/tcp_v4.json

# ---- SIGTERM: a clean exit -----------------------------------------------------------------------
e2e_daemon_stop
expect_eq "exit status after SIGTERM" 0 "$E2E_RC"

# ---- the default config: the bound-only socket is not a used port ------------------------------
DEFAULT_CFG=$(e2e_config default.toml <<EOF
listen = ["127.0.0.1:$E2E_PORT"]

[[vip]]
uuid = "$V4"
ip = "192.0.2.10"
EOF
)
e2e_daemon_start "$NS" "$DEFAULT_CFG"
expect_used_ports "default config: bound-only 7777 left out" "$NS" "$V4" TCP 22 80 8443
e2e_daemon_stop
expect_eq "exit status after SIGTERM (default config)" 0 "$E2E_RC"

e2e_finish
