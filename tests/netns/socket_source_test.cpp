// SocketSource against the real kernel: every row of the bind-conflict matrix (kernel.md §1.5),
// plus IPv6 VIP rows. For each row, in a fresh netns with the VIPs on a veth pair:
//   1. the existing socket is opened (inside the netns, ephemeral port),
//   2. SocketSource (KernelTransports created inside the netns) reports the port used or not,
//   3. the kernel is asked the same question by attempting the row's new bind,
// and the two answers must agree (EADDRINUSE <=> reported used), except for the rows where the
// daemon's documented policy deliberately answers "used" although a special bind would succeed.

#include "agent/socket_source.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <net/if.h>
#include <optional>
#include <ostream>
#include <string>
#include <unistd.h>
#include <vector>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/utsname.h>

#include "agent/model.hpp"
#include "netlink/kernel_transport.hpp"
#include "tests/support/netns.hpp"

namespace vipportd::agent {
namespace {

// How to open one socket. port 0 = let the kernel choose (tests never use fixed ports).
struct Spec {
    int family = AF_INET;
    int type = SOCK_STREAM;
    std::string address = "0.0.0.0";
    std::optional<int> v6only{};
    std::string device{};
    bool reuseaddr = false;
    bool reuseport = false;
    bool freebind = false;
    bool listen = true;                 // TCP only; false leaves it bound-only
    std::optional<std::string> peer{};  // UDP: connect to peer:<port of a helper socket>
};

Spec tcp4(std::string addr) { return {.family = AF_INET, .address = std::move(addr)}; }
Spec tcp6(std::string addr) { return {.family = AF_INET6, .address = std::move(addr)}; }
Spec udp4(std::string addr) {
    return {.family = AF_INET, .type = SOCK_DGRAM, .address = std::move(addr)};
}
Spec udp6(std::string addr) {
    return {.family = AF_INET6, .type = SOCK_DGRAM, .address = std::move(addr)};
}
Spec with(Spec s, auto&& f) {
    f(s);
    return s;
}

// Socket plumbing, run on a thread inside the netns. Returns the fd, or -errno of the failing call.
struct Opened {
    int fd = -1;
    int err = 0;  // errno of the first failing call
    std::uint16_t port = 0;
};

Opened open_socket(const Spec& s, std::uint16_t port) {
    Opened o;
    o.fd = ::socket(s.family, s.type | SOCK_CLOEXEC, 0);
    const auto fail = [&] {
        o.err = errno;
        if (o.fd >= 0) {
            ::close(o.fd);
        }
        o.fd = -1;
        return o;
    };
    if (o.fd < 0) {
        return fail();
    }
    const int one = 1;
    if (s.reuseaddr && ::setsockopt(o.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
        return fail();
    }
    if (s.reuseport && ::setsockopt(o.fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        return fail();
    }
    if (s.freebind && ::setsockopt(o.fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof one) != 0) {
        return fail();
    }
    if (s.v6only) {
        const int v = *s.v6only;
        if (::setsockopt(o.fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v) != 0) {
            return fail();
        }
    }
    if (!s.device.empty() && ::setsockopt(o.fd, SOL_SOCKET, SO_BINDTODEVICE, s.device.data(),
                                          static_cast<socklen_t>(s.device.size())) != 0) {
        return fail();
    }
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (s.family == AF_INET) {
        auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
        sa->sin_family = AF_INET;
        sa->sin_port = htons(port);
        ::inet_pton(AF_INET, s.address.c_str(), &sa->sin_addr);
        len = sizeof(sockaddr_in);
    } else {
        auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
        sa->sin6_family = AF_INET6;
        sa->sin6_port = htons(port);
        ::inet_pton(AF_INET6, s.address.c_str(), &sa->sin6_addr);
        len = sizeof(sockaddr_in6);
    }
    if (::bind(o.fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        return fail();
    }
    if (s.type == SOCK_STREAM && s.listen && ::listen(o.fd, 4) != 0) {
        return fail();
    }
    if (s.peer) {
        // UDP connect() only fixes the peer: nothing needs to listen, and no packet is sent.
        sockaddr_in peer{};
        peer.sin_family = AF_INET;
        peer.sin_port = htons(9);
        ::inet_pton(AF_INET, s.peer->c_str(), &peer.sin_addr);
        if (::connect(o.fd, reinterpret_cast<sockaddr*>(&peer), sizeof peer) != 0) {
            return fail();
        }
    }
    sockaddr_storage bound{};
    socklen_t blen = sizeof bound;
    ::getsockname(o.fd, reinterpret_cast<sockaddr*>(&bound), &blen);
    o.port = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                              : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
    return o;
}

InetAddress ip(const std::string& text) { return InetAddress::parse(text).value(); }

class SocketsInNetns : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!test::can_create_netns()) {
            GTEST_SKIP() << "needs root (network namespaces)";
        }
        ns_ = std::make_unique<test::TestNetns>();
        // The VIPs live on v0 of a veth pair; 9.9.9.9 is deliberately configured nowhere.
        ns_->sh("ip link add v0 type veth peer name v1");
        ns_->sh("ip addr add 1.2.3.4/32 dev v0");
        ns_->sh("ip addr add 1.2.3.5/32 dev v0");
        ns_->sh("ip -6 addr add 2001:db8::1/128 dev v0 nodad");
        ns_->sh("ip -6 addr add 2001:db8::2/128 dev v0 nodad");
        ns_->sh("ip link set v0 up");
        ns_->sh("ip link set v1 up");
    }

    void TearDown() override {
        for (const int fd : held_) {
            ::close(fd);
        }
    }

    // Opens the existing socket inside the netns and keeps it open; returns its port.
    std::uint16_t hold(const Spec& s, std::uint16_t port = 0) {
        const Opened o = ns_->in([&] { return open_socket(s, port); });
        if (o.fd < 0) {
            ADD_FAILURE() << "cannot open existing socket on " << s.address << ": "
                          << std::strerror(o.err);
            return 0;
        }
        held_.push_back(o.fd);
        return o.port;
    }

    // The kernel's answer: 0 if the bind succeeds (the socket is closed again), else its errno.
    int attempt(const Spec& s, std::uint16_t port) {
        const Opened o = ns_->in([&] { return open_socket(s, port); });
        if (o.fd >= 0) {
            ::close(o.fd);
        }
        return o.err;
    }

    // One collect() with transports opened inside the netns.
    Snapshot scan(SocketSourceOptions options = {}) {
        auto diag =
            ns_->in([] { return std::make_unique<netlink::KernelTransport>(NETLINK_SOCK_DIAG); });
        auto route =
            ns_->in([] { return std::make_unique<netlink::KernelTransport>(NETLINK_ROUTE); });
        EXPECT_FALSE(diag->open_error().has_value());
        SocketSource source(std::move(diag), std::move(route), options);
        auto claims = source.collect();
        EXPECT_TRUE(claims) << netlink::to_string(claims.error());
        Snapshot s;
        if (claims) {
            s.claims = std::move(*claims);
        }
        return s;
    }

    std::unique_ptr<test::TestNetns> ns_;
    std::vector<int> held_;
};

// One row: the existing socket, the new bind, the VIP and protocol to ask about, and what the
// matrix says the kernel answers. `policy` explains a deliberate disagreement (empty: none).
struct Row {
    const char* name;
    Spec existing;
    Spec attempt;
    const char* vip;
    Protocol protocol;
    int kernel;  // EADDRINUSE or 0, as in kernel.md §1.5
    bool used;   // what vipportd reports
    const char* policy = "";
    SocketSourceOptions options{};
};

void PrintTo(const Row& r, std::ostream* os) { *os << r.name; }

class BindMatrix : public SocketsInNetns, public ::testing::WithParamInterface<Row> {};

TEST_P(BindMatrix, ReportMatchesTheKernel) {
    const Row& row = GetParam();
    const std::uint16_t port = hold(row.existing);
    ASSERT_NE(port, 0);
    const Snapshot snap = scan(row.options);
    const bool reported = snap.used_ports(ip(row.vip), row.protocol).contains(port);
    const int kernel = attempt(row.attempt, port);

    EXPECT_EQ(kernel, row.kernel) << "kernel answered " << std::strerror(kernel)
                                  << " (kernel.md §1.5 says otherwise)";
    EXPECT_EQ(reported, row.used) << "port " << port << " on " << row.vip;
    if (*row.policy == '\0') {
        EXPECT_EQ(reported, kernel == EADDRINUSE)
            << "vipportd and the kernel disagree on port " << port << " on " << row.vip;
    } else {
        EXPECT_NE(reported, kernel == EADDRINUSE) << "policy row now agrees: " << row.policy;
    }
}

Spec on_lo(Spec s) {
    s.device = "lo";
    return s;
}
Spec on_v0(Spec s) {
    s.device = "v0";
    return s;
}
Spec bound_only(Spec s, bool reuseaddr) {
    s.listen = false;
    s.reuseaddr = reuseaddr;
    return s;
}
Spec v6only(Spec s, int v) {
    s.v6only = v;
    return s;
}
Spec reuseaddr(Spec s) {
    s.reuseaddr = true;
    return s;
}
Spec freebind(Spec s) {
    s.freebind = true;
    return s;
}

constexpr auto kTcp = Protocol::tcp;
constexpr auto kUdp = Protocol::udp;

// kernel.md §1.5, row by row (ports are ephemeral instead of 9000, 22, 8080, ...).
INSTANTIATE_TEST_SUITE_P(
    KernelMd15,
    BindMatrix,
    ::testing::Values(
        Row{"tcp_any_on_lo_vs_plain_bind", on_lo(tcp4("0.0.0.0")), tcp4("1.2.3.4"), "1.2.3.4", kTcp,
            EADDRINUSE, true},
        Row{"tcp_any_on_lo_vs_bind_on_v0", on_lo(tcp4("0.0.0.0")), on_v0(tcp4("1.2.3.4")),
            "1.2.3.4", kTcp, 0, true,
            "device-bound sockets count: a bind without a device (what a VIP service does) "
            "conflicts; only a bind on another device would not (SocketOrigin.device tells)"},
        Row{"tcp_any", tcp4("0.0.0.0"), tcp4("1.2.3.4"), "1.2.3.4", kTcp, EADDRINUSE, true},
        Row{"tcp6_any_dual_stack", v6only(tcp6("::"), 0), tcp4("1.2.3.4"), "1.2.3.4", kTcp,
            EADDRINUSE, true},
        Row{"tcp6_any_v6only", v6only(tcp6("::"), 1), tcp4("1.2.3.4"), "1.2.3.4", kTcp, 0, false},
        Row{"tcp6_v4_mapped", tcp6("::ffff:1.2.3.4"), tcp4("1.2.3.4"), "1.2.3.4", kTcp, EADDRINUSE,
            true},
        Row{"tcp_bound_only_both_reuseaddr", bound_only(tcp4("1.2.3.4"), true),
            bound_only(tcp4("1.2.3.4"), true), "1.2.3.4", kTcp, 0, true,
            "bound-only TCP counts (sources.tcp_bound_inactive): sock_diag cannot see "
            "SO_REUSEADDR, and a bind without it conflicts"},
        Row{"tcp_bound_only_both_reuseaddr_option_off", bound_only(tcp4("1.2.3.4"), true),
            bound_only(tcp4("1.2.3.4"), true), "1.2.3.4", kTcp, 0, false, "",
            SocketSourceOptions{.tcp_bound_inactive = false}},
        Row{"tcp_bound_only_no_reuseaddr", bound_only(tcp4("1.2.3.4"), false),
            bound_only(tcp4("1.2.3.4"), false), "1.2.3.4", kTcp, EADDRINUSE, true},
        Row{"udp_vs_reuseaddr_bind", udp4("1.2.3.4"), reuseaddr(udp4("1.2.3.4")), "1.2.3.4", kUdp,
            EADDRINUSE, true},
        Row{"udp6_any_dual_stack", v6only(udp6("::"), 0), udp4("1.2.3.4"), "1.2.3.4", kUdp,
            EADDRINUSE, true},
        Row{"udp6_any_v6only", v6only(udp6("::"), 1), udp4("1.2.3.4"), "1.2.3.4", kUdp, 0, false},
        Row{"tcp_freebind_unconfigured", freebind(tcp4("9.9.9.9")), freebind(tcp4("9.9.9.9")),
            "9.9.9.9", kTcp, EADDRINUSE, true}),
    [](const ::testing::TestParamInfo<Row>& i) { return std::string(i.param.name); });

// Beyond the matrix: IPv6 VIPs, other addresses, mapped wildcard, connected UDP.
INSTANTIATE_TEST_SUITE_P(
    More,
    BindMatrix,
    ::testing::Values(
        Row{"v6vip_any_v6only", v6only(tcp6("::"), 1), tcp6("2001:db8::1"), "2001:db8::1", kTcp,
            EADDRINUSE, true},
        Row{"v6vip_any_dual_stack", v6only(tcp6("::"), 0), tcp6("2001:db8::1"), "2001:db8::1", kTcp,
            EADDRINUSE, true},
        Row{"v6vip_same_address", tcp6("2001:db8::1"), tcp6("2001:db8::1"), "2001:db8::1", kTcp,
            EADDRINUSE, true},
        Row{"v6vip_other_address", tcp6("2001:db8::2"), tcp6("2001:db8::1"), "2001:db8::1", kTcp, 0,
            false},
        Row{"v6vip_v4_wildcard", tcp4("0.0.0.0"), v6only(tcp6("2001:db8::1"), 0), "2001:db8::1",
            kTcp, 0, false},
        Row{"v6vip_udp_any_v6only", v6only(udp6("::"), 1), udp6("2001:db8::1"), "2001:db8::1", kUdp,
            EADDRINUSE, true},
        Row{"v6vip_udp_v4_mapped_other", udp6("::ffff:1.2.3.4"), udp6("2001:db8::1"), "2001:db8::1",
            kUdp, 0, false},
        Row{"tcp6_mapped_wildcard", v6only(tcp6("::ffff:0.0.0.0"), 0), tcp4("1.2.3.4"), "1.2.3.4",
            kTcp, EADDRINUSE, true},
        Row{"tcp_other_address", tcp4("1.2.3.5"), tcp4("1.2.3.4"), "1.2.3.4", kTcp, 0, false},
        Row{"udp_connected", with(udp4("1.2.3.4"), [](Spec& s) { s.peer = "1.2.3.5"; }),
            udp4("1.2.3.4"), "1.2.3.4", kUdp, EADDRINUSE, true}),
    [](const ::testing::TestParamInfo<Row>& i) { return std::string(i.param.name); });

TEST_F(SocketsInNetns, ReuseportGroupCountsOnce) {
    Spec s = tcp4("1.2.3.4");
    s.reuseport = true;
    const std::uint16_t port = hold(s);
    ASSERT_EQ(hold(s, port), port);
    const Snapshot snap = scan();
    const auto claims = snap.claims_for(ip("1.2.3.4"), Protocol::tcp);
    ASSERT_EQ(claims.size(), 1U);
    const auto& o = std::get<SocketOrigin>(claims[0].origin);
    EXPECT_EQ(o.count, 2U);
    EXPECT_EQ(o.port, port);
    EXPECT_EQ(claims[0].ports, PortSet::single(port));
    // And the group really holds the port against a bind without SO_REUSEPORT.
    EXPECT_EQ(attempt(tcp4("1.2.3.4"), port), EADDRINUSE);
}

TEST_F(SocketsInNetns, DeviceNameIsRecorded) {
    const std::uint16_t port = hold(on_v0(tcp4("0.0.0.0")));
    const unsigned v0 = ns_->in([] { return ::if_nametoindex("v0"); });
    ASSERT_NE(v0, 0U);
    const Snapshot snap = scan();
    const auto claims = snap.claims_for(ip("1.2.3.4"), Protocol::tcp);
    ASSERT_EQ(claims.size(), 1U);
    const auto& o = std::get<SocketOrigin>(claims[0].origin);
    EXPECT_EQ(o.port, port);
    EXPECT_EQ(o.ifindex, v0);
    EXPECT_EQ(o.device, "v0");
}

TEST_F(SocketsInNetns, FreshNamespaceHasNoClaims) { EXPECT_TRUE(scan().claims.empty()); }

// make_sources() asks for bound-only sockets only where the kernel reports them (6.8+): the probe
// against this kernel, which then leaves nothing behind.
TEST_F(SocketsInNetns, BoundInactiveProbeMatchesTheKernelVersion) {
    utsname u{};
    ASSERT_EQ(::uname(&u), 0);
    int major = 0;
    int minor = 0;
    ASSERT_EQ(std::sscanf(u.release, "%d.%d", &major, &minor), 2) << u.release;
    const bool expected = major > 6 || (major == 6 && minor >= 8);
    auto diag =
        ns_->in([] { return std::make_unique<netlink::KernelTransport>(NETLINK_SOCK_DIAG); });
    const std::optional<bool> reports =
        ns_->in([&] { return kernel_reports_bound_inactive(*diag); });
    ASSERT_TRUE(reports.has_value()) << "the probe could not run";
    EXPECT_EQ(*reports, expected) << u.release;
    EXPECT_TRUE(scan().claims.empty());
}

}  // namespace
}  // namespace vipportd::agent
