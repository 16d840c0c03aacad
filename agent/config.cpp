#include "agent/config.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <optional>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>

#include <toml++/toml.h>

namespace vipportd::agent {

namespace {

// Bounds shared by the TOML parser and validate(); the documented ranges in systemd/vipportd.toml.
constexpr std::int64_t kMinThreads = 1;
constexpr std::int64_t kMaxThreads = 64;
// ZStack uuids are 32 hex characters; 255 leaves room for other naming schemes while keeping the
// registry and the log lines bounded.
constexpr std::size_t kMaxUuidLength = 255;
// A configuration file is a few hundred bytes; refuse anything that is clearly not one.
constexpr std::size_t kMaxConfigBytes = 1024 * 1024;
// shutdown_timeout bound: well above any sane drain, and below systemd's default TimeoutStopSec
// (90 s, systemd-system.conf(5)) so the daemon, not SIGKILL, ends a slow drain.
constexpr double kMaxShutdownSeconds = 60.0;

// spdlog's level names (spdlog/common.h SPDLOG_LEVEL_NAMES), without its "warning"/"err" aliases so
// that one spelling per level is documented.
constexpr std::array<std::string_view, 7> kLogLevels{"trace", "debug",    "info", "warn",
                                                     "error", "critical", "off"};

using Pos = std::optional<toml::source_position>;

/// "FILE:LINE:COL", or "FILE" when the position is unknown (built-in values, validate()).
std::string where(const std::filesystem::path& file, const Pos& pos) {
    std::string s = file.empty() ? std::string("<config>") : file.string();
    if (pos && pos->line != 0) {
        s += ':' + std::to_string(pos->line) + ':' + std::to_string(pos->column);
    }
    return s;
}

Pos pos_of(const toml::source_region& r) {
    if (r.begin.line == 0) {
        return std::nullopt;
    }
    return r.begin;
}

/// Quotes a string for an error message, escaping control bytes and cutting very long values.
std::string quote(std::string_view s) {
    constexpr std::size_t kMaxShown = 80;
    std::string out = "\"";
    const std::size_t n = std::min(s.size(), kMaxShown);
    for (std::size_t i = 0; i < n; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    out += '"';
    if (s.size() > kMaxShown) {
        out += "...";
    }
    return out;
}

/// Why a [[vip]] netns value is unusable, or nullopt. A name is a file under /run/netns (what
/// `ip netns add` creates, iproute2 lib/namespace.c NETNS_RUN_DIR), so it is one path segment; an
/// absolute path names any namespace file (/proc/<pid>/ns/net, a bind mount).
std::optional<std::string> netns_problem(std::string_view v) {
    if (v.empty()) {
        return "expected a namespace name or an absolute path, got an empty string";
    }
    if (std::any_of(v.begin(), v.end(), [](char ch) {
            const auto u = static_cast<unsigned char>(ch);
            return u < 0x20 || u == 0x7f;
        })) {
        return "expected no control characters, got " + quote(v);
    }
    if (v.front() == '/') {
        return std::nullopt;
    }
    if (v.find('/') != std::string_view::npos || v == "." || v == ".." || v.size() > 255) {
        return "expected a name under /run/netns (no '/', not . or ..) or an absolute path, got " +
               quote(v);
    }
    return std::nullopt;
}

/// Why uuid is not a usable VIP uuid ("" when it is).
std::string uuid_problem(std::string_view uuid) {
    if (uuid.empty()) {
        return "expected a non-empty string";
    }
    if (uuid.size() > kMaxUuidLength) {
        return "expected at most 255 characters, got " + std::to_string(uuid.size());
    }
    if (uuid.find('/') != std::string_view::npos) {
        // The uuid is one path segment of /zstack/v1/vips/{uuid}/usedports.
        return "expected no '/', got " + quote(uuid);
    }
    if (std::any_of(uuid.begin(), uuid.end(), [](char ch) {
            const auto u = static_cast<unsigned char>(ch);
            return u < 0x20 || u == 0x7f;
        })) {
        return "expected no control characters, got " + quote(uuid);
    }
    if (uuid.front() == ' ' || uuid.back() == ' ') {
        // ZStack trims the path parameter (zstack-api.md §2.1), so such a uuid never matches.
        return "expected no leading or trailing spaces, got " + quote(uuid);
    }
    return {};
}

/// Text that ends up in an error message (toml++'s description, which quotes the offending input
/// byte raw) with control bytes and DEL as \xNN: one error stays one line, and nothing reaches
/// the terminal of whoever runs --check-config unescaped.
std::string escape_controls(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += ch;
        }
    }
    return out;
}

/// A key name for an error message, always as 'name': TOML allows any bytes in a quoted key
/// ("a\nb" = 1), so the quote, backslash and control bytes are escaped and long names are cut
/// (as quote() does for values).
std::string quote_key(std::string_view key) {
    constexpr std::size_t kMaxShown = 80;
    std::string out = "'";
    for (const char ch : key.substr(0, kMaxShown)) {
        if (ch == '\'' || ch == '\\') {
            out += '\\';
            out += ch;
        } else {
            out += escape_controls(std::string_view(&ch, 1));
        }
    }
    out += '\'';
    if (key.size() > kMaxShown) {
        out += "...";
    }
    return out;
}

/// "string \"x\"", "integer 5", "table", ... for the "got ..." part of a message.
std::string describe(const toml::node& n) {
    switch (n.type()) {
        case toml::node_type::string:
            return "string " + quote(n.as_string()->get());
        case toml::node_type::integer:
            return "integer " + std::to_string(n.as_integer()->get());
        case toml::node_type::floating_point:
            return "floating-point number";
        case toml::node_type::boolean:
            return n.as_boolean()->get() ? "boolean true" : "boolean false";
        case toml::node_type::date:
            return "date";
        case toml::node_type::time:
            return "time";
        case toml::node_type::date_time:
            return "date-time";
        case toml::node_type::array:
            return n.as_array()->is_array_of_tables() && !n.as_array()->empty() ? "array of tables"
                                                                                : "array";
        case toml::node_type::table:
            return "table";
        case toml::node_type::none:
            break;
    }
    return "nothing";
}

/// strerror() text without strerror()'s shared buffer.
std::string errno_text(int e) { return std::error_code(e, std::generic_category()).message(); }

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) {
        row[j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

std::string join(std::initializer_list<std::string_view> names) {
    std::string s;
    for (auto n : names) {
        if (!s.empty()) {
            s += ", ";
        }
        s += n;
    }
    return s;
}

/// [http] integer settings: key, field and accepted range (README "HTTP limits").
struct HttpBounds {
    std::string_view key;
    std::uint32_t HttpConfig::*field;
    std::uint32_t min;
    std::uint32_t max;
};
constexpr std::array<HttpBounds, 11> kHttpBounds{{
    // Beast's own default is 8 KiB (basic_parser.hpp); below 1 KiB a ZStack SDK request with its
    // Authorization and X-Job-UUID headers would not fit.
    {"header_limit", &HttpConfig::header_limit, 1024, 65536},
    {"target_limit", &HttpConfig::target_limit, 64, 65536},
    // The API is GET-only (operations.md §5.4): a body only matters for a 405 or 413 answer.
    {"body_limit", &HttpConfig::body_limit, 0, 1024 * 1024},
    {"idle_timeout_ms", &HttpConfig::idle_timeout_ms, 100, 3600000},
    {"request_timeout_ms", &HttpConfig::request_timeout_ms, 100, 600000},
    {"write_timeout_ms", &HttpConfig::write_timeout_ms, 100, 600000},
    {"handshake_timeout_ms", &HttpConfig::handshake_timeout_ms, 100, 600000},
    {"close_linger_ms", &HttpConfig::close_linger_ms, 0, 60000},
    {"max_connections", &HttpConfig::max_connections, 1, 1000000},
    {"accept_backoff_ms", &HttpConfig::accept_backoff_ms, 10, 60000},
    {"rate_limit_burst", &HttpConfig::rate_limit_burst, 1, 100000},
}};
constexpr double kMaxRatePerIp = 1e6;

/// Source positions of the [http] and [tls] values.
struct HttpTlsLocations {
    std::array<Pos, kHttpBounds.size()> http_items;  // index-aligned with kHttpBounds
    Pos rate_limit_per_ip;
    Pos tls;  // the [tls] table
    Pos tls_enabled;
    Pos cert_file;
    Pos key_file;
    Pos client_ca_file;
    Pos allowed_subjects;
    std::vector<Pos> allowed_subject_items;  // one per TlsConfig::allowed_subjects entry
    Pos listeners;
    std::vector<Pos> listener_items;  // one per TlsConfig::listeners entry
};

/// Source positions of the parsed values, index-aligned with Config's vectors, so that the
/// cross-field checks in check() can point at the offending line. Absent for validate().
struct Locations {
    HttpTlsLocations http_tls;      // [http] and [tls]
    Pos listen;                     // the listen array (or nullopt when defaulted)
    std::vector<Pos> listen_items;  // one per Config::listen entry
    Pos http_threads;
    Pos log_level;
    std::vector<Pos> vip_uuid;  // one per Config::vips entry
    std::vector<Pos> vip_ip;
    Pos auth;  // the [auth] table
    Pos auth_mode;
    Pos tokens_file;
    Pos access_keys_file;
    Pos management_node;
    Pos valid_ttl_seconds;
    Pos invalid_ttl_seconds;
    Pos validation_timeout_ms;
    Pos max_concurrent_validations;
    Pos vips_dir;
    Pos shutdown_timeout;
    Pos state_dir;
};

/// Collects "FILE:LINE:COL: key 'k': what" lines; throws them all at once.
class Errors {
  public:
    explicit Errors(std::filesystem::path file) : file_(std::move(file)) {}

    void add(const Pos& pos, std::string_view key, std::string_view what) {
        lines_.push_back(
            {pos ? pos->line : 0U, pos ? pos->column : 0U,
             where(file_, pos) + ": key " + quote_key(key) + ": " + std::string(what)});
    }
    [[nodiscard]] std::string at(const Pos& pos) const { return where(file_, pos); }

    void throw_if_any() const {
        if (lines_.empty()) {
            return;
        }
        // toml++ tables iterate in key order; report in file order instead.
        auto sorted = lines_;
        std::stable_sort(sorted.begin(), sorted.end(), [](const Line& a, const Line& b) {
            return std::tie(a.line, a.column) < std::tie(b.line, b.column);
        });
        std::string msg;
        for (const auto& l : sorted) {
            if (!msg.empty()) {
                msg += '\n';
            }
            msg += l.text;
        }
        throw ConfigError(msg);
    }

  private:
    struct Line {
        toml::source_index line;
        toml::source_index column;
        std::string text;
    };
    std::filesystem::path file_;
    std::vector<Line> lines_;
};

Pos at_index(const std::vector<Pos>* v, std::size_t i) {
    return v != nullptr && i < v->size() ? (*v)[i] : std::nullopt;
}

bool is_multicast(const netlink::InetAddress& a) {
    // 224.0.0.0/4 (RFC 5771), ff00::/8 (RFC 4291 §2.7)
    return a.family == netlink::Family::v4 ? (a.bytes[0] & 0xf0) == 0xe0 : a.bytes[0] == 0xff;
}

const char* mode_name(AuthConfig::Mode m) {
    switch (m) {
        case AuthConfig::Mode::none:
            return "none";
        case AuthConfig::Mode::tokens:
            return "tokens";
        case AuthConfig::Mode::zstack:
            return "zstack";
    }
    return "?";
}

/// Bounds of the [auth] settings of mode "zstack" (documented in readme-auth / vipportd.toml).
struct UnsignedBounds {
    std::string_view key;
    unsigned AuthConfig::*field;
    Pos Locations::*pos;
    unsigned min;
    unsigned max;
};
// The TTLs stay below ZStack's default session.timeout (7200 s, zstack-api.md §8.3): a cached
// "valid" must not outlive the session by much.
constexpr std::array<UnsignedBounds, 4> kZstackBounds{{
    {"valid_ttl_seconds", &AuthConfig::valid_ttl_seconds, &Locations::valid_ttl_seconds, 0, 3600},
    {"invalid_ttl_seconds", &AuthConfig::invalid_ttl_seconds, &Locations::invalid_ttl_seconds, 0,
     3600},
    {"validation_timeout_ms", &AuthConfig::validation_timeout_ms, &Locations::validation_timeout_ms,
     100, 60000},
    {"max_concurrent_validations", &AuthConfig::max_concurrent_validations,
     &Locations::max_concurrent_validations, 1, 64},
}};

/// [auth] keys added for mode "zstack" and the AccessKey scheme: which mode each belongs to.
void check_auth_extensions(const Config& c, const Locations& l, Errors& err) {
    using Mode = AuthConfig::Mode;
    const auto& a = c.auth;
    const std::string got = std::string("got auth.mode \"") + mode_name(a.mode) + "\")";
    if (a.mode == Mode::zstack && !a.tokens_file.empty()) {
        err.add(l.tokens_file, "auth.tokens_file",
                "set but unused (expected auth.mode = \"tokens\", " + got);
    }
    if (!a.access_keys_file.empty()) {
        if (a.mode == Mode::none) {
            err.add(l.access_keys_file, "auth.access_keys_file",
                    "set but unused (expected auth.mode = \"tokens\" or \"zstack\", " + got);
        } else if (!a.access_keys_file.is_absolute()) {
            err.add(l.access_keys_file, "auth.access_keys_file",
                    "relative path (expected an absolute path, got " +
                        quote(a.access_keys_file.string()) + ")");
        }
    }
    if (a.mode == Mode::zstack) {
        const Pos mode_pos = l.auth_mode ? l.auth_mode : l.auth;
        std::string why;
        if (a.management_node.empty()) {
            err.add(mode_pos, "auth.management_node",
                    "missing (expected a URL such as \"http://192.168.0.10:8080\" when auth.mode "
                    "= \"zstack\")");
        } else if (!parse_http_url(a.management_node, why)) {
            err.add(l.management_node, "auth.management_node", why);
        }
        for (const auto& b : kZstackBounds) {
            const unsigned v = a.*(b.field);
            if (v < b.min || v > b.max) {
                err.add(l.*(b.pos), "auth." + std::string(b.key),
                        "out of range (expected an integer " + std::to_string(b.min) + "-" +
                            std::to_string(b.max) + ", got " + std::to_string(v) + ")");
            }
        }
        return;
    }
    if (!a.management_node.empty()) {
        err.add(l.management_node, "auth.management_node",
                "set but unused (expected auth.mode = \"zstack\", " + got);
    }
    for (const auto& b : kZstackBounds) {
        if (l.*(b.pos)) {
            err.add(l.*(b.pos), "auth." + std::string(b.key),
                    "set but unused (expected auth.mode = \"zstack\", " + got);
        }
    }
}

/// [http] ranges and [tls] requirements.
void check_http_tls(const Config& c, const Locations& l, Errors& err) {
    const auto& h = c.http;
    const auto& pos = l.http_tls;
    for (std::size_t i = 0; i < kHttpBounds.size(); ++i) {
        const auto& b = kHttpBounds[i];
        const std::uint32_t v = h.*(b.field);
        if (v < b.min || v > b.max) {
            err.add(pos.http_items[i], "http." + std::string(b.key),
                    "out of range (expected an integer " + std::to_string(b.min) + "-" +
                        std::to_string(b.max) + ", got " + std::to_string(v) + ")");
        }
    }
    const auto in_range = [&](std::size_t i) {
        const std::uint32_t v = h.*(kHttpBounds[i].field);
        return v >= kHttpBounds[i].min && v <= kHttpBounds[i].max;
    };
    if (in_range(0) && in_range(1) && h.target_limit >= h.header_limit) {
        // The request line holds the target: a target that long meets the header limit first,
        // so the 414 would never be sent.
        err.add(pos.http_items[1] ? pos.http_items[1] : pos.http_items[0], "http.target_limit",
                "not below http.header_limit (expected less than " +
                    std::to_string(h.header_limit) + ", got " + std::to_string(h.target_limit) +
                    ")");
    }
    if (!(h.rate_limit_per_ip >= 0 && h.rate_limit_per_ip <= kMaxRatePerIp)) {  // NaN too
        err.add(pos.rate_limit_per_ip, "http.rate_limit_per_ip",
                "out of range (expected 0 (no limit) to 1000000 requests per second, got " +
                    std::to_string(h.rate_limit_per_ip) + ")");
    }

    const auto& t = c.tls;
    if (!t.enabled) {
        return;
    }
    const auto need_path = [&](const std::filesystem::path& p, const Pos& at, std::string_view key,
                               bool required) {
        if (p.empty()) {
            if (required) {
                err.add(pos.tls, "tls." + std::string(key),
                        "missing (expected an absolute path to a PEM file when [tls] is enabled)");
            }
        } else if (!p.is_absolute()) {
            err.add(at, "tls." + std::string(key),
                    "relative path (expected an absolute path, got " + quote(p.string()) + ")");
        }
    };
    need_path(t.cert_file, pos.cert_file, "cert_file", true);
    need_path(t.key_file, pos.key_file, "key_file", true);
    need_path(t.client_ca_file, pos.client_ca_file, "client_ca_file", false);
    if (!t.allowed_subjects.empty() && t.client_ca_file.empty()) {
        err.add(pos.allowed_subjects, "tls.allowed_subjects",
                "set but unused (expected tls.client_ca_file too: subjects are checked on "
                "verified client certificates)");
    }
    for (std::size_t i = 0; i < t.allowed_subjects.size(); ++i) {
        if (t.allowed_subjects[i].empty()) {
            err.add(
                at_index(&pos.allowed_subject_items, i),
                "tls.allowed_subjects[" + std::to_string(i) + "]",
                "empty subject (expected an RFC 2253 subject such as \"CN=zstack-mn,O=Example\")");
        }
    }
    if (pos.listeners && t.listeners.empty()) {
        err.add(pos.listeners, "tls.listeners",
                "empty (expected at least one \"host:port\" of listen; omit the key for all "
                "listeners)");
    }
    for (std::size_t i = 0; i < t.listeners.size(); ++i) {
        const auto& e = t.listeners[i];
        const std::string key = "tls.listeners[" + std::to_string(i) + "]";
        const Pos at = at_index(&pos.listener_items, i);
        const bool listed = std::any_of(c.listen.begin(), c.listen.end(), [&](const auto& x) {
            return x.address == e.address && x.port == e.port;
        });
        if (!listed) {
            err.add(at, key, "not a listener (expected one of listen, got " + e.to_string() + ")");
        }
        for (std::size_t j = 0; j < i; ++j) {
            if (t.listeners[j].address == e.address && t.listeners[j].port == e.port) {
                err.add(at, key,
                        "duplicate (expected each listener once, got " + e.to_string() + " again)");
                break;
            }
        }
    }
}

/// Cross-field and value checks shared by parse_config (with positions) and validate().
void check(const Config& c, const Locations* loc) {
    Errors err(c.source_file);
    const Locations empty;
    const Locations& l = loc != nullptr ? *loc : empty;

    if (c.listen.empty()) {
        err.add(l.listen, "listen", "no listener (expected at least one \"host:port\", got [])");
    }
    for (std::size_t i = 0; i < c.listen.size(); ++i) {
        for (std::size_t j = 0; j < i; ++j) {
            if (c.listen[j].address == c.listen[i].address &&
                c.listen[j].port == c.listen[i].port) {
                err.add(at_index(&l.listen_items, i), "listen[" + std::to_string(i) + "]",
                        "duplicate listener (expected each endpoint once, got " +
                            c.listen[i].to_string() + " again, first at " +
                            err.at(at_index(&l.listen_items, j)) + ")");
                break;
            }
        }
    }

    if (c.http_threads < kMinThreads || c.http_threads > kMaxThreads) {
        err.add(
            l.http_threads, "http_threads",
            "out of range (expected an integer 1-64, got " + std::to_string(c.http_threads) + ")");
    }
    if (std::find(kLogLevels.begin(), kLogLevels.end(), c.log_level) == kLogLevels.end()) {
        err.add(l.log_level, "log_level",
                "unknown level (expected one of trace, debug, info, warn, error, critical, off, "
                "got " +
                    quote(c.log_level) + ")");
    }

    for (std::size_t i = 0; i < c.vips.size(); ++i) {
        const auto& v = c.vips[i];
        const std::string prefix = "vip[" + std::to_string(i) + "].";
        const Pos upos = at_index(&l.vip_uuid, i);
        const std::string bad = uuid_problem(v.uuid);
        if (!bad.empty()) {
            err.add(upos, prefix + "uuid", "invalid uuid (" + bad + ")");
        }
        for (std::size_t j = 0; j < i; ++j) {
            if (c.vips[j].uuid == v.uuid) {
                err.add(upos, prefix + "uuid",
                        "duplicate uuid (expected each uuid once, got " + quote(v.uuid) +
                            " again, first at " + err.at(at_index(&l.vip_uuid, j)) + ")");
                break;
            }
        }
        const Pos ipos = at_index(&l.vip_ip, i);
        if (auto bad_ip = vip_ip_problem(v.ip)) {
            err.add(ipos, prefix + "ip", *bad_ip);
        }
    }

    if (!c.vips_dir.empty() && !c.vips_dir.is_absolute()) {
        err.add(
            l.vips_dir, "vips_dir",
            "relative path (expected an absolute path, got " + quote(c.vips_dir.string()) + ")");
    }
    // state_dir "" disables VIP registration; otherwise the daemon's working directory is no
    // place to persist registrations (systemd starts it in /).
    if (!c.state_dir.empty() && !c.state_dir.is_absolute()) {
        err.add(l.state_dir, "state_dir",
                "relative path (expected an absolute path or \"\" to disable VIP registration, "
                "got " +
                    quote(c.state_dir.string()) + ")");
    }
    if (c.shutdown_timeout.count() < 0 ||
        c.shutdown_timeout >
            std::chrono::milliseconds(static_cast<std::int64_t>(kMaxShutdownSeconds * 1000))) {
        err.add(l.shutdown_timeout, "shutdown_timeout",
                "out of range (expected 0-60 seconds, got " +
                    std::to_string(c.shutdown_timeout.count()) + " ms)");
    }

    using Mode = AuthConfig::Mode;
    const Pos mode_pos = l.auth_mode ? l.auth_mode : l.auth;
    if (c.auth.mode == Mode::none) {
        // Anyone who can reach a non-loopback listener could query without a token
        // (operations.md §4: refuse to start on a public address without authentication).
        std::vector<std::string> offenders;
        Pos first_offender;
        for (std::size_t i = 0; i < c.listen.size(); ++i) {
            if (!c.listen[i].is_loopback()) {
                const Pos p = at_index(&l.listen_items, i);
                if (offenders.empty()) {
                    first_offender = p;
                }
                offenders.push_back(c.listen[i].to_string() + (p ? " (" + err.at(p) + ")" : ""));
            }
        }
        if (!offenders.empty()) {
            std::string list;
            for (const auto& o : offenders) {
                list += (list.empty() ? "" : ", ") + o;
            }
            const bool one = offenders.size() == 1;
            err.add(mode_pos ? mode_pos : first_offender, "auth.mode",
                    std::string("auth.mode \"none\"") + (l.auth_mode ? "" : " (the default)") +
                        " is only allowed when every listener is loopback; " +
                        (one ? "listener " : "listeners ") + list + (one ? " is" : " are") +
                        " not (expected auth.mode = \"tokens\" or loopback-only listeners)");
        }
        if (!c.auth.tokens_file.empty()) {
            err.add(l.tokens_file, "auth.tokens_file",
                    "set but unused (expected auth.mode = \"tokens\", got auth.mode \"none\")");
        }
    } else if (c.auth.mode == Mode::tokens && c.auth.tokens_file.empty()) {
        err.add(mode_pos, "auth.tokens_file",
                "missing (expected a path when auth.mode = \"tokens\")");
    } else if (c.auth.mode == Mode::tokens && !c.auth.tokens_file.is_absolute()) {
        // The daemon's working directory is "/" under systemd; a relative path would silently
        // mean something else when run by hand.
        err.add(l.tokens_file, "auth.tokens_file",
                "relative path (expected an absolute path, got " +
                    quote(c.auth.tokens_file.string()) + ")");
    }
    check_auth_extensions(c, l, err);
    check_http_tls(c, l, err);

    err.throw_if_any();
}

/// Parses "IPv4:port" or "[IPv6]:port"; on failure returns what is wrong for the message.
std::optional<ListenEndpoint> parse_endpoint(std::string_view text, std::string& why) {
    std::string_view host;
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos) {
            why = "unterminated '[' (expected \"[IPv6]:port\", got " + quote(text) + ")";
            return std::nullopt;
        }
        host = text.substr(1, close - 1);
        const auto rest = text.substr(close + 1);
        if (rest.empty() || rest.front() != ':') {
            why = "missing port (expected \"[IPv6]:port\", got " + quote(text) + ")";
            return std::nullopt;
        }
        port = rest.substr(1);
        auto a = netlink::InetAddress::parse(host);
        if (!a || a->family != netlink::Family::v6) {
            why = "bad address (expected an IPv6 address inside [], got " + quote(text) + ")";
            return std::nullopt;
        }
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            why = "missing port (expected \"host:port\", got " + quote(text) + ")";
            return std::nullopt;
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            why =
                "IPv6 address without brackets (expected \"[IPv6]:port\", got " + quote(text) + ")";
            return std::nullopt;
        }
        auto a = netlink::InetAddress::parse(host);
        if (!a) {
            why = "bad address (expected an IPv4 address or a bracketed IPv6 address, got " +
                  quote(text) + ")";
            return std::nullopt;
        }
    }
    std::uint32_t p = 0;
    const bool digits =
        !port.empty() && port.size() <= 5 &&
        std::all_of(port.begin(), port.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    if (digits) {
        for (char ch : port) {
            p = p * 10 + static_cast<std::uint32_t>(ch - '0');
        }
    }
    if (!digits || p > 65535) {
        why = "bad port (expected 0-65535, got " + quote(port) + " in " + quote(text) + ")";
        return std::nullopt;
    }
    return ListenEndpoint{*netlink::InetAddress::parse(host), static_cast<std::uint16_t>(p)};
}

