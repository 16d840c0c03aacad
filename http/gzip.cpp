#include "http/gzip.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <limits>
#include <optional>
#include <stdexcept>

#include <zlib.h>

namespace vipportd::http {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// The qvalue of one "coding;param;q=0.5" element (RFC 9110 §12.4.2); 1 when absent or unreadable.
bool positive_q(std::string_view params) {
    while (!params.empty()) {
        const auto semi = params.find(';');
        const std::string_view p = trim(params.substr(0, semi));
        params = semi == std::string_view::npos ? std::string_view{} : params.substr(semi + 1);
        if (p.size() >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            // qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ): positive unless every
            // digit is 0.
            const std::string_view v = trim(p.substr(2));
            const bool valid =
                !v.empty() && (v[0] == '0' || v[0] == '1') &&
                (v.size() == 1 || (v[1] == '.' && v.size() <= 5 &&
                                   v.find_first_not_of("0123456789", 2) == std::string_view::npos));
            return !valid || v.find_first_of("123456789") != std::string_view::npos;
        }
    }
    return true;
}

}  // namespace

bool accepts_gzip(std::string_view accept_encoding) {
    std::optional<bool> gzip;  // explicit verdict for gzip / x-gzip
    bool star = false;
    while (!accept_encoding.empty()) {
        const auto comma = accept_encoding.find(',');
        const std::string_view item = trim(accept_encoding.substr(0, comma));
        accept_encoding = comma == std::string_view::npos ? std::string_view{}
                                                          : accept_encoding.substr(comma + 1);
        const auto semi = item.find(';');
        const std::string_view coding = trim(item.substr(0, semi));
        const bool q =
            positive_q(semi == std::string_view::npos ? std::string_view{} : item.substr(semi + 1));
        if (iequals(coding, "gzip") || iequals(coding, "x-gzip")) {
            gzip = gzip.value_or(false) || q;
        } else if (coding == "*") {
            star = q;
        }
    }
    return gzip.value_or(star);
}

std::string gzip_compress(std::string_view data) {
    z_stream z{};
    // windowBits 15 + 16: a gzip header and trailer instead of zlib's (zlib.h, deflateInit2).
    constexpr int kGzipWindowBits = 15 + 16;
    constexpr int kMemLevel = 8;  // zlib's default
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, kGzipWindowBits, kMemLevel,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        throw std::runtime_error("zlib: deflateInit2 failed");
    }
    std::string out;
    out.resize(deflateBound(&z, static_cast<uLong>(data.size())));
    // zlib's API takes non-const input pointers but does not write through next_in.
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&z, Z_FINISH);  // deflateBound guarantees one call suffices
    const auto written = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        throw std::runtime_error("zlib: deflate failed (" + std::to_string(rc) + ")");
    }
    out.resize(written);
    return out;
}

}  // namespace vipportd::http
