#pragma once
// Connection: "how bytes move" for one client. Reads one request at a time with a fresh parser
// and explicit limits, hands it to the Router, writes the answer, and either reads the next
// request (keep-alive) or closes. No pipeline queue: the next request is not read before the
// current response is written (style.md §4.5).
//
// Deadlines (style.md §4.4): idle_timeout while waiting for the first byte of a request,
// request_timeout from there until the request is read, write_timeout for each response; none
// while the router waits for a snapshot. A deadline closes the stream.
//
// Threading: every handler runs on the stream's executor (a strand per socket). The router's
// completion may come from any thread and is posted back to that executor. The template is
// instantiated for asio::ip::tcp::socket in connection.cpp and for beast::test::stream in tests.

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include "http/router.hpp"
#include "http/server_options.hpp"

namespace vipportd::http {

/// The type-erased face of a connection, for the server's bookkeeping.
class ConnectionBase {
  public:
    virtual ~ConnectionBase() = default;
    /// Thread-safe. An idle connection closes now; a busy one finishes its current request and
    /// answers it with "Connection: close".
    virtual void shutdown() = 0;
};

namespace detail {

// Half-close after the last response (peers read to EOF); errors are irrelevant by then.
inline void shutdown_send(boost::asio::ip::tcp::socket& s) {
    boost::system::error_code ec;
    s.shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
}
inline void close_stream(boost::asio::ip::tcp::socket& s) {
    boost::system::error_code ec;
    s.close(ec);
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
               std::function<void()> on_destroy = {})
        : stream_(std::move(stream)),
          executor_(stream_.get_executor()),
          router_(router),
          options_(options),
          timer_(executor_),
          on_destroy_(std::move(on_destroy)) {}

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
                                             &Connection::read_request, this->shared_from_this()));
    }

    void shutdown() override {
        boost::asio::post(executor_, [self = this->shared_from_this()] {
            self->stopping_ = true;
            if (self->state_ == State::idle) {
                self->close();  // the pending read completes with operation_aborted
            }
        });
    }

  private:
    using error_code = boost::system::error_code;
    using Parser = boost::beast::http::request_parser<boost::beast::http::string_body>;
    enum class State { idle, reading, handling, writing, draining, closed };

    // Bytes asked for while waiting for a request to start; the parser reads on from there.
    static constexpr std::size_t first_read_size = 1024;
    static constexpr std::size_t drain_chunk = 4096;

    void read_request() {
        if (stopping_) {
            return close();  // between requests: nothing in flight, like an idle connection
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
        stream_.async_read_some(buffer_.prepare(first_read_size),
                                boost::beast::bind_front_handler(&Connection::on_first_bytes,
                                                                 this->shared_from_this()));
    }

    void on_first_bytes(error_code ec, std::size_t n) {
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
        boost::beast::http::async_read_header(
            stream_, buffer_, *parser_,
            boost::beast::bind_front_handler(&Connection::on_header, this->shared_from_this()));
    }

    void on_header(error_code ec, std::size_t /*n*/) {
        if (ec) {
            disarm();
            return on_read_error(ec);
        }
        namespace bhttp = boost::beast::http;
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
        bhttp::async_read(
            stream_, buffer_, *parser_,
            boost::beast::bind_front_handler(&Connection::on_body, this->shared_from_this()));
    }

    void on_body(error_code ec, std::size_t /*n*/) {
        disarm();
        if (ec) {
            return on_read_error(ec);
        }
        handle_request();
    }

    void on_read_error(error_code ec) {
        namespace bhttp = boost::beast::http;
        if (ec == bhttp::error::header_limit) {
            return reject(bhttp::status::request_header_fields_too_large,
                          "request header fields too large");
        }
        if (ec == bhttp::error::body_limit) {
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
            spdlog::debug("http: read failed: {}", ec.message());
        }
        close();
    }

    // Parser-level errors: a plain-text answer, then close (the stream position is unknown).
    void reject(boost::beast::http::status status, std::string body) {
        unsigned version = 11;
        if (parser_ && parser_->is_header_done()) {
            version = parser_->get().version();
        }
        stopping_connection_ = true;
        write(plain_response(status, version, false, std::move(body)));
    }

    void handle_request() {
        state_ = State::handling;
        Request req = parser_->release();
        const unsigned version = req.version();
        const bool keep_alive = req.keep_alive();
        // The completion may come from the snapshot worker: post it back to this strand, and keep
        // the io_context alive meanwhile (a pending router call is no Asio operation).
        auto answered = std::make_shared<std::atomic<bool>>(false);
        auto work =
            boost::asio::prefer(executor_, boost::asio::execution::outstanding_work.tracked);
        try {
            router_.handle(std::move(req),
                           [self = this->shared_from_this(), answered, work](Response res) {
                               if (answered->exchange(true)) {
                                   return;
                               }
                               boost::asio::post(work, [self, res = std::move(res)]() mutable {
                                   self->write(std::move(res));
                               });
                           });
        } catch (const std::exception& e) {
            // The connection boundary (style.md §4.12): log once, answer 500, keep serving.
            spdlog::error("http: request handler failed: {}", e.what());
            if (!answered->exchange(true)) {
                write(plain_response(boost::beast::http::status::internal_server_error, version,
                                     keep_alive, "internal server error"));
            }
        } catch (...) {
            spdlog::error("http: request handler failed with a non-standard exception");
            if (!answered->exchange(true)) {
                write(plain_response(boost::beast::http::status::internal_server_error, version,
                                     keep_alive, "internal server error"));
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
        boost::beast::http::async_write(
            stream_, *response_,
            boost::beast::bind_front_handler(&Connection::on_write, this->shared_from_this()));
    }

    void on_write(error_code ec, std::size_t /*n*/) {
        disarm();
        response_.reset();
        if (ec) {
            if (ec != boost::asio::error::operation_aborted) {
                spdlog::debug("http: write failed: {}", ec.message());
            }
            return close();
        }
        if (close_after_write_) {
            return graceful_close();
        }
        read_request();
    }

    // After the last response: FIN to the peer, then read and discard what the peer still sends
    // until it closes, close_linger passes or drain_limit bytes came. Closing a socket with
    // unread input sends RST, which can destroy the response in the peer's receive queue before
    // it is read: exactly the 413/431 answers and the HTTP/1.0 pipelined case (RFC 9112 §9.6).
    void graceful_close() {
        state_ = State::draining;
        detail::shutdown_send(stream_);
        buffer_.clear();
        drained_ = 0;
        arm(options_.close_linger);
        drain();
    }

    void drain() {
        stream_.async_read_some(
            buffer_.prepare(drain_chunk),
            boost::beast::bind_front_handler(&Connection::on_drain, this->shared_from_this()));
    }

    void on_drain(error_code ec, std::size_t n) {
        drained_ += n;
        if (ec || drained_ > options_.drain_limit) {
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
                spdlog::debug("http: connection timed out");
                self->close();  // the pending operation completes with operation_aborted
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
    std::uint64_t drained_ = 0;
    std::function<void()> on_destroy_;
};

extern template class Connection<boost::asio::ip::tcp::socket>;

}  // namespace vipportd::http
