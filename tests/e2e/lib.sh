# shellcheck shell=bash disable=SC2034 # variables set here are read by the sourcing scripts
# Helpers for the vipportd end-to-end scripts (tests/e2e/test_*.sh). Source this file, then call
# e2e_init "$@". ctest runs each script as `bash tests/e2e/test_X.sh /path/to/vipportd`.
#
# What the helpers give a script:
#   - throw-away network namespaces (vipportd-e2e-<pid>-<n>) with lo up, optional veth pairs and
#     addresses; everything started in them is killed and the namespaces deleted by an EXIT trap;
#   - the daemon started inside a namespace on the fixed port E2E_PORT (private to the namespace),
#     waited for by polling it with curl under a deadline (no blind sleeps);
#   - vipportd_holdport (tests/e2e/holdport.cpp) to hold TCP/UDP sockets without python/socat/nc;
#   - curl and raw-socket request wrappers that capture status, headers and body;
#   - expect_* assertions that compare exactly, print a unified diff on failure and keep going;
#     e2e_finish exits non-zero if any failed.
# Environment: HOLDPORT (path of vipportd_holdport; default: next to vipportd), E2E_DEADLINE
# (seconds to wait for readiness, default 15), E2E_KEEP=1 keeps the temporary directory.

set -Eeuo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_GOLDEN=$E2E_DIR/golden
E2E_PORT=18080
E2E_DEADLINE=${E2E_DEADLINE:-15}
E2E_CHECKS=0
E2E_FAILURES=0
E2E_NETNS=()
E2E_PIDS=()
E2E_LOGS=()
E2E_SEQ=0
E2E_TMP=""
VIPPORTD=""
HOLDPORT=${HOLDPORT:-}

# Results of the last e2e_http / e2e_raw call.
HTTP_STATUS=""
HTTP_HEADERS_FILE=""
HTTP_BODY_FILE=""
HTTP_REQUEST=""

e2e_log() { printf '%s\n' "$*" >&2; }

# Setup failures (not assertion failures): stop the script; the EXIT trap cleans up.
e2e_die() {
    e2e_log "e2e: error: $*"
    exit 1
}

# e2e_init /path/to/vipportd
e2e_init() {
    VIPPORTD=${1:-}
    [[ -n $VIPPORTD ]] || e2e_die "usage: bash $0 /path/to/vipportd"
    [[ -x $VIPPORTD ]] || e2e_die "$VIPPORTD is not an executable"
    VIPPORTD=$(cd "$(dirname "$VIPPORTD")" && pwd)/$(basename "$VIPPORTD")
    HOLDPORT=${HOLDPORT:-$(dirname "$VIPPORTD")/vipportd_holdport}
    command -v curl >/dev/null || e2e_die "curl is required"
    _e2e_reap_stale
    E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/vipportd-e2e.XXXXXX")
    trap e2e_cleanup EXIT
    trap 'exit 130' INT TERM
    trap 'e2e_log "e2e: error: line $LINENO: $BASH_COMMAND failed"' ERR
}

