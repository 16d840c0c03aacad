// [http] and [tls] sections: values, defaults, and errors as "FILE:LINE:COL: key 'k': what".

#include <fstream>
#include <iterator>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/config.hpp"

namespace vipportd::agent {
namespace {

using ::testing::HasSubstr;

const std::filesystem::path kFile = "/etc/vipportd/h.toml";

std::string error_of(std::string_view text) {
    try {
        (void)parse_config(text, kFile);
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

const std::string kLo = "listen = [\"127.0.0.1:8080\", \"[::1]:8443\"]\n";

ListenEndpoint ep(const char* a, std::uint16_t port) {
    return ListenEndpoint{*netlink::InetAddress::parse(a), port};
}

TEST(ConfigHttp, DefaultsWhenAbsent) {
    const Config c = parse_config(kLo, kFile);
    const HttpConfig d;
    EXPECT_EQ(c.http.header_limit, 8192U);
    EXPECT_EQ(c.http.target_limit, 4096U);
    EXPECT_EQ(c.http.body_limit, 1024U);
    EXPECT_EQ(c.http.idle_timeout_ms, 30000U);
    EXPECT_EQ(c.http.request_timeout_ms, 10000U);
    EXPECT_EQ(c.http.max_connections, 256U);
    EXPECT_EQ(c.http.rate_limit_per_ip, 0.0);
    EXPECT_EQ(c.http.rate_limit_burst, d.rate_limit_burst);
    EXPECT_FALSE(c.tls.enabled);
    EXPECT_NO_THROW(validate(default_config()));
}

TEST(ConfigHttp, EveryKeyIsRead) {
    const Config c = parse_config(kLo + R"([http]
header_limit = 4096
target_limit = 2048
body_limit = 0
idle_timeout_ms = 5000
request_timeout_ms = 3000
write_timeout_ms = 4000
handshake_timeout_ms = 2000
close_linger_ms = 0
max_connections = 4000
accept_backoff_ms = 50
rate_limit_per_ip = 2.5
rate_limit_burst = 5
)",
                                  kFile);
    EXPECT_EQ(c.http.header_limit, 4096U);
    EXPECT_EQ(c.http.target_limit, 2048U);
    EXPECT_EQ(c.http.body_limit, 0U);
    EXPECT_EQ(c.http.idle_timeout_ms, 5000U);
    EXPECT_EQ(c.http.request_timeout_ms, 3000U);
    EXPECT_EQ(c.http.write_timeout_ms, 4000U);
    EXPECT_EQ(c.http.handshake_timeout_ms, 2000U);
    EXPECT_EQ(c.http.close_linger_ms, 0U);
    EXPECT_EQ(c.http.max_connections, 4000U);
    EXPECT_EQ(c.http.accept_backoff_ms, 50U);
    EXPECT_EQ(c.http.rate_limit_per_ip, 2.5);
    EXPECT_EQ(c.http.rate_limit_burst, 5U);

    EXPECT_EQ(parse_config(kLo + "[http]\nrate_limit_per_ip = 3\n", kFile).http.rate_limit_per_ip,
              3.0);
}

TEST(ConfigHttp, ErrorsNameFileLineAndKey) {
    EXPECT_EQ(error_of(kLo + "[http]\nheader_limit = 100\n"),
              "/etc/vipportd/h.toml:3:16: key 'http.header_limit': out of range (expected an "
              "integer 1024-65536, got 100)");
    EXPECT_EQ(error_of(kLo + "[http]\nmax_connections = -1\n"),
              "/etc/vipportd/h.toml:3:19: key 'http.max_connections': out of range (expected an "
              "integer 1-1000000, got integer -1)");
    EXPECT_EQ(error_of(kLo + "[http]\nidle_timeout_ms = \"30s\"\n"),
              "/etc/vipportd/h.toml:3:19: key 'http.idle_timeout_ms': wrong type (expected an "
              "integer 100-3600000, got string \"30s\")");
    EXPECT_EQ(error_of(kLo + "[http]\nrate_limit_per_ip = -1.5\n"),
              "/etc/vipportd/h.toml:3:21: key 'http.rate_limit_per_ip': out of range (expected 0 "
              "(no limit) to 1000000 requests per second, got -1.500000)");
    EXPECT_EQ(error_of(kLo + "[http]\nrate_limit_per_ip = true\n"),
              "/etc/vipportd/h.toml:3:21: key 'http.rate_limit_per_ip': wrong type (expected a "
              "number of requests per second (0: no limit), got boolean true)");
    EXPECT_EQ(error_of(kLo + "[http]\nheader_limit = 4096\ntarget_limit = 4096\n"),
              "/etc/vipportd/h.toml:4:16: key 'http.target_limit': not below http.header_limit "
              "(expected less than 4096, got 4096)");
    EXPECT_EQ(error_of(kLo + "[http]\nheader_limt = 4096\n"),
              "/etc/vipportd/h.toml:3:1: key 'http.header_limt': unknown key, did you mean "
              "'header_limit'? (expected one of: header_limit, target_limit, body_limit, "
              "idle_timeout_ms, request_timeout_ms, write_timeout_ms, handshake_timeout_ms, "
              "close_linger_ms, max_connections, accept_backoff_ms, rate_limit_per_ip, "
              "rate_limit_burst)");
    EXPECT_EQ(error_of(kLo + "http = 5\n"),
              "/etc/vipportd/h.toml:2:8: key 'http': wrong type (expected a table ([http]), got "
              "integer 5)");
    // Several mistakes are reported together, in file order.
    const std::string two = error_of(kLo + "[http]\nbody_limit = 2000000\nrate_limit_burst = 0\n");
    EXPECT_THAT(two, HasSubstr(":3:14: key 'http.body_limit'"));
    EXPECT_THAT(two, HasSubstr("\n/etc/vipportd/h.toml:4:20: key 'http.rate_limit_burst'"));
}

TEST(ConfigHttp, ValidateChecksRangesWithoutPositions) {
    Config c = default_config();
    c.http.request_timeout_ms = 0;
    try {
        validate(c);
        FAIL() << "validate accepted request_timeout_ms = 0";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "<config>: key 'http.request_timeout_ms': out of range (expected an integer "
                  "100-600000, got 0)");
    }
}

TEST(ConfigTls, FullSection) {
    const Config c = parse_config(kLo + R"([tls]
cert_file = "/etc/vipportd/tls/server.crt"
key_file = "/etc/vipportd/tls/server.key"
client_ca_file = "/etc/vipportd/tls/ca.crt"
allowed_subjects = ["CN=zstack-mn,O=Example", "CN=backup-mn"]
listeners = ["[::1]:8443"]
)",
                                  kFile);
    EXPECT_TRUE(c.tls.enabled);
    EXPECT_EQ(c.tls.cert_file, "/etc/vipportd/tls/server.crt");
    EXPECT_EQ(c.tls.key_file, "/etc/vipportd/tls/server.key");
    EXPECT_EQ(c.tls.client_ca_file, "/etc/vipportd/tls/ca.crt");
    EXPECT_EQ(c.tls.allowed_subjects,
              (std::vector<std::string>{"CN=zstack-mn,O=Example", "CN=backup-mn"}));
    ASSERT_EQ(c.tls.listeners.size(), 1U);
    EXPECT_TRUE(c.tls.applies_to(ep("::1", 8443)));
    EXPECT_FALSE(c.tls.applies_to(ep("127.0.0.1", 8080)));
}

TEST(ConfigTls, WithoutListenersEveryListenerSpeaksTls) {
    const Config c =
        parse_config(kLo + "[tls]\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"\n", kFile);
    EXPECT_TRUE(c.tls.applies_to(ep("::1", 8443)));
    EXPECT_TRUE(c.tls.applies_to(ep("127.0.0.1", 8080)));
    EXPECT_TRUE(c.tls.client_ca_file.empty());
}

TEST(ConfigTls, DisabledTableIsIgnored) {
    const Config c =
        parse_config(kLo + "[tls]\nenabled = false\ncert_file = \"relative\"\n", kFile);
    EXPECT_FALSE(c.tls.enabled);
    EXPECT_FALSE(c.tls.applies_to(ep("127.0.0.1", 8080)));
}

TEST(ConfigTls, Errors) {
    EXPECT_EQ(error_of(kLo + "[tls]\nkey_file = \"/k.pem\"\n"),
              "/etc/vipportd/h.toml:2:1: key 'tls.cert_file': missing (expected an absolute "
              "path to a PEM file when [tls] is enabled)");
    EXPECT_EQ(error_of(kLo + "[tls]\ncert_file = \"c.pem\"\nkey_file = \"/k.pem\"\n"),
              "/etc/vipportd/h.toml:3:13: key 'tls.cert_file': relative path (expected an "
              "absolute path, got \"c.pem\")");
    const std::string base = kLo + "[tls]\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"\n";
    EXPECT_EQ(error_of(base + "allowed_subjects = [\"CN=x\"]\n"),
              "/etc/vipportd/h.toml:5:20: key 'tls.allowed_subjects': set but unused (expected "
              "tls.client_ca_file too: subjects are checked on verified client certificates)");
    EXPECT_EQ(error_of(base + "client_ca_file = \"/ca.pem\"\nallowed_subjects = [\"\"]\n"),
              "/etc/vipportd/h.toml:6:21: key 'tls.allowed_subjects[0]': empty subject (expected "
              "an RFC 2253 subject such as \"CN=zstack-mn,O=Example\")");
    EXPECT_EQ(error_of(base + "listeners = [\"10.0.0.1:8443\"]\n"),
              "/etc/vipportd/h.toml:5:14: key 'tls.listeners[0]': not a listener (expected one "
              "of listen, got 10.0.0.1:8443)");
    EXPECT_EQ(error_of(base + "listeners = []\n"),
              "/etc/vipportd/h.toml:5:13: key 'tls.listeners': empty (expected at least one "
              "\"host:port\" of listen; omit the key for all listeners)");
    EXPECT_EQ(error_of(base + "listeners = [\"127.0.0.1:8080\", \"127.0.0.1:8080\"]\n"),
              "/etc/vipportd/h.toml:5:32: key 'tls.listeners[1]': duplicate (expected each "
              "listener once, got 127.0.0.1:8080 again)");
    EXPECT_THAT(error_of(base + "listeners = [\"localhost:8080\"]\n"),
                HasSubstr(":5:14: key 'tls.listeners[0]': bad address"));
    EXPECT_EQ(error_of(base + "cert_fil = \"/x\"\n"),
              "/etc/vipportd/h.toml:5:1: key 'tls.cert_fil': unknown key, did you mean "
              "'cert_file'? (expected one of: enabled, cert_file, key_file, client_ca_file, "
              "allowed_subjects, listeners)");
    // A target limit at or above a (valid) header limit given alone points at the latter.
    EXPECT_EQ(error_of(kLo + "[http]\nheader_limit = 4096\n"),
              "/etc/vipportd/h.toml:3:16: key 'http.target_limit': not below http.header_limit "
              "(expected less than 4096, got 4096)");
    EXPECT_EQ(error_of(base + "enabled = \"yes\"\n"),
              "/etc/vipportd/h.toml:5:11: key 'tls.enabled': wrong type (expected a boolean (true "
              "or false), got string \"yes\")");
}

/// The shipped example sets [http] to the defaults and documents every [http] and [tls] key.
TEST(ConfigHttp, ShippedExampleDocumentsTheKeys) {
    const std::filesystem::path example = VIPPORTD_SOURCE_DIR "/systemd/vipportd.toml";
    const Config c = load_config(example);
    const HttpConfig d;
    EXPECT_EQ(c.http.header_limit, d.header_limit);
    EXPECT_EQ(c.http.max_connections, d.max_connections);
    EXPECT_EQ(c.http.rate_limit_per_ip, d.rate_limit_per_ip);
    EXPECT_FALSE(c.tls.enabled);
    std::ifstream in(example);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (const char* key :
         {"[http]", "header_limit =", "target_limit =", "body_limit =", "request_timeout_ms =",
          "idle_timeout_ms =", "write_timeout_ms =", "handshake_timeout_ms =", "close_linger_ms =",
          "max_connections =", "accept_backoff_ms =", "rate_limit_per_ip =", "rate_limit_burst =",
          "[tls]",
          "cert_file =", "key_file =", "client_ca_file =", "allowed_subjects =", "listeners ="}) {
        EXPECT_THAT(text, HasSubstr(key));
    }
}

}  // namespace
}  // namespace vipportd::agent
