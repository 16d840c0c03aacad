#pragma once
// ZStack's AccessKey scheme, as the Java SDK uses it when given a key pair (zstack-api.md §2.3,
// §8.1a): "Authorization: ZStack <AccessKeyId>:<Signature>" plus a "Date" header, where
// Signature = base64(HMAC-SHA1(secret, METHOD "\n" Date "\n" path)), path being the decoded
// request path without the "/zstack" context and without the query. RestServer.checkTime allows
// 15 minutes of clock skew (RestConstants.REQUEST_DURATION_MINUTES).
//
// The REST layer's rejections are plain text, worded as zstack RestServer.java words them, and
// come in RestServer's order: Date missing, Date unparsable, skew, then the "id:signature" shape.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>

#include <boost/beast/http/status.hpp>

namespace vipportd::http {

namespace access_key_text {
// zstack RestServer.checkTime / handleApi (zstack-api.md §5.2), typos included.
inline constexpr std::string_view date_missing = "'Date' must be incuded in request header";
inline constexpr std::string_view date_format =
    "'Date' format error, correct format is 'EEE, dd MMM yyyy HH:mm:ss z'";
inline constexpr std::string_view time_skewed = "requestTimeTooSkewed";
inline constexpr std::string_view bad_format = "accessKey format is 'ZStack AccessKeyId:Signature'";
}  // namespace access_key_text

/// RestConstants.REQUEST_DURATION_MINUTES: a Date further than this from now is refused (403).
inline constexpr std::chrono::minutes access_key_max_skew{15};

/// A well-formed AccessKey request whose Date is within the skew window; the signature is not
/// checked yet (AccessKeyStore::verify does that).
struct AccessKeyRequest {
    std::string id;
    std::string signature;       // as sent (base64 text)
    std::string string_to_sign;  // METHOD "\n" Date "\n" path
};

/// A REST-layer rejection: plain-text body, status 400 or 403.
struct PlainRejection {
    boost::beast::http::status status;
    std::string_view body;
};

/// Parses an AccessKey Authorization value. authorization is the header value already trimmed
/// (Java String.trim()) and starting with "ZStack"; date is the Date header if present; method
/// is the request method as sent ("GET"); path is the decoded path without "/zstack"
/// ("/v1/vips/<uuid>/usedports"). The "id:signature" part is split like Java's
/// String.split(":"), which drops trailing empty fields: exactly two fields must remain.
std::variant<AccessKeyRequest, PlainRejection> parse_access_key(
    std::string_view authorization,
    std::optional<std::string_view> date,
    std::string_view method,
    std::string_view path,
    std::chrono::system_clock::time_point now);

/// Parses "EEE, dd MMM yyyy HH:mm:ss z" (English names; day of month one or two digits; zone
/// GMT, UTC, UT or Z). The weekday must match the date, as java.time's resolver insists.
std::optional<std::chrono::system_clock::time_point> parse_access_key_date(std::string_view text);

/// base64(HMAC-SHA1(key, data)) with OpenSSL libcrypto (RFC 2104, RFC 4648 §4 with padding).
std::string hmac_sha1_base64(std::string_view key, std::string_view data);

/// The AccessKey pairs vipportd accepts, from a file readable by its owner only.
///
/// File format: one pair per line, "<AccessKeyId> <AccessKeySecret>" separated by spaces or
/// tabs; surrounding whitespace is trimmed; blank lines and lines starting with '#' are ignored.
/// An id cannot contain ':' (the header separates id and signature with it) and must be unique.
class AccessKeyStore {
  public:
    /// Reads path. Throws std::runtime_error naming the path (and the line for a syntax error,
    /// never a secret) when the file cannot be read, is not a regular file, grants any
    /// permission to group or others (mode & 077), holds a malformed line or no pair at all.
    static AccessKeyStore load(const std::filesystem::path& path);
    /// The same parsing rules on text already in memory (origin is used only in messages).
    static AccessKeyStore parse(std::string_view text, const std::filesystem::path& origin);

    /// True when request.id is known and request.signature is the signature of
    /// request.string_to_sign under its secret. The comparison runs in constant time, and an
    /// unknown id costs the same HMAC as a known one.
    [[nodiscard]] bool verify(const AccessKeyRequest& request) const;
    [[nodiscard]] std::size_t size() const { return secrets_.size(); }

  private:
    explicit AccessKeyStore(std::unordered_map<std::string, std::string> secrets)
        : secrets_(std::move(secrets)) {}
    std::unordered_map<std::string, std::string> secrets_;  // id -> secret
};

}  // namespace vipportd::http
