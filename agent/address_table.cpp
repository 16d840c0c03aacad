#include "agent/address_table.hpp"

#include <algorithm>
#include <tuple>

#include "agent/model.hpp"
#include "netlink/rtnl_addr.hpp"

namespace vipportd::agent {

namespace {

auto key(const AddressEntry& e) { return std::tie(e.address, e.ifindex, e.prefix_len); }

// Lower is better: the order in which presence() prefers entries of one address.
int rank(AddressState s) { return static_cast<int>(s); }

}  // namespace

std::string_view to_string(AddressState s) {
    switch (s) {
        case AddressState::present:
            return "present";
        case AddressState::tentative:
            return "tentative";
        case AddressState::link_down:
            return "link-down";
        case AddressState::dadfailed:
            return "dadfailed";
        case AddressState::absent:
            return "absent";
    }
    return "absent";
}

AddressState state_of(const AddressEntry& e) {
    if ((e.flags & netlink::kIfaDadFailed) != 0) {
        return AddressState::dadfailed;
    }
    if (!e.link_up) {
        return AddressState::link_down;
    }
    // IFA_F_OPTIMISTIC addresses may be used while DAD runs (RFC 4429; the kernel sets
    // TENTATIVE and OPTIMISTIC together, net/ipv6/addrconf.c addrconf_dad_begin).
    if ((e.flags & netlink::kIfaTentative) != 0 && (e.flags & netlink::kIfaOptimistic) == 0) {
        return AddressState::tentative;
    }
    return AddressState::present;
}

AddressTable::AddressTable(std::vector<AddressEntry> entries) : entries_(std::move(entries)) {
    std::sort(entries_.begin(), entries_.end(),
              [](const AddressEntry& a, const AddressEntry& b) { return key(a) < key(b); });
}

std::vector<AddressEntry> AddressTable::find(const netlink::InetAddress& address) const {
    const auto a = address.unmapped();
    const auto lo = std::lower_bound(
        entries_.begin(), entries_.end(), a,
        [](const AddressEntry& e, const netlink::InetAddress& x) { return e.address < x; });
    std::vector<AddressEntry> out;
    for (auto it = lo; it != entries_.end() && it->address == a; ++it) {
        out.push_back(*it);
    }
    return out;
}

Presence AddressTable::presence(const netlink::InetAddress& address) const {
    Presence best;
    bool first = true;
    for (const auto& e : find(address)) {
        const auto s = state_of(e);
        if (first || rank(s) < rank(best.state)) {
            first = false;
            best.state = s;
            best.interface = e.interface;
        }
    }
    return best;
}

std::optional<Presence> presence_in(const Snapshot& snapshot,
                                    const netlink::InetAddress& address,
                                    std::string* why) {
    if (snapshot.addresses) {
        return snapshot.addresses->presence(address);
    }
    if (why != nullptr) {
        *why = "no address source";
        const SourceStatus* failed = nullptr;
        for (const auto& s : snapshot.sources) {
            if (!s.ok && (s.name == "addresses" || failed == nullptr)) {
                failed = &s;
            }
        }
        if (failed != nullptr) {
            *why = failed->name + " failed: " + failed->error;
        }
    }
    return std::nullopt;
}

}  // namespace vipportd::agent
