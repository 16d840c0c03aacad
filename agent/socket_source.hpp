#pragma once
// SocketSource: the "sockets" PortSource. Three sock_diag dumps per collect() (TCP listeners plus,
// optionally, bound-only TCP, both families in one compat dump; UDP in every state for AF_INET
// and AF_INET6, kernel.md §1.1, §1.2), SO_REUSEPORT groups folded into one claim (§1.7), and the
// bind-conflict matching of §1.5/§1.6 in one function, socket_scope().
//
// Policy decisions (each visible in the claim's SocketOrigin, so a caller can refine them):
// - device-bound sockets (SO_BINDTODEVICE, VRF) count: a bind without a device on the same
//   address and port conflicts with them (§1.5 row 1); ifindex and device name are recorded.
// - sockets on unconfigured addresses (IP_FREEBIND, IP_TRANSPARENT, ip_nonlocal_bind) count.
// - bound-only TCP sockets count when options.tcp_bound_inactive (a bind without SO_REUSEADDR
//   conflicts with them, §1.5); sock_diag cannot tell whether they set SO_REUSEADDR.
// - UDP sockets count in every state (a connected UDP socket still holds its local port).

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "agent/model.hpp"
#include "agent/socket_table.hpp"
#include "agent/source.hpp"
#include "netlink/sock_diag.hpp"
#include "netlink/transport.hpp"

namespace vipportd::agent {

struct SocketSourceOptions {
    /// Also dump TCP_BOUND_INACTIVE (bit 13, kernel >= 6.8; selects nothing before, kernel.md
    /// §1.2): bound-but-not-listening TCP sockets. Config: sources.tcp_bound_inactive, off by
    /// default there; make_sources() also leaves it off on a kernel that does not report them.
    bool tcp_bound_inactive = true;
    /// Attempts per dump while the kernel flags NLM_F_DUMP_INTR (netlink::exchange_consistent).
    int max_attempts = 3;
};

/// The destinations on which a socket bound to `bound` holds its port (kernel.md §1.5, §1.6):
///   AF_INET V -> V; AF_INET 0.0.0.0 -> all IPv4;
///   AF_INET6 ::ffff:V -> V (IPv4); ::ffff:0.0.0.0 -> all IPv4 (inet6_bind treats it as
///   INADDR_ANY); :: with v6only off -> all IPv4 + all IPv6; :: with v6only on -> all IPv6;
///   :: with v6only unknown (no INET_DIAG_SKV6ONLY: old kernel) -> all IPv4 + all IPv6,
///   uncertain; any other IPv6 address -> that address.
struct SocketScope {
    AddressScope scope;
    Certainty certainty = Certainty::exact;
};
[[nodiscard]] SocketScope socket_scope(const InetAddress& bound, std::optional<bool> v6only);

/// One dump of a collect(): its label ("tcp", "udp4", ...), protocol and request bytes.
struct SocketDump {
    std::string label;
    std::uint8_t protocol = 0;
    std::vector<std::uint8_t> request;
    std::uint16_t request_type = 20;  // SOCK_DIAG_BY_FAMILY, or TCPDIAG_GETSOCK (18)
};
/// How TCP is dumped: one compat request for both families (netlink::build_tcp_compat_request,
/// the default), or one inet_diag_req_v2 per family (the fallback when the kernel refuses it).
enum class TcpRequest { compat, per_family };
/// The dumps collect() sends, in order: "tcp" (compat) or "tcp4", "tcp6"; then "udp4", "udp6"
/// (recorders replay these).
[[nodiscard]] std::vector<SocketDump> socket_dumps(const SocketSourceOptions& options,
                                                   TcpRequest tcp_request = TcpRequest::compat);

/// Entries to claims: one claim per (family, protocol, address, port, ifindex) group, with
/// SocketOrigin.count = group size (SO_REUSEPORT, kernel.md §1.7) and the group's first socket
/// as origin; device names looked up by ifindex (missing names leave device empty). Claims come
/// out sorted by that key.
[[nodiscard]] std::vector<Claim> socket_claims(
    std::span<const netlink::SocketEntry> entries,
    const std::map<std::uint32_t, std::string>& device_names);

/// Whether the dump of `request` reports the socket with `inode`: the verdict of
/// kernel_reports_bound_inactive(), separate so that recorded dumps can drive it.
[[nodiscard]] netlink::Result<bool> dump_reports_inode(netlink::Transport& sock_diag,
                                                       std::span<const std::uint8_t> request,
                                                       std::uint64_t inode);

/// Whether this kernel reports bound-only TCP sockets (TCP_BOUND_INACTIVE, Linux 6.8+, kernel.md
/// §1.2): a TCP socket bound to 127.0.0.1, port 0, and never listened on must come back from a
/// per-family dump of LISTEN plus that bit. Worth knowing because an older kernel ignores the bit
/// yet still walks its whole established hash for it (net/ipv4/inet_diag.c
/// inet_diag_dump_icsk skips that walk only for a LISTEN-only mask): ~1 ms per scan on a large
/// host, for nothing. nullopt when the probe cannot run (no socket, no loopback address, a failed
/// dump): the caller then keeps asking.
[[nodiscard]] std::optional<bool> kernel_reports_bound_inactive(netlink::Transport& sock_diag);

class SocketSource final : public PortSource {
  public:
    /// sock_diag: a NETLINK_SOCK_DIAG transport (required). route: a NETLINK_ROUTE transport for
    /// device names, or null (claims then carry the ifindex only). Both in the netns to inspect.
    SocketSource(std::unique_ptr<netlink::Transport> sock_diag,
                 std::unique_ptr<netlink::Transport> route,
                 SocketSourceOptions options = {});

    [[nodiscard]] std::string_view name() const override { return "sockets"; }

    /// The dumps, parsed and folded into claims. Errors: the first failing dump's error,
    /// its detail prefixed with "sock_diag <label> dump: ". A failing link dump is not an error
    /// (device names stay empty; logged once per state change).
    [[nodiscard]] netlink::Result<std::vector<Claim>> collect() override;
    /// The same scan as an indexed SocketTable (what the snapshot service uses).
    [[nodiscard]] netlink::Result<Collected> collect_shared() override;

    /// The TCP request in use: compat until the kernel refuses it once.
    [[nodiscard]] TcpRequest tcp_request() const { return tcp_request_; }

  private:
    /// Runs dumps_ into records; on an error *failed names the dump that failed.
    [[nodiscard]] netlink::Result<void> scan(std::vector<SocketRecord>& records,
                                             const SocketDump** failed);

    std::unique_ptr<netlink::Transport> sock_diag_;
    std::unique_ptr<netlink::Transport> route_;
    SocketSourceOptions options_;
    TcpRequest tcp_request_ = TcpRequest::compat;
    std::vector<SocketDump> dumps_;
    bool device_names_failing_ = false;
    std::size_t expected_records_ = 0;  // reserved for the next scan's records
};

}  // namespace vipportd::agent
