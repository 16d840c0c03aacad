// The nf_tables scenarios (tests/unit/agent/nft_scenarios.hpp) against the real kernel: each runs
// its commands (real nft / iptables-nft / ip6tables-nft) in a fresh namespace, dumps the ruleset
// through a KernelTransport created there, and checks
//   - every decoded rule and set against `nft --debug=netlink list ruleset` (libnftnl's own
//     decoding of the same kernel objects): same expressions, registers, data, elements;
//   - the claims against the scenario.
//
// VIPPORTD_RECORD_NFT=1 netns_tests --gtest_filter='NftRecord.*' (re)writes
// tests/fixtures/nft/<name>.txt: the exchanges, with the commands, versions and nft's debug output
// in the header (the unit tests compare against that copy).

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <linux/netlink.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#include "agent/nft_interpreter.hpp"
#include "agent/nft_source.hpp"
#include "netlink/fixture.hpp"
#include "netlink/kernel_transport.hpp"
#include "netlink/nft.hpp"
#include "netlink/replay_transport.hpp"
#include "tests/support/netns.hpp"
#include "tests/unit/agent/ipt_scenarios.hpp"
#include "tests/unit/agent/nft_scenarios.hpp"
#include "tests/unit/netlink/nft_fixture_util.hpp"

namespace vipportd {
namespace {

using test::TestNetns;
using test::nft::trim_right;

/// Runs a command once, after the n-th exchange of the inner transport: a ruleset change at a
/// chosen point of the dump, to record the retry paths of kernel.md §2.1 for real.
class ChangeAfter final : public netlink::Transport {
  public:
    ChangeAfter(netlink::Transport& inner, int n, std::function<void()> change)
        : inner_(inner), n_(n), change_(std::move(change)) {}
    netlink::Result<netlink::Dump> exchange(std::span<const std::uint8_t> request) override {
        auto r = inner_.exchange(request);
        if (++count_ == n_) {
            change_();
        }
        return r;
    }

