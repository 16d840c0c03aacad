#include "agent/sources.hpp"

#include <linux/netlink.h>
#include <spdlog/spdlog.h>

#include "agent/address_source.hpp"
#include "agent/ipt_legacy_source.hpp"
#include "agent/nft_source.hpp"
#include "agent/socket_source.hpp"
#include "netlink/ipt_legacy.hpp"
#include "netlink/kernel_transport.hpp"

namespace vipportd::agent {

namespace {

// Whether to put the bound-inactive bit in the TCP dump when the config asks for it: probed once
// per process, since the answer is the kernel's, whatever the namespace.
bool ask_bound_inactive() {
    static const bool ask = [] {
        netlink::KernelTransport sock_diag(NETLINK_SOCK_DIAG);
        const auto reports = kernel_reports_bound_inactive(sock_diag);
        if (!reports) {
            spdlog::warn(
                "source=sockets sources.tcp_bound_inactive: could not probe whether this kernel "
                "reports bound-only TCP sockets (no 127.0.0.1?); asking for them anyway");
            return true;
        }
        if (!*reports) {
            spdlog::warn(
                "source=sockets sources.tcp_bound_inactive is on, but this kernel does not "
                "report bound-only TCP sockets (Linux 6.8+): not asking for them, which spares "
                "a walk of its whole established hash per scan");
        }
        return *reports;
    }();
    return ask;
}

}  // namespace

std::vector<SourceSlot> make_sources(const Config& config, const std::filesystem::path& proc_net) {
    std::vector<SourceSlot> slots;
    SocketSourceOptions socket_options;
    socket_options.tcp_bound_inactive = config.sources.tcp_bound_inactive && ask_bound_inactive();
    slots.push_back({std::make_unique<SocketSource>(
                         std::make_unique<netlink::KernelTransport>(NETLINK_SOCK_DIAG),
                         std::make_unique<netlink::KernelTransport>(NETLINK_ROUTE), socket_options),
                     true});
    if (config.sources.nftables != SourcesConfig::Requirement::off) {
        // Events are subscribed now, before the first dump (kernel.md §2.2).
        slots.push_back({NftSource::open_kernel(),
                         config.sources.nftables == SourcesConfig::Requirement::required});
    }
    if (config.sources.iptables_legacy == SourcesConfig::Legacy::auto_) {
        // Required: tables the kernel lists but we cannot read would make answers wrong, so the
        // query fails (SYS.1006) rather than answering without them. Unlisted tables are not read
        // at all (reading would create them, kernel.md §3.3).
        slots.push_back({std::make_unique<IptLegacySource>(
                             std::make_unique<netlink::ipt::KernelIptSource>(proc_net)),
                         true});
    }
    // Not required: without it VIP presence is unknown (null), while every port answer stays
    // exact. Subscribed now, before its first dump (kernel.md §4).
    slots.push_back({AddressSource::open_kernel(), false});
    return slots;
}

}  // namespace vipportd::agent
