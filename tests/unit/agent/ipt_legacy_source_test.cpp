// IptLegacySource and the legacy rule interpreter over recorded kernel blobs
// (tests/fixtures/ipt/*.txt; the scenarios and their expected claims are in ipt_scenarios.hpp and
// are also checked against the live kernel by tests/netns/ipt_legacy_test.cpp).

#include "agent/ipt_legacy_source.hpp"

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "netlink/ipt_legacy.hpp"
#include "tests/unit/agent/ipt_scenarios.hpp"

namespace vipportd::agent {
namespace {

namespace ipt = netlink::ipt;
using netlink::Errc;
using test::ipt::describe;

const std::filesystem::path kDir = std::filesystem::path(VIPPORTD_FIXTURES) / "ipt";

std::unique_ptr<ipt::ReplayIptSource> replay(const std::string& name) {
    return ipt::ReplayIptSource::load(kDir / (name + ".txt")).value();
}

std::string fixture_text(const std::string& name) {
    std::FILE* f = std::fopen((kDir / (name + ".txt")).c_str(), "r");
    std::string s;
    char buf[4096];
    std::size_t n = 0;
    while (f != nullptr && (n = std::fread(buf, 1, sizeof buf, f)) > 0) {
        s.append(buf, n);
    }
    if (f != nullptr) {
        std::fclose(f);
    }
    return s;
}

class IptLegacyScenario : public ::testing::TestWithParam<test::ipt::Scenario> {};

TEST_P(IptLegacyScenario, RecordedBlobsGiveExactClaims) {
    const auto& s = GetParam();
    IptLegacySource source(replay(s.name));
    EXPECT_EQ(source.name(), "iptables-legacy");
    auto claims = source.collect();
    ASSERT_TRUE(claims) << netlink::to_string(claims.error());
    EXPECT_EQ(describe(*claims), s.claims);
    for (const auto& c : *claims) {
        const auto& o = std::get<RuleOrigin>(c.origin);
        EXPECT_EQ(o.at().source, "iptables-legacy");
        EXPECT_EQ(c.certainty == Certainty::uncertain, !o.reason.empty());
    }
}

INSTANTIATE_TEST_SUITE_P(Fixtures,
                         IptLegacyScenario,
                         ::testing::ValuesIn(test::ipt::scenarios()),
                         [](const auto& p) { return p.param.name; });

// What a ZStack caller asks: the used ports of one VIP, from the claims of zstack_nat.
TEST(IptLegacySource, ZstackVipsUsedPorts) {
    IptLegacySource source(replay("zstack_nat"));
    Snapshot snap;
    snap.claims = source.collect().value();
    const auto vip = [](const char* a) { return InetAddress::parse(a).value(); };
    // PF TCP 80, OUTPUT 81 and TPROXY 443 on 1.2.3.4; PF UDP 1000-2000
    EXPECT_EQ(snap.used_ports(vip("1.2.3.4"), Protocol::tcp).to_string(), "80-81,443");
    EXPECT_EQ(snap.used_ports(vip("1.2.3.4"), Protocol::udp).to_string(), "1000-2000");
    // EIP: the whole IP
    EXPECT_EQ(snap.used_ports(vip("1.2.3.5"), Protocol::tcp), PortSet::range(1, 65535));
    EXPECT_EQ(snap.used_ports(vip("1.2.3.5"), Protocol::udp), PortSet::range(1, 65535));
    // DNS REDIRECT
    EXPECT_EQ(snap.used_ports(vip("1.2.3.6"), Protocol::udp).to_string(), "53");
    EXPECT_TRUE(snap.used_ports(vip("1.2.3.6"), Protocol::tcp).empty());
    // -m set: claimed (widened), but uncertain
    const auto set_claims = snap.claims_for(vip("1.2.3.7"), Protocol::tcp);
    ASSERT_EQ(set_claims.size(), 1u);
    EXPECT_EQ(set_claims[0].certainty, Certainty::uncertain);
    // the SNAT in POSTROUTING claims nothing
    EXPECT_TRUE(snap.used_ports(vip("10.0.0.9"), Protocol::tcp).empty());
}

TEST(IptLegacySource, UnchangedBlobsAreNotReinterpreted) {
    IptLegacySource source(replay("zstack_nat"));  // replays repeat their last answer
    const auto first = source.collect().value();
    EXPECT_EQ(source.interpretations(), 2u);  // ip nat, ip mangle
    const auto second = source.collect().value();
    EXPECT_EQ(source.interpretations(), 2u);
    EXPECT_EQ(describe(second), describe(first));
}

TEST(IptLegacySource, ChangedBlobIsReinterpreted) {
    // Two recordings of ip nat, one after the other: the second collect() sees the second.
    const auto a = replay("kernel_md_3_2");
    const auto b = replay("chains");
    const auto ia = a->get_info(netlink::Family::v4, "nat").value();
    const auto ea = a->get_entries(netlink::Family::v4, "nat", ia.size).value();
    const auto ib = b->get_info(netlink::Family::v4, "nat").value();
    const auto eb = b->get_entries(netlink::Family::v4, "nat", ib.size).value();
    struct Sequence final : ipt::IptSource {
        std::vector<std::pair<ipt::TableInfo, std::vector<std::uint8_t>>> tables;
        std::size_t reads = 0;  // GET_INFO calls; two per read_table
        netlink::Result<std::vector<std::string>> table_names(netlink::Family f) override {
            return f == netlink::Family::v4 ? std::vector<std::string>{"nat"}
                                            : std::vector<std::string>{};
        }
        netlink::Result<ipt::TableInfo> get_info(netlink::Family, std::string_view) override {
            return tables[std::min(reads++ / 2, tables.size() - 1)].first;
        }
        netlink::Result<std::vector<std::uint8_t>> get_entries(netlink::Family,
                                                               std::string_view,
                                                               std::uint32_t) override {
            return tables[std::min(reads / 2, tables.size() - 1)].second;
        }
    };
    auto seq = std::make_unique<Sequence>();
    seq->tables = {{ia, ea}, {ia, ea}, {ib, eb}};
    IptLegacySource source(std::move(seq));
    EXPECT_EQ(source.collect().value().size(), 3u);
    EXPECT_EQ(source.interpretations(), 1u);
    EXPECT_EQ(source.collect().value().size(), 3u);
    EXPECT_EQ(source.interpretations(), 1u);
    EXPECT_EQ(source.collect().value().size(), 8u);  // the chains scenario
    EXPECT_EQ(source.interpretations(), 2u);
}

TEST(IptLegacySource, NoTablesIsNoClaims) {
    // names files absent (x_tables not loaded) or listing only other tables.
    auto src = ipt::ReplayIptSource::parse("names ip -\nnames ip6 filter raw\n").value();
    IptLegacySource source(std::move(src));
    auto claims = source.collect();
    ASSERT_TRUE(claims) << netlink::to_string(claims.error());
    EXPECT_TRUE(claims->empty());
    EXPECT_EQ(source.interpretations(), 0u);
}

TEST(IptLegacySource, ErrorsNameTableAndCall) {
    auto src = ipt::ReplayIptSource::parse("names ip nat\nerror info ip nat 1\n").value();
    IptLegacySource eperm(std::move(src));
    auto r = eperm.collect();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::system);
    EXPECT_EQ(r.error().sys_errno, 1);
    EXPECT_EQ(netlink::to_string(r.error()),
              "iptables-legacy: nat: IPT_SO_GET_INFO: Operation not permitted");

