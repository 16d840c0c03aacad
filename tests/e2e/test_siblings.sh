#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# e2e: ZStack's siblings of usedports (http/zstack_siblings.cpp) against real sockets and real
# nftables rules in a private namespace: the batch GET /zstack/v1/vips/usedports over three VIPs,
# and check-port-availability / get-port-availability with ZStack's parameter conversion,
# validation order and error texts.
#
#   bash tests/e2e/test_siblings.sh /path/to/vipportd      (root; needs nft)
#
# Namespace layout: veth vip0 <-> peer0, both ends inside the namespace.
#   vip0   192.0.2.10/24  VIP A     192.0.2.20/24  VIP B     192.0.2.30/24  VIP C
#   peer0  192.0.2.1/24   another local address, not a VIP
# Sockets held by vipportd_holdport:
#   tcp 192.0.2.10:2, tcp 192.0.2.10:80 listen  -> A TCP
#   tcp 0.0.0.0:4 listen                        -> A, B and C TCP (IPv4 wildcard)
#   udp 192.0.2.30:53                           -> C UDP
#   tcp 192.0.2.1:81 listen                     -> nobody's: another address
# nftables (table ip sib, prerouting DNAT):
#   192.0.2.20 tcp dport 1-3, 8000-8002         -> B TCP
#   192.0.2.30 udp dport 5000                   -> C UDP
# Later in the script: a whole-IP UDP DNAT for B (ZStack's EIP), for the gzip and "no free port"
# cases, and a new socket on C. The daemon listens on 127.0.0.1:18080 only.

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
e2e_require_root
command -v nft >/dev/null || e2e_die "nft (package nftables) is required"

# Sorted by uuid: A < B < C. The config lists them in another order.
A=1a2b3c4d5e6f47808192a3b4c5d6e7f8
B=2b3c4d5e6f7048918293a4b5c6d7e8f9
C=3c4d5e6f708149a28394a5b6c7d8e9f0
API=/zstack/v1/vips
SCHEMA_CLASS=org.zstack.network.service.virtualrouter.APIGetVipUsedPortsReply\$VipPortRangeInventory
VALIDATOR=org.zstack.header.message.ApiMessageParamValidator

e2e_netns_create NS
e2e_veth "$NS" vip0 peer0
e2e_addr "$NS" vip0 192.0.2.10/24
e2e_addr "$NS" vip0 192.0.2.20/24
e2e_addr "$NS" vip0 192.0.2.30/24
e2e_addr "$NS" peer0 192.0.2.1/24

e2e_hold "$NS" tcp:192.0.2.10:2 tcp:192.0.2.10:80 tcp:0.0.0.0:4 udp:192.0.2.30:53 tcp:192.0.2.1:81

RULES=$E2E_TMP/rules.nft
cat >"$RULES" <<'EOF'
table ip sib {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 192.0.2.20 tcp dport 1-3 dnat to 10.0.0.5 comment "pf rule@PREROUTING"
		ip daddr 192.0.2.20 tcp dport 8000-8002 dnat to 10.0.0.5
		ip daddr 192.0.2.30 udp dport 5000 dnat to 10.0.0.6:5000
	}
}
EOF
ip netns exec "$NS" nft -f "$RULES"

CFG=$(e2e_config vipportd.toml <<EOF
listen = ["127.0.0.1:$E2E_PORT"]
log_level = "debug"

[[vip]]
uuid = "$C"
ip = "192.0.2.30"

[[vip]]
uuid = "$A"
ip = "192.0.2.10"

[[vip]]
uuid = "$B"
ip = "192.0.2.20"
EOF
)
e2e_daemon_start "$NS" "$CFG"

# ---- expected bodies ---------------------------------------------------------------------------

A_TCP=(2 4 80)
B_TCP=(1-4 8000-8002)
C_TCP=(4)
C_UDP=(53 5000)

