#pragma once
// SocketTable: one socket scan, compact and indexed by destination. Every request rescans the
// sockets (the freshness guarantee), so what a scan builds must be cheap to build and cheap to
// ask: 40 bytes per socket, bucketed by (protocol, address as the bind-conflict rules see it),
// so that a query costs O(sockets on that VIP and on the wildcards), not O(all sockets).
//
// The matching is socket_scope()'s (kernel.md §1.5, §1.6), restated as bucket lookups:
//   a VIP V (IPv4) is hit by the buckets V, 0.0.0.0 (which also holds ::ffff:0.0.0.0 and every
//   ::ffff:V socket is filed under V) and :: unless the socket is IPV6_V6ONLY;
//   a VIP V (IPv6) is hit by the buckets V and ::.
// Claims (with SO_REUSEPORT groups folded) are materialized only when someone asks for them.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/model.hpp"
#include "agent/port_set.hpp"
#include "netlink/sock_diag.hpp"

namespace vipportd::agent {

/// One socket, as much as a claim needs (SocketEntry without the remote end and cookie).
struct SocketRecord {
    InetAddress address;  // as bound
    std::uint8_t protocol = 0;
    std::uint8_t state = 0;
    std::uint8_t flags = 0;  // kV6onlyKnown | kV6only | kFreebind | kTransparent
    std::uint16_t port = 0;
    std::uint32_t ifindex = 0;
    std::uint32_t uid = 0;
    std::uint64_t inode = 0;

    static constexpr std::uint8_t kV6onlyKnown = 1;
    static constexpr std::uint8_t kV6only = 2;
    static constexpr std::uint8_t kFreebind = 4;
    static constexpr std::uint8_t kTransparent = 8;

    static SocketRecord from(const netlink::SocketEntry& e);
    [[nodiscard]] netlink::SocketEntry entry() const;
};

class SocketTable {
  public:
    SocketTable() = default;
    /// Indexes records (any order), sorting them in place; device_names maps ifindex -> name
    /// for claims.
    SocketTable(std::vector<SocketRecord> records,
                std::map<std::uint32_t, std::string> device_names);

    /// Sets the ports of protocol p that sockets hold on vip (v4-mapped vip = IPv4).
    void add_ports(const InetAddress& vip, Protocol p, PortBitmap& out) const;
    /// The claims of the sockets that hold ports of p on vip, SO_REUSEPORT groups folded.
    [[nodiscard]] std::vector<Claim> claims_for(const InetAddress& vip, Protocol p) const;
    /// Every socket's claim, folded and sorted as socket_claims() does.
    [[nodiscard]] std::vector<Claim> claims() const;

    [[nodiscard]] std::size_t size() const { return records_.size(); }
    [[nodiscard]] const std::map<std::uint32_t, std::string>& device_names() const {
        return device_names_;
    }

  private:
    struct Bucket {
        std::uint8_t protocol = 0;
        InetAddress key;  // the bound address, unmapped
        std::uint32_t begin = 0;
        std::uint32_t end = 0;
    };
    template <typename Fn>
    void visit(const InetAddress& vip, Protocol p, Fn&& fn) const;
    [[nodiscard]] const Bucket* find(std::uint8_t protocol, const InetAddress& key) const;

    std::vector<Bucket> buckets_;        // sorted by (protocol, key)
    std::vector<SocketRecord> records_;  // grouped by bucket
    std::map<std::uint32_t, std::string> device_names_;
};

using SocketTablePtr = std::shared_ptr<const SocketTable>;

}  // namespace vipportd::agent
