// ClaimsReport: the claims of one VIP with their owners; port ranges, state names, explanations.

#include "agent/claims_report.hpp"

#include <gtest/gtest.h>

namespace vipportd::agent {
namespace {

InetAddress ip(std::string_view text) { return *InetAddress::parse(text); }

Claim socket_claim(Protocol p,
                   std::string_view address,
                   std::uint16_t port,
                   std::uint64_t inode,
                   std::optional<bool> v6only = std::nullopt) {
    Claim c;
    c.protocol = p;
    c.ports = PortSet::single(port);
    SocketOrigin o;
    o.address = ip(address);
    o.family = o.address.family;
    o.port = port;
    o.state = p == Protocol::tcp ? 10 : 7;
    o.inode = inode;
    o.v6only = v6only;
    if (o.address.is_unspecified()) {
        c.scope = AddressScope::all(o.family);
        if (o.family == Family::v6 && v6only != true) {
            c.scope.unite(AddressScope::all(Family::v4));
        }
    } else {
        c.scope = AddressScope::exact(o.address);
    }
    if (o.family == Family::v6 && o.address.is_unspecified() && !v6only) {
        c.certainty = Certainty::uncertain;
    }
    c.origin = o;
    return c;
}

Claim rule_claim(Protocol p, PortSet ports, AddressScope scope, RuleOrigin o) {
    Claim c;
    c.protocol = p;
    c.ports = std::move(ports);
    c.scope = std::move(scope);
    c.certainty = o.reason.empty() ? Certainty::exact : Certainty::uncertain;
    c.origin = std::move(o);
    return c;
}

RuleOrigin nft_dnat() {
    RuleOrigin o;
    o.site = std::make_shared<const RuleSite>(
        RuleSite{"nftables", "ip", "vipnat", "svc", {"prerouting", "svc"}});
    o.handle = 6;
    o.kind = "dnat";
    o.target = "10.0.0.5:8080";
    o.comment = "web frontend";
    return o;
}

/// Records what it was asked and answers from a fixed map.
class FakeLookup final : public ProcessLookup {
  public:
    ProcessMap find(std::span<const std::uint64_t> inodes,
                    std::chrono::system_clock::time_point seen) override {
        ++calls;
        asked.assign(inodes.begin(), inodes.end());
        last_seen = seen;
        ProcessMap out;
        for (const auto i : inodes) {
            if (auto it = known.find(i); it != known.end()) {
                out.emplace(i, it->second);
            }
        }
        return out;
    }
    ProcessMap known;
    std::vector<std::uint64_t> asked;
    std::chrono::system_clock::time_point last_seen{};
    int calls = 0;
};

TEST(PortRanges, CollapsesRunsAndNeverListsPortZero) {
    EXPECT_TRUE(port_ranges(PortSet{}).empty());
    EXPECT_TRUE(port_ranges(PortSet::single(0)).empty());
    EXPECT_EQ(port_ranges(PortSet::range(0, 5)), (std::vector<std::string>{"1-5"}));
    EXPECT_EQ(port_ranges(PortSet::range(0, 1)), (std::vector<std::string>{"1"}));
    EXPECT_EQ(port_ranges(PortSet{{22, 22}, {80, 90}, {91, 91}, {65535, 65535}}),
              (std::vector<std::string>{"22", "80-91", "65535"}));
    EXPECT_EQ(port_ranges(PortSet::all()), (std::vector<std::string>{"1-65535"}));
}

TEST(SocketStateName, NamesAsSsDoes) {
    EXPECT_EQ(socket_state_name(Protocol::tcp, 10), "LISTEN");
    EXPECT_EQ(socket_state_name(Protocol::tcp, 7), "BOUND");
    EXPECT_EQ(socket_state_name(Protocol::tcp, 1), "ESTAB");
    EXPECT_EQ(socket_state_name(Protocol::udp, 7), "UNCONN");
    EXPECT_EQ(socket_state_name(Protocol::udp, 1), "ESTAB");
    EXPECT_EQ(socket_state_name(Protocol::tcp, 6), "TIME_WAIT");
    EXPECT_EQ(socket_state_name(Protocol::tcp, 200), "UNKNOWN");
}

TEST(ClaimsReport, CollectsClaimsPerProtocolAndOwnersOfSockets) {
    Snapshot snap;
    snap.sequence = 42;
    snap.taken = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
    snap.claims.push_back(socket_claim(Protocol::tcp, "0.0.0.0", 22, 1001));
    snap.claims.push_back(socket_claim(Protocol::tcp, "10.0.0.9", 23, 1002));  // other VIP
    snap.claims.push_back(socket_claim(Protocol::udp, "1.2.3.4", 53, 1003));
    snap.claims.push_back(rule_claim(Protocol::tcp, PortSet{{80, 80}, {8000, 8010}},
                                     AddressScope::exact(ip("1.2.3.4")), nft_dnat()));
    FakeLookup lookup;
    lookup.known[1001] = ProcessInfo{612, "sshd", "/usr/sbin/sshd"};
    const Vip vip{"vip-1", ip("1.2.3.4"), ""};
    const std::vector<Protocol> both{Protocol::udp, Protocol::tcp};
    const auto r = make_claims_report(vip, snap, both, &lookup);

    EXPECT_EQ(r.vip.uuid, "vip-1");
    EXPECT_EQ(r.sequence, 42U);
    EXPECT_EQ(r.taken, snap.taken);
    ASSERT_EQ(r.protocols.size(), 2U);
    EXPECT_EQ(r.protocols[0].protocol, Protocol::udp);  // the order asked for
    EXPECT_EQ(r.protocols[0].used, PortSet::single(53));
    ASSERT_EQ(r.protocols[0].claims.size(), 1U);
    EXPECT_EQ(r.protocols[1].used, (PortSet{{22, 22}, {80, 80}, {8000, 8010}}));
    ASSERT_EQ(r.protocols[1].claims.size(), 2U);
    EXPECT_TRUE(std::holds_alternative<SocketOrigin>(r.protocols[1].claims[0].origin));
    EXPECT_EQ(std::get<RuleOrigin>(r.protocols[1].claims[1].origin).comment, "web frontend");
    // One lookup for every socket claim of the VIP, with the snapshot's time.
    EXPECT_EQ(lookup.calls, 1);
    EXPECT_EQ(lookup.asked, (std::vector<std::uint64_t>{1003, 1001}));
    EXPECT_EQ(lookup.last_seen, snap.taken);
    ASSERT_EQ(r.processes.size(), 1U);
    EXPECT_EQ(r.processes.at(1001).name, "sshd");
}

TEST(ClaimsReport, NoLookupWithoutSocketsOrWithoutALookup) {
    Snapshot snap;
    snap.claims.push_back(
        rule_claim(Protocol::tcp, PortSet::single(80), AddressScope::all(Family::v4), nft_dnat()));
    FakeLookup lookup;
    const Vip vip{"1.2.3.4", ip("1.2.3.4"), ""};
    const std::vector<Protocol> tcp{Protocol::tcp};
    EXPECT_EQ(make_claims_report(vip, snap, tcp, &lookup).protocols[0].claims.size(), 1U);
    EXPECT_EQ(lookup.calls, 0);
    snap.claims.push_back(socket_claim(Protocol::tcp, "1.2.3.4", 22, 5));
    EXPECT_TRUE(make_claims_report(vip, snap, tcp, nullptr).processes.empty());
}

TEST(UncertaintyReason, SaysWhyOrNothing) {
    const Claim exact = socket_claim(Protocol::tcp, "1.2.3.4", 22, 1);
    EXPECT_EQ(uncertainty_reason(exact), "");
    const Claim unknown_v6only = socket_claim(Protocol::tcp, "::", 22, 1);
    EXPECT_NE(uncertainty_reason(unknown_v6only).find("INET_DIAG_SKV6ONLY"), std::string::npos);
    RuleOrigin o = nft_dnat();
    o.reason = "ip vipnat svc handle 6: expression 'ct' not interpreted";
    const Claim widened =
        rule_claim(Protocol::tcp, PortSet::all(), AddressScope::all(Family::v4), o);
    EXPECT_EQ(uncertainty_reason(widened), o.reason);
}

TEST(Explain, SocketSaysWhoAndWhyTheWildcardCovers) {
    const Vip vip{"vip-1", ip("1.2.3.4"), ""};
    const ProcessInfo sshd{612, "sshd", "/usr/sbin/sshd"};
    EXPECT_EQ(explain(socket_claim(Protocol::tcp, "0.0.0.0", 22, 1001), vip, &sshd),
              "TCP 22: socket 0.0.0.0:22 LISTEN held by sshd (pid 612), uid 0, inode 1001; bound "
              "to the IPv4 wildcard 0.0.0.0, which holds the port on every IPv4 address");
    EXPECT_EQ(explain(socket_claim(Protocol::udp, "::", 53, 7, false), vip, nullptr),
              "UDP 53: socket [::]:53 UNCONN held by an unknown process, uid 0, inode 7; bound to "
              ":: without IPV6_V6ONLY (dual-stack), which holds the port on every IPv4 and IPv6 "
              "address");
    const std::string unknown = explain(socket_claim(Protocol::tcp, "::", 80, 8), vip, nullptr);
    EXPECT_NE(unknown.find("; uncertain: IPV6_V6ONLY unknown"), std::string::npos) << unknown;
    EXPECT_NE(explain(socket_claim(Protocol::tcp, "::ffff:1.2.3.4", 81, 9), vip, nullptr)
                  .find("IPv4-mapped address ::ffff:1.2.3.4 (= 1.2.3.4)"),
              std::string::npos);
}

TEST(Explain, RuleSaysWhichRuleWhatItDoesAndHowItIsReached) {
    const Vip vip{"vip-1", ip("1.2.3.4"), ""};
    const Claim c = rule_claim(Protocol::tcp, PortSet{{80, 80}, {8000, 8010}},
                               AddressScope::exact(ip("1.2.3.4")), nft_dnat());
    EXPECT_EQ(explain(c, vip, nullptr),
              "TCP 80,8000-8010: nftables ip vipnat svc handle 6: dnat to 10.0.0.5:8080 "
              "(comment \"web frontend\"); rewrites packets to 1.2.3.4, "
              "reached via prerouting -> svc");
    RuleOrigin t;
    t.site = std::make_shared<const RuleSite>(
        RuleSite{"iptables-legacy", "ip", "mangle", "PREROUTING", {"PREROUTING"}});
    t.handle = 2;
    t.kind = "TPROXY";
    const Claim tp =
        rule_claim(Protocol::tcp, PortSet::single(9999), AddressScope::all(Family::v4), t);
    EXPECT_EQ(explain(tp, vip, nullptr),
              "TCP 9999: iptables-legacy ip mangle PREROUTING rule 2: TPROXY; diverts "
              "packets to 0.0.0.0/0 (which includes 1.2.3.4)");
}

}  // namespace
}  // namespace vipportd::agent
