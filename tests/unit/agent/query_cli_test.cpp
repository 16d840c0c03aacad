// `vipportd query`: argument parsing, the table, and the exits that need no kernel scan.

#include "agent/query_cli.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace vipportd::agent {
namespace {

using Args = std::vector<std::string_view>;

QueryOptions parsed(Args args) {
    auto r = parse_query_args(args);
    if (const auto* e = std::get_if<std::string>(&r)) {
        ADD_FAILURE() << "unexpected usage error: " << *e;
        return {};
    }
    return std::get<QueryOptions>(std::move(r));
}

std::string error_of(Args args) {
    auto r = parse_query_args(args);
    if (const auto* e = std::get_if<std::string>(&r)) {
        return *e;
    }
    ADD_FAILURE() << "expected a usage error";
    return {};
}

TEST(QueryArgs, DefaultsToBothProtocolsTableWithoutExplanations) {
    const auto o = parsed({"vip-1"});
    EXPECT_EQ(o.target, "vip-1");
    EXPECT_FALSE(o.all);
    EXPECT_EQ(o.protocols, (std::vector<Protocol>{Protocol::tcp, Protocol::udp}));
    EXPECT_FALSE(o.explain);
    EXPECT_FALSE(o.json);
    EXPECT_FALSE(o.config);
}

TEST(QueryArgs, EveryOptionInBothSpellings) {
    const auto o =
        parsed({"--protocol", "TCP", "--explain", "1.2.3.4", "--json", "--config", "/etc/v.toml"});
    EXPECT_EQ(o.target, "1.2.3.4");
    EXPECT_EQ(o.protocols, (std::vector<Protocol>{Protocol::tcp}));
    EXPECT_TRUE(o.explain);
    EXPECT_TRUE(o.json);
    EXPECT_EQ(o.config, "/etc/v.toml");
    const auto e = parsed({"--protocol=udp", "--config=x.toml", "--all"});
    EXPECT_TRUE(e.all);
    EXPECT_EQ(e.protocols, (std::vector<Protocol>{Protocol::udp}));
    EXPECT_EQ(e.config, "x.toml");
    EXPECT_EQ(parsed({"--protocol", "All", "v"}).protocols,
              (std::vector<Protocol>{Protocol::tcp, Protocol::udp}));
    EXPECT_TRUE(parsed({"--help"}).help);
    // --help does not hide a mistake elsewhere on the line.
    EXPECT_EQ(error_of({"-h", "--bogus"}), "unknown option '--bogus' (see vipportd query --help)");
}

TEST(QueryArgs, UsageErrorsArePrecise) {
    EXPECT_EQ(error_of({}), "which VIP? give a registered uuid or an address, or --all");
    EXPECT_EQ(error_of({"a", "b"}),
              "more than one VIP given ('a', 'b'); use --all for every registered VIP");
    EXPECT_EQ(error_of({"--all", "a"}), "give either a VIP or --all, not both");
    EXPECT_EQ(error_of({"a", "--protocol"}), "option --protocol needs a value (tcp, udp or all)");
    EXPECT_EQ(error_of({"a", "--protocol", "sctp"}), "unknown protocol 'sctp' (tcp, udp or all)");
    EXPECT_EQ(error_of({"a", "--protocol="}), "unknown protocol '' (tcp, udp or all)");
    EXPECT_EQ(error_of({"a", "--config"}), "option --config needs a file");
    EXPECT_EQ(error_of({"a", "--config="}), "option --config needs a file");
    EXPECT_EQ(error_of({"a", "--verbose"}),
              "unknown option '--verbose' (see vipportd query --help)");
    EXPECT_EQ(error_of({"a", "--protocolx"}),
              "unknown option '--protocolx' (see vipportd query --help)");
    EXPECT_EQ(error_of({""}), "the VIP is empty (expected a registered uuid or an address)");
    // Terminal control bytes in what is echoed back are escaped.
    EXPECT_EQ(error_of({"a", "--x\x1b[2J"}),
              "unknown option '--x\\x1b[2J' (see vipportd query --help)");
}

ClaimsReport sample_report() {
    ClaimsReport r;
    r.vip = Vip{"vip-1", *InetAddress::parse("1.2.3.4"), ""};
    r.sequence = 3;
    r.taken = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
    ProtocolClaims tcp;
    tcp.protocol = Protocol::tcp;
    tcp.used = PortSet{{22, 22}, {80, 80}, {8000, 8010}};
    Claim s;
    s.protocol = Protocol::tcp;
    s.ports = PortSet::single(22);
    s.scope = AddressScope::all(Family::v4);
    SocketOrigin so;
    so.address = InetAddress::any(Family::v4);
    so.port = 22;
    so.state = 10;
    so.inode = 1001;
    s.origin = so;
    tcp.claims.push_back(s);
    Claim rule;
    rule.protocol = Protocol::tcp;
    rule.ports = PortSet{{80, 80}, {8000, 8010}};
    rule.scope = AddressScope::exact(*InetAddress::parse("1.2.3.4"));
    rule.certainty = Certainty::uncertain;
    RuleOrigin ro;
    ro.site = std::make_shared<const RuleSite>(
        RuleSite{"nftables", "ip", "nat", "prerouting", {"prerouting"}});
    ro.handle = 6;
    ro.kind = "dnat";
    ro.target = "10.0.0.5:8080";
    ro.comment = "web\x1b[31m";
    ro.reason = "expression 'ct' not interpreted";
    rule.origin = ro;
    tcp.claims.push_back(rule);
    r.protocols.push_back(tcp);
    ProtocolClaims udp;
    udp.protocol = Protocol::udp;
    r.protocols.push_back(udp);
    r.processes[1001] = ProcessInfo{612, "sshd", "/usr/sbin/sshd"};
    return r;
}

TEST(QueryTable, AlignedColumnsRangesCollapsedNoColourOffATerminal) {
    const std::string t = render_table(sample_report(), TableStyle{false, false});
    EXPECT_EQ(t,
              "VIP 1.2.3.4  uuid vip-1  netns (own)  scan #3 2023-11-14T22:13:20Z\n"
              "PROTO  PORTS         CLAIM   HOLDER     DETAIL\n"
              "TCP    22            socket  sshd[612]  0.0.0.0:22 LISTEN uid 0 inode 1001\n"
              "TCP    80,8000-8010  dnat    nftables   ip nat prerouting handle 6 -> "
              "10.0.0.5:8080 \"web\\x1b[31m\" (uncertain)\n"
              "used TCP: 22,80,8000-8010\n"
              "used UDP: none\n")
        << t;
}

TEST(QueryTable, ExplainAddsOneLinePerClaimAndColourOnlyWhenAsked) {
    const std::string plain = render_table(sample_report(), TableStyle{false, true});
    EXPECT_NE(plain.find("\n    TCP 22: socket 0.0.0.0:22 LISTEN held by sshd (pid 612)"),
              std::string::npos)
        << plain;
    EXPECT_NE(plain.find("\n    TCP 80,8000-8010: nftables ip nat prerouting handle 6: dnat"),
              std::string::npos)
        << plain;
    EXPECT_EQ(plain.find('\x1b'), std::string::npos) << "no raw escape byte without colour";
    const std::string coloured = render_table(sample_report(), TableStyle{true, true});
    EXPECT_NE(coloured.find("\x1b[1mPROTO"), std::string::npos);
    EXPECT_NE(coloured.find("\x1b[33mTCP    80"), std::string::npos);  // uncertain in yellow
}

TEST(QueryTable, EmptyVipSaysSo) {
    ClaimsReport r;
    r.vip = Vip{"10.9.9.9", *InetAddress::parse("10.9.9.9"), "blue"};
    r.protocols.push_back(ProtocolClaims{Protocol::udp, {}, {}});
    const std::string t = render_table(r, TableStyle{});
    EXPECT_NE(t.find("VIP 10.9.9.9  netns blue  scan #0"), std::string::npos) << t;
    EXPECT_NE(t.find("\nno used ports\nused UDP: none\n"), std::string::npos) << t;
}

TEST(QueryColour, NoColorDisablesIt) {
    ::setenv("NO_COLOR", "1", 1);
    EXPECT_FALSE(use_color(1));
    ::unsetenv("NO_COLOR");
    // A pipe is not a terminal.
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    EXPECT_FALSE(use_color(fds[1]));
    ::close(fds[0]);
    ::close(fds[1]);
}

class QueryRun : public ::testing::Test {
  protected:
    int run(Args args) {
        out.str({});
        err.str({});
        const QueryRenderers renderers{
            [](const ClaimsReport&) { return std::string("{}"); },
            [](std::span<const ClaimsReport>) { return std::string("[]"); }};
        return run_query(args, renderers, out, err, false);
    }
    std::ostringstream out;
    std::ostringstream err;
};

TEST_F(QueryRun, UsageErrorIsExit2OnStderr) {
    EXPECT_EQ(run({"--protocol", "icmp", "x"}), 2);
    EXPECT_EQ(err.str(), "vipportd query: unknown protocol 'icmp' (tcp, udp or all)\n");
    EXPECT_EQ(out.str(), "");
}

TEST_F(QueryRun, HelpIsExit0OnStdout) {
    EXPECT_EQ(run({"--help"}), 0);
    EXPECT_EQ(out.str(), query_usage());
    EXPECT_NE(out.str().find("--protocol"), std::string::npos);
    EXPECT_EQ(err.str(), "");
}

TEST_F(QueryRun, UnknownVipIsExit2WithTheConfigNamed) {
    const auto dir =
        std::filesystem::temp_directory_path() / ("vipportd-query-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto file = dir / "v.toml";
    // state_dir = "": no registrations (the host's /var/lib/vipportd is none of this test's).
    std::ofstream(file) << "state_dir = \"\"\n[[vip]]\nuuid = \"aaaa\"\nip = \"10.1.2.3\"\n";
    EXPECT_EQ(run({"bbbb", "--config", file.string()}), 2);
    EXPECT_EQ(err.str(),
              "vipportd query: unknown VIP 'bbbb': not a registered uuid (1 VIPs; "
              "configuration " +
                  file.string() + ") and not a unicast IPv4/IPv6 address\n");
    EXPECT_EQ(out.str(), "");
    std::filesystem::remove_all(dir);
}

TEST_F(QueryRun, BadConfigIsExit2WithFileAndLine) {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("vipportd-query-bad-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto file = dir / "bad.toml";
    std::ofstream(file) << "[[vip]]\nuuid = \"aaaa\"\nip = \"not-an-ip\"\n";
    EXPECT_EQ(run({"aaaa", "--config", file.string()}), 2);
    EXPECT_TRUE(err.str().starts_with("vipportd query: " + file.string() + ":3:")) << err.str();
    EXPECT_EQ(run({"aaaa", "--config", (dir / "missing.toml").string()}), 2);
    EXPECT_NE(err.str().find("missing.toml"), std::string::npos) << err.str();
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vipportd::agent