  private:
    netlink::Transport& inner_;
    int n_;
    std::function<void()> change_;
    int count_ = 0;
};

std::vector<std::string> header_for(const TestNetns& ns,
                                    const std::vector<std::string>& commands,
                                    const std::string& what) {
    utsname u{};
    uname(&u);
    std::vector<std::string> h{
        "nf_tables fixture \"" + what + "\": the consistent ruleset dump (kernel.md §2.1) of:",
    };
    for (const auto& c : commands) {
        std::istringstream lines(c);
        std::string line;
        bool first = true;
        while (std::getline(lines, line)) {
            h.push_back((first ? "$ " : "  ") + line);
            first = false;
        }
    }
    h.push_back("recorded by tests/netns/nft_record_test.cpp on Linux " + std::string(u.release) +
                ", " + trim_right(ns.output("nft --version")) + ", " +
                trim_right(ns.output("iptables-nft --version")));
    h.push_back("nft --debug=netlink list ruleset printed (lines prefixed '| '):");
    std::istringstream dbg(ns.output("nft --debug=netlink list ruleset 2>/dev/null"));
    std::string line;
    while (std::getline(dbg, line)) {
        if (line.rfind("table ", 0) == 0) {
            break;  // the ruleset listing that follows the debug output
        }
        h.push_back("| " + line);
    }
    return h;
}

struct Recorded {
    netlink::Fixture fixture;
    netlink::Result<netlink::nft::Ruleset> ruleset = netlink::Error{};
};

Recorded record(const TestNetns& ns,
                const std::vector<std::string>& commands,
                const std::string& what,
                int change_after = 0,
                const std::string& change = {}) {
    for (const auto& c : commands) {
        ns.sh(c);
    }
    Recorded rec;
    rec.fixture.header = header_for(ns, commands, what);
    if (change_after > 0) {
        rec.fixture.header.push_back("after exchange " + std::to_string(change_after) +
                                     " the recorder ran: " + change);
    }
    auto kernel =
        ns.in([] { return std::make_unique<netlink::KernelTransport>(NETLINK_NETFILTER); });
    netlink::RecordingTransport recording(*kernel, rec.fixture);
    ChangeAfter changing(recording, change_after, [&] { ns.sh(change); });
    rec.ruleset = netlink::nft::dump_ruleset(changing);
    return rec;
}

void maybe_write(const netlink::Fixture& f, const std::string& name) {
    const char* env = std::getenv("VIPPORTD_RECORD_NFT");
    if (env == nullptr || std::string(env) != "1") {
        return;
    }
    const auto path = std::filesystem::path(VIPPORTD_FIXTURES) / "nft" / (name + ".txt");
    auto w = netlink::write_fixture(f, path);
    ASSERT_TRUE(w) << netlink::to_string(w.error());
}

class NftRecord : public testing::TestWithParam<test::nft::Scenario> {};

TEST_P(NftRecord, DecodesLikeNftAndClaims) {
    if (!test::can_create_netns()) {
        GTEST_SKIP() << "needs root";
    }
    const auto& sc = GetParam();
    TestNetns ns;
    auto rec = record(ns, sc.commands, sc.name);
    ASSERT_TRUE(rec.ruleset) << netlink::to_string(rec.ruleset.error());
    ASSERT_FALSE(rec.ruleset->rules.empty());
    EXPECT_EQ(test::nft::expect_matches_nft(*rec.ruleset, rec.fixture.header),
              rec.ruleset->rules.size());
    auto claims = agent::interpret_nft(*rec.ruleset);
    ASSERT_TRUE(claims) << netlink::to_string(claims.error());
    EXPECT_THAT(test::ipt::describe(*claims), testing::ElementsAreArray(sc.claims));
    maybe_write(rec.fixture, sc.name);
}

INSTANTIATE_TEST_SUITE_P(Scenarios,
                         NftRecord,
                         testing::ValuesIn(test::nft::scenarios()),
                         [](const auto& p) { return p.param.name; });

// A rule added between GETRULE and the final GETGEN: the generation moved, the dump starts over
// and the second attempt is consistent.
TEST(NftRecordRetry, GenerationMovesDuringDump) {
    if (!test::can_create_netns()) {
        GTEST_SKIP() << "needs root";
    }
    TestNetns ns;
    auto rec = record(ns,
                      {"nft add table ip t",
                       "nft 'add chain ip t pre { type nat hook prerouting priority dstnat; }'",
                       "nft add rule ip t pre ip daddr 1.2.3.4 tcp dport 80 dnat to 10.0.0.1"},
                      "retry: generation moved", 4,
                      "nft add rule ip t pre ip daddr 1.2.3.4 tcp dport 81 dnat to 10.0.0.1");
    ASSERT_TRUE(rec.ruleset) << netlink::to_string(rec.ruleset.error());
    EXPECT_EQ(rec.ruleset->rules.size(), 2U);  // the second attempt saw the added rule
    // GETGEN, 4 dumps, GETGEN (moved), then GETGEN, 4 dumps, GETGEN.
    EXPECT_EQ(rec.fixture.exchanges.size(), 12U);
    maybe_write(rec.fixture, "retry_genid");
}

// A rule added right after the first GETGEN: every message of the table dump carries the new
// generation in nfgenmsg.res_id, so the dump starts over at once.
TEST(NftRecordRetry, ResIdMismatch) {
    if (!test::can_create_netns()) {
        GTEST_SKIP() << "needs root";
    }
    TestNetns ns;
    auto rec = record(ns,
                      {"nft add table ip t",
                       "nft 'add chain ip t pre { type nat hook prerouting priority dstnat; }'",
                       "nft add rule ip t pre ip daddr 1.2.3.4 tcp dport 80 dnat to 10.0.0.1"},
                      "retry: res_id mismatch", 1,
                      "nft add rule ip t pre ip daddr 1.2.3.4 tcp dport 81 dnat to 10.0.0.1");
    ASSERT_TRUE(rec.ruleset) << netlink::to_string(rec.ruleset.error());
    EXPECT_EQ(rec.ruleset->rules.size(), 2U);
    // GETGEN, GETTABLE (res_id of the next generation), then GETGEN, 4 dumps, GETGEN.
    EXPECT_EQ(rec.fixture.exchanges.size(), 8U);
    maybe_write(rec.fixture, "retry_resid");
}

// NftSource over a recorded transport: a dump, an unchanged ruleset (one GETGEN, no dump), a rule
// added, and the next collect() (GETGEN moved: a new dump). Replayed by nft_source_test.cpp.
TEST(NftRecordSource, ChangeBetweenCollects) {
    if (!test::can_create_netns()) {
        GTEST_SKIP() << "needs root";
    }
    TestNetns ns;
    const std::vector<std::string> commands{
        "nft add table ip t",
        "nft 'add chain ip t pre { type nat hook prerouting priority dstnat; }'",
        "nft add rule ip t pre ip daddr 1.2.3.4 tcp dport 80 dnat to 10.0.0.1"};
    for (const auto& c : commands) {
        ns.sh(c);
    }
    const std::string change =
        "nft add rule ip t pre ip daddr 1.2.3.4 udp dport 53 dnat to 10.0.0.2";
    netlink::Fixture f;
    f.header = header_for(ns, commands, "source: change between collects");
    f.header.push_back("NftSource::collect() twice, then `" + change +
                       "`, then collect() again (the debug output above is before the change)");
    auto kernel =
        ns.in([] { return std::make_unique<netlink::KernelTransport>(NETLINK_NETFILTER); });
    agent::NftSource source(std::make_unique<netlink::RecordingTransport>(*kernel, f), nullptr);
    auto first = source.collect();
    ASSERT_TRUE(first) << netlink::to_string(first.error());
    auto second = source.collect();
    ASSERT_TRUE(second) << netlink::to_string(second.error());
    EXPECT_EQ(source.dumps(), 1U);
    ns.sh(change);
    auto third = source.collect();
    ASSERT_TRUE(third) << netlink::to_string(third.error());
    EXPECT_EQ(source.dumps(), 2U);
    EXPECT_EQ(first->size(), 1U);
    EXPECT_EQ(third->size(), 2U);
    // dump (6 exchanges, no sets), GETGEN, GETGEN, dump (6).
    EXPECT_EQ(f.exchanges.size(), 14U);
    maybe_write(f, "source_change");
}

// Without CAP_NET_ADMIN nfnetlink refuses every message (kernel.md §6): the NLMSG_ERROR EPERM the
// kernel sent to GETGEN. Capabilities are per thread: a raw capset() on the in() thread.
TEST(NftRecordError, GetgenWithoutCapNetAdmin) {
    if (!test::can_create_netns()) {
        GTEST_SKIP() << "needs root";
    }
    TestNetns ns;
    netlink::Fixture f;
    f.header = header_for(ns, {}, "GETGEN without CAP_NET_ADMIN");
    f.header.push_back("sent from a thread whose effective capabilities lack CAP_NET_ADMIN");
    const std::string error = ns.in([&] {
        __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct data[2]{};
        if (::syscall(SYS_capget, &hdr, data) != 0) {
            return std::string("capget failed");
        }
        data[CAP_NET_ADMIN / 32].effective &= ~(1U << (CAP_NET_ADMIN % 32));
        if (::syscall(SYS_capset, &hdr, data) != 0) {
            return std::string("capset failed");
        }
        netlink::KernelTransport kernel(NETLINK_NETFILTER);
        netlink::RecordingTransport recording(kernel, f);
        auto gen = netlink::nft::get_generation(recording);
        return gen ? std::string("no error") : netlink::to_string(gen.error());
    });
    EXPECT_EQ(error, "nf_tables: GETGEN: Operation not permitted");
    ASSERT_EQ(f.exchanges.size(), 1U);
    maybe_write(f, "getgen_eperm");
}

}  // namespace
}  // namespace vipportd
