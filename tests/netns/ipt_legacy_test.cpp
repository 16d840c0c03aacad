// Legacy iptables against the real kernel: rules written by iptables-legacy / ip6tables-legacy in
// a fresh namespace, read by IptLegacySource through KernelIptSource (raw sockets opened inside the
// namespace, ip{,6}_tables_names read through a thread parked in it).
//
// VIPPORTD_RECORD_IPT=1 netns_tests --gtest_filter='IptLegacyRecord.*' re-records
// tests/fixtures/ipt/*.txt from the scenarios in tests/unit/agent/ipt_scenarios.hpp.

#include "netlink/ipt_legacy.hpp"

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sched.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "agent/ipt_legacy_source.hpp"
#include "tests/support/netns.hpp"
#include "tests/unit/agent/ipt_scenarios.hpp"

namespace vipportd {
namespace {

using netlink::Family;
using netlink::ipt::KernelIptSource;
using test::TestNetns;
using test::ipt::describe;

/// A thread that sits in the namespace, so /proc/self/task/<tid>/net shows that namespace's
/// /proc/net (/proc/self/net is the main thread's, which stays in the host namespace).
class ParkedThread {
  public:
    explicit ParkedThread(const TestNetns& ns) {
        thread_ = std::thread([this, path = "/run/netns/" + ns.name()] {
            const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
            const bool ok = fd >= 0 && ::setns(fd, CLONE_NEWNET) == 0;
            if (fd >= 0) {
                ::close(fd);
            }
            std::unique_lock lock(mutex_);
            tid_ = static_cast<long>(::syscall(SYS_gettid));
            ok_ = ok;
            ready_ = true;
            cv_.notify_all();
            cv_.wait(lock, [this] { return stop_; });
        });
        bool ok = false;
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [this] { return ready_; });
            ok = ok_;
        }
        if (!ok) {
            stop();
            throw std::runtime_error("cannot enter " + path_name(ns));
        }
    }
    ~ParkedThread() { stop(); }
    [[nodiscard]] std::filesystem::path proc_net() const {
        return "/proc/self/task/" + std::to_string(tid_) + "/net";
    }

  private:
    void stop() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable()) {
            thread_.join();
        }
    }
    static std::string path_name(const TestNetns& ns) { return "/run/netns/" + ns.name(); }
    std::mutex mutex_;
    std::condition_variable cv_;
    bool ready_ = false;
    bool ok_ = false;
    bool stop_ = false;
    long tid_ = 0;
    std::thread thread_;
};

/// The source, with its raw sockets opened inside the namespace.
std::unique_ptr<KernelIptSource> kernel_source(const TestNetns& ns, const ParkedThread& parked) {
    return ns.in([&] { return std::make_unique<KernelIptSource>(parked.proc_net()); });
}

std::unique_ptr<agent::IptLegacySource> legacy_source(const TestNetns& ns,
                                                      const ParkedThread& parked) {
    return std::make_unique<agent::IptLegacySource>(kernel_source(ns, parked));
}

std::string names(const TestNetns& ns) {
    return ns.output("cat /proc/net/ip_tables_names; echo --; cat /proc/net/ip6_tables_names");
}

bool have(const char* tool) {
    return std::system((std::string("command -v ") + tool + " >/dev/null 2>&1").c_str()) == 0;
}

class IptLegacyNetns : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!test::can_create_netns()) {
            GTEST_SKIP() << "needs root";
        }
        if (!have("iptables-legacy") || !have("ip6tables-legacy")) {
            GTEST_SKIP() << "iptables-legacy not installed";
        }
    }
};

TEST_F(IptLegacyNetns, ScenariosGiveExactClaims) {
    for (const auto& s : test::ipt::scenarios()) {
        SCOPED_TRACE(s.name);
        if (s.commands.front().starts_with("ipset") && !have("ipset")) {
            continue;  // covered by the recorded fixture in the unit tests
        }
        TestNetns ns;
        for (const auto& c : s.commands) {
            ns.sh(c);
        }
        ParkedThread parked(ns);
        auto source = legacy_source(ns, parked);
        auto claims = source->collect();
        ASSERT_TRUE(claims) << netlink::to_string(claims.error());
        EXPECT_EQ(describe(*claims), s.claims);
    }
}

