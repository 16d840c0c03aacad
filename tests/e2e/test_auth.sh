#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# e2e: authentication. Mode "tokens" with sha256 entries, SIGHUP reload and the AccessKey scheme
# (signatures computed independently with python3's hmac/base64); mode "zstack" against a fake
# management node (tests/e2e/fake_mn.py) inside the namespace: caching, an invalid session, a
# silent node (timeout) and an unreachable node (503 SYS.1006), never failing open.
#
#   bash tests/e2e/test_auth.sh /path/to/vipportd      (root)
#
# Texts: zstack-api.md §5.2 (RestServer's plain-text AccessKey errors, ID.1001), §7 (SYS.1006).

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
e2e_require_root
command -v python3 >/dev/null || e2e_die "python3 is required"

API=/zstack/v1/vips
PATH_SIGNED=/v1/vips/vip-1/usedports
TEXT="text/plain; charset=utf-8"
JSON="application/json; charset=utf-8"
FAKE_MN=$E2E_DIR/fake_mn.py

expect_text() { # expect_text WHAT STATUS BODY
    expect_status "$1" "$2"
    expect_body "$1" "$3"
    expect_header "$1" Content-Type "$TEXT"
}
expect_api_error() { # expect_api_error WHAT GOLDEN
    expect_status "$1" 503
    expect_json "$1" "errors/$2"
    expect_header "$1" Content-Type "$JSON"
}

# http_date OFFSET_SECONDS: an RFC 1123 date (what the Java SDK sends), OFFSET from now.
http_date() {
    python3 -c 'import email.utils, sys, time
print(email.utils.formatdate(time.time() + float(sys.argv[1]), usegmt=True))' "$1"
}
# sign SECRET DATE PATH [METHOD]: base64(HMAC-SHA1(SECRET, METHOD "\n" DATE "\n" PATH)).
sign() {
    python3 -c 'import base64, hashlib, hmac, sys
msg = "%s\n%s\n%s" % (sys.argv[4], sys.argv[2], sys.argv[3])
print(base64.b64encode(hmac.new(sys.argv[1].encode(), msg.encode(), hashlib.sha1).digest()).decode())' \
        "$1" "$2" "$3" "${4:-GET}"
}
# ak_get NS ID SECRET DATE [PATH_SIGNED]: GET vip-1 TCP with an AccessKey Authorization and Date.
ak_get() {
    local sig
    sig=$(sign "$3" "$4" "${5:-$PATH_SIGNED}")
    e2e_http "$1" "$API/vip-1/usedports?protocol=TCP" \
        -H "Authorization: ZStack $2:$sig" -H "Date: $4"
}

# ================================ mode "tokens" + AccessKey file ==================================
e2e_netns_create NS
TOKENS=$E2E_TMP/tokens
DIGEST=$(printf %s digest-only-token | sha256sum | cut -d' ' -f1)
printf '# e2e tokens\nplain-token\nsha256:%s\n' "$DIGEST" >"$TOKENS"
chmod 0600 "$TOKENS"
KEYS=$E2E_TMP/access-keys
printf '# ZStack AccessKey pairs: <AccessKeyId> <AccessKeySecret>\nAK1 s3cret-1\nAK2\ts3cret-2\n' >"$KEYS"
chmod 0600 "$KEYS"
CFG=$(e2e_config tokens.toml <<EOF
listen = ["127.0.0.1:$E2E_PORT"]

[[vip]]
uuid = "vip-1"
ip = "192.0.2.10"

[auth]
mode = "tokens"
tokens_file = "$TOKENS"
access_keys_file = "$KEYS"
EOF
)
e2e_daemon_start "$NS" "$CFG"

# --- tokens file: plain and sha256 entries
e2e_http "$NS" "$API/vip-1/usedports?protocol=TCP" -H "Authorization: OAuth plain-token"
expect_status "plain token" 200
e2e_http "$NS" "$API/vip-1/usedports?protocol=TCP" -H "Authorization: OAuth digest-only-token"
expect_status "token given by its sha256 digest" 200
expect_json "token given by its sha256 digest" errors/ok_empty.json
e2e_http "$NS" "$API/vip-1/usedports?protocol=TCP" -H "Authorization: OAuth sha256:$DIGEST"
expect_api_error "the digest line itself is not a token" session_expired.json
e2e_http "$NS" "$API/vip-1/usedports?protocol=TCP" -H "Authorization: OAuth new-token"
expect_api_error "token not (yet) in the file" session_expired.json

