#pragma once
// rtnetlink interface addresses (kernel.md §4): the RTM_GETADDR dump, the RTM_NEWADDR/RTM_DELADDR
// messages it and the address events carry, the RTM_GETLINK dump with interface flags (to name
// the interface of an IPv6 address, which has no IFA_LABEL, and to know whether it is up), and a
// multicast subscription to RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR and RTNLGRP_LINK.
//
// Layouts (linux/if_addr.h, linux/rtnetlink.h):
//   struct ifaddrmsg { u8 ifa_family; u8 ifa_prefixlen; u8 ifa_flags; u8 ifa_scope;
//                      u32 ifa_index; }                                      8 bytes
//   IFA_ADDRESS (1)  the prefix address; on a point-to-point link the PEER's address
//   IFA_LOCAL   (2)  the local address (IPv4 always sends it; IPv6 only with a peer)
//   IFA_LABEL   (3)  NUL-terminated string, IPv4 only ("eth0", "eth0:vip")
//   IFA_FLAGS   (8)  u32 superseding the u8 ifa_flags ("If present, the value from struct
//                    ifaddrmsg will be ignored", linux/if_addr.h)
//   struct ifinfomsg { u8 ifi_family; u8 pad; u16 ifi_type; s32 ifi_index; u32 ifi_flags;
//                      u32 ifi_change; }                                    16 bytes
//
// No privileges are needed for the dump or the groups (kernel.md §6).

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "netlink/error.hpp"
#include "netlink/inet_address.hpp"
#include "netlink/rtnl_link.hpp"
#include "netlink/transport.hpp"

namespace vipportd::netlink {

/// ifa_flags / IFA_FLAGS bits we interpret (linux/if_addr.h).
inline constexpr std::uint32_t kIfaSecondary = 0x01;   // IFA_F_SECONDARY
inline constexpr std::uint32_t kIfaNodad = 0x02;       // IFA_F_NODAD
inline constexpr std::uint32_t kIfaOptimistic = 0x04;  // IFA_F_OPTIMISTIC (usable during DAD)
inline constexpr std::uint32_t kIfaDadFailed = 0x08;   // IFA_F_DADFAILED
inline constexpr std::uint32_t kIfaDeprecated = 0x20;  // IFA_F_DEPRECATED (usable, not preferred)
inline constexpr std::uint32_t kIfaTentative = 0x40;   // IFA_F_TENTATIVE (DAD still running)
inline constexpr std::uint32_t kIfaPermanent = 0x80;   // IFA_F_PERMANENT

/// One RTM_NEWADDR/RTM_DELADDR message.
struct InterfaceAddress {
    bool deleted = false;  // RTM_DELADDR
    /// The local address: IFA_LOCAL when present (point-to-point links put the peer into
    /// IFA_ADDRESS), else IFA_ADDRESS (IPv6 without a peer sends only that).
    InetAddress address;
    /// IFA_ADDRESS when it differs from IFA_LOCAL: the peer of a point-to-point address.
    std::optional<InetAddress> peer;
    std::uint8_t prefix_len = 0;
    std::uint8_t scope = 0;  // RT_SCOPE_UNIVERSE 0, RT_SCOPE_LINK 253, RT_SCOPE_HOST 254
    std::uint32_t ifindex = 0;
    std::uint32_t flags = 0;  // IFA_FLAGS when present, else ifa_flags
    std::string label;        // IFA_LABEL (IPv4 only), "" when absent

    friend bool operator==(const InterfaceAddress&, const InterfaceAddress&) = default;
};

/// nlmsghdr (RTM_GETADDR 22, NLM_F_REQUEST|NLM_F_DUMP) + struct ifaddrmsg {AF_UNSPEC}: the
/// addresses of both families in one dump (kernel.md §4). seq and pid are 0 for the transport.
[[nodiscard]] std::vector<std::uint8_t> build_addr_dump_request();

/// Decodes one RTM_NEWADDR or RTM_DELADDR message. Addresses of families other than AF_INET and
/// AF_INET6 yield nullopt (nothing to report; the kernel has none today, but the family field is
/// open). base_offset is where the message's nlmsghdr sits in the caller's buffer (for errors).
/// Errors: Errc::malformed for another message type, or an address attribute whose length does
/// not match the family (4 or 16 bytes); Errc::truncated for a payload shorter than ifaddrmsg
/// or a bad attribute header.
[[nodiscard]] Result<std::optional<InterfaceAddress>> decode_addr_message(
    std::uint16_t nlmsg_type, std::span<const std::uint8_t> payload, std::size_t base_offset = 0);

/// Every address of an RTM_GETADDR dump, in dump order. Errors: those of decode_addr_message
/// ("RTM_GETADDR dump: RTM_NEWADDR message at offset N: ...").
[[nodiscard]] Result<std::vector<InterfaceAddress>> parse_addr_dump(const Dump& dump);

// LinkState and parse_link_states(): netlink/rtnl_link.hpp.

/// What the address events queued since the previous drain said.
struct AddressEvents {
    std::vector<InterfaceAddress> changes;  // RTM_NEWADDR/RTM_DELADDR in order of arrival
    bool links_changed = false;  // RTM_NEWLINK/RTM_DELLINK seen: names or up/down may differ
    bool overflowed = false;     // ENOBUFS (events lost), a truncated or undecodable datagram
    std::size_t messages = 0;    // messages read
};

/// Decodes one event datagram into out (appending). Undecodable content sets out.overflowed
/// (it is as good as lost) and returns the error for the caller's log; messages of other types
/// are counted and skipped.
Result<void> decode_address_events(std::span<const std::uint8_t> datagram, AddressEvents& out);

class AddressEventSource {
  public:
    virtual ~AddressEventSource() = default;
    /// Reads every queued event without blocking. ENOBUFS is reported as overflowed, not as an
    /// error. Errors: Errc::system for other socket failures.
    [[nodiscard]] virtual Result<AddressEvents> drain() = 0;
    /// Readable when events are queued (for an event loop), or -1.
    [[nodiscard]] virtual int fd() const { return -1; }
};

/// A NETLINK_ROUTE socket in the calling thread's netns joined to RTNLGRP_IPV4_IFADDR (5),
/// RTNLGRP_IPV6_IFADDR (9) and RTNLGRP_LINK (1) (linux/rtnetlink.h) with
/// NETLINK_ADD_MEMBERSHIP, non-blocking, with a large receive buffer (SO_RCVBUFFORCE, falling
/// back to SO_RCVBUF). Subscribe before the first dump (kernel.md §4). Not thread-safe.
class KernelAddressEventSource final : public AddressEventSource {
  public:
    /// Errors: Errc::system with the errno of socket(), bind() or the membership that failed.
    [[nodiscard]] static Result<std::unique_ptr<KernelAddressEventSource>> open(
        std::size_t receive_buffer = std::size_t{4} << 20);
    ~KernelAddressEventSource() override;
    KernelAddressEventSource(const KernelAddressEventSource&) = delete;
    KernelAddressEventSource& operator=(const KernelAddressEventSource&) = delete;

    [[nodiscard]] Result<AddressEvents> drain() override;
    [[nodiscard]] int fd() const override { return fd_; }

  private:
    explicit KernelAddressEventSource(int fd) : fd_(fd) {}
    int fd_ = -1;
};

}  // namespace vipportd::netlink
