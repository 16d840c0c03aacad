#include "http/router.hpp"

#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include "http/gzip.hpp"
#include "http/java_text.hpp"
#include "http/zstack.hpp"

namespace vipportd::http {

namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view server_name = "vipportd";
constexpr std::string_view text_plain = "text/plain; charset=utf-8";
constexpr std::string_view application_json = "application/json; charset=utf-8";

// RestConstants: the servlet context "/zstack" is stripped, the API paths live under /v1.
constexpr std::string_view context_path = "/zstack";
constexpr std::string_view usedports_prefix = "/zstack/v1/vips/";
constexpr std::string_view usedports_suffix = "/usedports";
constexpr std::string_view healthz_path = "/healthz";
constexpr std::string_view readyz_path = "/readyz";
constexpr std::string_view version_path = "/version";
constexpr std::string_view metrics_path = "/metrics";

// The fixed route names of RequestOutcome (metrics labels must not carry client text).
std::string_view route_of(std::string_view target) {
    const auto q = target.find('?');
    const std::string_view p = target.substr(0, q);
    if (p == healthz_path || p == readyz_path || p == version_path || p == metrics_path) {
        return p.substr(1);
    }
    if (p.starts_with(usedports_prefix) && p.ends_with(usedports_suffix)) {
        return "usedports";
    }
    return "other";
}

// Escapes a string for a JSON string literal (RFC 8259 §7).
std::string json_quote(std::string_view s) {
    std::string out = "\"";
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c < 0x20) {
            constexpr std::string_view hex = "0123456789abcdef";
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 0xf];
        } else {
            out += ch;
        }
    }
    out += '"';
    return out;
}

// RFC 3986 §2.1 percent-decoding; '+' means space only in the query (HTML form encoding).
// nullopt when a '%' is not followed by two hex digits.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (c == '%') {
            if (i + 2 >= s.size()) {
                return std::nullopt;
            }
            const int hi = hex_digit(s[i + 1]);
            const int lo = hex_digit(s[i + 2]);
            if (hi < 0 || lo < 0) {
                return std::nullopt;
            }
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out += ' ';
        } else {
            out += c;
        }
    }
    return out;
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

// What a response needs from its request.
struct Reply {
    unsigned version = 11;
    bool keep_alive = true;
    bool head = false;

    [[nodiscard]] Response make(bhttp::status status,
                                std::string_view content_type,
                                std::string body) const {
        Response res{status, version};
        res.set(bhttp::field::server, server_name);
        res.set(bhttp::field::content_type, content_type);
        res.body() = std::move(body);
        res.keep_alive(keep_alive);
        res.prepare_payload();
        if (head) {
            res.body().clear();  // Content-Length stays that of the GET body (RFC 9110 §9.3.2)
        }
        return res;
    }
    [[nodiscard]] Response text(bhttp::status status, std::string body) const {
        return make(status, text_plain, std::move(body));
    }
    [[nodiscard]] Response error(const zstack::ApiError& e) const {
        return make(bhttp::status::service_unavailable, application_json, zstack::error_body(e));
    }
};

struct QueryParams {
    std::optional<std::string> protocol;
    std::optional<std::string> uuid;
    std::optional<std::string> repeated;  // first scalar seen twice
    bool bad_escape = false;
};

