#pragma once
// A PortSource reads one kind of kernel state (sockets, nf_tables, legacy iptables) and turns it
// into claims. Sources are injected into the SnapshotService; collect() runs on the scan worker
// thread only, never on an HTTP thread, and may block on netlink.

#include <string_view>
#include <vector>

#include "agent/model.hpp"
#include "netlink/error.hpp"

namespace vipportd::agent {

class PortSource {
  public:
    virtual ~PortSource() = default;
    [[nodiscard]] virtual std::string_view name() const = 0;  // "sockets", "nftables", ...
    /// One full, fresh read. An error names what failed (it ends up in SYS.1006 details).
    [[nodiscard]] virtual netlink::Result<std::vector<Claim>> collect() = 0;
};

}  // namespace vipportd::agent
