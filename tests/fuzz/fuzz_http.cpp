// libFuzzer target: raw bytes from a hostile client -> http::Connection (Beast's request parser
// with the production limits, the 413/414/431/400 rejections, keep-alive and pipelining) ->
// Router (percent-decoding, query collection, Authorization, ZStack errors) -> the bytes written
// back. The input is the whole client side of one TCP connection, followed by EOF; seeds in
// corpus/http/ are plain HTTP requests.
//
// The input reaches the connection over beast::test::stream in one read or cut into reads of a
// few bytes (chosen from the input's bytes). Every response must parse as HTTP/1.0 or 1.1 with a
// Content-Length that matches its body (a HEAD answer: no body on the wire), carry the request's
// version and keep-alive, and a JSON body must be valid JSON (valid UTF-8 included). Nothing may
// follow an answer that closes the connection, every complete request gets exactly one answer,
// and the connection must be gone once the input is consumed: with EOF delivered, still being
// alive means waiting for a deadline. One input in four is served both ways, and the answers to
// its complete requests must be the same bytes. A broken invariant prints the request and the
// response stream and aborts.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <spdlog/spdlog.h>

#include "agent/model.hpp"
#include "agent/snapshot_service.hpp"
#include "agent/vip_registry.hpp"
#include "http/auth.hpp"
#include "http/connection.hpp"
#include "http/router.hpp"
#include "http/server_options.hpp"

namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
namespace bt = boost::beast::test;
using namespace vipportd;
using FuzzConnection = http::Connection<bt::stream>;

agent::InetAddress address(std::string_view text) { return *agent::InetAddress::parse(text); }

agent::Claim claim(agent::Protocol p, agent::PortSet ports, agent::AddressScope scope) {
    agent::Claim c;
    c.protocol = p;
    c.ports = std::move(ports);
    c.scope = std::move(scope);
    c.origin = agent::SocketOrigin{};
    return c;
}

/// Answers synchronously, so that one poll loop runs the whole exchange deterministically, and
/// cycles through the outcomes a snapshot can have: pipelined requests reach the 200 answers,
/// SYS.1006 (a required source failed) and SYS.1000 (no snapshot).
class CyclingProvider final : public agent::SnapshotProvider {
  public:
    CyclingProvider() {
        using agent::AddressScope;
        using agent::PortSet;
        using agent::Protocol;
        auto ok = std::make_shared<agent::Snapshot>();
        ok->claims.push_back(claim(Protocol::tcp, PortSet{{80, 80}, {20, 23}, {0, 0}},
                                   AddressScope::exact(address("10.0.0.5"))));
        ok->claims.push_back(
            claim(Protocol::tcp, PortSet::single(8080), AddressScope::all(agent::Family::v4)));
        ok->claims.push_back(claim(Protocol::udp, PortSet{{53, 53}, {5000, 5100}},
                                   AddressScope::all(agent::Family::v4)));
        ok->claims.push_back(claim(Protocol::tcp, PortSet::single(443),
                                   AddressScope::exact(address("2001:db8::5"))));
        ok->sources.push_back({"sockets", true, true, "", {}});
        auto failed = std::make_shared<agent::Snapshot>(*ok);
        failed->sources.push_back({"nftables", true, false, "dump failed: EPERM \"\x01\xff\"", {}});
        outcomes_ = {ok, ok, failed, nullptr};
    }
    void async_fresh(Callback cb) override { cb(outcomes_[calls_++ % outcomes_.size()]); }
    void reset() { calls_ = 0; }

  private:
    std::vector<agent::SnapshotPtr> outcomes_;
    std::size_t calls_ = 0;
};

