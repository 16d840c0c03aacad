#pragma once
// Interface names by ifindex from an RTM_GETLINK dump over NETLINK_ROUTE, to name the device of
// SO_BINDTODEVICE / VRF-bound sockets (kernel.md §1.6: resolve id.idiag_if in the same netns).

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "netlink/error.hpp"
#include "netlink/transport.hpp"

namespace vipportd::netlink {

/// nlmsghdr (RTM_GETLINK 18, NLM_F_REQUEST|NLM_F_DUMP) + struct ifinfomsg {AF_UNSPEC}: every link
/// of the netns (linux/rtnetlink.h). seq and pid are 0 for the transport to stamp.
[[nodiscard]] std::vector<std::uint8_t> build_link_dump_request();

/// ifindex -> IFLA_IFNAME of every RTM_NEWLINK message (links without a name are skipped).
/// Errors (offsets into dump.data): Errc::truncated for a message or attribute that overruns or a
/// payload shorter than ifinfomsg (16 bytes); Errc::malformed for another message type.
/// One interface of an RTM_GETLINK dump.
struct LinkState {
    std::string name;         // IFLA_IFNAME ("" when absent)
    std::uint32_t flags = 0;  // ifi_flags: IFF_UP 0x1, IFF_RUNNING 0x40, IFF_LOWER_UP 0x10000
    [[nodiscard]] bool up() const { return (flags & 0x1U) != 0; }  // IFF_UP (linux/if.h)
    friend bool operator==(const LinkState&, const LinkState&) = default;
};

/// ifindex -> name and flags of every RTM_NEWLINK message with a positive index. Errors name
/// the message's offset ("RTM_GETLINK dump: RTM_NEWLINK message at offset N: ...").
[[nodiscard]] Result<std::map<std::uint32_t, LinkState>> parse_link_states(const Dump& dump);

/// ifindex -> name, for the links that have one (parse_link_states()).
[[nodiscard]] Result<std::map<std::uint32_t, std::string>> parse_link_names(const Dump& dump);

}  // namespace vipportd::netlink