    src = ipt::ReplayIptSource::parse("error names ip - 13\n").value();
    IptLegacySource eacces(std::move(src));
    r = eacces.collect();
    ASSERT_FALSE(r);
    EXPECT_EQ(netlink::to_string(r.error()),
              "iptables-legacy: open /proc/self/net/ip_tables_names: Permission denied");

    src = ipt::ReplayIptSource::parse(
              "names ip -\nnames ip6 mangle\nerror entries ip6 mangle 1\n"
              "info ip6 mangle " +
              std::string(168, '0') + "\n")
              .value();
    IptLegacySource entries(std::move(src));
    r = entries.collect();
    ASSERT_FALSE(r);
    EXPECT_EQ(netlink::to_string(r.error()),
              "iptables-legacy: mangle: IP6T_SO_GET_ENTRIES: Operation not permitted");
}

// A jump back into a chain on the call stack: the kernel refuses to load this
// (mark_source_chains), so it can only be corrupt input; it must end in an error.
TEST(IptLegacySource, JumpLoopIsAnError) {
    auto src = replay("kernel_md_3_2");
    const auto info = src->get_info(netlink::Family::v4, "nat").value();
    auto entries = src->get_entries(netlink::Family::v4, "nat", info.size).value();
    // PREROUTING rule 2 (offset 240) jumps to SVC (1472); make it jump to itself.
    std::uint16_t target_offset = 0;
    std::memcpy(&target_offset, entries.data() + 240 + 88, 2);
    const std::int32_t self = 240;
    std::memcpy(entries.data() + 240 + target_offset + 32, &self, 4);
    auto table = ipt::parse_ipt_blob(netlink::Family::v4, info, entries);
    ASSERT_TRUE(table) << netlink::to_string(table.error());
    auto claims = interpret_ipt_table(*table);
    ASSERT_FALSE(claims);
    EXPECT_EQ(claims.error().code, Errc::malformed);
    EXPECT_EQ(claims.error().detail, "ip nat: jump loop: PREROUTING -> PREROUTING");
}

TEST(IptLegacySource, OtherTablesClaimNothing) {
    auto src = replay("kernel_md_3_2");
    const auto info = src->get_info(netlink::Family::v4, "nat").value();
    const auto entries = src->get_entries(netlink::Family::v4, "nat", info.size).value();
    auto table = ipt::parse_ipt_blob(netlink::Family::v4, info, entries).value();
    table.name = "filter";
    EXPECT_TRUE(interpret_ipt_table(table).value().empty());
}

// Unit-level rule shapes the recorded scenarios do not cover, on a hand-built table.
ipt::Rule rule(const char* dst, const char* mask) {
    ipt::Rule r;
    r.dst = netlink::InetAddress::parse(dst).value();
    r.dmsk = netlink::InetAddress::parse(mask).value();
    r.src = r.smsk = netlink::InetAddress::any(netlink::Family::v4);
    return r;
}

ipt::Table one_chain(std::vector<ipt::Rule> rules) {
    ipt::Table t;
    t.name = "nat";
    ipt::Chain c;
    c.name = "PREROUTING";
    c.builtin = true;
    c.hooks = 1;
    c.rules = std::move(rules);
    t.chains.push_back(std::move(c));
    t.hook_chain[0] = 0;
    return t;
}

ipt::Target dnat_to_10_0_0_1() {
    ipt::Target tg;
    tg.kind = ipt::Target::Kind::named;
    tg.name = "DNAT";
    tg.revision = 2;
    // nf_nat_range2: flags MAP_IPS, 10.0.0.1
    tg.data.assign(44, 0);
    tg.data[0] = 1;
    for (const std::size_t off : {std::size_t{4}, std::size_t{20}}) {
        tg.data[off] = 10;
        tg.data[off + 3] = 1;
    }
    return tg;
}

TEST(IptLegacySource, NonContiguousMaskWidens) {
    ipt::Rule r = rule("1.0.3.0", "255.0.255.0");
    r.target = dnat_to_10_0_0_1();
    const auto claims = interpret_ipt_table(one_chain({r})).value();
    ASSERT_EQ(claims.size(), 2u);
    EXPECT_EQ(describe(claims[0]),
              "ip nat PREROUTING#1 DNAT '10.0.0.1' TCP 1-65535 @ 1.0.0.0-1.255.255.255 uncertain "
              "path=PREROUTING reason='ip nat PREROUTING rule 1: non-contiguous destination mask "
              "255.0.255.0'");
}

TEST(IptLegacySource, UnknownTargetWidensTheRulesAfterIt) {
    ipt::Rule mark = rule("0.0.0.0", "0.0.0.0");
    mark.target.kind = ipt::Target::Kind::named;
    mark.target.name = "MARK";  // continues: exact
    ipt::Rule weird = mark;
    weird.target.name = "FROBNICATE";  // unknown: assumed to continue, but said so
    ipt::Rule dnat = rule("1.2.3.4", "255.255.255.255");
    dnat.proto = 17;
    dnat.target = dnat_to_10_0_0_1();
    auto claims = interpret_ipt_table(one_chain({mark, dnat})).value();
    ASSERT_EQ(claims.size(), 1u);
    EXPECT_EQ(claims[0].certainty, Certainty::exact);
    claims = interpret_ipt_table(one_chain({weird, dnat})).value();
    ASSERT_EQ(claims.size(), 1u);
    EXPECT_EQ(describe(claims[0]),
              "ip nat PREROUTING#2 DNAT '10.0.0.1' UDP 1-65535 @ 1.2.3.4 uncertain "
              "path=PREROUTING reason='ip nat PREROUTING rule 1: target 'FROBNICATE' not "
              "interpreted, assumed to continue'");
}

TEST(IptLegacySource, SourceSideTestsKeepClaimsExactButDoNotSubtract) {
    // -s 10.0.0.0/8 -d 1.2.3.4 -p tcp -j ACCEPT, then -d 1.2.3.4 -j DNAT: packets from elsewhere
    // still reach the DNAT on every port.
    ipt::Rule accept = rule("1.2.3.4", "255.255.255.255");
    accept.src = netlink::InetAddress::parse("10.0.0.0").value();
    accept.smsk = netlink::InetAddress::parse("255.0.0.0").value();
    accept.proto = 6;
    accept.target.kind = ipt::Target::Kind::verdict;
    accept.target.verdict = ipt::kVerdictAccept;
    ipt::Rule dnat = rule("1.2.3.4", "255.255.255.255");
    dnat.target = dnat_to_10_0_0_1();
    const auto claims = interpret_ipt_table(one_chain({accept, dnat})).value();
    ASSERT_EQ(claims.size(), 2u);
    EXPECT_EQ(claims[0].ports, PortSet::range(1, 65535));
    EXPECT_EQ(claims[0].certainty, Certainty::exact);
}

TEST(IptLegacySource, TruncatedTargetBlobStillClaimsUncertain) {
    ipt::Rule dnat = rule("1.2.3.4", "255.255.255.255");
    dnat.proto = 6;
    dnat.target = dnat_to_10_0_0_1();
    dnat.target.data.resize(20);
    const auto claims = interpret_ipt_table(one_chain({dnat})).value();
    ASSERT_EQ(claims.size(), 1u);
    EXPECT_EQ(describe(claims[0]),
              "ip nat PREROUTING#1 DNAT '' TCP 1-65535 @ 1.2.3.4 uncertain path=PREROUTING "
              "reason='ip nat PREROUTING rule 1: target DNAT: DNAT rev 2 IPv4 (nf_nat_range2): "
              "blob of 20 bytes, need 44'");
}

TEST(IptLegacySource, FixtureFilesCarryTheirCommands) {
    for (const auto& s : test::ipt::scenarios()) {
        const std::string text = fixture_text(s.name);
        for (const auto& c : s.commands) {
            EXPECT_NE(text.find(c), std::string::npos) << s.name << ": " << c;
        }
        EXPECT_NE(text.find("Linux "), std::string::npos);
    }
}

}  // namespace
}  // namespace vipportd::agent

