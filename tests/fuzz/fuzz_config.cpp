// libFuzzer target: bytes as the text of a configuration file -> agent::parse_config (toml++ and
// vipportd's own key, type and cross-field checks) -> agent::validate. Seeds in corpus/config/
// are the shipped and fixture files and broken variants of them.
//
// A bad file must come back as an agent::ConfigError that starts with the file name ("FILE:" or
// "FILE:LINE:COL:", as --check-config prints it; see kStrictMessages for the per-line rule). Any
// other exception escaping, a crash, or a config that parse_config accepted but validate()
// rejects (both run the same checks, with and without positions) aborts.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include "agent/config.hpp"

namespace {

constexpr std::string_view kFile = "fuzz.toml";

[[noreturn]] void fail(const char* what, std::string_view detail) {
    std::fprintf(stderr, "fuzz_config: %s: %.*s\n", what, static_cast<int>(detail.size()),
                 detail.data());
    std::abort();
}

// Strict: every line of a ConfigError starts with "fuzz.toml:" and holds no raw control byte.
// agent/config.cpp escapes control bytes in toml++'s parse error descriptions (which show the
// offending input byte: `a = i` + LF gives "saw 'i\x0a'") and in TOML key names (`"a\nb" = 1`
// gives "key 'a\x0ab'"), as quote() does for values (tests/unit/agent/config_messages_test.cpp).
constexpr bool kStrictMessages = true;

void check_message(std::string_view msg) {
    if (!msg.starts_with(kFile) || msg.size() == kFile.size() || msg[kFile.size()] != ':') {
        fail("ConfigError does not start with \"fuzz.toml:\"", msg);
    }
    if constexpr (!kStrictMessages) {
        return;
    }
    std::size_t start = 0;
    while (start <= msg.size()) {
        const auto nl = msg.find('\n', start);
        const std::string_view line =
            msg.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
        if (!line.starts_with(kFile) || line.size() == kFile.size() || line[kFile.size()] != ':') {
            fail("ConfigError line does not start with \"fuzz.toml:\"", msg);
        }
        for (const char ch : line) {
            const auto c = static_cast<unsigned char>(ch);
            if (c < 0x20 || c == 0x7f) {
                fail("ConfigError with a raw control byte", msg);
            }
        }
        if (nl == std::string_view::npos) {
            break;
        }
        start = nl + 1;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace vipportd;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    agent::Config config;
    try {
        config = agent::parse_config(text, std::string(kFile));
    } catch (const agent::ConfigError& e) {
        // VIPPORTD_FUZZ_TRACE=1 prints the verdict on each input (for triage and for checking
        // what a seed exercises).
        static const bool trace = std::getenv("VIPPORTD_FUZZ_TRACE") != nullptr;  // NOLINT
        if (trace) {
            std::fprintf(stderr, "=== ConfigError\n%s\n", e.what());
        }
        check_message(e.what());
        return 0;
    } catch (const std::exception& e) {
        fail("parse_config threw something other than ConfigError", e.what());
    }
    try {
        agent::validate(config);
    } catch (const agent::ConfigError& e) {
        fail("validate() rejected what parse_config accepted", e.what());
    } catch (const std::exception& e) {
        fail("validate() threw something other than ConfigError", e.what());
    }
    return 0;
}
