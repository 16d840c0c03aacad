// nf_tables decoders and request builders over dumps recorded from a real kernel
// (tests/fixtures/nft/*.txt; their headers hold the commands, the versions and what
// `nft --debug=netlink list ruleset` printed for the same ruleset).

#include "netlink/nft_decode.hpp"

#include <algorithm>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/netfilter/nf_tables.h>

#include "netlink/fixture.hpp"
#include "netlink/nft_dump.hpp"
#include "netlink/nft_request.hpp"
#include "netlink/replay_transport.hpp"
#include "netlink/xt_blobs.hpp"
#include "tests/unit/netlink/nft_fixture_util.hpp"

namespace vipportd::netlink::nft {
namespace {

using testing::ElementsAre;

std::string path(const std::string& name) {
    return std::string(VIPPORTD_FIXTURES) + "/nft/" + name + ".txt";
}

Fixture fixture(const std::string& name) {
    auto f = read_fixture(path(name));
    EXPECT_TRUE(f) << to_string(f.error());
    return f ? *f : Fixture{};
}

Ruleset dumped(const std::string& name) {
    ReplayTransport t(fixture(name), name);
    auto rs = dump_ruleset(t);
    EXPECT_TRUE(rs) << to_string(rs.error());
    return rs ? *rs : Ruleset{};
}

Bytes hex(std::string_view s) {
    auto b = from_hex(s);
    EXPECT_TRUE(b);
    return b ? *b : Bytes{};
}

const Rule& rule(const Ruleset& rs, const std::string& chain, std::size_t index) {
    std::vector<const Rule*> in;
    for (const auto& r : rs.rules) {
        if (r.chain == chain) {
            in.push_back(&r);
        }
    }
    EXPECT_LT(index, in.size()) << chain;
    static const Rule none;
    return index < in.size() ? *in[index] : none;
}

const Set& set(const Ruleset& rs, const std::string& name) {
    for (const auto& s : rs.sets) {
        if (s.name == name) {
            return s;
        }
    }
    ADD_FAILURE() << "no set " << name;
    static const Set none;
    return none;
}

class NftFixtures : public testing::TestWithParam<const char*> {};

// Every recorded rule and set decodes to exactly what libnftnl printed for the same objects.
TEST_P(NftFixtures, DecodeLikeNft) {
    const Fixture f = fixture(GetParam());
    ReplayTransport t(f, GetParam());
    auto rs = dump_ruleset(t);
    ASSERT_TRUE(rs) << to_string(rs.error());
    ASSERT_FALSE(rs->rules.empty());
    EXPECT_EQ(test::nft::expect_matches_nft(*rs, f.header), rs->rules.size());
    EXPECT_EQ(t.served(), f.exchanges.size());  // every recorded exchange was asked for
}

INSTANTIATE_TEST_SUITE_P(Recorded,
                         NftFixtures,
                         testing::Values("native_ip",
                                         "native_inet",
                                         "native_ip6",
                                         "native_kube",
                                         "iptables_nft",
                                         "ip6tables_nft"));

// §2.4 (a): the typed values behind "[ payload load 4b @ network header + 16 => reg 1 ]" etc.
TEST(NftDecode, NativeRuleExpressions) {
    const Ruleset rs = dumped("native_ip");
    ASSERT_EQ(rs.tables.size(), 2U);
    EXPECT_EQ(rs.tables[0], (Table{kFamilyIpv4, "vipnat", 0, rs.tables[0].handle}));
    const Chain* pre = rs.find_chain(kFamilyIpv4, "vipnat", "prerouting");
    ASSERT_NE(pre, nullptr);
    EXPECT_EQ(pre->hook, (Hook{kHookPrerouting, -100}));  // priority dstnat
    EXPECT_EQ(pre->type, "nat");
    EXPECT_EQ(pre->policy, 1U);  // NF_ACCEPT

    const Rule& a = rule(rs, "prerouting", 0);
    EXPECT_EQ(a.family, kFamilyIpv4);
    EXPECT_EQ(a.table, "vipnat");
    EXPECT_FALSE(a.position.has_value());  // the first rule of its chain
    EXPECT_THAT(
        a.exprs,
        ElementsAre(Expr{Payload{kPayloadNetworkHeader, 16, 4, 1, {}}},
                    Expr{Cmp{1, kCmpEq, {1, 2, 3, 4}}}, Expr{Meta{kMetaL4proto, 1, {}}},
                    Expr{Cmp{1, kCmpEq, {6}}}, Expr{Payload{kPayloadTransportHeader, 2, 2, 1, {}}},
                    Expr{Cmp{1, kCmpEq, {0, 80}}}, Expr{Immediate{1, RegData{10, 0, 0, 5}}},
                    Expr{Immediate{2, RegData{0x1f, 0x90}}},
                    Expr{Nat{kNatDnat, kFamilyIpv4, 1, 1, 2, 2, 3}}));

    // (b): two cmps; (i) negation; the last rule's comment from NFTA_RULE_USERDATA.
    const Rule& b = rule(rs, "prerouting", 1);
    EXPECT_EQ(b.position, a.handle);
    EXPECT_EQ(b.exprs[5], (Expr{Cmp{1, kCmpGte, {0x03, 0xe8}}}));
    EXPECT_EQ(b.exprs[6], (Expr{Cmp{1, kCmpLte, {0x07, 0xd0}}}));
    EXPECT_EQ(rule(rs, "prerouting", 8).exprs[5], (Expr{Cmp{1, kCmpNeq, {0, 22}}}));
    EXPECT_EQ(rule(rs, "prerouting", 8).exprs[6], (Expr{Counter{0, 0}}));
    EXPECT_EQ(rule(rs, "prerouting", 9).comment, "not ssh");
    EXPECT_FALSE(rule(rs, "prerouting", 8).comment.has_value());

    // (e): concatenation registers; (g): a data map into reg 1; (q): tproxy.
    EXPECT_EQ(rule(rs, "prerouting", 4).exprs[1], (Expr{Meta{kMetaL4proto, 9, {}}}));
    EXPECT_EQ(rule(rs, "prerouting", 4).exprs[3], (Expr{Lookup{"vipports", 1, {}, {}, 0}}));
    EXPECT_EQ(rule(rs, "prerouting", 6).exprs[5], (Expr{Lookup{"portmap", 1, 1, {}, 0}}));
    EXPECT_EQ(rule(rs, "pre", 0).exprs.back(), (Expr{Tproxy{kFamilyIpv4, {}, 1}}));
}

TEST(NftDecode, Sets) {
    const Ruleset rs = dumped("native_ip");
    const Set& web = set(rs, "webports");
    EXPECT_EQ(web.key_len, 2U);
    EXPECT_EQ(web.flags & (kSetInterval | kSetMap), 0U);
    EXPECT_THAT(web.elements, testing::UnorderedElementsAre(SetElem{{0, 80}, {}, 0, {}, {}},
                                                            SetElem{{1, 187}, {}, 0, {}, {}}));
    // (f): rbtree start / exclusive end pairs with the gap marker (kernel.md §2.4).
    const Set& ranges = set(rs, "vipranges");
    EXPECT_TRUE(ranges.is_interval());
    EXPECT_EQ(ranges.elements.size(), 5U);
    EXPECT_EQ(std::count_if(ranges.elements.begin(), ranges.elements.end(),
                            [](const SetElem& e) { return e.interval_end(); }),
              3);
    // (e): concatenation, fields padded to 4 bytes.
    EXPECT_EQ(set(rs, "vipports").key_len, 12U);
    // (g): a data map.
    const Set& map = set(rs, "portmap");
    EXPECT_TRUE(map.is_map());
    EXPECT_FALSE(map.is_verdict_map());
    EXPECT_EQ(map.data_len, 8U);
    ASSERT_EQ(map.elements.size(), 1U);
    EXPECT_EQ(map.elements[0].data, hex("0a000009 23820000"));

    const Ruleset kube = dumped("native_kube");
    // (n): pipapo sets carry NFTA_SET_DESC_CONCAT and KEY_END (kernel.md §2.1).
    const Set& pip = set(kube, "pipset");
    EXPECT_EQ(pip.flags & (kSetInterval | kSetConcat), kSetInterval | kSetConcat);
    EXPECT_THAT(pip.field_lengths, ElementsAre(4U, 2U));
    for (const auto& e : pip.elements) {
        EXPECT_EQ(e.key_end.size(), 8U);
    }
    // (m): a verdict map of a concatenation.
    const Set& svc = set(kube, "service-ips");
    EXPECT_TRUE(svc.is_verdict_map());
    EXPECT_THAT(svc.elements,
                testing::UnorderedElementsAre(
                    testing::Field(&SetElem::verdict, Verdict{kVerdictGoto, "svc-a"}),
                    testing::Field(&SetElem::verdict, Verdict{kVerdictGoto, "svc-b"})));
    EXPECT_TRUE(svc.field_lengths.empty());  // only pipapo sets describe their fields
}

// iptables-nft: x_tables compat expressions keep the xt blobs that xt_blobs.hpp decodes.
TEST(NftDecode, IptablesNftCompat) {
    const Ruleset rs = dumped("iptables_nft");
    const Rule& a = rule(rs, "PREROUTING", 0);
    // (A): native port match, protocol before address, no "match tcp".
    EXPECT_EQ(a.exprs[0], (Expr{Meta{kMetaL4proto, 1, {}}}));
    EXPECT_EQ(a.exprs[2], (Expr{Payload{kPayloadNetworkHeader, 16, 4, 1, {}}}));
    const auto* dnat = std::get_if<Target>(&a.exprs.back());
    ASSERT_NE(dnat, nullptr);
    EXPECT_EQ(dnat->name, "DNAT");
    EXPECT_EQ(dnat->rev, 2U);
    auto nat = xt::decode_nat(dnat->name, 2, Family::v4, dnat->info);
    ASSERT_TRUE(nat) << to_string(nat.error());
    EXPECT_EQ(nat->to_string(), "10.0.0.1:8080");
    // (B): a port range is one range expression.
    EXPECT_EQ(rule(rs, "PREROUTING", 1).exprs[5],
              (Expr{Range{1, kRangeEq, {0x03, 0xe8}, {0x07, 0xd0}}}));
    // (C): multiport rev 1.
    const auto* mp = std::get_if<Match>(&rule(rs, "PREROUTING", 3).exprs[4]);
    ASSERT_NE(mp, nullptr);
    EXPECT_EQ(mp->name, "multiport");
    EXPECT_EQ(mp->rev, 1U);
    auto ports = xt::decode_multiport(mp->info, 1);
    ASSERT_TRUE(ports) << to_string(ports.error());
    EXPECT_EQ(ports->ports.size(), 3U);  // 80, 443, 8000:8100
    // (F): the /30 prefix is a bitwise mask, then a jump.
    const Rule& f = rule(rs, "PREROUTING", 5);
    EXPECT_EQ(
        f.exprs[3],
        (Expr{Bitwise{
            1, 1, 4, kBitwiseMaskXor, RegData(hex("fffffffc")), RegData(hex("00000000")), {}}}));
    EXPECT_EQ(f.exprs.back(), (Expr{Immediate{0, Verdict{kVerdictJump, "KUBE-SVC-X"}}}));
    // -m comment: an xt match whose blob is the string.
    std::vector<std::string> comments;
    for (const auto& r : rs.rules) {
        for (const auto& e : r.exprs) {
            if (const auto* m = std::get_if<Match>(&e); m != nullptr && m->name == "comment") {
                auto c = xt::decode_comment(m->info);
                ASSERT_TRUE(c);
                comments.push_back(*c);
            }
        }
    }
    EXPECT_THAT(comments,
                ElementsAre("pf rule@PREROUTING", "pf rule@PREROUTING", "eip rule@PREROUTING"));
}

// The request builders produce the recorded requests byte for byte (seq and pid are zero in
// both; the transport stamps them).
TEST(NftRequest, BuildersMatchRecordedRequests) {
    const Fixture f = fixture("native_ip");
    std::vector<Bytes> requests;
    for (const auto& e : f.exchanges) {
        requests.push_back(e.request);
    }
    EXPECT_EQ(requests.front(), build_getgen_request());
    EXPECT_EQ(requests.back(), build_getgen_request());
    EXPECT_EQ(requests[1], build_dump_request(NFT_MSG_GETTABLE));
    EXPECT_EQ(requests[2], build_dump_request(NFT_MSG_GETCHAIN));
    EXPECT_EQ(requests[3], build_dump_request(NFT_MSG_GETRULE));
    EXPECT_EQ(requests[4], build_dump_request(NFT_MSG_GETSET));
    EXPECT_THAT(requests,
                testing::Contains(build_getsetelem_request(kFamilyIpv4, "vipnat", "webports")));
    // NLM_F_REQUEST | NLM_F_ACK on GETGEN: a non-dump reply has no NLMSG_DONE (kernel.md §2.1).
    EXPECT_EQ(build_getgen_request(), hex("14000000 100a0500 00000000 00000000 00000000"));
}

// ---- malformed input ----

// The payload of the first NEWRULE of a recorded dump.
Bytes first_rule_payload() {
    ReplayTransport t(fixture("native_ip"), "native_ip");
    auto d = t.exchange(build_dump_request(NFT_MSG_GETRULE));
    EXPECT_TRUE(d);
    auto msgs = d->messages();
    EXPECT_TRUE(msgs);
    return Bytes(msgs->front().payload.begin(), msgs->front().payload.end());
}

TEST(NftDecode, TruncatedAttributeNamesItsOffset) {
    Bytes p = first_rule_payload();
    p.resize(p.size() - 3);  // the last attribute now overruns the payload
    auto r = decode_rule(p);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::truncated);
    EXPECT_THAT(r.error().detail, testing::HasSubstr("offset"));
    EXPECT_FALSE(decode_rule(Bytes{2, 0}));  // shorter than nfgenmsg
}

TEST(NftDecode, MissingMandatoryAttribute) {
    // nfgenmsg + NFTA_RULE_CHAIN only: no table.
    const Bytes p = hex("02000000 08000200 70726500");
    auto r = decode_rule(p);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::malformed);
    EXPECT_THAT(r.error().detail, testing::HasSubstr("NFTA_RULE_TABLE"));
}

