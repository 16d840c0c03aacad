#include "http/rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace vipportd::http {

RateLimiter::RateLimiter(double rate, std::uint32_t burst, std::size_t max_clients)
    : rate_(rate),
      burst_(static_cast<double>(burst)),
      max_clients_(std::max<std::size_t>(1, max_clients)) {
    if (!(rate > 0) || burst == 0) {
        throw std::invalid_argument("http::RateLimiter: rate and burst must be positive");
    }
}

std::size_t RateLimiter::KeyHash::operator()(const Key& k) const noexcept {
    // FNV-1a (64-bit offset basis and prime, http://www.isthe.com/chongo/tech/comp/fnv/).
    std::uint64_t h = 14695981039346656037ULL;
    for (const std::uint8_t b : k) {
        h = (h ^ b) * 1099511628211ULL;
    }
    return static_cast<std::size_t>(h);
}

RateLimiter::Key RateLimiter::key_of(const boost::asio::ip::address& a) {
    Key k{};
    if (a.is_v4() || (a.is_v6() && a.to_v6().is_v4_mapped())) {
        const auto v4 =
            a.is_v4() ? a.to_v4()
                      : boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6());
        const auto b = v4.to_bytes();
        std::copy(b.begin(), b.end(), k.begin());
        k[15] = 4;  // keeps 1.2.3.4 apart from the IPv6 prefix 0102:0304::/64
        return k;
    }
    const auto b = a.to_v6().to_bytes();
    std::copy_n(b.begin(), 8, k.begin());  // the /64 prefix
    k[15] = 6;
    return k;
}

void RateLimiter::make_room(Clock::time_point now) {
    // A bucket that has refilled since its last request behaves exactly like a missing one.
    const auto full_after = std::chrono::duration<double>(burst_ / rate_);
    std::erase_if(buckets_, [&](const auto& kv) { return now - kv.second.last >= full_after; });
    if (buckets_.size() >= max_clients_) {
        buckets_.erase(buckets_.begin());  // still full: more active clients than the table holds
    }
}

RateLimiter::Verdict RateLimiter::acquire(const boost::asio::ip::address& client,
                                          Clock::time_point now) {
    const Key k = key_of(client);
    std::lock_guard lock(mutex_);
    auto it = buckets_.find(k);
    if (it == buckets_.end()) {
        if (buckets_.size() >= max_clients_) {
            make_room(now);
        }
        it = buckets_.emplace(k, Bucket{burst_, now}).first;
    }
    Bucket& b = it->second;
    const double elapsed = std::chrono::duration<double>(now - b.last).count();
    if (elapsed > 0) {
        b.tokens = std::min(burst_, b.tokens + elapsed * rate_);
        b.last = now;
    }
    if (b.tokens >= 1) {
        b.tokens -= 1;
        return {};
    }
    refused_.fetch_add(1);
    const double wait = (1 - b.tokens) / rate_;
    return {false, std::chrono::seconds(
                       std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(wait))))};
}

std::size_t RateLimiter::tracked() const {
    std::lock_guard lock(mutex_);
    return buckets_.size();
}

}  // namespace vipportd::http
