#include "agent/socket_table.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "agent/socket_source.hpp"

namespace vipportd::agent {

namespace {

struct Key {
    std::uint8_t protocol = 0;
    InetAddress address;
    friend bool operator==(const Key&, const Key&) = default;
};

struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept {
        std::uint64_t lo = 0;
        std::uint64_t hi = 0;
        std::memcpy(&lo, k.address.bytes.data(), 8);
        std::memcpy(&hi, k.address.bytes.data() + 8, 8);
        // A multiply-xorshift mix (the constants are splitmix64's): addresses of one subnet
        // differ only in their last bytes, which must reach every bit of the hash.
        std::uint64_t h = lo ^ (hi * 0x9e3779b97f4a7c15ULL) ^ (std::uint64_t{k.protocol} << 56U) ^
                          (std::uint64_t{static_cast<std::uint8_t>(k.address.family)} << 48U);
        h ^= h >> 31U;
        h *= 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 29U;
        return static_cast<std::size_t>(h);
    }
};

}  // namespace

SocketRecord SocketRecord::from(const netlink::SocketEntry& e) {
    SocketRecord r;
    r.address = e.address;
    r.protocol = e.protocol;
    r.state = e.state;
    r.port = e.port;
    r.ifindex = e.ifindex;
    r.uid = e.uid;
    r.inode = e.inode;
    if (e.v6only.has_value()) {
        r.flags |= kV6onlyKnown;
        if (*e.v6only) {
            r.flags |= kV6only;
        }
    }
    if (e.freebind.value_or(false)) {
        r.flags |= kFreebind;
    }
    if (e.transparent.value_or(false)) {
        r.flags |= kTransparent;
    }
    return r;
}

netlink::SocketEntry SocketRecord::entry() const {
    netlink::SocketEntry e;
    e.family = address.family;
    e.protocol = protocol;
    e.state = state;
    e.address = address;
    e.port = port;
    e.ifindex = ifindex;
    e.uid = uid;
    e.inode = inode;
    if ((flags & kV6onlyKnown) != 0) {
        e.v6only = (flags & kV6only) != 0;
    }
    e.freebind = (flags & kFreebind) != 0;
    e.transparent = (flags & kTransparent) != 0;
    return e;
}

SocketTable::SocketTable(std::vector<SocketRecord> records,
                         std::map<std::uint32_t, std::string> device_names)
    : records_(std::move(records)), device_names_(std::move(device_names)) {
    // Bucket ids in order of first appearance; consecutive records often share an address, so
    // the hash map is consulted only when the key changes.
    std::unordered_map<Key, std::uint32_t, KeyHash> ids;
    std::vector<Key> keys;
    std::vector<std::uint32_t> slot(records_.size());  // bucket id, then final position
    Key last{};
    std::uint32_t last_id = 0;
    for (std::size_t i = 0; i < records_.size(); ++i) {
        const Key k{records_[i].protocol, records_[i].address.unmapped()};
        if (i == 0 || !(k == last)) {
            const auto [it, inserted] = ids.try_emplace(k, static_cast<std::uint32_t>(keys.size()));
            if (inserted) {
                keys.push_back(k);
            }
            last = k;
            last_id = it->second;
        }
        slot[i] = last_id;
    }

    // Buckets sorted by key (few: one per distinct address), then a counting sort of the records.
    std::vector<std::uint32_t> order(keys.size());
    std::iota(order.begin(), order.end(), 0U);
    std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
        return std::tie(keys[a].protocol, keys[a].address) <
               std::tie(keys[b].protocol, keys[b].address);
    });
    std::vector<std::uint32_t> count(keys.size(), 0);
    for (const std::uint32_t id : slot) {
        ++count[id];
    }
    std::vector<std::uint32_t> next(keys.size(), 0);
    buckets_.reserve(keys.size());
    std::uint32_t at = 0;
    for (const std::uint32_t id : order) {
        buckets_.push_back(Bucket{keys[id].protocol, keys[id].address, at, at + count[id]});
        next[id] = at;
        at += count[id];
    }
    // The counting sort's placement, applied in place by following each permutation cycle: the
    // records are sorted where they were collected, with no second 40-byte-per-socket array
    // (2.3 MB at 57,000 sockets, and the scan's peak). Stable within a bucket, as a copy would be.
    for (auto& s : slot) {
        s = next[s]++;
    }
    for (std::uint32_t i = 0; i < slot.size(); ++i) {
        while (slot[i] != i) {
            const std::uint32_t j = slot[i];
            std::swap(records_[i], records_[j]);
            std::swap(slot[i], slot[j]);
        }
    }
}

const SocketTable::Bucket* SocketTable::find(std::uint8_t protocol, const InetAddress& key) const {
    const auto it =
        std::lower_bound(buckets_.begin(), buckets_.end(), std::tie(protocol, key),
                         [](const Bucket& b, auto k) { return std::tie(b.protocol, b.key) < k; });
    if (it == buckets_.end() || it->protocol != protocol || !(it->key == key)) {
        return nullptr;
    }
    return &*it;
}

template <typename Fn>
void SocketTable::visit(const InetAddress& vip, Protocol p, Fn&& fn) const {
    const auto proto = static_cast<std::uint8_t>(p);
    const InetAddress v = vip.unmapped();
    const auto each = [&](const Bucket* b, bool skip_v6only) {
        if (b == nullptr) {
            return;
        }
        for (std::uint32_t i = b->begin; i < b->end; ++i) {
            const SocketRecord& r = records_[i];
            if (skip_v6only && (r.flags & SocketRecord::kV6only) != 0) {
                continue;  // [::] with IPV6_V6ONLY holds no IPv4 port (kernel.md §1.5)
            }
            fn(r);
        }
    };
    each(find(proto, v), false);
    if (!v.is_unspecified()) {
        each(find(proto, InetAddress::any(v.family)), false);
    }
    if (v.family == Family::v4) {
        // [::] without V6ONLY (or without the attribute: assumed dual-stack, socket_scope()).
        each(find(proto, InetAddress::any(Family::v6)), true);
    }
}

void SocketTable::add_ports(const InetAddress& vip, Protocol p, PortBitmap& out) const {
    visit(vip, p, [&out](const SocketRecord& r) { out.set(r.port); });
}

std::vector<Claim> SocketTable::claims_for(const InetAddress& vip, Protocol p) const {
    std::vector<netlink::SocketEntry> entries;
    visit(vip, p, [&entries](const SocketRecord& r) { entries.push_back(r.entry()); });
    return socket_claims(entries, device_names_);
}

std::vector<Claim> SocketTable::claims() const {
    std::vector<netlink::SocketEntry> entries;
    entries.reserve(records_.size());
    for (const auto& r : records_) {
        entries.push_back(r.entry());
    }
    return socket_claims(entries, device_names_);
}

}  // namespace vipportd::agent
