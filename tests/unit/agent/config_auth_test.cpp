// [auth] keys of mode "zstack" and the AccessKey file: values, ranges, cross-mode checks, and
// parse_http_url, with the exact FILE:LINE:COL: key '...' messages.

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/config.hpp"

namespace vipportd::agent {
namespace {

using ::testing::HasSubstr;

const std::filesystem::path kFile = "/etc/vipportd/t.toml";

std::string error_of(std::string_view text) {
    try {
        (void)parse_config(text, kFile);
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

// Line 1: a public listener (auth none is then refused); line 2: [auth].
std::string auth(std::string_view body) {
    return "listen = [\"192.0.2.1:8080\"]\n[auth]\n" + std::string(body);
}

TEST(ConfigAuthZstack, FullSection) {
    const auto c = parse_config(auth("mode = \"zstack\"\n"
                                     "management_node = \"http://192.168.0.10:8080\"\n"
                                     "valid_ttl_seconds = 120\n"
                                     "invalid_ttl_seconds = 0\n"
                                     "validation_timeout_ms = 1500\n"
                                     "max_concurrent_validations = 8\n"
                                     "access_keys_file = \"/etc/vipportd/access-keys\"\n"),
                                kFile);
    EXPECT_EQ(c.auth.mode, AuthConfig::Mode::zstack);
    EXPECT_EQ(c.auth.management_node, "http://192.168.0.10:8080");
    EXPECT_EQ(c.auth.valid_ttl_seconds, 120U);
    EXPECT_EQ(c.auth.invalid_ttl_seconds, 0U);
    EXPECT_EQ(c.auth.validation_timeout_ms, 1500U);
    EXPECT_EQ(c.auth.max_concurrent_validations, 8U);
    EXPECT_EQ(c.auth.access_keys_file, "/etc/vipportd/access-keys");
}

TEST(ConfigAuthZstack, Defaults) {
    const auto c =
        parse_config(auth("mode = \"zstack\"\nmanagement_node = \"http://mn\"\n"), kFile);
    EXPECT_EQ(c.auth.valid_ttl_seconds, 60U);
    EXPECT_EQ(c.auth.invalid_ttl_seconds, 10U);
    EXPECT_EQ(c.auth.validation_timeout_ms, 3000U);
    EXPECT_EQ(c.auth.max_concurrent_validations, 4U);
    EXPECT_TRUE(c.auth.access_keys_file.empty());
}

TEST(ConfigAuthZstack, ManagementNodeIsRequiredAndValid) {
    EXPECT_EQ(error_of(auth("mode = \"zstack\"\n")),
              "/etc/vipportd/t.toml:3:8: key 'auth.management_node': missing (expected a URL such "
              "as \"http://192.168.0.10:8080\" when auth.mode = \"zstack\")");
    EXPECT_EQ(error_of(auth("mode = \"zstack\"\nmanagement_node = \"https://mn:8443\"\n")),
              "/etc/vipportd/t.toml:4:19: key 'auth.management_node': bad URL (https is not "
              "supported; expected \"http://host[:port]\", got \"https://mn:8443\")");
    EXPECT_EQ(error_of(auth("mode = \"zstack\"\nmanagement_node = \"http://mn:0\"\n")),
              "/etc/vipportd/t.toml:4:19: key 'auth.management_node': bad URL (expected a port "
              "1-65535, got \"http://mn:0\")");
    EXPECT_EQ(error_of(auth("mode = \"zstack\"\nmanagement_node = 8080\n")),
              "/etc/vipportd/t.toml:4:19: key 'auth.management_node': wrong type (expected a URL "
              "string, got integer 8080)");
}

TEST(ConfigAuthZstack, RangesAreChecked) {
    const std::string base = "mode = \"zstack\"\nmanagement_node = \"http://mn\"\n";
    EXPECT_EQ(error_of(auth(base + "valid_ttl_seconds = 3601\n")),
              "/etc/vipportd/t.toml:5:21: key 'auth.valid_ttl_seconds': out of range (expected an "
              "integer 0-3600, got integer 3601)");
    EXPECT_EQ(error_of(auth(base + "invalid_ttl_seconds = -1\n")),
              "/etc/vipportd/t.toml:5:23: key 'auth.invalid_ttl_seconds': out of range (expected "
              "an integer 0-3600, got integer -1)");
    EXPECT_EQ(error_of(auth(base + "validation_timeout_ms = 99\n")),
              "/etc/vipportd/t.toml:5:25: key 'auth.validation_timeout_ms': out of range "
              "(expected an integer 100-60000, got integer 99)");
    EXPECT_EQ(error_of(auth(base + "max_concurrent_validations = 0\n")),
              "/etc/vipportd/t.toml:5:30: key 'auth.max_concurrent_validations': out of range "
              "(expected an integer 1-64, got integer 0)");
    EXPECT_EQ(error_of(auth(base + "max_concurrent_validations = \"4\"\n")),
              "/etc/vipportd/t.toml:5:30: key 'auth.max_concurrent_validations': wrong type "
              "(expected an integer 1-64, got string \"4\")");
}

TEST(ConfigAuthZstack, KeysOfOtherModesAreRefused) {
    EXPECT_EQ(error_of(auth("mode = \"tokens\"\ntokens_file = \"/t\"\n"
                            "management_node = \"http://mn\"\nvalid_ttl_seconds = 5\n")),
              "/etc/vipportd/t.toml:5:19: key 'auth.management_node': set but unused (expected "
              "auth.mode = \"zstack\", got auth.mode \"tokens\")\n"
              "/etc/vipportd/t.toml:6:21: key 'auth.valid_ttl_seconds': set but unused (expected "
              "auth.mode = \"zstack\", got auth.mode \"tokens\")");
    EXPECT_EQ(error_of(auth("mode = \"zstack\"\nmanagement_node = \"http://mn\"\n"
                            "tokens_file = \"/t\"\n")),
              "/etc/vipportd/t.toml:5:15: key 'auth.tokens_file': set but unused (expected "
              "auth.mode = \"tokens\", got auth.mode \"zstack\")");
}

TEST(ConfigAuthAccessKeys, AllowedWithTokensAndZstackOnly) {
    const auto c = parse_config(
        auth("mode = \"tokens\"\ntokens_file = \"/t\"\naccess_keys_file = \"/k\"\n"), kFile);
    EXPECT_EQ(c.auth.access_keys_file, "/k");
    EXPECT_THAT(error_of("listen = [\"127.0.0.1:1\"]\n[auth]\naccess_keys_file = \"/k\"\n"),
                HasSubstr("t.toml:3:20: key 'auth.access_keys_file': set but unused (expected "
                          "auth.mode = \"tokens\" or \"zstack\", got auth.mode \"none\")"));
    EXPECT_EQ(error_of(auth("mode = \"tokens\"\ntokens_file = \"/t\"\naccess_keys_file = \"k\"\n")),
              "/etc/vipportd/t.toml:5:20: key 'auth.access_keys_file': relative path (expected an "
              "absolute path, got \"k\")");
    EXPECT_EQ(error_of(auth("mode = \"tokens\"\ntokens_file = \"/t\"\naccess_keys_file = \"\"\n")),
              "/etc/vipportd/t.toml:5:20: key 'auth.access_keys_file': empty path (expected an "
              "absolute path, got \"\")");
}

TEST(ConfigAuth, UnknownKeyListsTheNewOnes) {
    EXPECT_THAT(error_of(auth(
                    "mode = \"zstack\"\nmanagement_node = \"http://mn\"\nvalid_ttl_secnds = 1\n")),
                HasSubstr("t.toml:5:1: key 'auth.valid_ttl_secnds': unknown key, did you mean "
                          "'valid_ttl_seconds'?"));
}

TEST(ConfigAuth, ValidateChecksTheSameRules) {
    Config c = default_config();
    c.auth.mode = AuthConfig::Mode::zstack;
    EXPECT_THROW(validate(c), ConfigError);  // no management_node
    c.auth.management_node = "http://[::1]:8080/zstack-mn";
    EXPECT_NO_THROW(validate(c));
    c.auth.max_concurrent_validations = 65;
    EXPECT_THROW(validate(c), ConfigError);
}

TEST(HttpUrl, Parses) {
    std::string why;
    auto u = parse_http_url("http://192.168.0.10:8080", why);
    ASSERT_TRUE(u);
    EXPECT_EQ(u->host, "192.168.0.10");
    EXPECT_EQ(u->port, 8080);
    EXPECT_EQ(u->path, "");
    u = parse_http_url("http://[fd00::1]/base/", why);
    ASSERT_TRUE(u);
    EXPECT_EQ(u->host, "fd00::1");
    EXPECT_EQ(u->port, 80);
    EXPECT_EQ(u->path, "/base");
    u = parse_http_url("http://mn.example-1.local:1", why);
    ASSERT_TRUE(u);
    EXPECT_EQ(u->host, "mn.example-1.local");
    EXPECT_EQ(u->port, 1);
}

TEST(HttpUrl, Refuses) {
    for (const char* bad :
         {"", "mn:8080", "HTTP://mn", "http://", "http://:80", "http://mn:", "http://mn:65536",
          "http://mn:8x", "http://user@mn", "http://mn/?q", "http://mn/#f", "http://[::1",
          "http://[1.2.3.4]", "http://[::1]x", "http://m_n", "http://mn/a b", "https://mn"}) {
        std::string why;
        EXPECT_FALSE(parse_http_url(bad, why)) << bad;
        EXPECT_THAT(why, HasSubstr("bad URL (")) << bad;
    }
}

}  // namespace
}  // namespace vipportd::agent
