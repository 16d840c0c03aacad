// HTTP limits (README "HTTP limits"): 408 on a slow request, HEAD rejections without a body, the
// per-client rate limit (429 + Retry-After), the bounded pipeline, responses that survive
// Server::stop(), accept backoff on EMFILE, and the [http]/[tls] -> ServerOptions mapping.
// Connection-level cases run over beast::test::stream; server-level ones on loopback, port 0.

#include <cerrno>
#include <chrono>
#include <fcntl.h>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <unistd.h>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include "http/connection.hpp"
#include "http/rate_limiter.hpp"
#include "http/server.hpp"
#include "http_fakes.hpp"

namespace vipportd::http {
namespace {

namespace net = boost::asio;
using test::endpoint;
using test::IoThread;
namespace bhttp = boost::beast::http;
namespace bt = boost::beast::test;
using tcp = net::ip::tcp;
using TestConnection = Connection<bt::stream>;
using namespace std::chrono_literals;

// Field by field, so that dependencies added to RouterDeps later keep their defaults.
Router make_router(std::shared_ptr<agent::SnapshotProvider> snapshots) {
    RouterDeps deps;
    deps.snapshots = std::move(snapshots);
    deps.registry = [] { return test::sample_registry(); };
    deps.auth = std::make_shared<AcceptAll>();
    return Router(std::move(deps));
}

const std::string healthz_request = "GET /healthz HTTP/1.1\r\nHost: vipportd\r\n\r\n";
const std::string usedports_request =
    "GET /zstack/v1/vips/vip-1/usedports?protocol=TCP HTTP/1.1\r\n"
    "Host: vipportd\r\nAuthorization: OAuth t\r\n\r\n";

// Consecutive responses; head[i] says response i answers a HEAD (no body on the wire). Every
// byte must belong to a response.
std::vector<Response> parse_responses(std::string_view data, std::vector<bool> head = {}) {
    net::io_context ioc;
    bt::stream s(ioc, data);
    s.close_remote();
    boost::beast::flat_buffer buffer;
    std::vector<Response> out;
    for (;;) {
        bhttp::response_parser<Response::body_type> p;
        p.body_limit(boost::none);
        p.skip(out.size() < head.size() && head[out.size()]);
        boost::system::error_code ec;
        bhttp::read(s, buffer, p, ec);
        if (ec == bhttp::error::end_of_stream) {
            break;
        }
        if (ec) {
            ADD_FAILURE() << "unparsable response " << out.size() << ": " << ec.message();
            break;
        }
        out.push_back(p.release());
    }
    return out;
}

// A snapshot whose vip-1 TCP answer lists every port: ~0.5 MB of JSON.
agent::SnapshotPtr full_range_snapshot() {
    auto s = std::make_shared<agent::Snapshot>();
    s->claims.push_back(test::claim(agent::Protocol::tcp, agent::PortSet{{1, 65535}},
                                    agent::AddressScope::exact(test::ip("10.0.0.5"))));
    s->sources.push_back({"sockets", true, true, "", {}});
    return s;
}

class LimitsTest : public ::testing::Test {
  protected:
    LimitsTest()
        : provider(std::make_shared<test::FakeProvider>(test::sample_snapshot())),
          router(make_router(provider)) {}

    // Serves input (then EOF unless keep_open) until the connection is gone; returns what the
    // client received.
    std::string serve(const std::string& input, bool keep_open = false, PeerInfo peer = {}) {
        net::io_context ioc;
        bt::stream server(ioc, input);
        bt::stream client(ioc);
        server.connect(client);
        if (!keep_open) {
            server.close_remote();
        }
        auto conn = std::make_shared<TestConnection>(std::move(server), router, options,
                                                     std::function<void()>{}, std::move(peer));
        std::weak_ptr<TestConnection> weak = conn;
        conn->run();
        conn.reset();
        ioc.run();
        EXPECT_TRUE(weak.expired());
        return std::string(client.str());
    }

