// NamespaceScanners against the real kernel: the daemon runs in one namespace ("own") and a VIP
// lives in a second one, created with `ip netns add` (TestNetns). Sockets, nf_tables rules and
// legacy iptables rules of the second namespace are seen there and only there.

#include "agent/namespaces.hpp"

#include <cerrno>
#include <cstdlib>
#include <future>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "agent/config.hpp"
#include "agent/model.hpp"
#include "agent/sources.hpp"
#include "tests/support/netns.hpp"

namespace vipportd::agent {
namespace {

using netlink::InetAddress;

// A TCP listener on addr:0 opened inside ns; returns (fd, port).
std::pair<int, std::uint16_t> listen_in(const test::TestNetns& ns, const std::string& addr) {
    return ns.in([&] {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        ::inet_pton(AF_INET, addr.c_str(), &sa.sin_addr);
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
            ::listen(fd, 1) != 0) {
            return std::pair<int, std::uint16_t>{-errno, 0};
        }
        socklen_t len = sizeof sa;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
        return std::pair<int, std::uint16_t>{fd, ntohs(sa.sin_port)};
    });
}

std::vector<SnapshotPtr> fresh_many(NamespaceScanners& s, std::vector<std::string> netns) {
    std::promise<std::vector<SnapshotPtr>> done;
    auto result = done.get_future();
    s.async_fresh_many(std::move(netns),
                       [&done](std::vector<SnapshotPtr> v) { done.set_value(std::move(v)); });
    return result.get();
}

class NamespacesTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!test::can_create_netns()) {
            GTEST_SKIP() << "needs root";
        }
        config_ = default_config();
        own_ns_.emplace();
        other_ns_.emplace();
        own_ns_->sh("ip addr add 10.77.0.1/32 dev lo");
        other_ns_->sh("ip addr add 10.77.0.1/32 dev lo");  // the same address, another namespace
        other_ns_->sh("ip addr add 10.77.0.2/32 dev lo");
        // The own namespace's sources are built on a thread inside it, as the daemon's would be
        // in its own namespace; its legacy reader would need that thread's /proc, so it is off.
        Config own_config = config_;
        own_config.sources.iptables_legacy = SourcesConfig::Legacy::off;
        auto own = own_ns_->in(
            [&] { return std::make_shared<SnapshotService>(make_sources(own_config)); });
        scanners_ = std::make_shared<NamespaceScanners>(
            own, [config = config_](const std::filesystem::path& proc_net) {
                return make_sources(config, proc_net);
            });
    }
    void TearDown() override {
        if (scanners_) {
            scanners_->shutdown();
        }
        for (const int fd : fds_) {
            ::close(fd);
        }
    }
    std::uint16_t listen(const test::TestNetns& ns, const std::string& addr) {
        auto [fd, port] = listen_in(ns, addr);
        EXPECT_GT(fd, 0) << "listen " << addr;
        fds_.push_back(fd);
        return port;
    }

    Config config_;
    std::optional<test::TestNetns> own_ns_;
    std::optional<test::TestNetns> other_ns_;
    std::shared_ptr<NamespaceScanners> scanners_;
    std::vector<int> fds_;
};

TEST_F(NamespacesTest, SocketsAreReadInTheVipsNamespaceAndNeverMerged) {
    const auto vip = *InetAddress::parse("10.77.0.1");
    const std::uint16_t own_port = listen(*own_ns_, "10.77.0.1");
    const std::uint16_t other_port = listen(*other_ns_, "10.77.0.1");
    const std::uint16_t wildcard_port = listen(*other_ns_, "0.0.0.0");

    const auto snaps = fresh_many(*scanners_, {"", other_ns_->name(), ""});
    ASSERT_EQ(snaps.size(), 3U);
    for (const auto& s : snaps) {
        ASSERT_TRUE(s);
        ASSERT_EQ(s->failed_required(), nullptr) << s->failed_required()->error;
    }
    EXPECT_EQ(snaps[0], snaps[2]) << "one scan per distinct namespace";
    const PortSet own = snaps[0]->used_ports(vip, Protocol::tcp);
    const PortSet other = snaps[1]->used_ports(vip, Protocol::tcp);
    EXPECT_TRUE(own.contains(own_port));
    EXPECT_FALSE(own.contains(other_port));
    EXPECT_FALSE(own.contains(wildcard_port));
    EXPECT_TRUE(other.contains(other_port));
    EXPECT_TRUE(other.contains(wildcard_port));
    EXPECT_FALSE(other.contains(own_port));
    EXPECT_EQ(scanners_->namespaces(), 1U);
}

