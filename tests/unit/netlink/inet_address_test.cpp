#include "netlink/inet_address.hpp"

#include <array>
#include <cstdint>
#include <string>

#include <arpa/inet.h>
#include <gtest/gtest.h>

namespace vipportd::netlink {
namespace {

// IPv4 text is formatted by hand (inet_address.cpp): it must read exactly as inet_ntop's, for
// every octet value in every position (one, two and three digits, zeros in between).
TEST(InetAddress, Ipv4TextIsInetNtops) {
    for (unsigned v = 0; v < 256; ++v) {
        const auto b = static_cast<std::uint8_t>(v);
        const auto c = static_cast<std::uint8_t>(255 - v);
        for (const std::array<std::uint8_t, 4> octets :
             {std::array<std::uint8_t, 4>{b, 0, c, 9}, std::array<std::uint8_t, 4>{0, b, 10, c},
              std::array<std::uint8_t, 4>{c, 100, b, 0}, std::array<std::uint8_t, 4>{b, b, b, b}}) {
            const InetAddress a = InetAddress::from_bytes(Family::v4, octets.data());
            char want[INET_ADDRSTRLEN];
            ASSERT_NE(inet_ntop(AF_INET, octets.data(), want, sizeof want), nullptr);
            EXPECT_EQ(a.to_string(), std::string(want)) << v;
        }
    }
}

TEST(InetAddress, Ipv6TextIsInetNtops) {
    std::array<std::uint8_t, 16> bytes{0x20, 0x01, 0x0d, 0xb8};
    bytes[15] = 1;
    EXPECT_EQ(InetAddress::from_bytes(Family::v6, bytes.data()).to_string(), "2001:db8::1");
    bytes = {};
    bytes[10] = bytes[11] = 0xff;
    bytes[12] = 192;
    bytes[15] = 7;
    EXPECT_EQ(InetAddress::from_bytes(Family::v6, bytes.data()).to_string(), "::ffff:192.0.0.7");
}

}  // namespace
}  // namespace vipportd::netlink