    std::shared_ptr<test::FakeProvider> provider;
    Router router;
    ServerOptions options;
};

TEST_F(LimitsTest, SlowRequestHeaderIsAnswered408ThenClosed) {
    options.request_timeout = 30ms;
    const auto start = std::chrono::steady_clock::now();
    const auto out = parse_responses(serve("GET /healthz HTTP/1.1\r\nHost: slo", true));
    EXPECT_GE(std::chrono::steady_clock::now() - start, options.request_timeout);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].result(), bhttp::status::request_timeout);
    EXPECT_FALSE(out[0].keep_alive());
    EXPECT_EQ(out[0].body(), "request not complete within 30 ms");
    EXPECT_EQ(out[0][bhttp::field::server], "vipportd");
}

TEST_F(LimitsTest, SlowRequestBodyIsAnswered408WithTheRequestVersion) {
    options.request_timeout = 30ms;
    const auto out =
        parse_responses(serve("POST /healthz HTTP/1.0\r\nContent-Length: 10\r\n\r\nabc", true));
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].result(), bhttp::status::request_timeout);
    EXPECT_EQ(out[0].version(), 10U);
    EXPECT_FALSE(out[0].keep_alive());
}

TEST_F(LimitsTest, IdleKeepAliveTimeoutClosesSilently) {
    options.idle_timeout = 30ms;
    options.request_timeout = 1h;
    const std::string raw = serve(healthz_request, true);
    const auto out = parse_responses(raw);
    ASSERT_EQ(out.size(), 1U);  // the answer to the request, and no 408 after it
    EXPECT_EQ(out[0].result(), bhttp::status::ok);
}

TEST_F(LimitsTest, HeadRejectionsCarryNoBody) {
    // 414 and 413 to a HEAD whose header was read: the Content-Length of the GET answer, no body.
    const std::string long_head =
        "HEAD /zstack/v1/vips/" + std::string(5000, 'u') + "/usedports HTTP/1.1\r\n\r\n";
    std::string raw = serve(long_head);
    auto out = parse_responses(raw, {true});
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].result(), bhttp::status::uri_too_long);
    EXPECT_NE(out[0][bhttp::field::content_length], "0");
    EXPECT_TRUE(raw.ends_with("\r\n\r\n")) << raw;  // nothing after the header

    raw = serve("HEAD /healthz HTTP/1.1\r\nContent-Length: 1\r\n\r\nx");
    out = parse_responses(raw, {true});
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].result(), bhttp::status::payload_too_large);
    EXPECT_TRUE(raw.ends_with("\r\n\r\n")) << raw;

    // 431: the header never parsed (a field too long after the request line, or a request line
    // too long itself), so the method is known from the request line or sniffed from the bytes;
    // Content-Length 0 frames the answer the same way whether the client sent a HEAD or not.
    for (const std::string& big :
         {"HEAD /healthz HTTP/1.1\r\nX-Pad: " + std::string(9000, 'a') + "\r\n\r\n",
          "HEAD /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n"}) {
        raw = serve(big);
        out = parse_responses(raw);  // parsed as a non-HEAD answer: must still be exact
        ASSERT_EQ(out.size(), 1U);
        EXPECT_EQ(out[0].result(), bhttp::status::request_header_fields_too_large);
        EXPECT_EQ(out[0][bhttp::field::content_length], "0");
        EXPECT_TRUE(raw.ends_with("\r\n\r\n")) << raw;
    }
    // The same for any other method keeps its text.
    out = parse_responses(serve("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n"));
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].body(), "request header fields too large");
}

