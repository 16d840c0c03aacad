#include "netlink/fixture.hpp"

#include <cerrno>
#include <cstddef>
#include <fstream>
#include <sstream>

#include "netlink/bytes.hpp"

namespace vipportd::netlink {

namespace {

int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}

std::string comment_text(std::string_view line) {
    line.remove_prefix(1);  // '#'
    if (!line.empty() && line.front() == ' ') {
        line.remove_prefix(1);
    }
    return std::string(line);
}

}  // namespace

std::string to_hex(std::span<const std::uint8_t> bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2 + bytes.size() / 4);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (i != 0 && i % 4 == 0) {
            out += ' ';
        }
        out += kDigits[bytes[i] >> 4];
        out += kDigits[bytes[i] & 0xf];
    }
    return out;
}

Result<std::vector<std::uint8_t>> from_hex(std::string_view text) {
    std::vector<std::uint8_t> out;
    out.reserve(text.size() / 2);
    int high = -1;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == ' ' || c == '\t') {
            if (high >= 0) {
                return Error::of(Errc::malformed,
                                 "hex: space inside a byte at column " + std::to_string(i + 1));
            }
            continue;
        }
        const int d = hex_digit(c);
        if (d < 0) {
            return Error::of(Errc::malformed, "hex: invalid character '" + std::string(1, c) +
                                                  "' at column " + std::to_string(i + 1));
        }
        if (high < 0) {
            high = d;
        } else {
            out.push_back(static_cast<std::uint8_t>(high * 16 + d));
            high = -1;
        }
    }
    if (high >= 0) {
        return Error::of(Errc::malformed, "hex: odd number of digits");
    }
    return out;
}

void zero_seq_pid(std::span<std::uint8_t> messages) {
    MessageWalker walk(messages);
    while (true) {
        const std::size_t at = walk.offset();
        auto m = walk.next();
        if (!m || !*m) {
            return;
        }
        store(messages, at + offsetof(nlmsghdr, nlmsg_seq), std::uint32_t{0});
        store(messages, at + offsetof(nlmsghdr, nlmsg_pid), std::uint32_t{0});
        // struct nlmsgerr { int error; struct nlmsghdr msg; } echoes our request's header.
        if ((*m)->header.nlmsg_type == NLMSG_ERROR && (*m)->payload.size() >= sizeof(nlmsgerr)) {
            const std::size_t echoed = at + kNlmsghdrSize + sizeof(int);
            store(messages, echoed + offsetof(nlmsghdr, nlmsg_seq), std::uint32_t{0});
            store(messages, echoed + offsetof(nlmsghdr, nlmsg_pid), std::uint32_t{0});
        }
    }
}

Result<Fixture> parse_fixture(std::string_view text, std::string_view name) {
    Fixture f;
    std::vector<std::string> pending;  // comments not yet attached
    bool header_done = false;
    std::size_t line_no = 0;
    const auto fail = [&](const std::string& what) {
        return Error::of(Errc::malformed,
                         std::string(name) + ":" + std::to_string(line_no) + ": " + what);
    };
    while (!text.empty()) {
        ++line_no;
        const std::size_t nl = text.find('\n');
        const std::string_view line = trim(text.substr(0, nl));
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (line.empty()) {
            if (!header_done) {
                f.header.insert(f.header.end(), pending.begin(), pending.end());
                pending.clear();
                header_done = true;
            }
            continue;
        }
        const char kind = line.front();
        if (kind == '#') {
            pending.push_back(comment_text(line));
            continue;
        }
        if (kind != '>' && kind != '<' && kind != '+') {
            return fail("expected '#', '>', '<' or '+', got '" + std::string(1, kind) + "'");
        }
        auto bytes = from_hex(line.substr(1));
        if (!bytes) {
            return fail(bytes.error().detail);
        }
        if (kind == '>') {
            header_done = true;
            FixtureExchange ex;
            ex.comment = std::move(pending);
            pending.clear();
            ex.request = std::move(*bytes);
            f.exchanges.push_back(std::move(ex));
        } else if (kind == '<') {
            if (f.exchanges.empty()) {
                return fail("reply '<' before any request '>'");
            }
            f.exchanges.back().replies.push_back(std::move(*bytes));
        } else {
            if (f.exchanges.empty() || f.exchanges.back().replies.empty()) {
                return fail("continuation '+' without a reply '<' to continue");
            }
            auto& d = f.exchanges.back().replies.back();
            d.insert(d.end(), bytes->begin(), bytes->end());
        }
    }
    if (!header_done) {
        f.header.insert(f.header.end(), pending.begin(), pending.end());
    }
    return f;
}

Result<Fixture> read_fixture(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        return Error::sys(errno != 0 ? errno : ENOENT, "cannot open fixture " + file.string());
    }
    std::ostringstream text;
    text << in.rdbuf();
    return parse_fixture(text.str(), file.string());
}

std::string format_fixture(const Fixture& fixture) {
    std::string out;
    for (const auto& line : fixture.header) {
        out += line.empty() ? "#\n" : "# " + line + "\n";
    }
    out += "\n";
    for (const auto& ex : fixture.exchanges) {
        for (const auto& line : ex.comment) {
            out += line.empty() ? "#\n" : "# " + line + "\n";
        }
        out += "> " + to_hex(ex.request) + "\n";
        for (const auto& r : ex.replies) {
            // One line per message; whatever does not parse as messages stays on the last line.
            MessageWalker walk(r);
            char lead = '<';
            std::size_t at = 0;
            while (true) {
                auto m = walk.next();
                if (!m || !*m || walk.offset() >= r.size()) {
                    break;
                }
                const std::size_t end = walk.offset();
                out += std::string(1, lead) + " " +
                       to_hex(std::span<const std::uint8_t>(r).subspan(at, end - at)) + "\n";
                lead = '+';
                at = end;
            }
            out += std::string(1, lead) + " " +
                   to_hex(std::span<const std::uint8_t>(r).subspan(at)) + "\n";
        }
        out += "\n";
    }
    return out;
}

Result<void> write_fixture(const Fixture& fixture, const std::filesystem::path& file) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    if (!out) {
        return Error::sys(errno != 0 ? errno : EIO, "cannot create fixture " + file.string());
    }
    out << format_fixture(fixture);
    out.flush();
    if (!out) {
        return Error::sys(errno != 0 ? errno : EIO, "cannot write fixture " + file.string());
    }
    return {};
}

}  // namespace vipportd::netlink
