// interpret_nft: the recorded scenarios (tests/fixtures/nft/*.txt replayed, claims as in
// nft_scenarios.hpp), then crafted rulesets for what real tools do not easily write: inverted
// sets, masks, deep jumps, loops, unknown expressions, dormant tables, old iptables-nft xt
// matches, limits.

#include "agent/nft_interpreter.hpp"

#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/nft_source.hpp"
#include "netlink/nft_objects.hpp"
#include "netlink/replay_transport.hpp"
#include "tests/unit/agent/ipt_scenarios.hpp"
#include "tests/unit/agent/nft_scenarios.hpp"

namespace vipportd::agent {
namespace {

namespace nft = netlink::nft;
using nft::Expr;
using testing::ElementsAre;
using testing::HasSubstr;
using testing::IsEmpty;

// ---- recorded scenarios ----

class NftScenario : public testing::TestWithParam<test::nft::Scenario> {};

TEST_P(NftScenario, ClaimsFromRecordedDump) {
    const auto& sc = GetParam();
    auto t = netlink::ReplayTransport::open(VIPPORTD_FIXTURES "/nft/" + sc.name + ".txt");
    ASSERT_TRUE(t) << netlink::to_string(t.error());
    NftSource source(std::move(*t), nullptr);
    auto claims = source.collect();
    ASSERT_TRUE(claims) << netlink::to_string(claims.error());
    EXPECT_THAT(test::ipt::describe(*claims), testing::ElementsAreArray(sc.claims));
}

INSTANTIATE_TEST_SUITE_P(Recorded,
                         NftScenario,
                         testing::ValuesIn(test::nft::scenarios()),
                         [](const auto& p) { return p.param.name; });

// ---- a small ruleset builder ----

nft::Bytes ip4(const char* text) {
    const auto a = InetAddress::parse(text).value();
    return nft::Bytes(a.bytes.begin(), a.bytes.begin() + 4);
}
nft::Bytes ip6(const char* text) {
    const auto a = InetAddress::parse(text).value();
    return nft::Bytes(a.bytes.begin(), a.bytes.end());
}
nft::Bytes port(std::uint16_t p) {
    return {static_cast<std::uint8_t>(p >> 8), static_cast<std::uint8_t>(p)};
}
nft::Bytes cat(std::initializer_list<nft::Bytes> parts) {
    nft::Bytes out;
    for (const auto& p : parts) {
        out.insert(out.end(), p.begin(), p.end());
    }
    return out;
}
nft::Bytes pad4(nft::Bytes b) {
    b.resize((b.size() + 3) / 4 * 4, 0);
    return b;
}

Expr daddr4(std::uint32_t reg = 1) {
    return nft::Payload{nft::kPayloadNetworkHeader, 16, 4, reg, {}};
}
Expr daddr6(std::uint32_t reg = 1) {
    return nft::Payload{nft::kPayloadNetworkHeader, 24, 16, reg, {}};
}
Expr l4proto(std::uint32_t reg = 1) { return nft::Meta{nft::kMetaL4proto, reg, {}}; }
Expr dport(std::uint32_t reg = 1) {
    return nft::Payload{nft::kPayloadTransportHeader, 2, 2, reg, {}};
}
Expr cmp(std::uint32_t op, nft::Bytes data, std::uint32_t reg = 1) {
    return nft::Cmp{reg, op, nft::RegData(data)};
}
Expr eq(nft::Bytes data) { return cmp(nft::kCmpEq, std::move(data)); }
Expr lookup(std::string set, std::uint32_t flags = 0, std::optional<std::uint32_t> dreg = {}) {
    return nft::Lookup{std::move(set), 1, dreg, {}, flags};
}
Expr verdict(std::int32_t code, std::string chain = {}) {
    return nft::Immediate{0, nft::Verdict{code, std::move(chain)}};
}
Expr jump(std::string chain) { return verdict(nft::kVerdictJump, std::move(chain)); }
Expr go(std::string chain) { return verdict(nft::kVerdictGoto, std::move(chain)); }
std::vector<Expr> tcp() { return {l4proto(), eq({6})}; }
std::vector<Expr> udp() { return {l4proto(), eq({17})}; }
std::vector<Expr> to_port(std::uint16_t p) { return {dport(), eq(port(p))}; }
std::vector<Expr> to4(const char* a) { return {daddr4(), eq(ip4(a))}; }
std::vector<Expr> dnat4(const char* a) {
    return {nft::Immediate{1, nft::RegData(ip4(a))},
            nft::Nat{nft::kNatDnat, nft::kFamilyIpv4, 1, 1, {}, {}, 1}};
}
std::vector<Expr> redirect(std::uint16_t p) {
    return {nft::Immediate{1, nft::RegData(port(p))}, nft::Redir{1, 1, 2}};
}
std::vector<Expr> rule_of(std::initializer_list<std::vector<Expr>> parts) {
    std::vector<Expr> out;
    for (const auto& p : parts) {
        out.insert(out.end(), p.begin(), p.end());
    }
    return out;
}

struct Builder {
    nft::Ruleset rs;
    std::uint64_t handle = 1;
    std::uint8_t family = nft::kFamilyIpv4;
    std::string table = "t";

