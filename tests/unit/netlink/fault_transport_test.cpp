// FaultTransport: kernel faults injected into replies recorded from a real kernel
// (tests/fixtures/sock_diag/scenario.txt, tests/fixtures/nft/native_ip.txt), pushed through
// KernelTransport's receive loop. Each fault has one defined outcome: a retry that succeeds, or an
// error that says precisely what went wrong; never a crash, a hang or a silently shorter dump.

#include "netlink/fault_transport.hpp"

#include <cerrno>
#include <chrono>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>

#include "netlink/fixture.hpp"
#include "netlink/nft_dump.hpp"
#include "netlink/replay_transport.hpp"
#include "netlink/sock_diag.hpp"

namespace vipportd::netlink {
namespace {

using testing::HasSubstr;
using testing::StartsWith;

constexpr auto kGetRule = static_cast<std::uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETRULE);

Fixture fixture(const std::string& name) {
    auto f = read_fixture(std::string(VIPPORTD_FIXTURES) + "/" + name);
    EXPECT_TRUE(f) << to_string(f.error());
    return f ? *f : Fixture{};
}

/// The recorded request of scenario.txt annotated `label`.
std::vector<std::uint8_t> scenario_request(const std::string& label) {
    const Fixture f = fixture("sock_diag/scenario.txt");
    for (const auto& ex : f.exchanges) {
        if (ex.comment == std::vector<std::string>{label}) {
            return ex.request;
        }
    }
    ADD_FAILURE() << "no exchange labelled " << label << " in sock_diag/scenario.txt";
    return {};
}

/// A SOCK_DIAG_BY_FAMILY request (type 20): the per-family tcp4 dump of the scenario.
std::vector<std::uint8_t> tcp4_request() { return scenario_request("tcp4 (per family)"); }

KernelTransportOptions fast() {
    KernelTransportOptions o;
    o.timeout = std::chrono::milliseconds(50);
    return o;
}

FaultTransport sockets(KernelTransportOptions options = fast()) {
    return FaultTransport(
        std::make_unique<ReplayTransport>(fixture("sock_diag/scenario.txt"), "scenario"), options);
}

/// A dump's messages with seq and port id zeroed (each transport stamps its own port id).
std::vector<std::uint8_t> bytes(const Dump& d) {
    auto copy = d.data;
    zero_seq_pid(copy);
    return copy;
}

/// The clean answer, straight from the replay.
Dump clean_tcp4() {
    ReplayTransport replay(fixture("sock_diag/scenario.txt"), "scenario");
    auto d = replay.exchange(tcp4_request());
    EXPECT_TRUE(d) << to_string(d.error());
    return d ? *d : Dump{};
}

TEST(FaultTransport, WithoutFaultsItIsTheInnerTransport) {
    auto t = sockets();
    auto d = t.exchange(tcp4_request());
    ASSERT_TRUE(d) << to_string(d.error());
    EXPECT_EQ(bytes(*d), bytes(clean_tcp4()));
    EXPECT_EQ(t.exchanges(), 1U);
    EXPECT_EQ(t.injected(), 0U);
}

// The re-cut datagrams go through the real loop and come out byte for byte, flag aside.
TEST(FaultTransport, DumpIntrKeepsTheMessagesAndSetsTheFlag) {
    auto t = sockets();
    t.inject(Fault(FaultKind::dump_intr));
    auto d = t.exchange(tcp4_request());
    ASSERT_TRUE(d) << to_string(d.error());
    EXPECT_TRUE(d->interrupted);
    EXPECT_EQ(bytes(*d), bytes(clean_tcp4()));
    EXPECT_EQ(t.injected(), 1U);
}

TEST(FaultTransport, DumpIntrIsRetriedThenSucceeds) {
    auto t = sockets();
    t.inject(Fault(FaultKind::dump_intr).count(2));
    auto d = exchange_consistent(t, tcp4_request(), 3);
    ASSERT_TRUE(d) << to_string(d.error());
    EXPECT_FALSE(d->interrupted);
    EXPECT_EQ(bytes(*d), bytes(clean_tcp4()));
    EXPECT_EQ(t.exchanges(), 3U);
    EXPECT_EQ(t.injected(), 2U);
}

TEST(FaultTransport, PersistentDumpIntrIsADefinedError) {
    auto t = sockets();
    t.inject(Fault(FaultKind::dump_intr).always());
    auto d = exchange_consistent(t, tcp4_request(), 3);
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code, Errc::interrupted);
    EXPECT_EQ(to_string(d.error()), "dump interrupted (NLM_F_DUMP_INTR) on all 3 attempts");
    EXPECT_EQ(t.exchanges(), 3U);
}