namespace vipportd::agent {
namespace {

// kube-proxy-like: hundreds of exact single-service rules split the remaining paths; the pieces
// are merged past kMaxPaths without losing the exact claims of later services.
TEST(IptLegacySource, ManyServicesStayBoundedAndExact) {
    std::vector<ipt::Rule> rules;
    for (int i = 0; i < 150; ++i) {
        ipt::Rule r = rule(("10.96.0." + std::to_string(i)).c_str(), "255.255.255.255");
        r.proto = 6;
        ipt::Match m;
        m.name = "tcp";
        // xt_tcp: spts 0-65535, dpts 1000+i
        m.data = {0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0};
        const auto port = static_cast<std::uint16_t>(1000 + i);
        std::memcpy(m.data.data() + 4, &port, 2);
        std::memcpy(m.data.data() + 6, &port, 2);
        r.matches.push_back(m);
        r.target = dnat_to_10_0_0_1();
        rules.push_back(std::move(r));
    }
    ipt::Rule late = rule("10.96.1.1", "255.255.255.255");
    late.target = dnat_to_10_0_0_1();
    rules.push_back(late);
    ipt::Rule any = rule("0.0.0.0", "0.0.0.0");
    any.proto = 17;
    any.target = dnat_to_10_0_0_1();
    rules.push_back(any);
    const auto claims = interpret_ipt_table(one_chain(std::move(rules))).value();
    // 150 TCP claims, 2 for 10.96.1.1 (TCP, UDP), 1 UDP claim for the catch-all
    ASSERT_EQ(claims.size(), 153u);
    for (std::size_t i = 0; i < 152; ++i) {
        EXPECT_EQ(claims[i].certainty, Certainty::exact) << describe(claims[i]);
    }
    EXPECT_EQ(describe(claims[149]),
              "ip nat PREROUTING#150 DNAT '10.0.0.1' TCP 1149 @ 10.96.0.149 exact "
              "path=PREROUTING");
    EXPECT_EQ(describe(claims[150]),
              "ip nat PREROUTING#151 DNAT '10.0.0.1' TCP 1-65535 @ 10.96.1.1 exact "
              "path=PREROUTING");
    // UDP was never split: every address but 10.96.1.1, exact.
    EXPECT_EQ(describe(claims[152]),
              "ip nat PREROUTING#152 DNAT '10.0.0.1' UDP 1-65535 @ 0.0.0.0-10.96.1.0, "
              "10.96.1.2-255.255.255.255 exact path=PREROUTING");
}

}  // namespace
}  // namespace vipportd::agent
