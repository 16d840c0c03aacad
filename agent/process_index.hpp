#pragma once
// ProcessIndex: which process holds a socket, from its inode (sock_diag's idiag_inode).
//
// The kernel has no "socket inode -> pid" query; `ss -p`, lsof and netstat all walk every
// /proc/<pid>/fd/* symlink, whose target reads "socket:[<inode>]" (fs/proc/fd.c, net/socket.c
// sockfs_dname). A walk costs one readlink per open descriptor of the host, so it is cached:
//   - a full walk maps every socket inode it saw to (pid, fd); the next walk replaces the map;
//   - a cached hit is re-checked with one readlink of /proc/<pid>/fd/<fd> (the process may have
//     closed it), and the process's name is re-read (it may have called prctl or exec since);
//   - an unknown inode triggers a walk, at most one per min_rescan_interval (a storm of new
//     short-lived sockets cannot make every request walk /proc);
//   - an inode that a walk started after the socket was seen did not find is not walked for
//     again: its holder is unreadable (another user, hidepid) or gone.
// A process that cannot be read (permissions, exited mid-walk) is skipped: its sockets have no
// owner, never an error. Which permissions reading other users' descriptors needs is stated in
// the README ("Provenance"): CAP_SYS_PTRACE, plus CAP_DAC_READ_SEARCH for another uid.
//
// Thread-safe: one mutex; a walk runs under it, so concurrent callers wait for it and use its
// result instead of walking again.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>

namespace vipportd::agent {

struct ProcessInfo {
    std::int32_t pid = 0;  // the lowest pid holding the socket (fork and SCM_RIGHTS share it)
    std::string name;      // /proc/<pid>/comm without the newline (at most 15 bytes, TASK_COMM_LEN)
    std::string argv0;     // first string of /proc/<pid>/cmdline; empty when unreadable or none
    friend bool operator==(const ProcessInfo&, const ProcessInfo&) = default;
};

using ProcessMap = std::unordered_map<std::uint64_t, ProcessInfo>;  // socket inode -> holder

/// What the claims API and the query CLI need. Tests substitute their own.
class ProcessLookup {
  public:
    virtual ~ProcessLookup() = default;
    /// The holders of the sockets with these inodes, for those that can be found. `seen` is when
    /// the inodes were observed (the snapshot's time): a walk that started later and did not
    /// find an inode settles it as ownerless. Never fails; may block for one /proc walk.
    [[nodiscard]] virtual ProcessMap find(std::span<const std::uint64_t> inodes,
                                          std::chrono::system_clock::time_point seen) = 0;
};

struct ProcessIndexOptions {
    std::filesystem::path proc_root = "/proc";  // a fake tree in unit tests
    /// At most one full walk per interval. A walk costs one readlink per open descriptor of the
    /// host: 2 ms for 74 processes, 16 ms for 374 processes with 3,200 descriptors (measured,
    /// README "Provenance"). The interval bounds that cost under a storm of new sockets.
    std::chrono::milliseconds min_rescan_interval{1000};
    /// Clocks, injectable so that tests need no sleeps.
    std::function<std::chrono::steady_clock::time_point()> steady_now;
    std::function<std::chrono::system_clock::time_point()> system_now;
};

class ProcessIndex final : public ProcessLookup {
  public:
    explicit ProcessIndex(ProcessIndexOptions options = {});

    [[nodiscard]] ProcessMap find(std::span<const std::uint64_t> inodes,
                                  std::chrono::system_clock::time_point seen) override;
    /// One inode, seen now.
    [[nodiscard]] std::optional<ProcessInfo> find_one(std::uint64_t inode);

    struct Stats {
        std::uint64_t walks = 0;         // full /proc walks so far
        std::uint64_t rate_limited = 0;  // lookups that wanted a walk and did not get one
        std::uint64_t unreadable = 0;    // processes whose fd directory the last walk skipped
        std::size_t sockets = 0;         // socket inodes the last walk found
        std::string error;               // the last walk's failure to open proc_root, if any
    };
    [[nodiscard]] Stats stats() const;

  private:
    struct Holder {
        std::int32_t pid = 0;
        std::int32_t fd = 0;
    };
    void walk();  // mutex_ held
    [[nodiscard]] bool still_holds(const Holder& h, std::uint64_t inode) const;
    [[nodiscard]] std::optional<ProcessInfo> describe(std::int32_t pid) const;

    ProcessIndexOptions options_;
    mutable std::mutex mutex_;
    std::unordered_map<std::uint64_t, Holder> holders_;  // from the last walk
    std::optional<std::chrono::steady_clock::time_point> last_walk_;
    std::chrono::system_clock::time_point last_walk_started_{};  // wall clock, vs `seen`
    Stats stats_;
};

/// Parses a /proc/<pid>/fd symlink target: "socket:[12345]" -> 12345; nullopt for anything else
/// (files, pipes, anon inodes, malformed numbers).
[[nodiscard]] std::optional<std::uint64_t> socket_inode_of_link(std::string_view target);

}  // namespace vipportd::agent
