#pragma once
// Server: binds the configured listeners and runs one Connection per accepted socket.

#include <atomic>
#include <cstddef>
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

    /// Binds and listens on every endpoint (SO_REUSEADDR; IPV6_V6ONLY on IPv6 listeners, so
    /// 127.0.0.1:P and [::1]:P coexist), then starts accepting. Port 0 picks a free port.
    /// Throws std::system_error naming the endpoint and the failed step; nothing stays bound then.
    /// Throws std::logic_error when called twice.
    void start();

    /// Thread-safe, idempotent. Closes the listeners, closes idle keep-alive connections, and lets
    /// requests in progress finish (their responses carry "Connection: close"). When the last
    /// connection is gone the server holds no work, so ioc.run() returns: a caller that wants a
    /// grace period bounds it with its own timer and ioc.stop().
    void stop();

    /// The bound addresses, in endpoint order (the real port when 0 was asked). Empty before
    /// start().
    [[nodiscard]] std::vector<boost::asio::ip::tcp::endpoint> local_endpoints() const;

    /// Connections currently open. Thread-safe.
    [[nodiscard]] std::size_t connection_count() const;

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
