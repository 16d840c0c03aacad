// The sources under kernel faults (netlink/fault_transport.hpp) injected into recorded kernel
// replies (tests/fixtures/sock_diag/scenario.txt, nft/native_ip.txt, nft/source_change.txt,
// ipt/zstack_nat.txt). Every fault ends in a defined outcome: a retry that yields exactly the
// clean answer, a resync (full nf_tables dump), or an error naming the source's step. After the
// fault clears, the next collect() is complete and fresh: no stale cache survives an error.

#include <cerrno>
#include <memory>
#include <ostream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>

#include "agent/ipt_legacy_source.hpp"
#include "agent/model.hpp"
#include "agent/nft_source.hpp"
#include "agent/socket_source.hpp"
#include "netlink/fault_transport.hpp"
#include "netlink/fixture.hpp"
#include "netlink/replay_transport.hpp"
#include "tests/unit/agent/ipt_scenarios.hpp"

namespace vipportd::agent {
namespace {

using netlink::Errc;
using netlink::Fault;
using netlink::FaultKind;
using netlink::FaultTransport;
using testing::HasSubstr;
using testing::StartsWith;

constexpr auto nft_type(std::uint16_t msg) {
    return static_cast<std::uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | msg);
}

netlink::KernelTransportOptions fast() {
    netlink::KernelTransportOptions o;
    o.timeout = std::chrono::milliseconds(50);
    return o;
}

std::unique_ptr<FaultTransport> faulty(const std::string& fixture) {
    auto replay = netlink::ReplayTransport::open(std::string(VIPPORTD_FIXTURES) + "/" + fixture);
    EXPECT_TRUE(replay) << netlink::to_string(replay.error());
    return std::make_unique<FaultTransport>(std::move(*replay), fast());
}

InetAddress vip() { return InetAddress::parse("1.2.3.4").value(); }

/// TCP and UDP ports the claims hold on 1.2.3.4, e.g. "TCP 22,80,443,... UDP 53,...".
std::string ports_on_vip(const std::vector<Claim>& claims) {
    Snapshot s;
    s.claims = claims;
    return "TCP " + s.used_ports(vip(), Protocol::tcp).to_string() + " UDP " +
           s.used_ports(vip(), Protocol::udp).to_string();
}

// --- sockets --------------------------------------------------------------------------------

class FaultySockets : public ::testing::Test {
  protected:
    FaultySockets() {
        auto t = faulty("sock_diag/scenario.txt");
        transport = t.get();
        source = std::make_unique<SocketSource>(std::move(t), nullptr);
        auto claims = source->collect();
        EXPECT_TRUE(claims) << netlink::to_string(claims.error());
        clean = ports_on_vip(claims.value());
        clean_count = claims->size();
    }

