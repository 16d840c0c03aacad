#pragma once
// Router: "what to answer". Maps one parsed HTTP request to one response, knows nothing of
// sockets, and never blocks: a kernel snapshot is requested asynchronously from the agent.
//
// Routes (the API's route table is in router.cpp; handlers are declared in http/routes.hpp):
//   GET|HEAD /zstack/v1/vips/{uuid}/usedports?protocol=TCP|UDP   ZStack's APIGetVipUsedPortsMsg
//   GET|HEAD /zstack/v1/vips/usedports?protocol=TCP|UDP          every VIP (zstack_siblings.cpp)
//   GET|HEAD /zstack/v1/vips/{vipUuid}/check-port-availability, .../get-port-availability
//            ZStack's APICheckVipPortAvailabilityMsg, APIGetVipAvailablePortMsg (same file)
//   GET|HEAD /vipportd/v1/vips/{uuid-or-ip}/claims[?protocol=TCP|UDP]  why the ports are used
//            (claims_api.cpp; no protocol: both)
//   GET|HEAD /healthz                                             liveness, "ok", no auth
//   GET|HEAD /readyz, /version, /metrics                          Observability (below); no
//            token when Observability::open, else "Authorization: OAuth|Bearer <token>"
//
// Order of checks for every API route (zstack-api.md §17, vipportd's deliberate order):
//   404 unknown path, 405 other method, 400 Authorization missing / not OAuth, 400 repeated scalar
//   query parameter, 400 X-Job-UUID not 32 bytes, 503 ID.1001 token rejected; then the route's
//   handler. usedports: 503 SYS.1007 protocol missing/invalid, 503 SYS.1003 unknown uuid, 503
//   SYS.1006 failed required source, 200 inventory.
// A '%' escape that is not followed by two hex digits answers 400 (plain text) in the path, and
// in the query string at the point where parameters are collected. "Trimmed" means Java's
// String.trim(): every byte <= 0x20 is removed from both ends.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "agent/process_index.hpp"
#include "agent/snapshot_service.hpp"
#include "agent/vip_catalog.hpp"
#include "agent/vip_registry.hpp"
#include "http/auth.hpp"
#include "http/body_cache.hpp"
#include "http/shared_body.hpp"

namespace vipportd::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<SharedTextBody>;

/// One answered request, for request logs and metrics (Observability::on_response).
struct RequestOutcome {
    std::string_view route;   // fixed name: usedports, healthz, readyz, version, metrics, other
    std::string_view method;  // client-supplied: escape before logging
    std::string_view target;  // client-supplied: escape before logging
    unsigned status = 0;
    std::string_view reason;  // non-200: the body the client got (what was wrong); else empty
    std::chrono::steady_clock::duration latency{};
};

/// The operational endpoints and request observation; every member is optional (an absent
/// provider answers 404 on its route).
struct Observability {
    /// GET /readyz: (ready, JSON body); 200 when ready, else 503.
    std::function<std::pair<bool, std::string>()> readiness;
    /// GET /metrics: the Prometheus text exposition and its Content-Type.
    std::function<std::string()> metrics;
    std::string metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";
    /// GET /version: {"version":...}
    std::string version;
    /// True: the three routes need no token (loopback listeners by default, README
    /// "Observability"); false: a token the Authenticator accepts.
    bool open = true;
    /// Called once per response, on the thread that produced it. Must not throw.
    std::function<void(const RequestOutcome&)> on_response;
};

struct RouterDeps {
    std::shared_ptr<agent::SnapshotProvider> snapshots;
    /// The current registry; called once per request (a reload may swap it). A null result is
    /// treated as an empty registry (literal addresses still resolve).
    std::function<std::shared_ptr<const agent::VipRegistry>()> registry;
    std::shared_ptr<const Authenticator> auth;
    /// Socket inode -> owning process for the claims API (agent/process_index.hpp); null: claims
    /// carry no process fields.
    std::shared_ptr<agent::ProcessLookup> processes{};
    /// Every VIP with its origin, and the registrations (agent/vip_catalog.hpp) for
    /// PUT/DELETE/GET /vipportd/v1/vips; null: those routes answer 503 (registration unavailable).
    std::shared_ptr<agent::VipCatalog> vips{};
};

class Router {
  public:
    using Done = std::function<void(Response)>;

    /// Throws std::invalid_argument when a dependency is missing.
    explicit Router(RouterDeps deps);
    /// With the operational endpoints (/readyz, /version, /metrics) and request observation.
    Router(RouterDeps deps, Observability observability);

    /// Answers req by calling done exactly once: synchronously for everything decided from the
    /// request alone, or later on the snapshot provider's thread when a snapshot is needed
    /// (callers must post back to their own executor). Every response carries the request's
    /// version, "Server: vipportd", Content-Length and the request's keep-alive; a HEAD response
    /// has the headers of the GET response and an empty body. Thread-safe (const, no state).
    void handle(Request req, Done done) const;

  private:
    void observe_endpoint(Request req,
                          std::string_view path,
                          const struct Reply& reply,
                          Done done) const;

    std::shared_ptr<const RouterDeps> deps_;  // shared with the handlers' calls
    Observability observability_;
    std::shared_ptr<BodyCache> bodies_ = std::make_shared<BodyCache>();  // thread-safe
};

/// Plain-text response with the hygiene headers (used by the connection for parser-level errors).
Response plain_response(boost::beast::http::status status,
                        unsigned version,
                        bool keep_alive,
                        std::string body);

}  // namespace vipportd::http