struct Harness {
    std::shared_ptr<CyclingProvider> provider = std::make_shared<CyclingProvider>();
    std::shared_ptr<const agent::VipRegistry> registry = std::make_shared<const agent::VipRegistry>(
        std::vector<agent::VipEntry>{{"vip-1", address("10.0.0.5")},
                                     {"3f2c9d1e7b8a4c5d9e0f1a2b3c4d5e6f", address("10.0.0.5")},
                                     {"vip-6", address("2001:db8::5")}});
    // "OAuth token-1" is accepted; any other token answers ID.1001.
    http::Router router{http::RouterDeps{
        provider, [r = registry] { return r; },
        std::make_shared<http::TokenFile>(http::TokenFile::parse("token-1\n", "fuzz-tokens"))}};
    http::ServerOptions options;  // the production limits: the fuzzer probes their edges
    // One io_context for every run: a fresh one per input would open and close an epoll, an
    // eventfd and a timerfd each time (the connection's deadline timer needs the reactor).
    // Every run leaves it without pending work.
    net::io_context ioc{1};
};

Harness& harness() {
    static Harness* h = [] {
        // The connection logs hostile input at debug and handler failures at error; the
        // invariants below are the verdict, and the lines would only slow the loop.
        spdlog::set_level(spdlog::level::off);
        return new Harness();  // never destroyed: no exit-time ordering issues
    }();
    return *h;
}

