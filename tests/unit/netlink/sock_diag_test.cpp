// sock_diag request bytes, and the parser over dumps recorded from a real kernel
// (tests/fixtures/sock_diag/*.txt, see their headers for the scenario and kernel version).

#include "netlink/sock_diag.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <gtest/gtest.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>

#include "netlink/bytes.hpp"
#include "netlink/fixture.hpp"
#include "netlink/replay_transport.hpp"

namespace vipportd::netlink {
namespace {

using Bytes = std::vector<std::uint8_t>;

constexpr std::uint32_t kTcpStates = kStatesTcpListen | kStatesTcpBoundInactive;

InetAddress ip(const char* text) { return InetAddress::parse(text).value(); }

Dump recorded(Family f, std::uint8_t proto, std::uint32_t states) {
    auto t = ReplayTransport::open(VIPPORTD_FIXTURES "/sock_diag/scenario.txt");
    EXPECT_TRUE(t) << to_string(t.error());
    auto dump = (*t)->exchange(build_inet_diag_request(f, proto, states));
    EXPECT_TRUE(dump) << to_string(dump.error());
    return std::move(*dump);
}

std::vector<SocketEntry> parsed(const Dump& d, std::uint8_t proto) {
    auto r = parse_inet_diag(d, proto);
    EXPECT_TRUE(r) << to_string(r.error());
    return r ? *r : std::vector<SocketEntry>{};
}

std::vector<SocketEntry> with_port(const std::vector<SocketEntry>& v, std::uint16_t port) {
    std::vector<SocketEntry> out;
    std::copy_if(v.begin(), v.end(), std::back_inserter(out),
                 [&](const SocketEntry& e) { return e.port == port; });
    return out;
}

// Absolute offsets (into dump.data) of every attribute of the given type.
std::vector<std::size_t> attribute_offsets(const Dump& d, std::uint16_t type) {
    std::vector<std::size_t> out;
    MessageWalker walk(d.data);
    while (auto m = walk.next()) {
        if (!*m) {
            break;
        }
        const std::size_t at = (*m)->offset + kNlmsghdrSize + sizeof(inet_diag_msg);
        AttributeWalker attrs((*m)->payload.subspan(sizeof(inet_diag_msg)), at);
        while (auto a = attrs.next()) {
            if (!*a) {
                break;
            }
            if ((*a)->type == type) {
                out.push_back((*a)->offset);
            }
        }
    }
    return out;
}

Bytes hex(const char* text) { return from_hex(text).value(); }

// --- requests ---------------------------------------------------------------------------------

TEST(SockDiagRequest, ExactBytes) {
    const Bytes expected = hex(
        "48000000 14000103 00000000 00000000"  // nlmsghdr: len 72, type 20, REQUEST|DUMP, seq/pid 0
        "02060000 00240000"                    // AF_INET, IPPROTO_TCP, ext 0, pad, states 0x2400
        "00000000 00000000 00000000 00000000 00000000 00000000"  // inet_diag_sockid: all zero
        "00000000 00000000 00000000 00000000 00000000 00000000");
    EXPECT_EQ(build_inet_diag_request(Family::v4, kProtoTcp, kTcpStates), expected);

    const Bytes udp6 = build_inet_diag_request(Family::v6, kProtoUdp, kStatesAll);
    ASSERT_EQ(udp6.size(), 72U);
    EXPECT_EQ(Bytes(udp6.begin() + 16, udp6.begin() + 24), hex("0a110000 ffffffff"));
}

TEST(SockDiagRequest, BytecodeAttributeIsPadded) {
    const Bytes program{1, 2, 3, 4, 5, 6};
    const Bytes req = build_inet_diag_request(Family::v4, kProtoTcp, kStatesTcpListen, program);
    ASSERT_EQ(req.size(), 84U);  // 16 + 56 + align4(4 + 6)
    EXPECT_EQ(load<nlmsghdr>(req).nlmsg_len, 84U);
    // nla_len 10, INET_DIAG_REQ_BYTECODE (1), the program, two bytes of padding.
    EXPECT_EQ(Bytes(req.begin() + 72, req.end()), hex("0a000100 01020304 05060000"));
    EXPECT_THROW((void)build_inet_diag_request(Family::v4, kProtoTcp, 0, Bytes(70000, 0)),
                 std::invalid_argument);
}

TEST(SockDiagRequest, TcpCompatExactBytes) {
    const Bytes expected = hex(
        "4c000000 12000103 00000000 00000000"  // nlmsghdr: len 76, TCPDIAG_GETSOCK, REQUEST|DUMP
        "02000000"                             // AF_INET (ignored: dumped as AF_UNSPEC), ext 0
        "00000000 00000000 00000000 00000000 00000000 00000000"  // inet_diag_sockid: all zero
        "00000000 00000000 00000000 00000000 00000000 00000000"
        "00240000 00000000");  // states 0x2400, dbs 0
    EXPECT_EQ(build_tcp_compat_request(kTcpStates), expected);
}

// --- parsing recorded dumps -------------------------------------------------------------------

Dump recorded_compat(std::uint32_t states) {
    auto t = ReplayTransport::open(VIPPORTD_FIXTURES "/sock_diag/scenario.txt");
    EXPECT_TRUE(t) << to_string(t.error());
    auto dump = (*t)->exchange(build_tcp_compat_request(states));
    EXPECT_TRUE(dump) << to_string(dump.error());
    return std::move(*dump);
}

// The compat request answers for both families at once (replies of type 18): exactly the union
// of the two per-family dumps, in both masks.
TEST(SockDiagParse, TcpCompatDumpIsBothFamilies) {
    for (const std::uint32_t states : {kTcpStates, kStatesTcpListen}) {
        const Dump compat = recorded_compat(states);
        auto messages = compat.messages();
        ASSERT_TRUE(messages);
        ASSERT_FALSE(messages->empty());
        for (const auto& m : *messages) {
            EXPECT_EQ(m.type, TCPDIAG_GETSOCK);
        }
        auto both = parsed(compat, kProtoTcp);
        auto expected = parsed(recorded(Family::v4, kProtoTcp, states), kProtoTcp);
        const auto v6 = parsed(recorded(Family::v6, kProtoTcp, states), kProtoTcp);
        expected.insert(expected.end(), v6.begin(), v6.end());
        const auto key = [](const SocketEntry& e) { return e.inode; };
        const auto by_inode = [&](const SocketEntry& a, const SocketEntry& b) {
            return key(a) < key(b);
        };
        std::sort(both.begin(), both.end(), by_inode);
        std::sort(expected.begin(), expected.end(), by_inode);
        EXPECT_EQ(both, expected) << "states " << states;
    }
    // The recording holds v4 and v6 sockets, and the bound-only one only with the 0x2000 bit.
    const auto all = parsed(recorded_compat(kTcpStates), kProtoTcp);
    EXPECT_TRUE(std::any_of(all.begin(), all.end(),
                            [](const SocketEntry& e) { return e.family == Family::v6; }));
    EXPECT_EQ(with_port(all, 7777).size(), 1U);
    EXPECT_TRUE(with_port(parsed(recorded_compat(kStatesTcpListen), kProtoTcp), 7777).empty());
}

// Streaming hands over the same messages, with the offsets a collected Dump would have.
TEST(SockDiagParse, StreamedExchangeSeesWhatTheDumpHolds) {
    auto t = ReplayTransport::open(VIPPORTD_FIXTURES "/sock_diag/scenario.txt");
    ASSERT_TRUE(t) << to_string(t.error());
    std::vector<SocketEntry> streamed;
    std::vector<std::size_t> offsets;
    auto interrupted = (*t)->exchange_each(build_tcp_compat_request(kTcpStates),
                                           [&](const RawMessage& m) -> Result<void> {
                                               offsets.push_back(m.offset);
                                               auto e = parse_inet_diag_message(m, kProtoTcp);
                                               if (!e) {
                                                   return e.error();
                                               }
                                               streamed.push_back(*e);
                                               return {};
                                           });
    ASSERT_TRUE(interrupted) << to_string(interrupted.error());
    EXPECT_FALSE(*interrupted);
    const Dump d = recorded_compat(kTcpStates);
    EXPECT_EQ(streamed, parsed(d, kProtoTcp));
    std::vector<std::size_t> dump_offsets;
    MessageWalker walk(d.data);
    while (auto m = walk.next()) {
        if (!*m) {
            break;
        }
        dump_offsets.push_back((*m)->offset);
    }
    EXPECT_EQ(offsets, dump_offsets);
}

// An error from the receiver ends the exchange with that error, and the transport stays usable.
TEST(SockDiagParse, StreamedReceiverErrorEndsTheExchange) {
    auto t = ReplayTransport::open(VIPPORTD_FIXTURES "/sock_diag/scenario.txt");
    ASSERT_TRUE(t) << to_string(t.error());
    int seen = 0;
    auto r = (*t)->exchange_each(build_tcp_compat_request(kTcpStates),
                                 [&](const RawMessage&) -> Result<void> {
                                     ++seen;
                                     return Error::of(Errc::malformed, "receiver says no");
                                 });
    ASSERT_FALSE(r);
    EXPECT_EQ(to_string(r.error()), "receiver says no");
    EXPECT_EQ(seen, 1);
    EXPECT_TRUE((*t)->exchange(build_inet_diag_request(Family::v4, kProtoUdp, kStatesAll)));
}

TEST(SockDiagParse, Tcp4Listeners) {
    const auto v = parsed(recorded(Family::v4, kProtoTcp, kTcpStates), kProtoTcp);
    ASSERT_EQ(v.size(), 9U);  // the ESTABLISHED client and accepted child are not dumped
    for (const auto& e : v) {
        EXPECT_EQ(e.family, Family::v4);
        EXPECT_EQ(e.protocol, kProtoTcp);
        EXPECT_NE(e.inode, 0U);
        EXPECT_NE(e.cookie, 0U);
        EXPECT_EQ(e.uid, 0U);
        EXPECT_FALSE(e.v6only.has_value());   // IPv4 sockets never carry SKV6ONLY
        EXPECT_TRUE(e.freebind.has_value());  // INET_DIAG_SOCKOPT is always sent on 6.18
        EXPECT_TRUE(e.transparent.has_value());
    }
    const auto http = with_port(v, 80);
    ASSERT_EQ(http.size(), 1U);
    EXPECT_EQ(http[0].address, ip("1.2.3.4"));
    EXPECT_EQ(http[0].state, kTcpListen);
    EXPECT_EQ(http[0].ifindex, 0U);

    const auto https = with_port(v, 443);  // SO_REUSEPORT pair: two entries
    ASSERT_EQ(https.size(), 2U);
    EXPECT_NE(https[0].inode, https[1].inode);
    EXPECT_NE(https[0].cookie, https[1].cookie);

    EXPECT_EQ(with_port(v, 22).at(0).address, ip("0.0.0.0"));
    EXPECT_EQ(with_port(v, 9000).at(0).ifindex, 1U);  // lo
    const auto v0 = with_port(v, 9002).at(0);
    EXPECT_GT(v0.ifindex, 1U);  // v0 (rtnl_link_test checks the name)

    const auto freebind = with_port(v, 9001).at(0);
    EXPECT_EQ(freebind.address, ip("9.9.9.9"));
    EXPECT_EQ(freebind.freebind, true);
    EXPECT_EQ(freebind.transparent, false);
    const auto transparent = with_port(v, 9003).at(0);
    EXPECT_EQ(transparent.transparent, true);
    EXPECT_EQ(transparent.freebind, false);

    const auto bound = with_port(v, 7777).at(0);  // TCP_BOUND_INACTIVE comes back as TCP_CLOSE
    EXPECT_EQ(bound.state, kTcpClose);
    EXPECT_EQ(bound.address, ip("1.2.3.4"));
}

TEST(SockDiagParse, ListenOnlyMaskLeavesOutBoundSockets) {
    const auto v = parsed(recorded(Family::v4, kProtoTcp, kStatesTcpListen), kProtoTcp);
    EXPECT_EQ(v.size(), 8U);
    EXPECT_TRUE(with_port(v, 7777).empty());
    for (const auto& e : v) {
        EXPECT_EQ(e.state, kTcpListen);
    }
}

TEST(SockDiagParse, Tcp6V6onlyAndMappedAddresses) {
    const auto v = parsed(recorded(Family::v6, kProtoTcp, kTcpStates), kProtoTcp);
    ASSERT_EQ(v.size(), 4U);
    const auto dual = with_port(v, 8080).at(0);
    EXPECT_EQ(dual.family, Family::v6);
    EXPECT_EQ(dual.address, ip("::"));
    EXPECT_EQ(dual.v6only, false);
    const auto only = with_port(v, 8081).at(0);
    EXPECT_EQ(only.address, ip("::"));
    EXPECT_EQ(only.v6only, true);
    const auto mapped = with_port(v, 8082).at(0);
    EXPECT_EQ(mapped.address, ip("::ffff:1.2.3.4"));
    EXPECT_EQ(mapped.v6only, false);
    const auto specific = with_port(v, 8083).at(0);
    EXPECT_EQ(specific.address, ip("2001:db8::1"));
    EXPECT_EQ(specific.v6only, true);  // implied for a specific non-mapped address (§1.4)
}

TEST(SockDiagParse, UdpBoundConnectedAndReuseport) {
    const auto v = parsed(recorded(Family::v4, kProtoUdp, kStatesAll), kProtoUdp);
    ASSERT_EQ(v.size(), 5U);
    EXPECT_EQ(with_port(v, 53).at(0).state, kTcpClose);  // bound UDP shows as TCP_CLOSE
    EXPECT_EQ(with_port(v, 67).at(0).ifindex, 1U);
    const auto connected = with_port(v, 5300).at(0);
    EXPECT_EQ(connected.state, kTcpEstablished);
    EXPECT_EQ(connected.remote, ip("1.2.3.4"));
    EXPECT_EQ(connected.remote_port, 53);
    EXPECT_EQ(with_port(v, 5400).size(), 2U);

    const auto v6 = parsed(recorded(Family::v6, kProtoUdp, kStatesAll), kProtoUdp);
    ASSERT_EQ(v6.size(), 2U);
    EXPECT_EQ(with_port(v6, 5353).at(0).v6only, false);
    EXPECT_EQ(with_port(v6, 5354).at(0).v6only, true);
}

TEST(SockDiagParse, MissingV6onlyAttributeStaysUnknown) {
    // As an old kernel (< INET_DIAG_SKV6ONLY) would send it: retype the attribute to one the
    // parser does not know, which it must skip.
    Dump d = recorded(Family::v6, kProtoTcp, kTcpStates);
    const auto at = attribute_offsets(d, INET_DIAG_SKV6ONLY);
    ASSERT_EQ(at.size(), 4U);
    for (const std::size_t off : at) {
        store(std::span<std::uint8_t>(d.data), off + 2, std::uint16_t{200});
    }
    for (const auto& e : parsed(d, kProtoTcp)) {
        EXPECT_FALSE(e.v6only.has_value());
    }
}

TEST(SockDiagParse, EmptyDumpIsEmpty) {
    auto v = parse_inet_diag(Dump{}, kProtoTcp);
    ASSERT_TRUE(v);
    EXPECT_TRUE(v->empty());
}

// --- malformed input -------------------------------------------------------------------------

TEST(SockDiagParse, TruncatedDumpNamesTheOffset) {
    Dump d = recorded(Family::v4, kProtoTcp, kTcpStates);
    const std::size_t last = d.data.size() - 124;  // messages are 124 bytes on this kernel
    ASSERT_EQ(load<nlmsghdr>(d.data, last).nlmsg_len, 124U);
    d.data.resize(d.data.size() - 10);
    auto r = parse_inet_diag(d, kProtoTcp);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::truncated);
    EXPECT_NE(r.error().detail.find("offset " + std::to_string(last)), std::string::npos)
        << r.error().detail;
}

TEST(SockDiagParse, WrongMessageTypeIsMalformed) {
    Dump d = recorded(Family::v4, kProtoTcp, kTcpStates);
    store(std::span<std::uint8_t>(d.data), 124 + 4, std::uint16_t{16});  // RTM_NEWLINK
    auto r = parse_inet_diag(d, kProtoTcp);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::malformed);
    EXPECT_NE(r.error().detail.find("offset 124"), std::string::npos) << r.error().detail;
    EXPECT_NE(r.error().detail.find("expected SOCK_DIAG_BY_FAMILY (20) or TCPDIAG_GETSOCK (18)"),
              std::string::npos)
        << r.error().detail;
}