    FaultTransport* transport = nullptr;
    std::unique_ptr<SocketSource> source;
    std::string clean;
    std::size_t clean_count = 0;
};

TEST_F(FaultySockets, InterruptedDumpIsRetriedToTheCompleteAnswer) {
    transport->inject(Fault(FaultKind::dump_intr).on_payload_byte(0, AF_INET6).count(2));
    auto claims = source->collect();
    ASSERT_TRUE(claims) << netlink::to_string(claims.error());
    EXPECT_EQ(claims->size(), clean_count);
    EXPECT_EQ(ports_on_vip(*claims), clean);
    EXPECT_EQ(transport->injected(), 2U);
}

TEST_F(FaultySockets, PersistentlyInterruptedDumpFailsNamingTheDump) {
    transport->inject(Fault(FaultKind::dump_intr).on_payload_byte(0, AF_INET6).always());
    auto claims = source->collect();
    ASSERT_FALSE(claims);
    EXPECT_EQ(claims.error().code, Errc::interrupted);
    EXPECT_EQ(netlink::to_string(claims.error()),
              "sock_diag udp6 dump: dump interrupted (NLM_F_DUMP_INTR) on all 3 attempts");
}

struct SocketCase {
    const char* name;
    Fault fault;
    Errc code;
    const char* starts;  // to_string(error) starts with this
    friend void PrintTo(const SocketCase& c, std::ostream* os) { *os << c.name; }
};

class SocketFaults : public FaultySockets, public ::testing::WithParamInterface<SocketCase> {};

TEST_P(SocketFaults, FailPreciselyThenRecoverCompletely) {
    const auto& c = GetParam();
    transport->inject(c.fault);
    auto claims = source->collect();
    ASSERT_FALSE(claims) << c.name << " was not detected";
    EXPECT_EQ(claims.error().code, c.code) << netlink::to_string(claims.error());
    EXPECT_THAT(netlink::to_string(claims.error()), StartsWith(c.starts));

    auto after = source->collect();  // the fault was one-shot
    ASSERT_TRUE(after) << netlink::to_string(after.error());
    EXPECT_EQ(after->size(), clean_count);
    EXPECT_EQ(ports_on_vip(*after), clean);
}

INSTANTIATE_TEST_SUITE_P(
    Kernel,
    SocketFaults,
    ::testing::Values(
        SocketCase{"eperm", Fault(FaultKind::kernel_error).with_errno(EPERM), Errc::kernel,
                   "sock_diag tcp dump: netlink request type 18: kernel answered NLMSG_ERROR: "
                   "Operation not permitted"},
        SocketCase{"enobufs", Fault(FaultKind::socket_error).with_errno(ENOBUFS), Errc::system,
                   "sock_diag tcp dump: netlink recvmsg(MSG_PEEK): No buffer space available"},
        SocketCase{"truncated", Fault(FaultKind::truncated).on_payload_byte(0, AF_INET6),
                   Errc::truncated, "sock_diag udp6 dump: netlink reply datagram of "},
        SocketCase{"msg_trunc", Fault(FaultKind::msg_trunc), Errc::truncated,
                   "sock_diag tcp dump: netlink datagram of "},
        SocketCase{"garbage_attributes", Fault(FaultKind::garbage_payload).with_bytes(72),
                   Errc::truncated, "sock_diag tcp dump: "},
        SocketCase{"garbage_header", Fault(FaultKind::garbage_payload).with_bytes(0),
                   Errc::malformed, "sock_diag tcp dump: "},
        SocketCase{"never_ends", Fault(FaultKind::never_ends).on_payload_byte(0, AF_INET6),
                   Errc::timeout, "sock_diag udp6 dump: netlink request type 20 seq "},
        SocketCase{"silence", Fault(FaultKind::silence), Errc::timeout,
                   "sock_diag tcp dump: netlink request type 18 seq "}),
    [](const auto& p) { return std::string(p.param.name); });

// --- nftables -------------------------------------------------------------------------------

class FaultyNft : public ::testing::Test {
  protected:
    FaultyNft() {
        auto t = faulty("nft/native_ip.txt");
        transport = t.get();
        auto e = std::make_unique<netlink::FaultEventSource>();
        events = e.get();
        source = std::make_unique<NftSource>(std::move(t), std::move(e));
        auto claims = source->collect();
        EXPECT_TRUE(claims) << netlink::to_string(claims.error());
        clean = test::ipt::describe(claims.value());
        EXPECT_EQ(source->dumps(), 1U);
    }