/// Walks the TOML tree into a Config: types, syntax and enumerations (value rules live in check()).
class Parser {
  public:
    explicit Parser(const std::filesystem::path& file) : err_(file) {}

    Config parse(const toml::table& root, Locations& loc) {
        Config c = default_config();
        for (auto&& [k, v] : root) {
            const std::string_view key = k.str();
            if (key == "listen") {
                parse_listen(v, c, loc);
            } else if (key == "http_threads") {
                loc.http_threads = pos_of(v.source());
                if (auto n = integer(v, "http_threads", "an integer 1-64")) {
                    if (*n < kMinThreads || *n > kMaxThreads) {
                        err_.add(
                            loc.http_threads, "http_threads",
                            "out of range (expected an integer 1-64, got " + describe(v) + ")");
                    } else {
                        c.http_threads = static_cast<unsigned>(*n);
                    }
                }
            } else if (key == "log_level") {
                loc.log_level = pos_of(v.source());
                if (auto s = string(v, "log_level", "a string")) {
                    if (std::find(kLogLevels.begin(), kLogLevels.end(), *s) == kLogLevels.end()) {
                        err_.add(loc.log_level, "log_level",
                                 "unknown level (expected one of trace, debug, info, warn, error, "
                                 "critical, off, got " +
                                     describe(v) + ")");
                    } else {
                        c.log_level = std::string(*s);
                    }
                }
            } else if (key == "vip") {
                parse_vips(v, c, loc);
            } else if (key == "auth") {
                parse_auth(v, c, loc);
            } else if (key == "sources") {
                parse_sources(v, c);
            } else if (key == "http") {
                parse_http(v, c, loc);
            } else if (key == "tls") {
                parse_tls(v, c, loc);
            } else if (key == "log_format") {
                if (auto i = choice(v, "log_format", {"text", "json"})) {
                    c.log_format = *i == 0 ? LogFormat::text : LogFormat::json;
                }
            } else if (key == "vips_dir") {
                loc.vips_dir = pos_of(v.source());
                path(v, "vips_dir", loc.vips_dir, c.vips_dir);
            } else if (key == "shutdown_timeout") {
                loc.shutdown_timeout = pos_of(v.source());
                parse_shutdown_timeout(v, c);
            } else if (key == "state_dir") {
                // Unlike the other paths, "" is allowed: it disables VIP registration.
                loc.state_dir = pos_of(v.source());
                if (auto sd = string(v, "state_dir", "a path string")) {
                    c.state_dir = std::filesystem::path(std::string(*sd));
                }
            } else if (key == "observability") {
                parse_observability(v, c);
            } else {
                unknown(
                    k, "",
                    {"listen", "http_threads", "log_level", "vip", "auth", "sources", "http", "tls",
                     "log_format", "vips_dir", "shutdown_timeout", "observability", "state_dir"});
            }
        }
        err_.throw_if_any();
        return c;
    }

