#pragma once
// What every API handler needs, once the router has settled the request's route, method,
// Authorization format, query collection, headers and session (http/router.hpp lists the order).
// Internal to http/: handlers are plain functions declared in http/routes.hpp and listed in the
// route table in router.cpp.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/status.hpp>

#include "http/router.hpp"
#include "http/zstack.hpp"

namespace vipportd::http {

inline constexpr std::string_view text_plain = "text/plain; charset=utf-8";
inline constexpr std::string_view application_json = "application/json; charset=utf-8";

/// What a response needs from its request: every response carries the request's version,
/// "Server: vipportd", Content-Length and keep-alive; a HEAD response keeps the GET body's
/// Content-Length and sends no body (RFC 9110 §9.3.2).
struct Reply {
    unsigned version = 11;
    bool keep_alive = true;
    bool head = false;

    [[nodiscard]] Response make(boost::beast::http::status status,
                                std::string_view content_type,
                                std::string body) const {
        return make(status, content_type, SharedText(std::move(body)));
    }
    [[nodiscard]] Response make(boost::beast::http::status status,
                                std::string_view content_type,
                                SharedText body) const;
    [[nodiscard]] Response text(boost::beast::http::status status, std::string body) const {
        return make(status, text_plain, std::move(body));
    }
    [[nodiscard]] Response json(boost::beast::http::status status, std::string body) const {
        return make(status, application_json, std::move(body));
    }
    /// A JSON answer whose body is shared with its owner (the body cache), not copied.
    [[nodiscard]] Response json(boost::beast::http::status status,
                                std::shared_ptr<const std::string> body) const;
    /// ZStack's error answer: 503 with {"error":{…}} (zstack-api.md §6).
    [[nodiscard]] Response error(const zstack::ApiError& e) const {
        return error(boost::beast::http::status::service_unavailable, e);
    }
    /// The same body with another status (vipportd's own /vipportd/v1 API: 400, 404, 409, ...).
    [[nodiscard]] Response error(boost::beast::http::status status,
                                 const zstack::ApiError& e) const {
        return make(status, application_json, zstack::error_body(e));
    }
};

/// The scalar query parameters a route declares, decoded ('+' is a space), not trimmed. Other
/// names (systemTags, userTags, anything unknown) are ignored, as ZStack's RestServer does.
class QueryParams {
  public:
    [[nodiscard]] std::optional<std::string_view> get(std::string_view name) const {
        for (const auto& [n, v] : values_) {
            if (n == name) {
                return std::string_view(v);
            }
        }
        return std::nullopt;
    }
    void set(std::string name, std::string value) {
        values_.emplace_back(std::move(name), std::move(value));
    }

  private:
    std::vector<std::pair<std::string, std::string>> values_;
};

/// One authenticated request, handed to its route's handler.
struct ApiCall {
    Reply reply;
    std::vector<std::string> path_params;  // the "{}" segments of the route, decoded, in order
    QueryParams params;
    std::string body;          // the request body (PUT); empty for GET/HEAD
    bool with_schema = false;  // X-JSON-Schema present (the Java SDK's schema mapping, §3)
    bool gzip_ok = false;      // Accept-Encoding admits gzip (RFC 9110 §12.5.3)
    std::shared_ptr<const RouterDeps> deps;
    std::shared_ptr<BodyCache> bodies;
};

/// Answers call by calling done exactly once, now or later from another thread (the snapshot
/// provider's or the authenticator's). Must not throw after handing done to another thread.
using Handler = void (*)(ApiCall call, Router::Done done);

/// The usedports `protocol` parameter as ZStack validates it, with vipportd's any-case rule
/// (zstack-api.md §17): the protocol, or nullopt with error set to the SYS.1007 answer.
std::optional<agent::Protocol> protocol_param(const ApiCall& call, std::optional<Response>& error);

/// snap if it can answer, else null with error set to the answer that replaces it: SYS.1000 when
/// there is no snapshot, SYS.1006 naming the first failed required source.
agent::SnapshotPtr usable(const agent::SnapshotPtr& snap,
                          const Reply& reply,
                          std::optional<Response>& error);

/// A 200 JSON answer through the body cache (key + ports identify the body; render makes it),
/// gzip-compressed when the client asked and the body is worth it, with Vary: Accept-Encoding.
Response cached_json(const ApiCall& call,
                     const std::string& key,
                     const agent::PortSet& ports,
                     const BodyCache::Render& render);

/// RFC 3986 §2.1 percent-decoding; '+' means space only in the query (HTML form encoding).
/// nullopt when a '%' is not followed by two hex digits.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);

/// s as a JSON string literal, quotes included (RFC 8259 §7).
std::string json_quote(std::string_view s);

}  // namespace vipportd::http
