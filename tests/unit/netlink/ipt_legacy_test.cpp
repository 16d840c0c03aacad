// Legacy iptables blob walker and IptSource plumbing over recorded kernel bytes
// (tests/fixtures/ipt/*.txt, recorded by tests/netns/ipt_legacy_test.cpp).

#include "netlink/ipt_legacy.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

#include "netlink/xt_blobs.hpp"

namespace vipportd::netlink::ipt {
namespace {

const std::filesystem::path kDir = std::filesystem::path(VIPPORTD_FIXTURES) / "ipt";

std::unique_ptr<ReplayIptSource> replay(const std::string& name) {
    auto r = ReplayIptSource::load(kDir / (name + ".txt"));
    if (!r) {
        ADD_FAILURE() << to_string(r.error());
        return nullptr;
    }
    return std::move(*r);
}

RawTable raw(const std::string& fixture, Family f, const std::string& table) {
    auto src = replay(fixture);
    auto t = read_table(*src, f, table);
    EXPECT_TRUE(t) << (t ? "" : to_string(t.error()));
    return t ? std::move(*t) : RawTable{};
}

Table parsed(const RawTable& r) {
    auto t = parse_ipt_blob(r.family, r.info, r.entries);
    EXPECT_TRUE(t) << (t ? "" : to_string(t.error()));
    return t ? std::move(*t) : Table{};
}

std::uint16_t u16_at(const std::vector<std::uint8_t>& b, std::size_t off) {
    std::uint16_t v = 0;
    std::memcpy(&v, b.data() + off, 2);
    return v;
}

void put_u16(std::vector<std::uint8_t>& b, std::size_t off, std::uint16_t v) {
    std::memcpy(b.data() + off, &v, 2);
}

void put_i32(std::vector<std::uint8_t>& b, std::size_t off, std::int32_t v) {
    std::memcpy(b.data() + off, &v, 4);
}

// IPv4 ipt_entry: target_offset at 88, next_offset at 90 (linux/netfilter_ipv4/ip_tables.h).
constexpr std::size_t kTargetOffset = 88;
constexpr std::size_t kNextOffset = 90;

// The verdict of the standard target of the entry at `entry`.
std::size_t verdict_at(const std::vector<std::uint8_t>& b, std::size_t entry) {
    return entry + u16_at(b, entry + kTargetOffset) + 32;
}

TEST(IptLegacy, GetInfoOfKernelMdExample) {
    const RawTable r = raw("kernel_md_3_2", Family::v4, "nat");
    // kernel.md §3.2: nat: valid_hooks 0x1b, 11 entries, 1992 bytes.
    EXPECT_EQ(r.info.name, "nat");
    EXPECT_EQ(r.info.valid_hooks, 0x1bu);
    EXPECT_EQ(r.info.num_entries, 11u);
    EXPECT_EQ(r.info.size, 1992u);
    EXPECT_EQ(r.entries.size(), 1992u);
    EXPECT_EQ(r.info.hook_entry[0], 0u);
    EXPECT_EQ(r.info.underflow[0], 688u);
    EXPECT_EQ(encode_getinfo(r.info).size(), kGetInfoSize);
    EXPECT_EQ(decode_getinfo(encode_getinfo(r.info)).value(), r.info);
    EXPECT_EQ(decode_getinfo(std::vector<std::uint8_t>(83)).error().code, Errc::truncated);
}

// The table of kernel.md §3.2, entry by entry.
TEST(IptLegacy, WalksKernelMdExample) {
    const Table t = parsed(raw("kernel_md_3_2", Family::v4, "nat"));
    ASSERT_EQ(t.chains.size(), 5u);  // PREROUTING INPUT OUTPUT POSTROUTING SVC
    EXPECT_EQ(t.chains[0].name, "PREROUTING");
    EXPECT_EQ(t.chains[1].name, "INPUT");
    EXPECT_EQ(t.chains[2].name, "OUTPUT");
    EXPECT_EQ(t.chains[3].name, "POSTROUTING");
    EXPECT_EQ(t.chains[4].name, "SVC");
    EXPECT_FALSE(t.chains[4].builtin);
    EXPECT_EQ(t.hook_chain[0], 0u);
    EXPECT_EQ(t.hook_chain[3], 2u);
    EXPECT_FALSE(t.hook_chain[2]);  // nat has no FORWARD

    const Chain& pre = *t.find("PREROUTING");
    ASSERT_EQ(pre.rules.size(), 3u);
    ASSERT_TRUE(pre.policy);
    EXPECT_EQ(pre.policy->offset, 688u);
    EXPECT_EQ(pre.policy->target.kind, Target::Kind::verdict);
    EXPECT_EQ(pre.policy->target.verdict, kVerdictAccept);

    const Rule& r1 = pre.rules[0];
    EXPECT_EQ(r1.offset, 0u);
    EXPECT_EQ(r1.dst, InetAddress::parse("1.2.3.4").value());
    EXPECT_EQ(r1.dmsk, InetAddress::parse("255.255.255.255").value());
    EXPECT_EQ(r1.proto, 6);
    EXPECT_FALSE(r1.invert_dst);
    ASSERT_EQ(r1.matches.size(), 1u);
    EXPECT_EQ(r1.matches[0].name, "tcp");
    EXPECT_EQ(r1.matches[0].revision, 0);
    EXPECT_EQ(r1.matches[0].data.size() + 32, 48u);  // match_size 48
    const auto tcp = xt::decode_tcp(r1.matches[0].data).value();
    EXPECT_EQ(tcp.dports.first, 80);
    EXPECT_EQ(tcp.dports.last, 80);
    EXPECT_EQ(tcp.sports.last, 65535);
    EXPECT_EQ(r1.target.kind, Target::Kind::named);
    EXPECT_EQ(r1.target.name, "DNAT");
    EXPECT_EQ(r1.target.revision, 2);
    EXPECT_EQ(r1.target.data.size() + 32, 80u);  // target_size 80
    EXPECT_EQ(xt::decode_nat("DNAT", 2, Family::v4, r1.target.data).value().to_string(),
              "10.0.0.1:8080");

    const Rule& r2 = pre.rules[1];
    EXPECT_EQ(r2.offset, 240u);
    ASSERT_EQ(r2.matches.size(), 1u);
    EXPECT_EQ(r2.matches[0].name, "multiport");
    EXPECT_EQ(r2.matches[0].revision, 1);
    EXPECT_EQ(r2.matches[0].data.size() + 32, 80u);
    const auto mp = xt::decode_multiport(r2.matches[0].data, 1).value();
    ASSERT_EQ(mp.ports.size(), 2u);
    EXPECT_EQ(mp.ports[0].first, 443);
    EXPECT_EQ(mp.ports[1].first, 8000);
    EXPECT_EQ(mp.ports[1].last, 8100);
    EXPECT_EQ(r2.target.kind, Target::Kind::jump);
    EXPECT_EQ(r2.target.jump_offset, 1472u);
    EXPECT_FALSE(r2.target.is_goto);
    EXPECT_EQ(t.chains[r2.target.jump_chain].name, "SVC");
    EXPECT_EQ(r2.target.jump_rule, 0u);

    const Rule& r3 = pre.rules[2];
    EXPECT_EQ(r3.offset, 472u);
    EXPECT_EQ(r3.proto, 17);
    EXPECT_EQ(r3.matches.at(0).name, "udp");
    EXPECT_EQ(r3.target.name, "REDIRECT");
    EXPECT_EQ(r3.target.revision, 0);
    EXPECT_EQ(r3.target.data.size() + 32, 56u);
    EXPECT_EQ(xt::decode_nat("REDIRECT", 0, Family::v4, r3.target.data).value().to_string(),
              ":5353");

    const Chain& svc = *t.find("SVC");
    ASSERT_EQ(svc.rules.size(), 1u);
    EXPECT_EQ(svc.rules[0].offset, 1472u);
    EXPECT_EQ(svc.rules[0].proto, 0);
    EXPECT_TRUE(svc.rules[0].dmsk.is_unspecified());
    EXPECT_EQ(xt::decode_nat("DNAT", 2, Family::v4, svc.rules[0].target.data).value().to_string(),
              "10.0.0.2");
    ASSERT_TRUE(svc.policy);  // the RETURN iptables appends
    EXPECT_EQ(svc.policy->offset, 1664u);
    EXPECT_EQ(svc.policy->target.verdict, kVerdictReturn);
}

TEST(IptLegacy, WalksIp6Entries) {
    const Table t = parsed(raw("ip6", Family::v6, "nat"));
    const Chain& pre = *t.find("PREROUTING");
    ASSERT_EQ(pre.rules.size(), 5u);
    EXPECT_EQ(pre.rules[0].dst, InetAddress::parse("2001:db8::1").value());
    EXPECT_EQ(pre.rules[0].proto, 6);  // IP6T_F_PROTO set by -p
    EXPECT_EQ(pre.rules[0].target.name, "DNAT");
    EXPECT_EQ(
        xt::decode_nat("DNAT", pre.rules[0].target.revision, Family::v6, pre.rules[0].target.data)
            .value()
            .to_string(),
        "[2001:db8::5]:8080");
    // ! -d 2001:db8::/64: IP6T_INV_DSTIP
    EXPECT_TRUE(pre.rules[3].invert_dst);
    EXPECT_EQ(pre.rules[3].dmsk, InetAddress::parse("ffff:ffff:ffff:ffff::").value());
    // ! -p udp: IP6T_INV_PROTO with IP6T_F_PROTO
    EXPECT_EQ(pre.rules[4].proto, 17);
    EXPECT_TRUE(pre.rules[4].invert_proto);
    EXPECT_TRUE(pre.rules[4].matches.empty());

    const Table m = parsed(raw("ip6", Family::v6, "mangle"));
    const Chain& mpre = *m.find("PREROUTING");
    ASSERT_EQ(mpre.rules.size(), 1u);
    EXPECT_EQ(mpre.rules[0].target.name, "TPROXY");
    EXPECT_EQ(mpre.rules[0].target.revision, 1);
    EXPECT_EQ(xt::decode_tproxy(1, Family::v6, mpre.rules[0].target.data).value().to_string(),
              ":8443");
}

TEST(IptLegacy, WalksGotoAndUserChains) {
    const Table t = parsed(raw("chains", Family::v4, "nat"));
    const Chain& pre = *t.find("PREROUTING");
    ASSERT_EQ(pre.rules.size(), 8u);
    EXPECT_EQ(pre.rules[0].target.verdict, kVerdictAccept);
    EXPECT_EQ(pre.rules[4].target.kind, Target::Kind::jump);
    EXPECT_TRUE(pre.rules[4].target.is_goto);  // -g INNER: IPT_F_GOTO
    EXPECT_EQ(t.chains[pre.rules[4].target.jump_chain].name, "INNER");
    EXPECT_FALSE(pre.rules[2].target.is_goto);  // -j INNER
    EXPECT_EQ(pre.rules[7].matches.size(), 2u);
    EXPECT_EQ(pre.rules[7].matches[1].name, "addrtype");
    const Chain& svc = *t.find("SVC");
    ASSERT_EQ(svc.rules.size(), 3u);
    EXPECT_EQ(svc.rules[0].target.verdict, kVerdictReturn);  // a conditional RETURN is a rule
    const auto tcp = xt::decode_tcp(svc.rules[0].matches.at(0).data).value();
    EXPECT_TRUE(tcp.invert_dports);
    EXPECT_EQ(tcp.dports.first, 8000);
    EXPECT_EQ(tcp.dports.last, 8999);
}

// ---- Malformed blobs: errors naming the offset, never a crash ----

struct Mutated {
    TableInfo info;
    std::vector<std::uint8_t> b;
};

Mutated example() {
    const RawTable r = raw("kernel_md_3_2", Family::v4, "nat");
    return {r.info, r.entries};
}

Error parse_error(const Mutated& m) {
    auto t = parse_ipt_blob(Family::v4, m.info, m.b);
    EXPECT_FALSE(t);
    return t ? Error{} : t.error();
}

TEST(IptLegacy, BadNextOffset) {
    Mutated m = example();
    put_u16(m.b, kNextOffset, 0);
    Error e = parse_error(m);
    EXPECT_EQ(e.code, Errc::malformed);
    EXPECT_EQ(e.detail,
              "ip nat: entry at offset 0: next_offset 0 leaves no room for a target at "
              "target_offset 160");

    m = example();
    put_u16(m.b, 240 + kNextOffset, 0xfff0);
    e = parse_error(m);
    EXPECT_EQ(e.code, Errc::truncated);
    EXPECT_EQ(e.detail,
              "ip nat: entry at offset 240: next_offset 65520 runs past the end (1752 bytes left)");

    m = example();
    put_u16(m.b, kTargetOffset, 100);  // inside the ipt_entry itself
    e = parse_error(m);
    EXPECT_EQ(e.code, Errc::malformed);
    EXPECT_EQ(e.detail, "ip nat: entry at offset 0: target_offset 100 < entry size 112");
}

TEST(IptLegacy, TruncatedMatch) {
    Mutated m = example();
    put_u16(m.b, 112, 0x100);  // the tcp match of entry 0 claims 256 bytes
    Error e = parse_error(m);
    EXPECT_EQ(e.code, Errc::truncated);
    EXPECT_EQ(e.detail,
              "ip nat: entry at offset 0: match 'tcp' at +112: match_size 256 runs past "
              "target_offset 160");

    m = example();
    put_u16(m.b, 112, 0);  // match_size 0 would loop forever in a naive walker
    e = parse_error(m);
    EXPECT_EQ(e.code, Errc::malformed);
    EXPECT_EQ(e.detail, "ip nat: entry at offset 0: match 'tcp' at +112: match_size 0 < 32");

    m = example();
    put_u16(m.b, 112, 40);  // leaves 8 bytes before the target: not even a header
    e = parse_error(m);
    EXPECT_EQ(e.code, Errc::truncated);
    EXPECT_EQ(e.detail,
              "ip nat: entry at offset 0: match at +152: 8 bytes before target_offset, header "
              "needs 32");

    m = example();
    put_u16(m.b, 160, 0x200);  // the DNAT target claims 512 bytes
    e = parse_error(m);
    EXPECT_EQ(e.code, Errc::truncated);
    EXPECT_EQ(e.detail,
              "ip nat: entry at offset 0: target 'DNAT': target_size 512 runs past next_offset "
              "240");
}

TEST(IptLegacy, JumpOutOfRange) {
    Mutated m = example();
    put_i32(m.b, verdict_at(m.b, 240), 1473);
    Error e = parse_error(m);
    EXPECT_EQ(e.code, Errc::malformed);
    EXPECT_EQ(e.detail, "ip nat: entry at offset 240: jump to offset 1473, which is not an entry");

    m = example();
    put_i32(m.b, verdict_at(m.b, 240), 1 << 30);
    EXPECT_EQ(parse_error(m).code, Errc::malformed);

    m = example();
    const std::uint32_t svc_head = parsed(raw("kernel_md_3_2", Family::v4, "nat")).chains[4].offset;
    put_i32(m.b, verdict_at(m.b, 240), static_cast<std::int32_t>(svc_head));
    e = parse_error(m);
    EXPECT_EQ(e.detail, "ip nat: entry at offset 240: jump to offset " + std::to_string(svc_head) +
                            ", an ERROR entry");

    m = example();
    put_i32(m.b, verdict_at(m.b, 240), -7);  // below -NF_MAX_VERDICT - 1
    e = parse_error(m);
    EXPECT_EQ(e.detail, "ip nat: entry at offset 240: unknown standard verdict -7");
}

TEST(IptLegacy, InfoDisagreesWithEntries) {
    Mutated m = example();
    m.info.num_entries = 10;
    EXPECT_EQ(parse_error(m).detail, "ip nat: 11 entries, GET_INFO said 10");
    m = example();
    m.info.hook_entry[3] = 100;
    EXPECT_EQ(parse_error(m).detail, "ip nat: OUTPUT hook_entry 100 is not an entry offset");
    m = example();
    m.info.size = 1000;
    EXPECT_EQ(parse_error(m).detail, "ip nat: 1992 bytes of entries, GET_INFO said 1000");
    m = example();
    m.b.resize(1000);
    m.info.size = 1000;
    EXPECT_EQ(parse_error(m).code, Errc::truncated);
}

// Every single-byte corruption of a real blob parses or fails cleanly (ASan/UBSan builds make
// this a memory-safety check).
TEST(IptLegacy, ByteFlipsNeverCrash) {
    const Mutated base = example();
    std::size_t errors = 0;
    for (std::size_t i = 0; i < base.b.size(); ++i) {
        for (const std::uint8_t v : {std::uint8_t{0x00}, std::uint8_t{0xff}, std::uint8_t{0x41}}) {
            Mutated m = base;
            m.b[i] = v;
            auto t = parse_ipt_blob(Family::v4, m.info, m.b);
            errors += t ? 0U : 1U;
            auto v6 = parse_ipt_blob(Family::v6, m.info, m.b);
            errors += v6 ? 0U : 1U;
        }
    }
    EXPECT_GT(errors, 0u);
    std::vector<std::uint8_t> empty;
    TableInfo none;
    EXPECT_TRUE(parse_ipt_blob(Family::v4, none, empty));  // no entries, no hooks: empty table
}

// ---- IptSource plumbing ----

TEST(IptLegacy, ReadTableRestartsOnEagain) {
    auto info = encode_getinfo(raw("kernel_md_3_2", Family::v4, "nat").info);
    std::string hex;
    for (const auto b : info) {
        static constexpr char kDigits[] = "0123456789abcdef";
        hex += kDigits[b >> 4];
        hex += kDigits[b & 15];
    }
    // entries answered with EAGAIN twice (the table changed size), then a blob of the right size.
    std::string text = "names ip nat\ninfo ip nat " + hex +
                       "\nerror entries ip nat 11\nerror entries ip nat 11\nentries ip nat " +
                       std::string(1992 * 2, '0') + "\n";
    auto src = ReplayIptSource::parse(text).value();
    auto t = read_table(*src, Family::v4, "nat");
    ASSERT_TRUE(t) << to_string(t.error());
    EXPECT_EQ(t->entries.size(), 1992u);

    // Always EAGAIN: bounded.
    text = "info ip nat " + hex + "\nerror entries ip nat 11\n";
    src = ReplayIptSource::parse(text).value();
    t = read_table(*src, Family::v4, "nat", 3);
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error().code, Errc::interrupted);
    EXPECT_EQ(t.error().detail, "nat: IPT_SO_GET_ENTRIES: table changed during 3 read attempts");

