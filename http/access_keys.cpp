#include "http/access_keys.hpp"

#include <array>
#include <cstdint>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdexcept>
#include <vector>

#include "http/java_text.hpp"
#include "http/secret_file.hpp"

namespace vipportd::http {

namespace {

constexpr std::string_view scheme = "ZStack";  // RestConstants.HEADER_ACCESSKEY

// Java's s.split(":"): every ':' separates, then trailing empty fields are removed.
std::vector<std::string_view> java_split_colon(std::string_view s) {
    std::vector<std::string_view> fields;
    for (;;) {
        const auto colon = s.find(':');
        fields.push_back(s.substr(0, colon));
        if (colon == std::string_view::npos) {
            break;
        }
        s = s.substr(colon + 1);
    }
    while (!fields.empty() && fields.back().empty()) {
        fields.pop_back();
    }
    return fields;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, "chrono-Compatible Low-Level
// Date Algorithms", days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2 ? 1 : 0;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool leap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// Plain values with a failure flag rather than std::optional: GCC 12 at -O2 reports the
// optionals' payloads as maybe-uninitialized after the combined has_value() checks.
constexpr unsigned kBad = ~0U;

// Decimal value of s (1 to max_len digits), or kBad.
unsigned digits(std::string_view s, std::size_t max_len) {
    if (s.empty() || s.size() > max_len) {
        return kBad;
    }
    unsigned v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return kBad;
        }
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    return v;
}

template <std::size_t N>
unsigned index_of(const std::array<std::string_view, N>& names, std::string_view s) {
    for (std::size_t i = 0; i < N; ++i) {
        if (names[i] == s) {
            return static_cast<unsigned>(i);
        }
    }
    return kBad;
}

// A secret that matches nothing a client can send: unknown ids are checked against it so that
// they cost one HMAC like known ids.
constexpr std::string_view kDummySecret = "vipportd-no-such-access-key";

}  // namespace

std::optional<std::chrono::system_clock::time_point> parse_access_key_date(std::string_view text) {
    // "Tue, 03 Jun 2008 11:05:30 GMT": EEE ", " d{1,2} " " MMM " " yyyy " " HH:mm:ss " " z
    constexpr std::array<std::string_view, 7> weekdays{"Mon", "Tue", "Wed", "Thu",
                                                       "Fri", "Sat", "Sun"};
    constexpr std::array<std::string_view, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (text.size() < 5 || text.substr(3, 2) != ", ") {
        return std::nullopt;
    }
    const auto weekday = index_of(weekdays, text.substr(0, 3));
    text.remove_prefix(5);
    std::array<std::string_view, 5> parts;  // day, month, year, time, zone
    for (std::size_t i = 0; i < parts.size(); ++i) {
        const auto sp = text.find(' ');
        if ((i + 1 < parts.size()) == (sp == std::string_view::npos)) {
            return std::nullopt;  // too few or too many fields
        }
        parts[i] = text.substr(0, sp);
        text = sp == std::string_view::npos ? std::string_view{} : text.substr(sp + 1);
    }
    const unsigned day = digits(parts[0], 2);
    const unsigned month = index_of(months, parts[1]);
    const unsigned year = parts[2].size() == 4 ? digits(parts[2], 4) : kBad;
    const std::string_view t = parts[3];
    if (weekday == kBad || day == kBad || month == kBad || year == kBad || t.size() != 8 ||
        t[2] != ':' || t[5] != ':') {
        return std::nullopt;
    }
    const unsigned hh = digits(t.substr(0, 2), 2);
    const unsigned mm = digits(t.substr(3, 2), 2);
    const unsigned ss = digits(t.substr(6, 2), 2);
    const std::string_view zone = parts[4];
    if (hh > 23 || mm > 59 || ss > 59 ||  // kBad is larger than any of these bounds
        (zone != "GMT" && zone != "UTC" && zone != "UT" && zone != "Z")) {
        return std::nullopt;
    }
    constexpr std::array<unsigned, 12> month_days{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const unsigned m = month + 1;
    const unsigned max_day = month_days.at(month) + (m == 2 && leap(year) ? 1 : 0);
    if (day < 1 || day > max_day) {
        return std::nullopt;
    }
    const std::int64_t days = days_from_civil(year, m, day);
    // 1970-01-01 was a Thursday (index 3 with Monday = 0).
    if (static_cast<unsigned>(((days % 7) + 7 + 3) % 7) != weekday) {
        return std::nullopt;
    }
    const std::int64_t seconds = days * 86400 + hh * 3600 + mm * 60 + ss;
    // system_clock counts nanoseconds in libstdc++ (years 1678-2262): a date outside that span
    // cannot be converted (signed overflow; fuzz finding `finding_date_year_7810.http`) and is
    // far outside any clock skew, so it is clamped and answered 403 like ZStack does.
    using std::chrono::system_clock;
    constexpr std::int64_t kLimit =
        std::chrono::duration_cast<std::chrono::seconds>(system_clock::duration::max()).count();
    if (seconds >= kLimit) {
        return system_clock::time_point::max();
    }
    if (seconds <= -kLimit) {
        return system_clock::time_point::min();
    }
    return system_clock::time_point(std::chrono::seconds(seconds));
}

std::variant<AccessKeyRequest, PlainRejection> parse_access_key(
    std::string_view authorization,
    std::optional<std::string_view> date,
    std::string_view method,
    std::string_view path,
    std::chrono::system_clock::time_point now) {
    namespace text = access_key_text;
    using boost::beast::http::status;
    // RestServer.checkTime runs first, then the "id:signature" shape is checked.
    if (!date) {
        return PlainRejection{status::bad_request, text::date_missing};
    }
    const auto when = parse_access_key_date(*date);
    if (!when) {
        return PlainRejection{status::bad_request, text::date_format};
    }
    // Inclusive on both ends: !date.isAfter(now + 15 min) && !date.isBefore(now - 15 min).
    if (*when > now + access_key_max_skew || *when < now - access_key_max_skew) {
        return PlainRejection{status::forbidden, text::time_skewed};
    }
    // auth.replaceFirst("ZStack", "").trim(); the caller guarantees the prefix.
    const std::string_view rest = java_trim(
        authorization.starts_with(scheme) ? authorization.substr(scheme.size()) : authorization);
    const auto fields = java_split_colon(rest);
    if (fields.size() != 2) {
        return PlainRejection{status::bad_request, text::bad_format};
    }
    AccessKeyRequest r;
    r.id = std::string(fields[0]);
    r.signature = std::string(fields[1]);
    r.string_to_sign.reserve(method.size() + date->size() + path.size() + 2);
    r.string_to_sign.append(method).append("\n").append(*date).append("\n").append(path);
    return r;
}

std::string hmac_sha1_base64(std::string_view key, std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    unsigned int mac_len = 0;
    // An empty string_view may carry a null data(); HMAC() wants a valid pointer.
    static const unsigned char empty = 0;
    const unsigned char* k =
        key.empty() ? &empty : reinterpret_cast<const unsigned char*>(key.data());
    const unsigned char* d =
        data.empty() ? &empty : reinterpret_cast<const unsigned char*>(data.data());
    if (HMAC(EVP_sha1(), k, static_cast<int>(key.size()), d, data.size(), mac.data(), &mac_len) ==
        nullptr) {
        throw std::runtime_error("HMAC-SHA1 failed in OpenSSL");
    }
    // EVP_EncodeBlock writes 4 characters per 3 bytes plus a NUL (openssl/evp.h).
    std::array<unsigned char, (EVP_MAX_MD_SIZE + 2) / 3 * 4 + 1> out{};
    const int n = EVP_EncodeBlock(out.data(), mac.data(), static_cast<int>(mac_len));
    return std::string(reinterpret_cast<const char*>(out.data()), static_cast<std::size_t>(n));
}

AccessKeyStore AccessKeyStore::parse(std::string_view text, const std::filesystem::path& origin) {
    std::unordered_map<std::string, std::string> secrets;
    const auto fail = [&](std::size_t line, const std::string& what) {
        throw std::runtime_error("access keys file '" + origin.string() + "': line " +
                                 std::to_string(line) + ": " + what);
    };
    for_each_entry(text, [&](std::string_view line, std::size_t number) {
        constexpr std::string_view ws = " \t";
        const auto gap = line.find_first_of(ws);
        if (gap == std::string_view::npos) {
            fail(number, "expected \"<AccessKeyId> <AccessKeySecret>\", got one field");
        }
        const std::string_view id = line.substr(0, gap);
        const std::string_view secret = line.substr(line.find_first_not_of(ws, gap));
        if (secret.find_first_of(ws) != std::string_view::npos) {
            fail(number, "expected \"<AccessKeyId> <AccessKeySecret>\", got more than two fields");
        }
        if (id.find(':') != std::string_view::npos) {
            // The header is "ZStack <id>:<signature>": an id with ':' could never be sent.
            fail(number, "AccessKeyId '" + std::string(id) + "' contains ':'");
        }
        if (!secrets.emplace(std::string(id), std::string(secret)).second) {
            fail(number, "duplicate AccessKeyId '" + std::string(id) + "'");
        }
    });
    if (secrets.empty()) {
        throw std::runtime_error(
            "access keys file '" + origin.string() +
            "': contains no key (one \"<AccessKeyId> <AccessKeySecret>\" per line, '#' starts a "
            "comment)");
    }
    return AccessKeyStore(std::move(secrets));
}

AccessKeyStore AccessKeyStore::load(const std::filesystem::path& path) {
    return parse(read_secret_file(path, "access keys file"), path);
}

bool AccessKeyStore::verify(const AccessKeyRequest& request) const {
    const auto it = secrets_.find(request.id);
    const bool known = it != secrets_.end();
    const std::string expected = hmac_sha1_base64(
        known ? std::string_view(it->second) : kDummySecret, request.string_to_sign);
    // The expected length (28 for SHA-1) is public; only the content must not leak.
    const bool same =
        request.signature.size() == expected.size() &&
        CRYPTO_memcmp(request.signature.data(), expected.data(), expected.size()) == 0;
    return known && same;
}

}  // namespace vipportd::http