TEST_F(NamespacesTest, RulesOfBothNftablesAndLegacyIptablesAreReadThere) {
    // nf_tables through netlink sockets opened in the namespace; legacy iptables through raw
    // sockets and /proc/thread-self/net/ip_tables_names of the scanner's worker.
    other_ns_->sh(
        "nft add table ip t && nft add chain ip t pre '{ type nat hook prerouting priority "
        "-100; }' && nft add rule ip t pre ip daddr 10.77.0.2 tcp dport 4242 dnat to 10.1.1.1");
    other_ns_->sh(
        "iptables-legacy -t nat -A PREROUTING -d 10.77.0.2 -p udp --dport 5353 -j DNAT "
        "--to-destination 10.1.1.1");
    const auto vip = *InetAddress::parse("10.77.0.2");
    const auto snaps = fresh_many(*scanners_, {other_ns_->name(), ""});
    ASSERT_EQ(snaps[0]->failed_required(), nullptr) << snaps[0]->failed_required()->error;
    EXPECT_TRUE(snaps[0]->used_ports(vip, Protocol::tcp).contains(4242));
    EXPECT_TRUE(snaps[0]->used_ports(vip, Protocol::udp).contains(5353));
    EXPECT_FALSE(snaps[1]->used_ports(vip, Protocol::tcp).contains(4242));
    EXPECT_FALSE(snaps[1]->used_ports(vip, Protocol::udp).contains(5353));
}

TEST_F(NamespacesTest, AMissingNamespaceFailsOnlyItsOwnAnswer) {
    const auto snaps = fresh_many(*scanners_, {"vipportd-no-such-ns", ""});
    ASSERT_NE(snaps[0]->failed_required(), nullptr);
    EXPECT_EQ(snaps[0]->failed_required()->name, "netns vipportd-no-such-ns");
    EXPECT_EQ(snaps[0]->failed_required()->error,
              "stat /run/netns/vipportd-no-such-ns: No such file or directory");
    EXPECT_EQ(snaps[1]->failed_required(), nullptr);
    EXPECT_EQ(scanners_->namespaces(), 0U);

    // A file that is not a namespace is refused, not entered.
    const auto snap = fresh_many(*scanners_, {"/proc/self/status"})[0];
    ASSERT_NE(snap->failed_required(), nullptr);
    EXPECT_EQ(snap->failed_required()->error, "/proc/self/status is not a network namespace file");
}

TEST_F(NamespacesTest, ANamespaceReplacedUnderTheSameNameIsReadAfresh) {
    // `ip netns del` + `ip netns add` with the same name makes a new namespace; a scanner kept
    // on the old one would go on reading a namespace nobody can reach.
    const std::string name = "vipportd-replace-" + std::to_string(::getpid());
    struct Cleanup {
        std::string name;
        ~Cleanup() {
            // Best effort: the test deletes nothing else, and a failed ASSERT lands here.
            // (A (void) cast does not silence warn_unused_result under _FORTIFY_SOURCE.)
            [[maybe_unused]] const int rc =
                std::system(("ip netns del " + name + " 2>/dev/null").c_str());
        }
    } cleanup{name};
    ASSERT_EQ(std::system(("ip netns add " + name).c_str()), 0);
    const std::string in = "ip netns exec " + name + " ";
    ASSERT_EQ(
        std::system((in + "ip link set lo up && " + in + "ip addr add 10.77.0.9/32 dev lo && " +
                     in + "nft add table ip t && " + in +
                     "nft add chain ip t pre '{ type nat hook prerouting priority -100; }' "
                     "&& " +
                     in + "nft add rule ip t pre tcp dport 1111 dnat to 10.1.1.1")
                        .c_str()),
        0);
    const auto vip = *InetAddress::parse("10.77.0.9");
    auto first = fresh_many(*scanners_, {name})[0];
    ASSERT_EQ(first->failed_required(), nullptr) << first->failed_required()->error;
    EXPECT_TRUE(first->used_ports(vip, Protocol::tcp).contains(1111));

    ASSERT_EQ(std::system(("ip netns del " + name + " && ip netns add " + name).c_str()), 0);
    ASSERT_EQ(std::system((in + "nft add table ip t && " + in +
                           "nft add chain ip t pre '{ type nat hook prerouting priority -100; }' "
                           "&& " +
                           in + "nft add rule ip t pre tcp dport 2222 dnat to 10.1.1.1")
                              .c_str()),
              0);
    auto second = fresh_many(*scanners_, {name})[0];
    ASSERT_EQ(second->failed_required(), nullptr) << second->failed_required()->error;
    EXPECT_FALSE(second->used_ports(vip, Protocol::tcp).contains(1111));
    EXPECT_TRUE(second->used_ports(vip, Protocol::tcp).contains(2222));
    EXPECT_EQ(scanners_->namespaces(), 1U);

    scanners_->retain({});
    EXPECT_EQ(scanners_->namespaces(), 0U);
}

}  // namespace
}  // namespace vipportd::agent