  private:
    void unknown(const toml::key& k,
                 const std::string& prefix,
                 std::initializer_list<std::string_view> allowed) {
        std::string what = "unknown key";
        for (auto a : allowed) {
            // A typo ("lisen") or a guessed longer name ("listen_port").
            if (edit_distance(k.str(), a) <= 2 || k.str().starts_with(a)) {
                what += ", did you mean '" + std::string(a) + "'?";
                break;
            }
        }
        err_.add(pos_of(k.source()), prefix + std::string(k.str()),
                 what + " (expected one of: " + join(allowed) + ")");
    }

    void wrong_type(const toml::node& v, const std::string& key, std::string_view expected) {
        err_.add(pos_of(v.source()), key,
                 "wrong type (expected " + std::string(expected) + ", got " + describe(v) + ")");
    }

    std::optional<std::int64_t> integer(const toml::node& v,
                                        const std::string& key,
                                        std::string_view expected) {
        if (const auto* i = v.as_integer()) {
            return i->get();
        }
        wrong_type(v, key, expected);
        return std::nullopt;
    }

    std::optional<std::string_view> string(const toml::node& v,
                                           const std::string& key,
                                           std::string_view expected) {
        if (const auto* s = v.as_string()) {
            return std::string_view(s->get());
        }
        wrong_type(v, key, expected);
        return std::nullopt;
    }

