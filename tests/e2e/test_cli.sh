#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# e2e: the command line: --version, --help, --check-config on valid and invalid files, and a start
# with an invalid file. Needs no root and no namespace (nothing here binds a socket).
#
#   bash tests/e2e/test_cli.sh /path/to/vipportd

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
# The configuration files below are checked line by line: write them as given.
E2E_CONFIG_VERBATIM=1

SRC=$(cd "$E2E_DIR/../.." && pwd)
VERSION=$(sed -nE 's/^project\(vipportd VERSION ([0-9.]+).*/\1/p' "$SRC/CMakeLists.txt")
[[ -n $VERSION ]] || e2e_die "cannot read the project version from $SRC/CMakeLists.txt"

# check_ok WHAT CONFIG: --check-config accepts CONFIG.
check_ok() {
    e2e_run check "$VIPPORTD" --check-config --config "$2"
    expect_eq "$1: --check-config exit status" 0 "$E2E_RC"
    [[ $E2E_RC == 0 ]] || printf '     stderr: %s\n' "$E2E_STDERR"
}

# check_bad WHAT CONFIG NEEDLE...: --check-config rejects CONFIG with exit 1 and every NEEDLE on
# stderr.
check_bad() {
    local what=$1 cfg=$2 needle
    shift 2
    e2e_run check "$VIPPORTD" --check-config --config "$cfg"
    expect_eq "$what: --check-config exit status" 1 "$E2E_RC"
    for needle in "$@"; do
        expect_contains "$what: stderr" "$needle" "$E2E_STDERR"
    done
}

# ---- --version, --help, bad usage -----------------------------------------------------------------
e2e_run version "$VIPPORTD" --version
expect_eq "--version exit status" 0 "$E2E_RC"
expect_eq "--version output" "vipportd $VERSION" "$E2E_STDOUT"

e2e_run help "$VIPPORTD" --help
expect_eq "--help exit status" 0 "$E2E_RC"
for option in --config --check-config --version --help; do
    expect_contains "--help mentions $option" "$option" "$E2E_STDOUT$E2E_STDERR"
done

e2e_run usage "$VIPPORTD" --no-such-option
if [[ $E2E_RC != 0 && $E2E_RC != 124 ]]; then
    _e2e_ok "unknown option fails (exit status $E2E_RC)"
else
    _e2e_fail "unknown option fails (exit status $E2E_RC)"
fi
expect_contains "unknown option is named" "--no-such-option" "$E2E_STDOUT$E2E_STDERR"

# ---- valid files ---------------------------------------------------------------------------------
check_ok "shipped systemd/vipportd.toml" "$SRC/systemd/vipportd.toml"
VALID=$(e2e_config valid.toml <<'EOF'
listen = ["127.0.0.1:18080", "[::1]:18080"]
http_threads = 4
log_level = "debug"

[[vip]]
uuid = "3f2c9d1e7b8a4c5d9e0f1a2b3c4d5e6f"
ip = "192.0.2.10"

[[vip]]
uuid = "8e1d2c3b4a5f60718293a4b5c6d7e8f9"
ip = "2001:db8::10"

[auth]
mode = "none"

[sources]
nftables = "optional"
iptables_legacy = "off"
tcp_bound_inactive = false
EOF
)
check_ok "every key" "$VALID"
EMPTY=$(e2e_config empty.toml </dev/null)
check_ok "empty file (built-in defaults)" "$EMPTY"

# ---- invalid files: exit 1, FILE:LINE:COL and the key in the message ------------------------------
CFG=$(e2e_config unknown-key.toml <<'EOF'
listen = ["127.0.0.1:18080"]

bogus = 1
EOF
)
check_bad "unknown top-level key" "$CFG" "$CFG:3:1: key 'bogus': unknown key"

CFG=$(e2e_config unknown-vip-key.toml <<'EOF'
listen = ["127.0.0.1:18080"]
[[vip]]
uuid = "a"
ip = "192.0.2.10"
adress = "192.0.2.11"
EOF
)
check_bad "unknown key in [[vip]]" "$CFG" "$CFG:5:1: key 'vip[0].adress': unknown key"

CFG=$(e2e_config bad-ip.toml <<'EOF'
listen = ["127.0.0.1:18080"]

[[vip]]
uuid = "a"
ip = "192.0.2.300"
EOF
)
check_bad "bad VIP address" "$CFG" "$CFG:5:6: key 'vip[0].ip': bad address" '"192.0.2.300"'

CFG=$(e2e_config bad-port.toml <<'EOF'
listen = ["127.0.0.1:80800"]
EOF
)
check_bad "bad listen port" "$CFG" "$CFG:1:11: key 'listen[0]': bad port"

CFG=$(e2e_config auth-none-public.toml <<'EOF'
listen = ["127.0.0.1:18080", "192.0.2.1:18080"]
[auth]
mode = "none"
EOF
)
check_bad "auth none on a non-loopback listener" "$CFG" \
    "$CFG:3:8: key 'auth.mode': auth.mode \"none\" is only allowed when every listener is loopback" \
    "listener 192.0.2.1:18080 ($CFG:1:30) is not"

CFG=$(e2e_config auth-default-wildcard.toml <<'EOF'
listen = ["0.0.0.0:18080"]
EOF
)
check_bad "default auth none on 0.0.0.0" "$CFG" \
    "$CFG:1:11: key 'auth.mode': auth.mode \"none\" (the default) is only allowed"

CFG=$(e2e_config tokens-no-file.toml <<'EOF'
listen = ["0.0.0.0:18080"]
[auth]
mode = "tokens"
EOF
)
check_bad "tokens mode without tokens_file" "$CFG" "$CFG:3:8: key 'auth.tokens_file': missing"

CFG=$(e2e_config duplicate-uuid.toml <<'EOF'
listen = ["127.0.0.1:18080"]
[[vip]]
uuid = "a"
ip = "192.0.2.10"
[[vip]]
uuid = "a"
ip = "192.0.2.11"
EOF
)
check_bad "duplicate uuid" "$CFG" "$CFG:6:8: key 'vip[1].uuid': duplicate uuid"

CFG=$(e2e_config syntax.toml <<'EOF'
listen = ["127.0.0.1:18080"]
http_threads = = 2
EOF
)
check_bad "TOML syntax error" "$CFG" "$CFG:2:"

check_bad "missing file" "$E2E_TMP/no-such.toml" \
    "$E2E_TMP/no-such.toml: cannot read: No such file or directory"

# ---- starting with an invalid file fails at once, with the same message --------------------------
CFG=$(e2e_config start-bad.toml <<'EOF'
listen = ["127.0.0.1:18080"]
bogus = 1
EOF
)
e2e_run start "$VIPPORTD" --config "$CFG"
if [[ $E2E_RC != 0 && $E2E_RC != 124 && $E2E_RC != 137 ]]; then
    _e2e_ok "start with an invalid file fails (exit status $E2E_RC)"
else
    _e2e_fail "start with an invalid file fails (exit status $E2E_RC)"
fi
expect_contains "start with an invalid file: stderr" "$CFG:2:1: key 'bogus': unknown key" \
    "$E2E_STDERR"

e2e_finish
