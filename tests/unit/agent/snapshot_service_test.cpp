#include "agent/snapshot_service.hpp"

#include <atomic>
#include <future>
#include <latch>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

namespace vipportd::agent {
namespace {

// A source whose collect() blocks until released, so a test controls when a scan ends.
class GateSource final : public PortSource {
  public:
    std::string_view name() const override { return "gate"; }
    netlink::Result<std::vector<Claim>> collect() override {
        const int n = ++calls;
        started.count_down();
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return released >= n; });
        Claim c;
        c.ports = PortSet::single(static_cast<std::uint16_t>(n));
        c.scope = AddressScope::all(Family::v4);
        return std::vector<Claim>{c};
    }
    void release(int n) {
        {
            std::lock_guard lock(m);
            released = n;
        }
        cv.notify_all();
    }
    std::atomic<int> calls{0};
    std::latch started{1};
    std::mutex m;
    std::condition_variable cv;
    int released = 0;
};

class FailingSource final : public PortSource {
  public:
    std::string_view name() const override { return "nftables"; }
    netlink::Result<std::vector<Claim>> collect() override {
        return netlink::Error::sys(EPERM, "nf_tables: GETGEN");
    }
};

TEST(SnapshotService, RequestsDuringAScanWaitForTheNextScanWhichServesThemAll) {
    auto gate = std::make_unique<GateSource>();
    GateSource* g = gate.get();
    std::vector<SourceSlot> slots;
    slots.push_back({std::move(gate), true});
    SnapshotService service(std::move(slots));

    std::promise<SnapshotPtr> first;
    service.async_fresh([&](SnapshotPtr s) { first.set_value(std::move(s)); });
    g->started.wait();  // scan 1 is running

    // Both arrive after scan 1 started: scan 1 must not serve them.
    std::promise<SnapshotPtr> second;
    std::promise<SnapshotPtr> third;
    service.async_fresh([&](SnapshotPtr s) { second.set_value(std::move(s)); });
    service.async_fresh([&](SnapshotPtr s) { third.set_value(std::move(s)); });
    g->release(1);
    const auto s1 = first.get_future().get();
    EXPECT_EQ(s1->sequence, 1u);
    g->release(2);
    const auto s2 = second.get_future().get();
    const auto s3 = third.get_future().get();
    EXPECT_EQ(s2->sequence, 2u);
    EXPECT_EQ(s2.get(), s3.get()) << "one scan serves every waiter (single flight)";
    EXPECT_EQ(g->calls.load(), 2);
    EXPECT_EQ(s2->used_ports(*netlink::InetAddress::parse("1.2.3.4"), Protocol::tcp).to_string(),
              "2");
}

// Coalescing: once requests have overlapped and scans are long (10 x max or more), a request
// that arrives within the gap after the previous one joins its batch instead of waiting for the
// next scan. Generous times (a gap of 50 ms, a second request 10 ms later, scans held for 1.5 s
// against a threshold of 1 s) keep the test independent of machine load.
TEST(SnapshotService, UnderLoadABurstThatKeepsArrivingSharesOneLongScan) {
    auto gate = std::make_unique<GateSource>();
    GateSource* g = gate.get();
    std::vector<SourceSlot> slots;
    slots.push_back({std::move(gate), true});
    SnapshotService service(std::move(slots));
    service.set_coalescing(std::chrono::milliseconds(50), std::chrono::milliseconds(100));
    const auto long_scan = std::chrono::milliseconds(1500);

    // Never overlapped yet: a lone request is scanned at once.
    std::promise<SnapshotPtr> lone;
    service.async_fresh([&](SnapshotPtr s) { lone.set_value(std::move(s)); });
    g->started.wait();
    // A request during that (long) scan: requests now overlap.
    std::promise<SnapshotPtr> during;
    service.async_fresh([&](SnapshotPtr s) { during.set_value(std::move(s)); });
    std::this_thread::sleep_for(long_scan);
    g->release(1);
    EXPECT_EQ(lone.get_future().get()->sequence, 1u);
    std::this_thread::sleep_for(long_scan);  // scan 2 is long too
    g->release(4);  // a 4th scan would not block: a failure shows as a failure, not a hang
    EXPECT_EQ(during.get_future().get()->sequence, 2u);

    // Under load: a, then b 10 ms later (well within the gap): one scan for both.
    std::promise<SnapshotPtr> a;
    std::promise<SnapshotPtr> b;
    service.async_fresh([&](SnapshotPtr s) { a.set_value(std::move(s)); });
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    service.async_fresh([&](SnapshotPtr s) { b.set_value(std::move(s)); });
    const auto sa = a.get_future().get();
    const auto sb = b.get_future().get();
    EXPECT_EQ(sa.get(), sb.get()) << "b arrived within the gap, so a's scan waited for it";
    EXPECT_EQ(sa->sequence, 3u);
    EXPECT_EQ(g->calls.load(), 3);
}

