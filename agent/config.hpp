#pragma once
// vipportd configuration: TOML file (--config) or built-in defaults. Parsing errors carry the file,
// line and key, so "vipportd --check-config" can point at the mistake.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "netlink/inet_address.hpp"

namespace vipportd::agent {

struct ListenEndpoint {
    netlink::InetAddress address;
    std::uint16_t port = 0;
    [[nodiscard]] bool is_loopback() const;
    [[nodiscard]] std::string to_string() const;  // "127.0.0.1:8080", "[::1]:8080"
};

struct VipEntry {
    std::string uuid;
    netlink::InetAddress ip;
    /// The network namespace the VIP lives in: "" for the daemon's own, a name for
    /// /run/netns/<name> (ip netns), or an absolute path to a namespace file.
    std::string netns{};
};

struct AuthConfig {
    enum class Mode { none, tokens, zstack };
    Mode mode = Mode::none;
    std::filesystem::path tokens_file;  // mode == tokens
    /// Optional in modes tokens and zstack: AccessKey pairs for "Authorization: ZStack id:sig".
    std::filesystem::path access_keys_file;
    /// mode == zstack: the management node, "http://host[:port][/prefix]" (parse_http_url), and
    /// how its session validations are cached, bounded and timed out.
    std::string management_node;
    unsigned valid_ttl_seconds = 60;    // a session the node called valid; 0: never cached
    unsigned invalid_ttl_seconds = 10;  // a session the node called invalid; 0: never cached
    unsigned validation_timeout_ms = 3000;
    unsigned max_concurrent_validations = 4;
};

/// A management-node URL: "http://" host [":" port] [path], host an IPv4 address, a bracketed
/// IPv6 address or a DNS name; port defaults to 80; path has no trailing '/' ("" for none).
struct HttpUrl {
    std::string host;  // without brackets
    std::uint16_t port = 80;
    std::string path;
};
/// Parses text as above; on failure returns nullopt and sets why (for a config message).
std::optional<HttpUrl> parse_http_url(std::string_view text, std::string& why);

/// [sources]: how each rule source participates (sockets are always read).
struct SourcesConfig {
    enum class Requirement { required, optional, off };
    Requirement nftables = Requirement::required;
    enum class Legacy { auto_, off };
    Legacy iptables_legacy = Legacy::auto_;
    bool tcp_bound_inactive = false;  // count bound-but-not-listening TCP sockets (kernel >= 6.8)
    // Under concurrent load, wait for a burst of requests to finish arriving before scanning
    // (SnapshotService::set_coalescing): at most gap after the last arrival, max in all.
    // coalesce_gap_us = 0 turns it off.
    std::uint32_t coalesce_gap_us = 100;
    std::uint32_t coalesce_max_us = 1000;
};

/// [http]: limits and timeouts of the HTTP server (README "HTTP limits"; bounds in config.cpp).
struct HttpConfig {
    std::uint32_t header_limit = 8192;         // request line + fields; larger: 431
    std::uint32_t target_limit = 4096;         // request target; longer: 414
    std::uint32_t body_limit = 1024;           // any body (GET/HEAD: none at all); larger: 413
    std::uint32_t idle_timeout_ms = 30000;     // keep-alive wait for the next request; silent close
    std::uint32_t request_timeout_ms = 10000;  // first byte to end of request; 408 then close
    std::uint32_t write_timeout_ms = 10000;    // one response
    std::uint32_t handshake_timeout_ms = 10000;  // TLS handshake
    std::uint32_t close_linger_ms = 2000;        // lingering close after the last response
    std::uint32_t max_connections = 256;         // per http::Server; beyond: closed at accept
    std::uint32_t accept_backoff_ms = 200;       // pause after EMFILE/ENFILE and other errors
    double rate_limit_per_ip = 0;                // requests/s per client address; 0: off
    std::uint32_t rate_limit_burst = 20;         // requests allowed at once above the rate
};

/// [tls]: optional TLS (and mTLS) on some or all listeners.
struct TlsConfig {
    bool enabled = false;                       // a [tls] table is present
    std::filesystem::path cert_file;            // PEM, server certificate (then its chain)
    std::filesystem::path key_file;             // PEM, unencrypted private key
    std::filesystem::path client_ca_file;       // PEM CAs; set: clients must present a certificate
    std::vector<std::string> allowed_subjects;  // RFC 2253 subjects; empty: any verified client
    std::vector<ListenEndpoint> listeners;      // which of `listen` speak TLS; empty: all of them
    /// True when endpoint e of the configuration speaks TLS.
    [[nodiscard]] bool applies_to(const ListenEndpoint& e) const;
};

/// [observability]: who may GET /readyz, /version and /metrics (/healthz is always open).
struct ObservabilityConfig {
    enum class Auth {
        loopback,  // no token on loopback listeners, [auth] on the others (default)
        auth,      // [auth] on every listener
        open,      // no token on any listener
    };
    Auth auth = Auth::loopback;
};

enum class LogFormat { text, json };

struct Config {
    std::vector<ListenEndpoint> listen;  // default 127.0.0.1:8080 and [::1]:8080
    std::vector<VipEntry> vips;
    AuthConfig auth;
    SourcesConfig sources;
    HttpConfig http;
    TlsConfig tls;
    unsigned http_threads = 2;
    std::string log_level = "info";
    std::filesystem::path source_file;  // empty for built-in defaults
    // Service operations.
    LogFormat log_format = LogFormat::text;
    std::filesystem::path vips_dir;  // drop-in *.toml files with [[vip]] tables; empty: none
    /// Where VIPs registered through the API persist (vips.json); empty: registration disabled.
    /// systemd's StateDirectory=vipportd.
    std::filesystem::path state_dir = "/var/lib/vipportd";
    std::chrono::milliseconds shutdown_timeout{std::chrono::seconds(10)};  // SIGTERM drain bound
    ObservabilityConfig observability;
};

class ConfigError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;  // message: "FILE:LINE: key 'k': what is wrong"
};

/// The built-in default: listen on 127.0.0.1:8080 and [::1]:8080, no VIPs, auth none.
Config default_config();
/// Reads and validates a TOML file; throws ConfigError with file, line and key.
Config load_config(const std::filesystem::path& file);
/// Same, from text (file is used only in messages).
Config parse_config(std::string_view text, const std::filesystem::path& file);
/// Cross-field checks that need no I/O (auth none only on loopback, unique uuids, ...).
void validate(const Config& c);

/// The [[vip]] rules, for VIPs that come from elsewhere (the registration API): why the value is
/// unusable ("invalid uuid (expected no '/', got \"a/b\")"), or nullopt when it is fine.
std::optional<std::string> vip_uuid_problem(std::string_view uuid);
std::optional<std::string> vip_ip_problem(const netlink::InetAddress& ip);
std::optional<std::string> vip_netns_problem(std::string_view netns);

/// A vips_dir drop-in file: only [[vip]] tables, checked like the main file's (uuid and ip rules,
/// duplicates within the file). Throws ConfigError with file, line and key.
std::vector<VipEntry> parse_vips_file(std::string_view text, const std::filesystem::path& file);
std::vector<VipEntry> load_vips_file(const std::filesystem::path& file);

}  // namespace vipportd::agent