TEST(FaultTransport, KernelErrorCarriesTheErrno) {
    auto t = sockets();
    t.inject(Fault(FaultKind::kernel_error).with_errno(EPERM));
    auto d = t.exchange(tcp4_request());
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code, Errc::kernel);
    EXPECT_EQ(d.error().sys_errno, EPERM);
    EXPECT_EQ(to_string(d.error()),
              "netlink request type 20: kernel answered NLMSG_ERROR: Operation not permitted");
    // The next exchange is clean again: nothing of the failed one is left on the socket.
    auto again = t.exchange(tcp4_request());
    ASSERT_TRUE(again) << to_string(again.error());
    EXPECT_EQ(bytes(*again), bytes(clean_tcp4()));
}

TEST(FaultTransport, EnobufsOnReceiveIsASystemError) {
    auto t = sockets();
    t.inject(Fault(FaultKind::socket_error).with_errno(ENOBUFS));
    auto d = t.exchange(tcp4_request());
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code, Errc::system);
    EXPECT_EQ(d.error().sys_errno, ENOBUFS);
    EXPECT_EQ(to_string(d.error()), "netlink recvmsg(MSG_PEEK): No buffer space available");
}

TEST(FaultTransport, EintrOnReceiveIsRetriedTransparently) {
    auto t = sockets();
    t.inject(Fault(FaultKind::socket_error).with_errno(EINTR));
    auto d = t.exchange(tcp4_request());
    ASSERT_TRUE(d) << to_string(d.error());
    EXPECT_EQ(bytes(*d), bytes(clean_tcp4()));
}

TEST(FaultTransport, TruncatedMessageIsPrecise) {
    auto t = sockets();
    t.inject(Fault(FaultKind::truncated).with_bytes(8));
    auto d = t.exchange(tcp4_request());
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code, Errc::truncated);
    // "netlink reply datagram of N bytes: netlink message at offset M: nlmsg_len L with L-8
    // bytes left"
    EXPECT_THAT(d.error().detail, StartsWith("netlink reply datagram of "));
    EXPECT_THAT(d.error().detail, HasSubstr("bytes left"));
}

TEST(FaultTransport, MsgTruncIsPrecise) {
    auto t = sockets();
    t.inject(Fault(FaultKind::msg_trunc));
    auto d = t.exchange(tcp4_request());
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code, Errc::truncated);
    EXPECT_THAT(d.error().detail, HasSubstr("(MSG_TRUNC)"));
}

// Garbage attributes after a well-formed inet_diag_msg: the decoder names the message and the
// attribute, whatever the garbage.
TEST(FaultTransport, GarbagePayloadIsRejectedByTheDecoder) {
    int rejected = 0;
    for (std::uint32_t seed = 1; seed <= 64; ++seed) {
        auto t = sockets();
        t.inject(Fault(FaultKind::garbage_payload).with_bytes(72).with_seed(seed));
        auto d = t.exchange(tcp4_request());
        ASSERT_TRUE(d) << to_string(d.error());  // headers intact: the transport is satisfied
        auto parsed = parse_inet_diag(*d, 6);
        if (!parsed) {
            ++rejected;
            EXPECT_TRUE(parsed.error().code == Errc::truncated ||
                        parsed.error().code == Errc::malformed)
                << to_string(parsed.error());
            EXPECT_THAT(parsed.error().detail, HasSubstr("offset")) << to_string(parsed.error());
        }
    }
    // Random attribute headers almost never line up; a few seeds might, and then the entries are
    // all there (only their optional attributes are junk), never fewer.
    EXPECT_GE(rejected, 60);
}

// A datagram of random bytes before the real replies: the loop either rejects it precisely or
// skips it as a stale reply (an older sequence number); the answer is never a shorter dump.
TEST(FaultTransport, GarbageDatagramIsAnErrorOrHarmless) {
    const Dump clean = clean_tcp4();
    int errors = 0;
    for (std::uint32_t seed = 1; seed <= 200; ++seed) {
        auto t = sockets();
        t.inject(Fault(FaultKind::garbage_datagram).with_bytes(16 + seed % 64).with_seed(seed));
        auto d = t.exchange(tcp4_request());
        if (d) {
            EXPECT_EQ(bytes(*d), bytes(clean)) << "seed " << seed;
            continue;
        }
        ++errors;
        EXPECT_TRUE(d.error().code == Errc::truncated || d.error().code == Errc::unexpected ||
                    d.error().code == Errc::malformed)
            << "seed " << seed << ": " << to_string(d.error());
    }
    EXPECT_GT(errors, 100);
}