// With short scans a request never waits for a burst, even under load: repeating a scan is then
// cheaper than holding everyone for the gap (closed-loop clients would lose throughput).
TEST(SnapshotService, ShortScansAreNotCoalesced) {
    auto gate = std::make_unique<GateSource>();
    GateSource* g = gate.get();
    g->release(1'000'000);  // every scan ends at once
    std::vector<SourceSlot> slots;
    slots.push_back({std::move(gate), true});
    SnapshotService service(std::move(slots));
    service.set_coalescing(std::chrono::seconds(1), std::chrono::seconds(2));

    // Two requests at once: they overlap (one batch of two, or one during the other's scan).
    std::promise<SnapshotPtr> x;
    std::promise<SnapshotPtr> y;
    service.async_fresh([&](SnapshotPtr s) { x.set_value(std::move(s)); });
    service.async_fresh([&](SnapshotPtr s) { y.set_value(std::move(s)); });
    x.get_future().get();
    y.get_future().get();

    // Overlapped within the last second, but the scans were short: no wait for the 1 s gap.
    const auto asked = std::chrono::steady_clock::now();
    std::promise<SnapshotPtr> z;
    service.async_fresh([&](SnapshotPtr s) { z.set_value(std::move(s)); });
    z.get_future().get();
    EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::milliseconds(900));
}

// Records the thread each collect() ran on; may_be_slow() as told.
class ThreadSource final : public PortSource {
  public:
    ThreadSource(std::string name, bool slow, std::uint16_t port)
        : name_(std::move(name)), slow_(slow), port_(port) {}
    std::string_view name() const override { return name_; }
    bool may_be_slow() const override { return slow_; }
    netlink::Result<std::vector<Claim>> collect() override {
        std::lock_guard lock(m);
        threads.push_back(std::this_thread::get_id());
        Claim c;
        c.ports = PortSet::single(port_);
        c.scope = AddressScope::all(Family::v4);
        return std::vector<Claim>{c};
    }
    std::mutex m;
    std::vector<std::thread::id> threads;

  private:
    std::string name_;
    bool slow_;
    std::uint16_t port_;
};

// A source about to do real work runs beside the first one (on another thread), and the
// snapshot still lists sources and claims in their configured order.
TEST(SnapshotService, ASlowSourceRunsBesideTheFirstOne) {
    for (const bool slow : {false, true}) {
        auto first = std::make_unique<ThreadSource>("sockets", false, 1);
        auto second = std::make_unique<ThreadSource>("nftables", slow, 2);
        ThreadSource* a = first.get();
        ThreadSource* b = second.get();
        std::vector<SourceSlot> slots;
        slots.push_back({std::move(first), true});
        slots.push_back({std::move(second), false});
        SnapshotService service(std::move(slots));
        const auto snap = service.fresh();
        ASSERT_EQ(snap->sources.size(), 2u);
        EXPECT_EQ(snap->sources[0].name, "sockets");
        EXPECT_EQ(snap->sources[1].name, "nftables");
        EXPECT_FALSE(snap->sources[1].required);
        ASSERT_EQ(snap->claim_lists.size(), 2u);
        EXPECT_EQ(snap->claim_lists[1]->front().ports.to_string(), "2");
        EXPECT_EQ(
            snap->used_ports(*netlink::InetAddress::parse("1.2.3.4"), Protocol::tcp).to_string(),
            "1-2");
        ASSERT_EQ(a->threads.size(), 1u);
        ASSERT_EQ(b->threads.size(), 1u);
        EXPECT_EQ(a->threads[0] != b->threads[0], slow) << "slow = " << slow;
        // scan_now() on another thread never uses the worker's side thread.
        (void)service.scan_now();
        EXPECT_EQ(a->threads[1], std::this_thread::get_id());
        EXPECT_EQ(b->threads[1], std::this_thread::get_id());
    }
}

