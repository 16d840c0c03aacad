#include "agent/model.hpp"

#include <string>

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

// normalize() works in place: drops inverted and mixed-family ranges, unmaps, sorts and merges
// overlapping or adjacent ranges of one family only.
TEST(AddressScope, FromRangesDropsInvalidThenSortsAndMerges) {
    const auto s = AddressScope::from_ranges({
        {ip("10.0.0.9"), ip("10.0.0.7")},                // inverted: dropped
        {ip("2001:db8::5"), ip("2001:db8::9")},          //
        {ip("10.0.0.4"), ip("10.0.0.6")},                //
        {ip("1.2.3.4"), ip("2001:db8::1")},              // mixed families: dropped
        {ip("::ffff:10.0.0.1"), ip("::ffff:10.0.0.3")},  // mapped: becomes IPv4, adjacent to .4
        {ip("2001:db8::1"), ip("2001:db8::6")},          // overlaps the other IPv6 range
        {ip("255.255.255.255"), ip("255.255.255.255")},
    });
    EXPECT_EQ(s.to_string(), "10.0.0.1-10.0.0.6, 255.255.255.255, 2001:db8::1-2001:db8::9");
    EXPECT_EQ(s.ranges().size(), 3U);
    EXPECT_TRUE(AddressScope::from_ranges({{ip("10.0.0.2"), ip("10.0.0.1")}}).empty());
    EXPECT_TRUE(AddressScope::from_ranges({}).empty());
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

// used_ports_remembered(): the same answers, computed once per (vip, protocol) of a published
// snapshot; a copy of a snapshot starts without them; past kMaxEntries answers are computed but
// not kept.
TEST(Snapshot, RemembersAnswersOfAPublishedSnapshot) {
    Snapshot snap;
    snap.claims.push_back({Protocol::tcp, PortSet::single(80), AddressScope::exact(ip("1.2.3.4")),
                           Certainty::exact, SocketOrigin{}});
    EXPECT_EQ(snap.used_ports_remembered(ip("1.2.3.4"), Protocol::tcp).to_string(), "80");
    EXPECT_EQ(snap.used_ports_remembered(ip("1.2.3.4"), Protocol::udp).to_string(), "");
    // Published snapshots never change; this one does, to show the answer is the remembered one.
    snap.claims.push_back({Protocol::tcp, PortSet::single(22), AddressScope::all(Family::v4),
                           Certainty::exact, SocketOrigin{}});
    EXPECT_EQ(snap.used_ports_remembered(ip("1.2.3.4"), Protocol::tcp).to_string(), "80");
    EXPECT_EQ(snap.used_ports(ip("1.2.3.4"), Protocol::tcp).to_string(), "22,80");
    const Snapshot copy = snap;
    EXPECT_EQ(copy.used_ports_remembered(ip("1.2.3.4"), Protocol::tcp).to_string(), "22,80");

    PortsMemo memo;
    int computed = 0;
    const auto compute = [&] {
        ++computed;
        return PortSet::single(7);
    };
    for (std::size_t i = 0; i <= PortsMemo::kMaxEntries; ++i) {
        const auto a = InetAddress::parse("10.0.0." + std::to_string(i)).value();
        EXPECT_EQ(memo.get(a, Protocol::tcp, compute).to_string(), "7");
    }
    EXPECT_EQ(computed, static_cast<int>(PortsMemo::kMaxEntries) + 1);
    (void)memo.get(ip("10.0.0.0"), Protocol::tcp, compute);  // kept
    EXPECT_EQ(computed, static_cast<int>(PortsMemo::kMaxEntries) + 1);
    const auto last = std::to_string(PortsMemo::kMaxEntries);
    (void)memo.get(InetAddress::parse("10.0.0." + last).value(), Protocol::tcp, compute);  // not
    EXPECT_EQ(computed, static_cast<int>(PortsMemo::kMaxEntries) + 2);
}

// The index only narrows which claims a query visits: with it, every answer (ports and the
// ordered claims) is the one a full scan of the list gives.
TEST(ClaimIndex, AnswersExactlyLikeAFullScan) {
    auto list = std::make_shared<std::vector<Claim>>();
    const auto add = [&](Protocol p, std::uint16_t port, AddressScope scope) {
        list->push_back(
            {p, PortSet::single(port), std::move(scope), Certainty::exact, RuleOrigin{}});
    };
    auto two = AddressScope::exact(ip("10.0.0.1"));
    two.unite(AddressScope::exact(ip("2001:db8::7")));
    add(Protocol::tcp, 1, AddressScope::exact(ip("10.0.0.1")));
    add(Protocol::udp, 2, AddressScope::exact(ip("10.0.0.1")));
    add(Protocol::tcp, 3, AddressScope::prefix(ip("10.0.0.0"), 30));  // 4 addresses: filed
    add(Protocol::tcp, 4, AddressScope::prefix(ip("10.0.0.0"), 24));  // 256: wide
    add(Protocol::tcp, 5, AddressScope::all(Family::v4));
    add(Protocol::tcp, 6, AddressScope::exact(ip("2001:db8::7")));
    add(Protocol::tcp, 7, AddressScope::prefix(ip("2001:db8::"), 127));  // v6 range: wide
    add(Protocol::tcp, 8, two);
    add(Protocol::tcp, 9, AddressScope::exact(ip("255.255.255.255")));
    add(Protocol::udp, 10, AddressScope::all(Family::v6));
    add(Protocol::tcp, 11, AddressScope::exact(ip("10.0.0.1")));  // after wide ones: order kept

    Snapshot indexed;
    indexed.claim_lists.push_back(list);
    indexed.claim_indexes.push_back(std::make_shared<const ClaimIndex>(*list));
    Snapshot scanned;
    scanned.claim_lists.push_back(list);
    const auto ports_of = [](const std::vector<Claim>& claims) {
        std::string out;
        for (const auto& c : claims) {
            out += c.ports.to_string() + " ";
        }
        return out;
    };
    for (const char* a :
         {"10.0.0.1", "::ffff:10.0.0.1", "10.0.0.3", "10.0.0.4", "10.0.0.200", "10.0.1.1",
          "2001:db8::7", "2001:db8::6", "2001:db8::8", "255.255.255.255", "::"}) {
        for (const Protocol p : {Protocol::tcp, Protocol::udp}) {
            EXPECT_EQ(indexed.used_ports(ip(a), p), scanned.used_ports(ip(a), p)) << a;
            EXPECT_EQ(ports_of(indexed.claims_for(ip(a), p)),
                      ports_of(scanned.claims_for(ip(a), p)))
                << a;
        }
    }
    EXPECT_EQ(indexed.used_ports(ip("10.0.0.1"), Protocol::tcp).to_string(), "1,3-5,8,11");
    EXPECT_EQ(ports_of(indexed.claims_for(ip("10.0.0.1"), Protocol::tcp)), "1 3 4 5 8 11 ");
    EXPECT_EQ(indexed.used_ports(ip("2001:db8::7"), Protocol::tcp).to_string(), "6,8");
    EXPECT_EQ(indexed.used_ports(ip("2001:db8::1"), Protocol::tcp).to_string(), "7");
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