    /// A non-empty path string stored into out (absoluteness is checked later, by validate()),
    /// or an error recorded at at.
    void path(const toml::node& v,
              const std::string& key,
              const Pos& at,
              std::filesystem::path& out) {
        if (auto s = string(v, key, "a path string")) {
            if (s->empty()) {
                err_.add(at, key, "empty path (expected an absolute path, got \"\")");
            } else {
                out = std::filesystem::path(std::string(*s));
            }
        }
    }

    /// One of `names`; the index into it, or nullopt after recording an error.
    std::optional<std::size_t> choice(const toml::node& v,
                                      const std::string& key,
                                      std::initializer_list<std::string_view> names) {
        std::string expected = "one of ";
        bool first = true;
        for (auto n : names) {
            expected += (first ? "\"" : ", \"") + std::string(n) + "\"";
            first = false;
        }
        const auto* s = v.as_string();
        if (s == nullptr) {
            wrong_type(v, key, expected);
            return std::nullopt;
        }
        std::size_t i = 0;
        for (auto n : names) {
            if (s->get() == n) {
                return i;
            }
            ++i;
        }
        err_.add(pos_of(v.source()), key,
                 "bad value (expected " + expected + ", got " + describe(v) + ")");
        return std::nullopt;
    }

    void parse_listen(const toml::node& v, Config& c, Locations& loc) {
        loc.listen = pos_of(v.source());
        const auto* arr = v.as_array();
        if (arr == nullptr) {
            wrong_type(v, "listen", "an array of \"host:port\" strings");
            return;
        }
        c.listen.clear();
        loc.listen_items.clear();
        for (std::size_t i = 0; i < arr->size(); ++i) {
            const toml::node& item = *arr->get(i);
            const std::string key = "listen[" + std::to_string(i) + "]";
            auto s = string(item, key, "a \"host:port\" string");
            if (!s) {
                continue;
            }
            std::string why;
            if (auto ep = parse_endpoint(*s, why)) {
                c.listen.push_back(*ep);
                loc.listen_items.push_back(pos_of(item.source()));
            } else {
                err_.add(pos_of(item.source()), key, why);
            }
        }
    }