# A run killed with SIGKILL (ctest's timeout) cannot clean up: remove the namespaces of e2e runs
# whose script is gone, with whatever those runs left running inside them.
_e2e_reap_stale() {
    ((EUID == 0)) && command -v ip >/dev/null || return 0
    local ns owner pid
    for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^vipportd-e2e-[0-9]+-[0-9]+$/ { print $1 }'); do
        owner=${ns#vipportd-e2e-}
        owner=${owner%-*}
        kill -0 "$owner" 2>/dev/null && continue
        e2e_log "e2e: removing stale namespace $ns"
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null || true
        done
        ip netns del "$ns" 2>/dev/null || true
    done
}

# Namespaces, veth and routes need root; a non-root run is skipped (exit 77, for ctest's
# SKIP_RETURN_CODE) rather than failed.
e2e_require_root() {
    if ((EUID != 0)); then
        e2e_log "SKIP: $(basename "$0") needs root (network namespaces)"
        exit 77
    fi
    command -v ip >/dev/null || e2e_die "ip (iproute2) is required"
    [[ -x $HOLDPORT ]] || e2e_die "vipportd_holdport not found at $HOLDPORT (set HOLDPORT)"
}

_e2e_now_ms() {
    local t=${EPOCHREALTIME//[!0-9]/}
    echo $((t / 1000))
}

# True while PID runs (a zombie, i.e. exited but not yet reaped, counts as gone).
_e2e_alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

# e2e_wait_exit PID SECONDS: waits for PID (a child of this shell) to exit and sets E2E_RC to its
# exit status; returns 1 (E2E_RC=timeout) if it is still running after SECONDS.
E2E_RC=""
e2e_wait_exit() {
    local pid=$1 end=$(($(_e2e_now_ms) + $2 * 1000))
    while _e2e_alive "$pid"; do
        if (($(_e2e_now_ms) > end)); then
            E2E_RC=timeout
            return 1
        fi
        sleep 0.02
    done
    E2E_RC=0
    wait "$pid" 2>/dev/null || E2E_RC=$?
    return 0
}

e2e_cleanup() {
    local rc=$? pid ns
    trap - ERR
    set +e
    for pid in "${E2E_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${E2E_PIDS[@]}"; do
        if ! e2e_wait_exit "$pid" 5; then
            kill -KILL "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
        fi
    done
    for ns in "${E2E_NETNS[@]}"; do
        # Anything still inside a namespace this script created was started by this script.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null
        done
        ip netns del "$ns" 2>/dev/null || e2e_log "e2e: could not delete netns $ns"
    done
    if [[ -n $E2E_TMP ]]; then
        if [[ ${E2E_KEEP:-0} == 1 ]]; then
            e2e_log "e2e: kept $E2E_TMP"
        else
            rm -rf "$E2E_TMP"
        fi
    fi
    exit "$rc"
}

# ---- namespaces --------------------------------------------------------------------------------

# e2e_netns_create VAR: a new namespace with lo up; its name is stored in VAR.
e2e_netns_create() {
    local ns="vipportd-e2e-$$-${#E2E_NETNS[@]}"
    ip netns add "$ns"
    E2E_NETNS+=("$ns")
    ip -n "$ns" link set lo up
    printf -v "$1" '%s' "$ns"
}

# e2e_veth NS IF PEER: a veth pair with both ends inside NS, both up.
e2e_veth() {
    ip -n "$1" link add "$2" type veth peer name "$3"
    ip -n "$1" link set "$2" up
    ip -n "$1" link set "$3" up
}

# e2e_addr NS IF ADDRESS/PREFIX: IPv6 addresses skip duplicate address detection, so that they can
# be bound at once (a tentative address fails bind() with EADDRNOTAVAIL).
e2e_addr() {
    if [[ $3 == *:* ]]; then
        ip -n "$1" addr add "$3" dev "$2" nodad
    else
        ip -n "$1" addr add "$3" dev "$2"
    fi
}

# e2e_hold NS SPEC...: holds sockets inside NS with vipportd_holdport (see holdport.cpp for SPEC)
# until the script exits (or e2e_release). Waits for its "ready" line; sets E2E_HOLD_PORTS to the
# bound ports and E2E_HOLD_PID.
E2E_HOLD_PORTS=""
E2E_HOLD_PID=""
e2e_hold() {
    local ns=$1 n fifo line pid
    shift
    n=$((++E2E_SEQ))
    fifo=$E2E_TMP/hold.$n.fifo
    mkfifo "$fifo"
    ip netns exec "$ns" "$HOLDPORT" "$@" >"$fifo" 2>"$E2E_TMP/hold.$n.err" &
    pid=$!
    E2E_PIDS+=("$pid")
    # Opening the FIFO waits for the writer (opened by the shell before exec); read gets EOF at
    # once if holdport dies before "ready".
    if ! read -r -t "$E2E_DEADLINE" line <"$fifo" || [[ $line != ready* ]]; then
        e2e_die "holdport $* did not start: $(cat "$E2E_TMP/hold.$n.err")"
    fi
    E2E_HOLD_PORTS=${line#ready }
    E2E_HOLD_PID=$pid
}

# e2e_release PID: stops one holdport (its sockets close) and waits for it, bounded.
e2e_release() {
    kill -TERM "$1"
    e2e_wait_exit "$1" "$E2E_DEADLINE" || e2e_die "holdport $1 did not exit"
}

# ---- the daemon --------------------------------------------------------------------------------

# e2e_config NAME <<'EOF' ... EOF: writes a config file from stdin; prints its path. Unless the
# text sets state_dir, a private one in the temporary directory is prepended (top-level keys
# come before the first table), so the host's /var/lib/vipportd never leaks into a test.
# E2E_CONFIG_VERBATIM=1 writes the text as given (scripts that check FILE:LINE messages).
E2E_CONFIG_VERBATIM=${E2E_CONFIG_VERBATIM:-0}
e2e_config() {
    local f=$E2E_TMP/$1 text
    text=$(cat)
    if [[ $text != *state_dir* && $E2E_CONFIG_VERBATIM != 1 ]]; then
        text="state_dir = \"$E2E_TMP/state.${1%.toml}\""$'\n'"$text"
    fi
    printf '%s\n' "$text" >"$f"
    printf '%s\n' "$f"
}

# e2e_daemon_start NS CONFIG [ARGS...]: starts `vipportd --config CONFIG ARGS...` inside NS and
# waits until 127.0.0.1:E2E_PORT answers HTTP (any status). Sets E2E_DAEMON_PID, E2E_DAEMON_LOG.
# E2E_DAEMON_WRAP: an optional command prefix run inside the namespace in front of vipportd, which
# must exec it in place (e.g. `setpriv ... --`), so that E2E_DAEMON_PID stays the daemon's pid.
E2E_DAEMON_PID=""
E2E_DAEMON_LOG=""
E2E_DAEMON_WRAP=()
e2e_daemon_start() {
    local ns=$1 cfg=$2 end code
    shift 2
    E2E_DAEMON_LOG=$E2E_TMP/daemon.$((++E2E_SEQ)).log
    E2E_LOGS+=("$E2E_DAEMON_LOG")
    # `ip netns exec` execs the command in place (no fork), so $! is the daemon itself.
    ip netns exec "$ns" "${E2E_DAEMON_WRAP[@]}" "$VIPPORTD" --config "$cfg" "$@" \
        >"$E2E_DAEMON_LOG" 2>&1 &
    E2E_DAEMON_PID=$!
    E2E_PIDS+=("$E2E_DAEMON_PID")
    end=$(($(_e2e_now_ms) + E2E_DEADLINE * 1000))
    while :; do
        if ! _e2e_alive "$E2E_DAEMON_PID"; then
            e2e_wait_exit "$E2E_DAEMON_PID" 1 || true
            e2e_log "--- daemon log ($E2E_DAEMON_LOG)"
            cat "$E2E_DAEMON_LOG" >&2
            e2e_die "vipportd exited with status $E2E_RC before answering on port $E2E_PORT"
        fi
        code=$(ip netns exec "$ns" curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
            "http://127.0.0.1:$E2E_PORT/" 2>/dev/null) || true
        [[ $code != 000 && -n $code ]] && return 0
        if (($(_e2e_now_ms) > end)); then
            e2e_log "--- daemon log ($E2E_DAEMON_LOG)"
            cat "$E2E_DAEMON_LOG" >&2
            e2e_die "vipportd did not answer on 127.0.0.1:$E2E_PORT within ${E2E_DEADLINE}s"
        fi
        sleep 0.05
    done
}

# e2e_daemon_stop: SIGTERM, then waits (bounded); E2E_RC is its exit status or "timeout".
e2e_daemon_stop() {
    kill -TERM "$E2E_DAEMON_PID" 2>/dev/null || true
    e2e_wait_exit "$E2E_DAEMON_PID" "$E2E_DEADLINE" || true
}

# e2e_run OUT_PREFIX CMD...: runs CMD with a deadline; sets E2E_RC (124: timed out) and leaves
# stdout/stderr in OUT_PREFIX.out / OUT_PREFIX.err (relative to the temporary directory).
e2e_run() {
    local out=$E2E_TMP/$1
    shift
    E2E_RC=0
    timeout --kill-after=2 "$E2E_DEADLINE" "$@" >"$out.out" 2>"$out.err" || E2E_RC=$?
    E2E_STDOUT=$(cat "$out.out")
    E2E_STDERR=$(cat "$out.err")
}
E2E_STDOUT=""
E2E_STDERR=""

# ---- requests ----------------------------------------------------------------------------------

# e2e_http NS PATH [CURL_ARGS...]: one request to the daemon in NS. Sets HTTP_STATUS ("000" if no
# HTTP answer), HTTP_HEADERS_FILE, HTTP_BODY_FILE and HTTP_REQUEST (for failure messages).
e2e_http() {
    local ns=$1 path=$2 n
    shift 2
    n=$((++E2E_SEQ))
    HTTP_HEADERS_FILE=$E2E_TMP/resp.$n.headers
    HTTP_BODY_FILE=$E2E_TMP/resp.$n.body
    HTTP_REQUEST="curl $(printf '%q ' "$@")http://127.0.0.1:$E2E_PORT$path"
    : >"$HTTP_HEADERS_FILE"
    : >"$HTTP_BODY_FILE"
    HTTP_STATUS=$(ip netns exec "$ns" curl -sS --max-time 10 --path-as-is -o "$HTTP_BODY_FILE" \
        -D "$HTTP_HEADERS_FILE" -w '%{http_code}' "$@" "http://127.0.0.1:$E2E_PORT$path") ||
        true
}

# e2e_get NS PATH [CURL_ARGS...]: e2e_http with the Authorization header every API call needs.
e2e_get() {
    local ns=$1 path=$2
    shift 2
    e2e_http "$ns" "$path" -H "Authorization: OAuth e2e-session" "$@"
}

# e2e_raw NS REQUEST_TEXT: sends REQUEST_TEXT (use \r\n) over a plain TCP connection with bash's
# /dev/tcp and stores the complete raw answer: HTTP_STATUS from the status line, headers and the
# bytes after the blank line (which curl would hide for HEAD) in the usual files.
e2e_raw() {
    local ns=$1 request=$2 n raw
    n=$((++E2E_SEQ))
    raw=$E2E_TMP/resp.$n.raw
    HTTP_HEADERS_FILE=$E2E_TMP/resp.$n.headers
    HTTP_BODY_FILE=$E2E_TMP/resp.$n.body
    HTTP_REQUEST=$(printf '%s' "$request" | head -n1 | tr -d '\r')
    # The request asks for "Connection: close", so the server's close ends the read.
    # shellcheck disable=SC2016 # $1/$2 expand in the inner bash
    timeout 10 ip netns exec "$ns" bash -c \
        'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "%s" "$2" >&3 && cat <&3' \
        raw "$E2E_PORT" "$request" >"$raw" || true
    # Split at the first CRLF CRLF (the x sentinel keeps trailing newlines of the body).
    local all
    all=$(cat "$raw" && printf x)
    all=${all%x}
    if [[ $all == *$'\r\n\r\n'* ]]; then
        printf '%s\r\n' "${all%%$'\r\n\r\n'*}" >"$HTTP_HEADERS_FILE"
        printf '%s' "${all#*$'\r\n\r\n'}" >"$HTTP_BODY_FILE"
    else
        printf '%s' "$all" >"$HTTP_HEADERS_FILE"
        : >"$HTTP_BODY_FILE"
    fi
    HTTP_STATUS=$(head -n1 "$HTTP_HEADERS_FILE" | awk '{ print $2 }')
    HTTP_STATUS=${HTTP_STATUS:-000}
}

# e2e_header NAME: the value of response header NAME (case-insensitive) of the last request, ""
# if absent.
e2e_header() {
    awk -v want="$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')" '
        { sub(/\r$/, "") }
        {
            i = index($0, ":")
            if (i > 0 && tolower(substr($0, 1, i - 1)) == want) {
                v = substr($0, i + 1); sub(/^[ \t]+/, "", v); sub(/[ \t]+$/, "", v); print v; exit
            }
        }' "$HTTP_HEADERS_FILE"
}

# ---- expected usedports bodies -----------------------------------------------------------------

# e2e_ports SPEC...: the ports of SPEC... (each P or FIRST-LAST, inclusive), ascending and unique,
# one a line.
e2e_ports() {
    local spec
    for spec in "$@"; do
        if [[ $spec == *-* ]]; then
            seq "${spec%-*}" "${spec#*-}"
        else
            printf '%s\n' "$spec"
        fi
    done | sort -n -u
}

# e2e_port_ranges: ascending unique ports on stdin, one a line -> "1-3 7 9-10" (for messages).
e2e_port_ranges() {
    awk 'function out() { if (n) printf "%s%s", (sep++ ? " " : ""), (a == b ? a : a "-" b) }
         NF { if (n && $1 == b + 1) { b = $1 } else { out(); a = b = $1; n = 1 } }
         END { out(); print "" }'
}

# e2e_used_ports_body UUID PROTOCOL SPEC...: the exact success body (without X-JSON-Schema) of a
# usedports query for UUID whose used ports are SPEC... (see e2e_ports; none: an empty list).
e2e_used_ports_body() {
    local uuid=$1 protocol=$2
    shift 2
    e2e_ports "$@" | _e2e_ports_body "$uuid" "$protocol"
}

# _e2e_ports_body UUID PROTOCOL: e2e_used_ports_body for the ports on stdin (ascending, unique).
_e2e_ports_body() {
    awk -v uuid="$1" -v protocol="$2" '
        BEGIN {
            printf "{\"inventories\":[{\"uuid\":\"%s\",\"protcol\":\"%s\",", uuid, protocol
            printf "\"protocol\":\"%s\",\"usedPorts\":[", protocol
        }
        NF { printf "%s\"%s\"", (n++ ? "," : ""), $1 }
        END { printf "]}]}" }'
}

# e2e_body_ports: the ports listed in the last body's usedPorts, one a line, in body order.
e2e_body_ports() {
    grep -o '"usedPorts":\[[^]]*\]' "$HTTP_BODY_FILE" | grep -o '[0-9][0-9]*' || true
}

# ---- assertions --------------------------------------------------------------------------------

_e2e_ok() {
    E2E_CHECKS=$((E2E_CHECKS + 1))
    printf 'ok   %s\n' "$1"
}

_e2e_fail() {
    E2E_CHECKS=$((E2E_CHECKS + 1))
    E2E_FAILURES=$((E2E_FAILURES + 1))
    printf 'FAIL %s\n' "$1"
    if [[ -n $HTTP_REQUEST ]]; then
        printf '     request: %s\n' "$HTTP_REQUEST"
    fi
}

# expect_eq WHAT EXPECTED ACTUAL: exact string equality; a unified diff on failure.
expect_eq() {
    if [[ $2 == "$3" ]]; then
        _e2e_ok "$1"
    else
        _e2e_fail "$1"
        diff -u --label expected --label actual <(printf '%s\n' "$2") <(printf '%s\n' "$3") |
            sed 's/^/     /' || true
    fi
}

# expect_contains WHAT NEEDLE HAYSTACK
expect_contains() {
    if [[ $3 == *"$2"* ]]; then
        _e2e_ok "$1"
    else
        _e2e_fail "$1"
        printf '     expected to contain: %s\n     actual: %s\n' "$2" "$3"
    fi
}

# expect_status WHAT STATUS: status of the last request.
expect_status() { expect_eq "$1: status" "$2" "$HTTP_STATUS"; }

# expect_body WHAT TEXT: the last body, byte for byte, equals TEXT (no trailing newline added).
expect_body() {
    local actual
    # $(...) would drop trailing newlines; the x sentinel keeps them, so they count as a difference.
    actual=$(cat "$HTTP_BODY_FILE" && printf x)
    expect_eq "$1: body" "$2" "${actual%x}"
}

# expect_json WHAT GOLDEN: the last body, byte for byte, equals the golden file
# (tests/e2e/golden/GOLDEN) minus that file's final newline. On failure, a pretty-printed diff is
# added when jq is installed.
expect_json() {
    local golden=$E2E_GOLDEN/$2 expected actual
    [[ -f $golden ]] || e2e_die "golden file $golden is missing"
    expected=$(cat "$golden")
    actual=$(cat "$HTTP_BODY_FILE" && printf x)
    actual=${actual%x}
    if [[ $expected == "$actual" ]]; then
        _e2e_ok "$1: body = $2"
        return
    fi
    _e2e_fail "$1: body = $2"
    diff -u --label "$2" --label actual <(printf '%s\n' "$expected") <(printf '%s\n' "$actual") |
        sed 's/^/     /' || true
    if command -v jq >/dev/null && jq -e . <<<"$actual" >/dev/null 2>&1; then
        diff -u --label "$2 (jq)" --label "actual (jq)" <(jq . <<<"$expected") <(jq . <<<"$actual") |
            sed 's/^/     /' || true
    fi
}

# expect_header WHAT NAME VALUE: response header NAME of the last request equals VALUE exactly.
expect_header() { expect_eq "$1: header $2" "$3" "$(e2e_header "$2")"; }

# expect_used_ports WHAT NS UUID PROTOCOL SPEC...: GET .../vips/UUID/usedports?protocol=PROTOCOL
# in NS answers 200 with exactly e2e_used_ports_body UUID PROTOCOL SPEC... (byte for byte). On a
# mismatch the missing and unexpected ports are printed as ranges instead of a one-line diff.
expect_used_ports() {
    local what=$1 ns=$2 uuid=$3 protocol=$4 ports expected actual
    shift 4
    e2e_get "$ns" "/zstack/v1/vips/$uuid/usedports?protocol=$protocol"
    expect_status "$what" 200
    ports=$(e2e_ports "$@")
    expected=$(_e2e_ports_body "$uuid" "$protocol" <<<"$ports")
    actual=$(cat "$HTTP_BODY_FILE" && printf x)
    actual=${actual%x}
    if [[ $expected == "$actual" ]]; then
        _e2e_ok "$what: body (ports $(e2e_port_ranges <<<"$ports"))"
        return
    fi
    _e2e_fail "$what: body"
    printf '     expected ports: %s\n' "$(e2e_port_ranges <<<"$ports")"
    printf '     actual ports:   %s\n' "$(e2e_body_ports | sort -n -u | e2e_port_ranges)"
    printf '     missing:        %s\n' "$(comm -23 <(sort <<<"$ports") \
        <(e2e_body_ports | sort -u) | sort -n | e2e_port_ranges)"
    printf '     unexpected:     %s\n' "$(comm -13 <(sort <<<"$ports") \
        <(e2e_body_ports | sort -u) | sort -n | e2e_port_ranges)"
    if ((${#actual} < 2000)); then
        printf '     actual body:    %s\n' "$actual"
    fi
}

# e2e_finish: prints the summary; on failure also the daemon logs. Exits 0 only if every check
# passed.
e2e_finish() {
    HTTP_REQUEST=""
    if ((E2E_FAILURES > 0)); then
        local log
        for log in "${E2E_LOGS[@]}"; do
            e2e_log "--- daemon log $log (last 40 lines)"
            tail -n 40 "$log" >&2 || true
        done
        printf '%s: %d of %d checks FAILED\n' "$(basename "$0")" "$E2E_FAILURES" "$E2E_CHECKS"
        exit 1
    fi
    printf '%s: all %d checks passed\n' "$(basename "$0")" "$E2E_CHECKS"
    exit 0
}
