#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# e2e: provenance. GET /vipportd/v1/vips/{uuid-or-ip}/claims on the real daemon, and the
# `vipportd query` subcommand (table, --json, --explain, --all, exit codes, colour only on a
# terminal), over real sockets whose owning process is known and real rules with comments.
#
#   bash tests/e2e/test_claims.sh /path/to/vipportd      (root; needs nft and python3)
#
# Namespace layout: veth vip0 <-> peer0, both ends inside the namespace.
#   vip0  192.0.2.10/24  VIP A (uuid A): a TCP socket, an nft DNAT of 8000-8010 with a comment,
#                        and (with iptables-legacy) a legacy REDIRECT of UDP 5353 with a comment
#         192.0.2.20/24  VIP B (uuid B): whole-IP DNAT (EIP) with a comment
#   a UDP socket on 0.0.0.0 (every VIP), both sockets held by one vipportd_holdport process.
#   VIP C (uuid C, 192.0.2.30) is registered through PUT /vipportd/v1/vips/C (state_dir).
# Namespace NS2: VIP D (uuid D, 198.51.100.7, netns = NS2) with a TCP socket of its own holder.
# The daemon listens on 127.0.0.1:18080 only.

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
e2e_require_root
command -v nft >/dev/null || e2e_die "nft (package nftables) is required"
command -v python3 >/dev/null || e2e_die "python3 is required (JSON checks)"

A=6a1f0e2d3c4b45a69788796a5b4c3d2e
B=7b2e1f0d3c4b45a69788796a5b4c3d2f
C=8c3f2e1d0c4b45a69788796a5b4c3d30
D=9d403f2e1d4b45a69788796a5b4c3d31

e2e_netns_create NS
e2e_veth "$NS" vip0 peer0
e2e_addr "$NS" vip0 192.0.2.10/24
e2e_addr "$NS" vip0 192.0.2.20/24

e2e_hold "$NS" tcp:192.0.2.10:0 udp:0.0.0.0:0
read -r TCP_PORT UDP_PORT <<<"$E2E_HOLD_PORTS"
HOLDER=$E2E_HOLD_PID
# /proc/<pid>/comm is the executable's name cut to 15 bytes (TASK_COMM_LEN).
HOLDER_NAME=$(basename "$HOLDPORT" | cut -c1-15)

e2e_netns_create NS2
e2e_addr "$NS2" lo 198.51.100.7/32
e2e_hold "$NS2" tcp:198.51.100.7:0
D_PORT=$E2E_HOLD_PORTS
D_HOLDER=$E2E_HOLD_PID

RULES=$E2E_TMP/rules.nft
cat >"$RULES" <<'EOF'
table ip e2e {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 192.0.2.10 tcp dport 8000-8010 dnat to 10.0.0.5 comment "e2e web"
		ip daddr 192.0.2.20 dnat to 10.0.0.6 comment "e2e eip"
	}
}
EOF
ip netns exec "$NS" nft -f "$RULES"
# The rules' handles, as `nft -a` shows them.
handle_of() {
    ip netns exec "$NS" nft -a list chain ip e2e pre |
        sed -n "/comment \"$1\"/s/.*# handle \([0-9]*\)$/\1/p"
}
WEB_HANDLE=$(handle_of "e2e web")
EIP_HANDLE=$(handle_of "e2e eip")
[[ -n $WEB_HANDLE && -n $EIP_HANDLE ]] || e2e_die "cannot read the rule handles"

LEGACY=0
if command -v iptables-legacy >/dev/null; then
    LEGACY=1
    ip netns exec "$NS" iptables-legacy -t nat -A PREROUTING -d 192.0.2.10/32 -p udp \
        --dport 5353 -m comment --comment "e2e legacy dns" -j REDIRECT --to-ports 53
fi