    void parse_vips(const toml::node& v, Config& c, Locations& loc) {
        const auto* arr = v.as_array();
        if (arr == nullptr) {
            wrong_type(v, "vip", "an array of tables ([[vip]])");
            return;
        }
        for (std::size_t i = 0; i < arr->size(); ++i) {
            const toml::node& item = *arr->get(i);
            const std::string prefix = "vip[" + std::to_string(i) + "]";
            const auto* t = item.as_table();
            if (t == nullptr) {
                wrong_type(item, prefix, "a table ([[vip]] with uuid and ip)");
                continue;
            }
            std::optional<std::string> uuid;
            std::optional<netlink::InetAddress> ip;
            std::string netns;
            Pos upos;
            Pos ipos;
            bool ok = true;
            for (auto&& [k, val] : *t) {
                const std::string key = prefix + "." + std::string(k.str());
                if (k.str() == "uuid") {
                    upos = pos_of(val.source());
                    if (auto s = string(val, key, "a string")) {
                        uuid = std::string(*s);
                    } else {
                        ok = false;
                    }
                } else if (k.str() == "ip") {
                    ipos = pos_of(val.source());
                    if (auto s = string(val, key, "an IPv4 or IPv6 address string")) {
                        if (auto a = netlink::InetAddress::parse(*s)) {
                            ip = *a;
                        } else {
                            err_.add(ipos, key,
                                     "bad address (expected an IPv4 or IPv6 address without "
                                     "prefix length or zone, got " +
                                         describe(val) + ")");
                            ok = false;
                        }
                    } else {
                        ok = false;
                    }
                } else if (k.str() == "netns") {
                    if (auto s = string(val, key, "a namespace name or absolute path")) {
                        if (auto bad = netns_problem(*s)) {
                            err_.add(pos_of(val.source()), key, *bad);
                            ok = false;
                        } else {
                            netns = std::string(*s);
                        }
                    } else {
                        ok = false;
                    }
                } else {
                    unknown(k, prefix + ".", {"uuid", "ip", "netns"});
                }
            }
            const Pos tpos = pos_of(t->source());
            if (!uuid && ok && !upos) {
                err_.add(tpos, prefix + ".uuid", "missing (expected a string)");
            }
            if (!ip && ok && !ipos) {
                err_.add(tpos, prefix + ".ip", "missing (expected an IPv4 or IPv6 address)");
            }
            if (uuid && ip) {
                c.vips.push_back(VipEntry{*uuid, *ip, std::move(netns)});
                loc.vip_uuid.push_back(upos);
                loc.vip_ip.push_back(ipos);
            }
        }
    }

