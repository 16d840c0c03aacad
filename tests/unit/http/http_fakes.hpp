#pragma once
// Shared fakes for the http unit tests: snapshot providers and request builders.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <gtest/gtest.h>
#include <zlib.h>

#include "agent/config.hpp"
#include "agent/model.hpp"
#include "agent/snapshot_service.hpp"
#include "agent/vip_registry.hpp"
#include "http/auth.hpp"
#include "http/router.hpp"

namespace vipportd::http::test {

inline agent::InetAddress ip(std::string_view text) {
    auto a = agent::InetAddress::parse(text);
    if (!a) {
        throw std::invalid_argument("bad test address");
    }
    return *a;
}

inline agent::Claim claim(agent::Protocol p, agent::PortSet ports, agent::AddressScope scope) {
    agent::Claim c;
    c.protocol = p;
    c.ports = std::move(ports);
    c.scope = std::move(scope);
    c.origin = agent::SocketOrigin{};
    return c;
}

/// Answers every request synchronously with the same snapshot and counts the calls.
class FakeProvider final : public agent::SnapshotProvider {
  public:
    explicit FakeProvider(agent::SnapshotPtr s) : snapshot(std::move(s)) {}
    void async_fresh(Callback cb) override {
        ++calls;
        if (throw_next) {
            throw_next = false;
            throw std::runtime_error("provider exploded");
        }
        cb(snapshot);
    }
    agent::SnapshotPtr snapshot;
    int calls = 0;
    bool throw_next = false;
};

/// Keeps callbacks until the test completes them (possibly from another thread).
class DeferredProvider final : public agent::SnapshotProvider {
  public:
    explicit DeferredProvider(agent::SnapshotPtr s) : snapshot(std::move(s)) {}
    void async_fresh(Callback cb) override {
        std::lock_guard lock(mutex);
        pending.push_back(std::move(cb));
        changed.notify_all();
    }
    /// Blocks until n callbacks are pending, then completes them all.
    void complete_when(std::size_t n) {
        std::vector<Callback> now;
        {
            std::unique_lock lock(mutex);
            changed.wait(lock, [&] { return pending.size() >= n; });
            now.swap(pending);
        }
        for (auto& cb : now) {
            cb(snapshot);
        }
    }
    agent::SnapshotPtr snapshot;
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<Callback> pending;
};

/// A TCP/UDP snapshot for VIP 10.0.0.5 (uuid "vip-1") with overlapping claims, port 0, claims of
/// other addresses and a wildcard socket.
/// Serves one snapshot per namespace name ("" = own) and records every async_fresh_many
/// request; a name it does not know fails like an unreadable namespace.
class NetnsProvider final : public agent::SnapshotProvider {
  public:
    void async_fresh(Callback cb) override { cb(by_netns.at("")); }
    void async_fresh_many(std::vector<std::string> netns, ManyCallback cb) override {
        requests.push_back(netns);
        std::vector<agent::SnapshotPtr> out;
        for (const auto& n : netns) {
            const auto it = by_netns.find(n);
            out.push_back(it != by_netns.end()
                              ? it->second
                              : agent::failed_snapshot("netns " + n, "cannot enter namespace"));
        }
        cb(std::move(out));
    }
    std::map<std::string, agent::SnapshotPtr> by_netns;
    std::vector<std::vector<std::string>> requests;
};

/// Rejects every session (ID.1001).
class RejectAll final : public Authenticator {
  public:
    void check(const Credentials& /*credentials*/, Callback done) const override {
        done(AuthVerdict::reject());
    }
};

/// Inflates a gzip member (what the server sent with Content-Encoding: gzip).
inline std::string gunzip(const std::string& in) {
    z_stream z{};
    EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);  // gzip wrapper only
    std::string out(4 << 20, '\0');              // every body in these tests inflates to less
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
    out.resize(z.total_out);
    inflateEnd(&z);
    return out;
}

inline agent::SnapshotPtr sample_snapshot() {
    using agent::AddressScope;
    using agent::PortSet;
    using agent::Protocol;
    auto s = std::make_shared<agent::Snapshot>();
    s->claims.push_back(
        claim(Protocol::tcp, PortSet{{80, 80}, {20, 23}}, AddressScope::exact(ip("10.0.0.5"))));
    s->claims.push_back(
        claim(Protocol::tcp, PortSet{{22, 22}, {0, 0}}, AddressScope::exact(ip("10.0.0.5"))));
    s->claims.push_back(
        claim(Protocol::tcp, PortSet::single(8080), AddressScope::all(agent::Family::v4)));
    s->claims.push_back(
        claim(Protocol::tcp, PortSet::single(443), AddressScope::exact(ip("10.0.0.6"))));
    s->claims.push_back(
        claim(Protocol::udp, PortSet::single(53), AddressScope::exact(ip("10.0.0.5"))));
    s->sources.push_back({"sockets", true, true, "", {}});
    s->sources.push_back({"nftables", true, true, "", {}});
    return s;
}

inline std::shared_ptr<const agent::VipRegistry> sample_registry(
    std::vector<agent::VipEntry> extra = {}) {
    extra.push_back({"vip-1", ip("10.0.0.5")});
    return std::make_shared<const agent::VipRegistry>(extra);
}

inline Request get(std::string target, std::string authorization = "OAuth token-1") {
    Request req{boost::beast::http::verb::get, target, 11};
    if (!authorization.empty()) {
        req.set(boost::beast::http::field::authorization, authorization);
    }
    return req;
}

/// A listener address for a loopback server test (port 0: the kernel picks one).
inline agent::ListenEndpoint endpoint(std::string_view address, std::uint16_t port = 0) {
    return agent::ListenEndpoint{ip(address), port};
}

/// Runs ioc on a thread; join() insists that run() returns on its own within a deadline.
class IoThread {
  public:
    explicit IoThread(boost::asio::io_context& ioc)
        : ioc_(ioc), done_(std::async(std::launch::async, [&ioc] { ioc.run(); })) {}
    ~IoThread() {
        if (done_.valid()) {
            ioc_.stop();
            done_.wait();
        }
    }
    IoThread(const IoThread&) = delete;
    IoThread& operator=(const IoThread&) = delete;
    bool join(std::chrono::seconds limit = std::chrono::seconds(10)) {
        const bool returned = done_.wait_for(limit) == std::future_status::ready;
        if (!returned) {
            ioc_.stop();
        }
        done_.get();
        return returned;
    }

  private:
    boost::asio::io_context& ioc_;
    std::future<void> done_;
};

}  // namespace vipportd::http::test
