#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# e2e: every error answer of /zstack/v1/vips/{uuid}/usedports, with exact status, body and
# Content-Type, in auth mode "none" and "tokens", and the daemon's refusal of unsafe token files.
#
#   bash tests/e2e/test_errors.sh /path/to/vipportd      (root)
#
# Texts: zstack-api.md §5.2 (plain-text 400/404, JSON 503 bodies without "cost"), and vipportd's
# deliberate differences (§17): 405 with Allow for other methods, session checked before parameters.

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
e2e_require_root

API=/zstack/v1/vips
TEXT="text/plain; charset=utf-8"
JSON="application/json; charset=utf-8"
JOB32=0123456789abcdef0123456789abcdef

# expect_text WHAT STATUS BODY: a plain-text answer.
expect_text() {
    expect_status "$1" "$2"
    expect_body "$1" "$3"
    expect_header "$1" Content-Type "$TEXT"
}

# expect_api_error WHAT GOLDEN: a ZStack 503 error body.
expect_api_error() {
    expect_status "$1" 503
    expect_json "$1" "errors/$2"
    expect_header "$1" Content-Type "$JSON"
}

# ================================ auth mode "none" ================================================
e2e_netns_create NS
CFG=$(e2e_config none.toml <<EOF
listen = ["127.0.0.1:$E2E_PORT"]

[[vip]]
uuid = "vip-1"
ip = "192.0.2.10"

[auth]
mode = "none"
EOF
)
e2e_daemon_start "$NS" "$CFG"

e2e_get "$NS" "$API/vip-1/usedports?protocol=TCP"
expect_status "control: a valid request" 200
expect_json "control: a valid request" errors/ok_empty.json

# 400: Authorization header, checked even in mode "none" (ZStack clients always send it).
e2e_http "$NS" "$API/vip-1/usedports?protocol=TCP"
expect_text "no Authorization" 400 "missing header 'Authorization'"
e2e_http "$NS" "$API/vip-1/usedports?protocol=TCP" -H "Authorization: Bearer x"
expect_text "Authorization: Bearer x" 400 "Authorization type must be 'OAuth'"
e2e_http "$NS" "$API/vip-1/usedports?protocol=TCP" -H "Authorization: oauth x"
expect_text "Authorization: oauth (case-sensitive scheme)" 400 "Authorization type must be 'OAuth'"
# The AccessKey scheme is recognised; its cases are in test_auth.sh.
e2e_http "$NS" "$API/vip-1/usedports?protocol=TCP" -H "Authorization: ZStack id:signature"
expect_text "Authorization: ZStack without Date" 400 \
    "'Date' must be incuded in request header"

# 400: a scalar parameter given twice.
e2e_get "$NS" "$API/vip-1/usedports?protocol=TCP&protocol=UDP"
expect_text "repeated protocol" 400 \
    "Invalid query parameter[protocol], only one value is allowed for the parameter but multiple values found"

# 400: X-Job-UUID must be 32 characters.
e2e_get "$NS" "$API/vip-1/usedports?protocol=TCP" -H "X-Job-UUID: ${JOB32:1}"
expect_text "X-Job-UUID of 31 characters" 400 \
    "Invalid header[X-Job-UUID], it must be a UUID with '-' stripped"
e2e_get "$NS" "$API/vip-1/usedports?protocol=TCP" -H "X-Job-UUID: ${JOB32}0"
expect_text "X-Job-UUID of 33 characters" 400 \
    "Invalid header[X-Job-UUID], it must be a UUID with '-' stripped"
e2e_get "$NS" "$API/vip-1/usedports?protocol=TCP" -H "X-Job-UUID: $JOB32"
expect_status "X-Job-UUID of 32 characters" 200
expect_json "X-Job-UUID of 32 characters" errors/ok_empty.json

# 404: unknown paths, with the /zstack context stripped from the message.
e2e_get "$NS" "$API/vip-1"
expect_text "unknown path /zstack/v1/vips/vip-1" 404 "no api mapping to /v1/vips/vip-1"
e2e_get "$NS" "/zstack/v1/zones?protocol=TCP"
expect_text "unknown path /zstack/v1/zones" 404 "no api mapping to /v1/zones"
e2e_get "$NS" "$API/a/b/usedports?protocol=TCP"
expect_text "uuid containing '/'" 404 "no api mapping to /v1/vips/a/b/usedports"

# 405: only GET and HEAD.
e2e_get "$NS" "$API/vip-1/usedports?protocol=TCP" -X POST
expect_text "POST" 405 "method POST not allowed, use GET or HEAD"
expect_header "POST" Allow "GET, HEAD"
e2e_get "$NS" "$API/vip-1/usedports?protocol=TCP" -X DELETE
expect_text "DELETE" 405 "method DELETE not allowed, use GET or HEAD"
expect_header "DELETE" Allow "GET, HEAD"

