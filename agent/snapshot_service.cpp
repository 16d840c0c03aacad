#include "agent/snapshot_service.hpp"

#include <algorithm>
#include <future>
#include <optional>

namespace vipportd::agent {

SnapshotPtr failed_snapshot(std::string source_name, std::string error) {
    auto snap = std::make_shared<Snapshot>();
    snap->taken = std::chrono::system_clock::now();
    snap->sources.push_back(
        SourceStatus{std::move(source_name), true, false, std::move(error), {}});
    return snap;
}

void SnapshotProvider::async_fresh_many(std::vector<std::string> netns, ManyCallback cb) {
    auto fill = [netns](const SnapshotPtr& own) {
        std::vector<SnapshotPtr> out;
        out.reserve(netns.size());
        for (const auto& n : netns) {
            out.push_back(
                n.empty() ? own
                          : failed_snapshot("netns " + n, "network namespaces are not configured"));
        }
        return out;
    };
    if (std::none_of(netns.begin(), netns.end(), [](const std::string& n) { return n.empty(); })) {
        cb(fill(nullptr));  // nothing to scan
        return;
    }
    async_fresh([cb = std::move(cb), fill = std::move(fill)](SnapshotPtr s) { cb(fill(s)); });
}

SnapshotService::SnapshotService(std::vector<SourceSlot> sources)
    : sources_(std::move(sources)), worker_([this] { run(); }) {}

SnapshotService::SnapshotService(WorkerSetup setup) : setup_name_(std::move(setup.name)) {
    // The worker takes scan_mutex_ before this constructor returns, so no scan (scan_now() on
    // another thread included) can see the sources half-built.
    std::promise<void> locked;
    auto is_locked = locked.get_future();
    worker_ = std::thread([this, make = std::move(setup.make), &locked] {
        {
            std::unique_lock scan_lock(scan_mutex_);
            locked.set_value();
            std::string error;
            sources_ = make(&error);
            if (!error.empty()) {
                sources_.clear();
                setup_error_ = std::move(error);
            }
        }
        run();
    });
    is_locked.wait();
}

SnapshotService::~SnapshotService() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (worker_.joinable()) {
        worker_.join();
    }
}

void SnapshotService::shutdown() {
    std::vector<Callback> dropped;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        dropped_ = true;
        dropped.swap(waiting_);
    }
    wake_.notify_all();
    if (worker_.joinable()) {
        worker_.join();
    }
    std::lock_guard lock(mutex_);
    dropped.insert(dropped.end(), std::make_move_iterator(waiting_.begin()),
                   std::make_move_iterator(waiting_.end()));
    waiting_.clear();
}

void SnapshotService::async_fresh(Callback cb) {
    {
        std::lock_guard lock(mutex_);
        if (dropped_) {
            return;  // after shutdown(): cb is destroyed here, never called
        }
        waiting_.push_back(std::move(cb));
        if (coalescing_) {
            // The worker looks again when its gap ends: waking it for every arrival of a burst
            // costs a futex wake and a context switch per request, more than the batching saves.
            return;
        }
    }
    wake_.notify_one();
}

SnapshotPtr SnapshotService::fresh() {
    std::promise<SnapshotPtr> done;
    auto result = done.get_future();
    async_fresh([&done](SnapshotPtr s) { done.set_value(std::move(s)); });
    return result.get();
}

void SnapshotService::set_coalescing(std::chrono::microseconds gap, std::chrono::microseconds max) {
    std::lock_guard lock(mutex_);
    coalesce_gap_ = gap;
    coalesce_max_ = std::max(max, gap);
}

void SnapshotService::set_dispatcher(Dispatcher dispatch) {
    std::lock_guard lock(mutex_);
    dispatch_ = std::move(dispatch);
}

SnapshotPtr SnapshotService::latest() const {
    std::lock_guard lock(mutex_);
    return latest_;
}