    FaultTransport* transport = nullptr;
    netlink::FaultEventSource* events = nullptr;
    std::unique_ptr<NftSource> source;
    std::vector<std::string> clean;
};

// ENOBUFS on the event socket: events were lost, so the cache cannot be trusted even though the
// generation did not move: a full dump (resync), with the same answer.
TEST_F(FaultyNft, LostEventsForceAFullDump) {
    ASSERT_TRUE(source->collect());
    EXPECT_EQ(source->dumps(), 1U);  // unchanged generation: cached

    events->lose_events();
    auto claims = source->collect();
    ASSERT_TRUE(claims) << netlink::to_string(claims.error());
    EXPECT_EQ(source->dumps(), 2U);
    EXPECT_EQ(test::ipt::describe(*claims), clean);
}

TEST_F(FaultyNft, InterruptedDumpIsRetried) {
    events->lose_events();
    transport->inject(Fault(FaultKind::dump_intr).on_type(nft_type(NFT_MSG_GETRULE)).count(2));
    auto claims = source->collect();
    ASSERT_TRUE(claims) << netlink::to_string(claims.error());
    EXPECT_EQ(test::ipt::describe(*claims), clean);
    EXPECT_EQ(transport->injected(), 2U);
}

TEST_F(FaultyNft, PersistentlyInterruptedDumpIsADefinedError) {
    events->lose_events();
    transport->inject(Fault(FaultKind::dump_intr).on_type(nft_type(NFT_MSG_GETSET)).always());
    auto claims = source->collect();
    ASSERT_FALSE(claims);
    EXPECT_EQ(claims.error().code, Errc::interrupted);
    EXPECT_EQ(netlink::to_string(claims.error()),
              "nf_tables: ruleset changed during each of 5 dump attempts (last: GETSET dump "
              "interrupted (NLM_F_DUMP_INTR))");
}

struct NftCase {
    const char* name;
    Fault fault;
    Errc code;
    const char* starts;
    friend void PrintTo(const NftCase& c, std::ostream* os) { *os << c.name; }
};

class NftFaults : public FaultyNft, public ::testing::WithParamInterface<NftCase> {};

// Faults in the middle of a dump (after events were lost) and on the GETGEN that confirms a
// cache hit: the error names the step; the cache is dropped, so the next collect() dumps afresh.
TEST_P(NftFaults, FailPreciselyAndDropTheCache) {
    const auto& c = GetParam();
    if (c.fault.request_type != nft_type(NFT_MSG_GETGEN)) {
        events->lose_events();
    }
    transport->inject(c.fault);
    auto claims = source->collect();
    ASSERT_FALSE(claims) << c.name << " was not detected";
    EXPECT_EQ(claims.error().code, c.code) << netlink::to_string(claims.error());
    EXPECT_THAT(netlink::to_string(claims.error()), StartsWith(c.starts));
    EXPECT_FALSE(source->generation().has_value());

    auto after = source->collect();
    ASSERT_TRUE(after) << netlink::to_string(after.error());
    EXPECT_EQ(test::ipt::describe(*after), clean);
    EXPECT_EQ(source->dumps(), 2U);  // dumped again, not served from a cache
}

INSTANTIATE_TEST_SUITE_P(
    Kernel,
    NftFaults,
    ::testing::Values(
        NftCase{"getgen_eperm",
                Fault(FaultKind::kernel_error).on_type(nft_type(NFT_MSG_GETGEN)).with_errno(EPERM),
                Errc::kernel, "nf_tables: GETGEN: Operation not permitted"},
        NftCase{"getrule_eperm",
                Fault(FaultKind::kernel_error).on_type(nft_type(NFT_MSG_GETRULE)).with_errno(EPERM),
                Errc::kernel, "nf_tables: GETRULE: Operation not permitted"},
        NftCase{"getrule_truncated", Fault(FaultKind::truncated).on_type(nft_type(NFT_MSG_GETRULE)),
                Errc::truncated, "nf_tables: GETRULE: netlink reply datagram of "},
        NftCase{"getrule_garbage",
                Fault(FaultKind::garbage_payload).on_type(nft_type(NFT_MSG_GETRULE)).with_bytes(4),
                Errc::truncated, "nf_tables: GETRULE: message 0: NEWRULE: "},
        NftCase{"getsetelem_garbage",
                Fault(FaultKind::garbage_payload)
                    .on_type(nft_type(NFT_MSG_GETSETELEM))
                    .with_bytes(4)
                    .with_seed(7),
                Errc::truncated, "nf_tables: GETSETELEM ip vipnat "},
        NftCase{
            "getrule_garbage_datagram",
            Fault(FaultKind::garbage_datagram).on_type(nft_type(NFT_MSG_GETRULE)).with_bytes(40),
            Errc::truncated, "nf_tables: GETRULE: netlink reply datagram of 40 bytes"},
        NftCase{"getrule_never_ends",
                Fault(FaultKind::never_ends).on_type(nft_type(NFT_MSG_GETRULE)), Errc::timeout,
                "nf_tables: GETRULE: netlink request type 2567 seq "},
        NftCase{"getgen_silence", Fault(FaultKind::silence).on_type(nft_type(NFT_MSG_GETGEN)),
                Errc::timeout, "nf_tables: GETGEN: netlink request type 2576 seq "}),
    [](const auto& p) { return std::string(p.param.name); });

// Recorded: a rule is added between the second and third collect(). Lost events make the third
// collect() dump at once (no GETGEN first); the answer has the new rule, never the cached one.
TEST(FaultyNftChange, LostEventsNeverServeTheStaleRuleset) {
    auto t = faulty("nft/source_change.txt");
    auto* transport = t.get();
    auto e = std::make_unique<netlink::FaultEventSource>();
    auto* events = e.get();
    NftSource source(std::move(t), std::move(e));
    ASSERT_TRUE(source.collect());
    auto second = source.collect();
    ASSERT_TRUE(second);
    EXPECT_EQ(source.dumps(), 1U);
    const std::size_t before = transport->exchanges();

    events->lose_events();
    auto third = source.collect();
    ASSERT_TRUE(third) << netlink::to_string(third.error());
    EXPECT_EQ(source.dumps(), 2U);
    EXPECT_EQ(transport->exchanges(), before + 6);  // GETGEN, 4 dumps, GETGEN: a full dump only
    EXPECT_EQ(third->size(), second->size() + 1);
    EXPECT_THAT(test::ipt::describe(*third),
                testing::Contains(HasSubstr("dnat '10.0.0.2' UDP 53 @ 1.2.3.4")));
}

// The event socket itself failing: events are dropped for good (events_error() says why), the
// generation check keeps answers exact.
TEST_F(FaultyNft, FailingEventSocketFallsBackToGenerationChecks) {
    events->fail_next(EBADF);
    ASSERT_TRUE(source->collect());
    EXPECT_EQ(source->dumps(), 2U);  // could not know what was missed: dumped
    ASSERT_TRUE(source->events_error().has_value());
    EXPECT_EQ(netlink::to_string(*source->events_error()),
              "nf_tables: event socket recv: Bad file descriptor");
    ASSERT_TRUE(source->collect());
    EXPECT_EQ(source->dumps(), 2U);
}

// --- iptables-legacy ------------------------------------------------------------------------

class FaultyIpt : public ::testing::Test {
  protected:
    using IptFault = netlink::FaultIptSource::IptFault;
    using Call = netlink::FaultIptSource::Call;
    using Kind = netlink::FaultIptSource::Kind;

