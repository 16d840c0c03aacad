#include "agent/namespaces.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

namespace vipportd::agent {

namespace {

std::string sys_error(std::string_view what, const std::filesystem::path& path, int err) {
    return std::string(what) + " " + path.string() + ": " + std::strerror(err);
}

}  // namespace

std::filesystem::path netns_path(std::string_view netns) {
    if (!netns.empty() && netns.front() == '/') {
        return std::filesystem::path(netns);
    }
    return std::filesystem::path("/run/netns") / std::string(netns);
}

std::optional<NetnsId> identify_netns(const std::filesystem::path& path, std::string* error) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        *error = sys_error("stat", path, errno);
        return std::nullopt;
    }
    // A namespace file is an nsfs inode (NSFS_MAGIC, linux/magic.h); an ordinary file left at
    // /run/netns/x after a failed `ip netns add` is not one.
    struct statfs fs {};
    if (::statfs(path.c_str(), &fs) != 0) {
        *error = sys_error("statfs", path, errno);
        return std::nullopt;
    }
    if (static_cast<unsigned long>(fs.f_type) != NSFS_MAGIC) {
        *error = path.string() + " is not a network namespace file";
        return std::nullopt;
    }
    return NetnsId{st.st_dev, st.st_ino};
}

std::string enter_netns(const std::filesystem::path& path, const NetnsId& expected) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return sys_error("open", path, errno);
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || NetnsId{st.st_dev, st.st_ino} != expected) {
        ::close(fd);
        return path.string() + " changed while it was being entered";
    }
    // CLONE_NEWNET: EINVAL if fd is another kind of namespace; EPERM without CAP_SYS_ADMIN
    // (setns(2)). Only this thread moves.
    if (::setns(fd, CLONE_NEWNET) != 0) {
        const int err = errno;
        ::close(fd);
        return sys_error("setns(CLONE_NEWNET)", path, err) +
               (err == EPERM ? " (entering a namespace needs CAP_SYS_ADMIN)" : "");
    }
    ::close(fd);
    return {};
}

NamespaceScanners::NamespaceScanners(std::shared_ptr<SnapshotService> own, SourcesFactory factory)
    : own_(std::move(own)), factory_(std::move(factory)) {}

NamespaceScanners::~NamespaceScanners() = default;

void NamespaceScanners::async_fresh(Callback cb) { own_->async_fresh(std::move(cb)); }

std::shared_ptr<SnapshotService> NamespaceScanners::scanner_for(const std::string& netns,
                                                                SnapshotPtr* failed) {
    const std::string source = "netns " + netns;
    const auto path = netns_path(netns);
    std::string error;
    // Checked on every request: a namespace deleted and re-added under the same name is a new
    // namespace, and the old scanner's sockets would keep reading the dead one.
    const auto id = identify_netns(path, &error);
    if (!id) {
        *failed = failed_snapshot(source, error);
        return nullptr;
    }
    std::shared_ptr<SnapshotService> stale;  // destroyed (worker joined) outside the lock
    std::lock_guard lock(mutex_);
    if (stopped_) {
        *failed = failed_snapshot(source, "vipportd is stopping");
        return nullptr;
    }
    if (auto it = scanners_.find(netns); it != scanners_.end()) {
        if (it->second.id == *id) {
            return it->second.service;
        }
        stale = std::move(it->second.service);
        scanners_.erase(it);
    }
    if (scanners_.size() >= kMaxNamespaces) {
        *failed = failed_snapshot(source, "more than " + std::to_string(kMaxNamespaces) +
                                              " network namespaces are in use");
        return nullptr;
    }
    SnapshotService::WorkerSetup setup;
    setup.name = source;
    setup.make = [factory = factory_, path, id = *id](std::string* err) {
        if (auto e = enter_netns(path, id); !e.empty()) {
            *err = std::move(e);
            return std::vector<SourceSlot>{};
        }
        // /proc/self would be the thread group leader, which stays in the daemon's namespace.
        return factory("/proc/thread-self/net");
    };
    auto service = std::make_shared<SnapshotService>(std::move(setup));
    if (dispatch_) {
        service->set_dispatcher(dispatch_);
    }
    service->set_coalescing(coalesce_gap_, coalesce_max_);
    scanners_.emplace(netns, Scanner{*id, service});
    return service;
}