mkdir -m 0700 "$E2E_TMP/state"
CFG=$(e2e_config vipportd.toml <<EOF
listen = ["127.0.0.1:$E2E_PORT"]
state_dir = "$E2E_TMP/state"

[[vip]]
uuid = "$A"
ip = "192.0.2.10"

[[vip]]
uuid = "$B"
ip = "192.0.2.20"

[[vip]]
uuid = "$D"
ip = "198.51.100.7"
netns = "$NS2"
EOF
)
e2e_daemon_start "$NS" "$CFG"

# jq-free JSON access: jget FILE EXPR prints EXPR (Python, over the parsed document `d`) as
# compact JSON; helper functions: claims(d, proto), rule(d, proto, comment), sock(d, proto, port).
jget() {
    python3 - "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
def claims(d, proto):
    return d["protocols"][proto]["claims"]
def rule(d, proto, comment):
    return [c for c in claims(d, proto) if "rule" in c and c["rule"]["comment"] == comment][0]
def sock(d, proto, port):
    return [c for c in claims(d, proto) if "socket" in c and c["socket"]["port"] == port][0]
print(json.dumps(eval(sys.argv[2]), separators=(",", ":"), sort_keys=True))
PY
}

# ---- the claims endpoint ---------------------------------------------------------------------------
e2e_get "$NS" "/vipportd/v1/vips/$A/claims"
expect_status "claims A" 200
expect_header "claims A" Content-Type "application/json; charset=utf-8"
BODY_A=$E2E_TMP/claims_a.json
cp "$HTTP_BODY_FILE" "$BODY_A"
expect_eq "claims A: vip" "{\"ip\":\"192.0.2.10\",\"netns\":\"\",\"uuid\":\"$A\"}" \
    "$(jget "$BODY_A" 'd["vip"]')"
expect_eq "claims A: TCP used ports (ranges)" \
    "$(python3 -c "import json,sys; print(json.dumps(sorted(['$TCP_PORT','8000-8010'], key=lambda s:int(s.split('-')[0])), separators=(',',':')))")" \
    "$(jget "$BODY_A" 'd["protocols"]["TCP"]["used_ports"]')"
if ((LEGACY)); then
    expect_eq "claims A: UDP used ports" \
        "$(python3 -c "print('[' + ','.join('\"%d\"' % p for p in sorted({5353, $UDP_PORT})) + ']')")" \
        "$(jget "$BODY_A" 'd["protocols"]["UDP"]["used_ports"]')"
fi

# The TCP socket: where it is bound and who holds it.
expect_eq "claims A: TCP socket origin" \
    "{\"address\":\"192.0.2.10\",\"family\":\"ipv4\",\"port\":$TCP_PORT,\"state\":\"LISTEN\",\"uid\":0}" \
    "$(jget "$BODY_A" '{k: sock(d,"TCP",'"$TCP_PORT"')["socket"][k] for k in ("address","family","port","state","uid")}')"
expect_eq "claims A: TCP socket process" "{\"name\":\"$HOLDER_NAME\",\"pid\":$HOLDER}" \
    "$(jget "$BODY_A" '{k: sock(d,"TCP",'"$TCP_PORT"')["socket"]["process"][k] for k in ("name","pid")}')"
expect_eq "claims A: TCP socket ports and certainty" "[[\"$TCP_PORT\"],\"exact\"]" \
    "$(jget "$BODY_A" '[sock(d,"TCP",'"$TCP_PORT"')["ports"], sock(d,"TCP",'"$TCP_PORT"')["certainty"]]')"
INODE=$(jget "$BODY_A" 'sock(d,"TCP",'"$TCP_PORT"')["socket"]["inode"]')
expect_eq "claims A: the inode is one of the holder's descriptors" "socket:[$INODE]" \
    "$(for fd in /proc/"$HOLDER"/fd/*; do readlink "$fd"; done | grep -Fx "socket:[$INODE]" || true)"
# The wildcard UDP socket covers A too, with the same holder.
expect_eq "claims A: UDP wildcard socket" "[\"0.0.0.0\",\"UNCONN\",$HOLDER]" \
    "$(jget "$BODY_A" '[sock(d,"UDP",'"$UDP_PORT"')["socket"][k] for k in ("address","state")] + [sock(d,"UDP",'"$UDP_PORT"')["socket"]["process"]["pid"]]')"

