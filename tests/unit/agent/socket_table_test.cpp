// SocketTable and PortBitmap: the indexed query must give exactly what the claim-by-claim
// matching (socket_claims + AddressScope::covers, kernel.md §1.5/§1.6) gives, for every VIP.

#include "agent/socket_table.hpp"

#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "agent/port_set.hpp"
#include "agent/socket_source.hpp"

namespace vipportd::agent {
namespace {

InetAddress ip(const char* text) { return InetAddress::parse(text).value(); }

netlink::SocketEntry entry(const char* addr,
                           std::uint16_t port,
                           std::uint8_t protocol = 6,
                           std::optional<bool> v6only = std::nullopt) {
    netlink::SocketEntry e;
    e.address = ip(addr);
    e.family = e.address.family;
    e.port = port;
    e.protocol = protocol;
    e.state = protocol == 6 ? 10 : 7;
    e.v6only = v6only;
    e.inode = port;
    return e;
}

// The reference: every claim socket_claims() makes, filtered by covers().
PortSet reference(const std::vector<netlink::SocketEntry>& entries,
                  const InetAddress& vip,
                  Protocol p) {
    PortSet out;
    for (const auto& c : socket_claims(entries, {})) {
        if (c.protocol == p && c.scope.covers(vip)) {
            out.unite(c.ports);
        }
    }
    return out;
}

PortSet table_ports(const SocketTable& t, const InetAddress& vip, Protocol p) {
    PortBitmap bits;
    t.add_ports(vip, p, bits);
    return bits.to_set();
}

SocketTable table_of(const std::vector<netlink::SocketEntry>& entries) {
    std::vector<SocketRecord> records;
    for (const auto& e : entries) {
        records.push_back(SocketRecord::from(e));
    }
    return SocketTable(std::move(records), {});
}

TEST(PortBitmap, RangesAcrossWordBoundariesAndEnds) {
    PortBitmap b;
    b.set(PortRange{0, 0});
    b.set(PortRange{62, 130});
    b.set(PortRange{65530, 65535});
    b.set(7);
    b.set(PortRange{9, 8});  // empty: ignored
    EXPECT_EQ(b.to_set().to_string(), "0,7,62-130,65530-65535");
    PortBitmap all;
    all.set(PortSet::all());
    EXPECT_EQ(all.to_set(), PortSet::all());
    EXPECT_TRUE(PortBitmap{}.to_set().empty());
}

TEST(PortBitmap, AgreesWithPortSetUnionOnRandomRanges) {
    std::mt19937 rng(42);
    for (int round = 0; round < 200; ++round) {
        PortBitmap b;
        PortSet s;
        for (int i = 0; i < 20; ++i) {
            const auto a = static_cast<std::uint16_t>(rng() % 65536);
            const auto len = static_cast<std::uint16_t>(rng() % (i % 3 == 0 ? 3000 : 70));
            const auto last = static_cast<std::uint16_t>(std::min<unsigned>(65535U, a + len));
            b.set(PortRange{a, last});
            s.add(PortRange{a, last});
        }
        ASSERT_EQ(b.to_set(), s) << "round " << round;
    }
}

TEST(SocketTable, BindConflictMatrixAsBucketLookups) {
    const std::vector<netlink::SocketEntry> entries{
        entry("192.0.2.1", 10),            // exact v4
        entry("0.0.0.0", 11),              // v4 wildcard
        entry("::", 12, 6, false),         // dual-stack
        entry("::", 13, 6, true),          // v6only: no IPv4
        entry("::", 14, 6, std::nullopt),  // unknown: assumed dual-stack
        entry("::ffff:192.0.2.1", 15),     // mapped = IPv4 192.0.2.1
        entry("::ffff:0.0.0.0", 16),       // mapped wildcard = all IPv4
        entry("2001:db8::1", 17),          // exact v6
        entry("192.0.2.2", 18),            // another VIP
        entry("192.0.2.1", 53, 17),        // UDP
    };
    const SocketTable t = table_of(entries);
    EXPECT_EQ(table_ports(t, ip("192.0.2.1"), Protocol::tcp).to_string(), "10-12,14-16");
    EXPECT_EQ(table_ports(t, ip("::ffff:192.0.2.1"), Protocol::tcp).to_string(), "10-12,14-16");
    EXPECT_EQ(table_ports(t, ip("192.0.2.2"), Protocol::tcp).to_string(), "11-12,14,16,18");
    EXPECT_EQ(table_ports(t, ip("2001:db8::1"), Protocol::tcp).to_string(), "12-14,17");
    EXPECT_EQ(table_ports(t, ip("2001:db8::2"), Protocol::tcp).to_string(), "12-14");
    EXPECT_EQ(table_ports(t, ip("192.0.2.1"), Protocol::udp).to_string(), "53");
    for (const char* vip : {"192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2"}) {
        for (const Protocol p : {Protocol::tcp, Protocol::udp}) {
            EXPECT_EQ(table_ports(t, ip(vip), p), reference(entries, ip(vip), p)) << vip;
        }
    }
    EXPECT_EQ(t.size(), entries.size());
}

TEST(SocketTable, RandomTablesAgreeWithClaimMatching) {
    const char* addrs[] = {"10.0.0.1", "10.0.0.2",  "0.0.0.0",         "::",
                           "::1",      "fd00::5",   "::ffff:10.0.0.1", "::ffff:0.0.0.0",
                           "10.0.0.3", "127.0.0.1", "::ffff:10.0.0.2"};
    const char* vips[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "fd00::5", "::1"};
    std::mt19937 rng(7);
    for (int round = 0; round < 50; ++round) {
        std::vector<netlink::SocketEntry> entries;
        const int n = static_cast<int>(rng() % 300);
        for (int i = 0; i < n; ++i) {
            const int v6 = static_cast<int>(rng() % 3);
            entries.push_back(entry(addrs[rng() % std::size(addrs)],
                                    static_cast<std::uint16_t>(rng() % 2000), rng() % 2 ? 6 : 17,
                                    v6 == 0   ? std::nullopt
                                    : v6 == 1 ? std::optional<bool>(false)
                                              : std::optional<bool>(true)));
            entries.back().ifindex = rng() % 4 == 0 ? 3 : 0;
        }
        const SocketTable t = table_of(entries);
        for (const char* vip : vips) {
            for (const Protocol p : {Protocol::tcp, Protocol::udp}) {
                ASSERT_EQ(table_ports(t, ip(vip), p), reference(entries, ip(vip), p))
                    << "round " << round << " vip " << vip;
            }
        }
        // claims() is socket_claims() of the same sockets (order may differ only among
        // entries of one group, which fold into one claim).
        ASSERT_EQ(t.claims().size(), socket_claims(entries, {}).size());
    }
}

TEST(SocketTable, ClaimsForFoldsReuseportGroupsAndNamesDevices) {
    auto a = entry("10.0.0.1", 80);
    a.ifindex = 4;
    auto b = a;
    b.inode = 99;  // SO_REUSEPORT sibling
    const auto c = entry("0.0.0.0", 22);
    std::vector<SocketRecord> records{SocketRecord::from(a), SocketRecord::from(b),
                                      SocketRecord::from(c)};
    const SocketTable t(std::move(records), {{4, "eth4"}});
    const auto claims = t.claims_for(ip("10.0.0.1"), Protocol::tcp);
    ASSERT_EQ(claims.size(), 2u);
    const auto& dev = std::get<SocketOrigin>(claims[1].origin);
    EXPECT_EQ(dev.port, 80);
    EXPECT_EQ(dev.count, 2u);
    EXPECT_EQ(dev.device, "eth4");
    EXPECT_EQ(std::get<SocketOrigin>(claims[0].origin).port, 22);
    EXPECT_TRUE(t.claims_for(ip("10.0.0.1"), Protocol::udp).empty());
}

TEST(SocketRecord, KeepsWhatClaimsNeed) {
    auto e = entry("::", 443, 6, true);
    e.freebind = true;
    e.transparent = false;
    e.uid = 1000;
    e.ifindex = 2;
    const auto back = SocketRecord::from(e).entry();
    EXPECT_EQ(back.address, e.address);
    EXPECT_EQ(back.port, 443);
    EXPECT_EQ(back.v6only, std::optional<bool>(true));
    EXPECT_EQ(back.freebind, std::optional<bool>(true));
    EXPECT_EQ(back.uid, 1000u);
    EXPECT_EQ(back.ifindex, 2u);
    EXPECT_EQ(back.inode, 443u);
    EXPECT_FALSE(SocketRecord::from(entry("1.2.3.4", 1)).entry().v6only.has_value());
    EXPECT_LE(sizeof(SocketRecord), 40u);  // the per-socket cost the RSS budget assumes
}

}  // namespace
}  // namespace vipportd::agent
