#pragma once
// Server: binds the configured listeners and runs one Connection per accepted socket.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "agent/config.hpp"
#include "http/router.hpp"
#include "http/server_options.hpp"

namespace vipportd::http {

class Server {
  public:
    /// Nothing is bound until start(). router must outlive every connection, i.e. stay alive
    /// until ioc.run() has returned after stop().
    Server(boost::asio::io_context& ioc,
           const std::vector<agent::ListenEndpoint>& endpoints,
           Router& router,
           ServerOptions options = {});
    ~Server();  // stop()
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// Loads the TLS context when options.tls is enabled (std::runtime_error naming the file),
    /// binds and listens on every endpoint (SO_REUSEADDR; IPV6_V6ONLY on IPv6 listeners, so
    /// 127.0.0.1:P and [::1]:P coexist), then starts accepting. Port 0 picks a free port.
    /// Throws std::system_error naming the endpoint and the failed step; nothing stays bound then.
    /// Throws std::logic_error when called twice.
    void start();
    /// Socket activation (sd_listen_fds(3)): serves on listening sockets someone else opened,
    /// instead of binding the configured endpoints. Takes ownership of fds. Throws
    /// std::system_error naming the descriptor when one is not a listening TCP socket; then
    /// nothing is served.
    void start(const std::vector<int>& fds);
    /// The address an inherited listening socket is bound to; throws std::system_error when fd
    /// is not a listening TCP/IPv4 or TCP/IPv6 socket.
    [[nodiscard]] static agent::ListenEndpoint inherited_endpoint(int fd);

    /// Thread-safe, idempotent. Closes the listeners, closes idle keep-alive connections and those
    /// still in their TLS handshake, and lets requests in progress finish: a request being read
    /// or handled is answered (with "Connection: close"), a response being written is written to
    /// its end, and each then closes with a lingering close (at most close_linger). When the last
    /// connection is gone the server holds no work, so ioc.run() returns: a caller that wants a
    /// grace period bounds it with its own timer and ioc.stop() (on_drained() tells when).
    void stop();

    /// The bound addresses, in endpoint order (the real port when 0 was asked). Empty before
    /// start().
    [[nodiscard]] std::vector<boost::asio::ip::tcp::endpoint> local_endpoints() const;

    /// Connections currently open (including those in their lingering close). Thread-safe.
    [[nodiscard]] std::size_t connection_count() const;

    /// Thread-safe. Calls f once, as soon as stop() has been called and no connection is left:
    /// on the thread where the last connection closed (an io thread), or inside on_drained() or
    /// stop() when none is open by then. f must not block; posting to an executor or calling
    /// ioc.stop() is fine. For a shutdown that waits for in-flight responses without polling
    /// connection_count(); the caller still bounds the wait.
    void on_drained(std::function<void()> f);

    struct Stats {
        std::uint64_t accepted = 0;               // connections accepted, served or not
        std::uint64_t refused_over_capacity = 0;  // closed at accept: max_connections reached
        std::uint64_t accept_errors = 0;          // failed accept(2) calls (EMFILE, ENFILE, ...)
        std::uint64_t rate_limited = 0;           // requests answered 429
        std::size_t open = 0;                     // connection_count()
    };
    /// Counters since start(), for /metrics. Thread-safe.
    [[nodiscard]] Stats stats() const;

  private:
    struct Shared;
    struct Listener;

    boost::asio::io_context& ioc_;
    std::vector<agent::ListenEndpoint> endpoints_;
    std::shared_ptr<Shared> shared_;
    std::vector<std::shared_ptr<Listener>> listeners_;
    std::vector<boost::asio::ip::tcp::endpoint> bound_;
};

}  // namespace vipportd::http
