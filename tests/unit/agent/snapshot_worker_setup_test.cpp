// SnapshotService::WorkerSetup (namespace scanners): sources are built on the worker thread
// before its first scan, and a failed setup fails every scan with a precise reason.
// SnapshotProvider::async_fresh_many's default: the own namespace only.

#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "agent/snapshot_service.hpp"

namespace vipportd::agent {
namespace {

// Records the thread that collects; claims port 7 on every IPv4 address.
class ThreadSource final : public PortSource {
  public:
    explicit ThreadSource(std::thread::id* built_on) : built_on_(built_on) {}
    std::string_view name() const override { return "thread"; }
    netlink::Result<std::vector<Claim>> collect() override {
        collected_on = std::this_thread::get_id();
        Claim c;
        c.ports = PortSet::single(7);
        c.scope = AddressScope::all(Family::v4);
        return std::vector<Claim>{c};
    }
    std::thread::id* built_on_;
    std::thread::id collected_on;
};

TEST(SnapshotWorkerSetup, SourcesAreBuiltAndScannedOnTheWorker) {
    std::thread::id built_on;
    ThreadSource* source = nullptr;
    SnapshotService::WorkerSetup setup;
    setup.name = "netns blue";
    setup.make = [&](std::string*) {
        built_on = std::this_thread::get_id();
        auto s = std::make_unique<ThreadSource>(&built_on);
        source = s.get();
        std::vector<SourceSlot> slots;
        slots.push_back({std::move(s), true});
        return slots;
    };
    SnapshotService service(std::move(setup));
    const auto snap = service.fresh();
    ASSERT_EQ(snap->failed_required(), nullptr);
    EXPECT_TRUE(
        snap->used_ports(*netlink::InetAddress::parse("192.0.2.1"), Protocol::tcp).contains(7));
    EXPECT_NE(built_on, std::this_thread::get_id());
    EXPECT_EQ(source->collected_on, built_on);
}

TEST(SnapshotWorkerSetup, AFailedSetupFailsEveryScanNamingIt) {
    SnapshotService::WorkerSetup setup;
    setup.name = "netns blue";
    setup.make = [](std::string* error) {
        *error = "setns(CLONE_NEWNET) /run/netns/blue: Operation not permitted";
        return std::vector<SourceSlot>{};
    };
    SnapshotService service(std::move(setup));
    for (int i = 0; i < 2; ++i) {
        const auto snap = service.fresh();
        ASSERT_NE(snap->failed_required(), nullptr);
        EXPECT_EQ(snap->failed_required()->name, "netns blue");
        EXPECT_EQ(snap->failed_required()->error,
                  "setns(CLONE_NEWNET) /run/netns/blue: Operation not permitted");
    }
}

TEST(SnapshotProviderDefault, OtherNamespacesFailWithoutScanning) {
    std::thread::id unused;
    std::vector<SourceSlot> slots;
    slots.push_back({std::make_unique<ThreadSource>(&unused), true});
    SnapshotService service(std::move(slots));

    std::promise<std::vector<SnapshotPtr>> done;
    service.async_fresh_many({"", "blue", ""},
                             [&](std::vector<SnapshotPtr> v) { done.set_value(std::move(v)); });
    const auto snaps = done.get_future().get();
    ASSERT_EQ(snaps.size(), 3U);
    EXPECT_EQ(snaps[0], snaps[2]);
    EXPECT_EQ(snaps[0]->failed_required(), nullptr);
    ASSERT_NE(snaps[1]->failed_required(), nullptr);
    EXPECT_EQ(snaps[1]->failed_required()->name, "netns blue");

    std::promise<std::vector<SnapshotPtr>> none;
    service.async_fresh_many({"blue"}, [&](std::vector<SnapshotPtr> v) {
        none.set_value(std::move(v));  // answered at once: nothing to scan
    });
    EXPECT_EQ(none.get_future().get().at(0)->failed_required()->error,
              "network namespaces are not configured");
}

}  // namespace
}  // namespace vipportd::agent