    // A blob of another size than GET_INFO said is answered EAGAIN by the replay, like the kernel.
    text = "info ip nat " + hex + "\nentries ip nat 00000000\n";
    src = ReplayIptSource::parse(text).value();
    EXPECT_EQ(read_table(*src, Family::v4, "nat", 2).error().code, Errc::interrupted);

    // Other errors are returned as they are.
    text = "error info ip6 nat 1\n";
    src = ReplayIptSource::parse(text).value();
    t = read_table(*src, Family::v6, "nat");
    ASSERT_FALSE(t);
    EXPECT_EQ(to_string(t.error()), "nat: IP6T_SO_GET_INFO: Operation not permitted");
}

TEST(IptLegacy, RecordingRoundTrips) {
    auto inner = replay("zstack_nat");
    RecordingIptSource rec(*inner, {"header line"});
    ASSERT_TRUE(rec.table_names(Family::v4));
    ASSERT_TRUE(rec.table_names(Family::v6));
    const auto nat = read_table(rec, Family::v4, "nat").value();
    const auto mangle = read_table(rec, Family::v4, "mangle").value();
    EXPECT_FALSE(rec.get_info(Family::v6, "nat"));  // nothing recorded: an error, recorded too

    auto again = ReplayIptSource::parse(rec.text()).value();
    EXPECT_EQ(again->header(), std::vector<std::string>{"header line"});
    EXPECT_EQ(again->table_names(Family::v4).value(), (std::vector<std::string>{"mangle", "nat"}));
    EXPECT_TRUE(again->table_names(Family::v6).value().empty());
    const auto nat2 = read_table(*again, Family::v4, "nat").value();
    EXPECT_EQ(nat2.info, nat.info);
    EXPECT_EQ(nat2.entries, nat.entries);
    EXPECT_EQ(read_table(*again, Family::v4, "mangle").value().entries, mangle.entries);
}

TEST(IptLegacy, ReplayParseErrors) {
    EXPECT_EQ(ReplayIptSource::parse("bogus ip nat\n", "f").error().detail,
              "f:1: unknown record 'bogus'");
    EXPECT_EQ(ReplayIptSource::parse("# h\ninfo ip nat 0g\n", "f").error().detail,
              "f:2: bad hex '0g'");
    EXPECT_EQ(ReplayIptSource::parse("   00\n", "f").error().detail,
              "f:1: continuation line without an info/entries record");
    EXPECT_EQ(ReplayIptSource::parse("info ip nat 00\n", "f").error().detail,
              "f:0: info ip nat: 1 bytes, need 84");
    EXPECT_EQ(ReplayIptSource::parse("names ipx nat\n", "f").error().detail,
              "f:1: unknown family 'ipx'");
    auto empty = ReplayIptSource::parse("").value();
    EXPECT_EQ(empty->table_names(Family::v4).error().code, Errc::unexpected);
}

TEST(IptLegacy, ClearCountersZeroesOnlyCounters) {
    Mutated m = example();
    auto counted = m.b;
    // xt_counters at 96 (pcnt, bcnt) of entries 0 and 240
    counted[96] = 7;
    counted[240 + 104] = 9;
    clear_counters(Family::v4, counted);
    EXPECT_EQ(counted, m.b);
    std::vector<std::uint8_t> junk(50, 0xff);
    clear_counters(Family::v4, junk);  // shorter than an entry: untouched
    EXPECT_EQ(junk, std::vector<std::uint8_t>(50, 0xff));
}

TEST(IptLegacy, KernelSourceNamesFromInjectedProcRoot) {
    const auto dir =
        std::filesystem::temp_directory_path() / ("vipportd-ipt-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    {
        std::FILE* f = std::fopen((dir / "ip_tables_names").c_str(), "w");
        ASSERT_NE(f, nullptr);
        std::fputs("nat\nfilter\n", f);
        std::fclose(f);
    }
    KernelIptSource src(dir);
    EXPECT_EQ(src.table_names(Family::v4).value(), (std::vector<std::string>{"nat", "filter"}));
    EXPECT_TRUE(src.table_names(Family::v6).value().empty());  // absent file: no tables
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vipportd::netlink::ipt
