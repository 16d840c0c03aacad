#include "agent/config.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vipportd::agent {
namespace {

using netlink::InetAddress;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

const std::filesystem::path kFile = "/etc/vipportd/t.toml";

InetAddress ip(const char* s) { return *InetAddress::parse(s); }

/// The ConfigError message for `text`, or "" if it parsed.
std::string error_of(std::string_view text) {
    try {
        (void)parse_config(text, kFile);
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

std::string validate_error(const Config& c) {
    try {
        validate(c);
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

// A loopback listener keeps auth "none" legal in tests that are about something else.
constexpr std::string_view kLo = "listen = [\"127.0.0.1:8080\"]\n";

std::string with_lo(std::string_view rest) { return std::string(kLo) + std::string(rest); }

// ---- ListenEndpoint ----------------------------------------------------------------------------

TEST(ListenEndpoint, LoopbackCoversAll127AndV6OneAndMapped) {
    EXPECT_TRUE((ListenEndpoint{ip("127.0.0.1"), 1}.is_loopback()));
    EXPECT_TRUE((ListenEndpoint{ip("127.255.0.9"), 1}.is_loopback()));
    EXPECT_TRUE((ListenEndpoint{ip("::1"), 1}.is_loopback()));
    EXPECT_TRUE((ListenEndpoint{ip("::ffff:127.0.0.2"), 1}.is_loopback()));
    EXPECT_FALSE((ListenEndpoint{ip("128.0.0.1"), 1}.is_loopback()));
    EXPECT_FALSE((ListenEndpoint{ip("0.0.0.0"), 1}.is_loopback()));
    EXPECT_FALSE((ListenEndpoint{ip("::"), 1}.is_loopback()));
    EXPECT_FALSE((ListenEndpoint{ip("::2"), 1}.is_loopback()));
    EXPECT_FALSE((ListenEndpoint{ip("1::1"), 1}.is_loopback()));
    EXPECT_FALSE((ListenEndpoint{ip("192.0.2.1"), 1}.is_loopback()));
}

TEST(ListenEndpoint, ToStringBracketsIpv6) {
    EXPECT_EQ((ListenEndpoint{ip("127.0.0.1"), 8080}.to_string()), "127.0.0.1:8080");
    EXPECT_EQ((ListenEndpoint{ip("::1"), 8080}.to_string()), "[::1]:8080");
    EXPECT_EQ((ListenEndpoint{ip("2001:db8::1"), 0}.to_string()), "[2001:db8::1]:0");
}

// ---- defaults and happy paths -------------------------------------------------------------------

TEST(Config, DefaultIsLoopbackOnlyWithoutAuthOrVips) {
    const Config c = default_config();
    ASSERT_EQ(c.listen.size(), 2u);
    EXPECT_EQ(c.listen[0].to_string(), "127.0.0.1:8080");
    EXPECT_EQ(c.listen[1].to_string(), "[::1]:8080");
    EXPECT_TRUE(c.vips.empty());
    EXPECT_EQ(c.auth.mode, AuthConfig::Mode::none);
    EXPECT_TRUE(c.auth.tokens_file.empty());
    EXPECT_EQ(c.http_threads, 2u);
    EXPECT_EQ(c.log_level, "info");
    EXPECT_EQ(c.sources.nftables, SourcesConfig::Requirement::required);
    EXPECT_EQ(c.sources.iptables_legacy, SourcesConfig::Legacy::auto_);
    EXPECT_FALSE(c.sources.tcp_bound_inactive);
    EXPECT_TRUE(c.source_file.empty());
    EXPECT_NO_THROW(validate(c));
}

TEST(Config, EmptyFileGivesTheDefaults) {
    const Config c = parse_config("", kFile);
    EXPECT_EQ(c.source_file, kFile);
    ASSERT_EQ(c.listen.size(), 2u);
    EXPECT_EQ(c.listen[0].to_string(), "127.0.0.1:8080");
    EXPECT_EQ(c.listen[1].to_string(), "[::1]:8080");
    EXPECT_TRUE(c.vips.empty());
    EXPECT_EQ(c.auth.mode, AuthConfig::Mode::none);
}

TEST(Config, EveryKeyHappyPath) {
    const Config c = parse_config(R"(# every key, non-default values
listen = ["192.0.2.1:7272", "[2001:db8::1]:7272", "127.0.0.1:0"]
http_threads = 64
log_level = "debug"

[[vip]]
uuid = "3f2c9d1e7b8a4c5d9e0f1a2b3c4d5e6f"
ip = "192.0.2.10"

[[vip]]
uuid = "v6"
ip = "2001:db8::10"

[[vip]]
uuid = "same-ip"
ip = "192.0.2.10"

[auth]
mode = "tokens"
tokens_file = "/etc/vipportd/tokens"

[sources]
nftables = "optional"
iptables_legacy = "off"
tcp_bound_inactive = false
)",
                                  kFile);
    ASSERT_EQ(c.listen.size(), 3u);
    EXPECT_EQ(c.listen[0].to_string(), "192.0.2.1:7272");
    EXPECT_EQ(c.listen[1].to_string(), "[2001:db8::1]:7272");
    EXPECT_EQ(c.listen[1].address.family, netlink::Family::v6);
    EXPECT_EQ(c.listen[2].port, 0);
    EXPECT_EQ(c.http_threads, 64u);
    EXPECT_EQ(c.log_level, "debug");
    ASSERT_EQ(c.vips.size(), 3u);
    EXPECT_EQ(c.vips[0].uuid, "3f2c9d1e7b8a4c5d9e0f1a2b3c4d5e6f");
    EXPECT_EQ(c.vips[0].ip, ip("192.0.2.10"));
    EXPECT_EQ(c.vips[1].uuid, "v6");
    EXPECT_EQ(c.vips[1].ip, ip("2001:db8::10"));
    EXPECT_EQ(c.vips[2].ip, ip("192.0.2.10"));  // two uuids may name one address
    EXPECT_EQ(c.auth.mode, AuthConfig::Mode::tokens);
    EXPECT_EQ(c.auth.tokens_file, "/etc/vipportd/tokens");
    EXPECT_EQ(c.sources.nftables, SourcesConfig::Requirement::optional);
    EXPECT_EQ(c.sources.iptables_legacy, SourcesConfig::Legacy::off);
    EXPECT_FALSE(c.sources.tcp_bound_inactive);
    EXPECT_EQ(c.source_file, kFile);
}

TEST(Config, EnumerationsAcceptEveryDocumentedValue) {
    for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
        EXPECT_EQ(
            parse_config(with_lo("log_level = \"" + std::string(level) + "\"\n"), kFile).log_level,
            level);
    }
    EXPECT_EQ(parse_config(with_lo("[sources]\nnftables = \"required\"\n"), kFile).sources.nftables,
              SourcesConfig::Requirement::required);
    EXPECT_EQ(parse_config(with_lo("[sources]\nnftables = \"off\"\n"), kFile).sources.nftables,
              SourcesConfig::Requirement::off);
    EXPECT_EQ(parse_config(with_lo("[sources]\niptables_legacy = \"auto\"\n"), kFile)
                  .sources.iptables_legacy,
              SourcesConfig::Legacy::auto_);
    EXPECT_TRUE(parse_config(with_lo("[sources]\ntcp_bound_inactive = true\n"), kFile)
                    .sources.tcp_bound_inactive);
    const Config coalesce =
        parse_config(with_lo("[sources]\ncoalesce_gap_us = 0\ncoalesce_max_us = 100000\n"), kFile);
    EXPECT_EQ(coalesce.sources.coalesce_gap_us, 0u);
    EXPECT_EQ(coalesce.sources.coalesce_max_us, 100000u);
    EXPECT_EQ(parse_config(with_lo("[auth]\nmode = \"none\"\n"), kFile).auth.mode,
              AuthConfig::Mode::none);
    EXPECT_EQ(parse_config(with_lo("http_threads = 1\n"), kFile).http_threads, 1u);
}

TEST(Config, ListenPortBoundsAndInlineTables) {
    const Config c = parse_config(
        "listen = [\"127.0.0.1:65535\", \"[::1]:1\", \"[::ffff:127.0.0.1]:2\"]\n"
        "vip = [{ uuid = \"a\", ip = \"192.0.2.1\" }]\n",
        kFile);
    ASSERT_EQ(c.listen.size(), 3u);
    EXPECT_EQ(c.listen[0].port, 65535);
    EXPECT_EQ(c.listen[1].port, 1);
    EXPECT_TRUE(c.listen[2].is_loopback());  // v4-mapped loopback is still loopback
    ASSERT_EQ(c.vips.size(), 1u);
    EXPECT_EQ(c.vips[0].uuid, "a");
}

TEST(Config, AuthNoneOnEveryKindOfLoopback) {
    EXPECT_NO_THROW((void)parse_config(
        "listen = [\"127.0.0.1:1\", \"127.9.9.9:2\", \"[::1]:3\"]\n[auth]\nmode = \"none\"\n",
        kFile));
}

TEST(Config, UuidOf255CharactersIsAccepted) {
    const std::string uuid(255, 'a');
    const Config c =
        parse_config(with_lo("[[vip]]\nuuid = \"" + uuid + "\"\nip = \"192.0.2.1\"\n"), kFile);
    ASSERT_EQ(c.vips.size(), 1u);
    EXPECT_EQ(c.vips[0].uuid, uuid);
}

TEST(ConfigErrors, CoalescingIsBounded) {
    EXPECT_EQ(parse_config(with_lo(""), kFile).sources.coalesce_gap_us, 100u);
    EXPECT_EQ(parse_config(with_lo(""), kFile).sources.coalesce_max_us, 1000u);
    EXPECT_THAT(error_of(with_lo("[sources]\ncoalesce_gap_us = 100001\n")),
                HasSubstr("t.toml:3:19: key 'sources.coalesce_gap_us': out of range (expected an "
                          "integer 0-100000, got integer 100001)"));
    EXPECT_THAT(error_of(with_lo("[sources]\ncoalesce_max_us = -1\n")),
                HasSubstr("key 'sources.coalesce_max_us': out of range"));
    EXPECT_THAT(error_of(with_lo("[sources]\ncoalesce_max_us = \"1ms\"\n")),
                HasSubstr("key 'sources.coalesce_max_us'"));
}

// ---- unknown keys at every level ----------------------------------------------------------------

TEST(ConfigErrors, UnknownTopLevelKey) {
    const auto e = error_of(with_lo("\nlisten_port = 8080\n"));
    EXPECT_THAT(e, HasSubstr("/etc/vipportd/t.toml:3:1: key 'listen_port': unknown key"));
    EXPECT_THAT(e, HasSubstr("did you mean 'listen'?"));
    EXPECT_THAT(e,
                HasSubstr("expected one of: listen, http_threads, log_level, vip, auth, sources"));
}

TEST(ConfigErrors, UnknownTopLevelTable) {
    EXPECT_THAT(error_of(with_lo("[metrics]\nport = 1\n")),
                HasSubstr("t.toml:2:2: key 'metrics': unknown key"));
}

TEST(ConfigErrors, UnknownKeyInVip) {
    const auto e =
        error_of(with_lo("[[vip]]\nuuid = \"a\"\nip = \"192.0.2.1\"\n"
                         "[[vip]]\nuuid = \"b\"\nip = \"192.0.2.2\"\nadress = \"x\"\n"));
    EXPECT_THAT(e, HasSubstr("t.toml:8:1: key 'vip[1].adress': unknown key"));
    EXPECT_THAT(e, HasSubstr("expected one of: uuid, ip"));
}

TEST(ConfigErrors, UnknownKeyInAuth) {
    EXPECT_THAT(error_of(with_lo("[auth]\nmode = \"none\"\ntoken = \"x\"\n")),
                HasSubstr("t.toml:4:1: key 'auth.token': unknown key"));
}

TEST(ConfigErrors, UnknownKeyInSources) {
    const auto e = error_of(with_lo("[sources]\nnftabels = \"off\"\n"));
    EXPECT_THAT(e, HasSubstr("t.toml:3:1: key 'sources.nftabels': unknown key, did you mean "
                             "'nftables'? (expected one of: nftables, iptables_legacy, "
                             "tcp_bound_inactive, coalesce_gap_us, coalesce_max_us)"));
}

TEST(ConfigErrors, UnknownKeyViaDottedKey) {
    EXPECT_THAT(error_of(with_lo("sources.ipvs = \"off\"\n")),
                HasSubstr("t.toml:2:9: key 'sources.ipvs': unknown key"));
}

// ---- wrong types
// ---------------------------------------------------------------------------------

TEST(ConfigErrors, WrongTypes) {
    struct Case {
        std::string text;
        std::string expected;
    };
    const Case cases[] = {
        {"listen = \"127.0.0.1:8080\"\n",
         "t.toml:1:10: key 'listen': wrong type (expected an array of \"host:port\" strings, got "
         "string \"127.0.0.1:8080\")"},
        {"listen = [8080]\n",
         "t.toml:1:11: key 'listen[0]': wrong type (expected a \"host:port\" string, got integer "
         "8080)"},
        {with_lo("http_threads = \"2\"\n"),
         "t.toml:2:16: key 'http_threads': wrong type (expected an integer 1-64, got string "
         "\"2\")"},
        {with_lo("http_threads = 2.0\n"),
         "t.toml:2:16: key 'http_threads': wrong type (expected an integer 1-64, got "
         "floating-point number)"},
        {with_lo("log_level = 3\n"),
         "t.toml:2:13: key 'log_level': wrong type (expected a string, got integer 3)"},
        {with_lo("[vip]\nuuid = \"a\"\n"),
         "t.toml:2:1: key 'vip': wrong type (expected an array of tables ([[vip]]), got table)"},
        {with_lo("vip = [\"a\"]\n"),
         "t.toml:2:8: key 'vip[0]': wrong type (expected a table ([[vip]] with uuid and ip), got "
         "string \"a\")"},
        {with_lo("[[vip]]\nuuid = 1\nip = \"192.0.2.1\"\n"),
         "t.toml:3:8: key 'vip[0].uuid': wrong type (expected a string, got integer 1)"},
        {with_lo("[[vip]]\nuuid = \"a\"\nip = [192, 0, 2, 1]\n"),
         "t.toml:4:6: key 'vip[0].ip': wrong type (expected an IPv4 or IPv6 address string, got "
         "array)"},
        {with_lo("auth = \"none\"\n"),
         "t.toml:2:8: key 'auth': wrong type (expected a table ([auth]), got string \"none\")"},
        {with_lo("[auth]\nmode = true\n"),
         "t.toml:3:8: key 'auth.mode': wrong type (expected one of \"none\", \"tokens\", "
         "\"zstack\", got boolean true)"},
        {with_lo("[auth]\nmode = \"tokens\"\ntokens_file = 1\n"),
         "t.toml:4:15: key 'auth.tokens_file': wrong type (expected a path string, got integer "
         "1)"},
        {with_lo("sources = 1\n"),
         "t.toml:2:11: key 'sources': wrong type (expected a table ([sources]), got integer 1)"},
        {with_lo("[sources]\nnftables = false\n"),
         "t.toml:3:12: key 'sources.nftables': wrong type (expected one of \"required\", "
         "\"optional\", \"off\", got boolean false)"},
        {with_lo("[sources]\niptables_legacy = 0\n"),
         "t.toml:3:19: key 'sources.iptables_legacy': wrong type (expected one of \"auto\", "
         "\"off\", got integer 0)"},
        {with_lo("[sources]\ntcp_bound_inactive = \"yes\"\n"),
         "t.toml:3:22: key 'sources.tcp_bound_inactive': wrong type (expected a boolean (true or "
         "false), got string \"yes\")"},
    };
    for (const auto& c : cases) {
        EXPECT_THAT(error_of(c.text), HasSubstr(c.expected)) << c.text;
    }
}

// ---- bad values
// ----------------------------------------------------------------------------------

TEST(ConfigErrors, BadListenAddresses) {
    struct Case {
        const char* endpoint;
        const char* what;
    };
    const Case cases[] = {
        {"localhost:8080", "bad address (expected an IPv4 address or a bracketed IPv6 address"},
        {"127.0.0.256:8080", "bad address"},
        {"::1:8080", "IPv6 address without brackets (expected \"[IPv6]:port\""},
        {"[::1:8080", "unterminated '['"},
        {"[127.0.0.1]:8080", "bad address (expected an IPv6 address inside []"},
        {"[fe80::1%eth0]:8080", "bad address (expected an IPv6 address inside []"},
        {"127.0.0.1", "missing port (expected \"host:port\", got \"127.0.0.1\")"},
        {"[::1]", "missing port (expected \"[IPv6]:port\""},
        {"[::1]8080", "missing port"},
        {"", "missing port"},
    };
    for (const auto& c : cases) {
        const auto e =
            error_of("listen = [\"127.0.0.1:1\", \"" + std::string(c.endpoint) + "\"]\n");
        EXPECT_THAT(e, HasSubstr("t.toml:1:26: key 'listen[1]': " + std::string(c.what)))
            << c.endpoint;
    }
}

TEST(ConfigErrors, BadListenPorts) {
    for (const char* endpoint : {"127.0.0.1:65536", "127.0.0.1:99999", "127.0.0.1:", "[::1]:-1",
                                 "127.0.0.1:80a", "127.0.0.1:+80", "127.0.0.1:000080"}) {
        const auto e = error_of("listen = [\"" + std::string(endpoint) + "\"]\n");
        EXPECT_THAT(e, HasSubstr("t.toml:1:11: key 'listen[0]': bad port (expected 0-65535, got "))
            << endpoint;
    }
}

TEST(ConfigErrors, EmptyListenArray) {
    EXPECT_THAT(error_of("listen = []\n"),
                HasSubstr("t.toml:1:10: key 'listen': no listener (expected at least one "
                          "\"host:port\", got [])"));
}

TEST(ConfigErrors, DuplicateListener) {
    const auto e = error_of(
        "listen = [\"127.0.0.1:8080\", \"[::1]:8080\",\n"
        "          \"127.0.0.1:8080\"]\n");
    EXPECT_THAT(e, HasSubstr("t.toml:2:11: key 'listen[2]': duplicate listener (expected each "
                             "endpoint once, got 127.0.0.1:8080 again, first at "
                             "/etc/vipportd/t.toml:1:11)"));
}

TEST(ConfigErrors, HttpThreadsOutOfRange) {
    for (const char* v : {"0", "65", "-1", "9223372036854775807"}) {
        EXPECT_THAT(error_of(with_lo("http_threads = " + std::string(v) + "\n")),
                    HasSubstr("t.toml:2:16: key 'http_threads': out of range (expected an "
                              "integer 1-64, got integer " +
                              std::string(v) + ")"));
    }
}

TEST(ConfigErrors, UnknownLogLevel) {
    EXPECT_THAT(error_of(with_lo("log_level = \"warning\"\n")),
                HasSubstr("t.toml:2:13: key 'log_level': unknown level (expected one of trace, "
                          "debug, info, warn, error, critical, off, got string \"warning\")"));
    EXPECT_THAT(error_of(with_lo("log_level = \"INFO\"\n")), HasSubstr("key 'log_level'"));
}

TEST(ConfigErrors, BadEnumerationValues) {
    EXPECT_THAT(error_of(with_lo("[auth]\nmode = \"oauth\"\n")),
                HasSubstr("t.toml:3:8: key 'auth.mode': bad value (expected one of \"none\", "
                          "\"tokens\", \"zstack\", got string \"oauth\")"));
    EXPECT_THAT(error_of(with_lo("[sources]\nnftables = \"yes\"\n")),
                HasSubstr("t.toml:3:12: key 'sources.nftables': bad value"));
    EXPECT_THAT(error_of(with_lo("[sources]\niptables_legacy = \"required\"\n")),
                HasSubstr("t.toml:3:19: key 'sources.iptables_legacy': bad value (expected one "
                          "of \"auto\", \"off\", got string \"required\")"));
}

TEST(ConfigErrors, BadVipAddresses) {
    struct Case {
        const char* ip;
        const char* what;
    };
    const Case cases[] = {
        {"192.0.2.300",
         "bad address (expected an IPv4 or IPv6 address without prefix length or "
         "zone, got string \"192.0.2.300\")"},
        {"192.0.2.1/32", "bad address"},
        {"fe80::1%eth0", "bad address"},
        {"vip.example", "bad address"},
        {"", "bad address"},
        {"0.0.0.0", "not a VIP (expected a unicast address, got unspecified 0.0.0.0)"},
        {"::", "not a VIP (expected a unicast address, got unspecified ::)"},
        {"224.0.0.1", "not a VIP (expected a unicast address, got multicast 224.0.0.1)"},
        {"239.255.255.250",
         "not a VIP (expected a unicast address, got multicast 239.255.255.250)"},
        {"ff02::1", "not a VIP (expected a unicast address, got multicast ff02::1)"},
        {"::ffff:192.0.2.1",
         "v4-mapped address (expected the IPv4 form 192.0.2.1, got ::ffff:192.0.2.1)"},
    };
    for (const auto& c : cases) {
        const auto e =
            error_of(with_lo("[[vip]]\nuuid = \"a\"\nip = \"" + std::string(c.ip) + "\"\n"));
        EXPECT_THAT(e, HasSubstr("t.toml:4:6: key 'vip[0].ip': " + std::string(c.what))) << c.ip;
    }
}

TEST(ConfigErrors, BadUuids) {
    struct Case {
        std::string uuid;
        std::string what;
    };
    const Case cases[] = {
        {"", "invalid uuid (expected a non-empty string)"},
        {"a/b", "invalid uuid (expected no '/', got \"a/b\")"},
        {std::string(256, 'x'), "invalid uuid (expected at most 255 characters, got 256)"},
        {"a\\tb", "invalid uuid (expected no control characters, got \"a\\x09b\")"},
        {" abc", "invalid uuid (expected no leading or trailing spaces, got \" abc\")"},
        {"abc ", "invalid uuid (expected no leading or trailing spaces"},
    };
    for (const auto& c : cases) {
        const auto e =
            error_of(with_lo("[[vip]]\nuuid = \"" + c.uuid + "\"\nip = \"192.0.2.1\"\n"));
        EXPECT_THAT(e, HasSubstr("t.toml:3:8: key 'vip[0].uuid': " + c.what)) << c.uuid;
    }
}

TEST(ConfigErrors, MissingVipFields) {
    EXPECT_THAT(
        error_of(with_lo("[[vip]]\nuuid = \"a\"\n")),
        HasSubstr("t.toml:2:1: key 'vip[0].ip': missing (expected an IPv4 or IPv6 address)"));
    EXPECT_THAT(error_of(with_lo("[[vip]]\nip = \"192.0.2.1\"\n")),
                HasSubstr("t.toml:2:1: key 'vip[0].uuid': missing (expected a string)"));
}

TEST(ConfigErrors, DuplicateUuid) {
    const auto e =
        error_of(with_lo("[[vip]]\nuuid = \"abc\"\nip = \"192.0.2.1\"\n"
                         "[[vip]]\nuuid = \"abc\"\nip = \"192.0.2.2\"\n"));
    EXPECT_THAT(e, HasSubstr("t.toml:6:8: key 'vip[1].uuid': duplicate uuid (expected each uuid "
                             "once, got \"abc\" again, first at /etc/vipportd/t.toml:3:8)"));
}

TEST(ConfigErrors, TokensWithoutFile) {
    EXPECT_THAT(error_of(with_lo("[auth]\nmode = \"tokens\"\n")),
                HasSubstr("t.toml:3:8: key 'auth.tokens_file': missing (expected a path when "
                          "auth.mode = \"tokens\")"));
    EXPECT_THAT(error_of(with_lo("[auth]\nmode = \"tokens\"\ntokens_file = \"\"\n")),
                HasSubstr("t.toml:4:15: key 'auth.tokens_file': empty path"));
}

TEST(ConfigErrors, TokensFileMustBeAbsolute) {
    EXPECT_THAT(error_of(with_lo("[auth]\nmode = \"tokens\"\ntokens_file = \"tokens\"\n")),
                HasSubstr("t.toml:4:15: key 'auth.tokens_file': relative path (expected an "
                          "absolute path, got \"tokens\")"));
}

TEST(ConfigErrors, TokensFileWithoutTokensMode) {
    EXPECT_THAT(error_of(with_lo("[auth]\ntokens_file = \"/etc/vipportd/tokens\"\n")),
                HasSubstr("t.toml:3:15: key 'auth.tokens_file': set but unused (expected "
                          "auth.mode = \"tokens\", got auth.mode \"none\")"));
}

TEST(ConfigErrors, AuthNoneOnNonLoopbackListener) {
    const auto e = error_of(
        "listen = [\"127.0.0.1:8080\", \"192.0.2.1:8080\"]\n"
        "[auth]\nmode = \"none\"\n");
    EXPECT_THAT(e, HasSubstr("t.toml:3:8: key 'auth.mode': auth.mode \"none\" is only allowed "
                             "when every listener is loopback; listener 192.0.2.1:8080 "
                             "(/etc/vipportd/t.toml:1:29) is not"));
    EXPECT_THAT(e, Not(HasSubstr("127.0.0.1:8080 (")));
}

TEST(ConfigErrors, DefaultAuthNoneOnWildcardListeners) {
    // No [auth] at all: the default "none" is refused; the message points at the first listener.
    const auto e = error_of("listen = [\"0.0.0.0:8080\", \"[::]:8080\"]\n");
    EXPECT_THAT(e, HasSubstr("t.toml:1:11: key 'auth.mode': auth.mode \"none\" (the default) is "
                             "only allowed when every listener is loopback; listeners "
                             "0.0.0.0:8080 (/etc/vipportd/t.toml:1:11), [::]:8080 "
                             "(/etc/vipportd/t.toml:1:27) are not"));
}

// Every top-level key, in the order unknown-key messages list them.
constexpr std::string_view kTopLevelKeys =
    "listen, http_threads, log_level, vip, auth, sources, http, tls, log_format, vips_dir, "
    "shutdown_timeout, observability, state_dir";

TEST(ConfigErrors, AllFieldErrorsReportedInFileOrder) {
    const auto e = error_of(with_lo("zzz = 1\nhttp_threads = 0\naaa = 2\n"));
    EXPECT_EQ(e, "/etc/vipportd/t.toml:2:1: key 'zzz': unknown key (expected one of: " +
                     std::string(kTopLevelKeys) +
                     ")\n"
                     "/etc/vipportd/t.toml:3:16: key 'http_threads': out of range (expected an "
                     "integer 1-64, got integer 0)\n"
                     "/etc/vipportd/t.toml:4:1: key 'aaa': unknown key (expected one of: " +
                     std::string(kTopLevelKeys) + ")");
}

TEST(ConfigErrors, TomlSyntaxErrorsCarryFileLineAndColumn) {
    const auto e = error_of("listen = [\"127.0.0.1:8080\"]\nhttp_threads = = 2\n");
    EXPECT_THAT(e, HasSubstr("/etc/vipportd/t.toml:2:"));
    EXPECT_THAT(error_of("listen = [\"127.0.0.1:8080\"]\nlisten = []\n"),
                AllOf(HasSubstr("/etc/vipportd/t.toml:2:"), HasSubstr("listen")));
    EXPECT_THAT(error_of("[auth\n"), HasSubstr("/etc/vipportd/t.toml:1:"));
}

TEST(ConfigErrors, MessagesEscapeControlBytesAndTruncate) {
    const auto e = error_of("log_level = \"" + std::string(200, 'x') + "\\u0001\"\n");
    EXPECT_THAT(e, HasSubstr("got string \"" + std::string(80, 'x') + "\"...)"));
    EXPECT_THAT(error_of(with_lo("log_level = \"a\\u001bb\"\n")), HasSubstr("\"a\\x1bb\""));
}

// ---- validate() without positions ------------------------------------------------------------

TEST(Validate, ChecksProgrammaticConfigs) {
    Config c = default_config();
    EXPECT_EQ(validate_error(c), "");

    c.listen.push_back({ip("0.0.0.0"), 80});
    EXPECT_EQ(validate_error(c),
              "<config>: key 'auth.mode': auth.mode \"none\" (the default) is only allowed when "
              "every listener is loopback; listener 0.0.0.0:80 is not (expected auth.mode = "
              "\"tokens\" or loopback-only listeners)");
    c.auth.mode = AuthConfig::Mode::tokens;
    EXPECT_THAT(validate_error(c), HasSubstr("key 'auth.tokens_file': missing"));
    c.auth.tokens_file = "/run/tokens";
    EXPECT_EQ(validate_error(c), "");

    c.source_file = "/x.toml";
    c.listen.push_back({ip("0.0.0.0"), 80});
    EXPECT_THAT(validate_error(c), HasSubstr("/x.toml: key 'listen[3]': duplicate listener"));
    c.listen.pop_back();

    c.vips.push_back({"a", ip("192.0.2.1")});
    c.vips.push_back({"a", ip("192.0.2.2")});
    EXPECT_THAT(validate_error(c), HasSubstr("/x.toml: key 'vip[1].uuid': duplicate uuid"));
    c.vips[1] = {"b/c", ip("224.0.0.5")};
    const auto e = validate_error(c);
    EXPECT_THAT(e, HasSubstr("key 'vip[1].uuid': invalid uuid"));
    EXPECT_THAT(e, HasSubstr("key 'vip[1].ip': not a VIP"));
    c.vips.pop_back();

    c.http_threads = 0;
    c.log_level = "loud";
    EXPECT_THAT(validate_error(c), AllOf(HasSubstr("key 'http_threads': out of range"),
                                         HasSubstr("key 'log_level': unknown level")));
    c.http_threads = 2;
    c.log_level = "warn";
    c.listen.clear();
    EXPECT_THAT(validate_error(c), HasSubstr("key 'listen': no listener"));
}

// ---- files -------------------------------------------------------------------------------------

class ConfigFile : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("vipportd-config-test-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::filesystem::path write(const std::string& name, std::string_view text) {
        const auto p = dir_ / name;
        std::ofstream(p) << text;
        return p;
    }
    std::filesystem::path dir_;
};

TEST_F(ConfigFile, LoadsAndRecordsTheSourceFile) {
    const auto p = write("ok.toml", "listen = [\"127.0.0.1:1\"]\n");
    const Config c = load_config(p);
    EXPECT_EQ(c.source_file, p);
    ASSERT_EQ(c.listen.size(), 1u);
}

TEST_F(ConfigFile, ErrorsNameTheFile) {
    const auto p = write("bad.toml", "listen = [\"127.0.0.1:1\"]\nfoo = 1\n");
    try {
        (void)load_config(p);
        FAIL() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_THAT(e.what(), HasSubstr(p.string() + ":2:1: key 'foo': unknown key"));
    }
}

TEST_F(ConfigFile, MissingFileAndDirectory) {
    const auto missing = dir_ / "nope.toml";
    try {
        (void)load_config(missing);
        FAIL() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()),
                  missing.string() + ": cannot read: " + std::strerror(ENOENT));
    }
    try {
        (void)load_config(dir_);
        FAIL() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()), dir_.string() + ": cannot read: " + std::strerror(EISDIR));
    }
}

TEST(ConfigFixtures, FullFixtureParses) {
    const Config c = load_config(VIPPORTD_FIXTURES "/config/full.toml");
    EXPECT_EQ(c.auth.mode, AuthConfig::Mode::tokens);
    EXPECT_EQ(c.vips.size(), 2u);
}

/// The shipped example must load as is, and must mention every key the parser knows.
TEST(ConfigFixtures, ShippedExampleLoadsAndDocumentsEveryKey) {
    const std::filesystem::path example = VIPPORTD_SOURCE_DIR "/systemd/vipportd.toml";
    const Config c = load_config(example);
    EXPECT_EQ(c.auth.mode, AuthConfig::Mode::none);
    for (const auto& ep : c.listen) {
        EXPECT_TRUE(ep.is_loopback()) << ep.to_string();
    }
    std::ifstream in(example);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (const char* key : {"listen =", "http_threads =", "log_level =", "[[vip]]",
                            "uuid =", "ip =", "[auth]", "mode =", "tokens_file =", "[sources]",
                            "nftables =", "iptables_legacy =", "tcp_bound_inactive ="}) {
        EXPECT_THAT(text, HasSubstr(key));
    }
}

}  // namespace
}  // namespace vipportd::agent
