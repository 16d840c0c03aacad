// GET|HEAD /vipportd/v1/vips/{uuid-or-ip}/claims[?protocol=TCP|UDP]: why the VIP's ports are
// used (README "Provenance"). vipportd's own API: errors are ZStack-shaped JSON bodies with a
// meaningful status (400 SYS.1007, 404 SYS.1003, 503 SYS.1006, 500 SYS.1000).

#include <exception>
#include <string>
#include <vector>

#include "agent/claims_report.hpp"
#include "http/api.hpp"
#include "http/claims_json.hpp"
#include "http/java_text.hpp"
#include "http/routes.hpp"
#include "http/zstack.hpp"

namespace vipportd::http {

namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view sys_1007 = "One or more API argument is invalid";  // zstack-api.md §7

}  // namespace

void answer_claims(ApiCall call, Router::Done done) {
    const Reply& reply = call.reply;
    // protocol: TCP or UDP in any case; absent means both.
    std::vector<agent::Protocol> protocols{agent::Protocol::tcp, agent::Protocol::udp};
    if (const auto param = call.params.get("protocol")) {
        const std::string_view text = java_trim(*param);
        const auto p = agent::parse_protocol(text);
        if (!p) {
            // error_body() escapes the client's text.
            std::string details =
                "invalid query parameter[protocol]: expected TCP or UDP (or no protocol "
                "parameter for both), got '" +
                std::string(text) + "'";
            return done(reply.error(bhttp::status::bad_request,
                                    zstack::ApiError{"SYS.1007", sys_1007, std::move(details)}));
        }
        protocols = {*p};
    }

    std::string uuid(java_trim(call.path_params.at(0)));
    const auto registry = call.deps->registry();
    auto vip = registry ? registry->resolve(uuid) : agent::VipRegistry{}.resolve(uuid);
    if (!vip) {
        return done(reply.error(bhttp::status::not_found, zstack::vip_not_found(uuid)));
    }

    const std::vector<std::string> netns{vip->netns};
    call.deps->snapshots->async_fresh_many(
        netns, [reply, vip = std::move(*vip), protocols = std::move(protocols),
                processes = call.deps->processes,
                done = std::move(done)](std::vector<agent::SnapshotPtr> snaps) {
            Response res;
            try {
                const agent::SnapshotPtr snap = snaps.empty() ? nullptr : snaps.front();
                if (!snap) {
                    res = reply.error(bhttp::status::internal_server_error,
                                      zstack::internal_error("no kernel snapshot available"));
                } else if (const auto* failed = snap->failed_required()) {
                    res = reply.error(bhttp::status::service_unavailable,
                                      zstack::source_failed(failed->name, failed->error));
                } else {
                    // The owner lookup may walk /proc here, on the HTTP thread: at most once
                    // per interval (agent/process_index.hpp), a few milliseconds on a router.
                    const auto report =
                        agent::make_claims_report(vip, *snap, protocols, processes.get());
                    res = reply.json(bhttp::status::ok, claims_json(report));
                }
            } catch (const std::exception& e) {
                res =
                    reply.error(bhttp::status::internal_server_error,
                                zstack::internal_error(std::string("internal error: ") + e.what()));
            }
            done(std::move(res));
        });
}

}  // namespace vipportd::http
