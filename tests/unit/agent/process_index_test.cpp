// ProcessIndex over a fake /proc tree: socket inode -> owner, caching, rate-limited walks.

#include "agent/process_index.hpp"

#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace vipportd::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

/// A /proc lookalike in a temporary directory: <pid>/fd/<n> symlinks, comm, cmdline.
class FakeProc {
  public:
    FakeProc() {
        std::string tmpl = (fs::temp_directory_path() / "vipportd-proc-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        root = tmpl;
    }
    ~FakeProc() {
        std::error_code ec;
        fs::remove_all(root, ec);
    }
    FakeProc(const FakeProc&) = delete;
    FakeProc& operator=(const FakeProc&) = delete;

    void process(int pid, const std::string& comm, const std::string& cmdline) const {
        const fs::path dir = root / std::to_string(pid);
        fs::create_directories(dir / "fd");
        write(dir / "comm", comm + "\n");
        write(dir / "cmdline", cmdline);
    }
    void fd(int pid, int fd, const std::string& target) const {
        fs::create_symlink(target, root / std::to_string(pid) / "fd" / std::to_string(fd));
    }
    void close_fd(int pid, int fd) const {
        fs::remove(root / std::to_string(pid) / "fd" / std::to_string(fd));
    }
    void rename(int pid, const std::string& comm) const {
        write(root / std::to_string(pid) / "comm", comm + "\n");
    }
    static void write(const fs::path& p, const std::string& text) {
        std::ofstream out(p, std::ios::binary | std::ios::trunc);
        out << text;
    }
    fs::path root;
};

/// A clock the test moves by hand.
struct Clocks {
    std::chrono::steady_clock::time_point steady{std::chrono::hours(1)};
    std::chrono::system_clock::time_point wall{std::chrono::hours(24 * 365 * 50)};
    void advance(std::chrono::milliseconds d) {
        steady += d;
        wall += d;
    }
};

class ProcessIndexTest : public ::testing::Test {
  protected:
    ProcessIndex make(std::chrono::milliseconds interval = 1000ms) {
        ProcessIndexOptions o;
        o.proc_root = proc.root;
        o.min_rescan_interval = interval;
        o.steady_now = [this] { return clocks.steady; };
        o.system_now = [this] { return clocks.wall; };
        return ProcessIndex(o);
    }
    ProcessMap find(ProcessIndex& index, std::initializer_list<std::uint64_t> inodes) {
        const std::vector<std::uint64_t> v(inodes);
        return index.find(v, clocks.wall);
    }
    FakeProc proc;
    Clocks clocks;
};

TEST(SocketInodeOfLink, ParsesOnlySocketTargets) {
    EXPECT_EQ(socket_inode_of_link("socket:[12345]"), 12345U);
    EXPECT_EQ(socket_inode_of_link("socket:[18446744073709551615]"), 18446744073709551615ULL);
    EXPECT_EQ(socket_inode_of_link("socket:[18446744073709551616]"), std::nullopt);  // overflow
    EXPECT_EQ(socket_inode_of_link("socket:[]"), std::nullopt);
    EXPECT_EQ(socket_inode_of_link("socket:[12a]"), std::nullopt);
    EXPECT_EQ(socket_inode_of_link("socket:[-1]"), std::nullopt);
    EXPECT_EQ(socket_inode_of_link("socket:[1"), std::nullopt);
    EXPECT_EQ(socket_inode_of_link("pipe:[12345]"), std::nullopt);
    EXPECT_EQ(socket_inode_of_link("anon_inode:[eventpoll]"), std::nullopt);
    EXPECT_EQ(socket_inode_of_link("/var/log/socket:[1]"), std::nullopt);
}

TEST_F(ProcessIndexTest, FindsTheLowestPidHoldingEachSocket) {
    proc.process(300, "nginx", std::string("nginx: worker process\0", 22));
    proc.process(120, "nginx", std::string("/usr/sbin/nginx\0-g\0daemon off;\0", 31));
    proc.process(77, "sshd", std::string("/usr/sbin/sshd\0-D\0", 18));
    proc.fd(120, 6, "socket:[5001]");
    proc.fd(300, 6, "socket:[5001]");  // inherited by the worker
    proc.fd(300, 7, "pipe:[9]");
    proc.fd(77, 3, "socket:[4000]");
    proc.fd(77, 0, "/dev/null");
    auto index = make();
    const auto m = find(index, {5001, 4000, 999});
    ASSERT_EQ(m.size(), 2U);
    EXPECT_EQ(m.at(5001), (ProcessInfo{120, "nginx", "/usr/sbin/nginx"}));
    EXPECT_EQ(m.at(4000), (ProcessInfo{77, "sshd", "/usr/sbin/sshd"}));
    const auto s = index.stats();
    EXPECT_EQ(s.walks, 1U);
    EXPECT_EQ(s.sockets, 2U);
    EXPECT_EQ(s.unreadable, 0U);
}

TEST_F(ProcessIndexTest, RepeatedLookupsUseTheCacheWithoutWalking) {
    proc.process(10, "a", "a");
    proc.fd(10, 3, "socket:[1]");
    proc.fd(10, 4, "socket:[2]");
    auto index = make();
    EXPECT_EQ(find(index, {1}).size(), 1U);
    clocks.advance(5000ms);  // long past the interval: still no reason to walk
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(find(index, {1, 2}).size(), 2U);  // 2 was seen by the first walk too
    }
    EXPECT_EQ(index.stats().walks, 1U);
}

