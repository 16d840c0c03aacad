// auth mode "zstack": session validation by a fake management node that this test serves on
// loopback (port 0). The node counts requests, which proves caching and coalescing; it can hold
// replies back, stay silent, or answer garbage.

#include "http/zstack_sessions.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "http/router.hpp"
#include "http_fakes.hpp"

namespace vipportd::http {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
using Kind = AuthVerdict::Kind;

/// A management node on 127.0.0.1:<ephemeral> answering GET .../sessions/{s}/valid.
class FakeNode {
  public:
    enum class Mode { answer, hold, silent };

    FakeNode() : acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
        accept();
        thread_ = std::thread([this] { ioc_.run(); });
    }
    ~FakeNode() {
        ioc_.stop();
        thread_.join();
    }

    std::string url() const {
        return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
    }

    // Configuration (set before the requests it should affect).
    void set_valid(const std::string& session) {
        std::lock_guard lock(mutex_);
        valid_[session] = true;  // others: {"valid":false}
    }
    void set_body(std::string body) {  // non-empty: sent instead of {"valid":...}
        std::lock_guard lock(mutex_);
        raw_body_ = std::move(body);
    }
    std::atomic<Mode> mode{Mode::answer};
    std::atomic<unsigned> status{200};

    unsigned requests() const {
        std::lock_guard lock(mutex_);
        return static_cast<unsigned>(targets_.size());
    }
    std::vector<std::string> targets() const {
        std::lock_guard lock(mutex_);
        return targets_;
    }
    /// Waits (bounded) until n requests have arrived.
    bool wait_requests(unsigned n) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, 5s, [&] { return targets_.size() >= n; });
    }
    /// Answers every held request (mode hold), then answers at once again.
    void release() {
        mode = Mode::answer;
        net::post(ioc_, [this] {
            auto held = std::move(held_);
            held_.clear();
            for (auto& h : held) {
                reply(h.socket, h.session);
            }
        });
    }

  private:
    struct Held {
        std::shared_ptr<tcp::socket> socket;
        std::string session;
    };

    void accept() {
        acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
            if (ec) {
                return;
            }
            auto sock = std::make_shared<tcp::socket>(std::move(s));
            auto buf = std::make_shared<net::streambuf>();
            net::async_read_until(*sock, *buf, "\r\n\r\n",
                                  [this, sock, buf](boost::system::error_code e, std::size_t) {
                                      if (!e) {
                                          on_request(sock, *buf);
                                      }
                                  });
            accept();
        });
    }

    void on_request(const std::shared_ptr<tcp::socket>& sock, net::streambuf& buf) {
        std::string head(net::buffers_begin(buf.data()), net::buffers_end(buf.data()));
        const auto sp1 = head.find(' ');
        const auto sp2 = head.find(' ', sp1 + 1);
        const std::string target = head.substr(sp1 + 1, sp2 - sp1 - 1);
        // ".../sessions/<session>/valid"
        const std::string prefix = "/sessions/";
        const auto b = target.find(prefix) + prefix.size();
        const std::string session = target.substr(b, target.rfind("/valid") - b);
        {
            std::lock_guard lock(mutex_);
            targets_.push_back(target);
        }
        changed_.notify_all();
        switch (mode.load()) {
            case Mode::answer:
                return reply(sock, session);
            case Mode::hold:
                held_.push_back({sock, session});
                return;
            case Mode::silent:
                held_.push_back({sock, session});  // kept open, never answered
                return;
        }
    }

    void reply(const std::shared_ptr<tcp::socket>& sock, const std::string& session) {
        std::string body;
        {
            std::lock_guard lock(mutex_);
            body = !raw_body_.empty() ? raw_body_
                                      : std::string("{\"valid\":") +
                                            (valid_.contains(session) ? "true" : "false") + "}";
        }
        auto text = std::make_shared<std::string>(
            "HTTP/1.1 " + std::to_string(status.load()) +
            " X\r\nContent-Type: application/json\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
        net::async_write(*sock, net::buffer(*text),
                         [sock, text](boost::system::error_code, std::size_t) {
                             boost::system::error_code ignored;
                             sock->shutdown(tcp::socket::shutdown_both, ignored);
                         });
    }

    net::io_context ioc_;
    tcp::acceptor acceptor_;
    std::thread thread_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::string> targets_;
    std::vector<Held> held_;  // io thread only
    std::map<std::string, bool> valid_;
    std::string raw_body_;
};

