#pragma once
// A plain IPv4/IPv6 address value: family plus 16 network-order bytes (IPv4 uses the first 4, the
// rest stay zero so that comparison and hashing need no family-specific code).

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vipportd::netlink {

enum class Family : std::uint8_t { v4 = 2, v6 = 10 };  // values are AF_INET / AF_INET6

struct InetAddress {
    Family family = Family::v4;
    std::array<std::uint8_t, 16> bytes{};

    static InetAddress v4(std::uint32_t host_order);
    static InetAddress any(Family f) { return InetAddress{f, {}}; }
    /// Parses dotted-quad or RFC 4291 text (no brackets, no zone); nullopt if invalid.
    static std::optional<InetAddress> parse(std::string_view text);
    /// Builds from raw network-order bytes as carried in kernel structures (4 or 16 used).
    static InetAddress from_bytes(Family f, const std::uint8_t* raw);

    [[nodiscard]] std::size_t size() const { return family == Family::v4 ? 4 : 16; }
    [[nodiscard]] bool is_unspecified() const;
    /// ::ffff:a.b.c.d (RFC 4291 §2.5.5.2)
    [[nodiscard]] bool is_v4_mapped() const;
    /// For a v4-mapped IPv6 address, the IPv4 address; otherwise the address itself.
    [[nodiscard]] InetAddress unmapped() const;
    /// The IPv4 address as ::ffff:a.b.c.d; an IPv6 address is returned unchanged.
    [[nodiscard]] InetAddress mapped() const;
    [[nodiscard]] std::string to_string() const;

    friend auto operator<=>(const InetAddress&, const InetAddress&) = default;
};

}  // namespace vipportd::netlink