TEST_F(ProcessIndexTest, CachedHitIsRecheckedAndRenamesAreSeen) {
    proc.process(10, "before", "/bin/before");
    proc.fd(10, 3, "socket:[1]");
    auto index = make();
    EXPECT_EQ(find(index, {1}).at(1).name, "before");
    proc.rename(10, "after");  // prctl(PR_SET_NAME) or exec since the walk
    EXPECT_EQ(find(index, {1}).at(1).name, "after");
    EXPECT_EQ(index.stats().walks, 1U);
}

TEST_F(ProcessIndexTest, UnknownInodeWalksAgainButAtMostOncePerInterval) {
    proc.process(10, "a", "a");
    proc.fd(10, 3, "socket:[1]");
    auto index = make(1000ms);
    EXPECT_EQ(find(index, {1}).size(), 1U);
    // A new socket appears; a snapshot taken after the last walk sees it.
    proc.fd(10, 4, "socket:[2]");
    clocks.advance(100ms);
    EXPECT_TRUE(find(index, {2}).empty()) << "within the interval: no walk";
    EXPECT_EQ(index.stats().walks, 1U);
    EXPECT_EQ(index.stats().rate_limited, 1U);
    // A storm of unknown inodes within the interval walks nothing more.
    for (std::uint64_t i = 100; i < 200; ++i) {
        clocks.advance(1ms);
        EXPECT_TRUE(find(index, {i}).empty());
    }
    EXPECT_EQ(index.stats().walks, 1U);
    clocks.advance(1000ms);
    const auto m = find(index, {2});
    ASSERT_EQ(m.size(), 1U);
    EXPECT_EQ(m.at(2).pid, 10);
    EXPECT_EQ(index.stats().walks, 2U);
}

TEST_F(ProcessIndexTest, InodeMissedByALaterWalkIsSettledAndNotWalkedForAgain) {
    proc.process(10, "a", "a");
    proc.fd(10, 3, "socket:[1]");
    auto index = make(1000ms);
    const auto seen = clocks.wall;  // the snapshot that holds inode 7 (owner unreadable)
    clocks.advance(1ms);
    const std::array<std::uint64_t, 1> seven{7};
    EXPECT_TRUE(index.find(seven, seen).empty());
    EXPECT_EQ(index.stats().walks, 1U);
    // The walk started after `seen` and did not find 7: asking again, even much later and
    // with the same snapshot time, does not walk.
    clocks.advance(10000ms);
    EXPECT_TRUE(index.find(seven, seen).empty());
    EXPECT_EQ(index.stats().walks, 1U);
    EXPECT_EQ(index.stats().rate_limited, 0U);
    // A newer snapshot that still holds 7 may walk again (the owner could have become readable).
    EXPECT_TRUE(index.find(seven, clocks.wall).empty());
    EXPECT_EQ(index.stats().walks, 2U);
}

