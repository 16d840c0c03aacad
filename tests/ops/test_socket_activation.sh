#!/usr/bin/env bash
# Socket activation (sd_listen_fds(3)): systemd-socket-activate binds 127.0.0.1:P and [::1]:P,
# as vipportd.socket does, and passes them with LISTEN_FDS/LISTEN_PID; vipportd must serve on
# those descriptors, leave its own `listen` setting unused, and say so. Runs in a network
# namespace of its own (root), loopback only.
#   bash tests/ops/test_socket_activation.sh /path/to/vipportd
set -uo pipefail
vipportd=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v systemd-socket-activate >/dev/null || ! command -v curl >/dev/null; then
    echo "SKIP: systemd-socket-activate or curl is not installed"
    exit 77
fi
if [[ $EUID -ne 0 ]]; then
    echo "SKIP: needs root (network namespace)"
    exit 77
fi
ns=vipportd-sa-$$
tmp=$(mktemp -d)
pid=""
cleanup() {
    [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
    ip netns del "$ns" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
cat >"$tmp/vipportd.toml" <<'TOML'
listen = ["127.0.0.1:18999"]  # must stay unused: the passed sockets replace it
state_dir = ""  # no registrations: the host's /var/lib/vipportd stays out of tests
TOML
fail=0
check() { # check WHAT COMMAND...
    local what=$1
    shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what" && fail=1; fi
}
port=18080
# The child is exec'd, so LISTEN_PID is its own pid.
ip netns exec "$ns" systemd-socket-activate -l "127.0.0.1:$port" -l "[::1]:$port" \
    -- "$vipportd" --config "$tmp/vipportd.toml" >"$tmp/log" 2>&1 &
pid=$!
in_ns() { ip netns exec "$ns" "$@"; }
body=""
for _ in $(seq 1 100); do # the first connection starts the daemon; allow 10 s
    body=$(in_ns curl -s --max-time 2 "http://127.0.0.1:$port/healthz") && break
    sleep 0.1
done
check "GET /healthz on the passed 127.0.0.1 socket" test "$body" = ok
check "GET /healthz on the passed [::1] socket" \
    test "$(in_ns curl -s --max-time 5 "http://[::1]:$port/healthz")" = ok
used=$(in_ns curl -s --max-time 5 -H 'Authorization: OAuth x' \
    "http://127.0.0.1:$port/zstack/v1/vips/127.0.0.1/usedports?protocol=TCP")
check "usedports lists the passed listener's port ($used)" grep -q "\"$port\"" <<<"$used"
check "the configured listen address is not bound" \
    bash -c "! ip netns exec $ns curl -s --max-time 2 http://127.0.0.1:18999/healthz"
check "the log says where the listeners came from" \
    grep -q "socket activation: 2 listener(s) from systemd" "$tmp/log"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
check "exit 0 after SIGTERM (got $rc)" test "$rc" -eq 0
if ((fail)); then
    echo "--- daemon log"
    sed 's/^/     /' "$tmp/log"
fi
exit "$fail"
