#include "agent/config.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <initializer_list>
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

/// Source positions of the parsed values, index-aligned with Config's vectors, so that the
/// cross-field checks in check() can point at the offending line. Absent for validate().
struct Locations {
    Pos listen;                     // the listen array (or nullopt when defaulted)
    std::vector<Pos> listen_items;  // one per Config::listen entry
    Pos http_threads;
    Pos log_level;
    std::vector<Pos> vip_uuid;  // one per Config::vips entry
    std::vector<Pos> vip_ip;
    Pos auth;  // the [auth] table
    Pos auth_mode;
    Pos tokens_file;
};

/// Collects "FILE:LINE:COL: key 'k': what" lines; throws them all at once.
class Errors {
  public:
    explicit Errors(std::filesystem::path file) : file_(std::move(file)) {}

    void add(const Pos& pos, std::string_view key, std::string_view what) {
        lines_.push_back(
            {pos ? pos->line : 0U, pos ? pos->column : 0U,
             where(file_, pos) + ": key '" + std::string(key) + "': " + std::string(what)});
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
        std::string bad;
        if (v.uuid.empty()) {
            bad = "expected a non-empty string";
        } else if (v.uuid.size() > kMaxUuidLength) {
            bad = "expected at most 255 characters, got " + std::to_string(v.uuid.size());
        } else if (v.uuid.find('/') != std::string::npos) {
            // The uuid is one path segment of /zstack/v1/vips/{uuid}/usedports.
            bad = "expected no '/', got " + quote(v.uuid);
        } else if (std::any_of(v.uuid.begin(), v.uuid.end(), [](char ch) {
                       const auto u = static_cast<unsigned char>(ch);
                       return u < 0x20 || u == 0x7f;
                   })) {
            bad = "expected no control characters, got " + quote(v.uuid);
        } else if (v.uuid.front() == ' ' || v.uuid.back() == ' ') {
            // ZStack trims the path parameter (zstack-api.md §2.1), so such a uuid never matches.
            bad = "expected no leading or trailing spaces, got " + quote(v.uuid);
        }
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
        if (v.ip.is_unspecified()) {
            err.add(
                ipos, prefix + "ip",
                "not a VIP (expected a unicast address, got unspecified " + v.ip.to_string() + ")");
        } else if (is_multicast(v.ip)) {
            err.add(
                ipos, prefix + "ip",
                "not a VIP (expected a unicast address, got multicast " + v.ip.to_string() + ")");
        } else if (v.ip.is_v4_mapped()) {
            // Sockets and rules name an IPv4 VIP in its IPv4 form; one spelling keeps lookups
            // exact.
            err.add(ipos, prefix + "ip",
                    "v4-mapped address (expected the IPv4 form " + v.ip.unmapped().to_string() +
                        ", got " + v.ip.to_string() + ")");
        }
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
    } else if (c.auth.tokens_file.empty()) {
        err.add(mode_pos, "auth.tokens_file",
                "missing (expected a path when auth.mode = \"tokens\")");
    } else if (!c.auth.tokens_file.is_absolute()) {
        // The daemon's working directory is "/" under systemd; a relative path would silently
        // mean something else when run by hand.
        err.add(l.tokens_file, "auth.tokens_file",
                "relative path (expected an absolute path, got " +
                    quote(c.auth.tokens_file.string()) + ")");
    }

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
            } else {
                unknown(k, "", {"listen", "http_threads", "log_level", "vip", "auth", "sources"});
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
                } else {
                    unknown(k, prefix + ".", {"uuid", "ip"});
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
                c.vips.push_back(VipEntry{*uuid, *ip});
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
                if (auto i = choice(val, "auth.mode", {"none", "tokens"})) {
                    c.auth.mode = *i == 0 ? AuthConfig::Mode::none : AuthConfig::Mode::tokens;
                }
            } else if (k.str() == "tokens_file") {
                loc.tokens_file = pos_of(val.source());
                if (auto s = string(val, "auth.tokens_file", "a path string")) {
                    if (s->empty()) {
                        err_.add(loc.tokens_file, "auth.tokens_file",
                                 "empty path (expected an absolute path, got \"\")");
                    } else {
                        c.auth.tokens_file = std::filesystem::path(std::string(*s));
                    }
                }
            } else {
                unknown(k, "auth.", {"mode", "tokens_file"});
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
            } else {
                unknown(k, "sources.", {"nftables", "iptables_legacy", "tcp_bound_inactive"});
            }
        }
    }

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
        throw ConfigError(where(file, pos_of(e.source())) + ": " + std::string(e.description()));
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

}  // namespace vipportd::agent