# The nft rule, with its comment (userdata), handle and target; ports as one range.
expect_eq "claims A: nft DNAT rule" \
    "{\"certainty\":\"exact\",\"ports\":[\"8000-8010\"],\"rule\":{\"chain\":\"pre\",\"comment\":\"e2e web\",\"family\":\"ip\",\"handle\":$WEB_HANDLE,\"kind\":\"dnat\",\"path\":[\"pre\"],\"source\":\"nftables\",\"table\":\"e2e\",\"target\":\"10.0.0.5\"},\"scope\":\"192.0.2.10\"}" \
    "$(jget "$BODY_A" 'rule(d,"TCP","e2e web")')"
if ((LEGACY)); then
    expect_eq "claims A: legacy REDIRECT rule" \
        '{"certainty":"exact","ports":["5353"],"rule":{"chain":"PREROUTING","comment":"e2e legacy dns","family":"ip","handle":1,"kind":"REDIRECT","path":["PREROUTING"],"source":"iptables-legacy","table":"nat","target":":53"},"scope":"192.0.2.10"}' \
        "$(jget "$BODY_A" 'rule(d,"UDP","e2e legacy dns")')"
fi

# One protocol, by address instead of uuid; protocol in any case.
e2e_get "$NS" "/vipportd/v1/vips/192.0.2.20/claims?protocol=udp"
expect_status "claims B by address, UDP" 200
expect_eq "claims B: only UDP" '["UDP"]' "$(jget "$HTTP_BODY_FILE" 'list(d["protocols"])')"
expect_eq "claims B: whole-IP DNAT holds every port" '["1-65535"]' \
    "$(jget "$HTTP_BODY_FILE" 'd["protocols"]["UDP"]["used_ports"]')"
expect_eq "claims B: EIP rule" "[[\"1-65535\"],$EIP_HANDLE,\"dnat\",\"10.0.0.6\"]" \
    "$(jget "$HTTP_BODY_FILE" '[rule(d,"UDP","e2e eip")["ports"]] + [rule(d,"UDP","e2e eip")["rule"][k] for k in ("handle","kind","target")]')"

# The daemon's own listener on 127.0.0.1, held by the daemon.
e2e_get "$NS" "/vipportd/v1/vips/127.0.0.1/claims?protocol=TCP"
expect_status "claims 127.0.0.1" 200
expect_eq "claims 127.0.0.1: the daemon holds its listener" "[\"vipportd\",$E2E_DAEMON_PID]" \
    "$(jget "$HTTP_BODY_FILE" '[sock(d,"TCP",'"$E2E_PORT"')["socket"]["process"][k] for k in ("name","pid")]')"

# A VIP in another namespace: its own scan, and the socket's owner there.
e2e_get "$NS" "/vipportd/v1/vips/$D/claims?protocol=TCP"
expect_status "claims D (netns $NS2)" 200
expect_eq "claims D: netns, used ports, owner" \
    "[\"$NS2\",[\"$D_PORT\"],\"$HOLDER_NAME\",$D_HOLDER]" \
    "$(jget "$HTTP_BODY_FILE" '[d["vip"]["netns"], d["protocols"]["TCP"]["used_ports"]] + [sock(d,"TCP",'"$D_PORT"')["socket"]["process"][k] for k in ("name","pid")]')"

# A VIP registered through the API has claims too.
e2e_get "$NS" "/vipportd/v1/vips/$C" -X PUT -H 'Content-Type: application/json' \
    --data '{"ip":"192.0.2.30"}'
expect_status "PUT VIP C" 201
e2e_get "$NS" "/vipportd/v1/vips/$C/claims?protocol=UDP"
expect_status "claims C (registered)" 200
expect_eq "claims C: the wildcard UDP socket" "[\"$UDP_PORT\"]" \
    "$(jget "$HTTP_BODY_FILE" 'd["protocols"]["UDP"]["used_ports"]')"