# --- SIGHUP re-reads the tokens file
printf 'new-token\n' >>"$TOKENS"
kill -HUP "$E2E_DAEMON_PID"
end=$(($(_e2e_now_ms) + E2E_DEADLINE * 1000))
while :; do
    e2e_http "$NS" "$API/vip-1/usedports?protocol=TCP" -H "Authorization: OAuth new-token"
    [[ $HTTP_STATUS == 200 ]] && break
    (($(_e2e_now_ms) > end)) && break
    sleep 0.05
done
expect_status "token added, then SIGHUP" 200
e2e_http "$NS" "$API/vip-1/usedports?protocol=TCP" -H "Authorization: OAuth plain-token"
expect_status "old token still valid after SIGHUP" 200

# --- AccessKey scheme, signatures from python3
NOW=$(http_date 0)
ak_get "$NS" AK1 s3cret-1 "$NOW"
expect_status "AccessKey, good signature" 200
expect_json "AccessKey, good signature" errors/ok_empty.json
ak_get "$NS" AK2 s3cret-2 "$NOW"
expect_status "AccessKey, second key (tab-separated in the file)" 200
ak_get "$NS" AK1 s3cret-2 "$NOW"
expect_api_error "AccessKey, bad signature" session_expired.json
ak_get "$NS" AK9 s3cret-1 "$NOW"
expect_api_error "AccessKey, unknown key" session_expired.json
ak_get "$NS" AK1 s3cret-1 "$NOW" /v1/vips/other/usedports
expect_api_error "AccessKey, signature for another path" session_expired.json
ak_get "$NS" AK1 s3cret-1 "$(http_date -1200)"
expect_text "AccessKey, Date 20 minutes old" 403 "requestTimeTooSkewed"
ak_get "$NS" AK1 s3cret-1 "$(http_date 1200)"
expect_text "AccessKey, Date 20 minutes ahead" 403 "requestTimeTooSkewed"
ak_get "$NS" AK1 s3cret-1 "$(http_date -600)"
expect_status "AccessKey, Date 10 minutes old (inside the window)" 200
e2e_http "$NS" "$API/vip-1/usedports?protocol=TCP" \
    -H "Authorization: ZStack AK1:$(sign s3cret-1 "$NOW" "$PATH_SIGNED")"
expect_text "AccessKey, no Date" 400 "'Date' must be incuded in request header"
e2e_http "$NS" "$API/vip-1/usedports?protocol=TCP" \
    -H "Authorization: ZStack AK1:x" -H "Date: 2024-01-01T00:00:00Z"
expect_text "AccessKey, Date not RFC 1123" 400 \
    "'Date' format error, correct format is 'EEE, dd MMM yyyy HH:mm:ss z'"
e2e_http "$NS" "$API/vip-1/usedports?protocol=TCP" -H "Authorization: ZStack AK1" -H "Date: $NOW"
expect_text "AccessKey, no signature" 400 "accessKey format is 'ZStack AccessKeyId:Signature'"
e2e_daemon_stop

# ================================ unsafe access keys file =========================================
OPEN_KEYS=$E2E_TMP/access-keys-open
printf 'AK1 s3cret-1\n' >"$OPEN_KEYS"
chmod 0644 "$OPEN_KEYS"
CFG_OPEN=$(e2e_config keys-open.toml <<EOF
listen = ["127.0.0.1:$E2E_PORT"]
[auth]
mode = "tokens"
tokens_file = "$TOKENS"
access_keys_file = "$OPEN_KEYS"
EOF
)
e2e_run refuse ip netns exec "$NS" "$VIPPORTD" --config "$CFG_OPEN"
if [[ $E2E_RC == 0 || $E2E_RC == 124 || $E2E_RC == 137 ]]; then
    _e2e_fail "access keys file mode 0644: daemon refuses to start (exit status $E2E_RC)"
