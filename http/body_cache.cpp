#include "http/body_cache.hpp"

#include <utility>

#include "http/gzip.hpp"

namespace vipportd::http {

std::size_t BodyCache::cost(const Entry& e) {
    return (e.plain ? e.plain->size() : 0) + (e.gzip ? e.gzip->size() : 0) +
           e.ports.ranges().size() * sizeof(agent::PortRange);
}

BodyCache::Body BodyCache::get(const std::string& key,
                               const agent::PortSet& ports,
                               bool gzip,
                               const Render& render) {
    Body plain;
    {
        std::lock_guard lock(mutex_);
        if (const auto it = entries_.find(key); it != entries_.end() && it->second.ports == ports) {
            if (!gzip) {
                return it->second.plain;
            }
            if (it->second.gzip) {
                return it->second.gzip;
            }
            plain = it->second.plain;
        }
    }
    // Rendering and compressing happen outside the lock: two threads racing on one key may both
    // do the work; the last one stores its (identical) result.
    Entry fresh;
    fresh.ports = ports;
    fresh.plain = plain ? plain : std::make_shared<const std::string>(render());
    if (gzip) {
        fresh.gzip = std::make_shared<const std::string>(gzip_compress(*fresh.plain));
    }
    Body answer = gzip ? fresh.gzip : fresh.plain;

    std::lock_guard lock(mutex_);
    if (!plain) {
        ++renders_;
    }
    if (gzip) {
        ++compressions_;
    }
    if (const auto it = entries_.find(key); it != entries_.end()) {
        bytes_ -= cost(it->second);
        entries_.erase(it);
    }
    const std::size_t c = cost(fresh);
    if (c > max_bytes_) {
        return answer;  // larger than the whole budget: served, not kept
    }
    if (bytes_ + c > max_bytes_) {
        // Crude but bounded: start over. Polled keys come back on their next request.
        entries_.clear();
        bytes_ = 0;
    }
    bytes_ += c;
    entries_.emplace(key, std::move(fresh));
    return answer;
}

std::size_t BodyCache::bytes() const {
    std::lock_guard lock(mutex_);
    return bytes_;
}

std::size_t BodyCache::renders() const {
    std::lock_guard lock(mutex_);
    return renders_;
}

std::size_t BodyCache::compressions() const {
    std::lock_guard lock(mutex_);
    return compressions_;
}

}  // namespace vipportd::http
