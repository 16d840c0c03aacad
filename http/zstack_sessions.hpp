#pragma once
// auth mode "zstack": each OAuth session is validated by the management node with
//   GET {url}/zstack/v1/accounts/sessions/{session}/valid   ->   {"valid":true|false}
// (APIValidateSessionMsg; needs no session itself), using Beast as the HTTP client.
//
// - Answers are cached: "valid" for valid_ttl, "invalid" for invalid_ttl (0 disables either).
//   A cached "valid" means a logout is noticed up to valid_ttl late; ZStack sessions live 7200 s
//   by default (zstack-api.md §8.3).
// - Requests for a session already being validated wait for that validation (coalescing); at
//   most max_concurrent validations run at once, further sessions wait in a bounded FIFO.
// - Every validation has a deadline (resolve + connect + write + read). A node that cannot be
//   reached, times out or answers anything but 200 {"valid":bool} yields
//   AuthVerdict::unavailable naming the node (503 SYS.1006): never fail open, never cached.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "agent/config.hpp"
#include "http/auth.hpp"

namespace vipportd::http {

struct ZStackSessionsOptions {
    std::string node_url;  // as configured, for messages
    agent::HttpUrl node;   // parsed node_url
    std::chrono::seconds valid_ttl{60};
    std::chrono::seconds invalid_ttl{10};
    std::chrono::milliseconds timeout{3000};
    unsigned max_concurrent = 4;
    std::size_t max_waiting = 1024;  // sessions queued behind max_concurrent validations
    std::size_t max_cached = 4096;   // cache entries (valid and invalid together)

    /// From an [auth] section in mode zstack. Throws std::invalid_argument for a bad URL.
    static ZStackSessionsOptions from(const agent::AuthConfig& config);
};

class ZStackSessions final : public Authenticator {
  public:
    /// Runs the HTTP client on executor, which must outlive every pending check.
    ZStackSessions(ZStackSessionsOptions options, boost::asio::any_io_executor executor);
    /// Runs the HTTP client on a private I/O thread. Destroying the object lets validations in
    /// flight finish (each within options.timeout) on that thread, which then exits on its own.
    explicit ZStackSessions(ZStackSessionsOptions options);
    ~ZStackSessions() override;
    ZStackSessions(const ZStackSessions&) = delete;
    ZStackSessions& operator=(const ZStackSessions&) = delete;

    /// OAuth: cached verdict, or a validation by the node. AccessKey: rejected (WithAccessKeys
    /// handles that scheme). An empty session or one longer than 256 bytes is rejected without
    /// asking the node (ZStack session ids are 32 hex digits).
    void check(const Credentials& credentials, Callback done) const override;

    struct Stats {
        std::uint64_t validations = 0;  // HTTP requests started towards the node
        std::uint64_t cache_hits = 0;
        std::uint64_t coalesced = 0;  // checks that waited for a validation already under way
        std::size_t cached = 0;       // entries in the cache now
    };
    [[nodiscard]] Stats stats() const;

  private:
    struct State;
    struct IoThread;
    std::unique_ptr<IoThread> io_;  // null when running on a caller's executor
    std::shared_ptr<State> state_;
};

}  // namespace vipportd::http
