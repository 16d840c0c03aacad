#include "agent/vip_registry.hpp"

#include <gtest/gtest.h>

namespace vipportd::agent {
namespace {

TEST(VipRegistry, ResolvesUuidsThenLiteralAddresses) {
    const VipRegistry reg({{"vip-a", *netlink::InetAddress::parse("192.0.2.10")},
                           {"1.1.1.1", *netlink::InetAddress::parse("192.0.2.11")}});
    EXPECT_EQ(reg.size(), 2u);
    auto a = reg.resolve("vip-a");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->uuid, "vip-a");
    EXPECT_EQ(a->ip.to_string(), "192.0.2.10");
    // A registered uuid wins over the literal-address reading of the same text.
    EXPECT_EQ(reg.resolve("1.1.1.1")->ip.to_string(), "192.0.2.11");
    auto lit = reg.resolve("2001:db8::1");
    ASSERT_TRUE(lit);
    EXPECT_EQ(lit->uuid, "2001:db8::1");
    EXPECT_EQ(lit->ip.family, netlink::Family::v6);
}

TEST(VipRegistry, RejectsUnknownUnspecifiedAndMulticast) {
    const VipRegistry reg;
    EXPECT_FALSE(reg.resolve("abc"));
    EXPECT_FALSE(reg.resolve(""));
    EXPECT_FALSE(reg.resolve("0.0.0.0"));
    EXPECT_FALSE(reg.resolve("::"));
    EXPECT_FALSE(reg.resolve("224.0.0.1"));
    EXPECT_FALSE(reg.resolve("ff02::1"));
    EXPECT_FALSE(reg.resolve("1.2.3.4/32"));
    EXPECT_TRUE(reg.resolve("::ffff:1.2.3.4"));
}

}  // namespace
}  // namespace vipportd::agent
