// KernelTransport and the sock_diag/rtnl_link codecs against the real kernel, each test in a fresh
// netns: multi-datagram dumps, kernel errors, ACKs, timeouts, bytecode filters.

#include "netlink/sock_diag.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unistd.h>
#include <vector>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "netlink/bytes.hpp"
#include "netlink/kernel_transport.hpp"
#include "netlink/rtnl_link.hpp"
#include "tests/support/netns.hpp"

namespace vipportd::netlink {
namespace {

using Bytes = std::vector<std::uint8_t>;

// Bound to 127.0.0.1:0 (any port); returns the fd and the port.
std::pair<int, std::uint16_t> loopback_socket(int type, bool listen) {
    const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        (listen && ::listen(fd, 4) != 0)) {
        return {-1, 0};
    }
    socklen_t len = sizeof sa;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    return {fd, ntohs(sa.sin_port)};
}

class KernelInNetns : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!test::can_create_netns()) {
            GTEST_SKIP() << "needs root (network namespaces)";
        }
        ns_ = std::make_unique<test::TestNetns>();
    }
    void TearDown() override {
        for (const int fd : fds_) {
            ::close(fd);
        }
    }
    std::unique_ptr<KernelTransport> transport(int protocol, KernelTransportOptions o = {}) {
        auto t = ns_->in([&] { return std::make_unique<KernelTransport>(protocol, o); });
        EXPECT_FALSE(t->open_error().has_value());
        return t;
    }
    std::uint16_t hold(int type, bool listen) {
        auto [fd, port] = ns_->in([&] { return loopback_socket(type, listen); });
        EXPECT_GE(fd, 0);
        fds_.push_back(fd);
        return port;
    }

    std::unique_ptr<test::TestNetns> ns_;
    std::vector<int> fds_;
};

TEST_F(KernelInNetns, FreshNamespaceDumpsNothing) {
    auto t = transport(NETLINK_SOCK_DIAG);
    for (const auto f : {Family::v4, Family::v6}) {
        auto d = t->exchange(build_inet_diag_request(f, kProtoTcp, kStatesAll));
        ASSERT_TRUE(d) << to_string(d.error());
        EXPECT_TRUE(d->data.empty());
        EXPECT_FALSE(d->interrupted);
    }
}

TEST_F(KernelInNetns, LargeDumpSpansManyDatagramsAndLosesNothing) {
    // ~600 sockets * ~124 bytes is more than two 32 KiB datagrams.
    std::vector<std::uint16_t> ports;
    for (int i = 0; i < 600; ++i) {
        ports.push_back(hold(SOCK_DGRAM, false));
    }
    auto t = transport(NETLINK_SOCK_DIAG);
    auto d = exchange_consistent(*t, build_inet_diag_request(Family::v4, kProtoUdp, kStatesAll));
    ASSERT_TRUE(d) << to_string(d.error());
    EXPECT_GT(d->data.size(), 2U * 32768);
    auto entries = parse_inet_diag(*d, kProtoUdp);
    ASSERT_TRUE(entries) << to_string(entries.error());
    ASSERT_EQ(entries->size(), ports.size());
    std::vector<std::uint16_t> seen;
    for (const auto& e : *entries) {
        EXPECT_EQ(e.address, InetAddress::parse("127.0.0.1").value());
        EXPECT_EQ(e.state, kTcpClose);
        seen.push_back(e.port);
    }
    std::sort(seen.begin(), seen.end());
    std::sort(ports.begin(), ports.end());
    EXPECT_EQ(seen, ports);
    // The same transport keeps working (sequence numbers move on).
    auto again = t->exchange(build_inet_diag_request(Family::v4, kProtoUdp, kStatesAll));
    ASSERT_TRUE(again);
    EXPECT_EQ(again->data.size(), d->data.size());
}

TEST_F(KernelInNetns, InvalidFamilyIsAKernelError) {
    auto t = transport(NETLINK_SOCK_DIAG);
    Bytes req = build_inet_diag_request(Family::v4, kProtoTcp, kStatesTcpListen);
    req[kNlmsghdrSize] = 255;  // sdiag_family >= AF_MAX (net/core/sock_diag.c)
    auto d = t->exchange(req);
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code, Errc::kernel);
    EXPECT_EQ(d.error().sys_errno, EINVAL);
    // The socket is still usable afterwards.
    EXPECT_TRUE(t->exchange(build_inet_diag_request(Family::v4, kProtoTcp, kStatesTcpListen)));
}

