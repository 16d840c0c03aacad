#pragma once
// vipportd configuration: TOML file (--config) or built-in defaults. Parsing errors carry the file,
// line and key, so "vipportd --check-config" can point at the mistake.

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
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
};

struct AuthConfig {
    enum class Mode { none, tokens };
    Mode mode = Mode::none;
    std::filesystem::path tokens_file;  // mode == tokens
};

/// [sources]: how each rule source participates (sockets are always read).
struct SourcesConfig {
    enum class Requirement { required, optional, off };
    Requirement nftables = Requirement::required;
    enum class Legacy { auto_, off };
    Legacy iptables_legacy = Legacy::auto_;
    bool tcp_bound_inactive = true;  // count bound-but-not-listening TCP sockets (kernel >= 6.8)
};

struct Config {
    std::vector<ListenEndpoint> listen;  // default 127.0.0.1:8080 and [::1]:8080
    std::vector<VipEntry> vips;
    AuthConfig auth;
    SourcesConfig sources;
    unsigned http_threads = 2;
    std::string log_level = "info";
    std::filesystem::path source_file;  // empty for built-in defaults
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

}  // namespace vipportd::agent
