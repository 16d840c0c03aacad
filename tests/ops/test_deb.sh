#!/usr/bin/env bash
# The Debian package: CPack builds it from this build tree (the rules scripts/package uses), the
# test installs it with dpkg -i, runs the installed /usr/sbin/vipportd --version, checks the
# layout, the user and that nothing was started, then purges it.
#   bash tests/ops/test_deb.sh /path/to/build-dir
set -euo pipefail
build=$1
for tool in cpack dpkg dpkg-deb dpkg-shlibdeps; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP: $tool is not installed"
        exit 77
    fi
done
if ((EUID != 0)); then
    echo "SKIP: dpkg -i needs root"
    exit 77
fi
if dpkg-query -W -f='${Status}' vipportd 2>/dev/null | grep -q installed; then
    echo "FAIL: a vipportd package is already installed on this host; not touching it"
    exit 1
fi
fail=0
ok() { echo "ok   $1"; }
bad() {
    echo "FAIL $1"
    fail=1
}
tmp=$(mktemp -d)
cleanup() {
    dpkg --purge vipportd >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
(cd "$build" && cpack -G DEB -B "$tmp" >"$tmp/cpack.log" 2>&1) || {
    cat "$tmp/cpack.log"
    exit 1
}
deb=$(ls "$tmp"/vipportd_*.deb)
ok "built $(basename "$deb")"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libnl-3-200 libspdlog1.10 libprometheus-cpp-core1.0; do
    [[ $depends == *"$lib"* ]] && ok "Depends has $lib" || bad "Depends lacks $lib: $depends"
done
listing=$(dpkg-deb -c "$deb")
[[ $listing == *" ./etc/vipportd/vipportd.toml"* ]] && ok "ships /etc/vipportd/vipportd.toml" ||
    bad "no /etc/vipportd/vipportd.toml in the package"
dpkg-deb -I "$deb" conffiles | grep -qx /etc/vipportd/vipportd.toml && ok "config is a conffile" ||
    bad "config is not a conffile"
if dpkg -i "$deb" >"$tmp/dpkg.log" 2>&1; then
    ok "dpkg -i"
else
    bad "dpkg -i failed"
    cat "$tmp/dpkg.log"
    exit 1
fi
version=$(/usr/sbin/vipportd --version)
[[ $version == "vipportd "* ]] && ok "installed vipportd --version: $version" || bad "--version: $version"
for f in /usr/lib/systemd/system/vipportd.service /lib/systemd/system/vipportd.service; do
    [[ -f $f ]] && break
done
[[ -f $f ]] && ok "unit installed" || bad "unit not installed"
getent passwd vipportd >/dev/null && ok "postinst created user vipportd" || bad "no user vipportd"
[[ -d /etc/vipportd/vips.d ]] && ok "vips.d created" || bad "no /etc/vipportd/vips.d"
/usr/sbin/vipportd --check-config --config /etc/vipportd/vipportd.toml >/dev/null &&
    ok "shipped configuration is valid" || bad "shipped configuration invalid"
if pgrep -x vipportd -u vipportd >/dev/null; then
    bad "the package started vipportd"
else
    ok "nothing started"
fi
# A local edit survives reinstalling: the configuration is never overwritten.
echo "# local edit" >>/etc/vipportd/vipportd.toml
dpkg -i --force-confold "$deb" >/dev/null 2>&1
grep -q '^# local edit' /etc/vipportd/vipportd.toml && ok "local configuration kept on reinstall" ||
    bad "reinstall overwrote the configuration"
dpkg --purge vipportd >/dev/null 2>&1 && ok "purged" || bad "purge failed"
[[ ! -e /usr/sbin/vipportd ]] && ok "binary removed" || bad "binary still present"
exit $fail
