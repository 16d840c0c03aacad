// Server on real loopback sockets (port 0, 127.0.0.1 and ::1 only) with a raw Asio client.

#include "http/server.hpp"

#include <chrono>
#include <future>
#include <string>
#include <system_error>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <gtest/gtest.h>

#include "http_fakes.hpp"

namespace vipportd::http {
namespace {

namespace net = boost::asio;
using test::endpoint;
using test::IoThread;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

const std::string ok_tcp =
    R"({"inventories":[{"uuid":"vip-1","protcol":"TCP","protocol":"TCP","usedPorts":["20","21","22","23","80","8080"]}]})";
const std::string usedports_request =
    "GET /zstack/v1/vips/vip-1/usedports?protocol=tcp HTTP/1.1\r\n"
    "Host: vipportd\r\nAuthorization: OAuth t\r\n\r\n";

struct Client {
    explicit Client(const tcp::endpoint& ep) : socket(ioc) { socket.connect(ep); }
    Response exchange(const std::string& request) {
        net::write(socket, net::buffer(request));
        Response res;
        bhttp::read(socket, buffer, res);
        return res;
    }
    // True when the server closed the connection (EOF or reset) before sending anything.
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

class ServerTest : public ::testing::Test {
  protected:
    ServerTest()
        : provider(std::make_shared<test::FakeProvider>(test::sample_snapshot())),
          router(RouterDeps{provider, [] { return test::sample_registry(); },
                            std::make_shared<AcceptAll>()}) {}
    std::shared_ptr<test::FakeProvider> provider;
    Router router;
};

TEST_F(ServerTest, ServesKeepAliveOnLoopbackAndStopsGracefully) {
    net::io_context ioc;
    Server server(ioc, {endpoint("127.0.0.1", 0), endpoint("::1", 0)}, router);
    EXPECT_TRUE(server.local_endpoints().empty());
    server.start();
    const auto eps = server.local_endpoints();
    ASSERT_EQ(eps.size(), 2U);
    EXPECT_EQ(eps[0].address(), net::ip::make_address("127.0.0.1"));
    EXPECT_EQ(eps[1].address(), net::ip::make_address("::1"));
    EXPECT_NE(eps[0].port(), 0);
    EXPECT_NE(eps[1].port(), 0);

    IoThread io(ioc);
    Client v4(eps[0]);
    auto res = v4.exchange(usedports_request);
    EXPECT_EQ(res.result(), bhttp::status::ok);
    EXPECT_EQ(res.body(), ok_tcp);
    EXPECT_TRUE(res.keep_alive());
    res = v4.exchange("GET /healthz HTTP/1.1\r\n\r\n");  // same connection
    EXPECT_EQ(res.body(), "ok");

    Client v6(eps[1]);
    EXPECT_EQ(v6.exchange(usedports_request).body(), ok_tcp);
    EXPECT_EQ(server.connection_count(), 2U);

    // Both clients are idle in keep-alive: stop() closes them, and run() then has no work left.
    server.stop();
    EXPECT_TRUE(io.join());
    EXPECT_TRUE(v4.closed_by_peer());
    EXPECT_TRUE(v6.closed_by_peer());
    EXPECT_EQ(server.connection_count(), 0U);
    EXPECT_EQ(provider->calls, 2);
}

TEST_F(ServerTest, StopLetsAnInFlightResponseFinish) {
    auto deferred = std::make_shared<test::DeferredProvider>(test::sample_snapshot());
    Router async_router(RouterDeps{deferred, [] { return test::sample_registry(); },
                                   std::make_shared<AcceptAll>()});
    net::io_context ioc;
    Server server(ioc, {endpoint("127.0.0.1", 0)}, async_router);
    server.start();
    IoThread io(ioc);
    Client client(server.local_endpoints()[0]);
    net::write(client.socket, net::buffer(usedports_request));
    {
        std::unique_lock lock(deferred->mutex);
        deferred->changed.wait(lock, [&] { return !deferred->pending.empty(); });
    }
    server.stop();
    deferred->complete_when(1);
    Response res;
    bhttp::read(client.socket, client.buffer, res);
    EXPECT_EQ(res.body(), ok_tcp);
    EXPECT_FALSE(res.keep_alive());  // the last response says so
    EXPECT_TRUE(client.closed_by_peer());
    client.socket.close();  // ends the server's lingering close at once
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(io.join());
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST_F(ServerTest, RejectedOversizedRequestStillReachesTheClient) {
    // The server stops reading at 8 KiB; its lingering close keeps the rest of the 48 KiB from
    // turning into a reset that could destroy the 431 before the client reads it.
    net::io_context ioc;
    Server server(ioc, {endpoint("127.0.0.1", 0)}, router);
    server.start();
    IoThread io(ioc);
    Client client(server.local_endpoints()[0]);
    const auto res = client.exchange(
        "GET /healthz HTTP/1.1\r\nX-Pad: " + std::string(48 * 1024, 'p') + "\r\n\r\n");
    EXPECT_EQ(res.result(), bhttp::status::request_header_fields_too_large);
    EXPECT_FALSE(res.keep_alive());
    EXPECT_TRUE(client.closed_by_peer());
    client.socket.close();
    server.stop();
    EXPECT_TRUE(io.join());
}

// Lingering close after a final response: the server keeps reading (and discarding) until the
// peer closes, close_linger passes, or drain_limit bytes arrived. Each case below would hang
// join() (10 s, then failure) if its own end condition did not work.
TEST_F(ServerTest, LingeringCloseEndsWhenThePeerCloses) {
    net::io_context ioc;
    ServerOptions options;
    options.close_linger = std::chrono::hours(1);
    Server server(ioc, {endpoint("127.0.0.1", 0)}, router, options);
    server.start();
    IoThread io(ioc);
    Client client(server.local_endpoints()[0]);
    const auto res = client.exchange("GET /healthz HTTP/1.0\r\n\r\n");
    EXPECT_EQ(res.body(), "ok");
    EXPECT_FALSE(res.keep_alive());
    net::write(client.socket, net::buffer(std::string("GET /healthz HTTP/1.0\r\n\r\n")));
    EXPECT_TRUE(client.closed_by_peer());      // FIN after the response...
    EXPECT_EQ(server.connection_count(), 1U);  // ...but still draining what the client sends
    server.stop();                             // a draining connection is not cut short
    client.socket.close();
    EXPECT_TRUE(io.join());
    EXPECT_EQ(server.connection_count(), 0U);
}

TEST_F(ServerTest, LingeringCloseEndsAfterCloseLinger) {
    net::io_context ioc;
    ServerOptions options;
    options.close_linger = std::chrono::milliseconds(50);
    Server server(ioc, {endpoint("127.0.0.1", 0)}, router, options);
    server.start();
    IoThread io(ioc);
    Client client(server.local_endpoints()[0]);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(client.exchange("GET /healthz HTTP/1.0\r\n\r\n").body(), "ok");
    server.stop();
    EXPECT_TRUE(io.join());  // the client never closes: only the linger deadline ends it
    EXPECT_GE(std::chrono::steady_clock::now() - start, options.close_linger);
}

TEST_F(ServerTest, LingeringCloseEndsAtTheDrainLimit) {
    net::io_context ioc;
    ServerOptions options;
    options.close_linger = std::chrono::hours(1);
    options.drain_limit = 1000;
    Server server(ioc, {endpoint("127.0.0.1", 0)}, router, options);
    server.start();
    IoThread io(ioc);
    Client client(server.local_endpoints()[0]);
    EXPECT_EQ(client.exchange("GET /healthz HTTP/1.0\r\n\r\n").body(), "ok");
    net::write(client.socket, net::buffer(std::string(4000, 'x')));
    server.stop();
    EXPECT_TRUE(io.join());  // the client never closes and the linger is an hour
}

TEST_F(ServerTest, BindFailureNamesTheEndpoint) {
    net::io_context ioc;
    Server first(ioc, {endpoint("127.0.0.1", 0)}, router);
    first.start();
    const auto port = first.local_endpoints()[0].port();
    Server second(ioc, {endpoint("::1", 0), endpoint("127.0.0.1", port)}, router);
    try {
        second.start();
        FAIL() << "bind to a busy port succeeded";
    } catch (const std::system_error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << what;
        EXPECT_NE(what.find("bind"), std::string::npos) << what;
        EXPECT_EQ(e.code(), std::errc::address_in_use);
    }
    EXPECT_TRUE(second.local_endpoints().empty());
    EXPECT_THROW(first.start(), std::logic_error);
}

TEST_F(ServerTest, Ipv4AndIpv6LoopbackShareAPort) {
    net::io_context ioc;
    Server v4(ioc, {endpoint("127.0.0.1", 0)}, router);
    v4.start();
    const auto port = v4.local_endpoints()[0].port();
    Server v6(ioc, {endpoint("::1", port)}, router);
    EXPECT_NO_THROW(v6.start());
    EXPECT_EQ(v6.local_endpoints()[0].port(), port);
}

TEST_F(ServerTest, ConnectionsBeyondTheLimitAreClosed) {
    net::io_context ioc;
    ServerOptions options;
    options.max_connections = 1;
    Server server(ioc, {endpoint("127.0.0.1", 0)}, router, options);
    server.start();
    IoThread io(ioc);
    Client first(server.local_endpoints()[0]);
    EXPECT_EQ(first.exchange("GET /healthz HTTP/1.1\r\n\r\n").body(), "ok");  // registered now
    Client second(server.local_endpoints()[0]);
    EXPECT_TRUE(second.closed_by_peer());
    EXPECT_EQ(first.exchange("GET /healthz HTTP/1.1\r\n\r\n").body(), "ok");
    server.stop();
    EXPECT_TRUE(io.join());
}

TEST_F(ServerTest, StopWithoutStartAndTwiceIsHarmless) {
    net::io_context ioc;
    Server server(ioc, {endpoint("127.0.0.1", 0)}, router);
    server.stop();
    server.stop();
    ioc.run();
    EXPECT_EQ(server.connection_count(), 0U);
}

}  // namespace
}  // namespace vipportd::http
