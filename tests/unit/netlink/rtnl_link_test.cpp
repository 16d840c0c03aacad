// RTM_GETLINK request bytes and the link-name parser over a recorded dump.

#include "netlink/rtnl_link.hpp"

#include <gtest/gtest.h>

#include "netlink/bytes.hpp"
#include "netlink/fixture.hpp"
#include "netlink/replay_transport.hpp"
#include "netlink/sock_diag.hpp"

namespace vipportd::netlink {
namespace {

TEST(RtnlLink, RequestBytes) {
    // nlmsghdr: len 32, RTM_GETLINK (18), NLM_F_REQUEST|NLM_F_DUMP; ifinfomsg all zero (AF_UNSPEC).
    EXPECT_EQ(build_link_dump_request(),
              from_hex("20000000 12000103 00000000 00000000 00000000 00000000 00000000 00000000")
                  .value());
}

Dump recorded_links() {
    auto t = ReplayTransport::open(VIPPORTD_FIXTURES "/rtnl/links.txt");
    EXPECT_TRUE(t) << to_string(t.error());
    auto d = (*t)->exchange(build_link_dump_request());
    EXPECT_TRUE(d) << to_string(d.error());
    return std::move(*d);
}

TEST(RtnlLink, NamesFromARecordedDump) {
    auto names = parse_link_names(recorded_links());
    ASSERT_TRUE(names) << to_string(names.error());
    ASSERT_EQ(names->size(), 3U);  // lo, v0, v1 in the recording netns
    EXPECT_EQ(names->at(1), "lo");

    // The device-bound socket of the sock_diag recording (same netns) sits on v0.
    auto t = ReplayTransport::open(VIPPORTD_FIXTURES "/sock_diag/scenario.txt");
    ASSERT_TRUE(t);
    auto dump = (*t)->exchange(
        build_inet_diag_request(Family::v4, kProtoTcp, kStatesTcpListen | kStatesTcpBoundInactive));
    ASSERT_TRUE(dump);
    auto entries = parse_inet_diag(*dump, kProtoTcp);
    ASSERT_TRUE(entries);
    bool seen = false;
    for (const auto& e : *entries) {
        if (e.port == 9002) {
            EXPECT_EQ(names->at(e.ifindex), "v0");
            seen = true;
        }
    }
    EXPECT_TRUE(seen);
}

TEST(RtnlLink, MalformedInputIsAnError) {
    Dump d = recorded_links();
    Dump wrong_type = d;
    store(std::span<std::uint8_t>(wrong_type.data), 4, std::uint16_t{20});
    auto r = parse_link_names(wrong_type);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::malformed);

    Dump short_payload;
    short_payload.data = from_hex("18000000 10000200 00000000 00000000 00000000 00000000").value();
    r = parse_link_names(short_payload);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::truncated);
    EXPECT_NE(r.error().detail.find("ifinfomsg needs 16"), std::string::npos);

    Dump cut = d;
    cut.data.resize(cut.data.size() - 3);
    r = parse_link_names(cut);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::truncated);
}

}  // namespace
}  // namespace vipportd::netlink