TEST(FaultTransport, DumpThatNeverEndsTimesOut) {
    auto t = sockets();
    t.inject(Fault(FaultKind::never_ends));
    const auto start = std::chrono::steady_clock::now();
    auto d = t.exchange(tcp4_request());
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code, Errc::timeout);
    EXPECT_THAT(to_string(d.error()), StartsWith("netlink request type 20 seq "));
    EXPECT_THAT(to_string(d.error()), HasSubstr("no complete reply within 50 ms"));
    EXPECT_GE(took, std::chrono::milliseconds(50));
    EXPECT_LT(took, std::chrono::seconds(10));  // bounded by the deadline, not by the data
}

TEST(FaultTransport, SilenceTimesOut) {
    auto t = sockets();
    t.inject(Fault(FaultKind::silence));
    auto d = t.exchange(tcp4_request());
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code, Errc::timeout);
}

// Faults pick their exchange: by request type, by a payload byte, after `skip` matches.
TEST(FaultTransport, FaultsMatchTypePayloadAndSkip) {
    const auto tcp6 = scenario_request("tcp6 (per family)");
    ASSERT_EQ(tcp6[16], AF_INET6);
    auto t = sockets();
    t.inject(Fault(FaultKind::kernel_error)
                 .on_type(SOCK_DIAG_BY_FAMILY)
                 .on_payload_byte(0, AF_INET6)
                 .after(1)
                 .with_errno(EPERM));
    EXPECT_TRUE(t.exchange(tcp4_request()));  // wrong family
    EXPECT_TRUE(t.exchange(tcp6));            // skipped
    EXPECT_FALSE(t.exchange(tcp6));           // altered
    EXPECT_TRUE(t.exchange(tcp6));            // times = 1: used up
    EXPECT_EQ(t.injected(), 1U);

    t.inject(Fault(FaultKind::kernel_error).on_type(kGetRule).with_errno(EPERM));
    EXPECT_TRUE(t.exchange(tcp6));  // not a GETRULE
    t.clear();
    EXPECT_EQ(t.injected(), 1U);
}

// The nf_tables dump over faults: DUMP_INTR on one GETRULE is retried by dump_ruleset; a kernel
// error is named after its step.
TEST(FaultTransport, NftDumpRetriesInterruptedStepAndNamesFailingStep) {
    FaultTransport t(std::make_unique<ReplayTransport>(fixture("nft/native_ip.txt"), "native_ip"),
                     fast());
    auto clean = nft::dump_ruleset(t);
    ASSERT_TRUE(clean) << to_string(clean.error());

    t.inject(Fault(FaultKind::dump_intr).on_type(kGetRule));
    auto retried = nft::dump_ruleset(t);
    ASSERT_TRUE(retried) << to_string(retried.error());
    EXPECT_EQ(retried->rules.size(), clean->rules.size());
    EXPECT_EQ(retried->sets.size(), clean->sets.size());

    t.inject(Fault(FaultKind::kernel_error).on_type(kGetRule).with_errno(EPERM));
    auto refused = nft::dump_ruleset(t);
    ASSERT_FALSE(refused);
    EXPECT_EQ(to_string(refused.error()), "nf_tables: GETRULE: Operation not permitted");

    t.inject(Fault(FaultKind::garbage_payload).on_type(kGetRule).with_bytes(4));
    auto garbage = nft::dump_ruleset(t);
    ASSERT_FALSE(garbage);
    EXPECT_THAT(to_string(garbage.error()), StartsWith("nf_tables: GETRULE: message 0: NEWRULE: "));

    t.inject(Fault(FaultKind::never_ends).on_type(kGetRule));
    auto endless = nft::dump_ruleset(t);
    ASSERT_FALSE(endless);
    EXPECT_EQ(endless.error().code, Errc::timeout);
    EXPECT_THAT(to_string(endless.error()),
                StartsWith("nf_tables: GETRULE: netlink request type 2567 "));
}

}  // namespace
}  // namespace vipportd::netlink
