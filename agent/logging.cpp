#include "agent/logging.hpp"

#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace vipportd::agent {

namespace {

constexpr std::string_view kLoggerName = "vipportd";

void append_json_string(std::string_view s, spdlog::memory_buf_t& out) {
    out.push_back('"');
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(ch);
        } else if (c == '\n') {
            out.append(std::string_view("\\n"));
        } else if (c < 0x20 || c == 0x7f) {
            // RFC 8259 §7: control characters must be escaped as \u00XX.
            std::array<char, 8> buf{};
            const int n = std::snprintf(buf.data(), buf.size(), "\\u%04x", c);
            out.append(buf.data(), buf.data() + n);
        } else {
            out.push_back(ch);
        }
    }
    out.push_back('"');
}

class JsonFormatter final : public spdlog::formatter {
  public:
    explicit JsonFormatter(bool with_timestamps) : with_timestamps_(with_timestamps) {}

    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        dest.push_back('{');
        if (with_timestamps_) {
            const auto t = msg.time;
            const std::time_t secs = std::chrono::system_clock::to_time_t(t);
            const auto ms =
                std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()) % 1000;
            std::tm tm{};
            ::gmtime_r(&secs, &tm);
            std::array<char, 64> buf{};
            const std::size_t n = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%S", &tm);
            const int m = std::snprintf(buf.data() + n, buf.size() - n, ".%03dZ",
                                        static_cast<int>(ms.count()));
            dest.append(std::string_view("\"time\":\""));
            dest.append(buf.data(), buf.data() + n + static_cast<std::size_t>(m));
            dest.append(std::string_view("\","));
        }
        dest.append(std::string_view("\"level\":"));
        const auto level = spdlog::level::to_string_view(msg.level);
        append_json_string(std::string_view(level.data(), level.size()), dest);
        dest.append(std::string_view(",\"msg\":"));
        append_json_string(std::string_view(msg.payload.data(), msg.payload.size()), dest);
        dest.append(std::string_view("}\n"));
    }

    [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<JsonFormatter>(with_timestamps_);
    }

  private:
    bool with_timestamps_;
};

}  // namespace

std::optional<LogFormat> parse_log_format(std::string_view text) {
    if (text == "text") {
        return LogFormat::text;
    }
    if (text == "json") {
        return LogFormat::json;
    }
    return std::nullopt;
}

std::optional<spdlog::level::level_enum> parse_log_level(std::string_view text) {
    // spdlog's from_str() maps anything unknown to "off"; only its canonical names pass here.
    const auto level = spdlog::level::from_str(std::string(text));
    const auto name = spdlog::level::to_string_view(level);
    if (text == std::string_view(name.data(), name.size())) {
        return level;
    }
    return std::nullopt;
}

std::unique_ptr<spdlog::formatter> make_json_formatter(bool with_timestamps) {
    return std::make_unique<JsonFormatter>(with_timestamps);
}

void setup_logging(spdlog::level::level_enum level, LogFormat format, bool with_timestamps) {
    auto logger = spdlog::get(std::string(kLoggerName));
    if (!logger) {
        logger = spdlog::stderr_logger_mt(std::string(kLoggerName));
        spdlog::set_default_logger(logger);
    }
    if (format == LogFormat::json) {
        logger->set_formatter(make_json_formatter(with_timestamps));
    } else {
        logger->set_formatter(std::make_unique<spdlog::pattern_formatter>(
            with_timestamps ? "%Y-%m-%dT%H:%M:%S.%e %l: %v" : "%l: %v"));
    }
    logger->set_level(level);
}

std::string log_escape(std::string_view s, std::size_t max_bytes) {
    std::string out;
    const std::size_t n = std::min(s.size(), max_bytes);
    out.reserve(n + 8);
    for (std::size_t i = 0; i < n; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c >= 0x7f) {
            std::array<char, 8> buf{};
            std::snprintf(buf.data(), buf.size(), "\\x%02x", c);
            out += buf.data();
        } else {
            out += static_cast<char>(c);
        }
    }
    if (s.size() > max_bytes) {
        out += "...";
    }
    return out;
}

}  // namespace vipportd::agent
