#include "http/zstack_sessions.hpp"

#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "http/sha256.hpp"

namespace vipportd::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// ZStack session ids are uuids without dashes (32 hex digits); anything much longer is not one
// and is refused without a round trip.
constexpr std::size_t kMaxSessionLength = 256;
// {"valid":true} is 14 bytes; a node answering more than this is not answering our question.
constexpr std::uint64_t kMaxReplyBody = 64 * 1024;
constexpr std::uint32_t kMaxReplyHeader = 16 * 1024;

// RFC 3986 §2.3 unreserved characters pass; everything else is percent-encoded, so a session
// can neither leave its path segment nor add a query.
std::string encode_segment(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
            u == '-' || u == '.' || u == '_' || u == '~') {
            out += c;
        } else {
            out += '%';
            out += hex[u >> 4];
            out += hex[u & 0x0f];
        }
    }
    return out;
}

std::string digest_key(std::string_view session) {
    const Sha256Digest d = sha256(session);
    return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

}  // namespace

ZStackSessionsOptions ZStackSessionsOptions::from(const agent::AuthConfig& config) {
    ZStackSessionsOptions o;
    std::string why;
    const auto url = agent::parse_http_url(config.management_node, why);
    if (!url) {
        throw std::invalid_argument("auth.management_node: " + why);
    }
    o.node_url = config.management_node;
    o.node = *url;
    o.valid_ttl = std::chrono::seconds(config.valid_ttl_seconds);
    o.invalid_ttl = std::chrono::seconds(config.invalid_ttl_seconds);
    o.timeout = std::chrono::milliseconds(config.validation_timeout_ms);
    o.max_concurrent = config.max_concurrent_validations;
    return o;
}

// ---- the shared state: cache, validations in flight, the queue ---------------------------------

struct ZStackSessions::State : std::enable_shared_from_this<ZStackSessions::State> {
    State(ZStackSessionsOptions o, net::any_io_executor ex)
        : options(std::move(o)), executor(std::move(ex)) {}

    struct Cached {
        bool valid;
        Clock::time_point expires;
    };
    struct Pending {
        std::string session;
        std::vector<Callback> waiters;
        Clock::time_point queued_until;  // a queued validation not started by then gives up
    };

    const ZStackSessionsOptions options;
    const net::any_io_executor executor;

    mutable std::mutex mutex;
    std::unordered_map<std::string, Cached> cache;      // key: SHA-256 of the session
    std::unordered_map<std::string, Pending> inflight;  // started or queued
    std::deque<std::string> queue;                      // keys waiting for a slot
    unsigned active = 0;
    Stats stats;

    void check(std::string_view session, Callback done);
    void start(const std::string& key, std::string session);
    void finish(const std::string& key, const AuthVerdict& verdict);
    void remember(const std::string& key, bool valid, Clock::time_point now);  // mutex held

    std::string unreachable(std::string_view what) const {
        return "cannot validate the session with the management node " + options.node_url + ": " +
               std::string(what);
    }
};

// ---- one HTTP exchange with the node
// -------------------------------------------------------------

namespace {

class Validation : public std::enable_shared_from_this<Validation> {
  public:
    using Done = std::function<void(const AuthVerdict&)>;

    Validation(const ZStackSessionsOptions& options,
               const net::any_io_executor& executor,
               std::string_view session,
               Done done)
        : options_(options),
          strand_(net::make_strand(executor)),
          resolver_(strand_),
          stream_(strand_),
          timer_(strand_),
          done_(std::move(done)) {
        const auto& n = options_.node;
        const bool v6 = n.host.find(':') != std::string::npos;
        std::string host = v6 ? "[" + n.host + "]" : n.host;
        if (n.port != 80) {
            host += ":" + std::to_string(n.port);
        }
        request_.version(11);
        request_.method(bhttp::verb::get);
        request_.target(n.path + "/zstack/v1/accounts/sessions/" + encode_segment(session) +
                        "/valid");
        request_.set(bhttp::field::host, host);
        request_.set(bhttp::field::user_agent, "vipportd");
        request_.set(bhttp::field::accept, "application/json");
        request_.keep_alive(false);
        parser_.body_limit(kMaxReplyBody);
        parser_.header_limit(kMaxReplyHeader);
    }

    void run() {
        net::dispatch(strand_, [self = shared_from_this()] { self->start(); });
    }