    FaultyIpt() {
        auto replay = netlink::ipt::ReplayIptSource::load(std::string(VIPPORTD_FIXTURES) +
                                                          "/ipt/zstack_nat.txt");
        EXPECT_TRUE(replay) << netlink::to_string(replay.error());
        auto f = std::make_unique<netlink::FaultIptSource>(std::move(*replay));
        faults = f.get();
        source = std::make_unique<IptLegacySource>(std::move(f));
        auto claims = source->collect();
        EXPECT_TRUE(claims) << netlink::to_string(claims.error());
        clean = test::ipt::describe(claims.value());
    }

    static IptFault fault(Call call, Kind kind, int err = 0, std::size_t bytes = 0) {
        IptFault f;
        f.call = call;
        f.kind = kind;
        f.family = netlink::Family::v4;
        f.sys_errno = err;
        f.bytes = bytes;
        return f;
    }

    netlink::FaultIptSource* faults = nullptr;
    std::unique_ptr<IptLegacySource> source;
    std::vector<std::string> clean;
};

TEST_F(FaultyIpt, PermissionErrorsNameTableAndCall) {
    faults->inject(fault(Call::info, Kind::error, EPERM));
    auto claims = source->collect();
    ASSERT_FALSE(claims);
    EXPECT_EQ(netlink::to_string(claims.error()),
              "iptables-legacy: nat: IPT_SO_GET_INFO: Operation not permitted");

    faults->inject(fault(Call::names, Kind::error, EACCES));
    claims = source->collect();
    ASSERT_FALSE(claims);
    EXPECT_EQ(netlink::to_string(claims.error()),
              "iptables-legacy: open /proc/self/net/ip_tables_names: Permission denied");

    claims = source->collect();
    ASSERT_TRUE(claims) << netlink::to_string(claims.error());
    EXPECT_EQ(test::ipt::describe(*claims), clean);
}

// EAGAIN from IPT_SO_GET_ENTRIES is the kernel's "the table changed size": read it again.
TEST_F(FaultyIpt, TableReplacedDuringTheReadIsRetried) {
    faults->inject(fault(Call::entries, Kind::error, EAGAIN));
    auto claims = source->collect();
    ASSERT_TRUE(claims) << netlink::to_string(claims.error());
    EXPECT_EQ(test::ipt::describe(*claims), clean);
}

TEST_F(FaultyIpt, ShortEntriesBlobIsRetriedThenADefinedError) {
    auto f = fault(Call::entries, Kind::truncate, 0, 40);
    f.times = -1;
    faults->inject(f);
    auto claims = source->collect();
    ASSERT_FALSE(claims);
    EXPECT_EQ(claims.error().code, Errc::interrupted);
    EXPECT_EQ(netlink::to_string(claims.error()),
              "iptables-legacy: nat: IPT_SO_GET_ENTRIES: table changed during 5 read attempts");
}

TEST_F(FaultyIpt, GarbageEntriesAreRejectedPrecisely) {
    for (std::uint32_t seed = 1; seed <= 50; ++seed) {
        auto f = fault(Call::entries, Kind::garbage);
        f.seed = seed;
        faults->clear();
        faults->inject(f);
        auto claims = source->collect();
        ASSERT_FALSE(claims) << "seed " << seed;
        EXPECT_TRUE(claims.error().code == Errc::malformed ||
                    claims.error().code == Errc::truncated)
            << netlink::to_string(claims.error());
        EXPECT_THAT(netlink::to_string(claims.error()), StartsWith("iptables-legacy: "));
    }
    faults->clear();
    auto claims = source->collect();
    ASSERT_TRUE(claims) << netlink::to_string(claims.error());
    EXPECT_EQ(test::ipt::describe(*claims), clean);
}

}  // namespace
}  // namespace vipportd::agent
