#pragma once
// Per-client request rate limit: one token bucket per client address (IPv4 /32, IPv6 /64, so that
// one host cannot dodge the limit by rotating through its own /64; RFC 4291 §2.5.4 interface
// identifiers). A request takes one token; tokens come back at `rate` per second up to `burst`.
// The table of buckets is bounded: when it is full, buckets that have refilled (indistinguishable
// from a new client) are dropped first, then an arbitrary one.

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include <boost/asio/ip/address.hpp>

namespace vipportd::http {

class RateLimiter {
  public:
    using Clock = std::chrono::steady_clock;

    struct Verdict {
        bool allowed = true;
        /// When refused: whole seconds until a token is back (at least 1), for Retry-After.
        std::chrono::seconds retry_after{0};
    };

    /// rate > 0 requests per second, burst >= 1. max_clients bounds the memory (~100 B each).
    RateLimiter(double rate, std::uint32_t burst, std::size_t max_clients = 16384);

    /// Takes a token for client at time now. Thread-safe.
    [[nodiscard]] Verdict acquire(const boost::asio::ip::address& client, Clock::time_point now);

    /// Requests refused so far. Thread-safe.
    [[nodiscard]] std::uint64_t refused() const { return refused_.load(); }
    /// Buckets currently tracked. Thread-safe.
    [[nodiscard]] std::size_t tracked() const;

  private:
    using Key = std::array<std::uint8_t, 16>;
    struct KeyHash {
        std::size_t operator()(const Key& k) const noexcept;
    };
    struct Bucket {
        double tokens = 0;
        Clock::time_point last;
    };
    static Key key_of(const boost::asio::ip::address& a);
    void make_room(Clock::time_point now);  // under mutex_

    const double rate_;
    const double burst_;
    const std::size_t max_clients_;
    mutable std::mutex mutex_;
    std::unordered_map<Key, Bucket, KeyHash> buckets_;
    std::atomic<std::uint64_t> refused_{0};
};

}  // namespace vipportd::http
