#pragma once
// Connection: "how bytes move" for one client. Reads one request at a time with a fresh parser
// and explicit limits, hands it to the Router, writes the answer, and either reads the next
// request (keep-alive) or closes.
//
// Bounded pipeline (style.md §4.5): one request in flight. The next request is not parsed before
// the current response is written, and the read buffer holds at most header_limit + body_limit +
// 64 KiB, so a client that pipelines more waits in its own socket buffer (TCP flow control).
//
// Limits (README "HTTP limits"): a header beyond header_limit answers 431, a target beyond
// target_limit 414, a body on GET/HEAD or beyond body_limit 413, a request not complete within
// request_timeout 408, a client over its rate 429 with Retry-After; 4xx parser-level answers close
// the connection, a 429 keeps it. A HEAD answer never carries a body (RFC 9112 §6.3).
//
// Deadlines (style.md §4.4): handshake_timeout for a TLS handshake, idle_timeout while waiting for
// the first byte of a request (expiry: silent close), request_timeout from there until the
// request is read (expiry: 408, then close), write_timeout for each response, close_linger for the
// lingering close; none while the router waits for a snapshot. Other expiries close the stream.
//
// TLS (Stream = asio::ssl::stream<tcp::socket>): the first bytes are read raw; a TLS record
// (content type 22) goes on into the handshake, anything else is a plain-HTTP client and gets a
// plain-text 400 in clear. Client certificates are checked by the context (http/tls.hpp).
//
// Threading: every handler runs on the stream's executor (a strand per socket). The router's
// completion may come from any thread and is posted back to that executor. The template is
// instantiated for tcp::socket and ssl::stream<tcp::socket> in connection.cpp and for
// beast::test::stream in tests.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include "http/rate_limiter.hpp"
#include "http/router.hpp"
#include "http/server_options.hpp"

