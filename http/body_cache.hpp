#pragma once
// BodyCache: rendered usedports bodies (plain and gzip), keyed by what the body says rather than
// by snapshot. Every request gets a fresh snapshot, but a polled VIP's ports rarely change: when
// a new snapshot yields the same PortSet for the same (uuid, protocol, schema), the previous
// bytes are reused, so 64 pollers cost one render and at most one compression per change.
// Bounded by bytes; thread-safe.

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "agent/model.hpp"

namespace vipportd::http {

class BodyCache {
  public:
    using Body = std::shared_ptr<const std::string>;
    using Render = std::function<std::string()>;

    explicit BodyCache(std::size_t max_bytes = kDefaultMaxBytes) : max_bytes_(max_bytes) {}

    /// The body for key and ports: cached when ports equal the cached ones, else render() is
    /// called (outside the lock) and stored. With gzip, the gzip member of that body (compressed
    /// once per distinct body).
    [[nodiscard]] Body get(const std::string& key,
                           const agent::PortSet& ports,
                           bool gzip,
                           const Render& render);

    [[nodiscard]] std::size_t bytes() const;
    [[nodiscard]] std::size_t renders() const;       // cache misses that rendered
    [[nodiscard]] std::size_t compressions() const;  // gzip members built

    /// 8 MiB: a few dozen whole-IP bodies (0.5 MB plain + 0.14 MB gzip each) or thousands of
    /// ordinary ones, well inside the daemon's memory budget.
    static constexpr std::size_t kDefaultMaxBytes = std::size_t{8} << 20U;

  private:
    struct Entry {
        agent::PortSet ports;
        Body plain;
        Body gzip;
    };
    static std::size_t cost(const Entry& e);

    const std::size_t max_bytes_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, Entry> entries_;
    std::size_t bytes_ = 0;
    std::size_t renders_ = 0;
    std::size_t compressions_ = 0;
};

}  // namespace vipportd::http