  private:
    void start() {
        timer_.expires_after(options_.timeout);
        timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (!ec) {
                self->on_timeout();
            }
        });
        boost::system::error_code ec;
        const auto address = net::ip::make_address(options_.node.host, ec);
        if (!ec) {
            // An address literal needs no resolver.
            stream_.async_connect(
                tcp::endpoint(address, options_.node.port),
                [self = shared_from_this()](boost::system::error_code e) { self->on_connect(e); });
            return;
        }
        resolver_.async_resolve(
            options_.node.host, std::to_string(options_.node.port),
            [self = shared_from_this()](boost::system::error_code e,
                                        const tcp::resolver::results_type& results) {
                if (e) {
                    return self->fail("resolve " + self->options_.node.host, e);
                }
                self->connect(results);
            });
    }

    void connect(const tcp::resolver::results_type& endpoints) {
        stream_.async_connect(
            endpoints, [self = shared_from_this()](boost::system::error_code e,
                                                   const tcp::endpoint&) { self->on_connect(e); });
    }

    void on_connect(boost::system::error_code e) {
        if (e) {
            return fail("connect", e);
        }
        bhttp::async_write(stream_, request_,
                           [self = shared_from_this()](boost::system::error_code we, std::size_t) {
                               if (we) {
                                   return self->fail("send", we);
                               }
                               self->read();
                           });
    }

    void read() {
        bhttp::async_read(stream_, buffer_, parser_,
                          [self = shared_from_this()](boost::system::error_code e, std::size_t) {
                              if (e) {
                                  return self->fail("read the reply", e);
                              }
                              self->on_reply();
                          });
    }

    void on_reply() {
        const auto& res = parser_.get();
        if (res.result() != bhttp::status::ok) {
            return complete(AuthVerdict::unavailable(
                "cannot validate the session with the management node " + options_.node_url +
                ": it answered HTTP " + std::to_string(res.result_int())));
        }
        boost::system::error_code ec;
        const boost::json::value v = boost::json::parse(res.body(), ec);
        const boost::json::value* valid = nullptr;
        if (!ec && v.is_object()) {
            valid = v.as_object().if_contains("valid");
        }
        if (valid == nullptr || !valid->is_bool()) {
            return complete(AuthVerdict::unavailable(
                "cannot validate the session with the management node " + options_.node_url +
                ": unexpected reply (expected {\"valid\":true|false})"));
        }
        complete(valid->as_bool() ? AuthVerdict::accept() : AuthVerdict::reject());
    }

    void on_timeout() {
        timed_out_ = true;
        resolver_.cancel();
        beast::error_code ignored;
        stream_.socket().close(ignored);  // completes the pending operation with an error
    }

    void fail(const std::string& step, boost::system::error_code ec) {
        if (timed_out_) {
            return complete(AuthVerdict::unavailable(
                "cannot validate the session with the management node " + options_.node_url +
                ": no answer within " + std::to_string(options_.timeout.count()) + " ms"));
        }
        complete(AuthVerdict::unavailable("cannot validate the session with the management node " +
                                          options_.node_url + ": " + step + ": " + ec.message()));
    }

    void complete(const AuthVerdict& verdict) {
        if (!done_) {
            return;
        }
        timer_.cancel();
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.socket().close(ignored);
        auto done = std::move(done_);
        done_ = nullptr;
        done(verdict);
    }

    const ZStackSessionsOptions options_;  // a copy: handlers may outlive the State
    net::strand<net::any_io_executor> strand_;
    tcp::resolver resolver_;
    beast::tcp_stream stream_;
    net::steady_timer timer_;
    bhttp::request<bhttp::empty_body> request_;
    beast::flat_buffer buffer_;
    bhttp::response_parser<bhttp::string_body> parser_;
    bool timed_out_ = false;
    Done done_;
};

}  // namespace

// ---- State
// ---------------------------------------------------------------------------------------

void ZStackSessions::State::check(std::string_view session, Callback done) {
    if (session.empty() || session.size() > kMaxSessionLength) {
        return done(AuthVerdict::reject());
    }
    std::string key = digest_key(session);
    const auto now = Clock::now();
    bool start_now = false;
    std::optional<AuthVerdict> answer;
    {
        std::lock_guard lock(mutex);
        if (const auto it = cache.find(key); it != cache.end()) {
            if (now < it->second.expires) {
                ++stats.cache_hits;
                answer = it->second.valid ? AuthVerdict::accept() : AuthVerdict::reject();
            } else {
                cache.erase(it);
            }
        }
        if (!answer) {
            if (const auto it = inflight.find(key); it != inflight.end()) {
                ++stats.coalesced;
                it->second.waiters.push_back(std::move(done));
                return;
            }
            if (active < options.max_concurrent) {
                ++active;
                start_now = true;
            } else if (queue.size() < options.max_waiting) {
                queue.push_back(key);
            } else {
                answer = AuthVerdict::unavailable(
                    unreachable("too many sessions waiting for validation (" +
                                std::to_string(options.max_waiting) + ")"));
            }
            if (!answer) {
                Pending p;
                p.session = std::string(session);
                p.waiters.push_back(std::move(done));
                // A queued validation waits at most one timeout for a slot.
                p.queued_until = now + options.timeout;
                inflight.emplace(key, std::move(p));
            }
        }
    }
    if (answer) {
        return done(*answer);
    }
    if (start_now) {
        start(key, std::string(session));
    }
}