# inventory UUID PROTOCOL SPEC...: one inventory object, as usedports renders it.
inventory() {
    local uuid=$1 protocol=$2 body
    shift 2
    body=$(e2e_used_ports_body "$uuid" "$protocol" "$@")
    body=${body#'{"inventories":['}
    printf '%s' "${body%']}'}"
}

# error CODE DESCRIPTION DETAILS: ZStack's JSON error body.
error() { printf '{"error":{"code":"%s","description":"%s","details":"%s"}}' "$1" "$2" "$3"; }
sys1007() { error SYS.1007 "One or more API argument is invalid" "$1"; }
mandatory() { sys1007 "field[$1] of message[$VALIDATOR] is mandatory, can not be null"; }
not_tcp_udp() { sys1007 "valid value for field[$1] of message[$VALIDATOR] are [TCP, UDP], but $2 found"; }
not_found() {
    error SYS.1003 "A resource can not be found" \
        "invalid field[vipUuid], resource[uuid:$1, type:VipVO] not found"
}
PORT_RANGE=$(sys1007 "field[port] must be in range of [1, 65535]")

# free_ports START LIMIT SPEC...: the get-port-availability body for a VIP whose used ports are
# SPEC...: the free ports 1-65535 at list indices [START, START + LIMIT).
free_ports() {
    local start=$1 limit=$2
    shift 2
    comm -23 <(seq 1 65535 | sort) <(e2e_ports "$@" | sort) | sort -n |
        awk -v s="$start" -v l="$limit" '
            BEGIN { printf "{\"success\":true,\"availablePort\":[" }
            NR > s && NR <= s + l { printf "%s%s", (n++ ? "," : ""), $1 }
            END { printf "]}" }'
}

# expect_answer WHAT PATH STATUS BODY [CURL_ARGS...]: one GET, status and body byte for byte.
expect_answer() {
    local what=$1 path=$2 status=$3 body=$4
    shift 4
    e2e_get "$NS" "$path" "$@"
    expect_status "$what" "$status"
    expect_body "$what" "$body"
}

AVAILABLE='{"success":true,"available":true}'
TAKEN='{"success":true,"available":false}'

# ---- batch: every VIP, ordered by uuid, one inventory each -------------------------------------
BATCH_TCP="{\"inventories\":[$(inventory "$A" TCP "${A_TCP[@]}"),$(inventory "$B" TCP \
    "${B_TCP[@]}"),$(inventory "$C" TCP "${C_TCP[@]}")]}"
expect_answer "batch TCP (sockets, rules, wildcard on all three)" "$API/usedports?protocol=TCP" \
    200 "$BATCH_TCP"
expect_header "batch TCP" Content-Type "application/json; charset=utf-8"
expect_header "batch TCP" Vary "Accept-Encoding"

BATCH_UDP="{\"inventories\":[$(inventory "$A" UDP),$(inventory "$B" UDP),$(inventory "$C" UDP \
    "${C_UDP[@]}")]}"
expect_answer "batch UDP" "$API/usedports?protocol=UDP" 200 "$BATCH_UDP"
expect_answer "batch, lower-case protocol" "$API/usedports?protocol=udp" 200 "$BATCH_UDP"

# Each element is exactly the single-VIP answer's inventory.
for v in "$A" "$B" "$C"; do
    e2e_get "$NS" "$API/$v/usedports?protocol=TCP"
    single=$(cat "$HTTP_BODY_FILE")
    single=${single#'{"inventories":['}
    expect_contains "batch holds usedports' inventory of $v" "${single%']}'}" "$BATCH_TCP"
done

# X-JSON-Schema: one entry per element, last index first (JsonSchemaBuilder reverses its keys).
expect_answer "batch with X-JSON-Schema" "$API/usedports?protocol=TCP" 200 \
    "{\"schema\":{\"inventories[2]\":\"$SCHEMA_CLASS\",\"inventories[1]\":\"$SCHEMA_CLASS\",\
\"inventories[0]\":\"$SCHEMA_CLASS\"},${BATCH_TCP#\{}" -H "X-JSON-Schema: true"

expect_answer "batch without protocol" "$API/usedports" 503 "$(mandatory protocol)"
expect_answer "batch with protocol=ICMP" "$API/usedports?protocol=ICMP" 503 \
    "$(not_tcp_udp protocol ICMP)"
expect_answer "batch with a repeated protocol" "$API/usedports?protocol=TCP&protocol=UDP" 400 \
    "Invalid query parameter[protocol], only one value is allowed for the parameter but multiple values found"
e2e_http "$NS" "$API/usedports?protocol=TCP"
expect_status "batch without Authorization" 400
expect_body "batch without Authorization" "missing header 'Authorization'"
e2e_get "$NS" "$API/usedports?protocol=TCP" -X POST
expect_status "batch POST" 405
expect_header "batch POST" Allow "GET, HEAD"

e2e_raw "$NS" $'HEAD '"$API"$'/usedports?protocol=TCP HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: OAuth e2e-session\r\nConnection: close\r\n\r\n'
expect_status "batch HEAD" 200
expect_header "batch HEAD" Content-Length "${#BATCH_TCP}"
expect_body "batch HEAD" ""

# ---- check-port-availability -------------------------------------------------------------------
check() { printf '%s/%s/check-port-availability?%s' "$API" "$1" "$2"; }
expect_answer "check A tcp 80 (socket)" "$(check "$A" 'port=80&protocolType=TCP')" 200 "$TAKEN"
expect_answer "check A tcp 4 (wildcard)" "$(check "$A" 'port=4&protocolType=TCP')" 200 "$TAKEN"
expect_answer "check A tcp 81 (another address's socket)" "$(check "$A" 'port=81&protocolType=TCP')" \
    200 "$AVAILABLE"
expect_answer "check A tcp 3 (B's rule)" "$(check "$A" 'port=3&protocolType=TCP')" 200 "$AVAILABLE"
expect_answer "check B tcp 3 (DNAT range)" "$(check "$B" 'port=3&protocolType=TCP')" 200 "$TAKEN"
expect_answer "check B tcp 8001 (DNAT range)" "$(check "$B" 'port=8001&protocolType=TCP')" 200 \
    "$TAKEN"
expect_answer "check B tcp 8003" "$(check "$B" 'port=8003&protocolType=TCP')" 200 "$AVAILABLE"
expect_answer "check C udp 53 (socket)" "$(check "$C" 'port=53&protocolType=UDP')" 200 "$TAKEN"
expect_answer "check C udp 5000 (DNAT)" "$(check "$C" 'port=5000&protocolType=UDP')" 200 "$TAKEN"
expect_answer "check C tcp 53" "$(check "$C" 'port=53&protocolType=TCP')" 200 "$AVAILABLE"
expect_answer "check C tcp 4 (wildcard)" "$(check "$C" 'port=4&protocolType=TCP')" 200 "$TAKEN"
expect_answer "check by literal address" "$(check 192.0.2.10 'port=80&protocolType=tcp')" 200 \
    "$TAKEN"
expect_answer "check, port 80.5 converts to 80" "$(check "$A" 'port=80.5&protocolType=TCP')" 200 \
    "$TAKEN"
expect_answer "check with X-JSON-Schema" "$(check "$A" 'port=65535&protocolType=TCP')" 200 \
    '{"schema":{},"success":true,"available":true}' -H "X-JSON-Schema: true"

# Bad parameters, in ZStack's order: conversion (500 text), port range, vipUuid, protocolType.
expect_answer "check, port not a number" "$(check "$A" 'port=eighty&protocolType=TCP')" 500 \
    'For input string: "eighty"'
expect_answer "check, empty port" "$(check "$A" 'port=&protocolType=TCP')" 500 "empty String"
expect_answer "check, start not a number" "$(check "$A" 'port=80&protocolType=TCP&start=x')" 500 \
    'For input string: "x"'
expect_answer "check, port missing (a Java int: 0)" "$(check "$A" 'protocolType=TCP')" 503 \
    "$PORT_RANGE"
expect_answer "check, port 0" "$(check "$A" 'port=0&protocolType=TCP')" 503 "$PORT_RANGE"
expect_answer "check, port 65536" "$(check "$A" 'port=65536&protocolType=TCP')" 503 "$PORT_RANGE"
expect_answer "check, port range before unknown VIP" "$(check nope 'port=0')" 503 "$PORT_RANGE"
expect_answer "check, unknown VIP" "$(check nope 'port=80&protocolType=ICMP')" 503 \
    "$(not_found nope)"
expect_answer "check, protocolType missing" "$(check "$A" 'port=80')" 503 \
    "$(mandatory protocolType)"
expect_answer "check, protocolType=ICMP" "$(check "$A" 'port=80&protocolType=ICMP')" 503 \
    "$(not_tcp_udp protocolType ICMP)"
expect_answer "check, repeated port" "$(check "$A" 'port=80&port=81&protocolType=TCP')" 400 \
    "Invalid query parameter[port], only one value is allowed for the parameter but multiple values found"

# ---- get-port-availability ---------------------------------------------------------------------
avail() { printf '%s/%s/get-port-availability?%s' "$API" "$1" "$2"; }
expect_answer "get A, defaults (start 0, limit 1000)" "$(avail "$A" 'protocolType=TCP')" 200 \
    "$(free_ports 0 1000 "${A_TCP[@]}")"
expect_answer "get A, first 5" "$(avail "$A" 'protocolType=TCP&limit=5')" 200 \
    '{"success":true,"availablePort":[1,3,5,6,7]}'
expect_answer "get B, first 5" "$(avail "$B" 'protocolType=TCP&limit=5')" 200 \
    '{"success":true,"availablePort":[5,6,7,8,9]}'
expect_answer "get C, first 5" "$(avail "$C" 'protocolType=TCP&limit=5')" 200 \
    '{"success":true,"availablePort":[1,2,3,5,6]}'
expect_answer "get A, start is an index, not a port" "$(avail "$A" 'protocolType=TCP&start=2&limit=3')" \
    200 '{"success":true,"availablePort":[5,6,7]}'
expect_answer "get B, a page across the DNAT range" \
    "$(avail "$B" 'protocolType=TCP&start=7993&limit=4')" 200 \
    '{"success":true,"availablePort":[7998,7999,8003,8004]}'
expect_answer "get C UDP, first 3" "$(avail "$C" 'protocolType=udp&limit=3')" 200 \
    '{"success":true,"availablePort":[1,2,3]}'
expect_answer "get A, the last index" "$(avail "$A" 'protocolType=TCP&start=65531')" 200 \
    '{"success":true,"availablePort":[65535]}'
expect_answer "get A, start at the end" "$(avail "$A" 'protocolType=TCP&start=65532')" 200 \
    '{"success":true,"availablePort":[]}'
expect_answer "get A, limit 0" "$(avail "$A" 'protocolType=TCP&start=10&limit=0')" 200 \
    '{"success":true,"availablePort":[]}'
expect_answer "get A, huge limit: every free port" \
    "$(avail "$A" 'protocolType=TCP&limit=2147483647')" 200 "$(free_ports 0 65535 "${A_TCP[@]}")"
expect_answer "get A, start 1 and limit 2^31-1: the rest (no int overflow)" \
    "$(avail "$A" 'protocolType=TCP&start=1&limit=2147483647')" 200 \
    "$(free_ports 1 65535 "${A_TCP[@]}")"
expect_answer "get with X-JSON-Schema" "$(avail "$C" 'protocolType=TCP&limit=2')" 200 \
    '{"schema":{},"success":true,"availablePort":[1,2]}' -H "X-JSON-Schema: true"

expect_answer "get, negative start (ZStack's subList)" "$(avail "$A" 'protocolType=TCP&start=-1')" \
    503 "$(error SYS.1000 "An internal error happened in system" "fromIndex = -1")"
expect_answer "get, negative limit" "$(avail "$A" 'protocolType=TCP&start=5&limit=-1')" 503 \
    "$(error SYS.1000 "An internal error happened in system" "fromIndex(5) > toIndex(4)")"
expect_answer "get, start not a number" "$(avail nope 'protocolType=TCP&start=first')" 500 \
    'For input string: "first"'
expect_answer "get, limit 1.2.3" "$(avail "$A" 'protocolType=TCP&limit=1.2.3')" 500 \
    "multiple points"
expect_answer "get, unknown VIP" "$(avail nope 'protocolType=TCP')" 503 "$(not_found nope)"
expect_answer "get, protocolType missing" "$(avail "$A" 'start=0')" 503 "$(mandatory protocolType)"
expect_answer "get, protocolType=SCTP" "$(avail "$A" 'protocolType=%20SCTP%20')" 503 \
    "$(not_tcp_udp protocolType SCTP)"

get_body=$(free_ports 0 1000 "${A_TCP[@]}")
e2e_raw "$NS" $'HEAD '"$(avail "$A" 'protocolType=TCP')"$' HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: OAuth e2e-session\r\nConnection: close\r\n\r\n'
expect_status "get HEAD" 200
expect_header "get HEAD" Content-Length "${#get_body}"
expect_body "get HEAD" ""

# ---- the kernel between polls: a new socket, a whole-IP DNAT -----------------------------------
e2e_hold "$NS" tcp:192.0.2.30:5
extra=$E2E_HOLD_PID
expect_answer "check C tcp 5 after a listener appears" "$(check "$C" 'port=5&protocolType=TCP')" \
    200 "$TAKEN"
expect_answer "get C after a listener appears" "$(avail "$C" 'protocolType=TCP&limit=5')" 200 \
    '{"success":true,"availablePort":[1,2,3,6,7]}'
e2e_release "$extra"
expect_answer "check C tcp 5 after it closes" "$(check "$C" 'port=5&protocolType=TCP')" 200 \
    "$AVAILABLE"

# ZStack's EIP: every UDP port of B is forwarded; B has no free UDP port left.
ip netns exec "$NS" nft add rule ip sib prerouting ip daddr 192.0.2.20 meta l4proto udp \
    dnat to 10.0.0.7
expect_answer "get B UDP under a whole-IP DNAT" "$(avail "$B" 'protocolType=UDP&start=-1')" 200 \
    '{"success":true,"availablePort":[]}'
expect_answer "check B udp 1 under a whole-IP DNAT" "$(check "$B" 'port=1&protocolType=UDP')" 200 \
    "$TAKEN"

# The UDP batch is now ~0.5 MB: gzip when asked, and the same JSON inside.
BATCH_UDP_EIP="{\"inventories\":[$(inventory "$A" UDP),$(inventory "$B" UDP 1-65535),$(inventory \
    "$C" UDP "${C_UDP[@]}")]}"
expect_answer "batch UDP with a whole-IP DNAT" "$API/usedports?protocol=UDP" 200 "$BATCH_UDP_EIP"
e2e_get "$NS" "$API/usedports?protocol=UDP" -H "Accept-Encoding: gzip"
expect_status "batch UDP, gzip" 200
expect_header "batch UDP, gzip" Content-Encoding gzip
expect_header "batch UDP, gzip" Vary "Accept-Encoding"
expect_eq "batch UDP, gzip: compressed size < 1/3" 1 \
    "$(($(wc -c <"$HTTP_BODY_FILE") * 3 < ${#BATCH_UDP_EIP} ? 1 : 0))"
expect_eq "batch UDP, gzip: decompresses to the plain body" "$BATCH_UDP_EIP" \
    "$(gzip -dc <"$HTTP_BODY_FILE")"
e2e_get "$NS" "$API/usedports?protocol=UDP" --compressed
expect_body "batch UDP, curl --compressed" "$BATCH_UDP_EIP"

e2e_daemon_stop
expect_eq "exit status after SIGTERM" 0 "$E2E_RC"

e2e_finish