TEST(SockDiagParse, UnknownFamilyIsMalformed) {
    Dump d = recorded(Family::v4, kProtoTcp, kTcpStates);
    d.data[kNlmsghdrSize] = 3;  // idiag_family of the first message
    auto r = parse_inet_diag(d, kProtoTcp);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::malformed);
    EXPECT_NE(r.error().detail.find("idiag_family 3"), std::string::npos);
}

TEST(SockDiagParse, ShortPayloadIsTruncated) {
    Dump d = recorded(Family::v4, kProtoTcp, kTcpStates);
    d.data.resize(kNlmsghdrSize + 40);
    store(std::span<std::uint8_t>(d.data), 0, std::uint32_t{kNlmsghdrSize + 40});
    auto r = parse_inet_diag(d, kProtoTcp);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::truncated);
    EXPECT_NE(r.error().detail.find("inet_diag_msg needs 72"), std::string::npos);
}

TEST(SockDiagParse, AttributeOverrunNamesItsOffset) {
    Dump d = recorded(Family::v4, kProtoTcp, kTcpStates);
    const std::size_t first_attr = kNlmsghdrSize + sizeof(inet_diag_msg);    // 88
    store(std::span<std::uint8_t>(d.data), first_attr, std::uint16_t{200});  // nla_len
    auto r = parse_inet_diag(d, kProtoTcp);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::truncated);
    EXPECT_NE(r.error().detail.find("at offset 88"), std::string::npos) << r.error().detail;
}

