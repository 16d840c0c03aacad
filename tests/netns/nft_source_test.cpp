// NftSource against the real kernel: rules written by real nft, iptables-nft and ip6tables-nft in
// a fresh namespace in the shapes ZStack's agent writes (zstack-api.md §14.2) plus kube-proxy and
// tproxy styles; the source reads them with a KernelTransport and a KernelEventSource created
// inside that namespace. Also: the generation cache (an unchanged ruleset is not dumped again, a
// change is seen by the next collect()), lost events (ENOBUFS), and the permission error.

#include "agent/nft_source.hpp"

#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <sys/syscall.h>

#include "netlink/bytes.hpp"
#include "netlink/kernel_transport.hpp"
#include "netlink/nft_decode.hpp"
#include "netlink/nft_events.hpp"
#include "tests/support/netns.hpp"
#include "tests/unit/agent/ipt_scenarios.hpp"

namespace vipportd {
namespace {

namespace nft = netlink::nft;
using test::TestNetns;
using testing::ElementsAre;

/// Counts the GETRULE dumps that go through it: one per full ruleset dump.
class CountingDumps final : public netlink::Transport {
  public:
    explicit CountingDumps(std::unique_ptr<netlink::Transport> inner) : inner_(std::move(inner)) {}
    netlink::Result<netlink::Dump> exchange(std::span<const std::uint8_t> request) override {
        if (const auto h = netlink::load_prefix<nlmsghdr>(request);
            h && nft::nft_message(h->nlmsg_type) == NFT_MSG_GETRULE) {
            ++*dumps_;
        }
        ++*exchanges_;
        return inner_->exchange(request);
    }
    std::shared_ptr<int> dumps_ = std::make_shared<int>(0);
    std::shared_ptr<int> exchanges_ = std::make_shared<int>(0);

  private:
    std::unique_ptr<netlink::Transport> inner_;
};

class NftSourceNetns : public testing::Test {
  protected:
    void SetUp() override {
        if (!test::can_create_netns()) {
            GTEST_SKIP() << "needs root";
        }
    }

