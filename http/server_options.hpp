#pragma once
// Limits and timeouts of the HTTP server (operations.md §5.4, style.md §4), and their mapping from
// the [http] and [tls] configuration sections.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>

#include "agent/config.hpp"

namespace vipportd::http {

struct RequestOutcome;  // http/router.hpp

struct ServerOptions {
    /// Keep-alive: how long a connection may wait for the first byte of its next request. Expiry
    /// closes silently (nothing was asked, so nothing is owed).
    std::chrono::milliseconds idle_timeout{std::chrono::seconds(30)};
    /// From the first byte of a request until it is completely read (slow-loris bound). Expiry
    /// answers 408 and closes.
    std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};
    /// Writing one response (a whole-range VIP is ~0.5 MB).
    std::chrono::milliseconds write_timeout{std::chrono::seconds(10)};
    /// TLS listeners: from accept until the handshake is done. Expiry closes.
    std::chrono::milliseconds handshake_timeout{std::chrono::seconds(10)};
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
    /// Open connections over this server's listeners; a connection accepted beyond it is closed
    /// at once.
    std::size_t max_connections = 256;
    /// Per client address (IPv4 /32, IPv6 /64): sustained requests per second and burst; beyond
    /// them a request answers 429 with Retry-After. 0 requests per second: no limit.
    double rate_limit_per_ip = 0;
    std::uint32_t rate_limit_burst = 20;
    /// TLS on some or all listeners (tls.enabled false: plain HTTP everywhere).
    agent::TlsConfig tls;
    /// Called once for every answer the connection gives without the router (400, 408, 413,
    /// 414, 431, 429), on the connection's strand, route "other": what the router's
    /// Observability::on_response does for its own answers (logging, metrics).
    std::function<void(const RequestOutcome&)> on_reject;
};

/// The options a configuration asks for ([http] and [tls]; the rest keeps its defaults).
[[nodiscard]] ServerOptions server_options(const agent::Config& config);

}  // namespace vipportd::http
