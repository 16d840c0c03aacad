#!/usr/bin/env bash
# The ZStack rule shapes of golden/rules/{zstack_v4,chains_v4,zstack_v6}.rules, asserted through the
# API. Sourced by test_rules_iptables_nft.sh and test_rules_legacy.sh: the same rules must give the
# same ports whichever iptables backend wrote them. Expects NS, A, B, D, V6, V6B set and the
# daemon running; each expected set is derived by hand in the comments. Leaves A_TCP and A_UDP
# (VIP A's expected ports) set for the caller's change checks.

# check_zstack_shapes LABEL GOLDEN_PREFIX   e.g. check_zstack_shapes iptables-nft iptables_nft
check_zstack_shapes() {
    local label=$1 golden=$2 proto
    # ---- VIP A ---------------------------------------------------------------------------------------
    # TCP: sockets 22, 80; nat PREROUTING: --dport 80 (same port as the socket, listed once),
    #      multiport 1000:2000, xt tcp match 8000:8010, multiport 443,8443 -> SVC (DNAT there);
    #      mangle TPROXY 9999. Not 7272 (filter RETURN in vip0.local); nothing from the POSTROUTING
    #      SNAT --to-source 192.0.2.10 (source translation claims no port).
    A_TCP=(22 80 443 1000-2000 8000-8010 8443 9999)
    expect_used_ports "VIP A TCP (sockets + $label)" "$NS" "$A" TCP "${A_TCP[@]}"
    # UDP: socket 123; multiport 5000:5002, REDIRECT 53, and 514 through KUBE-SVC-X because
    #      192.0.2.8/30 = 192.0.2.8-192.0.2.11 holds 192.0.2.10.
    A_UDP=(53 123 514 5000-5002)
    expect_used_ports "VIP A UDP (sockets + $label)" "$NS" "$A" UDP "${A_UDP[@]}"
    e2e_get "$NS" "/zstack/v1/vips/$A/usedports?protocol=UDP"
    expect_json "VIP A UDP (golden)" "rules/${golden}_vip_a_udp.json"

    # ---- VIP B: EIP `-d 192.0.2.20/32 -j DNAT`, no -p: every TCP and UDP port ------------------------
    for proto in TCP UDP; do
        expect_used_ports "VIP B $proto (EIP)" "$NS" "$B" "$proto" 1-65535
        expect_eq "VIP B $proto: number of ports" 65535 "$(e2e_body_ports | wc -l)"
    done

    # ---- VIP D: EIP after inverted RETURNs -----------------------------------------------------------
    # `-p tcp ! --dport 22 -j RETURN` sends every TCP port but 22 back before the DNAT;
    # `-p udp -m multiport ! --dports 1:1023 -j RETURN` every UDP port but 1-1023.
    expect_used_ports "VIP D TCP (! --dport 22 RETURN, then EIP)" "$NS" "$D" TCP 22
    expect_used_ports "VIP D UDP (! --dports 1:1023 RETURN, then EIP)" "$NS" "$D" UDP 1-1023

    # ---- the /30 of the KUBE-SVC-X jump, at its edges ------------------------------------------------
    expect_used_ports "192.0.2.8 UDP (first of 192.0.2.8/30)" "$NS" 192.0.2.8 UDP 514
    expect_used_ports "192.0.2.11 UDP (last of 192.0.2.8/30)" "$NS" 192.0.2.11 UDP 514
    expect_used_ports "192.0.2.12 UDP (outside the /30)" "$NS" 192.0.2.12 UDP
    expect_used_ports "192.0.2.11 TCP (the jump is udp only)" "$NS" 192.0.2.11 TCP

    # ---- chain walk (golden/rules/chains_v4.rules) --------------------------------------------------
    # 192.0.2.50: zs.dnat RETURNs tcp other than 25 to PREROUTING; tcp 25 and all UDP meet its DNAT.
    #   Back in PREROUTING, tcp 26 (among the RETURNed) is DNATed. TCP 25-26, UDP 1-65535.
    expect_used_ports "RETURN resumes the caller: 192.0.2.50 TCP" "$NS" 192.0.2.50 TCP 25-26
    expect_used_ports "RETURN resumes the caller: 192.0.2.50 UDP" "$NS" 192.0.2.50 UDP 1-65535
    # 192.0.2.60: `-g G60` takes every packet; G60 DNATs only tcp 30 and then falls off its end, which
    #   ends PREROUTING (goto does not come back), so the tcp 31 rule after the goto is unreachable.
    expect_used_ports "goto never returns: 192.0.2.60 TCP" "$NS" 192.0.2.60 TCP 30
    expect_used_ports "goto never returns: 192.0.2.60 UDP" "$NS" 192.0.2.60 UDP
    # 192.0.2.70: tcp 22 is ACCEPTed before the whole-IP DNAT: TCP 1-21 and 23-65535. The udp 53
    #   ACCEPT is only for sources in 10.1.0.0/16; other sources still reach the DNAT: UDP 1-65535.
    expect_used_ports "ACCEPT before DNAT: 192.0.2.70 TCP" "$NS" 192.0.2.70 TCP 1-21 23-65535
    expect_used_ports "source-limited ACCEPT keeps the claim: 192.0.2.70 UDP" "$NS" 192.0.2.70 UDP \
        1-65535
    # NETMAP 192.0.2.96/28 -> 10.0.1.0/28: every port of 192.0.2.96-192.0.2.111, none at .112.
    expect_used_ports "NETMAP: 192.0.2.96 UDP" "$NS" 192.0.2.96 UDP 1-65535
    expect_used_ports "NETMAP: 192.0.2.111 TCP" "$NS" 192.0.2.111 TCP 1-65535
    expect_used_ports "NETMAP: 192.0.2.112 TCP (outside the /28)" "$NS" 192.0.2.112 TCP

    # ---- IPv6 ----------------------------------------------------------------------------------------
    # VIP 6 TCP: socket 443; DNAT --dport 80. UDP: multiport 4500,5000:5001; REDIRECT 53.
    expect_used_ports "IPv6 VIP TCP (socket + ip6 $label)" "$NS" "$V6" TCP 80 443
    expect_used_ports "IPv6 VIP UDP (ip6 $label)" "$NS" "$V6" UDP 53 4500 5000-5001
    # VIP 6B: EIP `-d 2001:db8::20/128 -j DNAT`: everything.
    for proto in TCP UDP; do
        expect_used_ports "IPv6 VIP 6B $proto (EIP)" "$NS" "$V6B" "$proto" 1-65535
        expect_eq "IPv6 VIP 6B $proto: number of ports" 65535 "$(e2e_body_ports | wc -l)"
    done
}