// header_limit counts the request line and the fields together: Beast alone bounds each by it,
// so a 3,000-byte request line plus 6,000 bytes of fields got through (fuzz_http's finding,
// corpus/http/finding_header_over_limit_in_two_parts.http).
TEST_F(LimitsTest, HeaderLimitCountsRequestLineAndFieldsTogether) {
    const std::string line = "GET /healthz?pad=" + std::string(3000, 'a') + " HTTP/1.1\r\n";
    const std::string fields = "X-Pad: " + std::string(6000, 'b') + "\r\n\r\n";
    auto out = parse_responses(serve(line + fields));
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].result(), bhttp::status::request_header_fields_too_large);
    EXPECT_EQ(out[0].body(), "request header fields too large");
    // Just inside the limit: answered.
    const std::string small = "X-Pad: " + std::string(8192 - line.size() - 11, 'b') + "\r\n\r\n";
    ASSERT_EQ(line.size() + small.size(), 8192U);
    out = parse_responses(serve(line + small));
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].result(), bhttp::status::ok);
}

TEST_F(LimitsTest, GetRejectionsKeepTheirBody) {
    const auto out = parse_responses(serve("GET /healthz HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"));
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].result(), bhttp::status::payload_too_large);
    EXPECT_EQ(out[0].body(), "a GET or HEAD request must not have a body");
}

TEST_F(LimitsTest, RateLimitAnswers429WithRetryAfterAndKeepsTheConnection) {
    PeerInfo peer{net::ip::make_address("192.0.2.7"), "192.0.2.7:1234",
                  std::make_shared<RateLimiter>(0.1, 2)};  // 2 at once, then one per 10 s
    const std::string head = "HEAD /healthz HTTP/1.1\r\n\r\n";
    const std::string raw =
        serve(healthz_request + usedports_request + healthz_request + head, false, peer);
    const auto out = parse_responses(raw, {false, false, false, true});
    ASSERT_EQ(out.size(), 4U);
    EXPECT_EQ(out[0].result(), bhttp::status::ok);
    EXPECT_EQ(out[1].result(), bhttp::status::ok);
    EXPECT_EQ(out[2].result(), bhttp::status::too_many_requests);
    EXPECT_EQ(out[2][bhttp::field::retry_after], "10");
    EXPECT_EQ(out[2].body(), "too many requests; retry after 10 s");
    EXPECT_TRUE(out[2].keep_alive());
    EXPECT_EQ(out[3].result(), bhttp::status::too_many_requests);
    EXPECT_TRUE(raw.ends_with("\r\n\r\n"));  // the HEAD's 429 has no body on the wire
    EXPECT_EQ(provider->calls, 1);           // refused requests never reach the router
    EXPECT_EQ(peer.rate_limiter->refused(), 2U);
}

TEST_F(LimitsTest, ConnectionLevelAnswersAreReportedOnceEach) {
    // What the daemon logs and counts for answers the router never sees (issue: every non-200
    // outcome logged once with its reason).
    std::vector<std::tuple<unsigned, std::string, std::string, std::string>> seen;
    options.on_reject = [&](const RequestOutcome& o) {
        EXPECT_EQ(o.route, "other");
        seen.emplace_back(o.status, std::string(o.method), std::string(o.target),
                          std::string(o.reason));
    };
    (void)serve("GET /" + std::string(5000, 'x') + " HTTP/1.1\r\n\r\n");
    (void)serve("GET /healthz HTTP/1.1\r\nContent-Length: 1\r\n\r\nx");
    (void)serve("GET /healthz HTTP/1.1\r\nX-Pad: " + std::string(9000, 'a') + "\r\n\r\n");
    (void)serve("NOT HTTP\r\n\r\n");
    PeerInfo peer{net::ip::make_address("192.0.2.8"), "192.0.2.8:1",
                  std::make_shared<RateLimiter>(0.1, 1)};
    (void)serve(healthz_request + healthz_request, false, peer);
    ASSERT_EQ(seen.size(), 5U);
    EXPECT_EQ(std::get<0>(seen[0]), 414U);
    EXPECT_EQ(std::get<1>(seen[0]), "GET");
    EXPECT_EQ(std::get<0>(seen[1]), 413U);
    EXPECT_EQ(std::get<2>(seen[1]), "/healthz");
    EXPECT_EQ(std::get<3>(seen[1]), "a GET or HEAD request must not have a body");
    EXPECT_EQ(std::get<0>(seen[2]), 431U);
    EXPECT_EQ(std::get<0>(seen[3]), 400U);
    EXPECT_EQ(std::get<0>(seen[4]), 429U);
    EXPECT_EQ(std::get<1>(seen[4]), "GET");
    EXPECT_EQ(std::get<3>(seen[4]), "too many requests; retry after 10 s");
}