else
    _e2e_ok "access keys file mode 0644: daemon refuses to start (exit status $E2E_RC)"
fi
expect_contains "access keys file mode 0644: message names the file and the mode" \
    "access keys file '$OPEN_KEYS': mode 0644" "$E2E_STDERR"

# ================================ mode "zstack" ===================================================
e2e_netns_create NZ
n=$((++E2E_SEQ))
MN_FIFO=$E2E_TMP/mn.$n.fifo
mkfifo "$MN_FIFO"
ip netns exec "$NZ" python3 "$FAKE_MN" s-good >"$MN_FIFO" 2>"$E2E_TMP/mn.$n.err" &
MN_PID=$!
E2E_PIDS+=("$MN_PID")
read -r -t "$E2E_DEADLINE" line <"$MN_FIFO" || e2e_die "fake management node did not start"
[[ $line == ready* ]] || e2e_die "fake management node: $line $(cat "$E2E_TMP/mn.$n.err")"
MN_URL="http://127.0.0.1:${line#ready }"
mn_count() { ip netns exec "$NZ" curl -sS --max-time 5 "$MN_URL/count"; }

CFGZ=$(e2e_config zstack.toml <<EOF
listen = ["127.0.0.1:$E2E_PORT"]

[[vip]]
uuid = "vip-1"
ip = "192.0.2.10"

[auth]
mode = "zstack"
management_node = "$MN_URL"
valid_ttl_seconds = 600
invalid_ttl_seconds = 600
validation_timeout_ms = 500
access_keys_file = "$KEYS"
EOF
)
e2e_daemon_start "$NZ" "$CFGZ"

for i in 1 2 3; do
    e2e_http "$NZ" "$API/vip-1/usedports?protocol=TCP" -H "Authorization: OAuth s-good"
    expect_status "zstack: valid session, request $i" 200
done
expect_eq "zstack: three requests, one validation (cache)" 1 "$(mn_count)"
for i in 1 2; do
    e2e_http "$NZ" "$API/vip-1/usedports?protocol=TCP" -H "Authorization: OAuth s-bad"
    expect_api_error "zstack: invalid session, request $i" session_expired.json
done
expect_eq "zstack: invalid session validated once (negative cache)" 2 "$(mn_count)"
ak_get "$NZ" AK1 s3cret-1 "$(http_date 0)"
expect_status "zstack: AccessKey next to sessions" 200
expect_eq "zstack: AccessKey needs no management node" 2 "$(mn_count)"

# A node that accepts but never answers: the validation times out (500 ms), 503 SYS.1006.
ip netns exec "$NZ" curl -sS --max-time 5 -o /dev/null "$MN_URL/silent"
e2e_http "$NZ" "$API/vip-1/usedports?protocol=TCP" -H "Authorization: OAuth s-slow"
expect_status "zstack: silent node" 503
expect_body "zstack: silent node" \
    "{\"error\":{\"code\":\"SYS.1006\",\"description\":\"An operation failed\",\"details\":\"cannot validate the session with the management node $MN_URL: no answer within 500 ms\"}}"
expect_header "zstack: silent node" Content-Type "$JSON"

# The node is gone: new sessions fail closed; a session validated before is still cached.
e2e_release "$MN_PID"
e2e_http "$NZ" "$API/vip-1/usedports?protocol=TCP" -H "Authorization: OAuth s-new"
expect_status "zstack: unreachable node" 503
expect_body "zstack: unreachable node" \
    "{\"error\":{\"code\":\"SYS.1006\",\"description\":\"An operation failed\",\"details\":\"cannot validate the session with the management node $MN_URL: connect: Connection refused\"}}"
e2e_http "$NZ" "$API/abc/usedports?protocol=TCP" -H "Authorization: OAuth s-new"
expect_status "zstack: unreachable node, unknown uuid: still the session error first" 503
expect_contains "zstack: unreachable node, unknown uuid" '"code":"SYS.1006"' "$(cat "$HTTP_BODY_FILE")"
e2e_http "$NZ" "$API/vip-1/usedports?protocol=TCP" -H "Authorization: OAuth s-good"
expect_status "zstack: cached valid session while the node is down" 200
e2e_daemon_stop

e2e_finish