# check_zstack_changes TOOL   e.g. check_zstack_changes iptables-legacy
# Rule changes made with TOOL after check_zstack_shapes show at the next query: add/delete a rule,
# flush and refill the user chain, order-dependent RETURN, whole tables flushed.
check_zstack_changes() {
    local tool=$1
    local ipt=(ip netns exec "$NS" "$tool")
    # ---- changes, seen by the next query -------------------------------------------------------------
    local PF6000=(-d 192.0.2.10/32 -p tcp -m tcp --dport 6000 -m comment
        --comment "pf rule@PREROUTING" -j DNAT --to-destination 10.0.0.9:6000)

    "${ipt[@]}" -t nat -A PREROUTING "${PF6000[@]}"
    expect_used_ports "after $tool -A (tcp 6000)" "$NS" "$A" TCP "${A_TCP[@]}" 6000
    "${ipt[@]}" -t nat -D PREROUTING "${PF6000[@]}"
    expect_used_ports "after $tool -D" "$NS" "$A" TCP "${A_TCP[@]}"

    # Flushing the user chain: the jump to SVC stays, but nothing DNATs 443/8443 any more.
    "${ipt[@]}" -t nat -F SVC
    expect_used_ports "after $tool -F SVC" "$NS" "$A" TCP 22 80 1000-2000 8000-8010 9999
    "${ipt[@]}" -t nat -A SVC -j DNAT --to-destination 10.0.0.2
    expect_used_ports "after refilling SVC" "$NS" "$A" TCP "${A_TCP[@]}"

    # Order matters: a UDP RETURN inserted above the EIP rule frees VIP B's UDP ports, not its TCP ones.
    "${ipt[@]}" -t nat -I PREROUTING 1 -d 192.0.2.20/32 -p udp -j RETURN
    expect_used_ports "VIP B UDP after inserting a udp RETURN first" "$NS" "$B" UDP
    expect_used_ports "VIP B TCP after inserting a udp RETURN first" "$NS" "$B" TCP 1-65535
    "${ipt[@]}" -t nat -D PREROUTING 1
    expect_used_ports "VIP B UDP after deleting it" "$NS" "$B" UDP 1-65535

    # The whole nat and mangle tables gone: sockets only.
    "${ipt[@]}" -t nat -F
    "${ipt[@]}" -t mangle -F
    expect_used_ports "VIP A TCP after flushing nat and mangle (sockets only)" "$NS" "$A" TCP 22 80
    expect_used_ports "VIP A UDP after flushing nat and mangle (sockets only)" "$NS" "$A" UDP 123
    expect_used_ports "VIP B TCP after flushing nat (nothing)" "$NS" "$B" TCP
    expect_used_ports "IPv6 VIP UDP (ip6 nat untouched)" "$NS" "$V6" UDP 53 4500 5000-5001
}
