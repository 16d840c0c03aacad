// VipCatalog: config, vips_dir and API VIPs side by side, their conflicts (409 on PUT, the file
// winning over a registration after a reload), and registrations written on the catalog's own
// thread, one at a time.

#include "agent/vip_catalog.hpp"

#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/vips_dir.hpp"

namespace vipportd::agent {
namespace {

namespace fs = std::filesystem;
using Kind = VipCatalog::Outcome::Kind;
using testing::HasSubstr;

netlink::InetAddress ip(std::string_view text) { return netlink::InetAddress::parse(text).value(); }

class VipCatalogTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::path(::testing::TempDir()) /
               ("vipportd-catalog-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "vips.d");
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::unique_ptr<VipStore> store() {
        auto s = std::make_unique<VipStore>(dir_ / "state");
        EXPECT_TRUE(s->load());
        return s;
    }
    static VipCatalog::Outcome put(VipCatalog& c, VipEntry e) {
        std::promise<VipCatalog::Outcome> p;
        c.async_put(std::move(e), [&p](VipCatalog::Outcome o) { p.set_value(std::move(o)); });
        return p.get_future().get();
    }
    static VipCatalog::Outcome remove(VipCatalog& c, std::string uuid) {
        std::promise<VipCatalog::Outcome> p;
        c.async_remove(std::move(uuid), [&p](VipCatalog::Outcome o) { p.set_value(std::move(o)); });
        return p.get_future().get();
    }
    static std::vector<StaticVip> config(std::vector<VipEntry> v) {
        return static_vips(v, "/etc/vipportd/vipportd.toml", nullptr, nullptr);
    }
    fs::path dir_;
};

TEST_F(VipCatalogTest, StaticVipsCarryTheirOrigin) {
    std::ofstream(dir_ / "vips.d" / "10-a.toml")
        << "[[vip]]\nuuid = \"drop\"\nip = \"192.0.2.2\"\n"
           "[[vip]]\nuuid = \"main\"\nip = \"192.0.2.9\"\n";
    VipsDir d(dir_ / "vips.d");
    (void)d.rescan();
    std::vector<std::string> conflicts;
    const auto s = static_vips({{"main", ip("192.0.2.1"), ""}}, "/etc/v.toml", &d, &conflicts);
    ASSERT_EQ(s.size(), 2U);
    EXPECT_EQ(s[0].origin, VipOrigin::config);
    EXPECT_EQ(s[0].source, "/etc/v.toml");
    EXPECT_EQ(s[1].origin, VipOrigin::vips_dir);
    EXPECT_EQ(s[1].source, (dir_ / "vips.d" / "10-a.toml").string());
    ASSERT_EQ(conflicts.size(), 1U);
    EXPECT_THAT(conflicts[0], HasSubstr("uuid \"main\" already defined in the main configuration"));
    EXPECT_EQ(static_vips({{"a", ip("192.0.2.1"), ""}}, "", nullptr, nullptr)[0].source,
              "built-in default");
    EXPECT_EQ(to_string(VipOrigin::vips_dir), "vips_dir");
}

TEST_F(VipCatalogTest, RegistrationsJoinTheRegistry) {
    VipCatalog c(store());
    c.set_static(config({{"cfg", ip("192.0.2.1"), ""}}));
    int changes = 0;
    c.set_on_change([&] { ++changes; });

    auto o = put(c, {"api", ip("192.0.2.10"), "blue"});
    EXPECT_EQ(o.kind, Kind::created) << o.message;
    ASSERT_TRUE(o.vip);
    EXPECT_EQ(o.vip->origin, VipOrigin::api);
    EXPECT_EQ(o.vip->source, (dir_ / "state" / "vips.json").string());
    EXPECT_EQ(put(c, {"api", ip("192.0.2.10"), "blue"}).kind, Kind::unchanged);
    EXPECT_EQ(put(c, {"api", ip("192.0.2.11"), "blue"}).kind, Kind::replaced);
    EXPECT_EQ(changes, 2);  // unchanged does not count

    const auto reg = c.registry();
    EXPECT_EQ(reg->size(), 2U);
    ASSERT_TRUE(reg->resolve("api"));
    EXPECT_EQ(reg->resolve("api")->ip, ip("192.0.2.11"));
    EXPECT_EQ(reg->resolve("api")->netns, "blue");

    const auto l = c.list();
    ASSERT_EQ(l.size(), 2U);
    EXPECT_EQ(l[0].entry.uuid, "api");
    EXPECT_EQ(l[1].origin, VipOrigin::config);
    EXPECT_TRUE(l[0].active && l[1].active);

    // Survives a restart: a new catalog over the same directory.
    VipCatalog again(store());
    again.set_static(config({{"cfg", ip("192.0.2.1"), ""}}));
    EXPECT_EQ(again.registry()->size(), 2U);
}

TEST_F(VipCatalogTest, RegisteringAFileUuidIsAConflict) {
    VipCatalog c(store());
    c.set_static(config({{"cfg", ip("192.0.2.1"), ""}}));
    const auto o = put(c, {"cfg", ip("192.0.2.2"), ""});
    EXPECT_EQ(o.kind, Kind::conflict);
    EXPECT_EQ(o.message,
              "uuid \"cfg\" is defined in /etc/vipportd/vipportd.toml (config, 192.0.2.1); "
              "change it there, not through the API");
    EXPECT_EQ(c.registry()->resolve("cfg")->ip, ip("192.0.2.1"));
    EXPECT_FALSE(fs::exists(dir_ / "state" / "vips.json"));  // nothing written

    const auto d = remove(c, "cfg");
    EXPECT_EQ(d.kind, Kind::conflict);
    EXPECT_THAT(d.message, HasSubstr("not registered through the API; remove it there"));
    EXPECT_EQ(remove(c, "nobody").kind, Kind::not_found);
}

TEST_F(VipCatalogTest, AFileDefiningARegisteredUuidWinsAndSaysSo) {
    VipCatalog c(store());
    c.set_static({});
    ASSERT_EQ(put(c, {"x", ip("192.0.2.10"), ""}).kind, Kind::created);

    // A reload brings a [[vip]] with the same uuid.
    const auto warnings = c.set_static(config({{"x", ip("192.0.2.1"), ""}}));
    ASSERT_EQ(warnings.size(), 1U);
    EXPECT_THAT(warnings[0], HasSubstr("uuid \"x\" is registered through the API (192.0.2.10 in " +
                                       (dir_ / "state" / "vips.json").string() + ")"));
    EXPECT_THAT(warnings[0],
                HasSubstr("defined in /etc/vipportd/vipportd.toml (192.0.2.1); the file's VIP"));
    EXPECT_EQ(c.registry()->resolve("x")->ip, ip("192.0.2.1"));
    EXPECT_EQ(c.registry()->size(), 1U);

    auto l = c.list();
    ASSERT_EQ(l.size(), 2U);  // the file's VIP, then the shadowed registration
    EXPECT_EQ(l[0].origin, VipOrigin::config);
    EXPECT_TRUE(l[0].active);
    EXPECT_EQ(l[1].origin, VipOrigin::api);
    EXPECT_FALSE(l[1].active);
    EXPECT_EQ(l[1].conflict,
              "uuid also defined in /etc/vipportd/vipportd.toml (config, 192.0.2.1), which takes "
              "precedence");

    // The file drops it: the registration is active again.
    EXPECT_TRUE(c.set_static({}).empty());
    EXPECT_EQ(c.registry()->resolve("x")->ip, ip("192.0.2.10"));

    // Or the registration is deleted while shadowed: 204, and the file's VIP stays.
    c.set_static(config({{"x", ip("192.0.2.1"), ""}}));
    EXPECT_EQ(remove(c, "x").kind, Kind::removed);
    EXPECT_EQ(c.list().size(), 1U);
    EXPECT_EQ(c.registry()->resolve("x")->ip, ip("192.0.2.1"));
}

TEST_F(VipCatalogTest, DisabledAndBrokenStores) {
    VipCatalog off(nullptr);
    off.set_static(config({{"cfg", ip("192.0.2.1"), ""}}));
    EXPECT_EQ(off.store_file(), "");
    EXPECT_EQ(off.store_problem().value(), "VIP registration is disabled (state_dir = \"\")");
    EXPECT_EQ(put(off, {"a", ip("192.0.2.2"), ""}).kind, Kind::unavailable);
    EXPECT_EQ(remove(off, "a").kind, Kind::unavailable);
    EXPECT_EQ(off.list().size(), 1U);

    fs::create_directories(dir_ / "state");
    std::ofstream(dir_ / "state" / "vips.json") << "{\"version\":1,\"vips\":[{]}";
    auto s = std::make_unique<VipStore>(dir_ / "state");
    EXPECT_FALSE(s->load());
    VipCatalog broken(std::move(s));
    broken.set_static(config({{"cfg", ip("192.0.2.1"), ""}}));
    ASSERT_TRUE(broken.store_problem());
    EXPECT_THAT(*broken.store_problem(), HasSubstr("the registry file is invalid: "));
    EXPECT_THAT(*broken.store_problem(),
                HasSubstr("not valid JSON at line 1, column 23 (syntax error)"));
    const auto o = put(broken, {"a", ip("192.0.2.2"), ""});
    EXPECT_EQ(o.kind, Kind::unavailable);
    EXPECT_EQ(broken.registry()->size(), 1U);  // the files' VIPs are still served
    EXPECT_TRUE(broken.reload_store());        // still broken

    std::ofstream(dir_ / "state" / "vips.json")
        << VipStore::serialize({{"fixed", ip("192.0.2.3"), ""}});
    EXPECT_FALSE(broken.reload_store());
    EXPECT_FALSE(broken.store_problem());
    EXPECT_EQ(broken.registry()->size(), 2U);
    EXPECT_EQ(put(broken, {"a", ip("192.0.2.2"), ""}).kind, Kind::created);
}

TEST_F(VipCatalogTest, WriteFailureChangesNothing) {
    VipCatalog c(store());
    c.set_static({});
    fs::create_directories(dir_ / "state" / ".vips.json.tmp");  // open(O_WRONLY): EISDIR
    const auto o = put(c, {"a", ip("192.0.2.2"), ""});
    EXPECT_EQ(o.kind, Kind::failed);
    EXPECT_THAT(o.message, HasSubstr(".vips.json.tmp: open: Is a directory"));
    EXPECT_EQ(c.registry()->size(), 0U);
    EXPECT_TRUE(c.list().empty());
}

TEST_F(VipCatalogTest, ConcurrentWritersAreSerialised) {
    VipCatalog c(store());
    c.set_static({});
    constexpr int kThreads = 4;
    constexpr int kEach = 25;
    std::vector<std::thread> threads;
    std::atomic<int> created{0};
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                const auto o = put(
                    c, {"t" + std::to_string(t) + "-" + std::to_string(i), ip("192.0.2.1"), ""});
                created += o.kind == Kind::created ? 1 : 0;
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    EXPECT_EQ(created, kThreads * kEach);
    EXPECT_EQ(c.registry()->size(), static_cast<std::size_t>(kThreads * kEach));
    VipStore reread(dir_ / "state");
    ASSERT_TRUE(reread.load());
    EXPECT_EQ(reread.entries().size(), static_cast<std::size_t>(kThreads * kEach));
}

TEST_F(VipCatalogTest, ShutdownDropsQueuedWritesWithoutCallingThem) {
    auto c = std::make_unique<VipCatalog>(store());
    c->set_static({});
    c->shutdown();
    bool called = false;
    c->async_put({"a", ip("192.0.2.2"), ""}, [&](VipCatalog::Outcome) { called = true; });
    c.reset();
    EXPECT_FALSE(called);
    EXPECT_FALSE(fs::exists(dir_ / "state" / "vips.json"));
}

}  // namespace
}  // namespace vipportd::agent
