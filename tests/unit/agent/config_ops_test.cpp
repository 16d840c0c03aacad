// The service-operations keys of the configuration: log_format, vips_dir, shutdown_timeout,
// [observability]; errors carry FILE:LINE:COL like every other key.
#include <string>

#include <gtest/gtest.h>

#include "agent/config.hpp"

namespace vipportd::agent {
namespace {

const std::filesystem::path kFile = "/etc/vipportd/ops.toml";
constexpr std::string_view kLo = "listen = [\"127.0.0.1:8080\"]\n";

std::string error_of(const std::string& text) {
    try {
        (void)parse_config(std::string(kLo) + text, kFile);
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

TEST(ConfigOps, Defaults) {
    const Config c = default_config();
    EXPECT_EQ(c.log_format, LogFormat::text);
    EXPECT_TRUE(c.vips_dir.empty());
    EXPECT_EQ(c.shutdown_timeout, std::chrono::seconds(10));
    EXPECT_EQ(c.observability.auth, ObservabilityConfig::Auth::loopback);
}

TEST(ConfigOps, FixtureParses) {
    const Config c = load_config(std::string(VIPPORTD_FIXTURES) + "/config/ops.toml");
    EXPECT_EQ(c.log_format, LogFormat::json);
    EXPECT_EQ(c.vips_dir, "/etc/vipportd/vips.d");
    EXPECT_EQ(c.shutdown_timeout, std::chrono::milliseconds(2500));
    EXPECT_EQ(c.observability.auth, ObservabilityConfig::Auth::auth);
}

TEST(ConfigOps, IntegerSecondsAndOpen) {
    const Config c = parse_config(
        std::string(kLo) + "shutdown_timeout = 0\n[observability]\nauth = \"open\"\n", kFile);
    EXPECT_EQ(c.shutdown_timeout, std::chrono::milliseconds(0));
    EXPECT_EQ(c.observability.auth, ObservabilityConfig::Auth::open);
}

TEST(ConfigOps, ErrorsNameFileLineAndKey) {
    EXPECT_EQ(error_of("log_format = \"xml\"\n"),
              "/etc/vipportd/ops.toml:2:14: key 'log_format': bad value (expected one of "
              "\"text\", \"json\", got string \"xml\")");
    EXPECT_EQ(error_of("vips_dir = \"vips.d\"\n"),
              "/etc/vipportd/ops.toml:2:12: key 'vips_dir': relative path (expected an absolute "
              "path, got \"vips.d\")");
    EXPECT_EQ(error_of("vips_dir = \"\"\n"),
              "/etc/vipportd/ops.toml:2:12: key 'vips_dir': empty path (expected an absolute "
              "path, got \"\")");
    EXPECT_EQ(error_of("shutdown_timeout = 61\n"),
              "/etc/vipportd/ops.toml:2:20: key 'shutdown_timeout': out of range (expected a "
              "number of seconds 0-60, got integer 61)");
    EXPECT_EQ(error_of("shutdown_timeout = \"10s\"\n"),
              "/etc/vipportd/ops.toml:2:20: key 'shutdown_timeout': wrong type (expected a "
              "number of seconds 0-60, got string \"10s\")");
    EXPECT_NE(error_of("shutdown_timeout = -0.5\n")
                  .find(":2:20: key 'shutdown_timeout': out of "
                        "range"),
              std::string::npos);
    EXPECT_EQ(error_of("[observability]\nauth = \"yes\"\n"),
              "/etc/vipportd/ops.toml:3:8: key 'observability.auth': bad value (expected one of "
              "\"loopback\", \"auth\", \"open\", got string \"yes\")");
    EXPECT_EQ(error_of("[observability]\nauht = \"open\"\n"),
              "/etc/vipportd/ops.toml:3:1: key 'observability.auht': unknown key, did you mean "
              "'auth'? (expected one of: auth)");
}

TEST(ConfigOps, VipsFileAcceptsOnlyVips) {
    const auto v = parse_vips_file("[[vip]]\nuuid = \"a\"\nip = \"192.0.2.1\"\n", "/d/a.toml");
    ASSERT_EQ(v.size(), 1U);
    EXPECT_EQ(v[0].uuid, "a");
    try {
        (void)parse_vips_file("[[vip]]\nuuid = \"a\"\nip = \"224.0.0.1\"\n", "/d/a.toml");
        ADD_FAILURE() << "multicast accepted";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "/d/a.toml:3:6: key 'vip[0].ip': not a VIP (expected a unicast address, got "
                  "multicast 224.0.0.1)");
    }
}

}  // namespace
}  // namespace vipportd::agent
