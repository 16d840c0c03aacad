#pragma once
// Shared fakes for the http unit tests: snapshot providers and request builders.

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

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

}  // namespace vipportd::http::test