# 503 SYS.1007: protocol missing or not TCP/UDP (any case accepted, see test_usedports.sh).
e2e_get "$NS" "$API/vip-1/usedports"
expect_api_error "missing protocol" protocol_missing.json
e2e_get "$NS" "$API/vip-1/usedports?Protocol=TCP"
expect_api_error "Protocol= (names are case-sensitive)" protocol_missing.json
e2e_get "$NS" "$API/vip-1/usedports?protocol=icmp"
expect_api_error "protocol=icmp" protocol_icmp.json
e2e_get "$NS" "$API/vip-1/usedports?protocol="
expect_api_error "empty protocol" protocol_empty.json

# 503 SYS.1003: neither a configured uuid nor an address.
e2e_get "$NS" "$API/abc/usedports?protocol=TCP"
expect_api_error "unknown uuid" uuid_unknown.json
# A protocol error wins over an unknown uuid (ZStack's validation order).
e2e_get "$NS" "$API/abc/usedports?protocol=icmp"
expect_api_error "bad protocol and unknown uuid" protocol_icmp.json

# ================================ auth mode "tokens" ==============================================
e2e_netns_create NS2
TOKENS=$E2E_TMP/tokens
printf '# e2e tokens\n\ntoken-one\n   token-two   \n' >"$TOKENS"
chmod 0600 "$TOKENS"
CFG2=$(e2e_config tokens.toml <<EOF
listen = ["127.0.0.1:$E2E_PORT"]

[[vip]]
uuid = "vip-1"
ip = "192.0.2.10"

[auth]
mode = "tokens"
tokens_file = "$TOKENS"
EOF
)
e2e_daemon_start "$NS2" "$CFG2"

e2e_http "$NS2" "$API/vip-1/usedports?protocol=TCP" -H "Authorization: OAuth wrong"
expect_api_error "wrong token" session_expired.json
e2e_http "$NS2" "$API/vip-1/usedports?protocol=TCP" -H "Authorization: OAuth"
expect_api_error "empty token" session_expired.json
e2e_http "$NS2" "$API/vip-1/usedports?protocol=TCP" -H "Authorization: OAuth # e2e tokens"
expect_api_error "a comment line is not a token" session_expired.json
# The session is checked before the parameters: no uuid enumeration without a token.
e2e_http "$NS2" "$API/abc/usedports?protocol=TCP" -H "Authorization: OAuth wrong"
expect_api_error "wrong token and unknown uuid" session_expired.json
e2e_http "$NS2" "$API/vip-1/usedports?protocol=icmp" -H "Authorization: OAuth wrong"
expect_api_error "wrong token and bad protocol" session_expired.json
# ... but after the Authorization format.
e2e_http "$NS2" "$API/vip-1/usedports?protocol=TCP"
expect_text "tokens mode, no Authorization" 400 "missing header 'Authorization'"

e2e_http "$NS2" "$API/vip-1/usedports?protocol=TCP" -H "Authorization: OAuth token-one"
expect_status "right token" 200
expect_json "right token" errors/ok_empty.json
e2e_http "$NS2" "$API/vip-1/usedports?protocol=TCP" -H "Authorization: OAuth   token-two  "
expect_status "second token, surrounding spaces" 200
expect_json "second token, surrounding spaces" errors/ok_empty.json
e2e_http "$NS2" "$API/vip-1/usedports?protocol=TCP" -H "Authorization: OAuthtoken-one"
expect_status "no space after OAuth (ZStack strips the prefix)" 200
expect_json "no space after OAuth (ZStack strips the prefix)" errors/ok_empty.json
e2e_http "$NS2" "$API/abc/usedports?protocol=TCP" -H "Authorization: OAuth token-one"
expect_api_error "right token, unknown uuid" uuid_unknown.json
e2e_daemon_stop

# ================================ unsafe token files ==============================================
# The daemon must refuse to start (non-zero exit, not a timeout) and name the file.
e2e_netns_create NS3
refuse() { # refuse WHAT CONFIG FILE
    e2e_run refuse ip netns exec "$NS3" "$VIPPORTD" --config "$2"
    if [[ $E2E_RC == 0 || $E2E_RC == 124 || $E2E_RC == 137 ]]; then
        _e2e_fail "$1: daemon refuses to start (exit status $E2E_RC)"
    else
        _e2e_ok "$1: daemon refuses to start (exit status $E2E_RC)"
    fi
    expect_contains "$1: message names the file" "$3" "$E2E_STDERR"
}
for mode in 0644 0640 0604; do
    bad=$E2E_TMP/tokens-$mode
    printf 'token-one\n' >"$bad"
    chmod "$mode" "$bad"
    cfg=$(e2e_config "tokens-$mode.toml" <<EOF
listen = ["127.0.0.1:$E2E_PORT"]
[auth]
mode = "tokens"
tokens_file = "$bad"
EOF
)
    refuse "tokens file mode $mode" "$cfg" "$bad"
done
cfg=$(e2e_config tokens-missing.toml <<EOF
listen = ["127.0.0.1:$E2E_PORT"]
[auth]
mode = "tokens"
tokens_file = "$E2E_TMP/no-such-tokens"
EOF
)
refuse "missing tokens file" "$cfg" "$E2E_TMP/no-such-tokens"

e2e_finish
