#include "http/server.hpp"

#include <cerrno>
#include <chrono>
#include <functional>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include "http/connection.hpp"
#include "http/rate_limiter.hpp"
#include "http/tls.hpp"

namespace vipportd::http {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

tcp::endpoint to_asio(const agent::ListenEndpoint& e) {
    if (e.address.family == agent::Family::v4) {
        net::ip::address_v4::bytes_type b{};
        std::copy_n(e.address.bytes.begin(), b.size(), b.begin());
        return {net::ip::address_v4(b), e.port};
    }
    net::ip::address_v6::bytes_type b{};
    std::copy_n(e.address.bytes.begin(), b.size(), b.begin());
    return {net::ip::address_v6(b), e.port};
}

std::string to_string(const tcp::endpoint& e) {
    std::ostringstream out;
    out << e;  // "127.0.0.1:8080", "[::1]:8080"
    return out.str();
}

}  // namespace

// State shared by the server, its listeners and its connections; it outlives the Server object
// while handlers still run.
struct Server::Shared {
    Shared(Router& r, ServerOptions o)
        : router(r),
          options(std::move(o)),
          rate_limiter(options.rate_limit_per_ip > 0
                           ? std::make_shared<RateLimiter>(options.rate_limit_per_ip,
                                                           options.rate_limit_burst)
                           : nullptr) {}

    // A connection is gone: forget it, and wake on_drained() waiters after the last one.
    void erase(std::uint64_t id) {
        std::vector<std::function<void()>> wake;
        {
            std::lock_guard lock(mutex);
            connections.erase(id);
            if (stopping && connections.empty()) {
                wake.swap(drained_waiters);
            }
        }
        // Called here rather than posted: the last connection may close while run() is
        // returning, and a posted handler would then never run.
        for (auto& f : wake) {
            f();
        }
    }

    Router& router;
    const ServerOptions options;
    const std::shared_ptr<RateLimiter> rate_limiter;  // null: no per-client limit
    std::atomic<bool> stopping{false};
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> refused_over_capacity{0};
    std::atomic<std::uint64_t> accept_errors{0};
    mutable std::mutex mutex;
    std::unordered_map<std::uint64_t, std::weak_ptr<ConnectionBase>> connections;
    std::vector<std::function<void()>> drained_waiters;  // under mutex
    std::uint64_t next_id = 0;
    bool at_capacity = false;  // under mutex
};

struct Server::Listener : std::enable_shared_from_this<Server::Listener> {
    Listener(net::io_context& ioc, std::shared_ptr<Shared> s)
        : io(ioc),
          acceptor(net::make_strand(ioc)),
          backoff(acceptor.get_executor()),
          shared(std::move(s)) {}

    void accept() {
        // Each accepted socket gets its own strand (style.md §4.7).
        acceptor.async_accept(
            net::make_strand(io),
            [self = shared_from_this()](boost::system::error_code ec, tcp::socket socket) {
                self->on_accept(ec, std::move(socket));
            });
    }

    void on_accept(boost::system::error_code ec, tcp::socket socket) {
        if (shared->stopping || ec == net::error::operation_aborted) {
            return;
        }
        if (ec == net::error::connection_aborted) {
            return accept();  // the client gave up before accept(2): nothing wrong here
        }
        if (ec) {
            // EMFILE, ENFILE, ENOBUFS...: accepting again at once would spin (style.md §4.9).
            // The pending connection stays in the listen backlog until an fd is free again.
            shared->accept_errors.fetch_add(1);
            if (failures++ == 0) {  // log the state change, not every retry
                spdlog::warn("http: accept on {} failed: {}; retrying every {} ms", name,
                             ec.message(), shared->options.accept_backoff.count());
            }
            backoff.expires_after(shared->options.accept_backoff);
            backoff.async_wait([self = shared_from_this()](boost::system::error_code wait_ec) {
                if (!wait_ec && !self->shared->stopping) {
                    self->accept();
                }
            });
            return;
        }
        if (failures != 0) {
            spdlog::info("http: accepting on {} again after {} failed attempts", name, failures);
            failures = 0;
        }
        shared->accepted.fetch_add(1);
        start_connection(std::move(socket));
        accept();
    }

