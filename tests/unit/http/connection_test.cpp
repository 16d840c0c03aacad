// Connection over beast::test::stream: keep-alive, HTTP/1.0, parser limits, timeouts, shutdown,
// asynchronous completions from another thread, and a fail-count walk over every I/O step
// (style.md §4.15).

#include "http/connection.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/_experimental/test/fail_count.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/http/read.hpp>
#include <gtest/gtest.h>

#include "http_fakes.hpp"

namespace vipportd::http {
namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
namespace bt = boost::beast::test;
using TestConnection = Connection<bt::stream>;

const std::string usedports_request =
    "GET /zstack/v1/vips/vip-1/usedports?protocol=TCP HTTP/1.1\r\n"
    "Host: vipportd\r\nAuthorization: OAuth t\r\n\r\n";
const std::string healthz_request = "GET /healthz HTTP/1.1\r\nHost: vipportd\r\n\r\n";
const std::string ok_tcp =
    R"({"inventories":[{"uuid":"vip-1","protcol":"TCP","protocol":"TCP","usedPorts":["20","21","22","23","80","8080"]}]})";

// Parses consecutive responses; head[i] says response i answers a HEAD (no body on the wire).
// Stops quietly at the first incomplete one unless strict.
std::vector<Response> parse_responses(std::string_view data,
                                      std::vector<bool> head = {},
                                      bool strict = true) {
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
            if (strict) {
                ADD_FAILURE() << "unparsable response " << out.size() << ": " << ec.message();
            }
            break;
        }
        out.push_back(p.release());
    }
    return out;
}

class ConnectionTest : public ::testing::Test {
  protected:
    ConnectionTest()
        : provider(std::make_shared<test::FakeProvider>(test::sample_snapshot())),
          router(RouterDeps{provider, [] { return test::sample_registry(); },
                            std::make_shared<AcceptAll>()}) {}

    // Serves input (then EOF unless keep_open) until the connection is gone; returns what the
    // client received. The connection must be destroyed by then: nothing leaks.
    std::string serve(const std::string& input, bool keep_open = false) {
        net::io_context ioc;
        bt::stream server(ioc, input);
        bt::stream client(ioc);
        server.connect(client);
        if (!keep_open) {
            server.close_remote();
        }
        auto conn = std::make_shared<TestConnection>(std::move(server), router, options);
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

TEST_F(ConnectionTest, KeepAliveServesSeveralRequestsOnOneStream) {
    const auto out =
        parse_responses(serve(usedports_request + healthz_request + usedports_request));
    ASSERT_EQ(out.size(), 3U);
    EXPECT_EQ(out[0].result(), bhttp::status::ok);
    EXPECT_EQ(out[0].body(), ok_tcp);
    EXPECT_TRUE(out[0].keep_alive());
    EXPECT_EQ(out[0][bhttp::field::server], "vipportd");
    EXPECT_EQ(out[1].body(), "ok");
    EXPECT_EQ(out[2].body(), ok_tcp);
    EXPECT_EQ(provider->calls, 2);
}

TEST_F(ConnectionTest, Http10ClosesAfterOneResponse) {
    const std::string req10 =
        "GET /zstack/v1/vips/vip-1/usedports?protocol=TCP HTTP/1.0\r\nAuthorization: OAuth "
        "t\r\n\r\n";
    const auto out = parse_responses(serve(req10 + req10), {}, true);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].version(), 10U);
    EXPECT_FALSE(out[0].keep_alive());
    EXPECT_EQ(out[0].body(), ok_tcp);
    EXPECT_EQ(provider->calls, 1);
}

TEST_F(ConnectionTest, Http10KeepAliveIsHonoured) {
    const std::string req10 = "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    const auto out = parse_responses(serve(req10 + req10));
    ASSERT_EQ(out.size(), 2U);
    EXPECT_EQ(out[0][bhttp::field::connection], "keep-alive");
}

TEST_F(ConnectionTest, ConnectionCloseIsHonoured) {
    const auto out = parse_responses(
        serve("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n" + healthz_request));
    ASSERT_EQ(out.size(), 1U);
    EXPECT_FALSE(out[0].keep_alive());
}

TEST_F(ConnectionTest, HeadResponseHasLengthButNoBodyOnTheWire) {
    const std::string head =
        "HEAD /zstack/v1/vips/vip-1/usedports?protocol=TCP HTTP/1.1\r\nAuthorization: OAuth "
        "t\r\n\r\n";
    const std::string raw = serve(head + healthz_request);
    const auto out = parse_responses(raw, {true, false});
    ASSERT_EQ(out.size(), 2U);
    EXPECT_EQ(out[0][bhttp::field::content_length], std::to_string(ok_tcp.size()));
    EXPECT_EQ(raw.find("inventories"), std::string::npos);  // no body bytes were sent
    EXPECT_EQ(out[1].body(), "ok");  // the next response starts right after the header
}