    void parse_auth(const toml::node& v, Config& c, Locations& loc) {
        const auto* t = v.as_table();
        if (t == nullptr) {
            wrong_type(v, "auth", "a table ([auth])");
            return;
        }
        loc.auth = pos_of(t->source());
        for (auto&& [k, val] : *t) {
            if (k.str() == "mode") {
                loc.auth_mode = pos_of(val.source());
                if (auto i = choice(val, "auth.mode", {"none", "tokens", "zstack"})) {
                    constexpr std::array<AuthConfig::Mode, 3> kModes{
                        AuthConfig::Mode::none, AuthConfig::Mode::tokens, AuthConfig::Mode::zstack};
                    c.auth.mode = kModes.at(*i);
                }
            } else if (k.str() == "tokens_file") {
                loc.tokens_file = pos_of(val.source());
                path(val, "auth.tokens_file", loc.tokens_file, c.auth.tokens_file);
            } else if (k.str() == "access_keys_file") {
                loc.access_keys_file = pos_of(val.source());
                path(val, "auth.access_keys_file", loc.access_keys_file, c.auth.access_keys_file);
            } else if (k.str() == "management_node") {
                loc.management_node = pos_of(val.source());
                if (auto s = string(val, "auth.management_node", "a URL string")) {
                    std::string why;
                    if (!parse_http_url(*s, why)) {
                        err_.add(loc.management_node, "auth.management_node", why);
                    } else {
                        c.auth.management_node = std::string(*s);
                    }
                }
            } else if (const auto* b = std::find_if(
                           kZstackBounds.begin(), kZstackBounds.end(),
                           [name = k.str()](const UnsignedBounds& x) { return x.key == name; });
                       b != kZstackBounds.end()) {
                loc.*(b->pos) = pos_of(val.source());
                const std::string key = "auth." + std::string(b->key);
                const std::string range =
                    "an integer " + std::to_string(b->min) + "-" + std::to_string(b->max);
                if (auto n = integer(val, key, range)) {
                    if (*n < static_cast<std::int64_t>(b->min) ||
                        *n > static_cast<std::int64_t>(b->max)) {
                        err_.add(
                            loc.*(b->pos), key,
                            "out of range (expected " + range + ", got " + describe(val) + ")");
                    } else {
                        c.auth.*(b->field) = static_cast<unsigned>(*n);
                    }
                }
            } else {
                unknown(k, "auth.",
                        {"mode", "tokens_file", "access_keys_file", "management_node",
                         "valid_ttl_seconds", "invalid_ttl_seconds", "validation_timeout_ms",
                         "max_concurrent_validations"});
            }
        }
    }

    void parse_sources(const toml::node& v, Config& c) {
        const auto* t = v.as_table();
        if (t == nullptr) {
            wrong_type(v, "sources", "a table ([sources])");
            return;
        }
        using Req = SourcesConfig::Requirement;
        using Legacy = SourcesConfig::Legacy;
        for (auto&& [k, val] : *t) {
            if (k.str() == "nftables") {
                if (auto i = choice(val, "sources.nftables", {"required", "optional", "off"})) {
                    constexpr std::array<Req, 3> kReq{Req::required, Req::optional, Req::off};
                    c.sources.nftables = kReq.at(*i);
                }
            } else if (k.str() == "iptables_legacy") {
                if (auto i = choice(val, "sources.iptables_legacy", {"auto", "off"})) {
                    c.sources.iptables_legacy = *i == 0 ? Legacy::auto_ : Legacy::off;
                }
            } else if (k.str() == "tcp_bound_inactive") {
                if (const auto* b = val.as_boolean()) {
                    c.sources.tcp_bound_inactive = b->get();
                } else {
                    wrong_type(val, "sources.tcp_bound_inactive", "a boolean (true or false)");
                }
            } else if (k.str() == "coalesce_gap_us" || k.str() == "coalesce_max_us") {
                // Bounded so that a typo cannot park every request for seconds (README).
                const std::string key = "sources." + std::string(k.str());
                const std::string range = "an integer 0-100000";
                if (auto n = integer(val, key, range)) {
                    if (*n < 0 || *n > 100000) {
                        err_.add(
                            pos_of(val.source()), key,
                            "out of range (expected " + range + ", got " + describe(val) + ")");
                    } else if (k.str() == "coalesce_gap_us") {
                        c.sources.coalesce_gap_us = static_cast<std::uint32_t>(*n);
                    } else {
                        c.sources.coalesce_max_us = static_cast<std::uint32_t>(*n);
                    }
                }
            } else {
                unknown(k, "sources.",
                        {"nftables", "iptables_legacy", "tcp_bound_inactive", "coalesce_gap_us",
                         "coalesce_max_us"});
            }
        }
    }

    void parse_http(const toml::node& v, Config& c, Locations& loc) {
        const auto* t = v.as_table();
        if (t == nullptr) {
            wrong_type(v, "http", "a table ([http])");
            return;
        }
        auto& pos = loc.http_tls;
        for (auto&& [k, val] : *t) {
            const std::string key = "http." + std::string(k.str());
            if (k.str() == "rate_limit_per_ip") {
                pos.rate_limit_per_ip = pos_of(val.source());
                if (const auto* i = val.as_integer()) {
                    c.http.rate_limit_per_ip = static_cast<double>(i->get());
                } else if (const auto* f = val.as_floating_point()) {
                    c.http.rate_limit_per_ip = f->get();
                } else {
                    wrong_type(val, key, "a number of requests per second (0: no limit)");
                }
                continue;
            }
            const auto* b =
                std::find_if(kHttpBounds.begin(), kHttpBounds.end(),
                             [name = k.str()](const HttpBounds& x) { return x.key == name; });
            if (b == kHttpBounds.end()) {
                unknown(k, "http.",
                        {"header_limit", "target_limit", "body_limit", "idle_timeout_ms",
                         "request_timeout_ms", "write_timeout_ms", "handshake_timeout_ms",
                         "close_linger_ms", "max_connections", "accept_backoff_ms",
                         "rate_limit_per_ip", "rate_limit_burst"});
                continue;
            }
            const auto index = static_cast<std::size_t>(b - kHttpBounds.begin());
            pos.http_items.at(index) = pos_of(val.source());
            const std::string range =
                "an integer " + std::to_string(b->min) + "-" + std::to_string(b->max);
            if (auto n = integer(val, key, range)) {
                if (*n < 0 || *n > std::int64_t{0xffffffff}) {
                    err_.add(pos.http_items.at(index), key,
                             "out of range (expected " + range + ", got " + describe(val) + ")");
                } else {
                    c.http.*(b->field) = static_cast<std::uint32_t>(*n);
                }
            }
        }
    }

