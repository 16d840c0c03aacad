// AddressTable (presence rules) and AddressSource (an rtnetlink address cache kept current by
// events). Dumps and events are real kernel bytes: tests/fixtures/rtnl_addr/dump.txt and
// events.txt (tests/tools/record_rtnl_addr.cpp); the event queue itself is scripted.

#include "agent/address_source.hpp"

#include <deque>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "netlink/fixture.hpp"
#include "netlink/replay_transport.hpp"
#include "netlink/rtnl_addr.hpp"

namespace vipportd::agent {
namespace {

netlink::InetAddress ip(std::string_view text) { return netlink::InetAddress::parse(text).value(); }

// ---- AddressTable -------------------------------------------------------------------------

AddressEntry entry(std::string_view address,
                   std::uint32_t ifindex,
                   std::uint32_t flags,
                   bool up = true) {
    AddressEntry e;
    e.address = ip(address);
    e.ifindex = ifindex;
    e.interface = "if" + std::to_string(ifindex);
    e.flags = flags;
    e.link_up = up;
    return e;
}

TEST(AddressTable, StateOfEntry) {
    using netlink::kIfaDadFailed;
    using netlink::kIfaDeprecated;
    using netlink::kIfaOptimistic;
    using netlink::kIfaPermanent;
    using netlink::kIfaTentative;
    EXPECT_EQ(state_of(entry("1.2.3.4", 1, kIfaPermanent)), AddressState::present);
    EXPECT_EQ(state_of(entry("2001:db8::1", 1, kIfaPermanent | kIfaTentative)),
              AddressState::tentative);
    // Optimistic DAD (RFC 4429): usable while DAD runs.
    EXPECT_EQ(state_of(entry("2001:db8::1", 1, kIfaTentative | kIfaOptimistic)),
              AddressState::present);
    EXPECT_EQ(state_of(entry("2001:db8::1", 1, kIfaPermanent | kIfaTentative | kIfaDadFailed)),
              AddressState::dadfailed);
    EXPECT_EQ(state_of(entry("2001:db8::1", 1, kIfaDeprecated)), AddressState::present);
    EXPECT_EQ(state_of(entry("10.0.0.1", 1, kIfaPermanent, false)), AddressState::link_down);
    EXPECT_EQ(to_string(AddressState::link_down), "link-down");
}

TEST(AddressTable, PresencePrefersTheUsableEntry) {
    AddressTable t({
        entry("2001:db8::5", 3, netlink::kIfaTentative | netlink::kIfaDadFailed),
        entry("2001:db8::5", 2, netlink::kIfaPermanent),
        entry("10.0.0.1", 7, 0, false),
        entry("10.0.0.1", 4, netlink::kIfaTentative),
        entry("1.2.3.4", 1, 0),
    });
    EXPECT_EQ(t.size(), 5U);
    const auto p = t.presence(ip("2001:db8::5"));
    EXPECT_TRUE(p.present());
    EXPECT_EQ(p.interface, "if2");
    // tentative ranks above link-down
    EXPECT_EQ(t.presence(ip("10.0.0.1")).state, AddressState::tentative);
    EXPECT_EQ(t.presence(ip("10.0.0.1")).interface, "if4");
    // a v4-mapped VIP is looked up as IPv4
    EXPECT_TRUE(t.presence(ip("::ffff:1.2.3.4")).present());
    const auto none = t.presence(ip("9.9.9.9"));
    EXPECT_EQ(none.state, AddressState::absent);
    EXPECT_TRUE(none.interface.empty());
    ASSERT_EQ(t.find(ip("2001:db8::5")).size(), 2U);
    EXPECT_EQ(t.find(ip("2001:db8::5"))[0].ifindex, 2U);  // ifindex order
    EXPECT_TRUE(AddressTable().find(ip("1.2.3.4")).empty());
}

// ---- AddressSource ------------------------------------------------------------------------

/// Counts exchanges and can be told to fail the next one.
class Counting final : public netlink::Transport {
  public:
    explicit Counting(std::unique_ptr<netlink::Transport> inner) : inner_(std::move(inner)) {}
    netlink::Result<netlink::Dump> exchange(std::span<const std::uint8_t> request) override {
        ++state_->count;
        if (state_->fail_next) {
            state_->fail_next = false;
            return netlink::Error::sys(EBUSY, "scripted failure");
        }
        return inner_->exchange(request);
    }
    struct State {
        int count = 0;
        bool fail_next = false;
    };
    [[nodiscard]] std::shared_ptr<State> state() const { return state_; }

