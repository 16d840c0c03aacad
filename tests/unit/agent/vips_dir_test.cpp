#include "agent/vips_dir.hpp"

#include <fstream>
#include <string>
#include <unistd.h>

#include <gtest/gtest.h>

#include "agent/logging.hpp"

namespace vipportd::agent {
namespace {

namespace fs = std::filesystem;

class VipsDirTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::path(::testing::TempDir()) /
               ("vipportd-vipsdir-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    void write(const std::string& name, const std::string& text) {
        std::ofstream(dir_ / name) << text;
    }
    static std::string vip(const std::string& uuid, const std::string& ip) {
        return "[[vip]]\nuuid = \"" + uuid + "\"\nip = \"" + ip + "\"\n";
    }
    static std::vector<std::string> uuids(const std::vector<VipEntry>& v) {
        std::vector<std::string> out;
        for (const auto& e : v) {
            out.push_back(e.uuid);
        }
        return out;
    }
    fs::path dir_;
};

TEST(VipsDirNames, OnlyVisibleTomlFiles) {
    EXPECT_TRUE(is_vips_dropin_name("10-edge.toml"));
    EXPECT_FALSE(is_vips_dropin_name(".10-edge.toml.swp"));
    EXPECT_FALSE(is_vips_dropin_name(".10-edge.toml"));
    EXPECT_FALSE(is_vips_dropin_name("10-edge.toml~"));
    EXPECT_FALSE(is_vips_dropin_name("sedAbC123"));
    EXPECT_FALSE(is_vips_dropin_name(".toml"));
    EXPECT_FALSE(is_vips_dropin_name("4913"));  // vim's write test file
}

TEST_F(VipsDirTest, MergesFilesInNameOrderAfterTheMainFile) {
    write("20-b.toml", vip("b", "192.0.2.2"));
    write("10-a.toml", vip("a", "192.0.2.1"));
    write("x.toml~", vip("backup", "192.0.2.9"));
    VipsDir d(dir_);
    const auto scan = d.rescan();
    EXPECT_TRUE(scan.errors.empty());
    EXPECT_TRUE(scan.changed);
    const std::vector<VipEntry> base{{"main", *netlink::InetAddress::parse("192.0.2.100")}};
    std::vector<std::string> conflicts;
    EXPECT_EQ(uuids(d.merged(base, &conflicts)), (std::vector<std::string>{"main", "a", "b"}));
    EXPECT_TRUE(conflicts.empty());
    EXPECT_FALSE(d.rescan().changed);
}

TEST_F(VipsDirTest, BrokenFileKeepsItsLastGoodEntriesAndNamesTheLine) {
    write("10-a.toml", vip("a", "192.0.2.1"));
    VipsDir d(dir_);
    (void)d.rescan();
    write("10-a.toml", vip("a", "192.0.2.1") + vip("b", "not-an-ip"));
    const auto scan = d.rescan();
    ASSERT_EQ(scan.errors.size(), 1U);
    EXPECT_NE(scan.errors[0].find((dir_ / "10-a.toml").string() + ":6:"), std::string::npos)
        << scan.errors[0];
    EXPECT_FALSE(scan.changed);
    EXPECT_EQ(uuids(d.merged({}, nullptr)), (std::vector<std::string>{"a"}));
}

TEST_F(VipsDirTest, RemovedFileDropsItsEntries) {
    write("10-a.toml", vip("a", "192.0.2.1"));
    VipsDir d(dir_);
    (void)d.rescan();
    fs::remove(dir_ / "10-a.toml");
    EXPECT_TRUE(d.rescan().changed);
    EXPECT_TRUE(d.merged({}, nullptr).empty());
}

TEST_F(VipsDirTest, DuplicateUuidIsSkippedWithAMessage) {
    write("10-a.toml", vip("a", "192.0.2.1"));
    write("20-a.toml", vip("a", "192.0.2.2"));
    VipsDir d(dir_);
    (void)d.rescan();
    std::vector<std::string> conflicts;
    const auto merged = d.merged({}, &conflicts);
    ASSERT_EQ(merged.size(), 1U);
    EXPECT_EQ(merged[0].ip.to_string(), "192.0.2.1");
    ASSERT_EQ(conflicts.size(), 1U);
    EXPECT_NE(conflicts[0].find("20-a.toml: uuid \"a\" already defined in"), std::string::npos)
        << conflicts[0];
}

TEST_F(VipsDirTest, OtherKeysAreRejected) {
    write("10-a.toml", "listen = [\"127.0.0.1:1\"]\n" + vip("a", "192.0.2.1"));
    VipsDir d(dir_);
    const auto scan = d.rescan();
    ASSERT_EQ(scan.errors.size(), 1U);
    EXPECT_NE(scan.errors[0].find(":1:1: key 'listen': unknown key"), std::string::npos)
        << scan.errors[0];
}

TEST_F(VipsDirTest, MissingDirectoryIsAnErrorNotACrash) {
    VipsDir d(dir_ / "nope");
    const auto scan = d.rescan();
    ASSERT_EQ(scan.errors.size(), 1U);
    EXPECT_NE(scan.errors[0].find("cannot read directory"), std::string::npos);
}

TEST(LogEscape, ControlBytesQuotesAndLength) {
    EXPECT_EQ(log_escape("a\"b\\c\nd\x01\xff"), "a\\\"b\\\\c\\x0ad\\x01\\xff");
    EXPECT_EQ(log_escape(std::string(300, 'x'), 4), "xxxx...");
    EXPECT_EQ(log_escape(std::string_view("a\0b", 3)), "a\\x00b");
}

}  // namespace
}  // namespace vipportd::agent