TEST(NftDecode, UnknownAndBrokenExpressionsAreKept) {
    // NFTA_LIST_ELEM { NFTA_EXPR_NAME "fib", NFTA_EXPR_DATA {} },
    // NFTA_LIST_ELEM { NFTA_EXPR_NAME "cmp", NFTA_EXPR_DATA { NFTA_CMP_OP eq } }  (no sreg/data)
    const Bytes fixed =
        hex("10000100 08000100 66696200 04000200"
            "18000100 08000100 636d7000 0c000200 08000200 00000000");
    // The same with the second element claiming 4 bytes more than there are.
    const Bytes list =
        hex("10000100 08000100 66696200 04000200"
            "1c000100 08000100 636d7000 0c000200 08000200 00000000");
    auto e = decode_expressions(fixed);
    ASSERT_TRUE(e) << to_string(e.error());
    ASSERT_EQ(e->size(), 2U);
    EXPECT_EQ((*e)[0], (Expr{Unknown{"fib", ""}}));
    const auto* broken = std::get_if<Unknown>(&(*e)[1]);
    ASSERT_NE(broken, nullptr);
    EXPECT_EQ(broken->name, "cmp");
    EXPECT_FALSE(broken->why.empty());
    EXPECT_FALSE(decode_expressions(list));  // nla_len 0x1c overruns: truncated
}

