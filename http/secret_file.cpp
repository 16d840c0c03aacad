#include "http/secret_file.hpp"

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <stdexcept>
#include <system_error>
#include <unistd.h>

#include <sys/stat.h>

namespace vipportd::http {

namespace {

// A credential file holds a few lines; anything this large is not one.
constexpr std::size_t kMaxSecretFileBytes = 1024 * 1024;

std::string prefix(std::string_view what, const std::filesystem::path& p) {
    return std::string(what) + " '" + p.string() + "'";
}

[[noreturn]] void fail_errno(std::string_view what,
                             const char* action,
                             const std::filesystem::path& path,
                             int err) {
    throw std::runtime_error(prefix(what, path) + ": " + action + ": " +
                             std::system_category().message(err));
}

// Closes the descriptor on every path out of read_secret_file().
struct Fd {
    explicit Fd(int f) : fd(f) {}
    int fd = -1;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

}  // namespace

std::string read_secret_file(const std::filesystem::path& path, std::string_view what) {
    // Open first, then fstat the descriptor: the checked file is the file that is read.
    Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY)};
    if (f.fd < 0) {
        fail_errno(what, "cannot open", path, errno);
    }
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) {
        fail_errno(what, "cannot stat", path, errno);
    }
    if (!S_ISREG(st.st_mode)) {
        throw std::runtime_error(prefix(what, path) + ": not a regular file");
    }
    if ((st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        throw std::runtime_error(prefix(what, path) + ": mode " + mode +
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
            fail_errno(what, "cannot read", path, errno);
        }
        if (n == 0) {
            break;
        }
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > kMaxSecretFileBytes) {
            throw std::runtime_error(prefix(what, path) + ": larger than " +
                                     std::to_string(kMaxSecretFileBytes) + " bytes");
        }
    }
    return text;
}

}  // namespace vipportd::http