class SnapshotService::SideThread {
  public:
    SideThread() : thread_([this] { loop(); }) {}
    ~SideThread() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }
    SideThread(const SideThread&) = delete;
    SideThread& operator=(const SideThread&) = delete;

    void start(std::function<void()> job) {
        {
            std::lock_guard lock(mutex_);
            job_ = std::move(job);
        }
        cv_.notify_all();
    }
    void wait() {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [this] { return !job_; });
    }

  private:
    void loop() {
        std::unique_lock lock(mutex_);
        for (;;) {
            cv_.wait(lock, [this] { return stop_ || job_; });
            if (!job_) {
                return;
            }
            auto job = job_;
            lock.unlock();
            job();
            lock.lock();
            job_ = nullptr;
            cv_.notify_all();
        }
    }

    std::mutex mutex_;
    std::condition_variable cv_;
    std::function<void()> job_;
    bool stop_ = false;
    std::thread thread_;
};

SnapshotPtr SnapshotService::scan_now() {
    std::lock_guard scan_lock(scan_mutex_);
    {
        // latest() keeps answering (sources, time, addresses), but without the previous claims
        // and sockets: this scan must not build its own while holding those (peak memory).
        std::lock_guard lock(mutex_);
        if (latest_ && (latest_->sockets || !latest_->claim_lists.empty())) {
            latest_ = latest_->summary();
        }
    }
    auto snap = std::make_shared<Snapshot>();
    snap->taken = std::chrono::system_clock::now();
    if (!setup_error_.empty()) {
        snap->sources.push_back(SourceStatus{setup_name_, true, false, setup_error_, {}});
    }
    struct Outcome {
        SourceStatus status;
        netlink::Result<Collected> collected = netlink::Error::of(netlink::Errc::system, "");
        std::shared_ptr<const ClaimIndex> index;  // of collected->claims
        IndexCache* cache = nullptr;              // this source's entry in indexes_
    };
    std::vector<Outcome> outcomes(sources_.size());
    for (std::size_t i = 0; i < sources_.size(); ++i) {
        outcomes[i].cache = &indexes_[sources_[i].source.get()];  // no map changes once threads run
    }
    const auto collect = [&](std::size_t i) {
        const auto& slot = sources_[i];
        Outcome& o = outcomes[i];
        o.status = SourceStatus{std::string(slot.source->name()), slot.required, true, {}, {}};
        const auto start = std::chrono::steady_clock::now();
        o.collected = slot.source->collect_shared();
        o.status.duration = std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - start);
        if (o.collected && o.collected->claims && !o.collected->claims->empty()) {
            // Indexed on the thread that collected the list: after a rule change the index of
            // 10,000 DNAT rules' claims (~1.7 ms) is built beside the socket scan instead of
            // after it. A source that returns the same list as last time (nf_tables while the
            // generation stands) keeps its index: built once per ruleset, not per scan. The list
            // is remembered weakly: holding it would keep the previous ruleset's claims alive
            // while the next rule dump builds new ones (peak memory); a list that died cannot be
            // the one returned now.
            if (o.cache->first.lock() != o.collected->claims) {
                *o.cache = {o.collected->claims,
                            std::make_shared<const ClaimIndex>(*o.collected->claims)};
            }
            o.index = o.cache->second;
        }
    };
    // The first source (the sockets) stays on this thread; the others go to the side thread
    // when one of them is about to do real work. Each source is still used by one thread at a
    // time, and the merge below keeps the sources' order.
    const bool parallel = side_ != nullptr && std::this_thread::get_id() == worker_id_ &&
                          sources_.size() > 1 &&
                          std::any_of(sources_.begin() + 1, sources_.end(),
                                      [](const SourceSlot& s) { return s.source->may_be_slow(); });
    if (parallel) {
        side_->start([&] {
            for (std::size_t i = 1; i < sources_.size(); ++i) {
                collect(i);
            }
        });
        collect(0);
        side_->wait();
    } else {
        for (std::size_t i = 0; i < sources_.size(); ++i) {
            collect(i);
        }
    }
    for (std::size_t i = 0; i < sources_.size(); ++i) {
        SourceStatus status = std::move(outcomes[i].status);
        auto& collected = outcomes[i].collected;
        if (collected) {
            if (collected->sockets) {
                snap->sockets = std::move(collected->sockets);
            }
            if (collected->addresses) {
                snap->addresses = std::move(collected->addresses);
            }
            if (collected->claims && !collected->claims->empty()) {
                snap->claim_indexes.push_back(std::move(outcomes[i].index));
                snap->claim_lists.push_back(std::move(collected->claims));
            }
        } else {
            status.ok = false;
            status.error = netlink::to_string(collected.error());
        }
        snap->sources.push_back(std::move(status));
    }
    std::lock_guard lock(mutex_);
    snap->sequence = ++sequence_;
    latest_ = snap;
    return snap;
}

