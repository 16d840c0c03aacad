// VipStore: the registry file's format, atomic writes, strict loading with precise errors, and
// the refusal to overwrite a file that did not load. Plus the state_dir key and the [[vip]]
// rules the registration API shares with the configuration.

#include "agent/vip_store.hpp"

#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

namespace vipportd::agent {
namespace {

namespace fs = std::filesystem;
using testing::HasSubstr;

netlink::InetAddress ip(std::string_view text) { return netlink::InetAddress::parse(text).value(); }

std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

class VipStoreTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::path(::testing::TempDir()) /
               ("vipportd-store-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    void write(const std::string& text) { std::ofstream(dir_ / "vips.json") << text; }
    fs::path dir_;
};

TEST_F(VipStoreTest, SerializeIsSortedOneEntryPerLineAndParsesBack) {
    const std::vector<VipEntry> entries{{"b", ip("2001:db8::10"), "blue"},
                                        {"a", ip("192.0.2.10"), ""}};
    const auto text = VipStore::serialize(entries);
    EXPECT_EQ(text,
              "{\"version\":1,\"vips\":[\n"
              "{\"uuid\":\"a\",\"ip\":\"192.0.2.10\"},\n"
              "{\"uuid\":\"b\",\"ip\":\"2001:db8::10\",\"netns\":\"blue\"}\n"
              "]}\n");
    auto parsed = VipStore::parse(text, "f");
    ASSERT_TRUE(parsed) << netlink::to_string(parsed.error());
    ASSERT_EQ(parsed->size(), 2U);
    EXPECT_EQ((*parsed)[0].uuid, "a");
    EXPECT_EQ((*parsed)[1].ip, ip("2001:db8::10"));
    EXPECT_EQ((*parsed)[1].netns, "blue");
    EXPECT_EQ(VipStore::serialize({}), "{\"version\":1,\"vips\":[\n]}\n");
    // Strings are JSON-escaped (a uuid may hold quotes; control characters are refused).
    auto q = VipStore::parse(VipStore::serialize({{"a\"b\\c", ip("192.0.2.1"), ""}}), "f");
    ASSERT_TRUE(q);
    EXPECT_EQ(q->at(0).uuid, "a\"b\\c");
}

TEST_F(VipStoreTest, MissingFileIsAnEmptyRegistry) {
    VipStore store(dir_ / "not-yet");
    ASSERT_TRUE(store.load());
    EXPECT_TRUE(store.entries().empty());
    EXPECT_FALSE(store.broken());
    EXPECT_FALSE(fs::exists(dir_ / "not-yet"));  // loading creates nothing
}

TEST_F(VipStoreTest, PutReplaceRemoveAndReload) {
    const auto state = dir_ / "state";  // created on the first write
    VipStore store(state);
    ASSERT_TRUE(store.load());
    auto r = store.put({"a", ip("192.0.2.1"), ""});
    ASSERT_TRUE(r) << netlink::to_string(r.error());
    EXPECT_EQ(*r, VipStore::PutResult::created);
    EXPECT_EQ((fs::status(state).permissions() & fs::perms::all),
              fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
    struct stat st {};
    ASSERT_EQ(::stat((state / "vips.json").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0640U);

    EXPECT_EQ(store.put({"b", ip("2001:db8::1"), "blue"}).value(), VipStore::PutResult::created);
    EXPECT_EQ(store.put({"a", ip("192.0.2.2"), ""}).value(), VipStore::PutResult::replaced);
    EXPECT_EQ(read(state / "vips.json"), VipStore::serialize(store.entries()));
    EXPECT_FALSE(fs::exists(state / ".vips.json.tmp"));

    // The same registration again writes nothing (the file may even be gone).
    fs::remove(state / "vips.json");
    EXPECT_EQ(store.put({"a", ip("192.0.2.2"), ""}).value(), VipStore::PutResult::unchanged);
    EXPECT_FALSE(fs::exists(state / "vips.json"));
    EXPECT_EQ(store.put({"a", ip("192.0.2.2"), "red"}).value(), VipStore::PutResult::replaced);

    EXPECT_TRUE(store.remove("b").value());
    EXPECT_FALSE(store.remove("b").value());

    VipStore again(state);
    ASSERT_TRUE(again.load());
    ASSERT_EQ(again.entries().size(), 1U);
    EXPECT_EQ(again.entries()[0].uuid, "a");
    EXPECT_EQ(again.entries()[0].ip, ip("192.0.2.2"));
    EXPECT_EQ(again.entries()[0].netns, "red");
}

TEST_F(VipStoreTest, LeftoverTemporaryFileIsIgnoredAndReplaced) {
    write(VipStore::serialize({{"a", ip("192.0.2.1"), ""}}));
    std::ofstream(dir_ / ".vips.json.tmp") << "{\"version\":1,\"vi";  // a crash mid-write
    VipStore store(dir_);
    ASSERT_TRUE(store.load());
    EXPECT_EQ(store.entries().size(), 1U);
    ASSERT_TRUE(store.put({"b", ip("192.0.2.2"), ""}));
    EXPECT_FALSE(fs::exists(dir_ / ".vips.json.tmp"));
    EXPECT_EQ(VipStore::parse(read(dir_ / "vips.json"), "f").value().size(), 2U);
}

struct Corrupt {
    const char* content;
    const char* error;  // a substring of the load error
};

class VipStoreCorrupt : public VipStoreTest, public ::testing::WithParamInterface<Corrupt> {};

TEST_P(VipStoreCorrupt, RefusesToLoadAndToOverwrite) {
    write(GetParam().content);
    VipStore store(dir_);
    auto r = store.load();
    ASSERT_FALSE(r);
    const std::string message = netlink::to_string(r.error());
    EXPECT_THAT(message, HasSubstr((dir_ / "vips.json").string()));
    EXPECT_THAT(message, HasSubstr(GetParam().error));
    ASSERT_TRUE(store.broken());
    EXPECT_EQ(*store.broken(), message);
    EXPECT_TRUE(store.entries().empty());

    auto put = store.put({"x", ip("192.0.2.1"), ""});
    ASSERT_FALSE(put);
    EXPECT_EQ(put.error().code, netlink::Errc::unexpected);
    EXPECT_THAT(put.error().detail, HasSubstr("not overwritten"));
    EXPECT_FALSE(store.remove("a"));
    EXPECT_EQ(read(dir_ / "vips.json"), GetParam().content);  // the evidence stays

    // Fixed by hand: the next load succeeds and writes work again.
    write(VipStore::serialize({}));
    ASSERT_TRUE(store.load());
    EXPECT_FALSE(store.broken());
    EXPECT_TRUE(store.put({"x", ip("192.0.2.1"), ""}));
}

INSTANTIATE_TEST_SUITE_P(
    Files,
    VipStoreCorrupt,
    ::testing::Values(
        Corrupt{"", "not valid JSON at line 1, column 1"},
        Corrupt{"{\"version\":1,\n\"vips\":[{\"uuid\":\"a\",}]}", "not valid JSON at line 2"},
        Corrupt{"{\"version\":1,\"vips\":[]} x", "unexpected text after the JSON value"},
        Corrupt{"[]", "expected a JSON object"},
        Corrupt{"{\"vips\":[]}", "version: missing"},
        Corrupt{"{\"version\":2,\"vips\":[]}", "version: expected 1, got 2"},
        Corrupt{"{\"version\":\"1\",\"vips\":[]}", "version: expected 1, got \"1\""},
        Corrupt{"{\"version\":1,\"vips\":[],\"extra\":0}", "unknown key \"extra\""},
        Corrupt{"{\"version\":1}", "vips: expected an array"},
        Corrupt{"{\"version\":1,\"vips\":[1]}", "vips[0]: expected an object"},
        Corrupt{"{\"version\":1,\"vips\":[{\"uuid\":\"a\"}]}", "vips[0].ip: missing"},
        Corrupt{"{\"version\":1,\"vips\":[{\"ip\":\"192.0.2.1\"}]}", "vips[0].uuid: missing"},
        Corrupt{"{\"version\":1,\"vips\":[{\"uuid\":\"a\",\"ip\":1}]}",
                "vips[0].ip: expected a string, got 1"},
        Corrupt{"{\"version\":1,\"vips\":[{\"uuid\":\"a\",\"ip\":\"192.0.2.300\"}]}",
                "vips[0].ip: expected an IPv4 or IPv6 address, got \"192.0.2.300\""},
        Corrupt{"{\"version\":1,\"vips\":[{\"uuid\":\"a\",\"ip\":\"::ffff:192.0.2.1\"}]}",
                "vips[0].ip: v4-mapped address"},
        Corrupt{"{\"version\":1,\"vips\":[{\"uuid\":\"a\",\"ip\":\"224.0.0.1\"}]}",
                "vips[0].ip: not a VIP"},
        Corrupt{"{\"version\":1,\"vips\":[{\"uuid\":\"a/b\",\"ip\":\"192.0.2.1\"}]}",
                "vips[0].uuid: invalid uuid (expected no '/'"},
        Corrupt{"{\"version\":1,\"vips\":[{\"uuid\":\"a\",\"ip\":\"192.0.2.1\",\"netns\":\"\"}]}",
                "vips[0].netns: expected a namespace name or an absolute path"},
        Corrupt{"{\"version\":1,\"vips\":[{\"uuid\":\"a\",\"ip\":\"192.0.2.1\",\"x\":\"\"}]}",
                "vips[0]: unknown key \"x\""},
        Corrupt{"{\"version\":1,\"vips\":[{\"uuid\":\"a\",\"ip\":\"192.0.2.1\"},\n"
                "{\"uuid\":\"a\",\"ip\":\"192.0.2.2\"}]}",
                "duplicate uuid \"a\""}));

TEST_F(VipStoreTest, UnreadableAndOversizedFiles) {
    fs::create_directories(dir_ / "vips.json");  // a directory where the file should be
    VipStore store(dir_);
    auto r = store.load();
    ASSERT_FALSE(r);
    EXPECT_THAT(netlink::to_string(r.error()), HasSubstr("not a regular file"));
    fs::remove(dir_ / "vips.json");

    write("");
    fs::resize_file(dir_ / "vips.json", VipStore::max_file_bytes + 1);  // sparse
    r = store.load();
    ASSERT_FALSE(r);
    EXPECT_THAT(netlink::to_string(r.error()), HasSubstr("more than a registry file can be"));

    // The state "directory" is a file: open fails with ENOTDIR, not "nothing registered".
    std::ofstream(dir_ / "file") << "x";
    VipStore on_file(dir_ / "file");
    r = on_file.load();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().sys_errno, ENOTDIR);
}

TEST_F(VipStoreTest, WriteFailuresLeaveTheRegistryUnchanged) {
    // The state directory's parent does not exist: mkdir fails, nothing changes.
    VipStore nowhere(dir_ / "missing-parent" / "state");
    ASSERT_TRUE(nowhere.load());
    auto r = nowhere.put({"a", ip("192.0.2.1"), ""});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, netlink::Errc::system);
    EXPECT_EQ(r.error().sys_errno, ENOENT);
    EXPECT_THAT(r.error().detail, HasSubstr("mkdir"));
    EXPECT_TRUE(nowhere.entries().empty());

    // The temporary file cannot be created (a directory has its name; root ignores modes).
    write(VipStore::serialize({{"a", ip("192.0.2.1"), ""}}));
    VipStore store(dir_);
    ASSERT_TRUE(store.load());
    fs::create_directories(dir_ / ".vips.json.tmp");
    auto w = store.put({"b", ip("192.0.2.2"), ""});
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().code, netlink::Errc::system);
    EXPECT_EQ(w.error().sys_errno, EISDIR);
    EXPECT_THAT(w.error().detail, HasSubstr(".vips.json.tmp: open"));
    EXPECT_EQ(store.entries().size(), 1U);
    EXPECT_FALSE(store.remove("a"));
    EXPECT_EQ(store.entries().size(), 1U);
    EXPECT_EQ(VipStore::parse(read(dir_ / "vips.json"), "f").value().size(), 1U);
    fs::remove(dir_ / ".vips.json.tmp");
    EXPECT_TRUE(store.remove("a").value());
}

TEST_F(VipStoreTest, RegistrationLimit) {
    std::vector<VipEntry> many;
    for (std::size_t i = 0; i < VipStore::max_entries; ++i) {
        many.push_back({"vip-" + std::to_string(i), ip("192.0.2.1"), ""});
    }
    write(VipStore::serialize(many));
    VipStore store(dir_);
    ASSERT_TRUE(store.load());
    EXPECT_EQ(store.entries().size(), VipStore::max_entries);
    auto r = store.put({"one-more", ip("192.0.2.2"), ""});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, netlink::Errc::unexpected);
    EXPECT_THAT(r.error().detail, HasSubstr("registration limit reached (10000 VIPs)"));
    EXPECT_FALSE(store.broken());
    // Replacing an existing one is still possible.
    EXPECT_EQ(store.put({"vip-7", ip("192.0.2.3"), ""}).value(), VipStore::PutResult::replaced);
}