TEST(SockDiagParse, AttributeShorterThanItsTypeIsMalformed) {
    Dump d = recorded(Family::v6, kProtoTcp, kTcpStates);
    // Keep the first message's inet_diag_msg, give it one empty INET_DIAG_SKV6ONLY attribute.
    d.data.resize(kNlmsghdrSize + sizeof(inet_diag_msg) + kNlattrSize);
    store(std::span<std::uint8_t>(d.data), 0, static_cast<std::uint32_t>(d.data.size()));
    nlattr a{};
    a.nla_len = kNlattrSize;
    a.nla_type = INET_DIAG_SKV6ONLY;
    store(std::span<std::uint8_t>(d.data), kNlmsghdrSize + sizeof(inet_diag_msg), a);
    auto r = parse_inet_diag(d, kProtoTcp);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::malformed);
    EXPECT_NE(r.error().detail.find("attribute type 11 at offset 88"), std::string::npos)
        << r.error().detail;
}

// --- kernel errors, recorded ------------------------------------------------------------------

TEST(SockDiagKernelErrors, InvalidFamilyIsEinval) {
    auto t = ReplayTransport::open(VIPPORTD_FIXTURES "/sock_diag/errors.txt");
    ASSERT_TRUE(t);
    Bytes req = build_inet_diag_request(Family::v4, kProtoTcp, kStatesTcpListen);
    req[kNlmsghdrSize] = 255;
    auto r = (*t)->exchange(req);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::kernel);
    EXPECT_EQ(r.error().sys_errno, EINVAL);
}

TEST(SockDiagKernelErrors, UnknownProtocolFailsInNlmsgDone) {
    auto t = ReplayTransport::open(VIPPORTD_FIXTURES "/sock_diag/errors.txt");
    ASSERT_TRUE(t);
    auto r = (*t)->exchange(build_inet_diag_request(Family::v4, 254, kStatesAll));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::kernel);
    EXPECT_EQ(r.error().sys_errno, ENOENT);
    EXPECT_NE(r.error().detail.find("NLMSG_DONE"), std::string::npos);
}

}  // namespace
}  // namespace vipportd::netlink
