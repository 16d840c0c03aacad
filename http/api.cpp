#include "http/api.hpp"

#include <boost/beast/http/field.hpp>

#include "http/gzip.hpp"
#include "http/java_text.hpp"

namespace vipportd::http {

namespace bhttp = boost::beast::http;

Response Reply::json(bhttp::status status, std::shared_ptr<const std::string> body) const {
    return make(status, application_json, SharedText::shared(std::move(body)));
}

Response Reply::make(bhttp::status status, std::string_view content_type, SharedText body) const {
    Response res{status, version};
    res.set(bhttp::field::server, "vipportd");
    res.set(bhttp::field::content_type, content_type);
    res.body() = std::move(body);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    if (head) {
        res.body().clear();  // Content-Length stays that of the GET body (RFC 9110 §9.3.2)
    }
    return res;
}

std::optional<agent::Protocol> protocol_param(const ApiCall& call, std::optional<Response>& error) {
    const auto value = call.params.get("protocol");
    if (!value) {
        error = call.reply.error(zstack::protocol_missing());
        return std::nullopt;
    }
    const std::string_view text = java_trim(*value);
    const auto protocol = agent::parse_protocol(text);
    if (!protocol) {
        error = call.reply.error(zstack::protocol_invalid(text));
    }
    return protocol;
}

agent::SnapshotPtr usable(const agent::SnapshotPtr& snap,
                          const Reply& reply,
                          std::optional<Response>& error) {
    if (!snap) {
        error = reply.error(zstack::internal_error("no kernel snapshot available"));
        return nullptr;
    }
    if (const auto* failed = snap->failed_required()) {
        error = reply.error(zstack::source_failed(failed->name, failed->error));
        return nullptr;
    }
    return snap;
}

Response cached_json(const ApiCall& call,
                     const std::string& key,
                     const agent::PortSet& ports,
                     const BodyCache::Render& render) {
    BodyCache::Body body = call.bodies->get(key, ports, false, render);
    const bool gzip = call.gzip_ok && body->size() >= kGzipMinBytes;
    if (gzip) {
        body = call.bodies->get(key, ports, true, render);
    }
    Response res = call.reply.json(bhttp::status::ok, std::move(body));
    if (gzip) {
        res.set(bhttp::field::content_encoding, "gzip");
    }
    // Caches must key on Accept-Encoding whether or not this answer was compressed (RFC 9110
    // §12.5.5).
    res.set(bhttp::field::vary, "Accept-Encoding");
    return res;
}

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

}  // namespace vipportd::http