  private:
    std::unique_ptr<netlink::Transport> inner_;
    std::shared_ptr<State> state_ = std::make_shared<State>();
};

using Script = std::deque<netlink::Result<netlink::AddressEvents>>;

/// Hands out scripted drain() results, then "nothing happened".
class ScriptedEvents final : public netlink::AddressEventSource {
  public:
    explicit ScriptedEvents(std::shared_ptr<Script> script) : script_(std::move(script)) {}
    netlink::Result<netlink::AddressEvents> drain() override {
        ++*drains_;
        if (script_->empty()) {
            return netlink::AddressEvents{};
        }
        auto r = script_->front();
        script_->pop_front();
        return r;
    }
    std::shared_ptr<int> drains_ = std::make_shared<int>(0);

  private:
    std::shared_ptr<Script> script_;
};

/// The recorded event datagrams of step i of events.txt (first n datagrams; all by default).
netlink::AddressEvents recorded_step(std::size_t i, std::size_t n = 99) {
    auto f = netlink::read_fixture(VIPPORTD_FIXTURES "/rtnl_addr/events.txt");
    EXPECT_TRUE(f) << netlink::to_string(f.error());
    netlink::AddressEvents out;
    const auto& replies = f->exchanges.at(i).replies;
    for (std::size_t k = 0; k < replies.size() && k < n; ++k) {
        EXPECT_TRUE(netlink::decode_address_events(replies[k], out));
    }
    return out;
}

struct Fixture {
    std::shared_ptr<Script> script = std::make_shared<Script>();
    std::shared_ptr<Counting::State> transport;
    std::shared_ptr<int> drains;
    std::unique_ptr<AddressSource> source;

    explicit Fixture(bool with_events = true) {
        auto t = netlink::ReplayTransport::open(VIPPORTD_FIXTURES "/rtnl_addr/dump.txt");
        EXPECT_TRUE(t) << netlink::to_string(t.error());
        auto counting = std::make_unique<Counting>(std::move(*t));
        transport = counting->state();
        std::unique_ptr<netlink::AddressEventSource> ev;
        if (with_events) {
            auto scripted = std::make_unique<ScriptedEvents>(script);
            drains = scripted->drains_;
            ev = std::move(scripted);
        }
        source = std::make_unique<AddressSource>(std::move(counting), std::move(ev));
    }