    explicit Builder(std::uint8_t f = nft::kFamilyIpv4, std::uint32_t table_flags = 0) : family(f) {
        rs.tables.push_back({f, table, table_flags, handle++});
    }
    Builder& base(const std::string& name,
                  std::uint32_t hook = nft::kHookPrerouting,
                  const std::string& type = "nat") {
        rs.chains.push_back({family, table, name, handle++, nft::Hook{hook, -100}, type, 1, 0});
        return *this;
    }
    Builder& chain(const std::string& name) {
        rs.chains.push_back({family, table, name, handle++, {}, "", {}, 0});
        return *this;
    }
    Builder& rule(const std::string& chain, std::vector<Expr> exprs) {
        rs.rules.push_back({family, table, chain, handle++, {}, std::move(exprs), {}});
        return *this;
    }
    Builder& set(nft::Set s) {
        s.family = family;
        s.table = table;
        rs.sets.push_back(std::move(s));
        return *this;
    }
    std::vector<std::string> claims(const NftInterpretLimits& limits = {}) const {
        auto c = interpret_nft(rs, limits);
        EXPECT_TRUE(c) << netlink::to_string(c.error());
        return c ? test::ipt::describe(*c) : std::vector<std::string>{};
    }
};

nft::Set plain_set(const std::string& name, std::uint32_t key_len, std::vector<nft::Bytes> keys) {
    nft::Set s;
    s.name = name;
    s.key_len = key_len;
    for (auto& k : keys) {
        s.elements.push_back({std::move(k), {}, 0, {}, {}});
    }
    return s;
}

// ---- crafted rulesets ----

TEST(NftInterpret, InvertedSet) {
    Builder b;
    b.base("pre")
        .set(plain_set("vips", 4, {ip4("1.2.3.4"), ip4("1.2.3.5")}))
        .rule("pre", rule_of({{daddr4(), lookup("vips", nft::kLookupInvert)},
                              tcp(),
                              to_port(80),
                              redirect(8080)}));
    EXPECT_THAT(b.claims(), ElementsAre("ip t pre#3 redirect ':8080' TCP 80 @ 0.0.0.0-1.2.3.3, "
                                        "1.2.3.6-255.255.255.255 exact path=pre source=nftables"));
}

// An inverted lookup over a concatenation is not a box: ignored, and the claim says so.
TEST(NftInterpret, InvertedConcatenationIsUncertain) {
    Builder b;
    b.base("pre")
        .set(plain_set("pairs", 8, {cat({ip4("1.2.3.4"), pad4(port(80))})}))
        .rule("pre",
              rule_of(
                  {tcp(), {daddr4(), dport(9), lookup("pairs", nft::kLookupInvert)}, redirect(1)}));
    EXPECT_THAT(b.claims(),
                ElementsAre("ip t pre#3 redirect ':1' TCP 1-65535 @ 0.0.0.0/0 uncertain "
                            "path=pre reason='ip t pre handle 3: lookup in 'pairs': negated "
                            "lookup over a concatenation not interpreted' source=nftables"));
}

TEST(NftInterpret, PrefixMasks) {
    Builder b;
    b.base("pre")
        // /30 as iptables-nft writes it (kernel.md §2.5 (F)), /24 as a 3-byte load.
        .rule("pre",
              rule_of(
                  {{daddr4(),
                    nft::Bitwise{
                        1, 1, 4, nft::kBitwiseMaskXor, {0xff, 0xff, 0xff, 0xfc}, {0, 0, 0, 0}, {}},
                    eq(ip4("1.2.3.4"))},
                   udp(),
                   to_port(514),
                   dnat4("10.0.0.1")}))
        .rule("pre",
              rule_of({{nft::Payload{nft::kPayloadNetworkHeader, 16, 3, 1, {}}, eq({5, 6, 7})},
                       tcp(),
                       to_port(25),
                       redirect(2525)}))
        // A mask with holes is not a prefix: the address test is ignored.
        .rule("pre",
              rule_of({{daddr4(),
                        nft::Bitwise{
                            1, 1, 4, nft::kBitwiseMaskXor, {0xff, 0, 0xff, 0}, {0, 0, 0, 0}, {}},
                        eq({9, 0, 9, 0})},
                       tcp(),
                       to_port(26),
                       redirect(2626)}));
    EXPECT_THAT(
        b.claims(),
        ElementsAre(
            "ip t pre#3 dnat '10.0.0.1' UDP 514 @ 1.2.3.4-1.2.3.7 exact path=pre source=nftables",
            "ip t pre#4 redirect ':2525' TCP 25 @ 5.6.7.0-5.6.7.255 exact path=pre "
            "source=nftables",
            "ip t pre#5 redirect ':2626' TCP 26 @ 0.0.0.0/0 uncertain path=pre reason='ip t pre "
            "handle 5: ip daddr with a non-prefix mask test not interpreted' source=nftables"));
}

// Constraints accumulate through jump, jump and goto; RETURN sends packets back.
TEST(NftInterpret, JumpsThreeDeep) {
    Builder b;
    b.base("pre").chain("a").chain("b").chain("c");
    b.rule(
         "pre",
         rule_of({{daddr4(), nft::Payload{nft::kPayloadNetworkHeader, 16, 3, 1, {}}, eq({1, 2, 3})},
                  {jump("a")}}))
        .rule("a", rule_of({tcp(), to_port(1200), {verdict(nft::kVerdictReturn)}}))
        .rule("a", rule_of({tcp(),
                            {dport(), cmp(nft::kCmpGte, port(1000)), cmp(nft::kCmpLte, port(2000))},
                            {jump("b")}}))
        .rule("b", rule_of({tcp(), {go("c")}}))
        .rule("c", dnat4("10.0.0.3"));
    EXPECT_THAT(b.claims(),
                ElementsAre("ip t c#10 dnat '10.0.0.3' TCP 1000-1199,1201-2000 @ 1.2.3.0-1.2.3.255 "
                            "exact path=pre>a>b>c source=nftables"));
}

// Earlier exact rules are subtracted from later ones through the exclusion index: by address,
// by port, both (the candidates of one side filtered by the other), and wide boxes on either.
TEST(NftInterpret, EarlierRulesAreSubtractedThroughTheIndex) {
    const auto ports = [](std::uint16_t lo, std::uint16_t hi) {
        return std::vector<Expr>{dport(), cmp(nft::kCmpGte, port(lo)), cmp(nft::kCmpLte, port(hi))};
    };
    Builder b;
    b.base("pre");
    b.rule("pre", rule_of({tcp(), to4("1.2.3.4"), to_port(80), dnat4("10.0.0.1")}))
        .rule("pre", rule_of({tcp(), to4("1.2.3.5"), to_port(80), dnat4("10.0.0.2")}))
        .rule("pre", rule_of({tcp(), to4("1.2.3.4"), to_port(81), dnat4("10.0.0.3")}))
        .rule("pre", rule_of({tcp(), to4("1.2.3.4"), ports(80, 82), dnat4("10.0.0.4")}))
        .rule("pre", rule_of({tcp(), to_port(80), dnat4("10.0.0.5")}))
        .rule("pre", rule_of({tcp(), to4("1.2.3.6"), ports(79, 81), dnat4("10.0.0.6")}));
    EXPECT_THAT(
        b.claims(),
        ElementsAre(
            "ip t pre#3 dnat '10.0.0.1' TCP 80 @ 1.2.3.4 exact path=pre source=nftables",
            "ip t pre#4 dnat '10.0.0.2' TCP 80 @ 1.2.3.5 exact path=pre source=nftables",
            "ip t pre#5 dnat '10.0.0.3' TCP 81 @ 1.2.3.4 exact path=pre source=nftables",
            "ip t pre#6 dnat '10.0.0.4' TCP 82 @ 1.2.3.4 exact path=pre source=nftables",
            "ip t pre#7 dnat '10.0.0.5' TCP 80 @ 0.0.0.0-1.2.3.3, 1.2.3.6-255.255.255.255 exact "
            "path=pre source=nftables",
            "ip t pre#8 dnat '10.0.0.6' TCP 79,81 @ 1.2.3.6 exact path=pre source=nftables"));
}

// The claims of one chain walk share one RuleSite (model.hpp: 10,000 DNAT rules used to copy
// the names and the path into every claim); a chain reached by a jump has a site of its own.
TEST(NftInterpret, ClaimsOfOneChainWalkShareTheirSite) {
    Builder b;
    b.base("pre").chain("a");
    b.rule("pre", rule_of({tcp(), to4("1.2.3.4"), to_port(80), dnat4("10.0.0.1")}))
        .rule("pre", rule_of({tcp(), to4("1.2.3.4"), to_port(81), dnat4("10.0.0.2")}))
        .rule("pre", {jump("a")})
        .rule("a", rule_of({tcp(), to4("1.2.3.4"), to_port(82), dnat4("10.0.0.3")}));
    auto claims = interpret_nft(b.rs, {});
    ASSERT_TRUE(claims) << netlink::to_string(claims.error());
    ASSERT_EQ(claims->size(), 3U);
    const auto site = [&](std::size_t i) { return std::get<RuleOrigin>((*claims)[i].origin).site; };
    ASSERT_NE(site(0), nullptr);
    EXPECT_EQ(site(0), site(1));
    EXPECT_NE(site(0), site(2));
    EXPECT_EQ(*site(0), (RuleSite{"nftables", "ip", "t", "pre", {"pre"}}));
    EXPECT_EQ(*site(2), (RuleSite{"nftables", "ip", "t", "a", {"pre", "a"}}));
}

// goto: what comes back goes to the caller's caller; jump: back to the next rule.
TEST(NftInterpret, GotoVersusJump) {
    for (const bool with_goto : {true, false}) {
        Builder b;
        b.base("pre").chain("a");
        b.rule("pre", {with_goto ? go("a") : jump("a")})
            .rule("a", rule_of({tcp(), to_port(80), {verdict(nft::kVerdictReturn)}}))
            .rule("a", {verdict(nft::kVerdictAccept)})
            .rule("pre", rule_of({to4("1.2.3.4"), dnat4("10.0.0.4")}));
        if (with_goto) {
            EXPECT_THAT(b.claims(), IsEmpty());
        } else {
            EXPECT_THAT(b.claims(), ElementsAre("ip t pre#7 dnat '10.0.0.4' TCP 80 @ 1.2.3.4 "
                                                "exact path=pre source=nftables"));
        }
    }
}

// The kernel refuses loops; crafted input must still end, the loop not followed and said so.
TEST(NftInterpret, LoopInTheChainGraph) {
    Builder b;
    b.base("pre").chain("a").chain("b");
    b.rule("pre", {jump("a")})
        .rule("a", {jump("b")})
        .rule("b", {jump("a")})
        .rule("b", rule_of({tcp(), to_port(80), redirect(8080)}));
    EXPECT_THAT(b.claims(),
                ElementsAre("ip t b#8 redirect ':8080' TCP 80 @ 0.0.0.0/0 uncertain "
                            "path=pre>a>b reason='ip t b handle 7: jump to 'a' not followed "
                            "(loop)' source=nftables"));
}

TEST(NftInterpret, UnknownExpressionWidensAndMarks) {
    Builder b;
    b.base("pre")
        .rule(
            "pre",
            rule_of(
                {to4("1.2.3.4"), {nft::Unknown{"fib", ""}}, tcp(), to_port(80), dnat4("10.0.0.1")}))
        // An unknown expression may have loaded the register the cmp reads.
        .rule("pre", rule_of({tcp(), {nft::Unknown{"exthdr", ""}, eq({1})}, redirect(1)}));
    EXPECT_THAT(
        b.claims(),
        ElementsAre("ip t pre#3 dnat '10.0.0.1' TCP 80 @ 1.2.3.4 uncertain path=pre "
                    "reason='ip t pre handle 3: expression 'fib' not interpreted' source=nftables",
                    "ip t pre#4 redirect ':1' TCP 1-65535 @ 0.0.0.0/0 uncertain path=pre "
                    "reason='ip t pre handle 4: expression 'exthdr' not interpreted; ip t pre "
                    "handle 4: register contents unknown test not interpreted' "
                    "source=nftables"));
}

TEST(NftInterpret, NotInterpretedTests) {
    Builder b;
    b.base("pre")
        // ct state new: ct load, bitwise, cmp neq 0 (as nft writes it).
        .rule("pre",
              rule_of({{nft::Ct{0, 1, {}, {}},
                        nft::Bitwise{1, 1, 4, nft::kBitwiseMaskXor, {8, 0, 0, 0}, {0, 0, 0, 0}, {}},
                        cmp(nft::kCmpNeq, {0, 0, 0, 0})},
                       to4("1.2.3.4"),
                       tcp(),
                       to_port(80),
                       dnat4("10.0.0.1")}))
        .rule("pre", rule_of({{nft::Meta{nft::kMetaMark, 1, {}}, eq({5, 0, 0, 0})},
                              to4("1.2.3.4"),
                              udp(),
                              to_port(53),
                              redirect(5353)}));
    EXPECT_THAT(b.claims(),
                ElementsAre("ip t pre#3 dnat '10.0.0.1' TCP 80 @ 1.2.3.4 uncertain path=pre "
                            "reason='ip t pre handle 3: ct state (bitwise) test not "
                            "interpreted' source=nftables",
                            "ip t pre#4 redirect ':5353' UDP 53 @ 1.2.3.4 uncertain path=pre "
                            "reason='ip t pre handle 4: meta mark test not interpreted' "
                            "source=nftables"));
}

TEST(NftInterpret, DormantTableIsIgnored) {
    for (const std::uint32_t flags : {nft::kTableDormant, 0U}) {
        Builder b(nft::kFamilyIpv4, flags);
        b.base("pre").rule("pre", rule_of({to4("1.2.3.4"), dnat4("10.0.0.1")}));
        EXPECT_EQ(b.claims().size(), flags == 0 ? 2U : 0U);
    }
}

// Only nat chains at prerouting/output claim DNAT and redirect; tproxy only at prerouting;
// SNAT never.
TEST(NftInterpret, WhichBaseChainsClaim) {
    Builder b;
    b.base("post", nft::kHookPostrouting)
        .base("in", nft::kHookInput)
        .base("out", nft::kHookOutput)
        .base("fwd", nft::kHookForward, "filter")
        .base("mangle", nft::kHookPrerouting, "filter");
    for (const char* c : {"post", "in", "out", "fwd", "mangle"}) {
        b.rule(c, rule_of({tcp(), to_port(80), redirect(1)}));
        b.rule(c, rule_of({tcp(),
                           to_port(81),
                           {nft::Immediate{1, nft::RegData(port(3128))}, nft::Tproxy{2, {}, 1}}}));
    }
    b.rule("out", rule_of({tcp(),
                           to_port(82),
                           {nft::Immediate{1, nft::RegData(ip4("1.2.3.4"))},
                            nft::Nat{nft::kNatSnat, 2, 1, 1, {}, {}, 1}}}));
    EXPECT_THAT(b.claims(),
                ElementsAre("ip t out#11 redirect ':1' TCP 80 @ 0.0.0.0/0 exact path=out "
                            "source=nftables",
                            "ip t mangle#16 tproxy ':3128' TCP 81 @ 0.0.0.0/0 exact path=mangle "
                            "source=nftables"));
}

TEST(NftInterpret, ComparisonsAndRanges) {
    Builder b;
    b.base("pre")
        .rule("pre", rule_of({tcp(), {dport(), cmp(nft::kCmpLt, port(1024))}, redirect(1)}))
        .rule("pre", rule_of({udp(), {dport(), cmp(nft::kCmpGt, port(60000))}, redirect(2)}))
        .rule("pre", rule_of({udp(),
                              {dport(), nft::Range{1, nft::kRangeNeq, nft::RegData(port(100)),
                                                   nft::RegData(port(65535))}},
                              redirect(3)}))
        .rule("pre", rule_of({tcp(), {dport(), cmp(nft::kCmpGt, port(65535))}, redirect(4)}));
    EXPECT_THAT(b.claims(),
                ElementsAre("ip t pre#3 redirect ':1' TCP 1-1023 @ 0.0.0.0/0 exact path=pre "
                            "source=nftables",
                            "ip t pre#4 redirect ':2' UDP 60001-65535 @ 0.0.0.0/0 exact path=pre "
                            "source=nftables",
                            "ip t pre#5 redirect ':3' UDP 1-99 @ 0.0.0.0/0 exact path=pre "
                            "source=nftables"));
}

// `ip protocol` (a payload byte) works like meta l4proto; an inet table without an nfproto test
// reads network offsets per family (offset 16 is the IPv4 daddr, part of the IPv6 saddr).
TEST(NftInterpret, ProtocolPayloadAndInetFamilies) {
    Builder b(nft::kFamilyInet);
    b.base("pre").rule("pre",
                       rule_of({{daddr4(), eq(ip4("1.2.3.4"))},
                                {nft::Payload{nft::kPayloadNetworkHeader, 9, 1, 1, {}}, eq({17})},
                                to_port(53),
                                redirect(5353)}));
    EXPECT_THAT(b.claims(),
                ElementsAre("inet t pre#3 redirect ':5353' UDP 53 @ 1.2.3.4, ::/0 exact path=pre "
                            "source=nftables",
                            // In IPv6 packets both loads read source-address bytes.
                            "inet t pre#3 redirect ':5353' TCP 53 @ ::/0 exact path=pre "
                            "source=nftables"));
}

// meta protocol (the ethertype) selects the family like meta nfproto; an IPv6 DNAT target is
// printed as iptables prints it.
TEST(NftInterpret, EthertypeAndIpv6Target) {
    Builder b(nft::kFamilyInet);
    b.base("pre").rule("pre",
                       rule_of({{nft::Meta{nft::kMetaProtocol, 1, {}}, eq({0x86, 0xdd})},
                                {daddr6(), eq(ip6("2001:db8::1"))},
                                tcp(),
                                to_port(80),
                                {nft::Immediate{1, nft::RegData(ip6("2001:db8::5"))},
                                 nft::Immediate{2, nft::RegData(port(8080))},
                                 nft::Nat{nft::kNatDnat, nft::kFamilyIpv6, 1, 1, 2, 2, 3}}}));
    EXPECT_THAT(b.claims(), ElementsAre("inet t pre#3 dnat '[2001:db8::5]:8080' TCP 80 @ "
                                        "2001:db8::1 exact path=pre source=nftables"));
}

// th sport . th dport in one 4-byte load: the port test counts, the source port narrows the rule
// but not the claim (exact), and such a rule is not subtracted from the rules after it.
TEST(NftInterpret, MergedSourceAndDestinationPorts) {
    Builder b;
    b.base("pre")
        .rule("pre", rule_of({tcp(),
                              {nft::Payload{nft::kPayloadTransportHeader, 0, 4, 1, {}},
                               eq(cat({port(5), port(6)}))},
                              redirect(1)}))
        .rule("pre", rule_of({tcp(), to_port(6), redirect(2)}));
    EXPECT_THAT(b.claims(), ElementsAre("ip t pre#3 redirect ':1' TCP 6 @ 0.0.0.0/0 exact path=pre "
                                        "source=nftables",
                                        "ip t pre#4 redirect ':2' TCP 6 @ 0.0.0.0/0 exact path=pre "
                                        "source=nftables"));
}

// Verdict-map elements are separate paths; continue goes on with the rule; the catch-all element
// matches the rest (approximated, uncertain). Data maps put each element's data in registers.
TEST(NftInterpret, MapsAndVerdictMaps) {
    Builder b;
    nft::Set vm = plain_set("vm", 2, {port(80), port(81), port(82)});
    vm.flags = nft::kSetMap;
    vm.data_type = nft::kDataVerdict;
    vm.elements[0].verdict = nft::Verdict{nft::kVerdictJump, "web"};
    vm.elements[1].verdict = nft::Verdict{nft::kVerdictContinue, ""};
    vm.elements[2].verdict = nft::Verdict{nft::kVerdictDrop, ""};
    nft::Set dm = plain_set("dm", 2, {port(9000), port(9001)});
    dm.flags = nft::kSetMap;
    dm.data_len = 4;
    dm.elements[0].data = ip4("10.0.0.1");
    dm.elements[1].data = ip4("10.0.0.2");
    b.base("pre").chain("web").set(vm).set(dm);
    b.rule("pre", rule_of({to4("1.2.3.4"), tcp(), {dport(), lookup("vm", 0, 0)}, redirect(3000)}))
        .rule("web", redirect(8080))
        .rule("pre", rule_of({to4("1.2.3.5"),
                              tcp(),
                              {dport(), lookup("dm", 0, 1)},
                              {nft::Nat{nft::kNatDnat, 2, 1, 1, {}, {}, 1}}}));
    EXPECT_THAT(b.claims(),
                ElementsAre(
                    // continue: the same rule goes on (evaluated before the jump is followed)
                    "ip t pre#4 redirect ':3000' TCP 81 @ 1.2.3.4 exact path=pre source=nftables",
                    "ip t web#5 redirect ':8080' TCP 80 @ 1.2.3.4 exact path=pre>web "
                    "source=nftables",
                    "ip t pre#6 dnat '10.0.0.1' TCP 9000 @ 1.2.3.5 exact path=pre source=nftables",
                    "ip t pre#6 dnat '10.0.0.2' TCP 9001 @ 1.2.3.5 exact path=pre "
                    "source=nftables"));
}

// Interval sets: rbtree start / exclusive-end pairs (with the gap marker, and an interval open
// to the top), and pipapo KEY..KEY_END per field.
TEST(NftInterpret, IntervalSets) {
    Builder b;
    nft::Set rb =
        plain_set("rb", 2, {port(0), port(22), port(23), port(8000), port(8101), port(60000)});
    rb.flags = nft::kSetInterval;
    for (const std::size_t end : {0U, 2U, 4U}) {
        rb.elements[end].flags = nft::kElemIntervalEnd;
    }
    nft::Set pip;
    pip.name = "pip";
    pip.key_len = 8;
    pip.flags = nft::kSetInterval | nft::kSetConcat;
    pip.field_lengths = {4, 2};
    pip.elements.push_back({cat({ip4("1.2.3.0"), pad4(port(443))}),
                            cat({ip4("1.2.3.255"), pad4(port(444))}),
                            0,
                            {},
                            {}});
    b.base("pre").set(rb).set(pip);
    b.rule("pre", rule_of({tcp(), {dport(), lookup("rb")}, redirect(1)}))
        .rule("pre", rule_of({udp(), {daddr4(), dport(9), lookup("pip")}, redirect(2)}));
    EXPECT_THAT(
        b.claims(),
        ElementsAre("ip t pre#3 redirect ':1' TCP 22,8000-8100,60000-65535 @ 0.0.0.0/0 exact "
                    "path=pre source=nftables",
                    "ip t pre#4 redirect ':2' UDP 443-444 @ 1.2.3.0-1.2.3.255 exact "
                    "path=pre source=nftables"));
}

// iptables-nft 1.8.0-1.8.7 wrote xt tcp/udp matches (kernel.md §2.6); inversion flags count.
// A target whose blob does not decode still claims (target unknown, uncertain); a match other
// than tcp/udp/multiport/comment widens; an unknown target is assumed to continue and taints
// what follows it.
TEST(NftInterpret, OldIptablesNftMatchesAndTargets) {
    // struct xt_udp { u16 spts[2], dpts[2]; u8 invflags; } host order, invflags 0x02: ! --dport
    const nft::Bytes udp_not_53{0, 0, 0xff, 0xff, 53, 0, 53, 0, 0x02, 0};
    // struct xt_multiport (rev 0): flags 1 (destination), count 2, ports 80, 443 (host order)
    nft::Bytes mp0(32, 0);
    mp0[0] = 1;
    mp0[1] = 2;
    mp0[2] = 80;
    mp0[4] = 0xbb;
    mp0[5] = 1;
    // struct nf_nat_range2: flags NF_NAT_RANGE_MAP_IPS (host order), min and max 10.0.0.9
    nft::Bytes dnat(44, 0);
    dnat[0] = 1;
    for (const std::size_t at : {4U, 20U}) {
        std::copy_n(ip4("10.0.0.9").begin(), 4, dnat.begin() + static_cast<std::ptrdiff_t>(at));
    }
    Builder b;
    b.base("PREROUTING");
    b.rule("PREROUTING", rule_of({udp(),
                                  to4("1.2.3.4"),
                                  {nft::Match{"udp", 0, udp_not_53}},
                                  {nft::Target{"REDIRECT", 0, {}}}}))
        .rule("PREROUTING", rule_of({tcp(),
                                     to4("1.2.3.4"),
                                     {nft::Match{"multiport", 0, mp0}},
                                     {nft::Match{"set", 7, {}}},
                                     {nft::Target{"DNAT", 2, dnat}}}))
        .rule("PREROUTING", rule_of({tcp(), to4("1.2.3.5"), {nft::Target{"NOSUCH", 0, {}}}}))
        .rule("PREROUTING", rule_of({tcp(), to4("1.2.3.5"), to_port(22), redirect(2222)}));
    const auto claims = b.claims();
    ASSERT_EQ(claims.size(), 3U);
    EXPECT_THAT(claims[0], testing::StartsWith("ip t PREROUTING#3 REDIRECT '' UDP 1-52,54-65535 @ "
                                               "1.2.3.4 uncertain path=PREROUTING reason='ip t "
                                               "PREROUTING handle 3: target REDIRECT: "));
    EXPECT_EQ(claims[1],
              "ip t PREROUTING#4 DNAT '10.0.0.9' TCP 80,443 @ 1.2.3.4 uncertain path=PREROUTING "
              "reason='ip t PREROUTING handle 4: match 'set' (rev 7) not interpreted' "
              "source=nftables");
    EXPECT_EQ(claims[2],
              "ip t PREROUTING#6 redirect ':2222' TCP 22 @ 1.2.3.5 uncertain path=PREROUTING "
              "reason='ip t PREROUTING handle 5: target 'NOSUCH' not interpreted, assumed to "
              "continue' source=nftables");
}

TEST(NftInterpret, Limits) {
    Builder b;
    b.base("pre").chain("a");
    b.rule("pre", {jump("a")}).rule("pre", {jump("a")}).rule("a", {nft::Counter{}});
    NftInterpretLimits tight;
    tight.max_steps = 2;
    auto r = interpret_nft(b.rs, tight);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, netlink::Errc::malformed);
    EXPECT_THAT(r.error().detail, HasSubstr("ruleset too complex"));

    // Too many disjoint paths: the rule is not subtracted, what follows is uncertain.
    Builder many;
    many.base("pre");
    for (std::uint16_t p = 1; p <= 4; ++p) {
        const std::string vip = "1.2.3." + std::to_string(p);
        many.rule("pre", rule_of({{daddr4(), eq(ip4(vip.c_str()))},
                                  {dport(), eq(port(static_cast<std::uint16_t>(p * 10)))},
                                  {verdict(nft::kVerdictAccept)}}));
    }
    many.rule("pre", redirect(1));
    NftInterpretLimits few;
    few.max_paths = 3;
    const auto claims = many.claims(few);
    ASSERT_FALSE(claims.empty());
    for (const auto& c : claims) {
        EXPECT_THAT(c, HasSubstr("uncertain"));
        EXPECT_THAT(c, HasSubstr("too many disjoint paths, earlier rules not subtracted"));
    }
    // With room for the paths, the same ruleset is exact.
    for (const auto& c : many.claims()) {
        EXPECT_THAT(c, HasSubstr(" exact "));
    }
}

}  // namespace
}  // namespace vipportd::agent