/// Collects verdicts delivered on any thread.
class Verdicts {
  public:
    Authenticator::Callback callback() {
        return [this](AuthVerdict v) {
            std::lock_guard lock(mutex_);
            got_.push_back(std::move(v));
            changed_.notify_all();
        };
    }
    /// Waits (bounded) for n verdicts and returns them.
    std::vector<AuthVerdict> wait(std::size_t n) {
        std::unique_lock lock(mutex_);
        EXPECT_TRUE(changed_.wait_for(lock, 10s, [&] { return got_.size() >= n; }))
            << "only " << got_.size() << " of " << n << " verdicts";
        return got_;
    }
    std::size_t count() {
        std::lock_guard lock(mutex_);
        return got_.size();
    }

  private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<AuthVerdict> got_;
};

Credentials oauth(std::string session) {
    Credentials c;
    c.session = std::move(session);
    return c;
}

ZStackSessionsOptions options_for(const std::string& url) {
    agent::AuthConfig c;
    c.mode = agent::AuthConfig::Mode::zstack;
    c.management_node = url;
    return ZStackSessionsOptions::from(c);
}

AuthVerdict check_one(const ZStackSessions& z, const std::string& session) {
    Verdicts v;
    z.check(oauth(session), v.callback());
    auto got = v.wait(1);
    return got.empty() ? AuthVerdict{} : got.front();
}