    std::shared_ptr<const AddressTable> collect() {
        auto c = source->collect_shared();
        EXPECT_TRUE(c) << netlink::to_string(c.error());
        if (!c) {
            return nullptr;
        }
        EXPECT_TRUE(c->claims && c->claims->empty());
        EXPECT_EQ(c->sockets, nullptr);
        EXPECT_NE(c->addresses, nullptr);
        return c->addresses;
    }
};

TEST(AddressSource, FirstCollectionDumpsAddressesAndLinks) {
    Fixture f;
    EXPECT_EQ(f.source->name(), "addresses");
    const auto t = f.collect();
    ASSERT_TRUE(t);
    EXPECT_EQ(f.transport->count, 2);  // RTM_GETADDR + RTM_GETLINK
    EXPECT_EQ(f.source->dumps(), 1U);
    EXPECT_EQ(*f.drains, 1);  // queued events discarded before the dump
    EXPECT_EQ(t->size(), 11U);

    const auto lo = t->presence(ip("1.2.3.4"));
    EXPECT_TRUE(lo.present());
    EXPECT_EQ(lo.interface, "lo");
    // The interface is the link's name, not the IPv4 label.
    const auto labelled = t->presence(ip("10.0.0.1"));
    EXPECT_TRUE(labelled.present());
    EXPECT_EQ(labelled.interface, "v0");
    EXPECT_EQ(t->find(ip("10.0.0.1")).at(0).label, "v0:vip");
    // HA backup: configured on an interface that is down.
    EXPECT_EQ(t->presence(ip("10.2.0.1")).state, AddressState::link_down);
    EXPECT_EQ(t->presence(ip("10.2.0.1")).interface, "v2");
    // IPv6 in DAD, and DAD lost on v0 while v1 has it.
    EXPECT_EQ(t->presence(ip("2001:db8::2")).state, AddressState::tentative);
    EXPECT_EQ(t->presence(ip("2001:db8::5")).interface, "v1");
    EXPECT_TRUE(t->presence(ip("2001:db8::5")).present());
    // A point-to-point peer is not ours.
    EXPECT_TRUE(t->presence(ip("10.9.0.1")).present());
    EXPECT_EQ(t->presence(ip("10.9.0.2")).state, AddressState::absent);
    EXPECT_FALSE(t->presence(ip("9.9.9.9")).present());
}

TEST(AddressSource, NothingChangedSharesTheSameTable) {
    Fixture f;
    const auto first = f.collect();
    const auto second = f.collect();
    EXPECT_EQ(first.get(), second.get());
    EXPECT_EQ(f.transport->count, 2);  // no dump the second time
    EXPECT_EQ(f.source->dumps(), 1U);
}

TEST(AddressSource, EventsAreAppliedWithoutDumping) {
    Fixture f;
    const auto before = f.collect();
    EXPECT_FALSE(before->presence(ip("1.2.3.9")).present());

    f.script->push_back(recorded_step(0));  // ip addr add 1.2.3.9/32 dev lo
    const auto added = f.collect();
    EXPECT_NE(added.get(), before.get());
    EXPECT_TRUE(added->presence(ip("1.2.3.9")).present());
    EXPECT_EQ(added->presence(ip("1.2.3.9")).interface, "lo");
    EXPECT_FALSE(before->presence(ip("1.2.3.9")).present());  // snapshots are immutable

    // ip -6 addr add 2001:db8::9/128 dev lo, seen before DAD finished, then after.
    f.script->push_back(recorded_step(1, 1));
    EXPECT_EQ(f.collect()->presence(ip("2001:db8::9")).state, AddressState::tentative);
    auto done = recorded_step(1);
    done.changes.erase(done.changes.begin());
    f.script->push_back(done);
    EXPECT_TRUE(f.collect()->presence(ip("2001:db8::9")).present());

    f.script->push_back(recorded_step(2));  // ip addr del 1.2.3.9/32 dev lo
    EXPECT_EQ(f.collect()->presence(ip("1.2.3.9")).state, AddressState::absent);

    // A repeated RTM_NEWADDR that changes nothing keeps the table.
    const auto same = f.collect();
    f.script->push_back(recorded_step(1));
    EXPECT_EQ(f.collect().get(), same.get());

    f.script->push_back(recorded_step(6));  // ip -6 addr del 2001:db8::9/128 dev lo
    EXPECT_EQ(f.collect()->presence(ip("2001:db8::9")).state, AddressState::absent);
    EXPECT_EQ(f.transport->count, 2);
    EXPECT_EQ(f.source->dumps(), 1U);
}

TEST(AddressSource, LinkEventsRedumpTheLinksOnly) {
    Fixture f;
    (void)f.collect();
    f.script->push_back(recorded_step(5));  // ip link set v2 up
    const auto t = f.collect();
    EXPECT_EQ(f.transport->count, 3);  // one RTM_GETLINK more
    EXPECT_EQ(f.source->dumps(), 1U);
    // The replayed link dump is the recorded one (v2 down), so nothing changed.
    EXPECT_EQ(t->presence(ip("10.2.0.1")).state, AddressState::link_down);
}

TEST(AddressSource, LostEventsResynchronise) {
    Fixture f;
    (void)f.collect();
    f.script->push_back(recorded_step(0));
    EXPECT_TRUE(f.collect()->presence(ip("1.2.3.9")).present());

    netlink::AddressEvents lost;
    lost.overflowed = true;  // ENOBUFS
    f.script->push_back(lost);
    const auto t = f.collect();
    EXPECT_EQ(f.source->dumps(), 2U);
    EXPECT_EQ(f.transport->count, 4);
    // The dump is the truth: 1.2.3.9 is not in it.
    EXPECT_FALSE(t->presence(ip("1.2.3.9")).present());
    EXPECT_TRUE(t->presence(ip("1.2.3.4")).present());
}

TEST(AddressSource, BrokenEventSocketFallsBackToDumps) {
    Fixture f;
    (void)f.collect();
    f.script->push_back(netlink::Error::sys(EBADF, "rtnetlink: address event socket recv"));
    (void)f.collect();
    ASSERT_TRUE(f.source->events_error());
    EXPECT_EQ(f.source->events_error()->sys_errno, EBADF);
    (void)f.collect();
    EXPECT_EQ(f.source->dumps(), 3U);  // every collection dumps now
}

TEST(AddressSource, WithoutEventsEveryCollectionDumps) {
    Fixture f(false);
    const auto a = f.collect();
    const auto b = f.collect();
    EXPECT_EQ(f.source->dumps(), 2U);
    EXPECT_EQ(a.get(), b.get());  // same content: same table
}

TEST(AddressSource, DumpFailureIsReportedAndRetried) {
    Fixture f;
    f.transport->fail_next = true;
    auto c = f.source->collect_shared();
    ASSERT_FALSE(c);
    EXPECT_NE(netlink::to_string(c.error()).find("scripted failure"), std::string::npos);
    EXPECT_EQ(f.source->table(), nullptr);
    const auto t = f.collect();  // resynchronises
    ASSERT_TRUE(t);
    EXPECT_TRUE(t->presence(ip("1.2.3.4")).present());
    EXPECT_EQ(f.source->dumps(), 2U);

    auto claims = f.source->collect();
    ASSERT_TRUE(claims);
    EXPECT_TRUE(claims->empty());
}

}  // namespace
}  // namespace vipportd::agent
