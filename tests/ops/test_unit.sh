#!/usr/bin/env bash
# The shipped unit: `systemd-analyze verify` is clean and `systemd-analyze security --offline`
# scores at most 2.0 (issue 5). verify needs ExecStart to exist, so it checks a copy whose
# ExecStart names the built binary; security scores the shipped file itself.
#   bash tests/ops/test_unit.sh /path/to/vipportd
set -euo pipefail
vipportd=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
unit=$root/systemd/vipportd.service
if ! command -v systemd-analyze >/dev/null; then
    echo "SKIP: systemd-analyze is not installed"
    exit 77
fi
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|^ExecStart=/usr/sbin/vipportd|ExecStart=$vipportd|" "$unit" >"$tmp/vipportd.service"
if out=$(systemd-analyze verify "$tmp/vipportd.service" 2>&1) && [[ -z $out ]]; then
    echo "ok   systemd-analyze verify is clean"
else
    echo "FAIL systemd-analyze verify:"
    printf '%s\n' "$out" | sed 's/^/     /'
    fail=1
fi
cp "$root/systemd/vipportd.socket" "$tmp/"
if out=$(systemd-analyze verify "$tmp/vipportd.socket" "$tmp/vipportd.service" 2>&1) &&
    [[ -z $out ]]; then
    echo "ok   systemd-analyze verify vipportd.socket is clean"
else
    echo "FAIL systemd-analyze verify vipportd.socket:"
    printf '%s\n' "$out" | sed 's/^/     /'
    fail=1
fi
# The namespace opt-in drop-in (systemd/vipportd-netns.conf): verify clean with it, and the
# merged unit still scores at most 2.5 while granting exactly what setns(2) needs.
mkdir "$tmp/vipportd.service.d"
cp "$root/systemd/vipportd-netns.conf" "$tmp/vipportd.service.d/netns.conf"
if out=$(systemd-analyze verify "$tmp/vipportd.service" 2>&1) && [[ -z $out ]]; then
    echo "ok   systemd-analyze verify with the netns drop-in is clean"
else
    echo "FAIL systemd-analyze verify with the netns drop-in:"
    printf '%s\n' "$out" | sed 's/^/     /'
    fail=1
fi
awk -v dropin="$root/systemd/vipportd-netns.conf" '
    /^\[Install\]/ { while ((getline line < dropin) > 0) if (line !~ /^(#|\[Service\])/) print line }
    { print }' "$unit" >"$tmp/merged.service"
out=$(systemd-analyze security --offline=true --no-pager "$tmp/merged.service" 2>&1)
score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for merged.service: \([0-9.]*\).*/\1/p')
if [[ -n $score ]] && awk -v s="$score" 'BEGIN { exit !(s <= 2.5) }' &&
    printf '%s\n' "$out" | grep -q 'RestrictNamespaces=~net .*may create' &&
    printf '%s\n' "$out" | grep -q 'RestrictNamespaces=~user .*cannot create'; then
    echo "ok   with the netns drop-in: exposure $score <= 2.5, only net namespaces allowed"
else
    echo "FAIL with the netns drop-in: exposure '${score:-?}':"
    printf '%s\n' "$out" | grep -v '^✓' | sed 's/^/     /'
    fail=1
fi
out=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1)
score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for vipportd.service: \([0-9.]*\).*/\1/p')
if [[ -n $score ]] && awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }'; then
    echo "ok   exposure $score <= 2.0"
else
    echo "FAIL exposure '${score:-?}' > 2.0:"
    printf '%s\n' "$out" | grep -v '^✓' | sed 's/^/     /'
    fail=1
fi
for directive in 'Type=notify' 'WatchdogSec=' 'ExecReload=' 'User=vipportd' 'NoNewPrivileges=yes' \
    'ProtectSystem=strict' 'RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6' \
    'SystemCallFilter=@system-service' 'Restart=on-failure'; do
    if grep -q "^$directive" "$unit"; then
        echo "ok   $directive"
    else
        echo "FAIL missing $directive"
        fail=1
    fi
done
if grep -Eq '^(PrivateNetwork|PrivateUsers)=yes' "$unit"; then
    echo "FAIL PrivateNetwork/PrivateUsers would hide the host's sockets and rules"
    fail=1
fi
exit $fail
