#include "agent/sources.hpp"

#include <linux/netlink.h>

#include "agent/socket_source.hpp"
#include "netlink/kernel_transport.hpp"

namespace vipportd::agent {

std::vector<SourceSlot> make_sources(const Config& config) {
    std::vector<SourceSlot> slots;
    SocketSourceOptions socket_options;
    socket_options.tcp_bound_inactive = config.sources.tcp_bound_inactive;
    slots.push_back({std::make_unique<SocketSource>(
                         std::make_unique<netlink::KernelTransport>(NETLINK_SOCK_DIAG),
                         std::make_unique<netlink::KernelTransport>(NETLINK_ROUTE), socket_options),
                     true});
    return slots;
}

}  // namespace vipportd::agent
