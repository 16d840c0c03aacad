#pragma once
// Logging set-up: one spdlog logger named "vipportd" on stderr, plain text by default or one JSON
// object per line for log shippers (operations.md §3). Under journald (JOURNAL_STREAM set,
// systemd.exec(5)) lines carry no timestamp of their own: the journal stamps every line.

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/formatter.h>
#include <spdlog/spdlog.h>

#include "agent/config.hpp"

namespace vipportd::agent {

/// "text" / "json"; nullopt otherwise.
std::optional<LogFormat> parse_log_format(std::string_view text);
/// spdlog level from one of config.cpp's names; nullopt for anything else.
std::optional<spdlog::level::level_enum> parse_log_level(std::string_view text);

/// Creates (or reconfigures) the "vipportd" stderr logger and makes it the default.
/// with_timestamps: false under journald. Thread-safe with respect to concurrent logging.
void setup_logging(spdlog::level::level_enum level, LogFormat format, bool with_timestamps);

/// JSON lines: {"time":"2024-05-01T12:00:00.123Z","level":"info","msg":"..."} ("time" only with
/// timestamps), the message JSON-escaped.
std::unique_ptr<spdlog::formatter> make_json_formatter(bool with_timestamps);

/// A client-supplied string made safe for one log line: printable ASCII kept, '"' and '\' and
/// every other byte escaped (\xNN), so control bytes, NULs (which truncate journald messages,
/// operations.md §3) and fake line breaks cannot forge entries. Cut to max_bytes of input ("...").
std::string log_escape(std::string_view s, std::size_t max_bytes = 256);

}  // namespace vipportd::agent