TEST(SnapshotService, RecordsSourceFailuresWithTheirRequirement) {
    std::vector<SourceSlot> slots;
    slots.push_back({std::make_unique<FailingSource>(), false});
    {
        SnapshotService optional(std::move(slots));
        const auto snap = optional.fresh();
        ASSERT_EQ(snap->sources.size(), 1u);
        EXPECT_FALSE(snap->sources[0].ok);
        EXPECT_EQ(snap->sources[0].error, "nf_tables: GETGEN: Operation not permitted");
        EXPECT_EQ(snap->failed_required(), nullptr) << "an optional source never fails queries";
    }
    slots.clear();
    slots.push_back({std::make_unique<FailingSource>(), true});
    SnapshotService required(std::move(slots));
    const auto snap = required.fresh();
    ASSERT_NE(snap->failed_required(), nullptr);
    EXPECT_EQ(snap->failed_required()->name, "nftables");
    EXPECT_EQ(required.latest(), snap);
}

// A source that counts and hands out the same shared list, like NftSource's generation cache.
class SharedListSource final : public PortSource {
  public:
    std::string_view name() const override { return "shared"; }
    netlink::Result<std::vector<Claim>> collect() override { return *list; }
    netlink::Result<Collected> collect_shared() override {
        return Collected{list, nullptr, nullptr};
    }
    ClaimList list = std::make_shared<const std::vector<Claim>>(std::vector<Claim>{
        Claim{Protocol::udp, PortSet::single(53), AddressScope::all(Family::v6), {}, {}}});
};

TEST(SnapshotService, SnapshotsShareACachingSourcesListInsteadOfCopyingIt) {
    auto src = std::make_unique<SharedListSource>();
    const ClaimList list = src->list;
    std::vector<SourceSlot> slots;
    slots.push_back({std::move(src), true});
    SnapshotService service(std::move(slots));
    const auto a = service.fresh();
    const auto b = service.fresh();
    ASSERT_EQ(a->claim_lists.size(), 1u);
    EXPECT_EQ(a->claim_lists[0].get(), list.get());
    EXPECT_EQ(b->claim_lists[0].get(), list.get());
    EXPECT_EQ(b->used_ports(*netlink::InetAddress::parse("::1"), Protocol::udp).to_string(), "53");
    EXPECT_EQ(b->size(), 1u);
}

TEST(SnapshotService, CallbacksRunThroughTheDispatcherNotOnTheWorker) {
    std::vector<SourceSlot> slots;
    slots.push_back({std::make_unique<SharedListSource>(), true});
    SnapshotService service(std::move(slots));
    std::mutex m;
    std::vector<std::function<void()>> queued;
    service.set_dispatcher([&](std::function<void()> f) {
        std::lock_guard lock(m);
        queued.push_back(std::move(f));
    });
    std::promise<std::thread::id> ran_on;
    service.async_fresh([&](SnapshotPtr s) {
        EXPECT_NE(s, nullptr);
        ran_on.set_value(std::this_thread::get_id());
    });
    // The worker queues the callback instead of running it; this thread runs it.
    for (;;) {
        std::function<void()> f;
        {
            std::lock_guard lock(m);
            if (!queued.empty()) {
                f = std::move(queued.front());
                queued.clear();
            }
        }
        if (f) {
            f();
            break;
        }
        std::this_thread::yield();
    }
    EXPECT_EQ(ran_on.get_future().get(), std::this_thread::get_id());
}

