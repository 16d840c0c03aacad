// xt match/target payload decoders over exact byte vectors. The vectors are the payloads of the
// rules in kernel.md §2.5/§3.2 (observed on Linux 6.18, iptables 1.8.9), written out by hand from
// the uapi layouts; the same payloads also appear inside the recorded legacy blobs that
// ipt_legacy_test.cpp replays. Ports in tcp/udp/multiport are host order: the vectors are for a
// little-endian host (amd64, the only target).

#include "netlink/xt_blobs.hpp"

#include <bit>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace vipportd::netlink::xt {
namespace {

static_assert(std::endian::native == std::endian::little, "host-order vectors are little-endian");

std::vector<std::uint8_t> hex(std::string_view s) {
    std::vector<std::uint8_t> out;
    int hi = -1;
    for (const char c : s) {
        int v = -1;
        if (c >= '0' && c <= '9') {
            v = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            v = c - 'a' + 10;
        }
        if (v < 0) {
            continue;
        }
        if (hi < 0) {
            hi = v;
        } else {
            out.push_back(static_cast<std::uint8_t>(hi * 16 + v));
            hi = -1;
        }
    }
    return out;
}

InetAddress ip(std::string_view s) { return InetAddress::parse(s).value(); }

// -p tcp --dport 80: spts 0-65535, dpts 80-80, option 0, flg 0/0, invflags 0 (12 bytes).
TEST(XtBlobs, TcpSinglePort) {
    const auto b = hex("0000 ffff 5000 5000 00 00 00 00");
    const auto m = decode_tcp(b).value();
    EXPECT_EQ(m.sports.first, 0);
    EXPECT_EQ(m.sports.last, 65535);
    EXPECT_EQ(m.dports.first, 80);
    EXPECT_EQ(m.dports.last, 80);
    EXPECT_FALSE(m.invert_dports);
    EXPECT_FALSE(m.invert_sports);
    EXPECT_FALSE(m.tcp_flags_or_options);
}

// -m tcp --tcp-option 2 ! --dport 8000:8010 (kernel.md §2.5 (G), inverted); padded to 16 bytes
// as nf_tables compat delivers it (XT_ALIGN).
TEST(XtBlobs, TcpInvertedRangeWithOptionPadded) {
    const auto b = hex("0000 ffff 401f 4a1f 02 00 00 02 00000000");
    const auto m = decode_tcp(b).value();
    EXPECT_EQ(m.dports.first, 8000);
    EXPECT_EQ(m.dports.last, 8010);
    EXPECT_TRUE(m.invert_dports);
    EXPECT_FALSE(m.invert_sports);
    EXPECT_TRUE(m.tcp_flags_or_options);
}

TEST(XtBlobs, TcpSynFlagsOnly) {
    // --syn: flg_mask 0x17, flg_cmp 0x02
    const auto m = decode_tcp(hex("0000 ffff 0000 ffff 00 17 02 00")).value();
    EXPECT_TRUE(m.tcp_flags_or_options);
    EXPECT_EQ(m.dports.last, 65535);
}

TEST(XtBlobs, TcpTruncatedNamesStruct) {
    const auto r = decode_tcp(hex("0000 ffff 5000 5000 00 00 00"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::truncated);
    EXPECT_EQ(r.error().detail, "xt_tcp: blob of 11 bytes, need 12");
}

TEST(XtBlobs, TcpUnknownInvflagsRejected) {
    const auto r = decode_tcp(hex("0000 ffff 5000 5000 00 00 00 10"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::malformed);
}

// -p udp --dport 53: xt_udp is 10 bytes (9 + padding).
TEST(XtBlobs, UdpSinglePortAndInvertedSource) {
    const auto m = decode_udp(hex("0000 ffff 3500 3500 00 00")).value();
    EXPECT_EQ(m.dports.first, 53);
    EXPECT_EQ(m.dports.last, 53);
    EXPECT_FALSE(m.invert_dports);
    const auto inv = decode_udp(hex("0004 ffff 0000 ffff 01 00")).value();
    EXPECT_EQ(inv.sports.first, 1024);
    EXPECT_TRUE(inv.invert_sports);
    EXPECT_FALSE(inv.invert_dports);
    const auto r = decode_udp(hex("0000 ffff 3500 3500 00"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::truncated);
    EXPECT_NE(r.error().detail.find("xt_udp"), std::string::npos);
}

// kernel.md §2.5 (C): -m multiport --dports 80,443,8000:8100 -> xt_multiport_v1 flags 1, count 4,
// ports {80, 443, 8000, 8100}, pflags[2] = 1, invert 0 (48 bytes).
const char* const kMultiportC =
    "01 04 5000 bb01 401f a41f 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000"
    "00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00";

TEST(XtBlobs, MultiportV1WithRange) {
    const auto b = hex(kMultiportC);
    ASSERT_EQ(b.size(), 48u);
    const auto m = decode_multiport(b, 1).value();
    EXPECT_EQ(m.direction, MultiportMatch::Direction::destination);
    EXPECT_FALSE(m.invert);
    ASSERT_EQ(m.ports.size(), 3u);
    EXPECT_EQ(m.ports[0].first, 80);
    EXPECT_EQ(m.ports[0].last, 80);
    EXPECT_EQ(m.ports[1].first, 443);
    EXPECT_EQ(m.ports[1].last, 443);
    EXPECT_EQ(m.ports[2].first, 8000);
    EXPECT_EQ(m.ports[2].last, 8100);
}

// kernel.md §2.5 (C): -m multiport ! --dports 1:1023 -> count 2, ports {1, 1023} (range), invert 1.
TEST(XtBlobs, MultiportV1InvertedRange) {
    const auto b =
        hex("01 02 0100 ff03 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000"
            "01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01");
    const auto m = decode_multiport(b, 1).value();
    EXPECT_TRUE(m.invert);
    ASSERT_EQ(m.ports.size(), 1u);
    EXPECT_EQ(m.ports[0].first, 1);
    EXPECT_EQ(m.ports[0].last, 1023);
}

TEST(XtBlobs, MultiportV0EitherDirection) {
    // rev 0: flags 2 (either), count 2, ports 22, 80; 32 bytes, no ranges, no invert.
    const auto b =
        hex("02 02 1600 5000 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000");
    ASSERT_EQ(b.size(), 32u);
    const auto m = decode_multiport(b, 0).value();
    EXPECT_EQ(m.direction, MultiportMatch::Direction::either);
    ASSERT_EQ(m.ports.size(), 2u);
    EXPECT_EQ(m.ports[1].first, 80);
    // the same 32 bytes are too short for rev 1
    const auto r = decode_multiport(b, 1);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::truncated);
    EXPECT_EQ(r.error().detail, "xt_multiport_v1: blob of 32 bytes, need 48");
}

TEST(XtBlobs, MultiportMalformed) {
    auto b = hex(kMultiportC);
    b[1] = 16;  // count > XT_MULTI_PORTS
    EXPECT_EQ(decode_multiport(b, 1).error().code, Errc::malformed);
    b = hex(kMultiportC);
    b[0] = 3;  // unknown direction
    EXPECT_EQ(decode_multiport(b, 1).error().code, Errc::malformed);
    b = hex(kMultiportC);
    b[32 + 3] = 1;  // range starting at the last port has no end
    EXPECT_EQ(decode_multiport(b, 1).error().code, Errc::malformed);
    EXPECT_EQ(decode_multiport(hex(kMultiportC), 2).error().code, Errc::malformed);
}

// kernel.md §2.5 (A): DNAT rev 2 nf_nat_range2 flags 0x3, 10.0.0.1, port 8080 (44 bytes; nf_tables
// compat pads it to 48).
const char* const kDnatRange2 =
    "03000000 0a000001 00000000 00000000 00000000 0a000001 00000000 00000000 00000000"
    "1f90 1f90 0000 0000";

TEST(XtBlobs, DnatRev2AddressAndPort) {
    const auto b = hex(kDnatRange2);
    ASSERT_EQ(b.size(), 44u);
    const auto t = decode_nat("DNAT", 2, Family::v4, b).value();
    EXPECT_EQ(t.flags, 3u);
    ASSERT_TRUE(t.min_addr && t.max_addr && t.ports);
    EXPECT_EQ(*t.min_addr, ip("10.0.0.1"));
    EXPECT_EQ(*t.max_addr, ip("10.0.0.1"));
    EXPECT_EQ(t.ports->first, 8080);
    EXPECT_EQ(t.ports->last, 8080);
    EXPECT_EQ(t.to_string(), "10.0.0.1:8080");

    auto padded = b;
    padded.resize(48, 0);
    EXPECT_EQ(decode_nat("DNAT", 2, Family::v4, padded).value().to_string(), "10.0.0.1:8080");

    const auto r = decode_nat("DNAT", 2, Family::v4, std::span(b).first(40));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::truncated);
    EXPECT_EQ(r.error().detail, "DNAT rev 2 IPv4 (nf_nat_range2): blob of 40 bytes, need 44");
}

// kernel.md §2.5 (F): 10.0.0.10-10.0.0.12:1514-1520
TEST(XtBlobs, DnatRev2Ranges) {
    const auto b =
        hex("03000000 0a00000a 00000000 00000000 00000000 0a00000c 00000000 00000000 00000000"
            "05ea 05f0 0000 0000");
    EXPECT_EQ(decode_nat("DNAT", 2, Family::v4, b).value().to_string(),
              "10.0.0.10-10.0.0.12:1514-1520");
}

// kernel.md §3.2: SVC's DNAT rev 2 flags 0x1, 10.0.0.2 (no port: the destination port is kept).
TEST(XtBlobs, DnatRev2AddressOnly) {
    const auto b =
        hex("01000000 0a000002 00000000 00000000 00000000 0a000002 00000000 00000000 00000000"
            "0000 0000 0000 0000");
    const auto t = decode_nat("DNAT", 2, Family::v4, b).value();
    EXPECT_FALSE(t.ports);
    EXPECT_EQ(t.to_string(), "10.0.0.2");
}

// kernel.md §2.5 (H): ip6tables DNAT rev 2 [2001:db8::5]:8080
TEST(XtBlobs, DnatRev2Ipv6) {
    const auto b =
        hex("03000000 20010db8 00000000 00000000 00000005 20010db8 00000000 00000000 00000005"
            "1f90 1f90 0000 0000");
    const auto t = decode_nat("DNAT", 2, Family::v6, b).value();
    ASSERT_TRUE(t.min_addr);
    EXPECT_EQ(*t.min_addr, ip("2001:db8::5"));
    EXPECT_EQ(t.to_string(), "[2001:db8::5]:8080");
    // without a port no brackets, as iptables prints it
    auto no_port = b;
    no_port[0] = 0x01;
    EXPECT_EQ(decode_nat("DNAT", 2, Family::v6, no_port).value().to_string(), "2001:db8::5");
}

// DNAT rev 1: nf_nat_range (40 bytes).
TEST(XtBlobs, DnatRev1) {
    const auto b =
        hex("03000000 0a000001 00000000 00000000 00000000 0a000001 00000000 00000000 00000000"
            "1f90 1f90");
    ASSERT_EQ(b.size(), 40u);
    EXPECT_EQ(decode_nat("DNAT", 1, Family::v4, b).value().to_string(), "10.0.0.1:8080");
}

// kernel.md §2.5 (D): REDIRECT rev 0 nf_nat_ipv4_multi_range_compat rangesize 1, flags 0x2,
// ip 0.0.0.0-0.0.0.0, proto 5353-5353 (20 bytes).
TEST(XtBlobs, RedirectRev0Ipv4) {
    const auto b = hex("01000000 02000000 00000000 00000000 14e9 14e9");
    ASSERT_EQ(b.size(), 20u);
    const auto t = decode_nat("REDIRECT", 0, Family::v4, b).value();
    EXPECT_EQ(t.flags, 2u);
    EXPECT_FALSE(t.min_addr);
    ASSERT_TRUE(t.ports);
    EXPECT_EQ(t.ports->first, 5353);
    EXPECT_EQ(t.to_string(), ":5353");

    auto bad = b;
    bad[0] = 2;  // rangesize 2: rejected by the kernel since 3.7
    const auto r = decode_nat("REDIRECT", 0, Family::v4, bad);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::malformed);

    const auto shortr = decode_nat("REDIRECT", 0, Family::v4, std::span(b).first(19));
    ASSERT_FALSE(shortr);
    EXPECT_EQ(shortr.error().detail,
              "REDIRECT rev 0 IPv4 (nf_nat_ipv4_multi_range_compat): blob of 19 bytes, need 20");
}

TEST(XtBlobs, RedirectRev0Ipv6UsesNatRange) {
    const auto b =
        hex("02000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000"
            "14e9 14e9");
    EXPECT_EQ(decode_nat("REDIRECT", 0, Family::v6, b).value().to_string(), ":5353");
    EXPECT_EQ(decode_nat("REDIRECT", 0, Family::v6, std::span(b).first(20)).error().code,
              Errc::truncated);
}

TEST(XtBlobs, DnatRev0CompatAndNetmap) {
    // DNAT rev 0 IPv4: compat, flags 3, 10.0.0.1:8080
    const auto b = hex("01000000 03000000 0a000001 0a000001 1f90 1f90");
    EXPECT_EQ(decode_nat("DNAT", 0, Family::v4, b).value().to_string(), "10.0.0.1:8080");
    EXPECT_EQ(decode_nat("DNAT", 0, Family::v6, b).error().code, Errc::malformed);
    // NETMAP --to 10.1.0.0/24: flags MAP_IPS, 10.1.0.0-10.1.0.255
    const auto n = hex("01000000 01000000 0a010000 0a0100ff 0000 0000");
    EXPECT_EQ(decode_nat("NETMAP", 0, Family::v4, n).value().to_string(), "10.1.0.0-10.1.0.255");
    EXPECT_EQ(decode_nat("MASQUERADE", 0, Family::v4, n).error().code, Errc::malformed);
    EXPECT_EQ(decode_nat("DNAT", 3, Family::v4, n).error().code, Errc::malformed);
}

// kernel.md §2.5 (I): TPROXY rev 1 --on-port 8888 (--on-ip absent): mark 0/0, laddr ::, lport.
TEST(XtBlobs, TproxyRev1) {
    const auto b = hex("00000000 00000000 00000000 00000000 00000000 00000000 22b8 0000");
    ASSERT_EQ(b.size(), 28u);
    const auto t = decode_tproxy(1, Family::v4, b).value();
    EXPECT_FALSE(t.address);
    EXPECT_EQ(t.port, 8888);
    EXPECT_EQ(t.to_string(), ":8888");

    const auto a = hex("00000000 00000000 7f000001 00000000 00000000 00000000 22b8 0000");
    EXPECT_EQ(decode_tproxy(1, Family::v4, a).value().to_string(), "127.0.0.1:8888");
    const auto a6 = hex("00000000 00000000 00000000 00000000 00000000 00000001 22b8 0000");
    EXPECT_EQ(decode_tproxy(1, Family::v6, a6).value().to_string(), "[::1]:8888");

    const auto r = decode_tproxy(1, Family::v4, std::span(b).first(26));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::truncated);
    EXPECT_EQ(r.error().detail,
              "TPROXY rev 1 (xt_tproxy_target_info_v1): blob of 26 bytes, need 28");
}