TEST_F(ConnectionTest, OversizedHeaderIs431ThenClose) {
    const std::string big =
        "GET /healthz HTTP/1.1\r\nX-Pad: " + std::string(9000, 'a') + "\r\n\r\n" + healthz_request;
    const auto out = parse_responses(serve(big));
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].result(), bhttp::status::request_header_fields_too_large);
    EXPECT_FALSE(out[0].keep_alive());
    EXPECT_EQ(out[0][bhttp::field::content_type], "text/plain; charset=utf-8");
}

TEST_F(ConnectionTest, BodyOnGetIs413ThenClose) {
    auto out = parse_responses(
        serve("GET /healthz HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello" + healthz_request));
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].result(), bhttp::status::payload_too_large);
    EXPECT_EQ(out[0].body(), "a GET or HEAD request must not have a body");
    EXPECT_FALSE(out[0].keep_alive());

    out = parse_responses(serve(
        "GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"));
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].result(), bhttp::status::payload_too_large);

    // An empty body is no body.
    out = parse_responses(serve("GET /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].result(), bhttp::status::ok);
}

TEST_F(ConnectionTest, SmallBodyOnOtherMethodIsReadAnd405) {
    const auto out = parse_responses(
        serve("POST /healthz HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello" + healthz_request));
    ASSERT_EQ(out.size(), 2U);
    EXPECT_EQ(out[0].result(), bhttp::status::method_not_allowed);
    EXPECT_TRUE(out[0].keep_alive());
    EXPECT_EQ(out[1].body(), "ok");
}

TEST_F(ConnectionTest, LargeBodyIs413) {
    const auto out = parse_responses(
        serve("POST /healthz HTTP/1.1\r\nContent-Length: 2000\r\n\r\n" + std::string(2000, 'x')));
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].result(), bhttp::status::payload_too_large);
    EXPECT_EQ(out[0].body(), "request body too large");
}

TEST_F(ConnectionTest, LongTargetIs414) {
    const auto out = parse_responses(
        serve("GET /zstack/v1/vips/" + std::string(5000, 'u') + "/usedports HTTP/1.1\r\n\r\n"));
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].result(), bhttp::status::uri_too_long);
    EXPECT_FALSE(out[0].keep_alive());
}

TEST_F(ConnectionTest, MalformedRequestIs400ThenClose) {
    for (const std::string bad :
         {"GET /healthz HTTP/1.1\r\nNo colon here\r\n\r\n", "GET /healthz HTTP/7.1\r\n\r\n",
          "\x01\x02\x03 / HTTP/1.1\r\n\r\n",
          "GET /healthz HTTP/1.1\r\nContent-Length: x\r\n\r\n"}) {
        const auto out = parse_responses(serve(bad + healthz_request));
        ASSERT_EQ(out.size(), 1U) << bad;
        EXPECT_EQ(out[0].result(), bhttp::status::bad_request) << bad;
        EXPECT_TRUE(out[0].body().view().starts_with("bad request: ")) << out[0].body();
        EXPECT_FALSE(out[0].keep_alive());
    }
}

TEST_F(ConnectionTest, PeerClosingMidRequestIsAQuietClose) {
    EXPECT_EQ(serve("GET /healthz HTTP/1.1\r\nHost: x"), "");
    EXPECT_EQ(serve(""), "");
}

TEST_F(ConnectionTest, RouterExceptionIs500AndServingContinues) {
    provider->throw_next = true;
    const auto out = parse_responses(serve(usedports_request + usedports_request));
    ASSERT_EQ(out.size(), 2U);
    EXPECT_EQ(out[0].result(), bhttp::status::internal_server_error);
    EXPECT_EQ(out[0].body(), "internal server error");
    EXPECT_TRUE(out[0].keep_alive());
    EXPECT_EQ(out[1].body(), ok_tcp);
}

TEST_F(ConnectionTest, IdleTimeoutClosesAWaitingConnection) {
    options.idle_timeout = std::chrono::milliseconds(30);
    const auto start = std::chrono::steady_clock::now();
    // Without the deadline this would never return: the input stays open.
    const auto out = parse_responses(serve(healthz_request, /*keep_open=*/true));
    EXPECT_GE(std::chrono::steady_clock::now() - start, options.idle_timeout);
    ASSERT_EQ(out.size(), 1U);  // the request was served, then the idle wait timed out
    EXPECT_EQ(out[0].body(), "ok");
}

TEST_F(ConnectionTest, RequestTimeoutAnswers408ToASlowRequest) {
    options.request_timeout = std::chrono::milliseconds(30);
    const auto out =
        parse_responses(serve("GET /healthz HTTP/1.1\r\nHost: slow", /*keep_open=*/true));
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].result(), bhttp::status::request_timeout);
    EXPECT_FALSE(out[0].keep_alive());
}

TEST_F(ConnectionTest, IdleTimeoutIsNotTheRequestTimeout) {
    // A short request timeout must not cut a keep-alive wait, only a started request.
    options.request_timeout = std::chrono::milliseconds(1);
    options.idle_timeout = std::chrono::milliseconds(60);
    const auto start = std::chrono::steady_clock::now();
    const auto out = parse_responses(serve(healthz_request, /*keep_open=*/true));
    EXPECT_GE(std::chrono::steady_clock::now() - start, options.idle_timeout);
    ASSERT_EQ(out.size(), 1U);
}

