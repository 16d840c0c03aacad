#pragma once
// SnapshotService: runs every source on its own worker thread and hands out fresh snapshots.
// Guarantee: the snapshot passed to a callback comes from a scan that started after the request
// was made. Requests that arrive while a scan runs wait for the next scan, which serves all of
// them at once (single flight), so load never multiplies kernel work.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/model.hpp"
#include "agent/source.hpp"

namespace vipportd::agent {

/// What the HTTP layer needs: an asynchronous fresh snapshot. Tests substitute their own.
class SnapshotProvider {
  public:
    using Callback = std::function<void(SnapshotPtr)>;
    virtual ~SnapshotProvider() = default;
    /// cb is invoked exactly once, on a thread of the provider (post back to your executor).
    virtual void async_fresh(Callback cb) = 0;

    /// Fresh snapshots of several network namespaces at once ("" = the daemon's own; otherwise
    /// VipEntry::netns). cb is invoked exactly once with one snapshot per entry of netns, in the
    /// same order (duplicates allowed). A namespace that cannot be read yields a snapshot whose
    /// failed required source says why. The default serves "" from async_fresh() and fails
    /// every other namespace (providers that know no namespaces).
    using ManyCallback = std::function<void(std::vector<SnapshotPtr>)>;
    virtual void async_fresh_many(std::vector<std::string> netns, ManyCallback cb);
};

/// A snapshot that only says "this source failed" (for a namespace that cannot be read).
SnapshotPtr failed_snapshot(std::string source_name, std::string error);

struct SourceSlot {
    std::unique_ptr<PortSource> source;
    bool required = true;
};

class SnapshotService final : public SnapshotProvider {
  public:
    explicit SnapshotService(std::vector<SourceSlot> sources);

    /// Sources built by the worker thread itself before its first scan: a namespace's worker
    /// enters the namespace first (agent/namespaces.hpp), so every socket the sources open, and
    /// every /proc/thread-self/net file they read, belongs to that namespace. An error (set
    /// *error, return no slots) fails every scan as the required source `name`.
    struct WorkerSetup {
        std::string name;
        std::function<std::vector<SourceSlot>(std::string* error)> make;
    };
    explicit SnapshotService(WorkerSetup setup);
    ~SnapshotService() override;  // stops the worker; pending callbacks still get a snapshot
    SnapshotService(const SnapshotService&) = delete;
    SnapshotService& operator=(const SnapshotService&) = delete;

    void async_fresh(Callback cb) override;
    /// Where callbacks run: by default on the scan worker; main passes "post to the HTTP
    /// io_context" so that rendering answers never delays the next scan.
    using Dispatcher = std::function<void(std::function<void()>)>;
    void set_dispatcher(Dispatcher dispatch);
    /// Batching under load: once requests have recently overlapped (a batch of two or more, or
    /// a request that arrived during a scan, within the last second or the last two scans), the
    /// worker lets a burst finish arriving before it scans: it sleeps `gap` at a time while each
    /// gap brings new requests, `max` in all (arrivals meanwhile do not wake it). Only while scans
    /// are long (the last one took 10 x max or more): a short scan is cheaper to repeat than to
    /// wait for. Every request in the batch still arrived before the scan started (the freshness
    /// guarantee); 64 pollers that ask at once then share one scan instead of two. A lone poller
    /// never waits. gap 0 turns it off (default).
    void set_coalescing(std::chrono::microseconds gap, std::chrono::microseconds max);
    /// Stops the worker now and destroys the callbacks still waiting, on the calling thread,
    /// without calling them: for an orderly exit while the executor they would post to (and
    /// the connections they hold) still exist. Later async_fresh() calls are dropped likewise.
    void shutdown();
    /// Blocking convenience for start-up and the CLI: one fresh scan.
    SnapshotPtr fresh();
    /// Runs the sources right now on the calling thread (no worker involved). On the worker, a
    /// source that may_be_slow() (a rule dump after a change) runs on a second thread beside
    /// the socket dumps: the two kernel reads overlap instead of adding up.
    SnapshotPtr scan_now();
    /// The last scan's snapshot; once the next scan starts, only its summary() (its sources,
    /// time and addresses, not its claims).
    [[nodiscard]] SnapshotPtr latest() const;

  private:
    /// Runs one job at a time on a thread of its own, created by the scan worker (so it shares
    /// the worker's network namespace: new threads inherit their creator's, setns(2)).
    class SideThread;
    void run();

    std::vector<SourceSlot> sources_;
    // The last claim list of each source (weak: never kept alive for this) and its index
    // (scan_mutex_; during a scan each thread touches only the entries of the sources it collects).
    using IndexCache =
        std::pair<std::weak_ptr<const std::vector<Claim>>, std::shared_ptr<const ClaimIndex>>;
    std::map<const PortSource*, IndexCache> indexes_;
    std::string setup_name_;   // WorkerSetup::name
    std::string setup_error_;  // the worker setup failed: every scan reports this
    std::mutex scan_mutex_;    // one scan at a time, whoever runs it (and the worker setup)
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::vector<Callback> waiting_;
    Dispatcher dispatch_;
    SnapshotPtr latest_;
    std::uint64_t sequence_ = 0;
    std::chrono::microseconds coalesce_gap_{0};
    std::chrono::microseconds coalesce_max_{0};
    std::chrono::steady_clock::time_point overlapped_{};  // when requests last overlapped
    std::chrono::microseconds last_scan_{0};              // how long the worker's last scan took
    bool stopping_ = false;
    bool coalescing_ = false;     // the worker is letting a burst arrive (not to be woken)
    bool dropped_ = false;        // shutdown() was called
    SideThread* side_ = nullptr;  // set by the worker while it runs (scan_mutex_)
    std::thread::id worker_id_;   // set by the worker before it scans
    std::thread worker_;
};

}  // namespace vipportd::agent
