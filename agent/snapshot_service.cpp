#include "agent/snapshot_service.hpp"

#include <algorithm>
#include <future>

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
    }
    wake_.notify_one();
}

SnapshotPtr SnapshotService::fresh() {
    std::promise<SnapshotPtr> done;
    auto result = done.get_future();
    async_fresh([&done](SnapshotPtr s) { done.set_value(std::move(s)); });
    return result.get();
}

void SnapshotService::set_dispatcher(Dispatcher dispatch) {
    std::lock_guard lock(mutex_);
    dispatch_ = std::move(dispatch);
}

SnapshotPtr SnapshotService::latest() const {
    std::lock_guard lock(mutex_);
    return latest_;
}

SnapshotPtr SnapshotService::scan_now() {
    std::lock_guard scan_lock(scan_mutex_);
    auto snap = std::make_shared<Snapshot>();
    snap->taken = std::chrono::system_clock::now();
    if (!setup_error_.empty()) {
        snap->sources.push_back(SourceStatus{setup_name_, true, false, setup_error_, {}});
    }
    for (auto& slot : sources_) {
        SourceStatus status{std::string(slot.source->name()), slot.required, true, {}, {}};
        const auto start = std::chrono::steady_clock::now();
        auto collected = slot.source->collect_shared();
        status.duration = std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - start);
        if (collected) {
            if (collected->sockets) {
                snap->sockets = std::move(collected->sockets);
            }
            if (collected->addresses) {
                snap->addresses = std::move(collected->addresses);
            }
            if (collected->claims && !collected->claims->empty()) {
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
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return stopping_ || !waiting_.empty(); });
        if (waiting_.empty()) {
            return;  // stopping with nobody waiting
        }
        // Everyone waiting now asked before this scan starts, so this scan is fresh for all of
        // them; requests arriving during the scan wait for the next one.
        std::vector<Callback> batch;
        batch.swap(waiting_);
        lock.unlock();
        SnapshotPtr snap = scan_now();
        lock.lock();
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
