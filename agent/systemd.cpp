#include "agent/systemd.hpp"

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <system_error>
#include <unistd.h>

#include <sys/socket.h>
#include <sys/un.h>

namespace vipportd::agent::systemd {

namespace {

template <class T>
std::optional<T> parse_unsigned(const char* text) {
    if (text == nullptr || *text == '\0') {
        return std::nullopt;
    }
    const std::string_view s(text);
    T value{};
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc{} || end != s.data() + s.size()) {
        return std::nullopt;
    }
    return value;
}

/// True when $VAR is unset, or names this pid (the variables are inherited by children, which
/// must not take them for their own: sd_listen_fds(3), sd_watchdog_enabled(3)).
bool pid_matches(const char* value, pid_t pid, bool absent_matches) {
    if (value == nullptr) {
        return absent_matches;
    }
    const auto p = parse_unsigned<unsigned long>(value);
    return p && *p == static_cast<unsigned long>(pid);
}

std::string errno_text(int e) { return std::error_code(e, std::generic_category()).message(); }

}  // namespace

Getenv process_environment() {
    return [](const char* name) -> const char* { return std::getenv(name); };
}

Notifier::Notifier(std::string address) : address_(std::move(address)) {}

Notifier Notifier::from_environment(const Getenv& env) {
    const char* a = env("NOTIFY_SOCKET");
    return Notifier(a != nullptr ? std::string(a) : std::string());
}

bool Notifier::notify(std::string_view state, std::string* error) const {
    if (address_.empty()) {
        return true;
    }
    const auto fail = [&](std::string why) {
        if (error != nullptr) {
            *error = "NOTIFY_SOCKET " + address_ + ": " + std::move(why);
        }
        return false;
    };
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    // sd_notify(3): an absolute path, or '@' for the abstract namespace (unix(7): the name starts
    // with a NUL byte and its length is given by the address length, not a terminator).
    const bool abstract = address_.front() == '@';
    if (!abstract && address_.front() != '/') {
        return fail("not an absolute path or '@' abstract name (vsock is not supported)");
    }
    if (address_.size() >= sizeof sa.sun_path) {
        return fail("longer than sun_path (" + std::to_string(sizeof sa.sun_path - 1) + " bytes)");
    }
    std::memcpy(sa.sun_path, address_.data(), address_.size());
    if (abstract) {
        sa.sun_path[0] = '\0';
    }
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size() +
                                            (abstract ? 0 : 1));
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return fail("socket: " + errno_text(errno));
    }
    ssize_t n = -1;
    do {
        // MSG_NOSIGNAL: a vanished receiver must not raise SIGPIPE in the daemon.
        n = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                     reinterpret_cast<const sockaddr*>(&sa), len);
    } while (n < 0 && errno == EINTR);
    const int send_errno = errno;
    ::close(fd);
    if (n < 0) {
        return fail("sendto: " + errno_text(send_errno));
    }
    return true;
}

std::string reloading_message() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    const auto usec = static_cast<unsigned long long>(ts.tv_sec) * 1000000ULL +
                      static_cast<unsigned long long>(ts.tv_nsec) / 1000ULL;
    return "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec);
}

std::optional<std::chrono::microseconds> watchdog_interval(pid_t pid, const Getenv& env) {
    const auto usec = parse_unsigned<std::uint64_t>(env("WATCHDOG_USEC"));
    if (!usec || *usec == 0 || !pid_matches(env("WATCHDOG_PID"), pid, true)) {
        return std::nullopt;
    }
    return std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(*usec));
}

std::vector<ListenFd> listen_fds(pid_t pid, const Getenv& env) {
    std::vector<ListenFd> out;
    // Unlike WATCHDOG_PID, LISTEN_PID is mandatory (sd_listen_fds(3)).
    if (!pid_matches(env("LISTEN_PID"), pid, false)) {
        return out;
    }
    const auto n = parse_unsigned<unsigned>(env("LISTEN_FDS"));
    // A sane bound: fds are numbered from 3 and must fit an int.
    constexpr unsigned kMaxFds = 1024;
    if (!n || *n == 0 || *n > kMaxFds) {
        return out;
    }
    std::vector<std::string> names;
    if (const char* fdnames = env("LISTEN_FDNAMES"); fdnames != nullptr) {
        std::string_view s(fdnames);
        for (;;) {
            const auto colon = s.find(':');
            names.emplace_back(s.substr(0, colon));
            if (colon == std::string_view::npos) {
                break;
            }
            s.remove_prefix(colon + 1);
        }
    }
    for (unsigned i = 0; i < *n; ++i) {
        const int fd = kListenFdsStart + static_cast<int>(i);
        const int flags = ::fcntl(fd, F_GETFD);
        if (flags >= 0) {
            (void)::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
        }
        out.push_back({fd, i < names.size() && names.size() == *n ? names[i] : "unknown"});
    }
    return out;
}

}  // namespace vipportd::agent::systemd
