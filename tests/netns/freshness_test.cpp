// Freshness through the whole stack: real sock_diag in a namespace, the snapshot service, the
// router and the Beast server, a real HTTP client. A socket bound before a request is sent is
// always in the answer; a socket closed before it never is. 1,000 rounds, while a second client
// keeps scans in flight, so that requests keep landing in the middle of a scan (which must not
// serve them: they wait for the next one).

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <arpa/inet.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "agent/snapshot_service.hpp"
#include "agent/socket_source.hpp"
#include "http/auth.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "netlink/kernel_transport.hpp"
#include "tests/support/netns.hpp"

namespace vipportd {
namespace {

namespace bhttp = boost::beast::http;
using boost::asio::ip::tcp;

// One keep-alive HTTP/1.1 client on loopback.
class Client {
  public:
    explicit Client(std::uint16_t port) : socket_(ioc_) {
        socket_.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    }
    // The usedPorts of 127.0.0.1 (in the test namespace: the service scans there).
    std::vector<std::string> used(const char* protocol) {
        bhttp::request<bhttp::string_body> req{
            bhttp::verb::get,
            std::string("/zstack/v1/vips/127.0.0.1/usedports?protocol=") + protocol, 11};
        req.set(bhttp::field::host, "127.0.0.1");
        req.set(bhttp::field::authorization, "OAuth test");
        bhttp::write(socket_, req);
        bhttp::response<bhttp::string_body> res;
        bhttp::read(socket_, buffer_, res);
        EXPECT_EQ(res.result(), bhttp::status::ok) << res.body();
        std::vector<std::string> out;
        const auto doc = boost::json::parse(res.body());
        for (const auto& p : doc.at("inventories").at(0).at("usedPorts").as_array()) {
            out.emplace_back(p.as_string());
        }
        return out;
    }

  private:
    boost::asio::io_context ioc_;
    tcp::socket socket_;
    boost::beast::flat_buffer buffer_;
};

bool contains(const std::vector<std::string>& ports, std::uint16_t port) {
    const std::string p = std::to_string(port);
    return std::find(ports.begin(), ports.end(), p) != ports.end();
}

// A socket created in the namespace, bound to 127.0.0.1:0 (the kernel picks the port).
struct TestSocket {
    int fd = -1;
    std::uint16_t port = 0;
};

TestSocket open_socket(const test::TestNetns& ns, bool tcp_listener) {
    return ns.in([tcp_listener] {
        TestSocket s;
        s.fd = socket(AF_INET, tcp_listener ? SOCK_STREAM : SOCK_DGRAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof(a);
        if (s.fd < 0 || bind(s.fd, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
            (tcp_listener && listen(s.fd, 1) != 0) ||
            getsockname(s.fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
            ADD_FAILURE() << "socket setup failed: errno " << errno;
            return s;
        }
        s.port = ntohs(a.sin_port);
        return s;
    });
}

TEST(Freshness, BoundBeforeTheRequestIsAlwaysSeenClosedBeforeItNever) {
    if (!test::can_create_netns()) {
        GTEST_SKIP() << "needs root";
    }
    test::TestNetns ns;
    auto source = ns.in([] {
        return std::make_unique<agent::SocketSource>(
            std::make_unique<netlink::KernelTransport>(NETLINK_SOCK_DIAG), nullptr);
    });
    std::vector<agent::SourceSlot> slots;
    slots.push_back({std::move(source), true});
    auto snapshots = std::make_shared<agent::SnapshotService>(std::move(slots));

    boost::asio::io_context ioc;
    snapshots->set_dispatcher(
        [&ioc](std::function<void()> f) { boost::asio::post(ioc, std::move(f)); });
    http::Router router(http::RouterDeps{snapshots,
                                         [] { return std::shared_ptr<const agent::VipRegistry>(); },
                                         std::make_shared<http::AcceptAll>()});
    agent::ListenEndpoint ep{*netlink::InetAddress::parse("127.0.0.1"), 0};
    http::Server server(ioc, {ep}, router);
    server.start();
    const std::uint16_t port = server.local_endpoints().at(0).port();
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) {
        threads.emplace_back([&ioc] { ioc.run(); });
    }

    // Background load: scans are almost always running when the checked requests arrive.
    std::atomic<bool> stop{false};
    std::atomic<int> background{0};
    std::thread poller([&] {
        Client c(port);
        while (!stop) {
            (void)c.used("UDP");
            ++background;
        }
    });

    Client client(port);
    constexpr int kRounds = 1000;
    int seen = 0;
    int gone = 0;
    for (int round = 0; round < kRounds; ++round) {
        const bool tcp = round % 2 == 0;
        const char* proto = tcp ? "TCP" : "UDP";
        const TestSocket s = open_socket(ns, tcp);
        ASSERT_GE(s.fd, 0);
        seen += contains(client.used(proto), s.port) ? 1 : 0;
        ASSERT_EQ(seen, round + 1) << "round " << round << ": " << proto << " port " << s.port
                                   << " bound before the request is missing";
        ::close(s.fd);
        gone += contains(client.used(proto), s.port) ? 0 : 1;
        ASSERT_EQ(gone, round + 1) << "round " << round << ": " << proto << " port " << s.port
                                   << " closed before the request is still reported";
    }
    stop = true;
    poller.join();
    EXPECT_GT(background.load(), 0);
    server.stop();
    ioc.stop();
    for (auto& t : threads) {
        t.join();
    }
    EXPECT_EQ(seen, kRounds);
    EXPECT_EQ(gone, kRounds);
}

}  // namespace
}  // namespace vipportd