// ---- configuration: state_dir and the shared [[vip]] rules ---------------------------------

TEST(StateDirConfig, DefaultEmptyAndRelative) {
    EXPECT_EQ(default_config().state_dir, "/var/lib/vipportd");
    EXPECT_EQ(parse_config("", "t.toml").state_dir, "/var/lib/vipportd");
    EXPECT_EQ(parse_config("state_dir = \"/srv/vipportd\"\n", "t.toml").state_dir, "/srv/vipportd");
    EXPECT_TRUE(parse_config("state_dir = \"\"\n", "t.toml").state_dir.empty());
    try {
        (void)parse_config("state_dir = \"var/lib\"\n", "t.toml");
        FAIL() << "relative state_dir accepted";
    } catch (const ConfigError& e) {
        EXPECT_THAT(e.what(), HasSubstr("t.toml:1:13: key 'state_dir': relative path"));
    }
    try {
        (void)parse_config("state_dir = 1\n", "t.toml");
        FAIL() << "integer state_dir accepted";
    } catch (const ConfigError& e) {
        EXPECT_THAT(e.what(), HasSubstr("key 'state_dir'"));
    }
}

TEST(StateDirConfig, ShippedExampleDocumentsIt) {
    std::ifstream in(VIPPORTD_SOURCE_DIR "/systemd/vipportd.toml");
    std::stringstream s;
    s << in.rdbuf();
    EXPECT_THAT(s.str(), HasSubstr("# state_dir = \"/var/lib/vipportd\""));
    std::ifstream unit(VIPPORTD_SOURCE_DIR "/systemd/vipportd.service");
    std::stringstream u;
    u << unit.rdbuf();
    EXPECT_THAT(u.str(), HasSubstr("\nStateDirectory=vipportd\n"));
}

