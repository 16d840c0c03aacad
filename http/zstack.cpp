#include "http/zstack.hpp"

#include <array>
#include <charconv>
#include <cstdint>

namespace vipportd::http::zstack {

namespace {

// Descriptions from zstack conf/errorCodes/sys.xml and identity.xml (zstack-api.md §7).
constexpr std::string_view sys_1000 = "An internal error happened in system";
constexpr std::string_view sys_1003 = "A resource can not be found";
constexpr std::string_view sys_1006 = "An operation failed";
constexpr std::string_view sys_1007 = "One or more API argument is invalid";
constexpr std::string_view id_1001 =
    "The session is invalid, either wrong session id or the session has been expired";

constexpr std::string_view validator = "org.zstack.header.message.ApiMessageParamValidator";

// Length of the well-formed UTF-8 sequence at s[i], or 0 if it is not well formed
// (Unicode 15 table 3-7: no overlongs, no surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char b0 = byte(i);
    std::size_t len = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xbf;  // allowed range of the second byte
    if (b0 >= 0xc2 && b0 <= 0xdf) {
        len = 2;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
        len = 3;
        if (b0 == 0xe0) {
            lo = 0xa0;
        } else if (b0 == 0xed) {
            hi = 0x9f;
        }
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
        len = 4;
        if (b0 == 0xf0) {
            lo = 0x90;
        } else if (b0 == 0xf4) {
            hi = 0x8f;
        }
    } else {
        return 0;
    }
    if (i + len > s.size() || byte(i + 1) < lo || byte(i + 1) > hi) {
        return 0;
    }
    for (std::size_t k = 2; k < len; ++k) {
        if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) {
            return 0;
        }
    }
    return len;
}

}  // namespace

ApiError session_expired() { return {"ID.1001", id_1001, "Session expired"}; }

ApiError protocol_missing() {
    return {
        "SYS.1007", sys_1007,
        "field[protocol] of message[" + std::string(validator) + "] is mandatory, can not be null"};
}

ApiError protocol_invalid(std::string_view value) {
    return {"SYS.1007", sys_1007,
            "valid value for field[protocol] of message[" + std::string(validator) +
                "] are [TCP, UDP], but " + std::string(value) + " found"};
}

ApiError vip_not_found(std::string_view uuid) {
    return {"SYS.1003", sys_1003,
            "invalid field[uuid], resource[uuid:" + std::string(uuid) + ", type:VipVO] not found"};
}

ApiError source_failed(std::string_view source, std::string_view error) {
    return {"SYS.1006", sys_1006,
            "failed to read kernel state from source[" + std::string(source) +
                "]: " + std::string(error)};
}

ApiError internal_error(std::string_view details) {
    return {"SYS.1000", sys_1000, std::string(details)};
}

std::string error_body(const ApiError& e) {
    std::string out;
    out.reserve(64 + e.description.size() + e.details.size());
    out += R"({"error":{"code":)";
    append_json_string(out, e.code);
    out += R"(,"description":)";
    append_json_string(out, e.description);
    out += R"(,"details":)";
    append_json_string(out, e.details);
    out += "}}";
    return out;
}

std::string used_ports_body(std::string_view uuid,
                            agent::Protocol protocol,
                            const agent::PortSet& ports,
                            bool with_schema) {
    const std::string_view proto = agent::to_string(protocol);
    std::string out;
    // 8 bytes per port covers `"65535",`; one allocation even for the whole range (~0.5 MB).
    out.reserve(256 + uuid.size() + static_cast<std::size_t>(ports.count()) * 8);
    if (with_schema) {
        out += R"({"schema":{"inventories[0]":)";
        append_json_string(out, inventory_class);
        out += R"(},"inventories":[{"uuid":)";
    } else {
        out += R"({"inventories":[{"uuid":)";
    }
    append_json_string(out, uuid);
    out += R"(,"protcol":")";
    out += proto;
    out += R"(","protocol":")";
    out += proto;
    out += R"(","usedPorts":[)";
    bool first = true;
    std::array<char, 8> digits{};
    for (const auto& r : ports.ranges()) {
        // Port 0 is never a usable port for a client (zstack-api.md §3: decimal strings of ports).
        for (std::uint32_t p = r.first == 0 ? 1U : r.first; p <= r.last; ++p) {
            if (!first) {
                out += ',';
            }
            first = false;
            out += '"';
            const auto res = std::to_chars(digits.data(), digits.data() + digits.size(), p);
            out.append(digits.data(), res.ptr);
            out += '"';
        }
    }
    out += "]}]}";
    return out;
}

void append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            const std::size_t len = utf8_sequence(s, i);
            if (len == 0) {
                out += "\xef\xbf\xbd";  // U+FFFD REPLACEMENT CHARACTER, one per bad byte
                ++i;
                continue;
            }
            // U+2028/U+2029 (E2 80 A8/A9) are escaped by Gson (JsonWriter REPLACEMENT_CHARS).
            if (len == 3 && c == 0xe2 && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
                (static_cast<unsigned char>(s[i + 2]) & 0xfe) == 0xa8) {
                out += static_cast<unsigned char>(s[i + 2]) == 0xa8 ? "\\u2028" : "\\u2029";
            } else {
                out.append(s.substr(i, len));
            }
            i += len;
            continue;
        }
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\f':
                out += "\\f";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out += hex[c >> 4];
                    out += hex[c & 0x0f];
                } else {
                    out += static_cast<char>(c);
                }
        }
        ++i;
    }
    out += '"';
}

std::string repeated_parameter(std::string_view name) {
    return "Invalid query parameter[" + std::string(name) +
           "], only one value is allowed for the parameter but multiple values found";
}

std::string no_api_mapping(std::string_view path) {
    return "no api mapping to " + std::string(path);
}

}  // namespace vipportd::http::zstack
