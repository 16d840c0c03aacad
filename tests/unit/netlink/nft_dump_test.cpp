// The consistent nf_tables dump (kernel.md §2.1): retries recorded from a real kernel (a rule
// added in the middle of a dump, tests/fixtures/nft/retry_*.txt), the EPERM the kernel sends
// without CAP_NET_ADMIN, and recorded dumps edited to model what is hard to provoke on demand
// (NLM_F_DUMP_INTR, a set deleted between GETSET and GETSETELEM, foreign messages).

#include "netlink/nft_dump.hpp"

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>

#include "netlink/bytes.hpp"
#include "netlink/fixture.hpp"
#include "netlink/nft_decode.hpp"
#include "netlink/replay_transport.hpp"

namespace vipportd::netlink::nft {
namespace {

using testing::HasSubstr;

Fixture fixture(const std::string& name) {
    auto f = read_fixture(std::string(VIPPORTD_FIXTURES) + "/nft/" + name + ".txt");
    EXPECT_TRUE(f) << to_string(f.error());
    return f ? *f : Fixture{};
}

/// NFT_MSG_* of an exchange's request.
std::uint16_t request_msg(const FixtureExchange& e) {
    return static_cast<std::uint16_t>(load<nlmsghdr>(e.request).nlmsg_type & 0xff);
}

/// Applies f(header offset, message) to every message of every reply datagram.
template <class F>
void each_reply_message(FixtureExchange& e, F&& f) {
    for (auto& d : e.replies) {
        MessageWalker walk(d);
        while (true) {
            const std::size_t at = walk.offset();
            auto m = walk.next();
            if (!m || !*m) {
                break;
            }
            f(d, at, (*m)->header);
        }
    }
}

void set_dump_intr(FixtureExchange& e) {
    each_reply_message(e, [](std::vector<std::uint8_t>& d, std::size_t at, nlmsghdr h) {
        h.nlmsg_flags |= NLM_F_DUMP_INTR;
        store(std::span<std::uint8_t>(d), at, h);
    });
}

void set_res_id(FixtureExchange& e, std::uint16_t res_id) {
    each_reply_message(e, [&](std::vector<std::uint8_t>& d, std::size_t at, nlmsghdr h) {
        if (nft_message(h.nlmsg_type)) {
            d[at + kNlmsghdrSize + 2] = static_cast<std::uint8_t>(res_id >> 8);  // be16
            d[at + kNlmsghdrSize + 3] = static_cast<std::uint8_t>(res_id);
        }
    });
}

/// The NLMSG_ERROR the kernel sends for a failed request (struct nlmsgerr, linux/netlink.h).
std::vector<std::uint8_t> nlmsg_error(const std::vector<std::uint8_t>& request, int err) {
    std::vector<std::uint8_t> d(kNlmsghdrSize + sizeof(nlmsgerr), 0);
    nlmsghdr h{};
    h.nlmsg_len = static_cast<std::uint32_t>(d.size());
    h.nlmsg_type = NLMSG_ERROR;
    store(std::span<std::uint8_t>(d), 0, h);
    nlmsgerr e{};
    e.error = -err;
    e.msg = load<nlmsghdr>(request);
    store(std::span<std::uint8_t>(d), kNlmsghdrSize, e);
    return d;
}

/// The exchanges of one dump attempt that stop after the first request of type msg.
std::vector<FixtureExchange> attempt_until(const Fixture& f, std::uint16_t msg) {
    std::vector<FixtureExchange> out;
    for (const auto& e : f.exchanges) {
        out.push_back(e);
        if (request_msg(e) == msg) {
            break;
        }
    }
    return out;
}

std::uint32_t first_genid(const Fixture& f) {
    auto d = ReplayTransport(f).exchange(f.exchanges.front().request);
    EXPECT_TRUE(d);
    auto msgs = d->messages();
    EXPECT_TRUE(msgs);
    auto g = decode_generation(msgs->front().payload);
    EXPECT_TRUE(g);
    return g ? g->id : 0;
}

// Recorded: a rule added after GETRULE; the closing GETGEN differs, the dump starts over.
TEST(NftDump, RetriesWhenTheGenerationMoves) {
    const Fixture f = fixture("retry_genid");
    ReplayTransport t(f, "retry_genid");
    auto rs = dump_ruleset(t);
    ASSERT_TRUE(rs) << to_string(rs.error());
    EXPECT_EQ(rs->rules.size(), 2U);  // the second attempt saw the new rule
    EXPECT_EQ(rs->genid, first_genid(f) + 1);
    EXPECT_EQ(t.served(), 12U);  // 6 exchanges per attempt
}

// The expected-rules hint only sizes Ruleset::rules up front: the same ruleset comes back, its
// vector reserved once (hint + hint/32 + 8) instead of grown by doubling.
TEST(NftDump, ExpectedRulesHintReservesOnce) {
    const Fixture f = fixture("native_ip");
    ReplayTransport plain(f, "native_ip");
    auto without = dump_ruleset(plain);
    ASSERT_TRUE(without) << to_string(without.error());
    ReplayTransport hinted(f, "native_ip");
    DumpOptions options;
    options.expected_rules = without->rules.size();
    auto with = dump_ruleset(hinted, options);
    ASSERT_TRUE(with) << to_string(with.error());
    EXPECT_EQ(*with, *without);
    EXPECT_EQ(with->rules.capacity(), without->rules.size() + without->rules.size() / 32 + 8);
}

// Recorded: a rule added right after the first GETGEN; the table dump's res_id is the next
// generation's, so the attempt ends there.
TEST(NftDump, RetriesOnResIdMismatch) {
    const Fixture f = fixture("retry_resid");
    ReplayTransport t(f, "retry_resid");
    auto rs = dump_ruleset(t);
    ASSERT_TRUE(rs) << to_string(rs.error());
    EXPECT_EQ(rs->rules.size(), 2U);
    EXPECT_EQ(t.served(), 8U);  // GETGEN + GETTABLE, then a full attempt of 6
}

TEST(NftDump, RetriesOnDumpIntr) {
    const Fixture base = fixture("native_ip6");
    Fixture f = base;
    f.exchanges = attempt_until(base, NFT_MSG_GETRULE);
    set_dump_intr(f.exchanges.back());
    f.exchanges.insert(f.exchanges.end(), base.exchanges.begin(), base.exchanges.end());
    ReplayTransport t(f);
    auto rs = dump_ruleset(t);
    ASSERT_TRUE(rs) << to_string(rs.error());
    EXPECT_EQ(rs->rules.size(), 4U);
    EXPECT_EQ(t.served(), 4U + base.exchanges.size());
}

TEST(NftDump, GivesUpWhenEveryAttemptIsInterrupted) {
    Fixture f = fixture("native_ip6");
    for (auto& e : f.exchanges) {
        if (request_msg(e) == NFT_MSG_GETCHAIN) {
            set_dump_intr(e);
        }
    }
    ReplayTransport t(f);
    auto rs = dump_ruleset(t, DumpOptions{3});
    ASSERT_FALSE(rs);
    EXPECT_EQ(rs.error().code, Errc::interrupted);
    EXPECT_THAT(rs.error().detail, HasSubstr("3 dump attempts"));
    EXPECT_THAT(rs.error().detail, HasSubstr("GETCHAIN dump interrupted (NLM_F_DUMP_INTR)"));
    EXPECT_EQ(t.served(), 9U);  // GETGEN, GETTABLE, GETCHAIN, three times
}

TEST(NftDump, GivesUpWhenResIdNeverMatches) {
    Fixture f = fixture("native_ip6");
    for (auto& e : f.exchanges) {
        if (request_msg(e) == NFT_MSG_GETRULE) {
            set_res_id(e, 0xbeef);
        }
    }
    ReplayTransport t(f);
    auto rs = dump_ruleset(t);
    ASSERT_FALSE(rs);
    EXPECT_EQ(rs.error().code, Errc::interrupted);
    EXPECT_THAT(rs.error().detail, HasSubstr("5 dump attempts"));
    EXPECT_THAT(rs.error().detail, HasSubstr("GETRULE message 0 from generation 48879 (res_id)"));
}

// A set deleted between GETSET and its GETSETELEM: ENOENT means "start over", not "fail".
TEST(NftDump, RetriesWhenASetVanishes) {
    const Fixture base = fixture("native_ip");
    Fixture f = base;
    f.exchanges = attempt_until(base, NFT_MSG_GETSETELEM);
    f.exchanges.back().replies = {nlmsg_error(f.exchanges.back().request, ENOENT)};
    f.exchanges.insert(f.exchanges.end(), base.exchanges.begin(), base.exchanges.end());
    ReplayTransport t(f);
    auto rs = dump_ruleset(t);
    ASSERT_TRUE(rs) << to_string(rs.error());
    EXPECT_EQ(rs->sets.size(), 6U);
    EXPECT_EQ(t.served(), 6U + base.exchanges.size());
}

// Recorded: GETGEN from a thread without CAP_NET_ADMIN (kernel.md §6).
TEST(NftDump, PermissionErrorIsPrecise) {
    ReplayTransport t(fixture("getgen_eperm"), "getgen_eperm");
    auto gen = get_generation(t);
    ASSERT_FALSE(gen);
    EXPECT_EQ(gen.error().code, Errc::kernel);
    EXPECT_EQ(gen.error().sys_errno, EPERM);
    EXPECT_EQ(to_string(gen.error()), "nf_tables: GETGEN: Operation not permitted");
    auto rs = dump_ruleset(t);
    ASSERT_FALSE(rs);
    EXPECT_EQ(to_string(rs.error()), "nf_tables: GETGEN: Operation not permitted");
}

TEST(NftDump, ForeignMessageInADump) {
    Fixture f = fixture("native_ip6");
    for (auto& e : f.exchanges) {
        if (request_msg(e) == NFT_MSG_GETTABLE) {
            each_reply_message(e, [](std::vector<std::uint8_t>& d, std::size_t at, nlmsghdr h) {
                if (nft_message(h.nlmsg_type) == NFT_MSG_NEWTABLE) {
                    h.nlmsg_type = nft_nlmsg_type(NFT_MSG_NEWCHAIN);
                    store(std::span<std::uint8_t>(d), at, h);
                }
            });
        }
    }
    ReplayTransport t(f);
    auto rs = dump_ruleset(t);
    ASSERT_FALSE(rs);
    EXPECT_EQ(rs.error().code, Errc::unexpected);
    EXPECT_THAT(rs.error().detail, HasSubstr("nf_tables: GETTABLE: reply message 0 has type"));
}

TEST(NftDump, MalformedRuleNamesStepAndMessage) {
    Fixture f = fixture("native_ip6");
    for (auto& e : f.exchanges) {
        if (request_msg(e) == NFT_MSG_GETRULE) {
            // The first attribute of the first NEWRULE claims more bytes than its message has.
            auto& d = e.replies.front();
            store(std::span<std::uint8_t>(d), kNlmsghdrSize + kNfgenmsgSize,
                  static_cast<std::uint16_t>(0xfff0));
        }
    }
    ReplayTransport t(f);
    auto rs = dump_ruleset(t);
    ASSERT_FALSE(rs);
    EXPECT_EQ(rs.error().code, Errc::truncated);
    EXPECT_THAT(rs.error().detail, HasSubstr("nf_tables: GETRULE: message 0: NEWRULE: attribute"));
}

}  // namespace
}  // namespace vipportd::netlink::nft
