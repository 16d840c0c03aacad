#pragma once
// VIPs in other network namespaces. Each namespace gets its own SnapshotService whose worker
// thread enters the namespace (setns(2) changes only the calling thread's network namespace) and
// builds its sources there: netlink and raw sockets answer for the namespace they were created in
// for their whole life (kernel.md §1.9), and /proc/thread-self/net shows the worker's namespace.
// Namespaces are never merged: a VIP is looked up only in the snapshot of its own namespace.
//
// Entering a namespace needs CAP_SYS_ADMIN (setns(2), "EPERM"), and systemd's
// RestrictNamespaces= must allow "net": both are an opt-in of the unit (README "Namespaces").

#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include "agent/snapshot_service.hpp"

namespace vipportd::agent {

/// "name" -> /run/netns/name (iproute2 NETNS_RUN_DIR, lib/namespace.c); an absolute path as is.
std::filesystem::path netns_path(std::string_view netns);

/// A namespace's identity: the nsfs inode behind its file (what `ip netns identify` compares).
struct NetnsId {
    dev_t dev = 0;
    ino_t ino = 0;
    friend bool operator==(const NetnsId&, const NetnsId&) = default;
};

/// stat(2) of the namespace file; nullopt with *error set ("stat /run/netns/x: No such file or
/// directory", or "... is not a network namespace").
std::optional<NetnsId> identify_netns(const std::filesystem::path& path, std::string* error);

/// Moves the calling thread into the network namespace at path. Returns "" or why not.
std::string enter_netns(const std::filesystem::path& path, const NetnsId& expected);

/// The SnapshotProvider the HTTP layer sees: the daemon's own namespace plus one scanner per
/// other namespace, created when a VIP first needs it and stopped when no VIP names it.
class NamespaceScanners final : public SnapshotProvider {
  public:
    /// Builds the enabled sources on the calling thread, which is inside the namespace;
    /// proc_net is where that thread sees its namespace's /proc/net files.
    using SourcesFactory = std::function<std::vector<SourceSlot>(const std::filesystem::path&)>;

    /// At most this many other namespaces are scanned at once (one thread and a few sockets
    /// each); a request naming one more gets a failed snapshot saying so.
    static constexpr std::size_t kMaxNamespaces = 64;

    NamespaceScanners(std::shared_ptr<SnapshotService> own, SourcesFactory factory);
    ~NamespaceScanners() override;
    NamespaceScanners(const NamespaceScanners&) = delete;
    NamespaceScanners& operator=(const NamespaceScanners&) = delete;

    void async_fresh(Callback cb) override;  // the daemon's own namespace
    void async_fresh_many(std::vector<std::string> netns, ManyCallback cb) override;

    /// Applies to the own namespace's service and every namespace scanner, now and later.
    void set_dispatcher(SnapshotService::Dispatcher dispatch);
    /// SnapshotService::set_coalescing() for every service, now and later.
    void set_coalescing(std::chrono::microseconds gap, std::chrono::microseconds max);
    /// Stops the scanners of namespaces that are not in keep (the registry changed).
    void retain(const std::set<std::string>& keep);
    /// SnapshotService::shutdown() for every service.
    void shutdown();
    [[nodiscard]] std::size_t namespaces() const;

  private:
    struct Scanner {
        NetnsId id;
        std::shared_ptr<SnapshotService> service;
    };
    /// The scanner for netns, (re)created when the file now names another namespace (deleted
    /// and re-added with the same name); or a failed snapshot saying why there is none.
    std::shared_ptr<SnapshotService> scanner_for(const std::string& netns, SnapshotPtr* failed);
    /// The same, with "" meaning the daemon's own namespace.
    std::shared_ptr<SnapshotService> service_for(const std::string& netns, SnapshotPtr* failed) {
        return netns.empty() ? own_ : scanner_for(netns, failed);
    }

    std::shared_ptr<SnapshotService> own_;
    SourcesFactory factory_;
    mutable std::mutex mutex_;
    std::map<std::string, Scanner> scanners_;
    SnapshotService::Dispatcher dispatch_;
    std::chrono::microseconds coalesce_gap_{0};
    std::chrono::microseconds coalesce_max_{0};
    bool stopped_ = false;
};

}  // namespace vipportd::agent