    void start_connection(tcp::socket socket) {
        std::shared_ptr<ConnectionBase> conn;
        std::function<void()> run;
        {
            std::lock_guard lock(shared->mutex);
            if (shared->stopping) {  // stop() already collected the connections to shut down
                boost::system::error_code ignored;
                socket.close(ignored);
                return;
            }
            if (shared->connections.size() >= shared->options.max_connections) {
                if (!shared->at_capacity) {  // log the state change, not every refusal
                    spdlog::warn("http: {} connections open, refusing new ones on {}",
                                 shared->connections.size(), name);
                }
                shared->at_capacity = true;
                shared->refused_over_capacity.fetch_add(1);
                boost::system::error_code ignored;
                socket.close(ignored);
                return;
            }
            if (shared->at_capacity) {
                spdlog::info("http: accepting connections again");
                shared->at_capacity = false;
            }
            const std::uint64_t id = shared->next_id++;
            boost::system::error_code ec;
            const auto remote = socket.remote_endpoint(ec);  // ENOTCONN: already reset
            PeerInfo peer{remote.address(), ec ? std::string("?") : to_string(remote),
                          shared->rate_limiter};
            auto on_destroy = [s = shared, id] { s->erase(id); };
            if (tls) {
                auto c = std::make_shared<Connection<TlsStream>>(
                    TlsStream(std::move(socket), *tls), shared->router, shared->options,
                    std::move(on_destroy), std::move(peer));
                run = [c] { c->run(); };
                conn = std::move(c);
            } else {
                auto c = std::make_shared<Connection<tcp::socket>>(
                    std::move(socket), shared->router, shared->options, std::move(on_destroy),
                    std::move(peer));
                run = [c] { c->run(); };
                conn = std::move(c);
            }
            shared->connections.emplace(id, conn);
        }
        run();
    }

    void close() {
        boost::system::error_code ignored;
        acceptor.close(ignored);
        backoff.cancel();
    }

    net::io_context& io;
    tcp::acceptor acceptor;
    net::steady_timer backoff;
    std::shared_ptr<Shared> shared;
    std::shared_ptr<net::ssl::context> tls;  // null: plain HTTP
    std::string name;                        // "127.0.0.1:8080" for messages
    std::uint64_t failures = 0;              // consecutive accept errors (acceptor strand)
};

Server::Server(net::io_context& ioc,
               const std::vector<agent::ListenEndpoint>& endpoints,
               Router& router,
               ServerOptions options)
    : ioc_(ioc),
      endpoints_(endpoints),
      shared_(std::make_shared<Shared>(router, std::move(options))) {}

Server::~Server() { stop(); }

void Server::start() {
    if (!listeners_.empty()) {
        throw std::logic_error("http::Server::start called twice");
    }
    std::shared_ptr<net::ssl::context> tls;
    if (shared_->options.tls.enabled) {
        tls = make_tls_context(shared_->options.tls);
    }
    std::vector<std::shared_ptr<Listener>> listeners;
    std::vector<tcp::endpoint> bound;
    for (const auto& configured : endpoints_) {
        const tcp::endpoint ep = to_asio(configured);
        auto l = std::make_shared<Listener>(ioc_, shared_);
        if (shared_->options.tls.applies_to(configured)) {
            l->tls = tls;
        }
        l->name = to_string(ep);
        boost::system::error_code ec;
        const auto check = [&](const char* step) {
            if (ec) {
                throw std::system_error(ec, "cannot listen on " + l->name + ": " + step);
            }
        };
        l->acceptor.open(ep.protocol(), ec);
        check("socket");
        // A restart must not fail on the previous run's TIME_WAIT sockets.
        l->acceptor.set_option(net::socket_base::reuse_address(true), ec);
        check("SO_REUSEADDR");
        if (ep.address().is_v6()) {
            // Otherwise [::]:P would also take the IPv4 port, and [::1]:P plus 127.0.0.1:P could
            // not coexist on hosts where bindv6only is 0 (ipv6(7) IPV6_V6ONLY).
            l->acceptor.set_option(net::ip::v6_only(true), ec);
            check("IPV6_V6ONLY");
        }
        l->acceptor.bind(ep, ec);
        check("bind");
        l->acceptor.listen(net::socket_base::max_listen_connections, ec);
        check("listen");
        bound.push_back(l->acceptor.local_endpoint(ec));
        check("getsockname");
        l->name = to_string(bound.back());
        listeners.push_back(std::move(l));
    }
    listeners_ = std::move(listeners);
    bound_ = std::move(bound);
    for (const auto& l : listeners_) {
        net::post(l->acceptor.get_executor(), [l] { l->accept(); });
    }
}

