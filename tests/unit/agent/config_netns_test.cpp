// [[vip]] netns: a name under /run/netns or an absolute path (agent/config.cpp netns_problem).

#include <string>
#include <string_view>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/config.hpp"
#include "agent/namespaces.hpp"

namespace vipportd::agent {
namespace {

using ::testing::HasSubstr;

std::string vip_with(std::string_view netns_line) {
    return "listen = [\"127.0.0.1:8080\"]\n[[vip]]\nuuid = \"a\"\nip = \"192.0.2.1\"\n" +
           std::string(netns_line) + "\n";
}

std::string error_of(std::string_view text) {
    try {
        (void)parse_config(text, "/etc/vipportd/t.toml");
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

TEST(ConfigNetns, NamesAndAbsolutePathsAreAccepted) {
    EXPECT_EQ(parse_config(vip_with(""), "t.toml").vips.at(0).netns, "");
    EXPECT_EQ(parse_config(vip_with("netns = \"blue\""), "t.toml").vips.at(0).netns, "blue");
    EXPECT_EQ(parse_config(vip_with("netns = \"/proc/1/ns/net\""), "t.toml").vips.at(0).netns,
              "/proc/1/ns/net");
    EXPECT_EQ(netns_path("blue"), "/run/netns/blue");
    EXPECT_EQ(netns_path("/proc/1/ns/net"), "/proc/1/ns/net");
}

TEST(ConfigNetns, BadValuesNameTheKeyAndSayWhy) {
    const struct {
        std::string_view line;
        std::string_view expected;
    } cases[] = {
        {"netns = \"\"",
         "t.toml:5:9: key 'vip[0].netns': expected a namespace name or an absolute path, got an "
         "empty string"},
        {"netns = \"a/b\"",
         "t.toml:5:9: key 'vip[0].netns': expected a name under /run/netns (no '/', not . or ..) "
         "or an absolute path, got \"a/b\""},
        {"netns = \"..\"", "key 'vip[0].netns': expected a name under /run/netns"},
        {"netns = \"a\\u0001\"",
         "key 'vip[0].netns': expected no control characters, got \"a\\x01\""},
        {"netns = 7", "key 'vip[0].netns'"},
    };
    for (const auto& c : cases) {
        EXPECT_THAT(error_of(vip_with(c.line)), HasSubstr(std::string(c.expected))) << c.line;
    }
}

}  // namespace
}  // namespace vipportd::agent
