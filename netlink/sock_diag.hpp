#pragma once
// NETLINK_SOCK_DIAG for TCP/UDP over IPv4/IPv6: the inet_diag_req_v2 request builder and the
// parser from dump bytes to plain SocketEntry values (kernel.md §1.1-§1.4). Our own requests:
// libnl-idiag only speaks the legacy TCP-only request and merges SO_REUSEPORT groups (§1.13).

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "netlink/bytes.hpp"
#include "netlink/error.hpp"
#include "netlink/inet_address.hpp"
#include "netlink/transport.hpp"

namespace vipportd::netlink {

// TCP states (include/net/tcp_states.h); sock_diag state masks are (1 << state) (kernel.md §1.2).
inline constexpr std::uint8_t kTcpEstablished = 1;
inline constexpr std::uint8_t kTcpClose = 7;  // also bound UDP and bound-inactive TCP replies
inline constexpr std::uint8_t kTcpListen = 10;
// Pseudo-state for bound, neither listening nor connected TCP sockets, kernel 6.8 ("tcp: Dump
// bound-only sockets in inet_diag"); bit 13 selects nothing on older kernels (kernel.md §1.2).
inline constexpr std::uint8_t kTcpBoundInactive = 13;

inline constexpr std::uint32_t kStatesTcpListen = 1U << kTcpListen;                // 0x400
inline constexpr std::uint32_t kStatesTcpBoundInactive = 1U << kTcpBoundInactive;  // 0x2000
inline constexpr std::uint32_t kStatesAll = ~0U;

inline constexpr std::uint8_t kProtoTcp = 6;   // IPPROTO_TCP
inline constexpr std::uint8_t kProtoUdp = 17;  // IPPROTO_UDP

/// One socket of a sock_diag dump.
struct SocketEntry {
    Family family = Family::v4;
    std::uint8_t protocol = 0;  // as requested (inet_diag_msg has no protocol field)
    std::uint8_t state = 0;     // idiag_state: TCP_LISTEN, TCP_CLOSE, TCP_ESTABLISHED, ...
    InetAddress address;        // local (idiag_src); may be ::, ::ffff:a.b.c.d, unconfigured
    std::uint16_t port = 0;     // local, host order
    InetAddress remote;         // idiag_dst (connected sockets)
    std::uint16_t remote_port = 0;
    std::uint32_t ifindex = 0;  // id.idiag_if: SO_BINDTODEVICE / VRF, 0 = any
    std::uint32_t uid = 0;
    std::uint64_t inode = 0;
    std::uint64_t cookie = 0;         // idiag_cookie[0] | idiag_cookie[1] << 32 (as ss prints it)
    std::optional<bool> v6only;       // INET_DIAG_SKV6ONLY; absent before 3.18-ish (kernel.md §0)
    std::optional<bool> freebind;     // INET_DIAG_SOCKOPT (5.10+), absent on older kernels
    std::optional<bool> transparent;  // INET_DIAG_SOCKOPT

    friend bool operator==(const SocketEntry&, const SocketEntry&) = default;
};

/// A SOCK_DIAG_BY_FAMILY dump request: nlmsghdr (type 20, NLM_F_REQUEST|NLM_F_DUMP, seq and pid
/// 0 for the transport to stamp) + inet_diag_req_v2 {family, protocol, idiag_ext 0, states, id 0}
/// + an INET_DIAG_REQ_BYTECODE attribute when bytecode is not empty (kernel.md §1.1, §1.8).
/// bytecode must fit an nlattr (at most 65531 bytes); std::invalid_argument otherwise.
[[nodiscard]] std::vector<std::uint8_t> build_inet_diag_request(
    Family family,
    std::uint8_t protocol,
    std::uint32_t states,
    std::span<const std::uint8_t> bytecode = {});

/// The legacy TCP-only dump request: nlmsghdr (type TCPDIAG_GETSOCK 18, NLM_F_REQUEST|NLM_F_DUMP)
/// + struct inet_diag_req {family AF_INET, states, id 0}. The kernel runs it with sdiag_family
/// AF_UNSPEC (net/ipv4/inet_diag.c inet_diag_dump_compat), so one dump returns IPv4 and IPv6
/// sockets, and the TCP_BOUND_INACTIVE part walks the global bind hash once instead of once
/// per family: 1.4 ms instead of 2 x 1.15 ms on an empty namespace (kernel.md §1.11,
/// measured on 6.18). Replies are inet_diag_msg with nlmsg_type 18.
[[nodiscard]] std::vector<std::uint8_t> build_tcp_compat_request(std::uint32_t states);

/// One reply message of a sock_diag dump (SOCK_DIAG_BY_FAMILY, or TCPDIAG_GETSOCK for the
/// compat request) as a SocketEntry; errors as parse_inet_diag's.
[[nodiscard]] Result<SocketEntry> parse_inet_diag_message(const RawMessage& m,
                                                          std::uint8_t protocol);

/// Every SOCK_DIAG_BY_FAMILY message of dump as a SocketEntry (protocol is what was requested).
/// Unknown attributes are ignored; optional attributes stay nullopt when absent.
/// Errors (offsets are into dump.data): Errc::truncated for a message or attribute that
/// overruns, or a payload shorter than inet_diag_msg (72 bytes); Errc::malformed for another
/// message type, an unknown address family, or an attribute shorter than its type needs.
[[nodiscard]] Result<std::vector<SocketEntry>> parse_inet_diag(const Dump& dump,
                                                               std::uint8_t protocol);

}  // namespace vipportd::netlink