// The kernel keeps cmp/range/bitwise/immediate operands in a 16-byte struct nft_data
// (nft_value_init() refuses longer ones with -EOVERFLOW): 16 bytes decode, 17 are never cut but
// leave the expression Unknown.
TEST(NftDecode, OperandLongerThanNftDataIsUnknown) {
    // NFTA_LIST_ELEM { NFTA_EXPR_NAME "cmp", NFTA_EXPR_DATA { NFTA_CMP_SREG 1, NFTA_CMP_OP eq,
    //   NFTA_CMP_DATA { NFTA_DATA_VALUE 16 or 17 bytes } } }
    const Bytes sixteen =
        hex("38000100 08000100 636d7000 2c000200 08000100 00000001 08000200 00000000"
            "18000300 14000100 00112233 44556677 8899aabb ccddeeff");
    const Bytes seventeen =
        hex("3c000100 08000100 636d7000 30000200 08000100 00000001 08000200 00000000"
            "1c000300 15000100 00112233 44556677 8899aabb ccddeeff 10000000");
    auto ok = decode_expressions(sixteen);
    ASSERT_TRUE(ok) << to_string(ok.error());
    ASSERT_EQ(ok->size(), 1U);
    EXPECT_EQ((*ok)[0],
              (Expr{Cmp{1, kCmpEq, RegData(hex("00112233 44556677 8899aabb ccddeeff"))}}));
    auto e = decode_expressions(seventeen);
    ASSERT_TRUE(e) << to_string(e.error());
    ASSERT_EQ(e->size(), 1U);
    EXPECT_EQ((*e)[0], (Expr{Unknown{"cmp", "data longer than 16 bytes (struct nft_data)"}}));
}

