// RTM_GETADDR request bytes, the address decoder over a recorded dump and recorded events
// (tests/fixtures/rtnl_addr, recorded by tests/tools/record_rtnl_addr.cpp), and bad input.

#include "netlink/rtnl_addr.hpp"

#include <gtest/gtest.h>
#include <linux/rtnetlink.h>

#include "netlink/bytes.hpp"
#include "netlink/fixture.hpp"
#include "netlink/replay_transport.hpp"
#include "netlink/rtnl_link.hpp"

namespace vipportd::netlink {
namespace {

InetAddress ip(std::string_view text) { return InetAddress::parse(text).value(); }

TEST(RtnlAddr, RequestBytes) {
    // nlmsghdr: len 24, RTM_GETADDR (22), NLM_F_REQUEST|NLM_F_DUMP (0x301); ifaddrmsg all zero
    // (AF_UNSPEC: both families).
    EXPECT_EQ(build_addr_dump_request(),
              from_hex("18000000 16000103 00000000 00000000 00000000 00000000").value());
}

Dump recorded(const std::vector<std::uint8_t>& request) {
    auto t = ReplayTransport::open(VIPPORTD_FIXTURES "/rtnl_addr/dump.txt");
    EXPECT_TRUE(t) << to_string(t.error());
    auto d = (*t)->exchange(request);
    EXPECT_TRUE(d) << to_string(d.error());
    return std::move(*d);
}

const InterfaceAddress* find(const std::vector<InterfaceAddress>& v, std::string_view text) {
    for (const auto& a : v) {
        if (a.address == ip(text)) {
            return &a;
        }
    }
    return nullptr;
}

TEST(RtnlAddr, RecordedDump) {
    auto parsed = parse_addr_dump(recorded(build_addr_dump_request()));
    ASSERT_TRUE(parsed) << to_string(parsed.error());
    // 127.0.0.1, 1.2.3.4, 10.0.0.1, 10.9.0.1 (ptp), 10.0.0.2, 10.2.0.1, 2001:db8::1, ::1,
    // 2001:db8::5 twice (v1, and dadfailed on v0), 2001:db8::2.
    EXPECT_EQ(parsed->size(), 11U);
    for (const auto& a : *parsed) {
        EXPECT_FALSE(a.deleted);
    }

    const auto* lo4 = find(*parsed, "1.2.3.4");
    ASSERT_NE(lo4, nullptr);
    EXPECT_EQ(lo4->ifindex, 1U);
    EXPECT_EQ(lo4->prefix_len, 32);
    EXPECT_EQ(lo4->label, "lo");
    EXPECT_EQ(lo4->flags, kIfaPermanent);
    EXPECT_FALSE(lo4->peer);

    // A label other than the interface name (ip addr add ... label v0:vip).
    const auto* labelled = find(*parsed, "10.0.0.1");
    ASSERT_NE(labelled, nullptr);
    EXPECT_EQ(labelled->label, "v0:vip");
    EXPECT_EQ(labelled->prefix_len, 24);
    EXPECT_EQ(labelled->ifindex, 3U);  // v0

    // The second address of the same subnet is a secondary one.
    const auto* secondary = find(*parsed, "10.0.0.2");
    ASSERT_NE(secondary, nullptr);
    EXPECT_EQ(secondary->flags, kIfaPermanent | kIfaSecondary);

    // Point-to-point: IFA_LOCAL is ours, IFA_ADDRESS the peer (linux/if_addr.h).
    ASSERT_EQ(find(*parsed, "10.9.0.2"), nullptr);
    const auto* ptp = find(*parsed, "10.9.0.1");
    ASSERT_NE(ptp, nullptr);
    ASSERT_TRUE(ptp->peer);
    EXPECT_EQ(*ptp->peer, ip("10.9.0.2"));

    // IPv6 sends only IFA_ADDRESS, no label; flags come from IFA_FLAGS.
    const auto* v6 = find(*parsed, "2001:db8::1");
    ASSERT_NE(v6, nullptr);
    EXPECT_TRUE(v6->label.empty());
    EXPECT_EQ(v6->flags, kIfaPermanent | kIfaNodad);
    EXPECT_FALSE(v6->peer);

    const auto* tentative = find(*parsed, "2001:db8::2");
    ASSERT_NE(tentative, nullptr);
    EXPECT_EQ(tentative->flags, kIfaPermanent | kIfaTentative);

    int dadfailed = 0;
    for (const auto& a : *parsed) {
        if (a.address == ip("2001:db8::5") && (a.flags & kIfaDadFailed) != 0) {
            ++dadfailed;
            EXPECT_EQ(a.ifindex, 3U);  // v0 lost DAD to v1, which had it first
        }
    }
    EXPECT_EQ(dadfailed, 1);
}

TEST(RtnlAddr, RecordedLinkStates) {
    auto links = parse_link_states(recorded(build_link_dump_request()));
    ASSERT_TRUE(links) << to_string(links.error());
    ASSERT_EQ(links->size(), 5U);  // lo, v1, v0, v3, v2
    EXPECT_EQ(links->at(1).name, "lo");
    EXPECT_TRUE(links->at(1).up());
    EXPECT_EQ(links->at(3).name, "v0");
    EXPECT_TRUE(links->at(3).up());
    EXPECT_EQ(links->at(5).name, "v2");
    EXPECT_FALSE(links->at(5).up());
    // The same names as the older parser reads.
    auto names = parse_link_names(recorded(build_link_dump_request()));
    ASSERT_TRUE(names);
    for (const auto& [index, state] : *links) {
        EXPECT_EQ(names->at(index), state.name);
    }
}

std::vector<FixtureExchange> recorded_events() {
    auto f = read_fixture(VIPPORTD_FIXTURES "/rtnl_addr/events.txt");
    EXPECT_TRUE(f) << to_string(f.error());
    return f->exchanges;
}

AddressEvents decode(const FixtureExchange& ex) {
    AddressEvents out;
    for (const auto& datagram : ex.replies) {
        auto r = decode_address_events(datagram, out);
        EXPECT_TRUE(r) << to_string(r.error());
    }
    return out;
}

TEST(RtnlAddr, RecordedEvents) {
    const auto steps = recorded_events();
    ASSERT_EQ(steps.size(), 7U);

    // ip addr add 1.2.3.9/32 dev lo
    auto add4 = decode(steps[0]);
    ASSERT_EQ(add4.changes.size(), 1U);
    EXPECT_FALSE(add4.changes[0].deleted);
    EXPECT_EQ(add4.changes[0].address, ip("1.2.3.9"));
    EXPECT_EQ(add4.changes[0].ifindex, 1U);
    EXPECT_FALSE(add4.overflowed);
    EXPECT_FALSE(add4.links_changed);

    // ip -6 addr add 2001:db8::9/128 dev lo: tentative first, then DAD done (kernel.md §4).
    auto add6 = decode(steps[1]);
    ASSERT_EQ(add6.changes.size(), 2U);
    EXPECT_EQ(add6.changes[0].address, ip("2001:db8::9"));
    EXPECT_EQ(add6.changes[0].flags, kIfaPermanent | kIfaTentative);
    EXPECT_EQ(add6.changes[1].flags, kIfaPermanent);

    // ip addr del 1.2.3.9/32 dev lo
    auto del4 = decode(steps[2]);
    ASSERT_EQ(del4.changes.size(), 1U);
    EXPECT_TRUE(del4.changes[0].deleted);
    EXPECT_EQ(del4.changes[0].address, ip("1.2.3.9"));

    // A point-to-point address event: local and peer as in the dump.
    auto ptp = decode(steps[3]);
    ASSERT_EQ(ptp.changes.size(), 1U);
    EXPECT_EQ(ptp.changes[0].address, ip("10.7.0.1"));
    ASSERT_TRUE(ptp.changes[0].peer);
    EXPECT_EQ(*ptp.changes[0].peer, ip("10.7.0.2"));

    // DAD on a veth takes a while but ends the same way.
    auto veth6 = decode(steps[4]);
    ASSERT_EQ(veth6.changes.size(), 2U);
    EXPECT_EQ(veth6.changes[1].address, ip("2001:db8::7"));
    EXPECT_EQ(veth6.changes[1].flags & kIfaTentative, 0U);

    // ip link set v2 up: link events only.
    auto link = decode(steps[5]);
    EXPECT_TRUE(link.changes.empty());
    EXPECT_TRUE(link.links_changed);
    EXPECT_GE(link.messages, 1U);

    auto del6 = decode(steps[6]);
    ASSERT_EQ(del6.changes.size(), 1U);
    EXPECT_TRUE(del6.changes[0].deleted);
    EXPECT_EQ(del6.changes[0].address, ip("2001:db8::9"));
}

TEST(RtnlAddr, MalformedInputIsAnError) {
    const auto steps = recorded_events();
    const std::vector<std::uint8_t> good = steps[0].replies.at(0);  // RTM_NEWADDR 1.2.3.9

    {  // another message type in a dump
        Dump d;
        d.data = good;
        store(std::span<std::uint8_t>(d.data), 4, std::uint16_t{RTM_NEWROUTE});
        auto r = parse_addr_dump(d);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, Errc::malformed);
        EXPECT_NE(r.error().detail.find("expected RTM_NEWADDR"), std::string::npos)
            << r.error().detail;
    }
    {  // payload shorter than ifaddrmsg
        auto bytes = std::vector<std::uint8_t>(good.begin(), good.begin() + 16 + 4);
        store(std::span<std::uint8_t>(bytes), 0, std::uint32_t{20});
        auto r = decode_addr_message(RTM_NEWADDR, std::span<const std::uint8_t>(bytes).subspan(16));
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, Errc::truncated);
    }
    {  // IFA_ADDRESS (the first attribute, at offset 24) with nla_len 5: a 1-byte address for
       // AF_INET. The walker still advances by NLA_ALIGN(5) = 8, so only the length is wrong.
        auto bytes = good;
        store(std::span<std::uint8_t>(bytes), 24, std::uint16_t{5});
        auto r =
            decode_addr_message(RTM_NEWADDR, std::span<const std::uint8_t>(bytes).subspan(16), 0);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, Errc::malformed);
        EXPECT_NE(r.error().detail.find("IFA_ADDRESS"), std::string::npos) << r.error().detail;
    }
    {  // an attribute overrunning the message, inside an event datagram: overflowed + error
        auto bytes = good;
        store(std::span<std::uint8_t>(bytes), 24, std::uint16_t{0x400});
        AddressEvents ev;
        auto r = decode_address_events(bytes, ev);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, Errc::truncated);
        EXPECT_TRUE(ev.overflowed);
        EXPECT_TRUE(ev.changes.empty());
    }
    {  // a datagram cut in the middle of a header
        AddressEvents ev;
        auto r = decode_address_events(std::span<const std::uint8_t>(good).first(10), ev);
        ASSERT_FALSE(r);
        EXPECT_TRUE(ev.overflowed);
    }
    {  // an unknown family is skipped, not an error
        auto bytes = good;
        bytes[16] = 99;  // ifa_family
        auto r = decode_addr_message(RTM_NEWADDR, std::span<const std::uint8_t>(bytes).subspan(16));
        ASSERT_TRUE(r);
        EXPECT_FALSE(*r);
    }
}

}  // namespace
}  // namespace vipportd::netlink
