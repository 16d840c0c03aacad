#include "agent/process_index.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <memory>
#include <string_view>
#include <unistd.h>

#include <sys/types.h>

namespace vipportd::agent {

namespace {

struct FdCloser {
    int fd = -1;
    ~FdCloser() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

struct DirCloser {
    void operator()(DIR* d) const { ::closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

template <typename T>
std::optional<T> parse_decimal(std::string_view s) {
    T v{};
    if (s.empty()) {
        return std::nullopt;
    }
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size()) {
        return std::nullopt;
    }
    return v;
}

// A directory under dirfd, opened for reading entries; null on any error.
DirPtr open_dir(int dirfd, const char* name) {
    const int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return nullptr;
    }
    DIR* d = ::fdopendir(fd);  // owns fd from here on
    if (d == nullptr) {
        ::close(fd);
    }
    return DirPtr(d);
}

// readlinkat(2) into a string; nullopt on error. Targets we care about are short
// ("socket:[4294967295]" is 19 bytes); longer ones are files and are cut, which is harmless.
std::optional<std::string> read_link(int dirfd, const char* name) {
    std::array<char, 64> buf{};
    const ssize_t n = ::readlinkat(dirfd, name, buf.data(), buf.size());
    if (n < 0) {
        return std::nullopt;
    }
    return std::string(buf.data(), static_cast<std::size_t>(n));
}

// Up to max bytes of a small /proc file; nullopt when it cannot be opened or read.
std::optional<std::string> read_small(const std::filesystem::path& path, std::size_t max) {
    FdCloser f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (f.fd < 0) {
        return std::nullopt;
    }
    std::string out(max, '\0');
    std::size_t got = 0;
    while (got < max) {
        const ssize_t n = ::read(f.fd, out.data() + got, max - got);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return std::nullopt;
        }
        if (n == 0) {
            break;
        }
        got += static_cast<std::size_t>(n);
    }
    out.resize(got);
    return out;
}

}  // namespace

std::optional<std::uint64_t> socket_inode_of_link(std::string_view target) {
    // net/socket.c sockfs_dname(): "socket:[%lu]" with the inode number.
    constexpr std::string_view prefix = "socket:[";
    if (!target.starts_with(prefix) || !target.ends_with(']')) {
        return std::nullopt;
    }
    return parse_decimal<std::uint64_t>(
        target.substr(prefix.size(), target.size() - prefix.size() - 1));
}

ProcessIndex::ProcessIndex(ProcessIndexOptions options) : options_(std::move(options)) {
    if (!options_.steady_now) {
        options_.steady_now = [] { return std::chrono::steady_clock::now(); };
    }
    if (!options_.system_now) {
        options_.system_now = [] { return std::chrono::system_clock::now(); };
    }
}

ProcessMap ProcessIndex::find(std::span<const std::uint64_t> inodes,
                              std::chrono::system_clock::time_point seen) {
    ProcessMap out;
    std::lock_guard lock(mutex_);
    std::vector<std::uint64_t> unknown;
    for (const std::uint64_t inode : inodes) {
        if (inode == 0 || out.contains(inode)) {
            continue;  // 0: sock_diag reports no inode for a socket being torn down
        }
        const auto it = holders_.find(inode);
        if (it != holders_.end() && still_holds(it->second, inode)) {
            if (auto p = describe(it->second.pid)) {
                out.emplace(inode, std::move(*p));
                continue;
            }
        }
        unknown.push_back(inode);
    }
    // A walk that started after the inodes were seen and did not find them has settled them.
    if (unknown.empty() || (last_walk_ && last_walk_started_ >= seen)) {
        return out;
    }
    const auto now = options_.steady_now();
    if (last_walk_ && now - *last_walk_ < options_.min_rescan_interval) {
        ++stats_.rate_limited;
        return out;
    }
    walk();
    for (const std::uint64_t inode : unknown) {
        const auto it = holders_.find(inode);
        if (it == holders_.end()) {
            continue;
        }
        if (auto p = describe(it->second.pid)) {
            out.emplace(inode, std::move(*p));
        }
    }
    return out;
}

std::optional<ProcessInfo> ProcessIndex::find_one(std::uint64_t inode) {
    const std::array<std::uint64_t, 1> one{inode};
    auto m = find(one, options_.system_now());
    if (auto it = m.find(inode); it != m.end()) {
        return std::move(it->second);
    }
    return std::nullopt;
}

ProcessIndex::Stats ProcessIndex::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

void ProcessIndex::walk() {
    last_walk_ = options_.steady_now();
    last_walk_started_ = options_.system_now();
    ++stats_.walks;
    stats_.unreadable = 0;
    stats_.error.clear();
    holders_.clear();

    FdCloser root{::open(options_.proc_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (root.fd < 0) {
        stats_.error = "open " + options_.proc_root.string() + ": " + std::strerror(errno);
        stats_.sockets = 0;
        return;
    }
    DirPtr procs = open_dir(root.fd, ".");
    if (!procs) {
        stats_.error = "opendir " + options_.proc_root.string() + ": " + std::strerror(errno);
        stats_.sockets = 0;
        return;
    }
    // /proc lists thread-group leaders only (proc_pid_readdir); threads share the leader's
    // descriptor table, so one fd directory per process is enough.
    while (const dirent* e = ::readdir(procs.get())) {
        const auto pid = parse_decimal<std::int32_t>(e->d_name);
        if (!pid || *pid <= 0) {
            continue;
        }
        const std::string fd_dir = std::string(e->d_name) + "/fd";
        DirPtr fds = open_dir(root.fd, fd_dir.c_str());
        if (!fds) {
            // EACCES (another user's process without CAP_DAC_READ_SEARCH) or ENOENT (exited).
            ++stats_.unreadable;
            continue;
        }
        const int fds_fd = ::dirfd(fds.get());
        while (const dirent* f = ::readdir(fds.get())) {
            const auto fd = parse_decimal<std::int32_t>(f->d_name);
            if (!fd) {
                continue;  // "." and ".."
            }
            const auto target = read_link(fds_fd, f->d_name);  // EACCES without ptrace access
            if (!target) {
                continue;
            }
            if (const auto inode = socket_inode_of_link(*target)) {
                // The lowest pid wins (usually the parent that created the socket); /proc
                // lists pids in ascending order, but nothing here depends on that.
                const auto [it, added] = holders_.try_emplace(*inode, Holder{*pid, *fd});
                if (!added && *pid < it->second.pid) {
                    it->second = Holder{*pid, *fd};
                }
            }
        }
    }
    stats_.sockets = holders_.size();
}

bool ProcessIndex::still_holds(const Holder& h, std::uint64_t inode) const {
    const std::string dir = options_.proc_root.string() + "/" + std::to_string(h.pid) + "/fd";
    FdCloser d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (d.fd < 0) {
        return false;
    }
    const auto target = read_link(d.fd, std::to_string(h.fd).c_str());
    return target && socket_inode_of_link(*target) == inode;
}

std::optional<ProcessInfo> ProcessIndex::describe(std::int32_t pid) const {
    const std::filesystem::path dir = options_.proc_root / std::to_string(pid);
    // TASK_COMM_LEN is 16 including the NUL (include/linux/sched.h); proc_pid_comm adds '\n'.
    auto comm = read_small(dir / "comm", 64);
    if (!comm) {
        return std::nullopt;  // exited since the walk
    }
    if (!comm->empty() && comm->back() == '\n') {
        comm->pop_back();
    }
    ProcessInfo p;
    p.pid = pid;
    p.name = std::move(*comm);
    // cmdline is NUL-separated argv (fs/proc/base.c proc_pid_cmdline_read); empty for kernel
    // threads and zombies. Only argv[0] is kept: arguments may carry secrets.
    if (auto cmdline = read_small(dir / "cmdline", 4096)) {
        p.argv0 = cmdline->substr(0, cmdline->find('\0'));
    }
    return p;
}

}  // namespace vipportd::agent
