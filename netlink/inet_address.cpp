#include "netlink/inet_address.hpp"

#include <algorithm>
#include <cstring>

#include <arpa/inet.h>

namespace vipportd::netlink {

namespace {
// ::ffff:0:0/96 prefix (RFC 4291 §2.5.5.2)
constexpr std::array<std::uint8_t, 12> kMappedPrefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
}  // namespace

InetAddress InetAddress::v4(std::uint32_t host_order) {
    InetAddress a{Family::v4, {}};
    a.bytes[0] = static_cast<std::uint8_t>(host_order >> 24);
    a.bytes[1] = static_cast<std::uint8_t>(host_order >> 16);
    a.bytes[2] = static_cast<std::uint8_t>(host_order >> 8);
    a.bytes[3] = static_cast<std::uint8_t>(host_order);
    return a;
}

std::optional<InetAddress> InetAddress::parse(std::string_view text) {
    if (text.empty() || text.size() > INET6_ADDRSTRLEN) {
        return std::nullopt;
    }
    char buf[INET6_ADDRSTRLEN + 1];
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    InetAddress a;
    if (inet_pton(AF_INET, buf, a.bytes.data()) == 1) {
        a.family = Family::v4;
        return a;
    }
    if (inet_pton(AF_INET6, buf, a.bytes.data()) == 1) {
        a.family = Family::v6;
        return a;
    }
    return std::nullopt;
}

InetAddress InetAddress::from_bytes(Family f, const std::uint8_t* raw) {
    InetAddress a{f, {}};
    std::memcpy(a.bytes.data(), raw, f == Family::v4 ? 4 : 16);
    return a;
}

bool InetAddress::is_unspecified() const {
    return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

bool InetAddress::is_v4_mapped() const {
    return family == Family::v6 &&
           std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), bytes.begin());
}

InetAddress InetAddress::unmapped() const {
    if (!is_v4_mapped()) {
        return *this;
    }
    InetAddress a{Family::v4, {}};
    std::memcpy(a.bytes.data(), bytes.data() + 12, 4);
    return a;
}

InetAddress InetAddress::mapped() const {
    if (family == Family::v6) {
        return *this;
    }
    InetAddress a{Family::v6, {}};
    std::copy(kMappedPrefix.begin(), kMappedPrefix.end(), a.bytes.begin());
    std::memcpy(a.bytes.data() + 12, bytes.data(), 4);
    return a;
}

std::string InetAddress::to_string() const {
    char buf[INET6_ADDRSTRLEN];
    if (family == Family::v4) {
        // By hand: glibc's inet_ntop4 formats each octet with sprintf, which made naming the
        // targets of 10,000 DNAT rules about 6% of interpreting them.
        char* p = buf;
        for (std::size_t i = 0; i < 4; ++i) {
            const unsigned b = bytes[i];
            if (b >= 100) {
                *p++ = static_cast<char>('0' + b / 100);
            }
            if (b >= 10) {
                *p++ = static_cast<char>('0' + b / 10 % 10);
            }
            *p++ = static_cast<char>('0' + b % 10);
            *p++ = '.';
        }
        return std::string(buf, static_cast<std::size_t>(p - buf - 1));
    }
    if (inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf) == nullptr) {
        return {};
    }
    return buf;
}

}  // namespace vipportd::netlink