TEST_F(LimitsTest, LongPipelinedBurstIsServedInOrderOneAtATime) {
    // 300 requests in one write (~13 KB): the buffer cap is about one request's limits plus
    // 64 KiB, and every request is answered in order.
    std::string input;
    for (int i = 0; i < 300; ++i) {
        input += i % 2 == 0 ? healthz_request : usedports_request;
    }
    const auto out = parse_responses(serve(input));
    ASSERT_EQ(out.size(), 300U);
    for (std::size_t i = 0; i < out.size(); ++i) {
        EXPECT_EQ(out[i].result(), bhttp::status::ok) << i;
        EXPECT_EQ(out[i].body() == "ok", i % 2 == 0) << i;
    }
    EXPECT_EQ(provider->calls, 150);
}

TEST_F(LimitsTest, ShutdownDuringALargeWriteLetsItFinish) {
    auto deferred = std::make_shared<test::DeferredProvider>(full_range_snapshot());
    const Router async_router = make_router(deferred);
    net::io_context ioc;
    bt::stream server(ioc, usedports_request);
    bt::stream client(ioc);
    server.connect(client);
    server.write_size(4096);  // ~130 write operations: shutdown lands in the middle
    auto conn = std::make_shared<TestConnection>(std::move(server), async_router, options);
    std::weak_ptr<TestConnection> weak = conn;
    conn->run();
    std::thread worker([&] {
        deferred->complete_when(1);  // posts the write...
        conn->shutdown();            // ...then the shutdown, seen once the write has started
    });
    ioc.run();
    worker.join();
    conn.reset();
    EXPECT_TRUE(weak.expired());
    const auto out = parse_responses(client.str());
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].result(), bhttp::status::ok);
    EXPECT_GT(out[0].body().size(), 400000U);
    EXPECT_TRUE(out[0].body().view().ends_with("\"65535\"]}]}"));
}

// --- rate limiter -------------------------------------------------------------------------

TEST(RateLimiterTest, RefillsAtTheRateUpToTheBurst) {
    RateLimiter rl(2.0, 3);  // 2 per second, 3 at once
    const auto a = net::ip::make_address("198.51.100.1");
    const auto t0 = RateLimiter::Clock::time_point{} + 1h;
    for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE(rl.acquire(a, t0).allowed) << i;
    }
    auto v = rl.acquire(a, t0);
    EXPECT_FALSE(v.allowed);
    EXPECT_EQ(v.retry_after, 1s);                     // 0.5 s rounds up to whole seconds
    EXPECT_TRUE(rl.acquire(a, t0 + 500ms).allowed);   // one token back after 1/rate
    EXPECT_FALSE(rl.acquire(a, t0 + 600ms).allowed);  // and only one
    for (int i = 0; i < 3; ++i) {                     // an hour later: the burst, not more
        EXPECT_TRUE(rl.acquire(a, t0 + 1h).allowed) << i;
    }
    EXPECT_FALSE(rl.acquire(a, t0 + 1h).allowed);
    EXPECT_EQ(rl.refused(), 3U);
}