// Collects the message's scalar fields (APIGetVipUsedPortsMsg: protocol, uuid). systemTags and
// userTags (repeated or indexed "systemTags.0") and unknown names are ignored (§2.2). Names are
// case-sensitive.
QueryParams parse_query(std::string_view query) {
    QueryParams out;
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
        std::optional<std::string>* slot = nullptr;
        if (*name == "protocol") {
            slot = &out.protocol;
        } else if (*name == "uuid") {
            slot = &out.uuid;
        } else {
            continue;
        }
        if (slot->has_value()) {
            out.repeated = std::move(*name);
            return out;
        }
        *slot = std::move(*value);
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

// Steps 7-10 of a usedports request whose session was accepted (see Router::handle). done is
// taken by value: the caller keeps its own to answer if this throws.
void answer_usedports(
    const QueryParams& params,
    std::string_view raw_uuid,
    bool with_schema,
    bool gzip_ok,
    const Reply& reply,
    const std::shared_ptr<agent::SnapshotProvider>& snapshots,
    const std::function<std::shared_ptr<const agent::VipRegistry>()>& current_registry,
    std::shared_ptr<BodyCache> bodies,
    Router::Done done) {
    // 7. protocol: any case accepted, answered in upper case (§17).
    if (!params.protocol) {
        return done(reply.error(zstack::protocol_missing()));
    }
    const std::string_view protocol_text = java_trim(*params.protocol);
    const auto protocol = agent::parse_protocol(protocol_text);
    if (!protocol) {
        return done(reply.error(zstack::protocol_invalid(protocol_text)));
    }

    // 8. uuid: the path variable wins over a uuid query parameter (§2.1).
    std::string uuid(java_trim(raw_uuid));
    const auto registry = current_registry();
    const auto vip = registry ? registry->resolve(uuid) : agent::VipRegistry{}.resolve(uuid);
    if (!vip) {
        return done(reply.error(zstack::vip_not_found(uuid)));
    }

    // 9./10. A snapshot taken after this request arrived; the callback runs on the provider's
    // thread and must not throw into it.
    snapshots->async_fresh([reply, uuid = std::move(uuid), ip = vip->ip, proto = *protocol,
                            with_schema, gzip_ok, bodies,
                            done = std::move(done)](agent::SnapshotPtr snap) {
        Response res;
        try {
            if (!snap) {
                res = reply.error(zstack::internal_error("no kernel snapshot available"));
            } else if (const auto* failed = snap->failed_required()) {
                res = reply.error(zstack::source_failed(failed->name, failed->error));
            } else {
                const agent::PortSet ports = snap->used_ports(ip, proto);
                // uuid NUL protocol NUL schema-flag: the uuid is client text and may hold any
                // other byte. (A "\0s" literal would append nothing: it ends at its NUL.)
                std::string key = uuid;
                key += '\0';
                key += agent::to_string(proto);
                key += '\0';
                key += with_schema ? 's' : '-';
                const auto render = [&] {
                    return zstack::used_ports_body(uuid, proto, ports, with_schema);
                };
                BodyCache::Body body = bodies->get(key, ports, false, render);
                const bool gzip = gzip_ok && body->size() >= kGzipMinBytes;
                if (gzip) {
                    body = bodies->get(key, ports, true, render);
                }
                res = reply.make(bhttp::status::ok, application_json, *body);
                if (gzip) {
                    res.set(bhttp::field::content_encoding, "gzip");
                }
                // Caches must key on Accept-Encoding whether or not this answer was compressed
                // (RFC 9110 §12.5.5).
                res.set(bhttp::field::vary, "Accept-Encoding");
            }
        } catch (const std::exception& e) {
            res = reply.text(bhttp::status::internal_server_error,
                             std::string("internal error: ") + e.what());
        }
        done(std::move(res));
    });
}

}  // namespace

Response plain_response(bhttp::status status, unsigned version, bool keep_alive, std::string body) {
    return Reply{version, keep_alive, false}.text(status, std::move(body));
}

