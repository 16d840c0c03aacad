#pragma once
// gzip for response bodies (RFC 1952 via zlib's deflate with a gzip wrapper) and the
// Accept-Encoding negotiation of RFC 9110 §12.5.3.

#include <string>
#include <string_view>

namespace vipportd::http {

/// Bodies smaller than this are sent as they are: below ~1 KiB the gzip header, trailer and
/// the Content-Encoding header eat most of the gain (a usedports answer of a handful of ports
/// is ~150 bytes).
inline constexpr std::size_t kGzipMinBytes = 1024;

/// True when the Accept-Encoding field value accepts gzip: a "gzip" or "x-gzip" coding (RFC 9110
/// §8.4.1.3), or "*", with a qvalue above 0. "gzip;q=0" refuses it even after "*". Coding names
/// are case-insensitive; malformed parameters count as q=1 (be lenient in what we accept).
[[nodiscard]] bool accepts_gzip(std::string_view accept_encoding);

/// The gzip member of data (deflate level 6: zlib's default; see README "Performance" for the
/// measured sizes). Throws std::runtime_error if zlib fails (out of memory only).
[[nodiscard]] std::string gzip_compress(std::string_view data);

}  // namespace vipportd::http