TEST(NftObjects, InlineValues) {
    const RegData a{0x0a, 0, 0, 5};
    EXPECT_EQ(a.size(), 4U);
    EXPECT_EQ(a[3], 5);
    const std::span<const std::uint8_t> view = a;
    EXPECT_EQ(Bytes(view.begin(), view.end()), hex("0a000005"));
    EXPECT_EQ(RegData::from(hex("0a000005")), a);
    EXPECT_TRUE(RegData{}.empty());
    EXPECT_FALSE(RegData::from(Bytes(17, 0)));
    EXPECT_THROW(RegData(Bytes(17, 0)), std::length_error);
    EXPECT_NE((RegData{1, 2}), (RegData{1, 2, 0}));  // same bytes, other length

    const XtName dnat = "DNAT";
    EXPECT_EQ(dnat, "DNAT");
    EXPECT_EQ(dnat.view(), "DNAT");
    EXPECT_EQ(dnat.str(), "DNAT");
    EXPECT_EQ(XtName::from(std::string(28, 'x'))->view().size(), 28U);
    EXPECT_FALSE(XtName::from(std::string(29, 'x')));
}

TEST(NftDecode, RuleUserdataComment) {
    EXPECT_EQ(rule_comment_from_userdata(hex("0006 68656c6c6f00")), "hello");
    // Another TLV first (NFTNL_UDATA_RULE_EBTABLES_POLICY 1), then the comment.
    EXPECT_EQ(rule_comment_from_userdata(hex("0104 00000001 0003 616200")), "ab");
    EXPECT_EQ(rule_comment_from_userdata(hex("0009 6869")), std::nullopt);  // overruns
    EXPECT_EQ(rule_comment_from_userdata({}), std::nullopt);
}

TEST(NftDecode, RegisterSlots) {
    EXPECT_EQ(slot_of_register(0), std::nullopt);  // NFT_REG_VERDICT
    EXPECT_EQ(slot_of_register(1), 0U);
    EXPECT_EQ(slot_of_register(2), 4U);
    EXPECT_EQ(slot_of_register(4), 12U);
    EXPECT_EQ(slot_of_register(8), 0U);  // NFT_REG32_00
    EXPECT_EQ(slot_of_register(9), 1U);  // kernel.md §2.4 (e): the l4proto of a concatenation
    EXPECT_EQ(slot_of_register(23), 15U);
    EXPECT_EQ(slot_of_register(5), std::nullopt);
    EXPECT_EQ(slot_of_register(24), std::nullopt);
}

}  // namespace
}  // namespace vipportd::netlink::nft
