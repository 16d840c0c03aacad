#include "agent/address_source.hpp"

#include <linux/netlink.h>

#include "netlink/kernel_transport.hpp"
#include "netlink/rtnl_link.hpp"

namespace vipportd::agent {

namespace {

const ClaimList& no_claims() {
    static const ClaimList empty = std::make_shared<const std::vector<Claim>>();
    return empty;
}

}  // namespace

AddressSource::AddressSource(std::unique_ptr<netlink::Transport> transport,
                             std::unique_ptr<netlink::AddressEventSource> events)
    : transport_(std::move(transport)), events_(std::move(events)) {}

std::unique_ptr<AddressSource> AddressSource::open_kernel() {
    // Events first, so that nothing between the subscription and the first dump is missed.
    auto events = netlink::KernelAddressEventSource::open();
    std::unique_ptr<netlink::AddressEventSource> ev;
    std::optional<netlink::Error> error;
    if (events) {
        ev = std::move(*events);
    } else {
        error = events.error();
    }
    auto source = std::make_unique<AddressSource>(
        std::make_unique<netlink::KernelTransport>(NETLINK_ROUTE), std::move(ev));
    source->events_error_ = std::move(error);
    return source;
}

netlink::Result<std::vector<Claim>> AddressSource::collect() {
    if (auto r = refresh(); !r) {
        return r.error();
    }
    return std::vector<Claim>{};
}

netlink::Result<Collected> AddressSource::collect_shared() {
    if (auto r = refresh(); !r) {
        return r.error();
    }
    return Collected{no_claims(), nullptr, table_};
}

netlink::Result<void> AddressSource::refresh() {
    if (!synced_ || !events_) {
        return resync();
    }
    auto ev = events_->drain();
    if (!ev) {
        // The socket broke: continue without events (a dump per collection stays exact).
        events_error_ = ev.error();
        events_.reset();
        return resync();
    }
    if (ev->overflowed) {
        return resync();  // events were lost (ENOBUFS): only a dump is trustworthy (kernel.md §4)
    }
    for (const auto& a : ev->changes) {
        apply(a);
    }
    if (ev->links_changed) {
        if (auto r = dump_links(); !r) {
            synced_ = false;
            return r.error();
        }
    }
    publish();
    return {};
}

netlink::Result<void> AddressSource::resync() {
    synced_ = false;
    if (events_) {
        // What is queued now is older than the dump below; events that arrive during the dump
        // are applied at the next collection, which converges (see the header).
        auto ev = events_->drain();
        if (!ev) {
            events_error_ = ev.error();
            events_.reset();
        }
    }
    ++dumps_;
    auto dump = netlink::exchange_consistent(*transport_, netlink::build_addr_dump_request());
    if (!dump) {
        return dump.error();
    }
    auto parsed = netlink::parse_addr_dump(*dump);
    if (!parsed) {
        return parsed.error();
    }
    std::map<Key, netlink::InterfaceAddress> fresh;
    for (const auto& a : *parsed) {
        fresh[Key{a.ifindex, a.address, a.prefix_len}] = a;
    }
    if (fresh != addresses_) {
        addresses_ = std::move(fresh);
        dirty_ = true;
    }
    if (auto r = dump_links(); !r) {
        return r.error();
    }
    synced_ = true;
    publish();
    return {};
}

netlink::Result<void> AddressSource::dump_links() {
    auto dump = netlink::exchange_consistent(*transport_, netlink::build_link_dump_request());
    if (!dump) {
        return dump.error();
    }
    auto links = netlink::parse_link_states(*dump);
    if (!links) {
        return links.error();
    }
    if (*links != links_) {
        links_ = std::move(*links);
        dirty_ = true;
    }
    // An interface that is gone takes its addresses along (the kernel also sends RTM_DELADDR for
    // them, net/ipv4/devinet.c inetdev_destroy, net/ipv6/addrconf.c addrconf_ifdown).
    if (std::erase_if(addresses_, [this](const auto& kv) {
            return !links_.contains(std::get<0>(kv.first));
        }) > 0) {
        dirty_ = true;
    }
    return {};
}

void AddressSource::apply(const netlink::InterfaceAddress& a) {
    Key key{a.ifindex, a.address, a.prefix_len};
    if (a.deleted) {
        dirty_ = addresses_.erase(key) > 0 || dirty_;
        return;
    }
    auto [it, inserted] = addresses_.try_emplace(key, a);
    if (inserted) {
        dirty_ = true;
    } else if (!(it->second == a)) {
        it->second = a;
        dirty_ = true;
    }
}

void AddressSource::publish() {
    if (!dirty_ && table_) {
        return;  // unchanged: snapshots keep sharing the same table
    }
    dirty_ = false;
    std::vector<AddressEntry> entries;
    entries.reserve(addresses_.size());
    for (const auto& [key, a] : addresses_) {
        AddressEntry e;
        e.address = a.address;
        e.peer = a.peer;
        e.prefix_len = a.prefix_len;
        e.scope = a.scope;
        e.ifindex = a.ifindex;
        e.label = a.label;
        e.flags = a.flags;
        if (const auto l = links_.find(a.ifindex); l != links_.end()) {
            e.interface = l->second.name;
            e.link_up = l->second.up();
        }
        if (e.interface.empty()) {
            e.interface = !a.label.empty() ? a.label : "if" + std::to_string(a.ifindex);
        }
        entries.push_back(std::move(e));
    }
    auto next = std::make_shared<const AddressTable>(std::move(entries));
    if (table_ && table_->entries() == next->entries()) {
        return;  // events that cancel out (tentative, then DAD done again): keep sharing
    }
    table_ = std::move(next);
}

}  // namespace vipportd::agent