void ZStackSessions::State::start(const std::string& key, std::string session) {
    {
        std::lock_guard lock(mutex);
        ++stats.validations;
    }
    auto v = std::make_shared<Validation>(
        options, executor, session, [self = shared_from_this(), key](const AuthVerdict& verdict) {
            self->finish(key, verdict);
        });
    v->run();
}

void ZStackSessions::State::remember(const std::string& key, bool valid, Clock::time_point now) {
    const auto ttl = valid ? options.valid_ttl : options.invalid_ttl;
    if (ttl.count() <= 0 || options.max_cached == 0) {
        return;
    }
    if (cache.size() >= options.max_cached) {
        std::erase_if(cache, [&](const auto& e) { return e.second.expires <= now; });
    }
    if (cache.size() >= options.max_cached) {
        // Still full of live entries (many distinct sessions): drop the one expiring first.
        auto oldest = cache.begin();
        for (auto it = cache.begin(); it != cache.end(); ++it) {
            if (it->second.expires < oldest->second.expires) {
                oldest = it;
            }
        }
        cache.erase(oldest);
    }
    cache[key] = Cached{valid, now + ttl};
}

void ZStackSessions::State::finish(const std::string& key, const AuthVerdict& verdict) {
    std::vector<Callback> waiters;
    std::vector<Callback> expired;  // queued too long: answered "unavailable"
    std::optional<std::pair<std::string, std::string>> next;
    const auto now = Clock::now();
    {
        std::lock_guard lock(mutex);
        if (auto it = inflight.find(key); it != inflight.end()) {
            waiters = std::move(it->second.waiters);
            inflight.erase(it);
        }
        if (verdict.kind != AuthVerdict::Kind::unavailable) {
            remember(key, verdict.kind == AuthVerdict::Kind::accepted, now);
        }
        while (!queue.empty()) {
            std::string k = std::move(queue.front());
            queue.pop_front();
            auto it = inflight.find(k);
            if (it == inflight.end()) {
                continue;
            }
            if (it->second.queued_until <= now) {
                for (auto& w : it->second.waiters) {
                    expired.push_back(std::move(w));
                }
                inflight.erase(it);
                continue;
            }
            next.emplace(std::move(k), it->second.session);
            break;
        }
        if (!next) {
            --active;
        }
    }
    for (auto& w : waiters) {
        w(verdict);
    }
    if (!expired.empty()) {
        const auto busy = AuthVerdict::unavailable(unreachable(
            "no validation slot free within " + std::to_string(options.timeout.count()) + " ms"));
        for (auto& w : expired) {
            w(busy);
        }
    }
    if (next) {
        start(next->first, std::move(next->second));
    }
}

// ---- the private I/O thread ---------------------------------------------------------------------

struct ZStackSessions::IoThread {
    IoThread()
        : context(std::make_shared<net::io_context>(1)),
          guard(net::make_work_guard(*context)),
          thread([ctx = context] { ctx->run(); }) {}
    ~IoThread() {
        // Validations in flight finish (each bounded by the timeout); then run() returns and the
        // thread, which co-owns the context, exits on its own. No join: the last owner of the
        // authenticator may well be a completion running on this very thread.
        guard.reset();
        thread.detach();
    }
    IoThread(const IoThread&) = delete;
    IoThread& operator=(const IoThread&) = delete;

    std::shared_ptr<net::io_context> context;
    net::executor_work_guard<net::io_context::executor_type> guard;
    std::thread thread;
};

// ---- ZStackSessions ----------------------------------------------------------------------------

ZStackSessions::ZStackSessions(ZStackSessionsOptions options, net::any_io_executor executor)
    : state_(std::make_shared<State>(std::move(options), std::move(executor))) {}

ZStackSessions::ZStackSessions(ZStackSessionsOptions options)
    : io_(std::make_unique<IoThread>()),
      state_(std::make_shared<State>(std::move(options), io_->context->get_executor())) {}

ZStackSessions::~ZStackSessions() = default;

void ZStackSessions::check(const Credentials& credentials, Callback done) const {
    if (credentials.scheme != Credentials::Scheme::oauth) {
        return done(AuthVerdict::reject());
    }
    state_->check(credentials.session, std::move(done));
}

ZStackSessions::Stats ZStackSessions::stats() const {
    std::lock_guard lock(state_->mutex);
    Stats s = state_->stats;
    s.cached = state_->cache.size();
    return s;
}

}  // namespace vipportd::http