// A loopback port with nothing listening: bound, then closed.
std::uint16_t closed_port() {
    net::io_context ioc;
    tcp::acceptor a(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    const auto port = a.local_endpoint().port();
    a.close();
    return port;
}

TEST(ZStackSessions, ValidSessionIsAcceptedThenServedFromCache) {
    FakeNode node;
    node.set_valid("s-good");
    const ZStackSessions z(options_for(node.url()));
    EXPECT_EQ(check_one(z, "s-good").kind, Kind::accepted);
    EXPECT_EQ(check_one(z, "s-good").kind, Kind::accepted);
    EXPECT_EQ(check_one(z, "s-good").kind, Kind::accepted);
    EXPECT_EQ(node.requests(), 1U);
    EXPECT_EQ(node.targets().at(0), "/zstack/v1/accounts/sessions/s-good/valid");
    const auto s = z.stats();
    EXPECT_EQ(s.validations, 1U);
    EXPECT_EQ(s.cache_hits, 2U);
    EXPECT_EQ(s.cached, 1U);
}

TEST(ZStackSessions, InvalidSessionIsRejectedAndNegativelyCached) {
    FakeNode node;
    const ZStackSessions z(options_for(node.url()));
    EXPECT_EQ(check_one(z, "s-bad").kind, Kind::rejected);
    EXPECT_EQ(check_one(z, "s-bad").kind, Kind::rejected);
    EXPECT_EQ(node.requests(), 1U);
}

TEST(ZStackSessions, ZeroTtlsDisableTheCaches) {
    FakeNode node;
    node.set_valid("s-good");
    auto o = options_for(node.url());
    o.valid_ttl = 0s;
    o.invalid_ttl = 0s;
    const ZStackSessions z(o);
    EXPECT_EQ(check_one(z, "s-good").kind, Kind::accepted);
    EXPECT_EQ(check_one(z, "s-good").kind, Kind::accepted);
    EXPECT_EQ(check_one(z, "s-bad").kind, Kind::rejected);
    EXPECT_EQ(check_one(z, "s-bad").kind, Kind::rejected);
    EXPECT_EQ(node.requests(), 4U);
    EXPECT_EQ(z.stats().cached, 0U);
}

TEST(ZStackSessions, ConcurrentChecksOfOneSessionShareOneValidation) {
    FakeNode node;
    node.set_valid("s-good");
    node.mode = FakeNode::Mode::hold;
    const ZStackSessions z(options_for(node.url()));
    Verdicts v;
    for (int i = 0; i < 5; ++i) {
        z.check(oauth("s-good"), v.callback());
    }
    z.check(oauth("s-other"), v.callback());
    ASSERT_TRUE(node.wait_requests(2));
    EXPECT_EQ(v.count(), 0U);  // all still waiting for the held replies
    node.release();
    const auto got = v.wait(6);
    int accepted = 0;
    int rejected = 0;
    for (const auto& g : got) {
        accepted += g.kind == Kind::accepted ? 1 : 0;
        rejected += g.kind == Kind::rejected ? 1 : 0;
    }
    EXPECT_EQ(accepted, 5);
    EXPECT_EQ(rejected, 1);
    EXPECT_EQ(node.requests(), 2U);
    EXPECT_EQ(z.stats().coalesced, 4U);
}

TEST(ZStackSessions, AtMostMaxConcurrentValidationsRunAtOnce) {
    FakeNode node;
    node.mode = FakeNode::Mode::hold;
    auto o = options_for(node.url());
    o.max_concurrent = 2;
    const ZStackSessions z(o);
    Verdicts v;
    for (const char* s : {"s1", "s2", "s3", "s4"}) {
        z.check(oauth(s), v.callback());
    }
    ASSERT_TRUE(node.wait_requests(2));
    // The other two wait in the queue: not started, so the node cannot have seen them.
    EXPECT_EQ(z.stats().validations, 2U);
    node.release();
    EXPECT_EQ(v.wait(4).size(), 4U);
    EXPECT_EQ(node.requests(), 4U);
    EXPECT_EQ(z.stats().validations, 4U);
}

TEST(ZStackSessions, FullQueueAnswersUnavailable) {
    FakeNode node;
    node.mode = FakeNode::Mode::hold;
    auto o = options_for(node.url());
    o.max_concurrent = 1;
    o.max_waiting = 1;
    const ZStackSessions z(o);
    Verdicts v;
    z.check(oauth("s1"), v.callback());  // runs
    z.check(oauth("s2"), v.callback());  // queued
    z.check(oauth("s3"), v.callback());  // no room: answered at once
    {
        const auto got = v.wait(1);
        ASSERT_EQ(got.size(), 1U);
        EXPECT_EQ(got[0].kind, Kind::unavailable);
        EXPECT_NE(got[0].details.find("too many sessions waiting for validation (1)"),
                  std::string::npos)
            << got[0].details;
    }
    ASSERT_TRUE(node.wait_requests(1));
    node.release();
    EXPECT_EQ(v.wait(3).size(), 3U);
}

TEST(ZStackSessions, UnreachableNodeIsUnavailableAndNamed) {
    const std::string url = "http://127.0.0.1:" + std::to_string(closed_port());
    const ZStackSessions z(options_for(url));
    const auto v = check_one(z, "s-any");
    EXPECT_EQ(v.kind, Kind::unavailable);
    EXPECT_EQ(v.details, "cannot validate the session with the management node " + url +
                             ": connect: Connection refused");
    // Never cached: the next check tries again (and fails again).
    EXPECT_EQ(check_one(z, "s-any").kind, Kind::unavailable);
    EXPECT_EQ(z.stats().validations, 2U);
    EXPECT_EQ(z.stats().cached, 0U);
}

TEST(ZStackSessions, SilentNodeTimesOut) {
    FakeNode node;
    node.mode = FakeNode::Mode::silent;
    auto o = options_for(node.url());
    o.timeout = 200ms;
    const ZStackSessions z(o);
    const auto start = std::chrono::steady_clock::now();
    const auto v = check_one(z, "s-any");
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(v.kind, Kind::unavailable);
    EXPECT_EQ(v.details, "cannot validate the session with the management node " + node.url() +
                             ": no answer within 200 ms");
    EXPECT_GE(took, 200ms);
    EXPECT_LT(took, 5s);
    EXPECT_EQ(node.requests(), 1U);
}

TEST(ZStackSessions, UnexpectedRepliesAreUnavailableNotCached) {
    FakeNode node;
    node.set_valid("s-good");
    node.status = 503;
    const ZStackSessions z(options_for(node.url()));
    auto v = check_one(z, "s-good");
    EXPECT_EQ(v.kind, Kind::unavailable);
    EXPECT_EQ(v.details, "cannot validate the session with the management node " + node.url() +
                             ": it answered HTTP 503");
    node.status = 200;
    node.set_body(R"({"valid":"yes"})");
    v = check_one(z, "s-good");
    EXPECT_EQ(v.kind, Kind::unavailable);
    EXPECT_NE(v.details.find("unexpected reply"), std::string::npos) << v.details;
    node.set_body("<html>");
    EXPECT_EQ(check_one(z, "s-good").kind, Kind::unavailable);
    node.set_body("");
    EXPECT_EQ(check_one(z, "s-good").kind, Kind::accepted);
    EXPECT_EQ(node.requests(), 4U);
}

TEST(ZStackSessions, SessionIsOnePercentEncodedSegmentUnderTheBasePath) {
    FakeNode node;
    const ZStackSessions z(options_for(node.url() + "/prefix/"));
    EXPECT_EQ(check_one(z, "a/b?c d%").kind, Kind::rejected);
    EXPECT_EQ(node.targets().at(0), "/prefix/zstack/v1/accounts/sessions/a%2Fb%3Fc%20d%25/valid");
}

TEST(ZStackSessions, ImplausibleSessionsAndAccessKeysNeverReachTheNode) {
    FakeNode node;
    const ZStackSessions z(options_for(node.url()));
    EXPECT_EQ(check_one(z, "").kind, Kind::rejected);
    EXPECT_EQ(check_one(z, std::string(257, 'a')).kind, Kind::rejected);
    Credentials ak;
    ak.scheme = Credentials::Scheme::access_key;
    Verdicts v;
    z.check(ak, v.callback());
    EXPECT_EQ(v.wait(1).at(0).kind, Kind::rejected);
    EXPECT_EQ(node.requests(), 0U);
}

TEST(ZStackSessions, RunsOnACallersExecutor) {
    FakeNode node;
    node.set_valid("s-good");
    net::io_context ioc;
    auto guard = net::make_work_guard(ioc);
    std::thread t([&] { ioc.run(); });
    {
        const ZStackSessions z(options_for(node.url()), ioc.get_executor());
        EXPECT_EQ(check_one(z, "s-good").kind, Kind::accepted);
    }
    guard.reset();
    t.join();
    EXPECT_EQ(node.requests(), 1U);
}

TEST(ZStackSessions, DestroyedWhileValidatingStillAnswers) {
    FakeNode node;
    node.set_valid("s-good");
    node.mode = FakeNode::Mode::hold;
    Verdicts v;
    {
        const ZStackSessions z(options_for(node.url()));
        z.check(oauth("s-good"), v.callback());
        ASSERT_TRUE(node.wait_requests(1));
    }
    node.release();
    const auto got = v.wait(1);
    ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(got[0].kind, Kind::accepted);
}

// Through the router: what a client sees when the node is down, and that a rejected session
// still answers ID.1001.
TEST(ZStackSessions, RouterAnswersSys1006WhenTheNodeIsDownAndId1001WhenInvalid) {
    const std::string url = "http://127.0.0.1:" + std::to_string(closed_port());
    auto provider = std::make_shared<test::FakeProvider>(test::sample_snapshot());
    const auto registry = test::sample_registry();
    const auto route = [&](const std::shared_ptr<const Authenticator>& auth) {
        RouterDeps deps;  // field by field: other members have defaults
        deps.snapshots = provider;
        deps.registry = [registry] { return registry; };
        deps.auth = auth;
        Router router(std::move(deps));
        std::mutex m;
        std::condition_variable cv;
        std::optional<Response> out;
        router.handle(test::get("/zstack/v1/vips/vip-1/usedports?protocol=TCP", "OAuth s-1"),
                      [&](Response res) {
                          std::lock_guard lock(m);
                          out = std::move(res);
                          cv.notify_all();
                      });
        std::unique_lock lock(m);
        EXPECT_TRUE(cv.wait_for(lock, 10s, [&] { return out.has_value(); }));
        return out.value_or(Response{});
    };
    auto res = route(std::make_shared<const ZStackSessions>(options_for(url)));
    EXPECT_EQ(res.result_int(), 503U);
    EXPECT_EQ(res.body(),
              R"({"error":{"code":"SYS.1006","description":"An operation failed","details":)"
              R"("cannot validate the session with the management node )" +
                  url + R"(: connect: Connection refused"}})");
    EXPECT_EQ(provider->calls, 0);

    FakeNode node;
    res = route(std::make_shared<const ZStackSessions>(options_for(node.url())));
    EXPECT_EQ(res.result_int(), 503U);
    EXPECT_NE(res.body().view().find("ID.1001"), std::string::npos) << res.body();
    node.set_valid("s-1");
    res = route(std::make_shared<const ZStackSessions>(options_for(node.url())));
    EXPECT_EQ(res.result_int(), 200U);
    EXPECT_EQ(provider->calls, 1);
}

}  // namespace
}  // namespace vipportd::http