TEST(RateLimiterTest, ClientsAreSeparateButAnIpv6Slash64IsOne) {
    RateLimiter rl(0.01, 1);
    const auto t0 = RateLimiter::Clock::time_point{} + 1h;
    EXPECT_TRUE(rl.acquire(net::ip::make_address("192.0.2.1"), t0).allowed);
    EXPECT_TRUE(rl.acquire(net::ip::make_address("192.0.2.2"), t0).allowed);
    EXPECT_FALSE(rl.acquire(net::ip::make_address("192.0.2.1"), t0).allowed);
    EXPECT_TRUE(rl.acquire(net::ip::make_address("2001:db8:0:1::1"), t0).allowed);
    EXPECT_FALSE(rl.acquire(net::ip::make_address("2001:db8:0:1::ffff"), t0).allowed);
    EXPECT_TRUE(rl.acquire(net::ip::make_address("2001:db8:0:2::1"), t0).allowed);
    // A v4-mapped address is the IPv4 client.
    const auto v = rl.acquire(net::ip::make_address("::ffff:192.0.2.2"), t0);
    EXPECT_FALSE(v.allowed);
    EXPECT_EQ(v.retry_after, 100s);
}

TEST(RateLimiterTest, TableStaysBounded) {
    RateLimiter rl(1.0, 1, 64);
    const auto t0 = RateLimiter::Clock::time_point{} + 1h;
    for (unsigned i = 0; i < 1000; ++i) {
        const auto a = net::ip::make_address_v4(0xC6336400U + i);  // 198.51.100.0 and on
        EXPECT_TRUE(rl.acquire(a, t0).allowed);
        EXPECT_LE(rl.tracked(), 64U);
    }
}

TEST(RateLimiterTest, RejectsNonsense) {
    EXPECT_THROW(RateLimiter(0.0, 1), std::invalid_argument);
    EXPECT_THROW(RateLimiter(1.0, 0), std::invalid_argument);
}

// --- loopback server ----------------------------------------------------------------------

struct Client {
    Client() : socket(ioc) {}
    explicit Client(const tcp::endpoint& ep) : socket(ioc) { socket.connect(ep); }
    Response exchange(const std::string& request) {
        net::write(socket, net::buffer(request));
        return read();
    }
    Response read() {
        Response res;
        bhttp::read(socket, buffer, res);
        return res;
    }
    bool closed_by_peer() {
        char c = 0;
        boost::system::error_code ec;
        socket.read_some(net::buffer(&c, 1), ec);
        return ec == net::error::eof || ec == net::error::connection_reset;
    }
    net::io_context ioc;
    tcp::socket socket;
    boost::beast::flat_buffer buffer;
};

template <class Pred>
bool wait_for(Pred pred, std::chrono::milliseconds limit = 5000ms) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > end) {
            return false;
        }
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

class LimitsServerTest : public LimitsTest {};

TEST_F(LimitsServerTest, SlowClientGets408OnARealSocket) {
    net::io_context ioc;
    options.request_timeout = 100ms;
    Server server(ioc, {endpoint("127.0.0.1")}, router, options);
    server.start();
    IoThread io(ioc);
    Client client(server.local_endpoints()[0]);
    net::write(client.socket, net::buffer(std::string("GET /healthz HTTP/1.1\r\nHo")));
    const auto res = client.read();
    EXPECT_EQ(res.result(), bhttp::status::request_timeout);
    EXPECT_FALSE(res.keep_alive());
    EXPECT_TRUE(client.closed_by_peer());
    client.socket.close();
    EXPECT_TRUE(wait_for([&] { return server.connection_count() == 0; }));
    server.stop();
    EXPECT_TRUE(io.join());
}

TEST_F(LimitsServerTest, RateLimitFromTheServerOptions) {
    net::io_context ioc;
    options.rate_limit_per_ip = 0.5;
    options.rate_limit_burst = 1;
    options.close_linger = 100ms;  // the clients stay open past stop()
    Server server(ioc, {endpoint("127.0.0.1"), endpoint("::1")}, router, options);
    server.start();
    IoThread io(ioc);
    Client v4(server.local_endpoints()[0]);
    EXPECT_EQ(v4.exchange(healthz_request).result(), bhttp::status::ok);
    const auto res = v4.exchange(healthz_request);
    EXPECT_EQ(res.result(), bhttp::status::too_many_requests);
    EXPECT_EQ(res[bhttp::field::retry_after], "2");
    Client v6(server.local_endpoints()[1]);  // another client address: its own bucket
    EXPECT_EQ(v6.exchange(healthz_request).result(), bhttp::status::ok);
    EXPECT_EQ(server.stats().rate_limited, 1U);
    server.stop();
    EXPECT_TRUE(io.join());
}