agent::ListenEndpoint Server::inherited_endpoint(int fd) {
    const auto fail = [fd](int err, const std::string& what) {
        throw std::system_error(err, std::generic_category(),
                                "inherited descriptor " + std::to_string(fd) + ": " + what);
    };
    int value = 0;
    socklen_t len = sizeof(value);
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &len) != 0) {
        fail(errno, "getsockopt(SO_TYPE)");
    }
    if (value != SOCK_STREAM) {
        fail(ENOTSUP, "not a stream socket");
    }
    len = sizeof(value);
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &len) != 0 || value == 0) {
        fail(EINVAL, "not a listening socket (systemd: ListenStream= with Accept=no)");
    }
    sockaddr_storage ss{};
    len = sizeof(ss);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        fail(errno, "getsockname");
    }
    agent::ListenEndpoint ep;
    if (ss.ss_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
        ep.address = agent::InetAddress::from_bytes(
            agent::Family::v4, reinterpret_cast<const std::uint8_t*>(&in->sin_addr));
        ep.port = ntohs(in->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
        ep.address = agent::InetAddress::from_bytes(
            agent::Family::v6, reinterpret_cast<const std::uint8_t*>(&in6->sin6_addr));
        ep.port = ntohs(in6->sin6_port);
    } else {
        fail(EAFNOSUPPORT, "not an IPv4 or IPv6 socket");
    }
    return ep;
}

void Server::start(const std::vector<int>& fds) {
    if (!listeners_.empty()) {
        throw std::logic_error("http::Server::start called twice");
    }
    std::shared_ptr<net::ssl::context> tls;
    if (shared_->options.tls.enabled) {
        tls = make_tls_context(shared_->options.tls);
    }
    std::vector<std::shared_ptr<Listener>> listeners;
    std::vector<tcp::endpoint> bound;
    for (const int fd : fds) {
        const agent::ListenEndpoint configured = inherited_endpoint(fd);
        const tcp::endpoint ep = to_asio(configured);
        auto l = std::make_shared<Listener>(ioc_, shared_);
        if (shared_->options.tls.applies_to(configured)) {
            l->tls = tls;
        }
        boost::system::error_code ec;
        l->acceptor.assign(ep.protocol(), fd, ec);
        if (ec) {
            throw std::system_error(ec, "inherited descriptor " + std::to_string(fd));
        }
        bound.push_back(ep);
        l->name = to_string(ep);
        listeners.push_back(std::move(l));
    }
    listeners_ = std::move(listeners);
    bound_ = std::move(bound);
    for (const auto& l : listeners_) {
        net::post(l->acceptor.get_executor(), [l] { l->accept(); });
    }
}

void Server::stop() {
    if (shared_->stopping.exchange(true)) {
        return;
    }
    for (const auto& l : listeners_) {
        net::post(l->acceptor.get_executor(), [l] { l->close(); });
    }
    std::vector<std::shared_ptr<ConnectionBase>> open;
    std::vector<std::function<void()>> wake;
    {
        std::lock_guard lock(shared_->mutex);
        for (const auto& [id, weak] : shared_->connections) {
            if (auto c = weak.lock()) {
                open.push_back(std::move(c));
            }
        }
        if (shared_->connections.empty()) {
            wake.swap(shared_->drained_waiters);
        }
    }
    for (const auto& c : open) {
        c->shutdown();
    }
    for (auto& f : wake) {
        f();
    }
}

std::vector<tcp::endpoint> Server::local_endpoints() const { return bound_; }

std::size_t Server::connection_count() const {
    std::lock_guard lock(shared_->mutex);
    return shared_->connections.size();
}

void Server::on_drained(std::function<void()> f) {
    {
        std::lock_guard lock(shared_->mutex);
        if (!shared_->stopping || !shared_->connections.empty()) {
            shared_->drained_waiters.push_back(std::move(f));
            return;
        }
    }
    f();
}

Server::Stats Server::stats() const {
    Stats s;
    s.accepted = shared_->accepted.load();
    s.refused_over_capacity = shared_->refused_over_capacity.load();
    s.accept_errors = shared_->accept_errors.load();
    s.rate_limited = shared_->rate_limiter ? shared_->rate_limiter->refused() : 0;
    s.open = connection_count();
    return s;
}

ServerOptions server_options(const agent::Config& config) {
    using std::chrono::milliseconds;
    const agent::HttpConfig& h = config.http;
    ServerOptions o;
    o.idle_timeout = milliseconds(h.idle_timeout_ms);
    o.request_timeout = milliseconds(h.request_timeout_ms);
    o.write_timeout = milliseconds(h.write_timeout_ms);
    o.handshake_timeout = milliseconds(h.handshake_timeout_ms);
    o.close_linger = milliseconds(h.close_linger_ms);
    o.accept_backoff = milliseconds(h.accept_backoff_ms);
    o.header_limit = h.header_limit;
    o.target_limit = h.target_limit;
    o.body_limit = h.body_limit;
    o.max_connections = h.max_connections;
    o.rate_limit_per_ip = h.rate_limit_per_ip;
    o.rate_limit_burst = h.rate_limit_burst;
    o.tls = config.tls;
    return o;
}

}  // namespace vipportd::http
