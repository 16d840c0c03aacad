// SocketSource: the bind-conflict matching (kernel.md §1.5/§1.6) and the whole collect() path over
// sock_diag and RTM_GETLINK dumps recorded from a real kernel (tests/fixtures/sock_diag/
// scenario.txt and tests/fixtures/rtnl/links.txt; their headers list the sockets).

#include "agent/socket_source.hpp"

#include <algorithm>
#include <cerrno>
#include <variant>

#include <gtest/gtest.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include "agent/model.hpp"
#include "netlink/bytes.hpp"
#include "netlink/fixture.hpp"
#include "netlink/replay_transport.hpp"

namespace vipportd::agent {
namespace {

using netlink::Fixture;
using netlink::ReplayTransport;

InetAddress ip(const char* text) { return InetAddress::parse(text).value(); }

PortSet ports(std::initializer_list<std::uint16_t> list) {
    PortSet s;
    for (auto p : list) {
        s.add(p);
    }
    return s;
}

Fixture fixture(const char* name) {
    auto f = netlink::read_fixture(std::string(VIPPORTD_FIXTURES) + "/" + name);
    EXPECT_TRUE(f) << netlink::to_string(f.error());
    return f ? *f : Fixture{};
}

std::unique_ptr<netlink::Transport> replay(Fixture f) {
    return std::make_unique<ReplayTransport>(std::move(f), "test fixture");
}

Snapshot collect(SocketSource& source) {
    auto claims = source.collect();
    EXPECT_TRUE(claims) << netlink::to_string(claims.error());
    Snapshot s;
    if (claims) {
        s.claims = std::move(*claims);
    }
    return s;
}

const SocketOrigin& origin(const Claim& c) { return std::get<SocketOrigin>(c.origin); }

const Claim* find(const Snapshot& s, Protocol p, std::uint16_t port, const char* address) {
    for (const auto& c : s.claims) {
        if (c.protocol == p && c.ports.contains(port) && origin(c).address == ip(address)) {
            return &c;
        }
    }
    return nullptr;
}

// Applies f to the value bytes' attribute header of every attribute `type` in the replies of the
// exchanges whose request has the given family/protocol (byte 16/17 of the request).
template <class F>
void for_each_reply_attribute(Fixture& fx, std::uint8_t family, std::uint16_t type, F f) {
    for (auto& ex : fx.exchanges) {
        if (ex.request.size() < 18) {
            continue;
        }
        // TCP dumps: the compat request (both families), or a v2 request for IPPROTO_TCP.
        const auto request_type = netlink::load<nlmsghdr>(ex.request).nlmsg_type;
        if (request_type != TCPDIAG_GETSOCK && ex.request[17] != 6) {
            continue;
        }
        for (auto& d : ex.replies) {
            netlink::MessageWalker walk(d);
            while (auto m = walk.next()) {
                if (!*m) {
                    break;
                }
                if ((*m)->header.nlmsg_type != request_type || (*m)->payload.empty() ||
                    (*m)->payload[0] != family) {
                    continue;
                }
                const std::size_t at =
                    (*m)->offset + netlink::kNlmsghdrSize + sizeof(inet_diag_msg);
                netlink::AttributeWalker attrs((*m)->payload.subspan(sizeof(inet_diag_msg)), at);
                while (auto a = attrs.next()) {
                    if (!*a) {
                        break;
                    }
                    if ((*a)->type == type) {
                        f(std::span<std::uint8_t>(d), (*a)->offset);
                    }
                }
            }
        }
    }
}

// --- socket_scope: the one matching function --------------------------------------------------

TEST(SocketScope, FollowsTheBindConflictRules) {
    const auto v4_all = AddressScope::all(Family::v4);
    const auto v6_all = AddressScope::all(Family::v6);
    auto both = v4_all;
    both.unite(v6_all);

    EXPECT_EQ(socket_scope(ip("1.2.3.4"), std::nullopt).scope, AddressScope::exact(ip("1.2.3.4")));
    EXPECT_EQ(socket_scope(ip("0.0.0.0"), std::nullopt).scope, v4_all);
    EXPECT_EQ(socket_scope(ip("::ffff:1.2.3.4"), false).scope, AddressScope::exact(ip("1.2.3.4")));
    EXPECT_EQ(socket_scope(ip("::ffff:0.0.0.0"), false).scope, v4_all);
    EXPECT_EQ(socket_scope(ip("::"), false).scope, both);
    EXPECT_EQ(socket_scope(ip("::"), true).scope, v6_all);
    EXPECT_EQ(socket_scope(ip("2001:db8::1"), true).scope, AddressScope::exact(ip("2001:db8::1")));
    EXPECT_EQ(socket_scope(ip("2001:db8::1"), std::nullopt).scope,
              AddressScope::exact(ip("2001:db8::1")));

    for (const char* a : {"1.2.3.4", "0.0.0.0", "::ffff:1.2.3.4", "2001:db8::1"}) {
        EXPECT_EQ(socket_scope(ip(a), std::nullopt).certainty, Certainty::exact) << a;
    }
    EXPECT_EQ(socket_scope(ip("::"), false).certainty, Certainty::exact);
    EXPECT_EQ(socket_scope(ip("::"), true).certainty, Certainty::exact);
    // No SKV6ONLY (old kernel): assume dual-stack, and say so.
    const auto unknown = socket_scope(ip("::"), std::nullopt);
    EXPECT_EQ(unknown.scope, both);
    EXPECT_EQ(unknown.certainty, Certainty::uncertain);
}

TEST(SocketClaims, ReuseportGroupsCountOnceAndUniteScopes) {
    netlink::SocketEntry a;
    a.family = Family::v6;
    a.protocol = netlink::kProtoTcp;
    a.state = netlink::kTcpListen;
    a.address = ip("::");
    a.port = 9999;
    a.v6only = true;
    a.inode = 1;
    netlink::SocketEntry b = a;
    b.v6only = false;  // a dual-stack sibling in the same group
    b.inode = 2;
    netlink::SocketEntry c = a;
    c.ifindex = 4;  // same address and port on a device: another group
    c.inode = 3;
    const std::vector<netlink::SocketEntry> entries{a, c, b};
    const auto claims = socket_claims(entries, {{4, "eth9"}});
    ASSERT_EQ(claims.size(), 2U);
    EXPECT_EQ(origin(claims[0]).count, 2U);
    EXPECT_EQ(origin(claims[0]).inode, 1U);  // the group's first socket, in dump order
    EXPECT_TRUE(claims[0].scope.covers(ip("1.2.3.4")));
    EXPECT_EQ(origin(claims[1]).count, 1U);
    EXPECT_EQ(origin(claims[1]).device, "eth9");
    EXPECT_EQ(claims[1].ports, PortSet::single(9999));
}

// --- collect() over recorded dumps ------------------------------------------------------------

class RecordedSockets : public ::testing::Test {
  protected:
    SocketSource source{replay(fixture("sock_diag/scenario.txt")),
                        replay(fixture("rtnl/links.txt"))};
};

TEST_F(RecordedSockets, NameIsSockets) { EXPECT_EQ(source.name(), "sockets"); }

TEST_F(RecordedSockets, TcpPortsPerVip) {
    const Snapshot s = collect(source);
    // 1.2.3.4: its own listeners (80, 443, 8082 mapped), bound-only 7777, and the wildcards:
    // 0.0.0.0:22, 0.0.0.0:9000/9002 (device-bound), [::]:8080 dual-stack. Not [::]:8081 (v6only).
    EXPECT_EQ(s.used_ports(ip("1.2.3.4"), Protocol::tcp),
              ports({22, 80, 443, 7777, 8080, 8082, 9000, 9002}));
    // Freebind 9.9.9.9 is not configured anywhere, and still holds 9001.
    EXPECT_EQ(s.used_ports(ip("9.9.9.9"), Protocol::tcp), ports({22, 8080, 9000, 9001, 9002}));
    EXPECT_EQ(s.used_ports(ip("9.9.9.8"), Protocol::tcp), ports({22, 8080, 9000, 9002, 9003}));
    EXPECT_EQ(s.used_ports(ip("10.9.8.7"), Protocol::tcp), ports({22, 8080, 9000, 9002}));
    // A v4-mapped VIP is its IPv4 address.
    EXPECT_EQ(s.used_ports(ip("::ffff:1.2.3.4"), Protocol::tcp),
              s.used_ports(ip("1.2.3.4"), Protocol::tcp));
    // IPv6: [::] whatever v6only says, and the specific address.
    EXPECT_EQ(s.used_ports(ip("2001:db8::1"), Protocol::tcp), ports({8080, 8081, 8083}));
    EXPECT_EQ(s.used_ports(ip("2001:db8::2"), Protocol::tcp), ports({8080, 8081}));
}

TEST_F(RecordedSockets, UdpPortsPerVip) {
    const Snapshot s = collect(source);
    // 5300 is a connected UDP socket: it holds its local port too.
    EXPECT_EQ(s.used_ports(ip("1.2.3.4"), Protocol::udp), ports({53, 67, 5300, 5353, 5400}));
    EXPECT_EQ(s.used_ports(ip("2001:db8::1"), Protocol::udp), ports({5353, 5354}));
}

TEST_F(RecordedSockets, OriginsCarryTheDetails) {
    const Snapshot s = collect(source);
    EXPECT_EQ(s.claims.size(), 18U);  // 20 sockets, two reuseport pairs folded
    for (const auto& c : s.claims) {
        EXPECT_EQ(c.certainty, Certainty::exact);
        EXPECT_EQ(c.ports.count(), 1U);
        EXPECT_NE(origin(c).inode, 0U);
    }
    const Claim* https = find(s, Protocol::tcp, 443, "1.2.3.4");
    ASSERT_NE(https, nullptr);
    EXPECT_EQ(origin(*https).count, 2U);
    EXPECT_EQ(origin(*find(s, Protocol::udp, 5400, "1.2.3.4")).count, 2U);
    EXPECT_EQ(origin(*find(s, Protocol::tcp, 80, "1.2.3.4")).count, 1U);

    const auto& lo = origin(*find(s, Protocol::tcp, 9000, "0.0.0.0"));
    EXPECT_EQ(lo.ifindex, 1U);
    EXPECT_EQ(lo.device, "lo");
    const auto& v0 = origin(*find(s, Protocol::tcp, 9002, "0.0.0.0"));
    EXPECT_NE(v0.ifindex, 0U);
    EXPECT_EQ(v0.device, "v0");
    EXPECT_EQ(origin(*find(s, Protocol::udp, 67, "0.0.0.0")).device, "lo");
    EXPECT_EQ(origin(*find(s, Protocol::tcp, 22, "0.0.0.0")).device, "");

    EXPECT_TRUE(origin(*find(s, Protocol::tcp, 9001, "9.9.9.9")).freebind);
    EXPECT_TRUE(origin(*find(s, Protocol::tcp, 9003, "9.9.9.8")).transparent);
    EXPECT_EQ(origin(*find(s, Protocol::tcp, 7777, "1.2.3.4")).state, netlink::kTcpClose);
    EXPECT_EQ(origin(*find(s, Protocol::tcp, 8081, "::")).v6only, true);
    EXPECT_EQ(origin(*find(s, Protocol::tcp, 8080, "::")).v6only, false);
    EXPECT_EQ(origin(*find(s, Protocol::udp, 5300, "1.2.3.4")).state, netlink::kTcpEstablished);
}

TEST(SocketSource, BoundInactiveCanBeSwitchedOff) {
    SocketSource source(replay(fixture("sock_diag/scenario.txt")), nullptr,
                        {.tcp_bound_inactive = false});
    const Snapshot s = collect(source);
    EXPECT_EQ(s.used_ports(ip("1.2.3.4"), Protocol::tcp),
              ports({22, 80, 443, 8080, 8082, 9000, 9002}));
}

TEST(SocketSource, WithoutRouteTransportDevicesStayUnnamed) {
    SocketSource source(replay(fixture("sock_diag/scenario.txt")), nullptr);
    const Snapshot s = collect(source);
    const auto& lo = origin(*find(s, Protocol::tcp, 9000, "0.0.0.0"));
    EXPECT_EQ(lo.ifindex, 1U);
    EXPECT_EQ(lo.device, "");
}

TEST(SocketSource, FailingLinkDumpDoesNotFailTheSource) {
    SocketSource source(replay(fixture("sock_diag/scenario.txt")), replay(Fixture{}));
    const Snapshot s = collect(source);
    EXPECT_EQ(s.claims.size(), 18U);
    EXPECT_EQ(origin(*find(s, Protocol::tcp, 9000, "0.0.0.0")).device, "");
}

TEST(SocketSource, MissingDumpNamesWhichOne) {
    Fixture f = fixture("sock_diag/scenario.txt");
    // Drop the udp6 exchange (AF_INET6, IPPROTO_UDP).
    std::erase_if(f.exchanges, [](const netlink::FixtureExchange& ex) {
        return ex.request[16] == 10 && ex.request[17] == 17;
    });
    SocketSource source(replay(f), nullptr);
    auto claims = source.collect();
    ASSERT_FALSE(claims);
    EXPECT_EQ(claims.error().code, netlink::Errc::unexpected);
    EXPECT_EQ(claims.error().detail.rfind("sock_diag udp6 dump: request not in", 0), 0U)
        << claims.error().detail;
}

TEST(SocketSource, UnknownV6onlyWidensAndMarksUncertain) {
    Fixture f = fixture("sock_diag/scenario.txt");
    int retyped = 0;
    for_each_reply_attribute(f, 10, INET_DIAG_SKV6ONLY, [&](std::span<std::uint8_t> d, auto off) {
        netlink::store(d, off + 2, std::uint16_t{200});  // as if the kernel never sent it
        ++retyped;
    });
    // Four tcp6 sockets, in each of the two TCP masks, in the compat and per-family dumps.
    ASSERT_EQ(retyped, 16);
    SocketSource source(replay(f), nullptr);
    const Snapshot s = collect(source);
    const Claim* only = find(s, Protocol::tcp, 8081, "::");
    ASSERT_NE(only, nullptr);
    EXPECT_FALSE(origin(*only).v6only.has_value());
    EXPECT_EQ(only->certainty, Certainty::uncertain);
    EXPECT_TRUE(only->scope.covers(ip("1.2.3.4")));
    // Specific addresses need no v6only to be exact.
    EXPECT_EQ(find(s, Protocol::tcp, 8083, "2001:db8::1")->certainty, Certainty::exact);
    EXPECT_EQ(find(s, Protocol::tcp, 8082, "::ffff:1.2.3.4")->certainty, Certainty::exact);
}

// The recorded exchange annotated label.
std::vector<netlink::FixtureExchange>::iterator labelled(Fixture& f, const std::string& label) {
    const auto it = std::find_if(f.exchanges.begin(), f.exchanges.end(), [&](const auto& ex) {
        return ex.comment == std::vector<std::string>{label};
    });
    EXPECT_NE(it, f.exchanges.end()) << label;
    return it;
}

// NLM_F_DUMP_INTR on the recorded TCP (compat) dump: retried, then accepted or reported.
Fixture with_interrupted_tcp(int interrupted_copies, bool clean_copy) {
    Fixture f = fixture("sock_diag/scenario.txt");
    const auto it = labelled(f, "tcp");
    netlink::FixtureExchange clean = *it;
    netlink::FixtureExchange intr = clean;
    for (auto& d : intr.replies) {
        netlink::MessageWalker walk(d);
        while (true) {
            const std::size_t at = walk.offset();
            auto m = walk.next();
            if (!m || !*m) {
                break;
            }
            nlmsghdr h = (*m)->header;
            h.nlmsg_flags |= NLM_F_DUMP_INTR;
            netlink::store(std::span<std::uint8_t>(d), at, h);
        }
    }
    std::vector<netlink::FixtureExchange> replaced(static_cast<std::size_t>(interrupted_copies),
                                                   intr);
    if (clean_copy) {
        replaced.push_back(clean);
    }
    const auto pos = f.exchanges.erase(it);
    f.exchanges.insert(pos, replaced.begin(), replaced.end());
    return f;
}

TEST(SocketSource, InterruptedDumpIsRetried) {
    auto t = std::make_unique<ReplayTransport>(with_interrupted_tcp(2, true));
    auto* raw = t.get();
    SocketSource source(std::move(t), nullptr);
    const Snapshot s = collect(source);
    EXPECT_EQ(s.claims.size(), 18U);
    EXPECT_EQ(raw->served(), 5U);  // tcp three times, then udp4, udp6
}

TEST(SocketSource, PersistentlyInterruptedDumpFails) {
    SocketSource source(replay(with_interrupted_tcp(1, false)), nullptr, {.max_attempts = 3});
    auto claims = source.collect();
    ASSERT_FALSE(claims);
    EXPECT_EQ(claims.error().code, netlink::Errc::interrupted);
    EXPECT_EQ(claims.error().detail.rfind("sock_diag tcp dump:", 0), 0U);
}

// A kernel that refuses the compat request (inet_rcv_compat unset: EOPNOTSUPP) gets one v2 dump
// per family, from then on, with the same claims.
TEST(SocketSource, RefusedCompatDumpFallsBackToOneDumpPerFamily) {
    Fixture f = fixture("sock_diag/scenario.txt");
    const std::size_t expected =
        collect(*std::make_unique<SocketSource>(replay(f), nullptr)).claims.size();
    // Replace the compat exchange's reply with the kernel's NLMSG_ERROR -EOPNOTSUPP.
    auto it = labelled(f, "tcp");
    nlmsghdr err_header{};
    err_header.nlmsg_len = static_cast<std::uint32_t>(netlink::kNlmsghdrSize + sizeof(nlmsgerr));
    err_header.nlmsg_type = NLMSG_ERROR;
    err_header.nlmsg_flags = NLM_F_CAPPED;
    std::vector<std::uint8_t> reply(err_header.nlmsg_len, 0);
    netlink::store(std::span<std::uint8_t>(reply), 0, err_header);
    netlink::store(std::span<std::uint8_t>(reply), netlink::kNlmsghdrSize, -EOPNOTSUPP);
    netlink::store(std::span<std::uint8_t>(reply), netlink::kNlmsghdrSize + sizeof(int),
                   netlink::load<nlmsghdr>(it->request));
    it->replies = {reply};
    auto t = std::make_unique<ReplayTransport>(f);
    auto* raw = t.get();
    SocketSource source(std::move(t), nullptr);
    EXPECT_EQ(source.tcp_request(), TcpRequest::compat);
    const Snapshot s = collect(source);
    EXPECT_EQ(s.claims.size(), expected);
    EXPECT_EQ(expected, 18U);
    EXPECT_EQ(source.tcp_request(), TcpRequest::per_family);
    EXPECT_EQ(raw->served(), 5U);  // tcp (refused), tcp4, tcp6, udp4, udp6
    (void)collect(source);
    EXPECT_EQ(raw->served(), 9U);  // the compat request is not tried again
}

TEST(SocketSource, NoTransportIsAnError) {
    SocketSource source(nullptr, nullptr);
    EXPECT_FALSE(source.collect());
}

// kernel_reports_bound_inactive()'s verdict, over the recorded per-family TCP dumps: with the
// bound-inactive bit the kernel reports the bound-only 1.2.3.4:7777; a kernel older than 6.8
// ignores the bit and answers what the LISTEN-only dump answers, without it.
class BoundInactiveProbe : public ::testing::Test {
  protected:
    BoundInactiveProbe() {
        ReplayTransport t(f);
        auto dump = t.exchange(request);
        EXPECT_TRUE(dump) << netlink::to_string(dump.error());
        if (!dump) {
            return;
        }
        const auto entries = netlink::parse_inet_diag(*dump, netlink::kProtoTcp);
        EXPECT_TRUE(entries);
        for (const auto& e : entries.value()) {
            if (e.port == 7777) {
                inode = e.inode;
            }
        }
        EXPECT_NE(inode, 0U);
    }

