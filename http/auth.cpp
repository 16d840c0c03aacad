#include "http/auth.hpp"

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <stdexcept>
#include <string>
#include <system_error>
#include <unistd.h>

#include <sys/stat.h>

namespace vipportd::http {

namespace {

std::string_view trim(std::string_view s) {
    constexpr std::string_view ws = " \t\r\n\f\v";
    const auto first = s.find_first_not_of(ws);
    if (first == std::string_view::npos) {
        return {};
    }
    return s.substr(first, s.find_last_not_of(ws) - first + 1);
}

std::string quoted(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

[[noreturn]] void fail_errno(const char* what, const std::filesystem::path& path, int err) {
    throw std::runtime_error(std::string("token file ") + quoted(path) + ": " + what + ": " +
                             std::system_category().message(err));
}

// Closes the descriptor on every path out of load().
struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

}  // namespace

TokenFile TokenFile::parse(std::string_view text, const std::filesystem::path& origin) {
    std::vector<Sha256Digest> digests;
    while (!text.empty()) {
        const auto eol = text.find('\n');
        const std::string_view line = trim(text.substr(0, eol));
        text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
        if (line.empty() || line.front() == '#') {
            continue;
        }
        digests.push_back(sha256(line));
    }
    if (digests.empty()) {
        throw std::runtime_error("token file " + quoted(origin) +
                                 ": contains no token (one token per line, '#' starts a comment)");
    }
    return TokenFile(std::move(digests));
}

TokenFile TokenFile::load(const std::filesystem::path& path) {
    // Open first, then fstat the descriptor: the checked file is the file that is read.
    Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY)};
    if (f.fd < 0) {
        fail_errno("cannot open", path, errno);
    }
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) {
        fail_errno("cannot stat", path, errno);
    }
    if (!S_ISREG(st.st_mode)) {
        throw std::runtime_error("token file " + quoted(path) + ": not a regular file");
    }
    if ((st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        throw std::runtime_error("token file " + quoted(path) + ": mode " + mode +
                                 " lets group or others access it; it must be 0600 or stricter "
                                 "(chmod 600)");
    }
    std::string text;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(f.fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            fail_errno("cannot read", path, errno);
        }
        if (n == 0) {
            break;
        }
        text.append(buf, static_cast<std::size_t>(n));
    }
    return parse(text, path);
}

bool TokenFile::accept(std::string_view session) const {
    const Sha256Digest candidate = sha256(session);
    // Every digest is compared, whatever matched before: no early exit (operations.md §5.3).
    unsigned matched = 0;
    for (const auto& d : digests_) {
        matched |= static_cast<unsigned>(digest_equal(candidate, d));
    }
    return matched != 0;
}

std::shared_ptr<const Authenticator> make_authenticator(const agent::AuthConfig& config) {
    if (config.mode == agent::AuthConfig::Mode::tokens) {
        return std::make_shared<const TokenFile>(TokenFile::load(config.tokens_file));
    }
    return std::make_shared<const AcceptAll>();
}

}  // namespace vipportd::http