void NamespaceScanners::async_fresh_many(std::vector<std::string> netns, ManyCallback cb) {
    if (netns.size() == 1) {
        // The usual single-VIP question: no join to build (this runs for every request).
        SnapshotPtr failed;
        auto service = service_for(netns.front(), &failed);
        if (!service) {
            return cb({std::move(failed)});
        }
        return service->async_fresh(
            [cb = std::move(cb)](SnapshotPtr snap) { cb({std::move(snap)}); });
    }
    // One scan per distinct namespace, joined; the last one to finish answers.
    struct Join {
        std::mutex mutex;
        std::vector<SnapshotPtr> out;
        std::size_t remaining = 0;
        ManyCallback cb;
    };
    auto join = std::make_shared<Join>();
    join->out.resize(netns.size());
    join->cb = std::move(cb);

    std::map<std::string, std::vector<std::size_t>> wanted;
    for (std::size_t i = 0; i < netns.size(); ++i) {
        wanted[netns[i]].push_back(i);
    }
    std::vector<std::pair<std::shared_ptr<SnapshotProvider>, std::vector<std::size_t>>> scans;
    for (auto& [name, slots] : wanted) {
        SnapshotPtr failed;
        if (auto service = service_for(name, &failed)) {
            scans.emplace_back(std::move(service), std::move(slots));
        } else {
            for (const auto i : slots) {
                join->out[i] = failed;
            }
        }
    }
    if (scans.empty()) {
        return join->cb(std::move(join->out));
    }
    join->remaining = scans.size();
    for (auto& [service, slots] : scans) {
        service->async_fresh([join, slots = std::move(slots)](SnapshotPtr snap) {
            std::unique_lock lock(join->mutex);
            for (const auto i : slots) {
                join->out[i] = snap;
            }
            if (--join->remaining == 0) {
                lock.unlock();
                join->cb(std::move(join->out));
            }
        });
    }
}

void NamespaceScanners::set_dispatcher(SnapshotService::Dispatcher dispatch) {
    own_->set_dispatcher(dispatch);
    std::lock_guard lock(mutex_);
    for (auto& [name, scanner] : scanners_) {
        scanner.service->set_dispatcher(dispatch);
    }
    dispatch_ = std::move(dispatch);
}

void NamespaceScanners::set_coalescing(std::chrono::microseconds gap,
                                       std::chrono::microseconds max) {
    own_->set_coalescing(gap, max);
    std::lock_guard lock(mutex_);
    for (auto& [name, scanner] : scanners_) {
        scanner.service->set_coalescing(gap, max);
    }
    coalesce_gap_ = gap;
    coalesce_max_ = max;
}

void NamespaceScanners::retain(const std::set<std::string>& keep) {
    std::vector<std::shared_ptr<SnapshotService>> stopped;
    {
        std::lock_guard lock(mutex_);
        for (auto it = scanners_.begin(); it != scanners_.end();) {
            if (keep.contains(it->first)) {
                ++it;
            } else {
                stopped.push_back(std::move(it->second.service));
                it = scanners_.erase(it);
            }
        }
    }
    // Destroying a service joins its worker after it has served every callback still waiting
    // (~SnapshotService), so this may wait for one scan; never on the worker itself, which
    // holds no reference to its own service.
}

void NamespaceScanners::shutdown() {
    std::map<std::string, Scanner> scanners;
    {
        std::lock_guard lock(mutex_);
        stopped_ = true;
        scanners.swap(scanners_);
    }
    for (auto& [name, scanner] : scanners) {
        scanner.service->shutdown();
    }
    own_->shutdown();
}

std::size_t NamespaceScanners::namespaces() const {
    std::lock_guard lock(mutex_);
    return scanners_.size();
}

}  // namespace vipportd::agent