TEST_F(KernelInNetns, BytecodeSelectsOnePort) {
    const std::uint16_t a = hold(SOCK_STREAM, true);
    const std::uint16_t b = hold(SOCK_STREAM, true);
    ASSERT_NE(a, b);
    // S_GE a && S_LE a (kernel.md §1.8): each op is followed by an op whose `no` holds the port
    // (host order); `yes` is always the op's own length (8), `no` jumps to len + 4 (reject).
    std::vector<inet_diag_bc_op> prog = {
        {INET_DIAG_BC_S_GE, 8, 20}, {0, 0, a}, {INET_DIAG_BC_S_LE, 8, 12}, {0, 0, a}};
    Bytes code(prog.size() * sizeof(inet_diag_bc_op));
    std::memcpy(code.data(), prog.data(), code.size());
    auto t = transport(NETLINK_SOCK_DIAG);
    auto d = t->exchange(build_inet_diag_request(Family::v4, kProtoTcp, kStatesTcpListen, code));
    ASSERT_TRUE(d) << to_string(d.error());
    auto entries = parse_inet_diag(*d, kProtoTcp);
    ASSERT_TRUE(entries);
    ASSERT_EQ(entries->size(), 1U);
    EXPECT_EQ(entries->front().port, a);
    EXPECT_FALSE(entries->front().v6only.has_value());
    EXPECT_EQ(entries->front().freebind, false);
}

TEST_F(KernelInNetns, NonDumpRequestWithAckEndsAtTheAck) {
    // RTM_GETLINK for ifindex 1 (lo), NLM_F_ACK: one RTM_NEWLINK, then the ACK.
    Bytes req(kNlmsghdrSize + sizeof(ifinfomsg), 0);
    nlmsghdr h{};
    h.nlmsg_len = static_cast<std::uint32_t>(req.size());
    h.nlmsg_type = RTM_GETLINK;
    h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    store(std::span<std::uint8_t>(req), 0, h);
    ifinfomsg ifi{};
    ifi.ifi_index = 1;
    store(std::span<std::uint8_t>(req), kNlmsghdrSize, ifi);
    auto t = transport(NETLINK_ROUTE);
    auto d = t->exchange(req);
    ASSERT_TRUE(d) << to_string(d.error());
    auto names = parse_link_names(*d);
    ASSERT_TRUE(names);
    ASSERT_EQ(names->size(), 1U);
    EXPECT_EQ(names->at(1), "lo");
}

TEST_F(KernelInNetns, LinkDumpNamesEveryLink) {
    ns_->sh("ip link add v0 type veth peer name v1");
    auto t = transport(NETLINK_ROUTE);
    auto d = exchange_consistent(*t, build_link_dump_request());
    ASSERT_TRUE(d) << to_string(d.error());
    auto names = parse_link_names(*d);
    ASSERT_TRUE(names) << to_string(names.error());
    EXPECT_EQ(names->size(), 3U);
    EXPECT_EQ(names->at(1), "lo");
}

TEST_F(KernelInNetns, SilentKernelTimesOut) {
    // NLMSG_NOOP without NLM_F_ACK: the kernel skips it and answers nothing
    // (net/netlink/af_netlink.c netlink_rcv_skb), so the deadline must end the wait.
    Bytes noop(kNlmsghdrSize, 0);
    nlmsghdr h{};
    h.nlmsg_len = kNlmsghdrSize;
    h.nlmsg_type = NLMSG_NOOP;
    h.nlmsg_flags = NLM_F_REQUEST;
    store(std::span<std::uint8_t>(noop), 0, h);
    auto t = transport(NETLINK_ROUTE, {.timeout = std::chrono::milliseconds(100)});
    const auto start = std::chrono::steady_clock::now();
    auto d = t->exchange(noop);
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code, Errc::timeout);
    EXPECT_GE(took, std::chrono::milliseconds(100));
    EXPECT_LT(took, std::chrono::seconds(3));

    // With NLM_F_ACK the same message is acknowledged, and the transport still works.
    h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    store(std::span<std::uint8_t>(noop), 0, h);
    auto acked = t->exchange(noop);
    ASSERT_TRUE(acked) << to_string(acked.error());
    EXPECT_TRUE(acked->data.empty());
}

}  // namespace
}  // namespace vipportd::netlink
