#pragma once
// VIP registry: uuid -> address. Immutable once built; a reload builds a new one and swaps it.

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "agent/config.hpp"

namespace vipportd::agent {

struct Vip {
    std::string uuid;  // as the caller named it (a registered uuid, or the literal address text)
    netlink::InetAddress ip;
    std::string netns{};  // "" = the daemon's own namespace (VipEntry::netns)
};

class VipRegistry {
  public:
    VipRegistry() = default;
    explicit VipRegistry(const std::vector<VipEntry>& entries);

    /// A registered uuid, or else a literal IPv4/IPv6 address (the diagnostics extension). The
    /// unspecified and multicast addresses are not VIPs. nullopt means "not found" (SYS.1003).
    [[nodiscard]] std::optional<Vip> resolve(std::string_view uuid_or_ip) const;
    [[nodiscard]] std::size_t size() const { return by_uuid_.size(); }
    /// Every registered VIP, ordered by uuid (batch polling, listings).
    [[nodiscard]] std::vector<Vip> all() const;

  private:
    std::unordered_map<std::string, Vip> by_uuid_;
};

}  // namespace vipportd::agent
