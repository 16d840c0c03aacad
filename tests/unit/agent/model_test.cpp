#include "agent/model.hpp"

#include <gtest/gtest.h>

namespace vipportd::agent {
namespace {

InetAddress ip(const char* s) { return *InetAddress::parse(s); }

TEST(AddressScope, ExactUnmapsV4MappedAddresses) {
    const auto s = AddressScope::exact(ip("::ffff:1.2.3.4"));
    EXPECT_TRUE(s.covers(ip("1.2.3.4")));
    EXPECT_TRUE(s.covers(ip("::ffff:1.2.3.4")));
    EXPECT_FALSE(s.covers(ip("1.2.3.5")));
    EXPECT_EQ(s.to_string(), "1.2.3.4");
}

TEST(AddressScope, PrefixesAndComplements) {
    const auto s = AddressScope::prefix(ip("1.2.3.5"), 30);
    EXPECT_EQ(s.to_string(), "1.2.3.4-1.2.3.7");
    EXPECT_TRUE(s.covers(ip("1.2.3.7")));
    EXPECT_FALSE(s.covers(ip("1.2.3.8")));
    const auto c = s.complement_within(Family::v4);
    EXPECT_EQ(c.to_string(), "0.0.0.0-1.2.3.3, 1.2.3.8-255.255.255.255");
    EXPECT_TRUE(c.complement_within(Family::v4) == s);
    EXPECT_EQ(AddressScope::all(Family::v6).to_string(), "::/0");
    EXPECT_TRUE(AddressScope::all(Family::v4).covers_all(Family::v4));
    EXPECT_FALSE(AddressScope::all(Family::v4).covers(ip("2001:db8::1")));
}

TEST(AddressScope, UniteMergesAdjacentRangesAndIntersectionKeepsFamilies) {
    auto s = AddressScope::exact(ip("10.0.0.1"));
    s.unite(AddressScope::exact(ip("10.0.0.2")));
    s.unite(AddressScope::exact(ip("2001:db8::1")));
    EXPECT_EQ(s.to_string(), "10.0.0.1-10.0.0.2, 2001:db8::1");
    const auto i = s.intersected(AddressScope::all(Family::v6));
    EXPECT_EQ(i.to_string(), "2001:db8::1");
}

TEST(Snapshot, UsedPortsUnitesMatchingClaimsOnly) {
    Snapshot snap;
    snap.claims.push_back({Protocol::tcp, PortSet::single(80), AddressScope::exact(ip("1.2.3.4")),
                           Certainty::exact, SocketOrigin{}});
    snap.claims.push_back({Protocol::tcp, PortSet::single(22), AddressScope::all(Family::v4),
                           Certainty::exact, SocketOrigin{}});
    snap.claims.push_back({Protocol::udp, PortSet::single(53), AddressScope::all(Family::v4),
                           Certainty::exact, SocketOrigin{}});
    EXPECT_EQ(snap.used_ports(ip("1.2.3.4"), Protocol::tcp).to_string(), "22,80");
    EXPECT_EQ(snap.used_ports(ip("::ffff:1.2.3.4"), Protocol::tcp).to_string(), "22,80");
    EXPECT_EQ(snap.used_ports(ip("1.2.3.5"), Protocol::tcp).to_string(), "22");
    EXPECT_EQ(snap.used_ports(ip("2001:db8::1"), Protocol::tcp).to_string(), "");
    EXPECT_EQ(snap.used_ports(ip("1.2.3.4"), Protocol::udp).to_string(), "53");
}

TEST(Protocol, ParsesAnyCase) {
    EXPECT_EQ(parse_protocol("tCp"), Protocol::tcp);
    EXPECT_EQ(parse_protocol("UDP"), Protocol::udp);
    EXPECT_FALSE(parse_protocol(""));
    EXPECT_FALSE(parse_protocol("icmp"));
    EXPECT_EQ(to_string(Protocol::udp), "UDP");
}

}  // namespace
}  // namespace vipportd::agent
