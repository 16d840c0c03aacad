#pragma once
// The systemd service protocol, written against the documented wire format rather than libsystemd
// (not a dependency): readiness/status notifications (sd_notify(3)), the watchdog interval
// (sd_watchdog_enabled(3)) and socket activation (sd_listen_fds(3)). Every function is a silent
// no-op when its environment variables are absent, so the daemon behaves the same under sysvinit,
// by hand and in tests (operations.md §2.1, §2.7).

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace vipportd::agent::systemd {

/// Reads an environment variable; tests substitute a map.
using Getenv = std::function<const char*(const char*)>;
/// ::getenv.
Getenv process_environment();

/// Sends notification datagrams to $NOTIFY_SOCKET: a filesystem path, or an abstract socket
/// written with a leading '@' (sd_notify(3)). Thread-safe; each notify() is one sendto().
class Notifier {
  public:
    /// Disabled (every notify() returns true without doing anything) when NOTIFY_SOCKET is unset
    /// or empty.
    static Notifier from_environment(const Getenv& env = process_environment());
    /// A notifier for an explicit address ("" disables it), for tests.
    explicit Notifier(std::string address = {});

    [[nodiscard]] bool enabled() const { return !address_.empty(); }
    [[nodiscard]] const std::string& address() const { return address_; }

    /// Sends state ("READY=1\nSTATUS=..."). True when sent or disabled; on failure false, with
    /// the reason in *error (a bad address or the errno of socket()/sendto()).
    bool notify(std::string_view state, std::string* error = nullptr) const;

  private:
    std::string address_;
};

/// "RELOADING=1\nMONOTONIC_USEC=<now>": systemd >= 253 needs the timestamp to match a reload to
/// its READY=1; older versions ignore the extra field (operations.md §2.3).
std::string reloading_message();

/// The watchdog interval when $WATCHDOG_USEC is a positive integer and $WATCHDOG_PID is unset or
/// names this process (pid); nullopt otherwise. Pings are due every half of it
/// (sd_watchdog_enabled(3)).
std::optional<std::chrono::microseconds> watchdog_interval(
    pid_t pid, const Getenv& env = process_environment());

/// One file descriptor passed by socket activation.
struct ListenFd {
    int fd = -1;
    std::string name;  // from $LISTEN_FDNAMES, "unknown" when absent (sd_listen_fds_with_names(3))
};

/// The descriptors systemd passed (from fd 3 = SD_LISTEN_FDS_START on) when $LISTEN_PID names
/// this process and $LISTEN_FDS is a positive integer; empty otherwise. Malformed values count as
/// absent. The descriptors are marked close-on-exec. Does not unset the variables.
std::vector<ListenFd> listen_fds(pid_t pid, const Getenv& env = process_environment());

/// The first descriptor systemd passes (sd-daemon.h SD_LISTEN_FDS_START).
inline constexpr int kListenFdsStart = 3;

}  // namespace vipportd::agent::systemd