std::string printable(std::string_view s) {
    std::string out;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n\n";
        } else if (c < 0x20 || c >= 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

[[noreturn]] void fail(const std::string& what, std::string_view input, std::string_view output) {
    std::fprintf(stderr, "fuzz_http: %s\n--- input (%zu bytes)\n%s\n--- output (%zu bytes)\n%s\n",
                 what.c_str(), input.size(), printable(input).c_str(), output.size(),
                 printable(output).c_str());
    std::abort();
}

/// Serves input (then EOF) on one connection; returns what the client received.
std::string serve(std::string_view input, std::size_t read_size) {
    Harness& h = harness();
    h.provider->reset();
    net::io_context& ioc = h.ioc;
    ioc.restart();  // the previous run ran out of work, which stops an io_context
    bt::stream server(ioc, input);
    bt::stream client(ioc);
    server.connect(client);
    if (read_size != 0) {
        server.read_size(read_size);
    }
    server.close_remote();
    auto conn = std::make_shared<FuzzConnection>(std::move(server), h.router, h.options);
    const std::weak_ptr<FuzzConnection> weak = conn;
    conn->run();
    conn.reset();
    // poll, not run: with every byte and the EOF delivered, nothing has to wait, so when no
    // handler is ready the connection must be gone. run() would sit out a 30 s deadline instead.
    ioc.poll();
    std::string out(client.str());
    if (!weak.expired()) {
        fail(
            "connection still alive after its input and EOF were consumed (waiting for a "
            "deadline)",
            input, out);
    }
    return out;
}

/// What the connection should have read: the requests as Beast parses them with the same limits
/// and the same stop conditions (a rejected header, a request that does not keep the connection
/// alive).
struct SeenRequest {
    bool head = false;
    unsigned version = 11;
    bool complete = false;  // read to its end, so it is answered by the router
    bool keep_alive = false;
};

std::vector<SeenRequest> expected_requests(std::string_view input, const http::ServerOptions& o) {
    bt::stream s(harness().ioc, input);  // synchronous reads only: nothing is queued
    s.close_remote();
    boost::beast::flat_buffer buffer;
    std::vector<SeenRequest> out;
    for (;;) {
        bhttp::request_parser<bhttp::string_body> p;
        p.header_limit(o.header_limit);
        p.body_limit(o.body_limit);
        boost::system::error_code ec;
        const std::size_t n = bhttp::read_header(s, buffer, p, ec);  // bytes the parser consumed
        if (ec) {
            // A rejected header still tells the answer's framing and version, which the
            // connection takes from the parsed request line, or else sniffs a HEAD from the
            // first bytes that arrived (Connection::reject).
            if (!p.get().method_string().empty()) {
                out.push_back(
                    {p.get().method() == bhttp::verb::head, p.get().version(), false, false});
            } else {
                const auto data = buffer.cdata();
                const std::string_view bytes(static_cast<const char*>(data.data()), data.size());
                const std::string_view line = bytes.substr(0, bytes.find("\r\n"));
                out.push_back({bytes.starts_with("HEAD "), line.ends_with(" HTTP/1.0") ? 10U : 11U,
                               false, false});
            }
            break;
        }
        const auto& req = p.get();
        out.push_back({req.method() == bhttp::verb::head, req.version(), false, false});
        const bool bodyless = req.method() == bhttp::verb::get || req.method() == bhttp::verb::head;
        // The connection counts the request line and the fields together against header_limit
        // (Beast bounds each alone): a longer header is answered 431 once read.
        const bool header_too_large = n > o.header_limit;
        if (header_too_large || req.target().size() > o.target_limit ||
            (bodyless && (p.chunked() || p.content_length().value_or(0) > 0))) {
            break;
        }
        if (!p.is_done()) {
            bhttp::read(s, buffer, p, ec);
            if (ec) {
                break;
            }
        }
        out.back().complete = true;
        out.back().keep_alive = p.get().keep_alive();
        if (!out.back().keep_alive) {
            break;
        }
    }
    return out;
}

// Connection::reject() used to answer a HEAD whose header was read (413 for a body, 414 for a
// long target) with its plain-text body on the wire, which RFC 9112 §6.3 rules out for a HEAD
// answer: a client reads those bytes as the start of the next response (seeds
// corpus/http/finding_head_*). Fixed: reject() sends the header only, so nothing is tolerated.
constexpr bool kToleratedHeadRejectionBody = false;

bool is_reject(bhttp::status s) {
    return s == bhttp::status::bad_request || s == bhttp::status::payload_too_large ||
           s == bhttp::status::uri_too_long || s == bhttp::status::request_header_fields_too_large;
}

bool is_router_status(bhttp::status s) {
    switch (s) {
        case bhttp::status::ok:
        case bhttp::status::bad_request:
        case bhttp::status::unauthorized:  // /readyz, /version, /metrics without a token
        case bhttp::status::forbidden:     // AccessKey Date outside the 15-minute window
        case bhttp::status::not_found:
        case bhttp::status::method_not_allowed:
        case bhttp::status::service_unavailable:
            return true;
        default:
            return false;
    }
}

/// Checks every response in output; returns how many of its bytes answer complete requests (the
/// rest is at most one parser-level rejection).
std::size_t check_responses(std::string_view input,
                            std::string_view output,
                            const std::vector<SeenRequest>& requests) {
    bt::stream s(harness().ioc, output);  // synchronous reads only: nothing is queued
    s.close_remote();
    boost::beast::flat_buffer buffer;
    std::size_t complete = 0;
    for (const auto& r : requests) {
        complete += r.complete ? 1 : 0;
    }
    std::size_t n = 0;
    std::size_t answers_end = 0;
    for (;; ++n) {
        const std::string at = "response " + std::to_string(n) + ": ";
        const bool head = n < requests.size() && requests[n].head;
        bhttp::response_parser<bhttp::string_body> p;
        p.body_limit(boost::none);
        p.skip(head);  // RFC 9112 §6.3: a HEAD answer ends with its header, whatever it says
        boost::system::error_code ec;
        bhttp::read(s, buffer, p, ec);
        if (ec == bhttp::error::end_of_stream) {
            break;  // clean end: nothing after the last response
        }
        if (ec) {
            fail(at + "does not parse" + (head ? " (as the answer to a HEAD)" : "") + ": " +
                     ec.message(),
                 input, output);
        }
        const auto& res = p.get();
        if (n > complete || (n == complete && !is_reject(res.result()))) {
            fail(at + "answers no complete request (" + std::to_string(complete) +
                     " complete) and is not a parser-level rejection",
                 input, output);
        }
        if (n < complete ? !is_router_status(res.result()) : res.keep_alive()) {
            fail(at + "unexpected status " + std::to_string(res.result_int()) +
                     " or a rejection that keeps the connection",
                 input, output);
        }
        const unsigned version = n < requests.size() ? requests[n].version : 11;
        // A rejected header is answered in the request line's version when the connection's
        // parser got that far, else in 1.1; how far it got depends on how the bytes arrived.
        const bool rejected = n >= complete;
        if (res.version() != version && !(rejected && res.version() == 11)) {
            fail(at + "version " + std::to_string(res.version()) + ", request had " +
                     std::to_string(version),
                 input, output);
        }
        if (n < complete && res.keep_alive() != requests[n].keep_alive) {
            fail(at + "keep-alive differs from the request's", input, output);
        }
        if (res.count(bhttp::field::content_length) != 1 ||
            res.count(bhttp::field::transfer_encoding) != 0) {
            fail(at + "needs exactly one Content-Length and no Transfer-Encoding", input, output);
        }
        const std::string_view length = res[bhttp::field::content_length];
        if (!head && length != std::to_string(res.body().size())) {
            fail(at + "Content-Length " + std::string(length) + " but a body of " +
                     std::to_string(res.body().size()) + " bytes",
                 input, output);
        }
        if (res[bhttp::field::server] != "vipportd") {
            fail(at + "no Server: vipportd", input, output);
        }
        const std::size_t end = s.nread_bytes() - buffer.size();
        if (n < complete) {
            answers_end = end;
        }
        // A rejected HEAD with its body on the wire (kToleratedHeadRejectionBody): accepted only
        // when the bytes after the header are exactly the Content-Length and end the stream.
        if (kToleratedHeadRejectionBody && head && n == complete &&
            output.size() - end == std::stoul(std::string(length))) {
            break;
        }
        if (!head && res[bhttp::field::content_type].starts_with("application/json")) {
            const auto v = boost::json::parse(res.body(), ec);
            if (ec || !v.is_object() ||
                !v.as_object().contains(res.result() == bhttp::status::ok ? "inventories"
                                                                          : "error")) {
                fail(at + "JSON body does not parse or lacks its top-level key: " + ec.message(),
                     input, output);
            }
        }
    }
    if (n < complete) {
        fail(
            std::to_string(complete) + " complete requests but " + std::to_string(n) + " responses",
            input, output);
    }
    return answers_end;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const auto requests = expected_requests(input, harness().options);

    // How the input reaches the connection, derived from its bytes so that a finding replays
    // and mutations vary it: in one read, or cut into reads of 1-13 bytes (at most about 16
    // reads: every read is a round of Asio handlers, ~15 us under ASan, and kilobyte inputs cut
    // into bytes would drop the rate below 100/s).
    std::size_t mix = size;
    for (std::size_t i = 0; i < size; i += 61) {
        mix = mix * 31 + data[i];
    }
    const std::size_t read_size = std::max<std::size_t>(1 + mix % 13, size / 16 + mix % 7);
    const bool split_first = (mix >> 4) % 2 == 1;
    // Serving every input both ways halves the rate, so one input in four is: enough to catch
    // an answer that depends on the split.
    const bool both_ways = (mix >> 5) % 4 == 0;

    const std::string first = serve(input, split_first ? read_size : 0);
    // For triage and for checking what a seed exercises: VIPPORTD_FUZZ_TRACE=1 prints every
    // exchange (read once; getenv is not called concurrently here).
    static const bool trace = std::getenv("VIPPORTD_FUZZ_TRACE") != nullptr;  // NOLINT
    if (trace) {
        std::fprintf(stderr, "=== input (%zu bytes, %s)\n%s\n=== output\n%s\n", size,
                     split_first ? ("reads of " + std::to_string(read_size)).c_str() : "one read",
                     printable(input).c_str(), printable(first).c_str());
    }
    const std::size_t first_answers = check_responses(input, first, requests);
    if (!both_ways) {
        return 0;
    }
    const std::string second = serve(input, split_first ? 0 : read_size);
    const std::size_t second_answers = check_responses(input, second, requests);
    // The answers to complete requests must not depend on the split. A final rejection may:
    // Beast parses a start line or field eagerly when the buffer holds more than one read, so
    // a malformed request that never ends its header ("GET / HTTP/7.1\n" then EOF) is a 400
    // when it arrives in one read and a quiet close (partial message) when it trickles in.
    if (std::string_view(first).substr(0, first_answers) !=
        std::string_view(second).substr(0, second_answers)) {
        fail("the answers depend on how the input is split (one read, or reads of " +
                 std::to_string(read_size) + " bytes): got\n" + printable(second) +
                 "\n--- instead of the answers below",
             input, first);
    }
    return 0;
}
