// AddressSource against the real kernel, each test in its own namespace: VIP presence follows
// `ip addr add/del`, IPv6 DAD and interface up/down through rtnetlink events alone (one dump in
// all), and lost events (a receive queue too small on purpose) are repaired by a new dump.

#include "agent/address_source.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <linux/netlink.h>

#include "netlink/kernel_transport.hpp"
#include "netlink/rtnl_addr.hpp"
#include "tests/support/netns.hpp"

namespace vipportd::agent {
namespace {

using namespace std::chrono_literals;

netlink::InetAddress ip(std::string_view text) { return netlink::InetAddress::parse(text).value(); }

class AddressSourceNetns : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!test::can_create_netns()) {
            GTEST_SKIP() << "needs root (network namespaces)";
        }
        ns_ = std::make_unique<test::TestNetns>();
        // Sockets are created inside the namespace and stay there (kernel.md §1.9).
        source_ = ns_->in([] { return AddressSource::open_kernel(); });
        ASSERT_FALSE(source_->events_error()) << netlink::to_string(*source_->events_error());
    }

    std::shared_ptr<const AddressTable> collect() {
        auto c = source_->collect_shared();
        EXPECT_TRUE(c) << netlink::to_string(c.error());
        return c ? c->addresses : nullptr;
    }
    Presence presence(std::string_view address) { return collect()->presence(ip(address)); }

    /// Collects until the state of address is want (DAD takes about a second), at most 10 s.
    Presence await(std::string_view address, AddressState want) {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        Presence p = presence(address);
        while (p.state != want && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(20ms);
            p = presence(address);
        }
        return p;
    }

    std::unique_ptr<test::TestNetns> ns_;
    std::unique_ptr<AddressSource> source_;
};

TEST_F(AddressSourceNetns, PresenceFlipsWithAddressesViaEvents) {
    EXPECT_EQ(presence("1.2.3.4").state, AddressState::absent);
    EXPECT_TRUE(presence("127.0.0.1").present());
    // The kernel queues the notification before it acknowledges `ip`'s request
    // (net/ipv4/devinet.c __inet_insert_ifa -> rtmsg_ifa), so it is there once `ip` returns.
    ns_->sh("ip addr add 1.2.3.4/32 dev lo");
    auto p = presence("1.2.3.4");
    EXPECT_TRUE(p.present());
    EXPECT_EQ(p.interface, "lo");
    ns_->sh("ip addr del 1.2.3.4/32 dev lo");
    EXPECT_EQ(presence("1.2.3.4").state, AddressState::absent);
    ns_->sh("ip addr add 1.2.3.4/32 dev lo");
    EXPECT_TRUE(presence("1.2.3.4").present());

    ns_->sh("ip -6 addr add 2001:db8::9/128 dev lo nodad");
    EXPECT_TRUE(presence("2001:db8::9").present());
    ns_->sh("ip -6 addr del 2001:db8::9/128 dev lo");
    EXPECT_EQ(presence("2001:db8::9").state, AddressState::absent);
    ns_->sh("ip -6 addr add 2001:db8::9/128 dev lo nodad");
    EXPECT_TRUE(presence("2001:db8::9").present());

    // Everything above came from events: the first collection was the only dump.
    EXPECT_EQ(source_->dumps(), 1U);
    // Nothing changed since the last collection: the same table is shared.
    EXPECT_EQ(collect().get(), collect().get());
}

TEST_F(AddressSourceNetns, Ipv6DadAndInterfaceState) {
    ns_->sh("ip link add v0 type veth peer name v1");
    ns_->sh("ip link set v0 up");
    ns_->sh("ip link set v1 up");
    ns_->sh("ip addr add 10.0.0.1/24 dev v0 label v0:vip");
    auto p = presence("10.0.0.1");
    EXPECT_TRUE(p.present());
    EXPECT_EQ(p.interface, "v0");  // the link's name, not the label

    // Without nodad the address is tentative until DAD completes.
    ns_->sh("ip -6 addr add 2001:db8::7/64 dev v0");
    EXPECT_EQ(presence("2001:db8::7").state, AddressState::tentative);
    EXPECT_TRUE(await("2001:db8::7", AddressState::present).present());

    // DAD fails on v0 when v1 already has the address; v1's copy is the usable one.
    ns_->sh("ip -6 addr add 2001:db8::5/64 dev v1 nodad");
    ns_->sh("ip -6 addr add 2001:db8::5/64 dev v0");
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    bool failed = false;
    while (!failed && std::chrono::steady_clock::now() < deadline) {
        for (const auto& e : collect()->find(ip("2001:db8::5"))) {
            failed = failed || state_of(e) == AddressState::dadfailed;
        }
        if (!failed) {
            std::this_thread::sleep_for(20ms);
        }
    }
    EXPECT_TRUE(failed);
    p = presence("2001:db8::5");
    EXPECT_TRUE(p.present());
    EXPECT_EQ(p.interface, "v1");

    // HA backup: the NIC goes down, the IPv4 VIP stays configured but is not usable.
    ns_->sh("ip link set v0 down");
    p = presence("10.0.0.1");
    EXPECT_EQ(p.state, AddressState::link_down);
    EXPECT_EQ(p.interface, "v0");
    EXPECT_EQ(presence("2001:db8::7").state, AddressState::absent);  // IPv6 is dropped on down
    ns_->sh("ip link set v0 up");
    EXPECT_TRUE(presence("10.0.0.1").present());

    // A renamed interface is seen by its new name (link events re-dump the links).
    ns_->sh("ip link set v0 down && ip link set v0 name wan0 && ip link set wan0 up");
    EXPECT_EQ(presence("10.0.0.1").interface, "wan0");
    // A deleted interface takes its addresses along.
    ns_->sh("ip link del wan0");
    EXPECT_EQ(presence("10.0.0.1").state, AddressState::absent);
    EXPECT_EQ(source_->dumps(), 1U);
}

TEST_F(AddressSourceNetns, LostEventsAreRepairedByADump) {
    // A receive queue of a few KiB (SO_RCVBUFFORCE; the kernel doubles it): a burst of 300
    // address events overflows it, the next recv() fails with ENOBUFS.
    auto source = ns_->in([] {
        auto ev = netlink::KernelAddressEventSource::open(4096);
        EXPECT_TRUE(ev);
        return std::make_unique<AddressSource>(
            std::make_unique<netlink::KernelTransport>(NETLINK_ROUTE), std::move(*ev));
    });
    ASSERT_TRUE(source->collect_shared());
    EXPECT_EQ(source->dumps(), 1U);
    std::string batch;
    for (int i = 1; i <= 300; ++i) {
        batch += "addr add 10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256) +
                 "/32 dev lo\n";
    }
    ns_->sh("printf '" + batch + "' | ip -batch -");
    auto c = source->collect_shared();
    ASSERT_TRUE(c) << netlink::to_string(c.error());
    EXPECT_EQ(source->dumps(), 2U);  // the overflow forced a resynchronisation
    for (int i = 1; i <= 300; ++i) {
        const auto a = "10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256);
        ASSERT_TRUE(c->addresses->presence(ip(a)).present()) << a;
    }
    // And events work again afterwards.
    ns_->sh("ip addr del 10.1.0.1/32 dev lo");
    c = source->collect_shared();
    ASSERT_TRUE(c);
    EXPECT_FALSE(c->addresses->presence(ip("10.1.0.1")).present());
    EXPECT_EQ(source->dumps(), 2U);
}

}  // namespace
}  // namespace vipportd::agent
