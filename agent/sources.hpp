#pragma once
// Builds the enabled PortSources from the configuration, with transports on the real kernel in
// the calling thread's network namespace.

#include <filesystem>
#include <vector>

#include "agent/config.hpp"
#include "agent/snapshot_service.hpp"

namespace vipportd::agent {

/// sockets (always, required), then nftables and iptables-legacy as [sources] says, then
/// addresses (always, not required: VIP presence).
/// proc_net: where the calling thread sees its namespace's /proc/net files (legacy iptables'
/// ip_tables_names); a namespace scanner's worker passes /proc/thread-self/net.
[[nodiscard]] std::vector<SourceSlot> make_sources(
    const Config& config, const std::filesystem::path& proc_net = "/proc/self/net");

}  // namespace vipportd::agent