    std::vector<std::string> claims(const TestNetns& ns) {
        auto source = ns.in([] { return agent::NftSource::open_kernel(); });
        EXPECT_FALSE(source->events_error().has_value());
        auto c = source->collect();
        EXPECT_TRUE(c) << netlink::to_string(c.error());
        return c ? test::ipt::describe(*c) : std::vector<std::string>{};
    }
};

// Port forwarding as ZStack writes it in direct iptables mode: a single port with -m tcp and a
// range with -m multiport --dports S:E, both with the "pf rule" comment; EIP (whole IP, no
// protocol, no port); the DNS/LB REDIRECT; SNAT (no claim).
TEST_F(NftSourceNetns, ZstackIptablesNftShapes) {
    TestNetns ns;
    ns.sh(
        "iptables-nft -t nat -A PREROUTING -d 1.2.3.4/32 -p tcp -m tcp --dport 80 -m comment "
        "--comment 'pf rule@PREROUTING' -j DNAT --to-destination 10.0.0.5:8080");
    ns.sh(
        "iptables-nft -t nat -A PREROUTING -d 1.2.3.4/32 -p udp -m multiport --dports 1000:2000 "
        "-m comment --comment 'pf rule@PREROUTING' -j DNAT --to-destination 10.0.0.5:1000-2000");
    ns.sh(
        "iptables-nft -t nat -A PREROUTING -d 1.2.3.5/32 -m comment --comment "
        "'eip rule@PREROUTING' -j DNAT --to-destination 10.0.0.9");
    ns.sh(
        "iptables-nft -t nat -A PREROUTING -d 1.2.3.6/32 -p udp -m udp --dport 53 -j REDIRECT "
        "--to-ports 5353");
    ns.sh("iptables-nft -t nat -A POSTROUTING -s 10.0.0.9/32 -j SNAT --to-source 1.2.3.5");
    ns.sh(
        "ip6tables-nft -t nat -A PREROUTING -d 2001:db8::1/128 -p tcp -m tcp --dport 443 -j "
        "DNAT --to-destination [2001:db8::5]:8443");
    EXPECT_THAT(
        claims(ns),
        ElementsAre("ip nat PREROUTING#2 DNAT '10.0.0.5:8080' TCP 80 @ 1.2.3.4 exact "
                    "path=PREROUTING comment='pf rule@PREROUTING' source=nftables",
                    "ip nat PREROUTING#3 DNAT '10.0.0.5:1000-2000' UDP 1000-2000 @ 1.2.3.4 exact "
                    "path=PREROUTING comment='pf rule@PREROUTING' source=nftables",
                    "ip nat PREROUTING#4 DNAT '10.0.0.9' TCP 1-65535 @ 1.2.3.5 exact "
                    "path=PREROUTING comment='eip rule@PREROUTING' source=nftables",
                    "ip nat PREROUTING#4 DNAT '10.0.0.9' UDP 1-65535 @ 1.2.3.5 exact "
                    "path=PREROUTING comment='eip rule@PREROUTING' source=nftables",
                    "ip nat PREROUTING#5 REDIRECT ':5353' UDP 53 @ 1.2.3.6 exact path=PREROUTING "
                    "source=nftables",
                    "ip6 nat PREROUTING#2 DNAT '[2001:db8::5]:8443' TCP 443 @ 2001:db8::1 exact "
                    "path=PREROUTING source=nftables"));
}

// The same services written natively: a port range as two cmps, a whole-IP DNAT, kube-proxy's
// vmap of daddr . l4proto . dport with goto, and tproxy (nft and the iptables-nft target).
TEST_F(NftSourceNetns, NativeAndKubeProxyAndTproxy) {
    TestNetns ns;
    ns.sh(R"(nft -f - <<'EOF'
table ip zs {
  map services {
    type ipv4_addr . inet_proto . inet_service : verdict
    elements = { 1.2.3.7 . tcp . 443 : goto svc-web, 1.2.3.7 . udp . 53 : goto svc-dns }
  }
  chain svc-web { meta l4proto tcp dnat to 10.0.0.20:8443; }
  chain svc-dns { meta l4proto udp dnat to 10.0.0.21; }
  chain kube { ip daddr . meta l4proto . th dport vmap @services; }
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr 1.2.3.4 tcp dport 3000-3999 dnat to 10.0.0.3
    ip daddr 1.2.3.8 dnat to 10.0.0.8
    jump kube
  }
  chain tp {
    type filter hook prerouting priority mangle; policy accept;
    ip daddr 1.2.3.4 udp dport 9999 tproxy to :8888
  }
}
EOF)");
    ns.sh(
        "iptables-nft -t mangle -A PREROUTING -d 1.2.3.4/32 -p tcp -m tcp --dport 443 -j "
        "TPROXY --on-port 8443 --on-ip 127.0.0.1 --tproxy-mark 0x1/0x1");
    EXPECT_THAT(
        claims(ns),
        ElementsAre(
            "ip zs pre#10 dnat '10.0.0.3' TCP 3000-3999 @ 1.2.3.4 exact path=pre source=nftables",
            "ip zs pre#11 dnat '10.0.0.8' TCP 1-65535 @ 1.2.3.8 exact path=pre source=nftables",
            "ip zs pre#11 dnat '10.0.0.8' UDP 1-65535 @ 1.2.3.8 exact path=pre source=nftables",
            "ip zs svc-web#7 dnat '10.0.0.20:8443' TCP 443 @ 1.2.3.7 exact "
            "path=pre>kube>svc-web source=nftables",
            "ip zs svc-dns#8 dnat '10.0.0.21' UDP 53 @ 1.2.3.7 exact path=pre>kube>svc-dns "
            "source=nftables",
            "ip zs tp#13 tproxy ':8888' UDP 9999 @ 1.2.3.4 exact path=tp source=nftables",
            "ip mangle PREROUTING#2 TPROXY '127.0.0.1:8443' TCP 443 @ 1.2.3.4 exact "
            "path=PREROUTING source=nftables"));
}

// An unchanged ruleset is never dumped twice; a change (seen through the events, confirmed by
// the generation) shows in the very next collect().
TEST_F(NftSourceNetns, ChangeIsSeenAndUnchangedIsNotRedumped) {
    TestNetns ns;
    ns.sh(
        "iptables-nft -t nat -A PREROUTING -d 1.2.3.4/32 -p tcp -m tcp --dport 80 -j DNAT "
        "--to-destination 10.0.0.5:8080");
    std::shared_ptr<int> dumps;
    auto source = ns.in([&] {
        auto events = nft::KernelEventSource::open();
        EXPECT_TRUE(events) << netlink::to_string(events.error());
        auto counting = std::make_unique<CountingDumps>(
            std::make_unique<netlink::KernelTransport>(NETLINK_NETFILTER));
        dumps = counting->dumps_;
        return std::make_unique<agent::NftSource>(std::move(counting), std::move(*events));
    });
    ASSERT_GE(source->event_fd(), 0);
    auto first = source->collect();
    ASSERT_TRUE(first) << netlink::to_string(first.error());
    EXPECT_EQ(first->size(), 1U);
    EXPECT_EQ(*dumps, 1);
    for (int i = 0; i < 3; ++i) {
        auto again = source->collect();
        ASSERT_TRUE(again) << netlink::to_string(again.error());
        EXPECT_EQ(test::ipt::describe(*again), test::ipt::describe(*first));
    }
    EXPECT_EQ(*dumps, 1);  // three cache hits, no dump

    ns.sh(
        "iptables-nft -t nat -A PREROUTING -d 1.2.3.4/32 -p udp -m udp --dport 53 -j REDIRECT "
        "--to-ports 5353");
    auto changed = source->collect();
    ASSERT_TRUE(changed) << netlink::to_string(changed.error());
    EXPECT_THAT(test::ipt::describe(*changed),
                ElementsAre("ip nat PREROUTING#2 DNAT '10.0.0.5:8080' TCP 80 @ 1.2.3.4 exact "
                            "path=PREROUTING source=nftables",
                            "ip nat PREROUTING#3 REDIRECT ':5353' UDP 53 @ 1.2.3.4 exact "
                            "path=PREROUTING source=nftables"));
    EXPECT_EQ(*dumps, 2);

    ns.sh("iptables-nft -t nat -D PREROUTING 1");
    auto removed = source->collect();
    ASSERT_TRUE(removed) << netlink::to_string(removed.error());
    EXPECT_THAT(test::ipt::describe(*removed),
                ElementsAre("ip nat PREROUTING#3 REDIRECT ':5353' UDP 53 @ 1.2.3.4 exact "
                            "path=PREROUTING source=nftables"));
    EXPECT_EQ(*dumps, 3);
    ASSERT_TRUE(source->collect());
    EXPECT_EQ(*dumps, 3);
}

// The events themselves: object messages then NEWGEN with the new generation (kernel.md §2.2).
TEST_F(NftSourceNetns, EventsCarryTheNewGeneration) {
    TestNetns ns;
    auto events = ns.in([] { return nft::KernelEventSource::open(); });
    ASSERT_TRUE(events) << netlink::to_string(events.error());
    auto quiet = (*events)->drain();
    ASSERT_TRUE(quiet);
    EXPECT_FALSE(quiet->invalidates());
    ns.sh("nft add table ip t");
    auto ev = (*events)->drain();
    ASSERT_TRUE(ev) << netlink::to_string(ev.error());
    EXPECT_TRUE(ev->changed);
    EXPECT_FALSE(ev->overflowed);
    EXPECT_EQ(ev->messages, 2U);  // NEWTABLE, NEWGEN
    ASSERT_TRUE(ev->last_generation.has_value());
    EXPECT_EQ(ev->last_generation->proc_name, "nft");
    auto gen = ns.in([] {
        netlink::KernelTransport t(NETLINK_NETFILTER);
        return nft::get_generation(t).value().id;
    });
    EXPECT_EQ(ev->last_generation->id, gen);
}

// A receive buffer too small for one batch of element events: the kernel drops events and
// recv() reports ENOBUFS; the drain says so, and a source would dump again.
TEST_F(NftSourceNetns, LostEventsAreReported) {
    TestNetns ns;
    ns.sh("nft add table ip t && nft add set ip t s '{ type inet_service; }'");
    auto events = ns.in([] { return nft::KernelEventSource::open(2048); });
    ASSERT_TRUE(events) << netlink::to_string(events.error());
    std::string elements;
    for (int p = 1; p <= 2000; ++p) {
        elements += (elements.empty() ? "" : ", ") + std::to_string(p);
    }
    ns.sh("nft add element ip t s '{ " + elements + " }'");
    auto ev = (*events)->drain();
    ASSERT_TRUE(ev) << netlink::to_string(ev.error());
    EXPECT_TRUE(ev->overflowed);
    EXPECT_TRUE(ev->invalidates());
}

// Without CAP_NET_ADMIN: no events (EPERM on the membership) and a precise collect() error.
TEST_F(NftSourceNetns, MissingCapabilityIsAPreciseError) {
    TestNetns ns;
    const auto result = ns.in([&] {
        __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct data[2]{};
        if (::syscall(SYS_capget, &hdr, data) != 0) {
            return std::vector<std::string>{"capget failed"};
        }
        data[CAP_NET_ADMIN / 32].effective &= ~(1U << (CAP_NET_ADMIN % 32));
        if (::syscall(SYS_capset, &hdr, data) != 0) {
            return std::vector<std::string>{"capset failed"};
        }
        auto source = agent::NftSource::open_kernel();
        auto claims = source->collect();
        return std::vector<std::string>{
            source->events_error() ? netlink::to_string(*source->events_error()) : "events ok",
            claims ? "no error" : netlink::to_string(claims.error())};
    });
    EXPECT_THAT(result, ElementsAre("nf_tables: NFNLGRP_NFTABLES membership: Operation not "
                                    "permitted",
                                    "nf_tables: GETGEN: Operation not permitted"));
}

}  // namespace
}  // namespace vipportd