TEST(SnapshotService, ASnapshotIsFreedWhenItsLastReaderDropsIt) {
    std::vector<SourceSlot> slots;
    slots.push_back({std::make_unique<SharedListSource>(), true});
    SnapshotService service(std::move(slots));
    auto first = service.fresh();
    const std::weak_ptr<const Snapshot> watch = first;
    first.reset();
    EXPECT_FALSE(watch.expired()) << "latest() still holds it";
    for (int i = 0; i < 100; ++i) {
        (void)service.fresh();
    }
    EXPECT_TRUE(watch.expired()) << "memory must not grow with the number of requests";
    EXPECT_EQ(service.latest()->sequence, 101u);
}

// A source that hands out `list` and, while collecting, records whether `watch` had expired.
class ProbeSource final : public PortSource {
  public:
    std::string_view name() const override { return "probe"; }
    netlink::Result<std::vector<Claim>> collect() override { return *list; }
    netlink::Result<Collected> collect_shared() override {
        expired_during_collect = watch.expired();
        return Collected{list, nullptr, nullptr};
    }
    ClaimList list = std::make_shared<const std::vector<Claim>>(std::vector<Claim>{
        Claim{Protocol::udp, PortSet::single(53), AddressScope::all(Family::v6), {}, {}}});
    std::weak_ptr<const std::vector<Claim>> watch;
    bool expired_during_collect = false;
};

// A rule change: while the next scan builds new claims, nothing in the service (latest(), the
// claim index cache) keeps the previous list alive; an unchanged list keeps its index.
TEST(SnapshotService, ThePreviousClaimListIsNotHeldDuringTheNextScan) {
    auto src = std::make_unique<ProbeSource>();
    ProbeSource* p = src.get();
    std::vector<SourceSlot> slots;
    slots.push_back({std::move(src), true});
    SnapshotService service(std::move(slots));
    auto a = service.fresh();
    auto b = service.fresh();
    ASSERT_EQ(a->claim_indexes.size(), 1u);
    EXPECT_EQ(a->claim_indexes[0].get(), b->claim_indexes[0].get()) << "same list, same index";
    // The source drops its list (as NftSource does before a dump), so do the readers.
    p->watch = p->list;
    p->list = std::make_shared<const std::vector<Claim>>(std::vector<Claim>{
        Claim{Protocol::tcp, PortSet::single(80), AddressScope::all(Family::v4), {}, {}}});
    a.reset();
    b.reset();
    const auto c = service.fresh();
    EXPECT_TRUE(p->expired_during_collect) << "the previous claims were still held";
    EXPECT_EQ(c->used_ports(*netlink::InetAddress::parse("1.2.3.4"), Protocol::tcp).to_string(),
              "80");
    ASSERT_EQ(c->claim_indexes.size(), 1u);
    EXPECT_NE(c->claim_indexes[0], nullptr);
}

TEST(SnapshotService, ShutdownDropsWaitingCallbacksWithoutCallingThem) {
    auto gate = std::make_unique<GateSource>();
    GateSource* g = gate.get();
    std::vector<SourceSlot> slots;
    slots.push_back({std::move(gate), true});
    SnapshotService service(std::move(slots));
    std::atomic<int> called{0};
    auto alive = std::make_shared<int>(0);
    const std::weak_ptr<int> watch = alive;
    service.async_fresh([&called](SnapshotPtr) { ++called; });  // scan 1 serves this one
    g->started.wait();
    service.async_fresh([&called, alive](SnapshotPtr) { ++called; });  // waits for scan 2
    alive.reset();
    std::thread stopper([&service] { service.shutdown(); });  // blocks until scan 1 ends
    // Once shutdown() holds the queue, a new callback is destroyed as soon as it is submitted.
    for (;;) {
        auto probe = std::make_shared<int>(0);
        const std::weak_ptr<int> probe_watch = probe;
        service.async_fresh([probe](SnapshotPtr) {});
        probe.reset();
        if (probe_watch.expired()) {
            break;
        }
        std::this_thread::yield();
    }
    g->release(1);  // scan 1 ends; the worker sees the stop and exits without a scan 2
    stopper.join();
    EXPECT_EQ(called.load(), 1);
    EXPECT_TRUE(watch.expired()) << "the dropped callback (and what it holds) is destroyed";
    service.async_fresh([&called](SnapshotPtr) { ++called; });
    EXPECT_EQ(called.load(), 1) << "after shutdown nothing is called";
}

}  // namespace
}  // namespace vipportd::agent