TEST_F(LimitsServerTest, StopLetsALargeResponseFinishAndOnDrainedFires) {
    auto deferred = std::make_shared<test::DeferredProvider>(full_range_snapshot());
    Router async_router = make_router(deferred);
    net::io_context ioc;
    Server server(ioc, {endpoint("127.0.0.1")}, async_router, options);
    server.start();
    IoThread io(ioc);
    Client client;
    client.socket.open(tcp::v4());
    // A small receive window keeps the 0.5 MB response in flight while stop() runs.
    client.socket.set_option(net::socket_base::receive_buffer_size(4096));
    client.socket.connect(server.local_endpoints()[0]);
    net::write(client.socket, net::buffer(usedports_request));
    deferred->complete_when(1);
    server.stop();
    std::promise<void> drained;
    server.on_drained([&] { drained.set_value(); });
    const auto res = client.read();
    EXPECT_EQ(res.result(), bhttp::status::ok);
    EXPECT_TRUE(res.body().view().ends_with("\"65535\"]}]}"));
    EXPECT_TRUE(client.closed_by_peer());
    client.socket.close();
    EXPECT_EQ(drained.get_future().wait_for(5s), std::future_status::ready);
    EXPECT_TRUE(io.join());
    EXPECT_EQ(server.connection_count(), 0U);
}

TEST_F(LimitsServerTest, OnDrainedAfterStopWithNoConnectionFiresAtOnce) {
    net::io_context ioc;
    Server server(ioc, {endpoint("127.0.0.1")}, router, options);
    server.start();
    int fired = 0;
    server.on_drained([&] { ++fired; });  // before stop(): waits
    EXPECT_EQ(fired, 0);
    server.stop();
    EXPECT_EQ(fired, 1);                  // nothing was open: called by stop() itself
    server.on_drained([&] { ++fired; });  // after: called at once
    EXPECT_EQ(fired, 2);
    ioc.run();
    EXPECT_EQ(fired, 2);
}

// Runs the server while this process has no free file descriptor: accept(2) fails with EMFILE,
// and the listener must retry after accept_backoff instead of spinning.
TEST_F(LimitsServerTest, AcceptBacksOffOnEmfileAndRecovers) {
    net::io_context ioc;
    options.accept_backoff = 100ms;
    Server server(ioc, {endpoint("127.0.0.1")}, router, options);
    server.start();
    IoThread io(ioc);
    Client client;
    client.socket.open(tcp::v4());  // its descriptor exists before the table fills up

    rlimit saved{};
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
    const int base = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(base, 0);
    rlimit low = saved;
    low.rlim_cur = static_cast<rlim_t>(base) + 32;  // keep the filling loop short
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    std::vector<int> filler{base};
    for (int fd = ::dup(base); fd >= 0; fd = ::dup(base)) {
        filler.push_back(fd);
    }
    const int dup_errno = errno;
    if (dup_errno != EMFILE) {
        setrlimit(RLIMIT_NOFILE, &saved);
    }
    ASSERT_EQ(dup_errno, EMFILE);

    client.socket.connect(server.local_endpoints()[0]);  // completes in the listen backlog
    const auto start = std::chrono::steady_clock::now();
    const bool failed_thrice = wait_for([&] { return server.stats().accept_errors >= 3; });
    const auto took = std::chrono::steady_clock::now() - start;
    for (const int fd : filler) {
        ::close(fd);
    }
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
    ASSERT_TRUE(failed_thrice);
    // Three failures need at least two backoff pauses; a busy loop would take microseconds.
    EXPECT_GE(took, 2 * options.accept_backoff);
    EXPECT_LE(server.stats().accept_errors, 3U + static_cast<std::uint64_t>(took / 100ms));

    // The queued connection is accepted once descriptors are free again.
    EXPECT_EQ(client.exchange(healthz_request).body(), "ok");
    EXPECT_EQ(server.stats().accepted, 1U);
    server.stop();
    EXPECT_TRUE(io.join());
}

