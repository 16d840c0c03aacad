#pragma once
// AddressTable: the addresses configured on the interfaces of one network namespace, as the
// rtnetlink address cache (address_source.hpp) last saw them, and the answer to "is this VIP
// present here right now?" (issue 6, HA: a backup router's VIP is absent).
//
// Presence. A VIP is present when one of its entries is usable: the address is configured, its
// interface is administratively up, and it is neither tentative nor dadfailed.
//  - IPv6 DAD (RFC 4862 §5.4): a tentative address cannot be bound without IP_FREEBIND
//    (kernel.md §4) and receives no traffic; it is reported as "tentative", not present. It
//    turns present by itself when DAD completes (an RTM_NEWADDR without IFA_F_TENTATIVE). An
//    optimistic address (IFA_F_OPTIMISTIC, RFC 4429) is usable during DAD and counts as present.
//  - dadfailed: another node owns the address; never present.
//  - deprecated (preferred lifetime over) is still usable: present.
//  - interface down (no IFF_UP): ZStack's HA backup sets non-management NICs down and keeps the
//    public VIPs configured on them (zstack-api.md §15); the kernel removes the local routes of
//    a down interface, so the address is not local any more. Reported as "link-down".
// Several entries for one address (the same IP on two interfaces) are allowed by the kernel;
// the best state wins (present over tentative over link-down over dadfailed).
//
// Immutable once built: the source builds a new table per change and shares it with snapshots.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "netlink/inet_address.hpp"

namespace vipportd::agent {

struct AddressEntry {
    netlink::InetAddress address;              // the local address (IFA_LOCAL, else IFA_ADDRESS)
    std::optional<netlink::InetAddress> peer;  // point-to-point peer (IFA_ADDRESS)
    std::uint8_t prefix_len = 0;
    std::uint8_t scope = 0;
    std::uint32_t ifindex = 0;
    std::string interface;    // link name (IFLA_IFNAME); the label, or "if<N>", when unknown
    std::string label;        // IFA_LABEL (IPv4), e.g. "eth0:vip"; "" when absent
    std::uint32_t flags = 0;  // IFA_F_* (netlink/rtnl_addr.hpp)
    bool link_up = true;      // the interface has IFF_UP (true when the link is unknown)

    friend bool operator==(const AddressEntry&, const AddressEntry&) = default;
};

enum class AddressState : std::uint8_t {
    present,    // usable now
    tentative,  // IPv6 DAD in progress (not optimistic)
    link_down,  // configured on an interface that is down
    dadfailed,  // IPv6 DAD failed
    absent,     // not configured on any interface
};

/// "present", "tentative", "link-down", "dadfailed", "absent".
std::string_view to_string(AddressState s);

/// The state of one entry (what presence() combines).
AddressState state_of(const AddressEntry& e);

struct Presence {
    AddressState state = AddressState::absent;
    std::string interface;  // of the entry that decided the state; "" when absent
    [[nodiscard]] bool present() const { return state == AddressState::present; }
};

struct Snapshot;

class AddressTable {
  public:
    AddressTable() = default;
    /// entries in any order; they are sorted by (address, ifindex).
    explicit AddressTable(std::vector<AddressEntry> entries);

    /// Every entry of address (a v4-mapped address is looked up as IPv4), in ifindex order.
    [[nodiscard]] std::vector<AddressEntry> find(const netlink::InetAddress& address) const;
    /// Whether address is usable here (see the file comment), and on which interface.
    [[nodiscard]] Presence presence(const netlink::InetAddress& address) const;

    [[nodiscard]] const std::vector<AddressEntry>& entries() const { return entries_; }
    [[nodiscard]] std::size_t size() const { return entries_.size(); }

  private:
    std::vector<AddressEntry> entries_;  // sorted by (address, ifindex, prefix_len)
};

/// address's presence per snapshot's address table; nullopt when the snapshot has none, with
/// *why (when not null) saying so: "addresses failed: ..." (the source's error), the failed
/// source of a namespace that could not be read, or "no address source".
std::optional<Presence> presence_in(const Snapshot& snapshot,
                                    const netlink::InetAddress& address,
                                    std::string* why = nullptr);

}  // namespace vipportd::agent
