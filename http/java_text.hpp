#pragma once
// Text rules ZStack's Java code applies to request fields, shared by the router and the
// authentication parsers so that both read a header exactly as the management node would.

#include <string_view>

namespace vipportd::http {

/// Java's String.trim(): strips every char <= U+0020 from both ends (APIMessage.validate trims
/// string fields; RestServer trims the Authorization header).
inline std::string_view java_trim(std::string_view s) {
    while (!s.empty() && static_cast<unsigned char>(s.front()) <= 0x20) {
        s.remove_prefix(1);
    }
    while (!s.empty() && static_cast<unsigned char>(s.back()) <= 0x20) {
        s.remove_suffix(1);
    }
    return s;
}

/// The value of one hex digit (either case), or -1.
inline int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

}  // namespace vipportd::http