    Fixture f = fixture("sock_diag/scenario.txt");
    // The probe's request: LISTEN plus the bound-inactive bit, IPv4, one v2 request.
    std::vector<std::uint8_t> request =
        socket_dumps({.tcp_bound_inactive = true}, TcpRequest::per_family).front().request;
    std::uint64_t inode = 0;
};

TEST_F(BoundInactiveProbe, KernelThatReportsThem) {
    ReplayTransport t(f);
    auto seen = dump_reports_inode(t, request, inode);
    ASSERT_TRUE(seen) << netlink::to_string(seen.error());
    EXPECT_TRUE(*seen);
    auto other = dump_reports_inode(t, request, inode + 1000000);
    ASSERT_TRUE(other);
    EXPECT_FALSE(*other);
}

TEST_F(BoundInactiveProbe, KernelOlderThan68IgnoresTheBit) {
    labelled(f, "tcp4 (per family)")->replies =
        labelled(f, "tcp4 (per family, LISTEN only)")->replies;
    ReplayTransport t(f);
    auto seen = dump_reports_inode(t, request, inode);
    ASSERT_TRUE(seen) << netlink::to_string(seen.error());
    EXPECT_FALSE(*seen);
}

TEST_F(BoundInactiveProbe, FailingDumpIsAnErrorNotAVerdict) {
    ReplayTransport t(Fixture{});
    EXPECT_FALSE(dump_reports_inode(t, request, inode));
}

}  // namespace
}  // namespace vipportd::agent