TEST(VipRules, SharedWithTheConfiguration) {
    EXPECT_FALSE(vip_uuid_problem("3f2c9d1e7b8a4c5d9e0f1a2b3c4d5e6f"));
    EXPECT_EQ(vip_uuid_problem("").value(), "invalid uuid (expected a non-empty string)");
    EXPECT_THAT(vip_uuid_problem(" a").value(), HasSubstr("no leading or trailing spaces"));
    EXPECT_THAT(vip_uuid_problem(std::string(256, 'a')).value(),
                HasSubstr("at most 255 characters"));
    EXPECT_THAT(vip_uuid_problem("a\tb").value(), HasSubstr("control characters"));
    EXPECT_FALSE(vip_ip_problem(ip("192.0.2.1")));
    EXPECT_THAT(vip_ip_problem(ip("::")).value(), HasSubstr("unspecified"));
    EXPECT_THAT(vip_ip_problem(ip("ff02::1")).value(), HasSubstr("multicast"));
    EXPECT_FALSE(vip_netns_problem("blue"));
    EXPECT_FALSE(vip_netns_problem("/proc/1/ns/net"));
    EXPECT_TRUE(vip_netns_problem(".."));
    EXPECT_TRUE(vip_netns_problem(""));
}

}  // namespace
}  // namespace vipportd::agent
