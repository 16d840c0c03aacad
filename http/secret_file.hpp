#pragma once
// Reading credential files (tokens, AccessKey pairs): the file must be a regular file that only
// its owner may access (operations.md §5.2: mode 0600), and the checked file is the file read.

#include <filesystem>
#include <string>
#include <string_view>

namespace vipportd::http {

/// The whole content of path. what names the file in messages ("token file"). Throws
/// std::runtime_error "<what> '<path>': ..." when the file cannot be opened, stat'ed or read, is
/// not a regular file, is larger than 1 MiB, or grants any permission to group or others.
std::string read_secret_file(const std::filesystem::path& path, std::string_view what);

/// Splits text into lines trimmed of surrounding whitespace; calls f(line, line_number) for each
/// line that is neither blank nor a '#' comment (after trimming). Line numbers start at 1.
template <typename F>
void for_each_entry(std::string_view text, F&& f) {
    constexpr std::string_view ws = " \t\r\n\f\v";
    std::size_t number = 0;
    while (!text.empty()) {
        ++number;
        const auto eol = text.find('\n');
        std::string_view line = text.substr(0, eol);
        text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
        const auto first = line.find_first_not_of(ws);
        if (first == std::string_view::npos) {
            continue;
        }
        line = line.substr(first, line.find_last_not_of(ws) - first + 1);
        if (line.front() == '#') {
            continue;
        }
        f(line, number);
    }
}

}  // namespace vipportd::http
