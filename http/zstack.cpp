#include "http/zstack.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>

#include "http/java_text.hpp"

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
    std::string out;
    // 8 bytes per port covers `"65535",`; one allocation even for the whole range (~0.5 MB).
    out.reserve(256 + uuid.size() + static_cast<std::size_t>(ports.count()) * 8);
    if (with_schema) {
        out += R"({"schema":{"inventories[0]":)";
        append_json_string(out, inventory_class);
        out += R"(},"inventories":[)";
    } else {
        out += R"({"inventories":[)";
    }
    append_inventory(out, uuid, protocol, ports);
    out += "]}";
    return out;
}

void append_inventory(std::string& out,
                      std::string_view uuid,
                      agent::Protocol protocol,
                      const agent::PortSet& ports) {
    const std::string_view proto = agent::to_string(protocol);
    out += R"({"uuid":)";
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
    out += "]}";
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

// ---- ZStack's siblings (issue 6)
// ------------------------------------------------------------------

namespace {

// Appends s with every byte that is not well-formed UTF-8 replaced by U+FFFD, as the servlet's
// UTF-8 decoding of the query string would have done before Java saw the text.
void append_utf8(std::string& out, std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        if (static_cast<unsigned char>(s[i]) < 0x80) {
            out += s[i++];
            continue;
        }
        const std::size_t len = utf8_sequence(s, i);
        if (len == 0) {
            out += "\xef\xbf\xbd";
            ++i;
        } else {
            out.append(s.substr(i, len));
            i += len;
        }
    }
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_xdigit(char c) { return hex_digit(c) >= 0; }
bool is_float_suffix(char c) { return c == 'f' || c == 'F' || c == 'd' || c == 'D'; }

// Java's (int) cast of a double (JLS §5.1.3): NaN is 0, out-of-range values saturate, the rest
// rounds toward zero.
std::int32_t java_d2i(double d) {
    if (std::isnan(d)) {
        return 0;
    }
    if (d >= static_cast<double>(std::numeric_limits<std::int32_t>::max())) {
        return std::numeric_limits<std::int32_t>::max();
    }
    if (d <= static_cast<double>(std::numeric_limits<std::int32_t>::min())) {
        return std::numeric_limits<std::int32_t>::min();
    }
    return static_cast<std::int32_t>(d);
}

enum class JavaFloatSyntax { ok, bad, multiple_points };

// The hex form of JDK 8 FloatingDecimal.parseHexString (its regex, sign already consumed):
// 0[xX] ( H+ .? | H* . H+ ) [pP] [+-]? D+ [fFdD]?
bool java_hex_float(std::string_view s) {
    if (s.size() < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) {
        return false;
    }
    std::size_t i = 2;
    std::size_t before = 0;
    std::size_t after = 0;
    while (i < s.size() && is_xdigit(s[i])) {
        ++i;
        ++before;
    }
    if (i < s.size() && s[i] == '.') {
        ++i;
        while (i < s.size() && is_xdigit(s[i])) {
            ++i;
            ++after;
        }
    }
    if (before == 0 && after == 0) {
        return false;
    }
    if (i >= s.size() || (s[i] != 'p' && s[i] != 'P')) {
        return false;
    }
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        ++i;
    }
    const std::size_t exp_at = i;
    while (i < s.size() && is_digit(s[i])) {
        ++i;
    }
    if (i == exp_at) {
        return false;
    }
    return i == s.size() || (i + 1 == s.size() && is_float_suffix(s[i]));
}

// The decimal form of JDK 8 FloatingDecimal.readJavaFormatString (sign already consumed):
// digits with at most one '.', at least one digit, optional exponent with at least one digit,
// optional f/F/d/D as the very last character. A second '.' met while scanning the digits is its
// own exception ("multiple points").
JavaFloatSyntax java_decimal_float(std::string_view s) {
    std::size_t i = 0;
    std::size_t digits = 0;
    bool point = false;
    while (i < s.size() && (is_digit(s[i]) || s[i] == '.')) {
        if (s[i] == '.') {
            if (point) {
                return JavaFloatSyntax::multiple_points;
            }
            point = true;
        } else {
            ++digits;
        }
        ++i;
    }
    if (digits == 0) {
        return JavaFloatSyntax::bad;
    }
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
            ++i;
        }
        const std::size_t exp_at = i;
        while (i < s.size() && is_digit(s[i])) {
            ++i;
        }
        if (i == exp_at) {
            return JavaFloatSyntax::bad;
        }
    }
    if (i == s.size() || (i + 1 == s.size() && is_float_suffix(s[i]))) {
        return JavaFloatSyntax::ok;
    }
    return JavaFloatSyntax::bad;
}

}  // namespace

