#pragma once
// Decoders for the x_tables match/target payloads shared by iptables-nft (NFTA_MATCH_INFO,
// NFTA_TARGET_INFO inside nf_tables "match"/"target" expressions) and legacy iptables (the bytes
// after xt_entry_match / xt_entry_target). Layouts and byte orders: kernel.md §2.7 and
// include/uapi/linux/netfilter/{xt_tcpudp.h,xt_multiport.h,nf_nat.h,xt_TPROXY.h,xt_comment.h}.
// Pure functions over bytes; every length is checked.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "netlink/error.hpp"
#include "netlink/inet_address.hpp"

namespace vipportd::netlink::xt {

struct PortSpan {
    std::uint16_t first = 0;  // host order, inclusive
    std::uint16_t last = 0;
};

/// "tcp"/0 (struct xt_tcp) and "udp"/0 (struct xt_udp): ports are host order.
struct TcpUdpMatch {
    PortSpan sports{0, 65535};
    PortSpan dports{0, 65535};
    bool invert_sports = false;  // XT_TCP_INV_SRCPT (0x01) / XT_UDP_INV_SRCPT
    bool invert_dports = false;  // XT_TCP_INV_DSTPT (0x02) / XT_UDP_INV_DSTPT
    bool tcp_flags_or_options = false;  // tcp only: flg_mask or option set (does not touch ports)
};

/// "multiport" rev 0 (struct xt_multiport) and rev 1 (struct xt_multiport_v1).
struct MultiportMatch {
    enum class Direction : std::uint8_t { source = 0, destination = 1, either = 2 };  // XT_MULTIPORT_*
    Direction direction = Direction::destination;
    std::vector<PortSpan> ports;  // ranges from pflags (rev 1) already folded
    bool invert = false;          // rev 1 only
};

/// NAT targets: DNAT/SNAT rev 0 (nf_nat_ipv4_multi_range_compat), rev 1 (nf_nat_range),
/// rev 2 (nf_nat_range2), REDIRECT rev 0 (IPv4 compat / IPv6 nf_nat_range), NETMAP rev 0
/// (IPv4 compat / IPv6 nf_nat_range). Addresses and ports arrive network order; ports here are host order.
struct NatTarget {
    std::uint32_t flags = 0;  // NF_NAT_RANGE_MAP_IPS 1, NF_NAT_RANGE_PROTO_SPECIFIED 2, ...
    std::optional<InetAddress> min_addr;  // set when flags & NF_NAT_RANGE_MAP_IPS
    std::optional<InetAddress> max_addr;
    std::optional<PortSpan> ports;        // set when flags & NF_NAT_RANGE_PROTO_SPECIFIED
    /// "10.0.0.1:8080", "10.0.0.10-10.0.0.12:1514-1520", ":5353" (REDIRECT), "" when nothing given
    [[nodiscard]] std::string to_string() const;
};

/// "TPROXY" rev 0 (xt_tproxy_target_info, IPv4) and rev 1 (xt_tproxy_target_info_v1).
struct TproxyTarget {
    std::optional<InetAddress> address;  // unset when 0.0.0.0 / ::
    std::uint16_t port = 0;               // host order; 0 = keep the destination port
    [[nodiscard]] std::string to_string() const;
};

Result<TcpUdpMatch> decode_tcp(std::span<const std::uint8_t> blob);
Result<TcpUdpMatch> decode_udp(std::span<const std::uint8_t> blob);
Result<MultiportMatch> decode_multiport(std::span<const std::uint8_t> blob, std::uint8_t revision);
/// name is "DNAT", "SNAT", "REDIRECT" or "NETMAP"; family selects the IPv4 or IPv6 layout.
Result<NatTarget> decode_nat(std::string_view name,
                             std::uint8_t revision,
                             Family family,
                             std::span<const std::uint8_t> blob);
Result<TproxyTarget> decode_tproxy(std::uint8_t revision,
                                   Family family,
                                   std::span<const std::uint8_t> blob);
/// "comment" rev 0: NUL-terminated string of at most 256 bytes (XT_MAX_COMMENT_LEN).
Result<std::string> decode_comment(std::span<const std::uint8_t> blob);

}  // namespace vipportd::netlink::xt
