#include "http/router.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include "http/api.hpp"
#include "http/gzip.hpp"
#include "http/java_text.hpp"
#include "http/routes.hpp"
#include "http/zstack.hpp"

namespace vipportd::http {

namespace bhttp = boost::beast::http;

namespace {

// RestConstants: the servlet context "/zstack" is stripped, the API paths live under /v1.
constexpr std::string_view context_path = "/zstack";
constexpr std::string_view healthz_path = "/healthz";
constexpr std::string_view readyz_path = "/readyz";
constexpr std::string_view version_path = "/version";
constexpr std::string_view metrics_path = "/metrics";

// Methods a route answers; GET implies HEAD (RFC 9110 §9.3.2).
enum Methods : unsigned { kGet = 1U, kPut = 2U, kDelete = 4U };

struct Route {
    std::string_view name;     // fixed label for logs and metrics (never client text)
    std::string_view pattern;  // "/zstack/v1/vips/{}/usedports": "{}" is one non-empty segment
    unsigned methods;
    // The scalar query parameters of the API message, space-separated; a repeated one is the
    // REST layer's plain-text 400 (zstack-api.md §5.2). Others are ignored.
    std::string_view params;
    Handler handler;
};

// The API. Observability routes (/healthz, /readyz, /version, /metrics) are answered before this
// table: they have their own access rule.
constexpr Route kRoutes[] = {
    {"usedports", "/zstack/v1/vips/{}/usedports", kGet, "protocol uuid", answer_usedports},
    {"claims", "/vipportd/v1/vips/{}/claims", kGet, "protocol", answer_claims},
    // ZStack's siblings (zstack_siblings.cpp). The scalar fields of APICheckVipPortAvailabilityMsg
    // and APIGetVipAvailablePortMsg, including APIGetMessage's start and limit.
    {"usedports_batch", "/zstack/v1/vips/usedports", kGet, "protocol", answer_usedports_batch},
    {"check_port_availability", "/zstack/v1/vips/{}/check-port-availability", kGet,
     "vipUuid port protocolType start limit", answer_check_port_availability},
    {"get_port_availability", "/zstack/v1/vips/{}/get-port-availability", kGet,
     "vipUuid protocolType start limit", answer_get_port_availability},
    // VIP registration (vips_api.cpp); one name per path for the metrics label.
    {"vips", "/vipportd/v1/vips", kGet, "", answer_vips_list},
    {"vip", "/vipportd/v1/vips/{}", kGet, "", answer_vip_get},
    {"vip", "/vipportd/v1/vips/{}", kPut, "", answer_vip_put},
    {"vip", "/vipportd/v1/vips/{}", kDelete, "", answer_vip_delete},
};

// Splits "/a/b/c" into its segments; captures the "{}" segments of pattern. False when the path
// does not have the pattern's shape.
bool match(std::string_view pattern, std::string_view path, std::vector<std::string>* captures) {
    if (captures != nullptr) {
        captures->clear();
    }
    for (;;) {
        if (pattern.empty() || path.empty()) {
            return pattern.empty() && path.empty();
        }
        if (pattern.front() != '/' || path.front() != '/') {
            return false;
        }
        pattern.remove_prefix(1);
        path.remove_prefix(1);
        const auto pe = std::min(pattern.find('/'), pattern.size());
        const auto se = std::min(path.find('/'), path.size());
        const std::string_view want = pattern.substr(0, pe);
        const std::string_view got = path.substr(0, se);
        if (want == "{}") {
            if (got.empty()) {
                return false;
            }
            if (captures != nullptr) {
                captures->emplace_back(got);
            }
        } else if (want != got) {
            return false;
        }
        pattern.remove_prefix(pe);
        path.remove_prefix(se);
    }
}

bool allows(unsigned methods, bhttp::verb v) {
    switch (v) {
        case bhttp::verb::get:
        case bhttp::verb::head:
            return (methods & kGet) != 0;
        case bhttp::verb::put:
            return (methods & kPut) != 0;
        case bhttp::verb::delete_:
            return (methods & kDelete) != 0;
        default:
            return false;
    }
}

std::string allow_header(unsigned methods) {
    std::string out;
    const auto add = [&out](std::string_view m) {
        out += out.empty() ? "" : ", ";
        out += m;
    };
    if ((methods & kGet) != 0) {
        add("GET");
        add("HEAD");
    }
    if ((methods & kPut) != 0) {
        add("PUT");
    }
    if ((methods & kDelete) != 0) {
        add("DELETE");
    }
    return out;
}

// The fixed route names of RequestOutcome (metrics labels must not carry client text).
std::string_view route_of(std::string_view target) {
    const std::string_view p = target.substr(0, target.find('?'));
    if (p == healthz_path || p == readyz_path || p == version_path || p == metrics_path) {
        return p.substr(1);
    }
    const auto decoded = percent_decode(p, false);
    for (const Route& r : kRoutes) {
        if (decoded && match(r.pattern, *decoded, nullptr)) {
            return r.name;
        }
    }
    return "other";
}

struct Target {
    std::string_view path;
    std::string_view query;
};

// Splits an origin-form target ("/p?q"); an absolute-form target ("http://host/p?q", which
// RFC 9112 §3.2.2 says servers must accept) loses its scheme and authority first.
Target split_target(std::string_view target) {
    if (const auto hash = target.find('#'); hash != std::string_view::npos) {
        target = target.substr(0, hash);  // never sent by conforming clients; never meaningful
    }
    if (!target.empty() && target.front() != '/') {
        if (const auto scheme = target.find("://"); scheme != std::string_view::npos) {
            const auto rest = target.substr(scheme + 3);
            const auto slash = rest.find_first_of("/?");
            target = slash == std::string_view::npos ? std::string_view{"/"} : rest.substr(slash);
        }
    }
    const auto q = target.find('?');
    if (q == std::string_view::npos) {
        return {target, {}};
    }
    return {target.substr(0, q), target.substr(q + 1)};
}

bool declared(std::string_view names, std::string_view name) {
    while (!names.empty()) {
        const auto sp = std::min(names.find(' '), names.size());
        if (names.substr(0, sp) == name) {
            return true;
        }
        names.remove_prefix(std::min(sp + 1, names.size()));
    }
    return false;
}

struct Collected {
    QueryParams params;
    std::optional<std::string> repeated;  // first declared scalar seen twice
    bool bad_escape = false;
};

// Collects the message's declared scalar fields. systemTags and userTags (repeated or indexed
// "systemTags.0") and unknown names are ignored (§2.2). Names are case-sensitive.
Collected parse_query(std::string_view query, std::string_view declared_names) {
    Collected out;
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view item = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (item.empty()) {
            continue;
        }
        const auto eq = item.find('=');
        auto name = percent_decode(item.substr(0, eq), true);
        auto value = percent_decode(
            eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1), true);
        if (!name || !value) {
            out.bad_escape = true;
            return out;
        }
        if (!declared(declared_names, *name)) {
            continue;
        }
        if (out.params.get(*name)) {
            out.repeated = std::move(*name);
            return out;
        }
        out.params.set(std::move(*name), std::move(*value));
    }
    return out;
}

