#!/usr/bin/env bash
# Shared by scripts/run and scripts/test: install the Debian 12 packages vipportd needs, quietly and
# only when something is missing (apt-get update runs only then).
set -euo pipefail

VIPPORTD_BUILD_PACKAGES=(
    g++ cmake make pkg-config
    libboost1.81-dev libboost-json1.81-dev
    libnl-3-dev libnl-route-3-dev
    libspdlog-dev libtomlplusplus-dev
    libgtest-dev libgmock-dev
    zlib1g-dev libssl-dev prometheus-cpp-dev
)
# Tools the tests drive: real ip, curl, nft, iptables (nft and legacy), clang for the fuzz targets,
# openssl (test certificates), python3 with prometheus_client (parses /metrics), systemd
# (systemd-analyze verify/security), dpkg-dev (the .deb test), wrk and nginx (scripts/bench).
VIPPORTD_TEST_PACKAGES=(iproute2 curl nftables iptables ipset clang libclang-rt-14-dev openssl
    python3 python3-prometheus-client systemd dpkg-dev wrk nginx-light)

vipportd_install() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    if [[ $(id -u) -ne 0 ]]; then
        echo "missing packages: ${missing[*]} (run as root to install them)" >&2
        return 1
    fi
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# vipportd_build DIR BUILD_TYPE [cmake args...]: configure once, then build incrementally.
vipportd_build() {
    local dir=$1 type=$2
    shift 2
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    cmake -S "$root" -B "$root/$dir" -DCMAKE_BUILD_TYPE="$type" "$@" >/dev/null
    cmake --build "$root/$dir" -j "$(nproc)"
}
