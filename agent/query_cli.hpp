#pragma once
// `vipportd query <uuid-or-ip> [--protocol tcp|udp|all] [--explain] [--json] [--all]
// [--config FILE]`: one scan of the kernel in-process (no daemon needed), and the claims of one
// VIP (or every registered VIP) as an aligned table or as the claims API's JSON.
//
// Exit codes: 0 answered; 1 a required kernel source failed for some VIP (the others are still
// printed); 2 usage error, unreadable configuration or unknown VIP. Errors go to stderr.
//
// The JSON renderers live in http/ (http/claims_json.hpp), which agent/ must not include; main
// passes them in.

#include <functional>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "agent/claims_report.hpp"

namespace vipportd::agent {

struct QueryOptions {
    std::string target;  // uuid or address; empty with --all
    bool all = false;    // every registered VIP
    std::vector<Protocol> protocols{Protocol::tcp, Protocol::udp};  // --protocol (all: both)
    bool explain = false;
    bool json = false;
    std::optional<std::string> config;  // --config FILE
    bool help = false;
};

/// Parses the arguments that follow "query". A string is the usage error to print.
[[nodiscard]] std::variant<QueryOptions, std::string> parse_query_args(
    std::span<const std::string_view> args);

/// The help text of `vipportd query --help`.
[[nodiscard]] std::string_view query_usage();

struct QueryRenderers {
    std::function<std::string(const ClaimsReport&)> one;             // a single VIP
    std::function<std::string(std::span<const ClaimsReport>)> many;  // --all
};

struct TableStyle {
    bool color = false;  // ANSI colours (stdout is a terminal and NO_COLOR is not set)
    bool explain = false;
};

/// The table for one report (what `vipportd query` prints without --json).
[[nodiscard]] std::string render_table(const ClaimsReport& report, const TableStyle& style);

/// True when colour may be used on fd: a terminal, and NO_COLOR unset or empty (no-color.org).
[[nodiscard]] bool use_color(int fd);

/// The whole subcommand: args are those after "query". Returns the exit code. color: nullopt
/// decides with use_color(STDOUT_FILENO).
int run_query(std::span<const std::string_view> args,
              const QueryRenderers& renderers,
              std::ostream& out,
              std::ostream& err,
              std::optional<bool> color = std::nullopt);

}  // namespace vipportd::agent