TEST_F(LimitsServerTest, ConnectionsOverTheCapAreCountedAndClosed) {
    net::io_context ioc;
    options.max_connections = 2;
    Server server(ioc, {endpoint("127.0.0.1")}, router, options);
    server.start();
    IoThread io(ioc);
    Client a(server.local_endpoints()[0]);
    Client b(server.local_endpoints()[0]);
    EXPECT_EQ(a.exchange(healthz_request).body(), "ok");
    EXPECT_EQ(b.exchange(healthz_request).body(), "ok");
    Client c(server.local_endpoints()[0]);
    EXPECT_TRUE(c.closed_by_peer());
    const auto s = server.stats();
    EXPECT_EQ(s.accepted, 3U);
    EXPECT_EQ(s.refused_over_capacity, 1U);
    EXPECT_EQ(s.open, 2U);
    server.stop();
    EXPECT_TRUE(io.join());
}

TEST(ServerOptionsTest, ComesFromHttpAndTlsSections) {
    agent::Config c = agent::default_config();
    c.http.header_limit = 4096;
    c.http.target_limit = 1000;
    c.http.body_limit = 0;
    c.http.idle_timeout_ms = 1500;
    c.http.request_timeout_ms = 2500;
    c.http.write_timeout_ms = 3500;
    c.http.handshake_timeout_ms = 4500;
    c.http.close_linger_ms = 0;
    c.http.max_connections = 9;
    c.http.accept_backoff_ms = 50;
    c.http.rate_limit_per_ip = 2.5;
    c.http.rate_limit_burst = 7;
    c.tls.enabled = true;
    c.tls.cert_file = "/x.crt";
    const ServerOptions o = server_options(c);
    EXPECT_EQ(o.header_limit, 4096U);
    EXPECT_EQ(o.target_limit, 1000U);
    EXPECT_EQ(o.body_limit, 0U);
    EXPECT_EQ(o.idle_timeout, 1500ms);
    EXPECT_EQ(o.request_timeout, 2500ms);
    EXPECT_EQ(o.write_timeout, 3500ms);
    EXPECT_EQ(o.handshake_timeout, 4500ms);
    EXPECT_EQ(o.close_linger, 0ms);
    EXPECT_EQ(o.max_connections, 9U);
    EXPECT_EQ(o.accept_backoff, 50ms);
    EXPECT_EQ(o.rate_limit_per_ip, 2.5);
    EXPECT_EQ(o.rate_limit_burst, 7U);
    EXPECT_TRUE(o.tls.enabled);
    EXPECT_EQ(o.tls.cert_file, "/x.crt");

    // The defaults of [http] are those of ServerOptions.
    const ServerOptions d = server_options(agent::default_config());
    const ServerOptions plain;
    EXPECT_EQ(d.header_limit, plain.header_limit);
    EXPECT_EQ(d.target_limit, plain.target_limit);
    EXPECT_EQ(d.body_limit, plain.body_limit);
    EXPECT_EQ(d.idle_timeout, plain.idle_timeout);
    EXPECT_EQ(d.request_timeout, plain.request_timeout);
    EXPECT_EQ(d.write_timeout, plain.write_timeout);
    EXPECT_EQ(d.handshake_timeout, plain.handshake_timeout);
    EXPECT_EQ(d.close_linger, plain.close_linger);
    EXPECT_EQ(d.max_connections, plain.max_connections);
    EXPECT_EQ(d.accept_backoff, plain.accept_backoff);
    EXPECT_EQ(d.rate_limit_per_ip, plain.rate_limit_per_ip);
    EXPECT_EQ(d.rate_limit_burst, plain.rate_limit_burst);
    EXPECT_FALSE(d.tls.enabled);
}

}  // namespace
}  // namespace vipportd::http
