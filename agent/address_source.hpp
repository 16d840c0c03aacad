#pragma once
// AddressSource: the "addresses" PortSource. It claims no ports; it keeps an rtnetlink cache of
// the namespace's interface addresses (AddressTable) current by events and hands it to every
// snapshot, so that queries can say whether a VIP is present (issue 6, HA).
//
// - The event subscription (RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, RTNLGRP_LINK) is made when
//   the source is built, before the first dump (kernel.md §4: "Subscribe before dumping").
// - The first collection, and any after lost events (ENOBUFS, a truncated or undecodable
//   datagram) or a failure, drains the queue and re-dumps: RTM_GETADDR (retried on
//   NLM_F_DUMP_INTR; IPv4 address dumps set it) and RTM_GETLINK.
// - Otherwise each collection drains the queued events without blocking and applies them in
//   order. RTM_NEWADDR carries the whole address (it replaces), RTM_DELADDR removes it, so
//   replaying events that the dump already saw converges to the same state. A link event
//   re-dumps the links only (names and IFF_UP; addresses of a vanished interface go with it).
// - Nothing changed: the same shared table as last time (no allocation).
// - Without an event source (the subscription failed, or the socket broke) every collection
//   dumps; the table stays exact, only dearer.
//
// Not thread-safe: collect() runs on the scan worker only. Registered as a non-required source
// (agent/sources.cpp): when it fails, presence is unknown and queries still answer.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string_view>
#include <tuple>
#include <vector>

#include "agent/address_table.hpp"
#include "agent/source.hpp"
#include "netlink/error.hpp"
#include "netlink/rtnl_addr.hpp"
#include "netlink/transport.hpp"

namespace vipportd::agent {

class AddressSource final : public PortSource {
  public:
    /// transport: NETLINK_ROUTE requests in the netns to read (KernelTransport or a replay).
    /// events: that netns' address events, already subscribed, or null.
    AddressSource(std::unique_ptr<netlink::Transport> transport,
                  std::unique_ptr<netlink::AddressEventSource> events);

    /// A KernelTransport(NETLINK_ROUTE) and a KernelAddressEventSource in the calling thread's
    /// netns, subscribed now. Without events (the subscription failed), events_error() says why.
    [[nodiscard]] static std::unique_ptr<AddressSource> open_kernel();

    [[nodiscard]] std::string_view name() const override { return "addresses"; }
    /// No claims; refreshes the table. Errors: the dump's ("RTM_GETADDR dump: ...").
    [[nodiscard]] netlink::Result<std::vector<Claim>> collect() override;
    /// Collected{no claims, no sockets, the current table}.
    [[nodiscard]] netlink::Result<Collected> collect_shared() override;

    /// The table of the last successful collection (null before the first).
    [[nodiscard]] std::shared_ptr<const AddressTable> table() const { return table_; }
    /// Full re-dumps so far (the first one included).
    [[nodiscard]] std::uint64_t dumps() const { return dumps_; }
    /// Why there are no events (subscription or receive failure), if so.
    [[nodiscard]] const std::optional<netlink::Error>& events_error() const {
        return events_error_;
    }

  private:
    using Key = std::tuple<std::uint32_t, netlink::InetAddress, std::uint8_t>;
    [[nodiscard]] netlink::Result<void> refresh();
    [[nodiscard]] netlink::Result<void> resync();
    [[nodiscard]] netlink::Result<void> dump_links();
    void apply(const netlink::InterfaceAddress& a);
    void publish();

    std::unique_ptr<netlink::Transport> transport_;
    std::unique_ptr<netlink::AddressEventSource> events_;
    std::optional<netlink::Error> events_error_;
    std::map<Key, netlink::InterfaceAddress> addresses_;  // (ifindex, address, prefix_len)
    std::map<std::uint32_t, netlink::LinkState> links_;
    std::shared_ptr<const AddressTable> table_;
    bool synced_ = false;
    bool dirty_ = false;  // addresses_ or links_ changed since the table was built
    std::uint64_t dumps_ = 0;
};

}  // namespace vipportd::agent