Router::Router(RouterDeps deps) : deps_(std::move(deps)) {
    if (!deps_.snapshots || !deps_.registry || !deps_.auth) {
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
            o.reason = status == 200 ? std::string_view{} : std::string_view(res.body());
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
    const auto method_not_allowed = [&] {
        auto res = reply.text(
            bhttp::status::method_not_allowed,
            "method " + std::string(req.method_string()) + " not allowed, use GET or HEAD");
        res.set(bhttp::field::allow, "GET, HEAD");
        return res;
    };
    if (*path == healthz_path) {
        return done(get_or_head ? reply.text(bhttp::status::ok, "ok") : method_not_allowed());
    }
    if (*path == readyz_path || *path == version_path || *path == metrics_path) {
        const Observability& obs = observability_;
        const bool provided = (*path == readyz_path && obs.readiness) ||
                              (*path == version_path && !obs.version.empty()) ||
                              (*path == metrics_path && obs.metrics);
        if (!provided) {
            return done(reply.text(bhttp::status::not_found, "not found"));
        }
        if (!get_or_head) {
            return done(method_not_allowed());
        }
        // The answer itself, once access is settled; obs outlives the router's callbacks.
        auto answer = [&obs, reply, route = std::string(*path)]() {
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
        for (const std::string_view scheme :
             {std::string_view("OAuth"), std::string_view("Bearer")}) {
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
        return deps_.auth->check(credentials, [answer = std::move(answer), unauthorized, reply,
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
    const std::string_view p = *path;
    const bool usedports = p.size() > usedports_prefix.size() + usedports_suffix.size() &&
                           p.starts_with(usedports_prefix) && p.ends_with(usedports_suffix);
    const std::string_view raw_uuid =
        usedports ? p.substr(usedports_prefix.size(),
                             p.size() - usedports_prefix.size() - usedports_suffix.size())
                  : std::string_view{};
    if (!usedports || raw_uuid.find('/') != std::string_view::npos) {
        return done(reply.text(bhttp::status::not_found, zstack::no_api_mapping(strip_context(p))));
    }

    // 2. Method (vipportd: plain HTTP semantics, §17).
    if (!get_or_head) {
        return done(method_not_allowed());
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
    QueryParams params = parse_query(target.query);
    if (params.bad_escape) {
        return done(
            reply.text(bhttp::status::bad_request, "invalid percent-encoding in query string"));
    }
    if (params.repeated) {
        return done(
            reply.text(bhttp::status::bad_request, zstack::repeated_parameter(*params.repeated)));
    }

    // 5. Headers. The length is counted in bytes (ZStack counts UTF-16 units; equal for ASCII).
    if (const auto job = req.find("X-Job-UUID"); job != req.end() && job->value().size() != 32) {
        return done(reply.text(bhttp::status::bad_request, std::string(zstack::invalid_job_uuid)));
    }

    // 6. Session, before any parameter is validated: an unauthenticated caller must not learn
    // which VIP uuids exist (§17). The authenticator may answer later on its own thread (mode
    // zstack asks the management node); steps 7-10 then run there.
    struct InlineCall {
        std::atomic<bool> inside{true};
        std::thread::id caller = std::this_thread::get_id();
    };
    auto inline_call = std::make_shared<InlineCall>();
    const bool with_schema = req.find("X-JSON-Schema") != req.end();
    const auto accept_encoding = req.find(bhttp::field::accept_encoding);
    const bool gzip_ok = accept_encoding != req.end() && accepts_gzip(accept_encoding->value());
    deps_.auth->check(credentials, [inline_call, reply, params = std::move(params),
                                    raw_uuid = std::string(raw_uuid), with_schema, gzip_ok,
                                    snapshots = deps_.snapshots, registry = deps_.registry,
                                    bodies = bodies_,
                                    done = std::move(done)](const AuthVerdict& verdict) {
        if (verdict.kind == AuthVerdict::Kind::rejected) {
            return done(reply.error(zstack::session_expired()));
        }
        if (verdict.kind == AuthVerdict::Kind::unavailable) {
            // SYS.1006 OPERATION_ERROR (zstack-api.md §7); never fail open.
            return done(
                reply.error(zstack::ApiError{"SYS.1006", "An operation failed", verdict.details}));
        }
        try {
            answer_usedports(params, raw_uuid, with_schema, gzip_ok, reply, snapshots, registry,
                             bodies, done);
        } catch (const std::exception& e) {
            // Called inline from handle(): let the caller's handler boundary see it, as before.
            // Called later from the authenticator's thread: nobody else would answer.
            if (inline_call->inside && std::this_thread::get_id() == inline_call->caller) {
                throw;
            }
            done(reply.text(bhttp::status::internal_server_error,
                            std::string("internal error: ") + e.what()));
        }
    });
    inline_call->inside = false;
}

}  // namespace vipportd::http