// "/zstack/v1/x" -> "/v1/x" (RestServer.getDecodedUrl strips the context path).
std::string_view strip_context(std::string_view path) {
    if (path == context_path) {
        return "/";
    }
    if (path.size() > context_path.size() && path.starts_with(context_path) &&
        path[context_path.size()] == '/') {
        return path.substr(context_path.size());
    }
    return path;
}

}  // namespace

// Steps 7-10 of a usedports request whose session was accepted (see Router::handle).
void answer_usedports(ApiCall call, Router::Done done) {
    // 7. protocol: any case accepted, answered in upper case (§17).
    std::optional<Response> invalid;
    const auto protocol = protocol_param(call, invalid);
    if (!protocol) {
        return done(std::move(*invalid));
    }

    // 8. uuid: the path variable wins over a uuid query parameter (§2.1).
    std::string uuid(java_trim(call.path_params.at(0)));
    const auto registry = call.deps->registry();
    const auto vip = registry ? registry->resolve(uuid) : agent::VipRegistry{}.resolve(uuid);
    if (!vip) {
        return done(call.reply.error(zstack::vip_not_found(uuid)));
    }

    // 9./10. A snapshot taken after this request arrived; the callback runs on the provider's
    // thread and must not throw into it.
    const auto snapshots = call.deps->snapshots;
    snapshots->async_fresh_many(
        {vip->netns},
        [call = std::move(call), uuid = std::move(uuid), ip = vip->ip, proto = *protocol,
         done = std::move(done)](std::vector<agent::SnapshotPtr> snaps) {
            Response res;
            try {
                std::optional<Response> error;
                const agent::SnapshotPtr snap =
                    usable(snaps.empty() ? nullptr : snaps.front(), call.reply, error);
                if (!snap) {
                    res = std::move(*error);
                } else {
                    const agent::PortSet ports = snap->used_ports_remembered(ip, proto);
                    // uuid NUL protocol NUL schema-flag: the uuid is client text and may hold
                    // any other byte. (A "\0s" literal would append nothing: it ends at its NUL.)
                    std::string key = uuid;
                    key += '\0';
                    key += agent::to_string(proto);
                    key += '\0';
                    key += call.with_schema ? 's' : '-';
                    res = cached_json(call, key, ports, [&] {
                        return zstack::used_ports_body(uuid, proto, ports, call.with_schema);
                    });
                }
            } catch (const std::exception& e) {
                res = call.reply.text(bhttp::status::internal_server_error,
                                      std::string("internal error: ") + e.what());
            }
            done(std::move(res));
        });
}