    void parse_tls(const toml::node& v, Config& c, Locations& loc) {
        const auto* t = v.as_table();
        if (t == nullptr) {
            wrong_type(v, "tls", "a table ([tls])");
            return;
        }
        auto& pos = loc.http_tls;
        pos.tls = pos_of(t->source());
        c.tls.enabled = true;
        const auto tls_path = [&](const toml::node& val, std::string_view name,
                                  std::filesystem::path& out, Pos& at) {
            at = pos_of(val.source());
            path(val, "tls." + std::string(name), at, out);
        };
        for (auto&& [k, val] : *t) {
            if (k.str() == "enabled") {
                pos.tls_enabled = pos_of(val.source());
                if (const auto* b = val.as_boolean()) {
                    c.tls.enabled = b->get();
                } else {
                    wrong_type(val, "tls.enabled", "a boolean (true or false)");
                }
            } else if (k.str() == "cert_file") {
                tls_path(val, "cert_file", c.tls.cert_file, pos.cert_file);
            } else if (k.str() == "key_file") {
                tls_path(val, "key_file", c.tls.key_file, pos.key_file);
            } else if (k.str() == "client_ca_file") {
                tls_path(val, "client_ca_file", c.tls.client_ca_file, pos.client_ca_file);
            } else if (k.str() == "allowed_subjects") {
                pos.allowed_subjects = pos_of(val.source());
                const auto* arr = val.as_array();
                if (arr == nullptr) {
                    wrong_type(val, "tls.allowed_subjects", "an array of subject strings");
                    continue;
                }
                for (std::size_t i = 0; i < arr->size(); ++i) {
                    const toml::node& item = *arr->get(i);
                    const std::string key = "tls.allowed_subjects[" + std::to_string(i) + "]";
                    if (auto s = string(item, key, "an RFC 2253 subject string")) {
                        c.tls.allowed_subjects.emplace_back(*s);
                        pos.allowed_subject_items.push_back(pos_of(item.source()));
                    }
                }
            } else if (k.str() == "listeners") {
                pos.listeners = pos_of(val.source());
                const auto* arr = val.as_array();
                if (arr == nullptr) {
                    wrong_type(val, "tls.listeners", "an array of \"host:port\" strings");
                    continue;
                }
                for (std::size_t i = 0; i < arr->size(); ++i) {
                    const toml::node& item = *arr->get(i);
                    const std::string key = "tls.listeners[" + std::to_string(i) + "]";
                    auto s = string(item, key, "a \"host:port\" string");
                    if (!s) {
                        continue;
                    }
                    std::string why;
                    if (auto ep = parse_endpoint(*s, why)) {
                        c.tls.listeners.push_back(*ep);
                        pos.listener_items.push_back(pos_of(item.source()));
                    } else {
                        err_.add(pos_of(item.source()), key, why);
                    }
                }
            } else {
                unknown(k, "tls.",
                        {"enabled", "cert_file", "key_file", "client_ca_file", "allowed_subjects",
                         "listeners"});
            }
        }
    }

    void parse_shutdown_timeout(const toml::node& v, Config& c) {
        constexpr std::string_view expected = "a number of seconds 0-60";
        double seconds = 0;
        if (const auto* i = v.as_integer()) {
            seconds = static_cast<double>(i->get());
        } else if (const auto* f = v.as_floating_point()) {
            seconds = f->get();
        } else {
            return wrong_type(v, "shutdown_timeout", expected);
        }
        // The negated form also rejects NaN.
        if (!(seconds >= 0 && seconds <= kMaxShutdownSeconds)) {
            err_.add(
                pos_of(v.source()), "shutdown_timeout",
                "out of range (expected " + std::string(expected) + ", got " +
                    (v.is_floating_point() ? "number " + std::to_string(seconds) : describe(v)) +
                    ")");
            return;
        }
        c.shutdown_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
    }

    void parse_observability(const toml::node& v, Config& c) {
        const auto* t = v.as_table();
        if (t == nullptr) {
            return wrong_type(v, "observability", "a table ([observability])");
        }
        using Auth = ObservabilityConfig::Auth;
        for (auto&& [k, val] : *t) {
            if (k.str() == "auth") {
                if (auto i = choice(val, "observability.auth", {"loopback", "auth", "open"})) {
                    constexpr std::array<Auth, 3> kAuth{Auth::loopback, Auth::auth, Auth::open};
                    c.observability.auth = kAuth.at(*i);
                }
            } else {
                unknown(k, "observability.", {"auth"});
            }
        }
    }

  public:
    /// A vips_dir drop-in: only [[vip]] tables.
    std::vector<VipEntry> parse_vips_only(const toml::table& root, Config& c, Locations& loc) {
        for (auto&& [k, v] : root) {
            if (k.str() == "vip") {
                parse_vips(v, c, loc);
            } else {
                unknown(k, "", {"vip"});
            }
        }
        err_.throw_if_any();
        return c.vips;
    }

  private:
    Errors err_;
};

}  // namespace

bool ListenEndpoint::is_loopback() const {
    const auto a = address.unmapped();
    if (a.family == netlink::Family::v4) {
        return a.bytes[0] == 127;  // 127.0.0.0/8 (RFC 1122 §3.2.1.3)
    }
    // ::1 (RFC 4291 §2.5.3)
    return std::all_of(a.bytes.begin(), a.bytes.end() - 1, [](std::uint8_t b) { return b == 0; }) &&
           a.bytes[15] == 1;
}

std::string ListenEndpoint::to_string() const {
    const std::string port_text = std::to_string(port);
    if (address.family == netlink::Family::v6) {
        return "[" + address.to_string() + "]:" + port_text;
    }
    return address.to_string() + ":" + port_text;
}

bool TlsConfig::applies_to(const ListenEndpoint& e) const {
    return enabled &&
           (listeners.empty() ||
            std::any_of(listeners.begin(), listeners.end(), [&](const ListenEndpoint& x) {
                return x.address == e.address && x.port == e.port;
            }));
}

