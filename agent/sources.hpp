#pragma once
// Builds the enabled PortSources from the configuration, with transports on the real kernel in
// the calling thread's network namespace.

#include <vector>

#include "agent/config.hpp"
#include "agent/snapshot_service.hpp"

namespace vipportd::agent {

/// sockets (always, required), then nftables and iptables-legacy as [sources] says.
[[nodiscard]] std::vector<SourceSlot> make_sources(const Config& config);

}  // namespace vipportd::agent