# HEAD, errors.
e2e_get "$NS" "/vipportd/v1/vips/$A/claims" -I
expect_status "HEAD claims" 200
e2e_get "$NS" "/vipportd/v1/vips/$A/claims?protocol=icmp"
expect_status "bad protocol" 400
expect_eq "bad protocol: error" '["SYS.1007","invalid query parameter[protocol]: expected TCP or UDP (or no protocol parameter for both), got '"'icmp'"'"]' \
    "$(jget "$HTTP_BODY_FILE" '[d["error"]["code"], d["error"]["details"]]')"
e2e_get "$NS" "/vipportd/v1/vips/no-such-vip/claims"
expect_status "unknown VIP" 404
expect_eq "unknown VIP: error code" '"SYS.1003"' "$(jget "$HTTP_BODY_FILE" 'd["error"]["code"]')"
e2e_http "$NS" "/vipportd/v1/vips/$A/claims"
expect_status "no Authorization" 400
e2e_get "$NS" "/vipportd/v1/vips/$A/claims" -X POST
expect_status "POST" 405
expect_header "POST" Allow "GET, HEAD"

# The ZStack endpoint is unchanged by all this.
expect_used_ports "usedports A TCP" "$NS" "$A" TCP "$TCP_PORT" 8000-8010

# ---- vipportd query -----------------------------------------------------------------------------
query() { e2e_run "query.$((++E2E_SEQ))" ip netns exec "$NS" "$VIPPORTD" query "$@"; }

query "$A" --config "$CFG" --json
expect_eq "query --json: exit status" 0 "$E2E_RC"
printf '%s\n' "$E2E_STDOUT" >"$E2E_TMP/query_a.json"
# Same document as the endpoint, but for the snapshot (another scan).
expect_eq "query --json = claims endpoint (snapshot aside)" \
    "$(jget "$BODY_A" '{k: v for k, v in d.items() if k != "snapshot"}')" \
    "$(jget "$E2E_TMP/query_a.json" '{k: v for k, v in d.items() if k != "snapshot"}')"
expect_eq "query --json: snapshot of its own scan" '1' "$(jget "$E2E_TMP/query_a.json" 'd["snapshot"]["sequence"]')"

query "$A" --config "$CFG" --protocol tcp
expect_eq "query table: exit status" 0 "$E2E_RC"
expect_eq "query table: no colour off a terminal" 0 "$(grep -c $'\x1b' <<<"$E2E_STDOUT" || true)"
expect_contains "query table: heading" "VIP 192.0.2.10  uuid $A  netns (own)  scan #1" "$E2E_STDOUT"
expect_contains "query table: header row" "PROTO  PORTS      CLAIM   HOLDER" "$E2E_STDOUT"
expect_contains "query table: socket row" \
    "socket  ${HOLDER_NAME}[$HOLDER]  192.0.2.10:$TCP_PORT LISTEN uid 0 inode" "$E2E_STDOUT"
expect_contains "query table: rule row (ranges collapsed)" \
    "TCP    8000-8010  dnat" "$E2E_STDOUT"
expect_contains "query table: rule detail" \
    "ip e2e pre handle $WEB_HANDLE -> 10.0.0.5 \"e2e web\"" "$E2E_STDOUT"
# Aligned: every row's columns start where the header's do.
expect_eq "query table: columns aligned" "ok" "$(python3 -c '
import sys
lines = sys.stdin.read().splitlines()
h = [l for l in lines if l.startswith("PROTO")][0]
cols = [h.index(n) for n in ("PORTS", "CLAIM", "HOLDER", "DETAIL")]
rows = [l for l in lines if l.startswith(("TCP ", "UDP "))]
bad = [r for r in rows if any(r[c - 1] != " " or r[c] == " " for c in cols)]
print("ok" if rows and not bad else "misaligned: %r" % (bad or lines))
' <<<"$E2E_STDOUT")"
expect_contains "query table: used ports" "used TCP: $(printf '%s\n' "$TCP_PORT" 8000-8010 | sort -n | paste -sd,)" "$E2E_STDOUT"