TEST(XtBlobs, TproxyRev0Ipv4Only) {
    const auto b = hex("00000000 00000000 0a000001 22b8 0000");
    EXPECT_EQ(decode_tproxy(0, Family::v4, b).value().to_string(), "10.0.0.1:8888");
    EXPECT_EQ(decode_tproxy(0, Family::v6, b).error().code, Errc::malformed);
    EXPECT_EQ(decode_tproxy(0, Family::v4, std::span(b).first(14)).error().code, Errc::truncated);
}

TEST(XtBlobs, Comment) {
    std::vector<std::uint8_t> b(256, 0);
    const std::string text = "pf rule@PREROUTING";
    std::copy(text.begin(), text.end(), b.begin());
    EXPECT_EQ(decode_comment(b).value(), text);
    std::vector<std::uint8_t> full(256, 'x');  // no terminator: stop at XT_MAX_COMMENT_LEN
    EXPECT_EQ(decode_comment(full).value(), std::string(256, 'x'));
    const auto r = decode_comment(std::span(b).first(255));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::truncated);
    EXPECT_EQ(r.error().detail, "xt_comment_info: blob of 255 bytes, need 256");
}

TEST(XtBlobs, EmptyBlobsNeverCrash) {
    const std::span<const std::uint8_t> empty;
    EXPECT_FALSE(decode_tcp(empty));
    EXPECT_FALSE(decode_udp(empty));
    EXPECT_FALSE(decode_multiport(empty, 0));
    EXPECT_FALSE(decode_multiport(empty, 1));
    EXPECT_FALSE(decode_nat("DNAT", 2, Family::v6, empty));
    EXPECT_FALSE(decode_nat("REDIRECT", 0, Family::v4, empty));
    EXPECT_FALSE(decode_tproxy(1, Family::v6, empty));
    EXPECT_FALSE(decode_comment(empty));
}

}  // namespace
}  // namespace vipportd::netlink::xt
