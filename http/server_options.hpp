#pragma once
// Limits and timeouts of the HTTP server (operations.md §5.4, style.md §4).

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace vipportd::http {

struct ServerOptions {
    /// Keep-alive: how long a connection may wait for the first byte of its next request.
    std::chrono::milliseconds idle_timeout{std::chrono::seconds(30)};
    /// From the first byte of a request until it is completely read (slow-loris bound).
    std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};
    /// Writing one response (a whole-range VIP is ~0.5 MB).
    std::chrono::milliseconds write_timeout{std::chrono::seconds(10)};
    /// After the last response of a connection: how long to wait for the peer to close while
    /// discarding what it still sends (lingering close), and how many bytes to discard at most.
    std::chrono::milliseconds close_linger{std::chrono::seconds(2)};
    std::uint64_t drain_limit = 64 * 1024;
    /// Pause before accepting again after an accept error (EMFILE must not busy-loop).
    std::chrono::milliseconds accept_backoff{std::chrono::milliseconds(200)};
    /// Request line plus header fields (Beast's default, basic_parser.hpp); larger answers 431.
    std::uint32_t header_limit = 8 * 1024;
    /// Request target length; longer answers 414.
    std::size_t target_limit = 4 * 1024;
    /// Body of any request; larger answers 413. GET and HEAD may not carry a body at all (413).
    std::uint64_t body_limit = 1024;
    /// Open connections over all listeners; a connection accepted beyond it is closed at once.
    std::size_t max_connections = 256;
};

}  // namespace vipportd::http