namespace vipportd::http {

/// The type-erased face of a connection, for the server's bookkeeping.
class ConnectionBase {
  public:
    virtual ~ConnectionBase() = default;
    /// Thread-safe. An idle connection (or one still in its TLS handshake) closes now; a busy
    /// one finishes its current request, answers it with "Connection: close", and closes after
    /// the response is written (never cutting a response short).
    virtual void shutdown() = 0;
};

/// What the server knows about a connection's client.
struct PeerInfo {
    boost::asio::ip::address address;           // for the rate limiter
    std::string name;                           // "192.0.2.1:53124" in log lines
    std::shared_ptr<RateLimiter> rate_limiter;  // null: no per-client limit
};

using TlsStream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;

namespace detail {

template <class T>
struct is_ssl_stream : std::false_type {};
template <class S>
struct is_ssl_stream<boost::asio::ssl::stream<S>> : std::true_type {};

// Half-close after the last response (peers read to EOF); errors are irrelevant by then.
inline void shutdown_send(boost::asio::ip::tcp::socket& s) {
    boost::system::error_code ec;
    s.shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
}
inline void close_stream(boost::asio::ip::tcp::socket& s) {
    boost::system::error_code ec;
    s.close(ec);
}
// TLS: the TCP-level half-close and close (close_notify is sent before, see begin_drain).
template <class S>
void shutdown_send(boost::asio::ssl::stream<S>& s) {
    shutdown_send(s.next_layer());
}
template <class S>
void close_stream(boost::asio::ssl::stream<S>& s) {
    close_stream(s.next_layer());
}
// Bytes received but not read yet (FIONREAD); 0 when unknown.
inline std::size_t unread_bytes(boost::asio::ip::tcp::socket& s) {
    boost::system::error_code ec;
    const std::size_t n = s.available(ec);
    return ec ? 0 : n;
}
template <class S>
std::size_t unread_bytes(boost::asio::ssl::stream<S>& s) {
    return unread_bytes(s.next_layer());
}
template <class Stream>
std::size_t unread_bytes(Stream& /*s*/) {
    return 0;
}
// beast::test::stream: close() both cancels local reads and lets the peer read EOF.
template <class Stream>
void shutdown_send(Stream& s) {
    s.close();
}
template <class Stream>
void close_stream(Stream& s) {
    s.close();
}

}  // namespace detail

template <class Stream>
class Connection final : public ConnectionBase,
                         public std::enable_shared_from_this<Connection<Stream>> {
  public:
    /// on_destroy runs in the destructor (the server's connection count).
    Connection(Stream stream,
               const Router& router,
               const ServerOptions& options,
               std::function<void()> on_destroy = {},
               PeerInfo peer = {})
        : stream_(std::move(stream)),
          executor_(stream_.get_executor()),
          router_(router),
          options_(options),
          timer_(executor_),
          buffer_(static_cast<std::size_t>(options.header_limit + options.body_limit) +
                  buffer_slack),
          on_destroy_(std::move(on_destroy)),
          peer_(std::move(peer)) {}

    ~Connection() override {
        if (on_destroy_) {
            on_destroy_();
        }
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    /// Starts serving on the stream's executor.
    void run() {
        boost::asio::dispatch(executor_, boost::beast::bind_front_handler(
                                             &Connection::start, this->shared_from_this()));
    }

    void shutdown() override {
        boost::asio::post(executor_, [self = this->shared_from_this()] {
            self->stopping_ = true;
            if (self->state_ == State::idle || self->state_ == State::handshake) {
                self->close();  // the pending read completes with operation_aborted
            }
        });
    }

  private:
    using error_code = boost::system::error_code;
    using Parser = boost::beast::http::request_parser<boost::beast::http::string_body>;
    enum class State { handshake, idle, reading, handling, writing, draining, closed };
    static constexpr bool is_tls = detail::is_ssl_stream<Stream>::value;

    // Bytes asked for while waiting for a request to start; the parser reads on from there.
    static constexpr std::size_t first_read_size = 1024;
    static constexpr std::size_t drain_chunk = 4096;
    // Above one request's limits: Beast reads up to 64 KiB at a time (read_size in
    // http/impl/read.hpp), and chunked framing is not counted in body_limit.
    static constexpr std::size_t buffer_slack = 64 * 1024;
    // TLS record content type handshake(22) (RFC 8446 §5.1, RFC 5246 §6.2.1).
    static constexpr unsigned char tls_handshake_record = 0x16;

    // The socket under TLS, the stream itself otherwise.
    auto& raw() {
        if constexpr (is_tls) {
            return stream_.next_layer();
        } else {
            return stream_;
        }
    }

    void start() {
        if constexpr (is_tls) {
            state_ = State::handshake;
            arm(options_.handshake_timeout);
            read_pending_ = true;
            raw().async_read_some(buffer_.prepare(first_read_size),
                                  boost::beast::bind_front_handler(&Connection::on_tls_first_bytes,
                                                                   this->shared_from_this()));
        } else {
            read_request();
        }
    }

    void on_tls_first_bytes(error_code ec, std::size_t n) {
        read_pending_ = false;
        if (state_ == State::closed) {
            return;
        }
        if (ec) {
            return close();  // a port scan, or the timer's close (already closed)
        }
        buffer_.commit(n);
        const auto* first = static_cast<const unsigned char*>(buffer_.data().data());
        if (first[0] != tls_handshake_record) {
            disarm();
            plain_on_tls_ = true;  // answered in clear, then closed
            spdlog::debug("http: plain HTTP from {} on a TLS listener", peer_.name);
            return reject(boost::beast::http::status::bad_request,
                          "this port speaks TLS: use https://");
        }
        if constexpr (is_tls) {
            stream_.async_handshake(boost::asio::ssl::stream_base::server, buffer_.data(),
                                    boost::beast::bind_front_handler(&Connection::on_handshake,
                                                                     this->shared_from_this()));
        }
    }

    void on_handshake(error_code ec, std::size_t /*used*/) {
        if (state_ == State::closed) {
            return;
        }
        disarm();
        // The buffer held the start of the ClientHello; the engine took all of it (its input
        // area is larger than first_read_size).
        buffer_.clear();
        if (ec) {
            // A missing, unverifiable or unlisted client certificate ends here (the subject
            // itself is logged by the verify callback).
            if (ec != boost::asio::error::eof && ec != boost::asio::error::connection_reset) {
                spdlog::info("http: TLS handshake with {} failed: {}", peer_.name, ec.message());
            }
            return close();
        }
        handshake_done_ = true;
        read_request();
    }

    void read_request() {
        if (stopping_) {
            // Between requests: nothing in flight. With nothing unread, close() sends a plain
            // FIN at once; a request the client pipelined meanwhile would turn it into a reset
            // that can destroy the response just written, so then the lingering close.
            if (buffer_.size() == 0 && detail::unread_bytes(stream_) == 0) {
                return close();
            }
            return graceful_close();
        }
        // A fresh parser per message (Beast #1264), with explicit limits (style.md §4.2).
        parser_.emplace();
        parser_->header_limit(options_.header_limit);
        parser_->body_limit(options_.body_limit);
        if (buffer_.size() > 0) {
            return read_header();  // the client already sent (part of) the next request
        }
        state_ = State::idle;
        arm(options_.idle_timeout);
        read_pending_ = true;
        stream_.async_read_some(buffer_.prepare(first_read_size),
                                boost::beast::bind_front_handler(&Connection::on_first_bytes,
                                                                 this->shared_from_this()));
    }

    // Every read completion of a request starts here. A read can outlive its request: the
    // request deadline answers 408 while the read is still pending (it then ends as part of the
    // lingering close), or the connection is closed meanwhile.
    bool read_superseded(error_code ec) {
        read_pending_ = false;
        switch (state_) {
            case State::closed:
            case State::writing:  // the 408 is being written; on_write goes on from there
                return true;
            case State::draining:
                if (ec) {
                    close();
                } else {
                    begin_drain();
                }
                return true;
            default:
                return false;
        }
    }

    void on_first_bytes(error_code ec, std::size_t n) {
        if (read_superseded(ec)) {
            return;
        }
        disarm();
        if (ec) {
            return on_read_error(ec);
        }
        buffer_.commit(n);
        read_header();
    }

    void read_header() {
        state_ = State::reading;
        arm(options_.request_timeout);
        read_pending_ = true;
        boost::beast::http::async_read_header(
            stream_, buffer_, *parser_,
            boost::beast::bind_front_handler(&Connection::on_header, this->shared_from_this()));
    }

    void on_header(error_code ec, std::size_t n) {
        if (read_superseded(ec)) {
            return;
        }
        if (ec) {
            disarm();
            return on_read_error(ec);
        }
        namespace bhttp = boost::beast::http;
        // Beast bounds the request line and the fields by header_limit each, not together
        // (boost/beast/http/impl/basic_parser.ipp: each parse_* call gets at most header_limit_
        // bytes, and header_limit_ is never reduced), so a header could exceed the limit by up
        // to one request line. n is what the parser consumed: the whole header.
        if (n > options_.header_limit) {
            disarm();
            return reject_header_too_large();
        }
        const auto& req = parser_->get();
        if (req.target().size() > options_.target_limit) {
            disarm();
            return reject(
                bhttp::status::uri_too_long,
                "request target longer than " + std::to_string(options_.target_limit) + " bytes");
        }
        const bool bodyless = req.method() == bhttp::verb::get || req.method() == bhttp::verb::head;
        if (bodyless && (parser_->chunked() || parser_->content_length().value_or(0) > 0)) {
            disarm();
            return reject(bhttp::status::payload_too_large,
                          "a GET or HEAD request must not have a body");
        }
        if (parser_->is_done()) {
            disarm();
            return handle_request();
        }
        // Same deadline: the whole request must arrive within request_timeout.
        read_pending_ = true;
        bhttp::async_read(
            stream_, buffer_, *parser_,
            boost::beast::bind_front_handler(&Connection::on_body, this->shared_from_this()));
    }

    void on_body(error_code ec, std::size_t /*n*/) {
        if (read_superseded(ec)) {
            return;
        }
        disarm();
        if (ec) {
            return on_read_error(ec);
        }
        handle_request();
    }

    void reject_header_too_large() {
        reject(boost::beast::http::status::request_header_fields_too_large,
               "request header fields too large");
    }

    void on_read_error(error_code ec) {
        namespace bhttp = boost::beast::http;
        const bool header_done = parser_ && parser_->is_header_done();
        if (ec == bhttp::error::header_limit ||
            (ec == bhttp::error::buffer_overflow && !header_done)) {
            return reject_header_too_large();
        }
        if (ec == bhttp::error::body_limit || ec == bhttp::error::buffer_overflow) {
            return reject(bhttp::status::payload_too_large, "request body too large");
        }
        // Any other parser verdict is malformed HTTP. end_of_stream (the peer closed between
        // requests) and partial_message (it closed mid-request) are ordinary closes.
        if (ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category() &&
            ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message &&
            ec != bhttp::error::need_more) {
            return reject(bhttp::status::bad_request, "bad request: " + ec.message());
        }
        if (ec != bhttp::error::end_of_stream && ec != boost::asio::error::eof &&
            ec != boost::asio::error::operation_aborted) {
            spdlog::debug("http: read from {} failed: {}", peer_.name, ec.message());
        }
        close();
    }

    // A deadline expired (the timer has not closed anything yet).
    void on_deadline() {
        if (state_ == State::reading) {
            // A request has started but not arrived in time (RFC 9110 §15.5.9). The read stays
            // pending while the answer is written; it ends with the lingering close.
            spdlog::debug("http: request from {} not complete within {} ms", peer_.name,
                          options_.request_timeout.count());
            return reject(boost::beast::http::status::request_timeout,
                          "request not complete within " +
                              std::to_string(options_.request_timeout.count()) + " ms");
        }
        if (state_ != State::idle && state_ != State::draining) {
            spdlog::debug("http: connection with {} timed out", peer_.name);
        }
        close();  // idle keep-alive: nothing was asked, nothing is owed; others: give up
    }

    // Tells options_.on_reject about an answer the router never saw, with what is known of the
    // request (method and target once the request line was parsed).
    void report_reject(boost::beast::http::status status,
                       std::string_view reason,
                       const Request* req = nullptr) {
        if (!options_.on_reject) {
            return;
        }
        RequestOutcome o;
        o.route = "other";
        if (req != nullptr) {
            o.method = req->method_string();
            o.target = req->target();
        } else if (parser_ && !parser_->get().method_string().empty()) {
            o.method = parser_->get().method_string();
            o.target = parser_->get().target();
        }
        o.status = static_cast<unsigned>(status);
        o.reason = reason;
        options_.on_reject(o);
    }

    // Parser-level errors and timeouts: a plain-text answer, then close (the stream position is
    // unknown).
    void reject(boost::beast::http::status status, std::string body) {
        namespace bhttp = boost::beast::http;
        unsigned version = 11;
        bool head = false;
        const bool header_done = parser_ && parser_->is_header_done();
        if (parser_ && !parser_->get().method_string().empty()) {
            // Beast parses (and consumes) the request line before the fields: once it has, the
            // answer takes its version and method, whether or not the whole header was read.
            version = parser_->get().version();
            head = parser_->get().method() == bhttp::verb::head;
        } else {
            // The method is the first token of what arrived (RFC 9112 §3).
            const auto data = buffer_.cdata();
            const std::string_view start(static_cast<const char*>(data.data()),
                                         std::min<std::size_t>(data.size(), 5));
            head = start == "HEAD ";
        }
        stopping_connection_ = true;
        report_reject(status, body);
        Response res = plain_response(status, version, false, std::move(body));
        if (head) {
            // A HEAD answer ends with its header (RFC 9112 §6.3): body bytes would be read as
            // the next response. When the method was only sniffed, Content-Length 0 frames the
            // answer the same way for a client that sent something else.
            if (!header_done) {
                res.content_length(0);
            }
            res.body().clear();
        }
        write(std::move(res));
    }

    void handle_request() {
        namespace bhttp = boost::beast::http;
        state_ = State::handling;
        Request req = parser_->release();
        const unsigned version = req.version();
        const bool keep_alive = req.keep_alive();
        if (peer_.rate_limiter) {
            const auto verdict =
                peer_.rate_limiter->acquire(peer_.address, std::chrono::steady_clock::now());
            if (!verdict.allowed) {
                const auto secs = std::to_string(verdict.retry_after.count());
                std::string text = "too many requests; retry after " + secs + " s";
                report_reject(bhttp::status::too_many_requests, text, &req);
                Response res = plain_response(bhttp::status::too_many_requests, version, keep_alive,
                                              std::move(text));
                res.set(bhttp::field::retry_after, secs);  // RFC 9110 §10.2.3, delay-seconds
                if (req.method() == bhttp::verb::head) {
                    res.body().clear();  // Content-Length stays that of the GET answer
                }
                return write(std::move(res));
            }
        }
        // The completion may come from the snapshot worker: post it back to this strand, and keep
        // the io_context alive meanwhile (a pending router call is no Asio operation).
        auto answered = std::make_shared<std::atomic<bool>>(false);
        auto work =
            boost::asio::prefer(executor_, boost::asio::execution::outstanding_work.tracked);
        try {
            // The reference moves into the posted handler: the connection is then released on
            // its own executor while the work guard still keeps run() going, never by the
            // provider's thread after run() has returned (Server::on_drained would be lost).
            router_.handle(std::move(req), [self = this->shared_from_this(), answered,
                                            work](Response res) mutable {
                if (answered->exchange(true)) {
                    return;
                }
                boost::asio::post(work, [self = std::move(self), res = std::move(res)]() mutable {
                    self->write(std::move(res));
                });
            });
        } catch (const std::exception& e) {
            // The connection boundary (style.md §4.12): log once, answer 500, keep serving.
            spdlog::error("http: request handler failed: {}", e.what());
            if (!answered->exchange(true)) {
                write(plain_response(bhttp::status::internal_server_error, version, keep_alive,
                                     "internal server error"));
            }
        } catch (...) {
            spdlog::error("http: request handler failed with a non-standard exception");
            if (!answered->exchange(true)) {
                write(plain_response(bhttp::status::internal_server_error, version, keep_alive,
                                     "internal server error"));
            }
        }
    }

    void write(Response res) {
        if (state_ == State::closed || state_ == State::draining) {
            return;
        }
        if (stopping_ || stopping_connection_) {
            res.keep_alive(false);  // tell the client this is the last response
        }
        close_after_write_ = !res.keep_alive();
        response_.emplace(std::move(res));
        state_ = State::writing;
        arm(options_.write_timeout);
        if constexpr (is_tls) {
            if (plain_on_tls_) {
                return boost::beast::http::async_write(
                    raw(), *response_,
                    boost::beast::bind_front_handler(&Connection::on_write,
                                                     this->shared_from_this()));
            }
        }
        boost::beast::http::async_write(
            stream_, *response_,
            boost::beast::bind_front_handler(&Connection::on_write, this->shared_from_this()));
    }

    void on_write(error_code ec, std::size_t /*n*/) {
        if (state_ == State::closed) {
            return;
        }
        disarm();
        response_.reset();
        if (ec) {
            if (ec != boost::asio::error::operation_aborted) {
                spdlog::debug("http: write to {} failed: {}", peer_.name, ec.message());
            }
            return close();
        }
        if (close_after_write_) {
            return graceful_close();
        }
        read_request();
    }

    // After the last response: FIN to the peer (after TLS close_notify), then read and discard
    // what the peer still sends until it closes, close_linger passes or drain_limit bytes came.
    // Closing a socket with unread input sends RST, which can destroy the response in the peer's
    // receive queue before it is read: exactly the 413/431 answers and the HTTP/1.0 pipelined
    // case (RFC 9112 §9.6).
    void graceful_close() {
        state_ = State::draining;
        drained_ = 0;
        arm(options_.close_linger);
        if (read_pending_) {
            // A request read outlived its request (408): FIN now, and the read ends the drain
            // when it completes (read_superseded).
            detail::shutdown_send(stream_);
            fin_sent_ = true;
            return;
        }
        begin_drain();
    }

    void begin_drain() {
        if constexpr (is_tls) {
            if (handshake_done_ && !plain_on_tls_ && !fin_sent_) {
                // close_notify (RFC 8446 §6.1); Asio then waits for the peer's, bounded by the
                // linger deadline, and any answer (or error) goes on to the TCP-level close.
                return stream_.async_shutdown(boost::beast::bind_front_handler(
                    &Connection::on_tls_shutdown, this->shared_from_this()));
            }
        }
        finish_close();
    }

    void on_tls_shutdown(error_code /*ec*/) {
        if (state_ == State::closed) {
            return;
        }
        finish_close();
    }

    void finish_close() {
        if (!fin_sent_) {
            detail::shutdown_send(stream_);
            fin_sent_ = true;
        }
        buffer_.clear();
        drain();
    }

    void drain() {
        // Under TLS the bytes are discarded unread: the raw socket is enough.
        raw().async_read_some(
            buffer_.prepare(drain_chunk),
            boost::beast::bind_front_handler(&Connection::on_drain, this->shared_from_this()));
    }

    void on_drain(error_code ec, std::size_t n) {
        drained_ += n;
        if (ec || drained_ > options_.drain_limit || state_ == State::closed) {
            return close();  // EOF (the normal end), timeout, error or a peer that keeps sending
        }
        drain();  // nothing was committed: the buffer is reused as scratch space
    }

    void close() {
        state_ = State::closed;
        disarm();
        detail::close_stream(stream_);
    }

    // One deadline at a time; a stale expiry (its id no longer current) is ignored, which
    // covers a timer that fired while the operation it guarded was completing.
    void arm(std::chrono::milliseconds d) {
        const std::uint64_t id = ++deadline_;
        timer_.expires_after(d);
        timer_.async_wait([weak = this->weak_from_this(), id](error_code ec) {
            if (ec) {
                return;
            }
            if (auto self = weak.lock(); self && self->deadline_ == id) {
                self->on_deadline();
            }
        });
    }

    void disarm() {
        ++deadline_;
        timer_.cancel();
    }

    Stream stream_;
    boost::asio::any_io_executor executor_;
    const Router& router_;
    ServerOptions options_;
    boost::asio::steady_timer timer_;
    std::uint64_t deadline_ = 0;
    boost::beast::flat_buffer buffer_;
    std::optional<Parser> parser_;
    std::optional<Response> response_;
    State state_ = State::idle;
    bool stopping_ = false;             // server shutdown: finish the current request, then close
    bool stopping_connection_ = false;  // this connection answers an unrecoverable error
    bool close_after_write_ = false;
    bool read_pending_ = false;    // a read of the stream is outstanding
    bool fin_sent_ = false;        // the send side is shut down
    bool handshake_done_ = false;  // TLS only
    bool plain_on_tls_ = false;    // TLS only: the client spoke plain HTTP
    std::uint64_t drained_ = 0;
    std::function<void()> on_destroy_;
    PeerInfo peer_;
};

extern template class Connection<boost::asio::ip::tcp::socket>;
extern template class Connection<TlsStream>;

}  // namespace vipportd::http
