// Configuration error messages carry no raw control bytes and quote key names the same way
// everywhere (the fuzz_config harness checks this with kStrictMessages; these are the cases it
// found): one error per line, each starting with the file name, nothing unescaped for a terminal.

#include <string>
#include <string_view>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/config.hpp"

namespace vipportd::agent {
namespace {

using testing::HasSubstr;
using testing::Not;

std::string error_of(std::string_view text) {
    try {
        (void)parse_config(text, "t.toml");
    } catch (const ConfigError& e) {
        return e.what();
    }
    ADD_FAILURE() << "accepted: " << text;
    return {};
}

bool has_control_bytes(std::string_view s, bool allow_newline) {
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c < 0x20 && !(allow_newline && c == '\n')) || c == 0x7f) {
            return true;
        }
    }
    return false;
}

// toml++ quotes the offending input byte in its description: `a = i` + LF used to put the LF
// (and so a second, file-less line) into the message.
TEST(ConfigMessages, TomlSyntaxErrorsEscapeTheOffendingByte) {
    const auto lf = error_of("a = i\n");
    EXPECT_THAT(lf, testing::StartsWith("t.toml:1:"));
    EXPECT_THAT(lf, HasSubstr("\\x0a"));
    EXPECT_FALSE(has_control_bytes(lf, false)) << lf;

    const auto esc = error_of("a = t\x1b[31m\n");
    EXPECT_THAT(esc, HasSubstr("saw 't\\x1b'"));
    EXPECT_FALSE(has_control_bytes(esc, false)) << esc;

    const auto cr = error_of("a = f\r\n");
    EXPECT_THAT(cr, HasSubstr("saw 'f\\x0d'"));
    EXPECT_FALSE(has_control_bytes(cr, false)) << cr;
}

// Quoted TOML keys may hold any character; the name is shown in single quotes with the quote,
// the backslash and control bytes escaped.
TEST(ConfigMessages, KeyNamesAreQuotedAndEscaped) {
    EXPECT_THAT(error_of("\"a\\nb\" = 1\n"),
                testing::StartsWith("t.toml:1:1: key 'a\\x0ab': unknown key (expected one of: "));
    EXPECT_THAT(error_of("\"it's\" = 1\n"), HasSubstr("key 'it\\'s': unknown key"));
    EXPECT_THAT(error_of("\"a\\\\b\" = 1\n"), HasSubstr("key 'a\\\\b': unknown key"));
    EXPECT_THAT(error_of("[auth]\n\"\\u001b[2J\" = 1\n"),
                HasSubstr("key 'auth.\\x1b[2J': unknown key"));
    const auto long_key = error_of("\"" + std::string(200, 'k') + "\" = 1\n");
    EXPECT_THAT(long_key, HasSubstr("key '" + std::string(80, 'k') + "'...: unknown key"));
}

// Several errors: one line each, every line starting with the file name.
TEST(ConfigMessages, EveryLineStartsWithTheFile) {
    const auto e = error_of("\"x\\ny\" = 1\n\"\\r\" = 2\nhttp_threads = 0\n");
    EXPECT_FALSE(has_control_bytes(e, true)) << e;
    std::size_t lines = 0;
    std::size_t start = 0;
    while (start <= e.size()) {
        const auto nl = e.find('\n', start);
        const auto line = e.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
        EXPECT_THAT(line, testing::StartsWith("t.toml:")) << e;
        ++lines;
        if (nl == std::string::npos) {
            break;
        }
        start = nl + 1;
    }
    EXPECT_EQ(lines, 3U) << e;
    EXPECT_THAT(e, Not(HasSubstr("'x\ny'")));
}

}  // namespace
}  // namespace vipportd::agent