TEST_F(ProcessIndexTest, ClosedDescriptorIsNotReportedFromTheCache) {
    proc.process(10, "a", "a");
    proc.process(11, "b", "b");
    proc.fd(10, 3, "socket:[1]");
    auto index = make(1000ms);
    EXPECT_EQ(find(index, {1}).at(1).pid, 10);
    // Passed to pid 11 (SCM_RIGHTS), then closed by pid 10.
    proc.fd(11, 5, "socket:[1]");
    proc.close_fd(10, 3);
    clocks.advance(2000ms);
    const auto m = find(index, {1});
    ASSERT_EQ(m.size(), 1U);
    EXPECT_EQ(m.at(1).pid, 11);
    EXPECT_EQ(index.stats().walks, 2U);
}

TEST_F(ProcessIndexTest, UnreadableOrVanishedProcessesYieldNoOwnerAndNoError) {
    proc.process(10, "ok", "ok");
    proc.fd(10, 3, "socket:[1]");
    // 20: fd is not a directory (stands for EACCES/ENOENT; root ignores permission bits).
    fs::create_directories(proc.root / "20");
    FakeProc::write(proc.root / "20" / "fd", "");
    // 30: exited between the walk and the name lookup: no comm.
    fs::create_directories(proc.root / "30" / "fd");
    fs::create_symlink("socket:[3]", proc.root / "30" / "fd" / "4");
    // Not processes at all.
    fs::create_directories(proc.root / "self" / "fd");
    fs::create_directories(proc.root / "sys");
    FakeProc::write(proc.root / "uptime", "1 1\n");
    auto index = make();
    const auto m = find(index, {1, 3});
    ASSERT_EQ(m.size(), 1U);
    EXPECT_TRUE(m.contains(1));
    const auto s = index.stats();
    EXPECT_EQ(s.unreadable, 1U);
    EXPECT_EQ(s.sockets, 2U);
    EXPECT_TRUE(s.error.empty());
}

TEST_F(ProcessIndexTest, MissingCmdlineLeavesArgv0Empty) {
    proc.process(10, "kworker", "");
    fs::remove(proc.root / "10" / "cmdline");
    proc.fd(10, 3, "socket:[1]");
    auto index = make();
    EXPECT_EQ(find(index, {1}).at(1), (ProcessInfo{10, "kworker", ""}));
}

TEST_F(ProcessIndexTest, MissingProcRootIsReportedInStatsNotThrown) {
    ProcessIndexOptions o;
    o.proc_root = proc.root / "nope";
    ProcessIndex index(o);
    EXPECT_EQ(index.find_one(1), std::nullopt);
    const auto s = index.stats();
    EXPECT_EQ(s.walks, 1U);
    EXPECT_NE(s.error.find("nope"), std::string::npos) << s.error;
    EXPECT_NE(s.error.find("No such file"), std::string::npos) << s.error;
}

TEST_F(ProcessIndexTest, InodeZeroAndDuplicatesAreIgnored) {
    proc.process(10, "a", "a");
    proc.fd(10, 3, "socket:[1]");
    auto index = make();
    const auto m = find(index, {0, 1, 1, 0});
    EXPECT_EQ(m.size(), 1U);
    EXPECT_FALSE(m.contains(0));
}

TEST_F(ProcessIndexTest, NothingToFindWalksNothing) {
    auto index = make();
    EXPECT_TRUE(find(index, {}).empty());
    EXPECT_TRUE(find(index, {0}).empty());
    EXPECT_EQ(index.stats().walks, 0U);
}

}  // namespace
}  // namespace vipportd::agent