void SnapshotService::run() {
    // Created here, on the worker, so it lives in the worker's namespace; gone before run()
    // returns. Only needed when there is something to run beside the socket dumps.
    std::optional<SideThread> side;
    {
        std::lock_guard scan_lock(scan_mutex_);
        worker_id_ = std::this_thread::get_id();
        if (sources_.size() > 1) {
            side.emplace();
            side_ = &*side;
        }
    }
    struct Detach {
        SnapshotService* self;
        ~Detach() {
            std::lock_guard scan_lock(self->scan_mutex_);
            self->side_ = nullptr;
        }
    } detach{this};
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return stopping_ || !waiting_.empty(); });
        if (waiting_.empty()) {
            return;  // stopping with nobody waiting
        }
        using Clock = std::chrono::steady_clock;
        // Only when scans are long next to the wait (at most `max`, at most a tenth of the last
        // scan): with short scans (1.5 ms with few sockets, most of it the kernel's walk of its
        // empty hash buckets) closed-loop clients lose more to the wait than the shared scan
        // saves (wrk at the router scale: 18k requests/s without, 16k with).
        if (coalesce_gap_.count() > 0 && !stopping_ && last_scan_ >= 10 * coalesce_max_ &&
            Clock::now() - overlapped_ <
                std::max<Clock::duration>(std::chrono::seconds(1), 2 * last_scan_)) {
            // Load: let the burst finish arriving (set_coalescing()). Arrivals do not wake the
            // worker meanwhile (async_fresh); it sleeps a gap at a time and goes once a whole
            // gap brought nobody new, or max has passed.
            coalescing_ = true;
            const auto until = Clock::now() + coalesce_max_;
            for (std::size_t seen = waiting_.size();;) {
                const auto deadline = std::min(Clock::now() + coalesce_gap_, until);
                wake_.wait_until(lock, deadline, [&] { return stopping_; });
                if (stopping_ || waiting_.size() == seen || Clock::now() >= until) {
                    break;
                }
                seen = waiting_.size();
            }
            coalescing_ = false;
        }
        // Everyone waiting now asked before this scan starts, so this scan is fresh for all of
        // them; requests arriving during the scan wait for the next one.
        std::vector<Callback> batch;
        batch.swap(waiting_);
        lock.unlock();
        const auto scan_start = Clock::now();
        SnapshotPtr snap = scan_now();
        lock.lock();
        last_scan_ =
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - scan_start);
        if (batch.size() > 1 || !waiting_.empty()) {
            overlapped_ = Clock::now();
        }
        Dispatcher dispatch = dispatch_;
        lock.unlock();
        for (auto& cb : batch) {
            if (dispatch) {
                // The worker only hands out the snapshot; the answer is rendered elsewhere, so
                // the next scan can start at once.
                dispatch([cb = std::move(cb), snap] { cb(snap); });
            } else {
                cb(snap);
            }
        }
        lock.lock();
    }
}

}  // namespace vipportd::agent
