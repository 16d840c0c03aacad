#!/usr/bin/env bash
# Fails when an include crosses the layering: netlink/ must not see agent/, http/, Asio, Beast or
# spdlog; agent/ must not see http/ (agent/main.cpp builds the executable and may see everything);
# http/ must not include netlink/ directly.
set -u
root=$1
fail=0
check() {  # check DIR REGEX WHAT [EXCLUDE]
    local hits
    hits=$(grep -nE "$2" "$root/$1"/*.hpp "$root/$1"/*.cpp 2>/dev/null | grep -v "${4:-^$}")
    if [[ -n $hits ]]; then
        echo "layering: $1 must not include $3:"
        echo "$hits"
        fail=1
    fi
}
check netlink '#include +[<"](agent|http)/' 'agent/ or http/'
check netlink '#include +<(boost/asio|boost/beast|spdlog)' 'Asio, Beast or spdlog'
check agent '#include +[<"]http/' 'http/' 'agent/main.cpp'
check http '#include +[<"]netlink/' 'netlink/ (go through agent/)'
[[ $fail -eq 0 ]] && echo "layering ok"
exit $fail