query "$A" --config "$CFG" --explain --protocol=TCP
expect_contains "query --explain: socket" \
    "    TCP $TCP_PORT: socket 192.0.2.10:$TCP_PORT LISTEN held by $HOLDER_NAME (pid $HOLDER), uid 0" \
    "$E2E_STDOUT"
expect_contains "query --explain: rule" \
    "    TCP 8000-8010: nftables ip e2e pre handle $WEB_HANDLE: dnat to 10.0.0.5 (comment \"e2e web\"); rewrites packets to 192.0.2.10" \
    "$E2E_STDOUT"

query --all --config "$CFG" --json --protocol udp
expect_eq "query --all --json: exit status" 0 "$E2E_RC"
printf '%s\n' "$E2E_STDOUT" >"$E2E_TMP/query_all.json"
# Files' VIPs and the registration, in uuid order; D from its own namespace's scan.
expect_eq "query --all --json: every registered VIP, by uuid" \
    "[[\"$A\",\"\"],[\"$B\",\"\"],[\"$C\",\"\"],[\"$D\",\"$NS2\"]]" \
    "$(jget "$E2E_TMP/query_all.json" '[[v["vip"]["uuid"], v["vip"]["netns"]] for v in d["vips"]]')"
expect_eq "query --all --json: one scan per namespace" '[1,1,1,1]' \
    "$(jget "$E2E_TMP/query_all.json" '[v["snapshot"]["sequence"] for v in d["vips"]]')"

query "$D" --config "$CFG" --protocol tcp
expect_eq "query VIP in another namespace: exit status" 0 "$E2E_RC"
expect_contains "query VIP in another namespace: heading" "netns $NS2" "$E2E_STDOUT"
expect_contains "query VIP in another namespace: owner" \
    "socket  ${HOLDER_NAME}[$D_HOLDER]  198.51.100.7:$D_PORT LISTEN" "$E2E_STDOUT"

# Colour only on a terminal, and never with NO_COLOR.
TTY_OUT=$(ip netns exec "$NS" script -qec "$VIPPORTD query $A --config $CFG --protocol tcp" /dev/null)
expect_contains "query on a terminal: bold header" $'\x1b[1mPROTO' "$TTY_OUT"
TTY_OUT=$(NO_COLOR=1 ip netns exec "$NS" script -qec "$VIPPORTD query $A --config $CFG --protocol tcp" /dev/null)
expect_eq "query on a terminal with NO_COLOR: no escape" "0" "$(grep -c $'\x1b' <<<"$TTY_OUT" || true)"

# Exit codes.
query no-such-vip --config "$CFG"
expect_eq "query unknown VIP: exit status" 2 "$E2E_RC"
expect_eq "query unknown VIP: message" \
    "vipportd query: unknown VIP 'no-such-vip': not a registered uuid (4 VIPs; configuration $CFG) and not a unicast IPv4/IPv6 address" \
    "$E2E_STDERR"
query "$A" --config "$CFG" --protocol icmp
expect_eq "query bad protocol: exit status" 2 "$E2E_RC"
expect_eq "query bad protocol: message" "vipportd query: unknown protocol 'icmp' (tcp, udp or all)" \
    "$E2E_STDERR"
# Without CAP_NET_ADMIN nf_tables refuses the dump (kernel.md §6): a failed required source.
e2e_run "query.nocaps" ip netns exec "$NS" setpriv --bounding-set=-all --inh-caps=-all -- \
    "$VIPPORTD" query "$A" --config "$CFG"
expect_eq "query without CAP_NET_ADMIN: exit status" 1 "$E2E_RC"
expect_contains "query without CAP_NET_ADMIN: message" \
    "vipportd query: VIP $A (192.0.2.10): kernel source nftables failed:" "$E2E_STDERR"
expect_eq "query without CAP_NET_ADMIN: nothing on stdout" "" "$E2E_STDOUT"

e2e_finish