TEST_F(ConnectionTest, ShutdownClosesAnIdleConnection) {
    net::io_context ioc;
    bt::stream server(ioc);
    bt::stream client(ioc);
    server.connect(client);
    auto conn = std::make_shared<TestConnection>(std::move(server), router, options);
    std::weak_ptr<TestConnection> weak = conn;
    conn->run();
    conn->shutdown();
    conn.reset();
    ioc.run();  // returns only because shutdown closed the idle read (idle_timeout is 30 s)
    EXPECT_TRUE(weak.expired());
    EXPECT_EQ(client.str(), "");
}

TEST_F(ConnectionTest, CompletionFromAnotherThreadIsPostedBackOneRequestAtATime) {
    auto deferred = std::make_shared<test::DeferredProvider>(test::sample_snapshot());
    const Router async_router(RouterDeps{deferred, [] { return test::sample_registry(); },
                                         std::make_shared<AcceptAll>()});
    net::io_context ioc;
    bt::stream server(ioc, usedports_request + usedports_request);
    bt::stream client(ioc);
    server.connect(client);
    server.close_remote();
    auto conn = std::make_shared<TestConnection>(std::move(server), async_router, options);
    conn->run();
    conn.reset();
    std::size_t max_pending = 0;
    std::thread worker([&] {
        for (int i = 0; i < 2; ++i) {
            {
                std::unique_lock lock(deferred->mutex);
                deferred->changed.wait(lock, [&] { return !deferred->pending.empty(); });
                max_pending = std::max(max_pending, deferred->pending.size());
            }
            deferred->complete_when(1);
        }
    });
    // run() must not return while the router holds the request (outstanding work is tracked).
    ioc.run();
    worker.join();
    const auto out = parse_responses(client.str());
    ASSERT_EQ(out.size(), 2U);
    EXPECT_EQ(out[0].body(), ok_tcp);
    EXPECT_EQ(out[1].body(), ok_tcp);
    EXPECT_EQ(max_pending, 1U);  // the second request was not read before the first answer
}

TEST_F(ConnectionTest, ShutdownLetsTheRequestInProgressFinishThenCloses) {
    auto deferred = std::make_shared<test::DeferredProvider>(test::sample_snapshot());
    const Router async_router(RouterDeps{deferred, [] { return test::sample_registry(); },
                                         std::make_shared<AcceptAll>()});
    net::io_context ioc;
    bt::stream server(ioc, usedports_request + usedports_request);
    bt::stream client(ioc);
    server.connect(client);  // input stays open: only shutdown can end this connection
    auto conn = std::make_shared<TestConnection>(std::move(server), async_router, options);
    conn->run();
    std::thread worker([&] {
        {
            std::unique_lock lock(deferred->mutex);
            deferred->changed.wait(lock, [&] { return !deferred->pending.empty(); });
        }
        conn->shutdown();  // posted before the completion, so it is seen first
        deferred->complete_when(1);
    });
    ioc.run();
    worker.join();
    conn.reset();
    const auto out = parse_responses(client.str());
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].body(), ok_tcp);
    EXPECT_FALSE(out[0].keep_alive());
    EXPECT_EQ(out[0][bhttp::field::connection], "close");
}

// Fails the 1st, 2nd, ... I/O operation of the server side until a whole exchange succeeds:
// every failure path must end in a closed, destroyed connection, never a crash or a hang.
TEST_F(ConnectionTest, FailCountWalksEveryErrorBranch) {
    const std::string input = usedports_request + healthz_request +
                              "POST /healthz HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc" +
                              "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n";
    for (std::size_t read_size : {std::size_t{0}, std::size_t{7}}) {
        bool completed = false;
        std::size_t n = 0;
        for (; n < 500 && !completed; ++n) {
            net::io_context ioc;
            bt::fail_count fc(n);
            bt::stream server(ioc, fc, input);
            if (read_size != 0) {
                server.read_size(read_size);  // many small reads: fail mid-header and mid-body
            }
            bt::stream client(ioc);
            server.connect(client);
            server.close_remote();
            auto conn = std::make_shared<TestConnection>(std::move(server), router, options);
            std::weak_ptr<TestConnection> weak = conn;
            conn->run();
            conn.reset();
            ioc.run();
            ASSERT_TRUE(weak.expired()) << "n=" << n;
            const auto out = parse_responses(client.str(), {}, false);
            for (const auto& r : out) {
                EXPECT_NE(r.result(), bhttp::status::internal_server_error) << "n=" << n;
            }
            completed = out.size() == 4;
        }
        EXPECT_TRUE(completed) << "read_size=" << read_size;
        EXPECT_GT(n, 4U) << "read_size=" << read_size;  // the walk did visit failures
    }
}

}  // namespace
}  // namespace vipportd::http