std::optional<HttpUrl> parse_http_url(std::string_view text, std::string& why) {
    const auto fail = [&](std::string_view what) {
        why = "bad URL (" + std::string(what) + ", got " + quote(text) + ")";
        return std::nullopt;
    };
    constexpr std::string_view scheme = "http://";
    if (text.starts_with("https://")) {
        return fail("https is not supported; expected \"http://host[:port]\"");
    }
    if (!text.starts_with(scheme)) {
        return fail("expected \"http://host[:port]\"");
    }
    std::string_view rest = text.substr(scheme.size());
    if (rest.find_first_of("?#@") != std::string_view::npos) {
        return fail("expected no user, query or fragment");
    }
    const auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path =
        slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
    HttpUrl url;
    std::string_view port;
    if (authority.starts_with('[')) {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) {
            return fail("unterminated '['");
        }
        const auto a = netlink::InetAddress::parse(authority.substr(1, close - 1));
        if (!a || a->family != netlink::Family::v6) {
            return fail("expected an IPv6 address inside []");
        }
        url.host = std::string(authority.substr(1, close - 1));
        const auto after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                return fail("expected ':' and a port after ']'");
            }
            port = after.substr(1);
            if (port.empty()) {
                return fail("empty port");
            }
        }
    } else {
        const auto colon = authority.find(':');
        url.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) {
            port = authority.substr(colon + 1);
            if (port.empty()) {
                return fail("empty port");
            }
        }
        // A DNS name (RFC 1123 §2.1 letters, digits, '-', '.') or an IPv4 address.
        const bool name_chars = std::all_of(url.host.begin(), url.host.end(), [](char ch) {
            return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || ch == '-' || ch == '.';
        });
        if (url.host.empty() || url.host.size() > 253 || !name_chars) {
            return fail("expected a host name, an IPv4 address or a bracketed IPv6 address");
        }
    }
    if (!port.empty()) {
        std::uint32_t p = 0;
        const bool digits = port.size() <= 5 && std::all_of(port.begin(), port.end(), [](char ch) {
                                return ch >= '0' && ch <= '9';
                            });
        if (digits) {
            for (char ch : port) {
                p = p * 10 + static_cast<std::uint32_t>(ch - '0');
            }
        }
        if (!digits || p == 0 || p > 65535) {
            return fail("expected a port 1-65535");
        }
        url.port = static_cast<std::uint16_t>(p);
    }
    while (path.ends_with('/')) {
        path.remove_suffix(1);
    }
    if (std::any_of(path.begin(), path.end(), [](char ch) {
            const auto u = static_cast<unsigned char>(ch);
            return u <= 0x20 || u >= 0x7f;
        })) {
        return fail("expected a path of printable ASCII without spaces");
    }
    url.path = std::string(path);
    return url;
}

std::optional<std::string> vip_uuid_problem(std::string_view uuid) {
    auto bad = uuid_problem(uuid);
    if (bad.empty()) {
        return std::nullopt;
    }
    return "invalid uuid (" + bad + ")";
}

std::optional<std::string> vip_ip_problem(const netlink::InetAddress& ip) {
    if (ip.is_unspecified()) {
        return "not a VIP (expected a unicast address, got unspecified " + ip.to_string() + ")";
    }
    if (is_multicast(ip)) {
        return "not a VIP (expected a unicast address, got multicast " + ip.to_string() + ")";
    }
    if (ip.is_v4_mapped()) {
        // Sockets and rules name an IPv4 VIP in its IPv4 form; one spelling keeps lookups exact.
        return "v4-mapped address (expected the IPv4 form " + ip.unmapped().to_string() + ", got " +
               ip.to_string() + ")";
    }
    return std::nullopt;
}

std::optional<std::string> vip_netns_problem(std::string_view netns) {
    return netns_problem(netns);
}

Config default_config() {
    Config c;
    constexpr std::uint16_t kDefaultPort = 8080;
    c.listen.push_back({*netlink::InetAddress::parse("127.0.0.1"), kDefaultPort});
    c.listen.push_back({*netlink::InetAddress::parse("::1"), kDefaultPort});
    return c;
}

Config parse_config(std::string_view text, const std::filesystem::path& file) {
    toml::table root;
    try {
        root = toml::parse(text, file.string());
    } catch (const toml::parse_error& e) {
        throw ConfigError(where(file, pos_of(e.source())) + ": " +
                          escape_controls(e.description()));
    }
    Locations loc;
    Config c = Parser(file).parse(root, loc);
    c.source_file = file;
    check(c, &loc);
    return c;
}

Config load_config(const std::filesystem::path& file) {
    const std::string name = file.string();
    struct Closer {
        void operator()(std::FILE* f) const { std::fclose(f); }
    };
    std::unique_ptr<std::FILE, Closer> f(std::fopen(name.c_str(), "rb"));
    if (!f) {
        throw ConfigError(name + ": cannot read: " + errno_text(errno));
    }
    std::string text;
    char buf[8192];
    for (;;) {
        const std::size_t n = std::fread(buf, 1, sizeof buf, f.get());
        text.append(buf, n);
        if (text.size() > kMaxConfigBytes) {
            throw ConfigError(name + ": cannot read: larger than " +
                              std::to_string(kMaxConfigBytes) + " bytes");
        }
        if (n < sizeof buf) {
            if (std::ferror(f.get()) != 0) {
                // fopen() succeeds on a directory; the read then fails with EISDIR.
                throw ConfigError(name + ": cannot read: " + errno_text(errno));
            }
            break;
        }
    }
    return parse_config(text, file);
}

void validate(const Config& c) { check(c, nullptr); }

std::vector<VipEntry> parse_vips_file(std::string_view text, const std::filesystem::path& file) {
    toml::table root;
    try {
        root = toml::parse(text, file.string());
    } catch (const toml::parse_error& e) {
        throw ConfigError(where(file, pos_of(e.source())) + ": " +
                          escape_controls(e.description()));
    }
    Locations loc;
    // The built-in defaults are valid, so check() reports only what the [[vip]] tables add.
    Config c = default_config();
    c.source_file = file;
    auto vips = Parser(file).parse_vips_only(root, c, loc);
    check(c, &loc);
    return vips;
}

std::vector<VipEntry> load_vips_file(const std::filesystem::path& file) {
    const std::string name = file.string();
    std::error_code ec;
    const auto size = std::filesystem::file_size(file, ec);
    if (ec) {
        throw ConfigError(name + ": cannot read: " + ec.message());
    }
    if (size > kMaxConfigBytes) {
        throw ConfigError(name + ": cannot read: larger than " + std::to_string(kMaxConfigBytes) +
                          " bytes");
    }
    std::ifstream in(file, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad() || !in.is_open()) {
        throw ConfigError(name + ": cannot read: " + errno_text(errno));
    }
    return parse_vips_file(text, file);
}

}  // namespace vipportd::agent