std::string used_ports_batch_body(agent::Protocol protocol,
                                  const std::vector<Inventory>& inventories,
                                  bool with_schema) {
    std::size_t ports = 0;
    for (const auto& inv : inventories) {
        ports += inv.ports.count();
    }
    std::string out;
    out.reserve(64 + inventories.size() * (200 + (with_schema ? inventory_class.size() + 24 : 0)) +
                ports * 8);
    if (with_schema) {
        // JsonSchemaBuilder.build(): "inventories[0]", "inventories[1]", ... are collected in
        // order and then emitted in reverse (Collections.reverse of the key list).
        out += R"({"schema":{)";
        for (std::size_t i = inventories.size(); i > 0; --i) {
            if (i != inventories.size()) {
                out += ',';
            }
            out += "\"inventories[";
            out += std::to_string(i - 1);
            out += "]\":";
            append_json_string(out, inventory_class);
        }
        out += R"(},"inventories":[)";
    } else {
        out += R"({"inventories":[)";
    }
    bool first = true;
    for (const auto& inv : inventories) {
        if (!first) {
            out += ',';
        }
        first = false;
        append_inventory(out, inv.uuid, protocol, inv.ports);
    }
    out += "]}";
    return out;
}

ApiError field_mandatory(std::string_view field) {
    return {"SYS.1007", sys_1007,
            "field[" + std::string(field) + "] of message[" + std::string(validator) +
                "] is mandatory, can not be null"};
}

ApiError field_not_tcp_udp(std::string_view field, std::string_view value) {
    return {"SYS.1007", sys_1007,
            "valid value for field[" + std::string(field) + "] of message[" +
                std::string(validator) + "] are [TCP, UDP], but " + std::string(value) + " found"};
}

ApiError field_out_of_range(std::string_view field, std::int64_t low, std::int64_t high) {
    return {"SYS.1007", sys_1007,
            "field[" + std::string(field) + "] must be in range of [" + std::to_string(low) + ", " +
                std::to_string(high) + "]"};
}

ApiError vip_field_not_found(std::string_view field, std::string_view uuid) {
    return {"SYS.1003", sys_1003,
            "invalid field[" + std::string(field) + "], resource[uuid:" + std::string(uuid) +
                ", type:VipVO] not found"};
}

JavaInt java_query_int(std::string_view text) {
    // FloatingDecimal trims first (String.trim) and quotes the trimmed text in its message.
    const std::string_view s = java_trim(text);
    if (s.empty()) {
        return {std::nullopt, "empty String"};
    }
    const auto bad = [s] {
        std::string m = "For input string: \"";
        append_utf8(m, s);
        m += '"';
        return JavaInt{std::nullopt, std::move(m)};
    };
    const bool negative = s.front() == '-';
    const std::string_view body = s.front() == '-' || s.front() == '+' ? s.substr(1) : s;
    if (body == "NaN") {
        return {0, {}};
    }
    if (body == "Infinity") {
        return {negative ? std::numeric_limits<std::int32_t>::min()
                         : std::numeric_limits<std::int32_t>::max(),
                {}};
    }
    if (body.size() > 1 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X')) {
        if (!java_hex_float(body)) {
            return bad();
        }
    } else {
        switch (java_decimal_float(body)) {
            case JavaFloatSyntax::ok:
                break;
            case JavaFloatSyntax::multiple_points:
                return {std::nullopt, "multiple points"};
            case JavaFloatSyntax::bad:
                return bad();
        }
    }
    // The syntax is Java's and a subset of strtod's (C locale: vipportd never calls setlocale);
    // both round correctly, so the double is the one Java computes. The type suffix is dropped.
    // A hex float ends in decimal exponent digits, so a final f/F/d/D is the suffix there too.
    std::string number(s);
    if (is_float_suffix(number.back())) {
        number.pop_back();
    }
    return {java_d2i(std::strtod(number.c_str(), nullptr)), {}};
}

std::string java_sublist_negative_from(std::int64_t from) {
    return "fromIndex = " + std::to_string(from);
}

std::string java_sublist_from_after_to(std::int64_t from, std::int64_t to) {
    return "fromIndex(" + std::to_string(from) + ") > toIndex(" + std::to_string(to) + ")";
}

std::string port_availability_body(bool available, bool with_schema) {
    std::string out = with_schema ? R"({"schema":{},"success":true,"available":)"
                                  : R"({"success":true,"available":)";
    out += available ? "true}" : "false}";
    return out;
}

// ZStack on JDK 8 would list one "availablePort[i]":"java.lang.Integer" per element in the schema
// (JsonSchemaBuilder walks into each Integer and records its class), which no client can use: the
// Java SDK skips classes missing from its SourceClassMap (zstack:sdk/…/ApiResult.java getResult),
// and on newer JDKs the reflective walk into java.lang.Integer fails. vipportd sends the schema
// that carries the same information, {}, instead of ~35 bytes of noise per port.
std::string available_ports_body(const agent::PortSet& page, bool with_schema) {
    std::string out;
    out.reserve(64 + static_cast<std::size_t>(page.count()) * 6);
    out += with_schema ? R"({"schema":{},"success":true,"availablePort":[)"
                       : R"({"success":true,"availablePort":[)";
    bool first = true;
    std::array<char, 8> digits{};
    for (const auto& r : page.ranges()) {
        for (std::uint32_t p = r.first; p <= r.last; ++p) {
            if (!first) {
                out += ',';
            }
            first = false;
            const auto res = std::to_chars(digits.data(), digits.data() + digits.size(), p);
            out.append(digits.data(), res.ptr);
        }
    }
    out += "]}";
    return out;
}

}  // namespace vipportd::http::zstack