TEST_F(IptLegacyNetns, ReadingDoesNotCreateTables) {
    TestNetns ns;
    ParkedThread parked(ns);
    ASSERT_EQ(names(ns), "--\n");  // a fresh namespace has no x_tables table
    auto source = legacy_source(ns, parked);
    auto claims = source->collect();
    ASSERT_TRUE(claims) << netlink::to_string(claims.error());
    EXPECT_TRUE(claims->empty());
    EXPECT_EQ(names(ns), "--\n") << "collect() must not instantiate nat/mangle";

    // A filter rule creates only filter; reading still must not add nat or mangle.
    ns.sh("iptables-legacy -A INPUT -d 1.2.3.4/32 -p tcp --dport 22 -j ACCEPT");
    ASSERT_EQ(names(ns), "filter\n--\n");
    claims = source->collect();
    ASSERT_TRUE(claims) << netlink::to_string(claims.error());
    EXPECT_TRUE(claims->empty());
    EXPECT_EQ(names(ns), "filter\n--\n");
    EXPECT_EQ(source->interpretations(), 0u);

    // Why: a plain IPT_SO_GET_INFO does instantiate the table (kernel.md §3.3).
    auto kernel = kernel_source(ns, parked);
    ASSERT_TRUE(kernel->get_info(Family::v4, "nat"));
    EXPECT_EQ(names(ns), "nat\nfilter\n--\n");
}

// kernel.md §3.1 marks "EAGAIN when the size changed" unconfirmed: it is what the kernel answers
// to GET_ENTRIES for another size than the table's (ip_tables.c get_entries).
TEST_F(IptLegacyNetns, GetEntriesForAnotherSizeIsEagain) {
    TestNetns ns;
    ParkedThread parked(ns);
    ns.sh("iptables-legacy -t nat -A PREROUTING -d 1.2.3.4/32 -j DNAT --to-destination 10.0.0.9");
    ns.sh(
        "ip6tables-legacy -t nat -A PREROUTING -d 2001:db8::1/128 -j DNAT --to-destination "
        "2001:db8::9");
    auto kernel = kernel_source(ns, parked);
    for (const Family f : {Family::v4, Family::v6}) {
        const auto info = kernel->get_info(f, "nat").value();
        auto wrong = kernel->get_entries(f, "nat", info.size + 8);
        ASSERT_FALSE(wrong);
        EXPECT_EQ(wrong.error().sys_errno, EAGAIN);
        auto right = kernel->get_entries(f, "nat", info.size);
        ASSERT_TRUE(right) << netlink::to_string(right.error());
        EXPECT_EQ(right->size(), info.size);
        EXPECT_TRUE(netlink::ipt::parse_ipt_blob(f, info, *right));
    }
    EXPECT_EQ(kernel->get_info(Family::v4, "nosuchtable").error().sys_errno, ENOENT);
}