Response plain_response(bhttp::status status, unsigned version, bool keep_alive, std::string body) {
    return Reply{version, keep_alive, false}.text(status, std::move(body));
}

Router::Router(RouterDeps deps) : deps_(std::make_shared<const RouterDeps>(std::move(deps))) {
    if (!deps_->snapshots || !deps_->registry || !deps_->auth) {
        throw std::invalid_argument("http::Router: snapshots, registry and auth are required");
    }
}

Router::Router(RouterDeps deps, Observability observability) : Router(std::move(deps)) {
    observability_ = std::move(observability);
}

void Router::handle(Request req, Done done) const {
    if (observability_.on_response) {
        // Observe every answer exactly once, whichever path produced it.
        done = [observe = observability_.on_response, start = std::chrono::steady_clock::now(),
                method = std::string(req.method_string()), target = std::string(req.target()),
                done = std::move(done)](Response res) {
            const auto status = static_cast<unsigned>(res.result_int());
            RequestOutcome o;
            o.route = route_of(target);
            o.method = method;
            o.target = target;
            o.status = status;
            // HEAD answers carry no body; the reason is then unknown.
            o.reason = status == 200 ? std::string_view{} : res.body().view();
            o.latency = std::chrono::steady_clock::now() - start;
            observe(o);
            done(std::move(res));
        };
    }
    const Reply reply{req.version(), req.keep_alive(), req.method() == bhttp::verb::head};
    const bool get_or_head = req.method() == bhttp::verb::get || reply.head;

    const Target target = split_target(req.target());
    const auto path = percent_decode(target.path, false);
    if (!path) {
        return done(
            reply.text(bhttp::status::bad_request, "invalid percent-encoding in request path"));
    }

    // 1. Path lookup, before anything else (RestServer).
    const auto method_not_allowed = [&](unsigned methods) {
        const std::string allow = allow_header(methods);
        // "GET, HEAD, PUT" reads "GET, HEAD or PUT" in the message.
        std::string choices = allow;
        if (const auto comma = choices.rfind(", "); comma != std::string::npos) {
            choices.replace(comma, 2, " or ");
        }
        auto res = reply.text(
            bhttp::status::method_not_allowed,
            "method " + std::string(req.method_string()) + " not allowed, use " + choices);
        res.set(bhttp::field::allow, allow);
        return res;
    };
    if (*path == healthz_path) {
        return done(get_or_head ? reply.text(bhttp::status::ok, "ok") : method_not_allowed(kGet));
    }
    if (*path == readyz_path || *path == version_path || *path == metrics_path) {
        return observe_endpoint(std::move(req), *path, reply, std::move(done));
    }
    const std::string_view p = *path;
    const Route* route = nullptr;
    unsigned path_methods = 0;  // every method some route answers on this path
    std::vector<std::string> captures;
    for (const Route& r : kRoutes) {
        std::vector<std::string> c;
        if (!match(r.pattern, p, &c)) {
            continue;
        }
        path_methods |= r.methods;
        if (route == nullptr && allows(r.methods, req.method())) {
            route = &r;
            captures = std::move(c);
        }
    }
    if (path_methods == 0) {
        return done(reply.text(bhttp::status::not_found, zstack::no_api_mapping(strip_context(p))));
    }

    // 2. Method (vipportd: plain HTTP semantics, §17).
    if (route == nullptr) {
        return done(method_not_allowed(path_methods));
    }

    // 3. Authorization format: "OAuth <session>", or the AccessKey scheme "ZStack id:sig" with
    // its Date checks (RestServer.handleApi; plain-text 400/403 from parse_access_key).
    const auto auth_it = req.find(bhttp::field::authorization);
    if (auth_it == req.end()) {
        return done(
            reply.text(bhttp::status::bad_request, std::string(zstack::missing_authorization)));
    }
    const std::string_view auth = java_trim(auth_it->value());
    constexpr std::string_view oauth = "OAuth";
    constexpr std::string_view access_key = "ZStack";
    Credentials credentials;
    if (auth.starts_with(oauth)) {
        credentials.session = std::string(java_trim(auth.substr(oauth.size())));
    } else if (auth.starts_with(access_key)) {
        const auto date_it = req.find(bhttp::field::date);
        auto parsed = parse_access_key(
            auth,
            date_it == req.end() ? std::nullopt : std::optional<std::string_view>(date_it->value()),
            req.method_string(), strip_context(p), std::chrono::system_clock::now());
        if (const auto* rejected = std::get_if<PlainRejection>(&parsed)) {
            return done(reply.text(rejected->status, std::string(rejected->body)));
        }
        credentials.scheme = Credentials::Scheme::access_key;
        credentials.access_key = std::move(std::get<AccessKeyRequest>(parsed));
    } else {
        return done(
            reply.text(bhttp::status::bad_request, std::string(zstack::authorization_not_oauth)));
    }

    // 4. Query parameters.
    Collected query = parse_query(target.query, route->params);
    if (query.bad_escape) {
        return done(
            reply.text(bhttp::status::bad_request, "invalid percent-encoding in query string"));
    }
    if (query.repeated) {
        return done(
            reply.text(bhttp::status::bad_request, zstack::repeated_parameter(*query.repeated)));
    }

    // 5. Headers. The length is counted in bytes (ZStack counts UTF-16 units; equal for ASCII).
    if (const auto job = req.find("X-Job-UUID"); job != req.end() && job->value().size() != 32) {
        return done(reply.text(bhttp::status::bad_request, std::string(zstack::invalid_job_uuid)));
    }

    // 6. Session, before any parameter is validated: an unauthenticated caller must not learn
    // which VIP uuids exist (§17). The authenticator may answer later on its own thread (mode
    // zstack asks the management node); the handler then runs there.
    struct InlineCall {
        std::atomic<bool> inside{true};
        std::thread::id caller = std::this_thread::get_id();
    };
    auto inline_call = std::make_shared<InlineCall>();
    ApiCall call;
    call.reply = reply;
    call.path_params = std::move(captures);
    call.params = std::move(query.params);
    call.body = std::move(req.body());
    call.with_schema = req.find("X-JSON-Schema") != req.end();
    const auto accept_encoding = req.find(bhttp::field::accept_encoding);
    call.gzip_ok = accept_encoding != req.end() && accepts_gzip(accept_encoding->value());
    call.deps = deps_;
    call.bodies = bodies_;
    deps_->auth->check(credentials, [inline_call, handler = route->handler, call = std::move(call),
                                     done = std::move(done)](const AuthVerdict& verdict) {
        const Reply& r = call.reply;
        if (verdict.kind == AuthVerdict::Kind::rejected) {
            return done(r.error(zstack::session_expired()));
        }
        if (verdict.kind == AuthVerdict::Kind::unavailable) {
            // SYS.1006 OPERATION_ERROR (zstack-api.md §7); never fail open.
            return done(
                r.error(zstack::ApiError{"SYS.1006", "An operation failed", verdict.details}));
        }
        try {
            handler(call, done);
        } catch (const std::exception& e) {
            // Called inline from handle(): let the caller's handler boundary see it, as before.
            // Called later from the authenticator's thread: nobody else would answer.
            if (inline_call->inside && std::this_thread::get_id() == inline_call->caller) {
                throw;
            }
            done(r.text(bhttp::status::internal_server_error,
                        std::string("internal error: ") + e.what()));
        }
    });
    inline_call->inside = false;
}

