#include "agent/snapshot_service.hpp"

#include <atomic>
#include <future>
#include <latch>

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

}  // namespace
}  // namespace vipportd::agent