TEST_F(IptLegacyNetns, ChangesAreSeenAndUnchangedTablesNotReinterpreted) {
    TestNetns ns;
    ParkedThread parked(ns);
    ns.sh(
        "iptables-legacy -t nat -A PREROUTING -d 1.2.3.4/32 -p tcp -m tcp --dport 80 -j DNAT "
        "--to-destination 10.0.0.5:8080");
    ns.sh("iptables-legacy -t nat -A OUTPUT -d 127.0.0.1/32 -p udp -m udp --dport 9 -j ACCEPT");
    auto source = legacy_source(ns, parked);
    auto claims = source->collect();
    ASSERT_TRUE(claims) << netlink::to_string(claims.error());
    EXPECT_THAT(describe(*claims),
                ::testing::ElementsAre("ip nat PREROUTING#1 DNAT '10.0.0.5:8080' TCP 80 @ 1.2.3.4 "
                                       "exact path=PREROUTING"));
    EXPECT_EQ(source->interpretations(), 1u);

    // Unchanged: the claims come from the cache.
    claims = source->collect();
    ASSERT_TRUE(claims);
    EXPECT_EQ(claims->size(), 1u);
    EXPECT_EQ(source->interpretations(), 1u);

    // Traffic moves the counters of the OUTPUT rule, not the rules: still no re-interpretation.
    const bool sent = ns.in([] {
        const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(9);
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const char byte = 'x';
        const bool ok =
            ::sendto(fd, &byte, 1, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 1;
        ::close(fd);
        return ok;
    });
    ASSERT_TRUE(sent);
    ASSERT_THAT(ns.output("iptables-legacy -t nat -L OUTPUT -v -n -x | awk 'NR==3 {print $1}'"),
                ::testing::StartsWith("1"));
    claims = source->collect();
    ASSERT_TRUE(claims);
    EXPECT_EQ(claims->size(), 1u);
    EXPECT_EQ(source->interpretations(), 1u);

    // A rule change is visible on the next collect().
    ns.sh(
        "iptables-legacy -t nat -A PREROUTING -d 1.2.3.4/32 -p udp -m udp --dport 53 -j "
        "REDIRECT --to-ports 5353");
    claims = source->collect();
    ASSERT_TRUE(claims);
    EXPECT_THAT(describe(*claims),
                ::testing::ElementsAre("ip nat PREROUTING#1 DNAT '10.0.0.5:8080' TCP 80 @ 1.2.3.4 "
                                       "exact path=PREROUTING",
                                       "ip nat PREROUTING#2 REDIRECT ':5353' UDP 53 @ 1.2.3.4 "
                                       "exact path=PREROUTING"));
    EXPECT_EQ(source->interpretations(), 2u);

    // A deletion too; and an ip6 table appearing is read.
    ns.sh("iptables-legacy -t nat -D PREROUTING 1");
    ns.sh(
        "ip6tables-legacy -t nat -A OUTPUT -d 2001:db8::1/128 -p tcp --dport 25 -j REDIRECT "
        "--to-ports 2525");
    claims = source->collect();
    ASSERT_TRUE(claims);
    EXPECT_THAT(describe(*claims),
                ::testing::ElementsAre("ip nat PREROUTING#1 REDIRECT ':5353' UDP 53 @ 1.2.3.4 "
                                       "exact path=PREROUTING",
                                       "ip6 nat OUTPUT#1 REDIRECT ':2525' TCP 25 @ 2001:db8::1 "
                                       "exact path=OUTPUT"));
    EXPECT_EQ(source->interpretations(), 4u);
}

// Without CAP_NET_ADMIN the getsockopt fails (kernel.md §6); collect() names table and call.
// Capabilities are per thread, so dropping them with a raw capset() on the in() thread leaves the
// rest of the test process untouched.
TEST_F(IptLegacyNetns, MissingCapabilityIsAPreciseError) {
    TestNetns ns;
    ParkedThread parked(ns);
    ns.sh("iptables-legacy -t nat -A PREROUTING -d 1.2.3.4/32 -j DNAT --to-destination 10.0.0.9");
    const std::string error = ns.in([&] {
        agent::IptLegacySource source(std::make_unique<KernelIptSource>(parked.proc_net()));
        __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct data[2]{};
        if (::syscall(SYS_capget, &hdr, data) != 0) {
            return std::string("capget failed");
        }
        data[CAP_NET_ADMIN / 32].effective &= ~(1U << (CAP_NET_ADMIN % 32));
        if (::syscall(SYS_capset, &hdr, data) != 0) {
            return std::string("capset failed");
        }
        auto claims = source.collect();
        return claims ? std::string("no error") : netlink::to_string(claims.error());
    });
    EXPECT_EQ(error, "iptables-legacy: nat: IPT_SO_GET_INFO: Operation not permitted");
}

// ---- Recording ------------------------------------------------------------------------------

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

TEST(IptLegacyRecord, WriteFixtures) {
    if (std::getenv("VIPPORTD_RECORD_IPT") == nullptr) {
        GTEST_SKIP() << "set VIPPORTD_RECORD_IPT=1 to re-record tests/fixtures/ipt/";
    }
    ASSERT_TRUE(test::can_create_netns());
    const std::filesystem::path dir = std::filesystem::path(VIPPORTD_FIXTURES) / "ipt";
    std::filesystem::create_directories(dir);
    for (const auto& s : test::ipt::scenarios()) {
        TestNetns ns;
        for (const auto& c : s.commands) {
            ns.sh(c);
        }
        ParkedThread parked(ns);
        auto kernel = kernel_source(ns, parked);
        std::vector<std::string> header{
            "Legacy iptables scenario '" + s.name +
                "', recorded by tests/netns/ipt_legacy_test.cpp",
            "(VIPPORTD_RECORD_IPT=1 netns_tests --gtest_filter='IptLegacyRecord.*') on Linux " +
                first_line(ns.output("uname -r")) + ", " +
                first_line(ns.output("iptables-legacy --version")) + ".",
            "Commands, in a fresh network namespace:"};
        for (const auto& c : s.commands) {
            header.push_back("  " + c);
        }
        header.push_back("Calls: table_names, then read_table (GET_INFO, GET_ENTRIES, GET_INFO)");
        header.push_back("for each listed nat/mangle table, IPv4 then IPv6.");
        netlink::ipt::RecordingIptSource rec(*kernel, header);
        for (const Family f : {Family::v4, Family::v6}) {
            auto listed = rec.table_names(f);
            ASSERT_TRUE(listed);
            for (const std::string table : {"nat", "mangle"}) {
                if (std::find(listed->begin(), listed->end(), table) != listed->end()) {
                    ASSERT_TRUE(netlink::ipt::read_table(rec, f, table));
                }
            }
        }
        std::ofstream(dir / (s.name + ".txt")) << rec.text();
    }
}

}  // namespace
}  // namespace vipportd