void Router::observe_endpoint(Request req,
                              std::string_view path,
                              const Reply& reply,
                              Done done) const {
    const Observability& obs = observability_;
    const bool provided = (path == readyz_path && obs.readiness) ||
                          (path == version_path && !obs.version.empty()) ||
                          (path == metrics_path && obs.metrics);
    if (!provided) {
        return done(reply.text(bhttp::status::not_found, "not found"));
    }
    if (req.method() != bhttp::verb::get && !reply.head) {
        auto res = reply.text(
            bhttp::status::method_not_allowed,
            "method " + std::string(req.method_string()) + " not allowed, use GET or HEAD");
        res.set(bhttp::field::allow, "GET, HEAD");
        return done(std::move(res));
    }
    // The answer itself, once access is settled; obs outlives the router's callbacks.
    auto answer = [&obs, reply, route = std::string(path)]() {
        if (route == version_path) {
            return reply.make(
                bhttp::status::ok, application_json,
                "{\"name\":\"vipportd\",\"version\":" + json_quote(obs.version) + "}");
        }
        if (route == metrics_path) {
            return reply.make(bhttp::status::ok, obs.metrics_content_type, obs.metrics());
        }
        auto [ready, body] = obs.readiness();
        return reply.make(ready ? bhttp::status::ok : bhttp::status::service_unavailable,
                          application_json, std::move(body));
    };
    if (obs.open) {
        return done(answer());
    }
    // Off loopback these follow [auth]: a Prometheus scraper sends "Bearer", ZStack tooling
    // "OAuth"; both carry the same session token.
    const auto it = req.find(bhttp::field::authorization);
    const std::string_view value =
        java_trim(it == req.end() ? std::string_view{} : std::string_view(it->value()));
    std::optional<std::string_view> token;
    for (const std::string_view scheme : {std::string_view("OAuth"), std::string_view("Bearer")}) {
        if (value.starts_with(scheme) &&
            (value.size() == scheme.size() ||
             static_cast<unsigned char>(value[scheme.size()]) <= 0x20)) {
            token = java_trim(value.substr(scheme.size()));
        }
    }
    auto unauthorized = [reply] {
        auto res = reply.text(bhttp::status::unauthorized,
                              "a valid token is required (Authorization: Bearer <token>)");
        res.set(bhttp::field::www_authenticate, "Bearer");
        return res;
    };
    if (!token) {
        return done(unauthorized());
    }
    Credentials credentials;
    credentials.scheme = Credentials::Scheme::oauth;
    credentials.session = std::string(*token);
    deps_->auth->check(credentials, [answer = std::move(answer), unauthorized, reply,
                                     done = std::move(done)](const AuthVerdict& verdict) {
        if (verdict.kind == AuthVerdict::Kind::accepted) {
            return done(answer());
        }
        if (verdict.kind == AuthVerdict::Kind::unavailable) {
            return done(reply.text(bhttp::status::service_unavailable,
                                   "token validation unavailable: " + verdict.details));
        }
        done(unauthorized());
    });
}

}  // namespace vipportd::http
