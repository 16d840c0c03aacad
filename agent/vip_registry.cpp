#include "agent/vip_registry.hpp"

#include <algorithm>

namespace vipportd::agent {

VipRegistry::VipRegistry(const std::vector<VipEntry>& entries) {
    for (const auto& e : entries) {
        by_uuid_.emplace(e.uuid, Vip{e.uuid, e.ip, e.netns});
    }
}

std::optional<Vip> VipRegistry::resolve(std::string_view uuid_or_ip) const {
    if (auto it = by_uuid_.find(std::string(uuid_or_ip)); it != by_uuid_.end()) {
        return it->second;
    }
    auto ip = netlink::InetAddress::parse(uuid_or_ip);
    if (!ip) {
        return std::nullopt;
    }
    const auto a = ip->unmapped();
    const bool multicast = a.family == netlink::Family::v4 ? (a.bytes[0] & 0xf0) == 0xe0
                                                           : a.bytes[0] == 0xff;  // 224/4, ff00::/8
    if (a.is_unspecified() || multicast) {
        return std::nullopt;
    }
    return Vip{std::string(uuid_or_ip), *ip, {}};
}

std::vector<Vip> VipRegistry::all() const {
    std::vector<Vip> out;
    out.reserve(by_uuid_.size());
    for (const auto& [uuid, vip] : by_uuid_) {
        out.push_back(vip);
    }
    std::sort(out.begin(), out.end(), [](const Vip& a, const Vip& b) { return a.uuid < b.uuid; });
    return out;
}

}  // namespace vipportd::agent
