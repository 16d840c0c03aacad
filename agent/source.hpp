#pragma once
// A PortSource reads one kind of kernel state (sockets, nf_tables, legacy iptables) and turns it
// into claims. Sources are injected into the SnapshotService; collect() runs on the scan worker
// thread only, never on an HTTP thread, and may block on netlink.

#include <memory>
#include <string_view>
#include <vector>

#include "agent/model.hpp"
#include "netlink/error.hpp"

namespace vipportd::agent {

class SocketTable;
class AddressTable;

/// What one collection contributes to a snapshot, shared rather than copied: a source that
/// caches (nf_tables by generation) hands the same list to every snapshot until it changes.
struct Collected {
    ClaimList claims;                                 // never null
    std::shared_ptr<const SocketTable> sockets;       // the socket source's indexed table, or null
    std::shared_ptr<const AddressTable> addresses{};  // the address source's table, or null
};

class PortSource {
  public:
    virtual ~PortSource() = default;
    [[nodiscard]] virtual std::string_view name() const = 0;  // "sockets", "nftables", ...
    /// One full, fresh read. An error names what failed (it ends up in SYS.1006 details).
    [[nodiscard]] virtual netlink::Result<std::vector<Claim>> collect() = 0;
    /// What the snapshot service calls: the same read, without copies where the source can
    /// avoid them. The default wraps collect().
    [[nodiscard]] virtual netlink::Result<Collected> collect_shared() {
        auto claims = collect();
        if (!claims) {
            return claims.error();
        }
        return Collected{std::make_shared<const std::vector<Claim>>(std::move(*claims)), nullptr,
                         nullptr};
    }
    /// True when the next collect() will probably do real work (a full rule dump after a
    /// change), so the snapshot service runs it beside the socket dumps rather than after them.
    /// Must be cheap and must not consume anything collect() needs.
    [[nodiscard]] virtual bool may_be_slow() const { return false; }
};

}  // namespace vipportd::agent
