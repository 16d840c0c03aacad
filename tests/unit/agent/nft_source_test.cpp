// NftSource: claims cached by generation. Replays dumps recorded from a real kernel
// (tests/fixtures/nft/source_change.txt: two collect()s of one ruleset, a rule added, a third
// collect(); getgen_eperm.txt: GETGEN without CAP_NET_ADMIN) and scripted change events.

#include "agent/nft_source.hpp"

#include <deque>
#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "netlink/replay_transport.hpp"
#include "tests/unit/agent/ipt_scenarios.hpp"

namespace vipportd::agent {
namespace {

namespace nft = netlink::nft;
using testing::ElementsAre;

/// Counts exchanges, so tests see how much a collect() asked of the kernel.
class Counting final : public netlink::Transport {
  public:
    explicit Counting(std::unique_ptr<netlink::Transport> inner) : inner_(std::move(inner)) {}
    netlink::Result<netlink::Dump> exchange(std::span<const std::uint8_t> request) override {
        ++*count_;
        return inner_->exchange(request);
    }
    [[nodiscard]] std::shared_ptr<int> count() const { return count_; }

  private:
    std::unique_ptr<netlink::Transport> inner_;
    std::shared_ptr<int> count_ = std::make_shared<int>(0);
};

std::unique_ptr<Counting> replay(const std::string& name) {
    auto t = netlink::ReplayTransport::open(VIPPORTD_FIXTURES "/nft/" + name + ".txt");
    EXPECT_TRUE(t) << netlink::to_string(t.error());
    return std::make_unique<Counting>(std::move(*t));
}

/// Hands out scripted drain() results, then "nothing happened".
class ScriptedEvents final : public nft::EventSource {
  public:
    explicit ScriptedEvents(std::shared_ptr<std::deque<netlink::Result<nft::EventSummary>>> script)
        : script_(std::move(script)) {}
    netlink::Result<nft::EventSummary> drain() override {
        if (script_->empty()) {
            return nft::EventSummary{};
        }
        auto r = script_->front();
        script_->pop_front();
        return r;
    }
    [[nodiscard]] int fd() const override { return 42; }

  private:
    std::shared_ptr<std::deque<netlink::Result<nft::EventSummary>>> script_;
};

nft::EventSummary new_generation(std::uint32_t id) {
    nft::EventSummary s;
    s.messages = 2;
    s.changed = true;
    s.last_generation = nft::Generation{id, 1234, "nft"};
    return s;
}

// Recorded: an unchanged ruleset costs one GETGEN and no dump; a change is seen by the next
// collect() because the generation moved.
TEST(NftSource, CachesByGeneration) {
    auto transport = replay("source_change");
    auto count = transport->count();
    NftSource source(std::move(transport), nullptr);
    EXPECT_EQ(source.name(), "nftables");
    EXPECT_EQ(source.event_fd(), -1);

    auto first = source.collect();
    ASSERT_TRUE(first) << netlink::to_string(first.error());
    EXPECT_THAT(test::ipt::describe(*first),
                ElementsAre("ip t pre#2 dnat '10.0.0.1' TCP 80 @ 1.2.3.4 exact path=pre "
                            "source=nftables"));
    EXPECT_EQ(source.dumps(), 1U);
    EXPECT_EQ(*count, 6);  // GETGEN, four dumps (no sets), GETGEN
    const auto genid = source.generation();
    ASSERT_TRUE(genid.has_value());

    auto second = source.collect();
    ASSERT_TRUE(second) << netlink::to_string(second.error());
    EXPECT_EQ(test::ipt::describe(*second), test::ipt::describe(*first));
    EXPECT_EQ(source.dumps(), 1U);  // not dumped again
    EXPECT_EQ(*count, 7);           // one GETGEN

    auto third = source.collect();  // after `nft add rule ... udp dport 53 ...`
    ASSERT_TRUE(third) << netlink::to_string(third.error());
    EXPECT_THAT(test::ipt::describe(*third),
                ElementsAre("ip t pre#2 dnat '10.0.0.1' TCP 80 @ 1.2.3.4 exact path=pre "
                            "source=nftables",
                            "ip t pre#3 dnat '10.0.0.2' UDP 53 @ 1.2.3.4 exact path=pre "
                            "source=nftables"));
    EXPECT_EQ(source.dumps(), 2U);
    EXPECT_EQ(source.generation(), *genid + 1);
}

// Events decide whether the cache is stale; a GETGEN still confirms every cache hit.
TEST(NftSource, EventsInvalidateTheCache) {
    auto transport = replay("native_ip6");
    auto count = transport->count();
    auto script = std::make_shared<std::deque<netlink::Result<nft::EventSummary>>>();
    NftSource source(std::move(transport), std::make_unique<ScriptedEvents>(script));
    EXPECT_EQ(source.event_fd(), 42);

    ASSERT_TRUE(source.collect());
    EXPECT_EQ(source.dumps(), 1U);
    const std::uint32_t genid = source.generation().value();
    const int after_dump = *count;

    // Events of the generation already dumped: nothing new, one GETGEN.
    script->push_back(new_generation(genid));
    ASSERT_TRUE(source.collect());
    EXPECT_EQ(source.dumps(), 1U);
    EXPECT_EQ(*count, after_dump + 1);

    // A newer generation: dump again.
    script->push_back(new_generation(genid + 1));
    ASSERT_TRUE(source.collect());
    EXPECT_EQ(source.dumps(), 2U);

    // An object change whose NEWGEN has not been read yet: dump again.
    nft::EventSummary partial;
    partial.messages = 1;
    partial.changed = true;
    script->push_back(partial);
    ASSERT_TRUE(source.collect());
    EXPECT_EQ(source.dumps(), 3U);

    // ENOBUFS: events were lost, dump again.
    nft::EventSummary lost;
    lost.overflowed = true;
    script->push_back(lost);
    ASSERT_TRUE(source.collect());
    EXPECT_EQ(source.dumps(), 4U);

    // The event socket fails: it is dropped (the GETGEN check stays), dump once to be safe.
    script->push_back(netlink::Error::sys(EBADF, "nf_tables: event socket recv"));
    ASSERT_TRUE(source.collect());
    EXPECT_EQ(source.dumps(), 5U);
    ASSERT_TRUE(source.events_error().has_value());
    EXPECT_EQ(netlink::to_string(*source.events_error()),
              "nf_tables: event socket recv: Bad file descriptor");
    EXPECT_EQ(source.event_fd(), -1);
    ASSERT_TRUE(source.collect());
    EXPECT_EQ(source.dumps(), 5U);
}

// Recorded: without CAP_NET_ADMIN the kernel refuses GETGEN (kernel.md §6).
TEST(NftSource, PermissionErrorPropagates) {
    NftSource source(replay("getgen_eperm"), nullptr);
    auto claims = source.collect();
    ASSERT_FALSE(claims);
    EXPECT_EQ(claims.error().code, netlink::Errc::kernel);
    EXPECT_EQ(netlink::to_string(claims.error()), "nf_tables: GETGEN: Operation not permitted");
    EXPECT_EQ(source.dumps(), 0U);
    EXPECT_FALSE(source.generation().has_value());
}

}  // namespace
}  // namespace vipportd::agent
