// Provenance against the real kernel: who holds a VIP's ports. A socket owned by a child process
// whose name the test sets (pid and name come from /proc/<pid>/fd and /proc/<pid>/comm), and
// every kind of rule claim with its table, chain, handle, kind, target and comment: native nft
// dnat/redirect/tproxy with a rule comment (userdata), iptables-nft DNAT/REDIRECT/TPROXY with
// -m comment (an xt match), iptables-legacy DNAT/REDIRECT/TPROXY/NETMAP with -m comment, and
// whole-IP NAT. Each scenario in its own namespace, read by the daemon's own sources.

#include <fcntl.h>
#include <sched.h>
#include <string>
#include <unistd.h>
#include <vector>

#include <arpa/inet.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <gtest/gtest.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "agent/claims_report.hpp"
#include "agent/ipt_legacy_source.hpp"
#include "agent/nft_source.hpp"
#include "agent/process_index.hpp"
#include "agent/snapshot_service.hpp"
#include "agent/socket_source.hpp"
#include "http/claims_json.hpp"
#include "netlink/ipt_legacy.hpp"
#include "netlink/kernel_transport.hpp"
#include "tests/support/netns.hpp"

namespace vipportd {
namespace {

using agent::Claim;
using agent::Protocol;
using agent::RuleOrigin;
using agent::SocketOrigin;
using test::TestNetns;

agent::InetAddress ip(std::string_view s) { return *agent::InetAddress::parse(s); }

bool have(const char* tool) {
    return std::system((std::string("command -v ") + tool + " >/dev/null 2>&1").c_str()) == 0;
}

/// A child process that enters the namespace, names itself, binds a socket on addr:0, reports
/// (port, inode) through a pipe and holds the socket until destroyed.
class Holder {
  public:
    Holder(const TestNetns& ns, const char* name, int type, const char* addr) {
        const std::string path = "/run/netns/" + ns.name();
        const int nsfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (nsfd < 0) {
            throw std::runtime_error("open " + path);
        }
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        if (::inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
            throw std::runtime_error("bad address");
        }
        int report[2];
        int hold[2];
        if (::pipe2(report, O_CLOEXEC) != 0 || ::pipe2(hold, O_CLOEXEC) != 0) {
            throw std::runtime_error("pipe");
        }
        pid_ = ::fork();
        if (pid_ == 0) {
            // Only system calls from here on: the parent is multi-threaded. Our copies of the
            // parent's ends go, or the read below would never see end-of-file.
            ::close(report[0]);
            ::close(hold[1]);
            std::uint64_t out[2] = {0, 0};
            if (::setns(nsfd, CLONE_NEWNET) == 0 && ::prctl(PR_SET_NAME, name, 0, 0, 0) == 0) {
                const int s = ::socket(AF_INET, type, 0);
                socklen_t len = sizeof sa;
                struct stat st {};
                if (s >= 0 && ::bind(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
                    (type != SOCK_STREAM || ::listen(s, 1) == 0) &&
                    ::getsockname(s, reinterpret_cast<sockaddr*>(&sa), &len) == 0 &&
                    ::fstat(s, &st) == 0) {
                    out[0] = ntohs(sa.sin_port);
                    out[1] = st.st_ino;  // the socket inode sock_diag reports (idiag_inode)
                }
            }
            [[maybe_unused]] auto w = ::write(report[1], out, sizeof out);
            char c;
            [[maybe_unused]] auto r = ::read(hold[0], &c, 1);  // until the parent closes it
            ::_exit(0);
        }
        ::close(nsfd);
        ::close(report[1]);
        ::close(hold[0]);
        hold_ = hold[1];
        std::uint64_t in[2] = {0, 0};
        const auto n = ::read(report[0], in, sizeof in);
        ::close(report[0]);
        if (pid_ < 0 || n != static_cast<ssize_t>(sizeof in) || in[0] == 0) {
            throw std::runtime_error("holder child failed");
        }
        port = static_cast<std::uint16_t>(in[0]);
        inode = in[1];
    }
    ~Holder() {
        ::close(hold_);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
    Holder(const Holder&) = delete;
    Holder& operator=(const Holder&) = delete;

    [[nodiscard]] pid_t pid() const { return pid_; }
    std::uint16_t port = 0;
    std::uint64_t inode = 0;

  private:
    pid_t pid_ = -1;
    int hold_ = -1;
};

class ProvenanceNetns : public testing::Test {
  protected:
    void SetUp() override {
        if (!test::can_create_netns()) {
            GTEST_SKIP() << "needs root";
        }
    }

    /// One scan of the namespace by the daemon's sources (sockets, nftables, legacy), as
    /// make_sources() builds them, all on one thread inside the namespace. The legacy reader
    /// lists tables in /proc/thread-self/net: /proc/self/net would be the main thread's
    /// namespace, and querying a table it lists would create that table here (kernel.md §3.3).
    static agent::SnapshotPtr scan(const TestNetns& ns) {
        auto snap = ns.in([] {
            std::vector<agent::SourceSlot> slots;
            slots.push_back({std::make_unique<agent::SocketSource>(
                                 std::make_unique<netlink::KernelTransport>(NETLINK_SOCK_DIAG),
                                 std::make_unique<netlink::KernelTransport>(NETLINK_ROUTE)),
                             true});
            slots.push_back({agent::NftSource::open_kernel(), true});
            slots.push_back(
                {std::make_unique<agent::IptLegacySource>(
                     std::make_unique<netlink::ipt::KernelIptSource>("/proc/thread-self/net")),
                 true});
            agent::SnapshotService service(std::move(slots));
            auto s = service.scan_now();
            service.shutdown();
            return s;
        });
        for (const auto& s : snap->sources) {
            EXPECT_TRUE(s.ok) << s.name << ": " << s.error;
        }
        return snap;
    }

    static const Claim& rule_with_comment(const std::vector<Claim>& claims,
                                          std::string_view comment) {
        for (const auto& c : claims) {
            if (const auto* r = std::get_if<RuleOrigin>(&c.origin); r && r->comment == comment) {
                return c;
            }
        }
        throw std::runtime_error("no rule claim with comment '" + std::string(comment) + "'");
    }

    /// The nft handle of the rule in `chain` ("ip nat PREROUTING") whose listing contains needle.
    static std::uint64_t nft_handle(const TestNetns& ns,
                                    const std::string& chain,
                                    const std::string& needle) {
        const std::string out = ns.output("nft -a list chain " + chain + " | grep -F -- '" +
                                          needle + "' | sed -n 's/.*# handle \\([0-9]*\\)$/\\1/p'");
        return std::stoull(out);
    }

    /// The 1-based position of the legacy rule whose listing contains needle.
    static std::uint64_t legacy_position(const TestNetns& ns,
                                         const std::string& table_chain,
                                         const std::string& needle) {
        const std::string out =
            ns.output("iptables-legacy -t " + table_chain + " -n --line-numbers | grep -F -- '" +
                      needle + "' | awk '{print $1}'");
        return std::stoull(out);
    }

    static void expect_rule(const Claim& c,
                            Protocol protocol,
                            agent::PortSet ports,
                            const RuleOrigin& want) {
        SCOPED_TRACE("rule with comment '" + want.comment + "'");
        EXPECT_EQ(c.protocol, protocol);
        EXPECT_EQ(c.ports, ports) << c.ports.to_string();
        EXPECT_EQ(c.certainty, agent::Certainty::exact);
        const auto& o = std::get<RuleOrigin>(c.origin);
        EXPECT_EQ(o.at(), want.at());
        EXPECT_EQ(o.handle, want.handle);
        EXPECT_EQ(o.kind, want.kind);
        EXPECT_EQ(o.target, want.target);
        EXPECT_EQ(o.comment, want.comment);
        EXPECT_TRUE(o.reason.empty()) << o.reason;
    }

    static RuleOrigin origin(std::string source,
                             std::string table,
                             std::string chain,
                             std::uint64_t handle,
                             std::string kind,
                             std::string target,
                             std::string comment) {
        RuleOrigin o;
        o.site = std::make_shared<const agent::RuleSite>(
            agent::RuleSite{std::move(source), "ip", std::move(table), chain, {chain}});
        o.handle = handle;
        o.kind = std::move(kind);
        o.target = std::move(target);
        o.comment = std::move(comment);
        return o;
    }
};

TEST_F(ProvenanceNetns, SocketClaimNamesItsOwningProcess) {
    TestNetns ns;
    ns.sh("ip addr add 1.2.3.4/32 dev lo");
    const Holder tcp(ns, "vipp-tcp-holder", SOCK_STREAM, "1.2.3.4");
    const Holder udp(ns, "vipp-udp", SOCK_DGRAM, "0.0.0.0");
    const auto snap = scan(ns);

    agent::ProcessIndex processes;
    const agent::Vip vip{"vip-a", ip("1.2.3.4"), ns.name()};
    const std::vector<Protocol> both{Protocol::tcp, Protocol::udp};
    const auto report = agent::make_claims_report(vip, *snap, both, &processes);
    ASSERT_EQ(report.protocols.size(), 2U);
    ASSERT_EQ(report.protocols[0].claims.size(), 1U);
    ASSERT_EQ(report.protocols[1].claims.size(), 1U);

    const auto& t = report.protocols[0].claims[0];
    EXPECT_EQ(t.ports, agent::PortSet::single(tcp.port));
    const auto& ts = std::get<SocketOrigin>(t.origin);
    EXPECT_EQ(ts.address, ip("1.2.3.4"));
    EXPECT_EQ(ts.port, tcp.port);
    EXPECT_EQ(agent::socket_state_name(Protocol::tcp, ts.state), "LISTEN");
    EXPECT_EQ(ts.uid, 0U);
    EXPECT_EQ(ts.inode, tcp.inode);
    ASSERT_TRUE(report.processes.contains(tcp.inode));
    const auto& tp = report.processes.at(tcp.inode);
    EXPECT_EQ(tp.pid, tcp.pid());
    EXPECT_EQ(tp.name, "vipp-tcp-holder");                       // 15 bytes: TASK_COMM_LEN - 1
    EXPECT_TRUE(tp.argv0.ends_with("netns_tests")) << tp.argv0;  // forked, not exec'd

    const auto& us = std::get<SocketOrigin>(report.protocols[1].claims[0].origin);
    EXPECT_EQ(us.address, ip("0.0.0.0"));
    EXPECT_EQ(agent::socket_state_name(Protocol::udp, us.state), "UNCONN");
    ASSERT_TRUE(report.processes.contains(udp.inode));
    EXPECT_EQ(report.processes.at(udp.inode).pid, udp.pid());
    EXPECT_EQ(report.processes.at(udp.inode).name, "vipp-udp");
    // Both owners came from one /proc walk.
    EXPECT_EQ(processes.stats().walks, 1U);

    // The same through the claims API's JSON.
    const auto v = boost::json::parse(http::claims_json(report));
    EXPECT_EQ(std::string_view(v.at("vip").at("netns").as_string()), ns.name());
    const auto& js = v.at("protocols").at("TCP").at("claims").at(0).at("socket");
    EXPECT_EQ(js.at("process").at("pid"), tcp.pid());
    EXPECT_EQ(js.at("process").at("name"), "vipp-tcp-holder");
    EXPECT_EQ(js.at("inode"), tcp.inode);
    EXPECT_EQ(js.at("state"), "LISTEN");
    EXPECT_EQ(std::string_view(v.at("protocols").at("UDP").at("used_ports").at(0).as_string()),
              std::to_string(udp.port));
}

TEST_F(ProvenanceNetns, SocketOfAProcessThatExitedHasNoOwner) {
    TestNetns ns;
    ns.sh("ip addr add 1.2.3.4/32 dev lo");
    agent::SnapshotPtr snap;
    std::uint64_t inode = 0;
    {
        const Holder h(ns, "vipp-gone", SOCK_STREAM, "1.2.3.4");
        inode = h.inode;
        snap = scan(ns);
    }  // the child exits and its socket closes after the snapshot saw it
    agent::ProcessIndex processes;
    const std::vector<Protocol> tcp{Protocol::tcp};
    const auto report =
        agent::make_claims_report(agent::Vip{"v", ip("1.2.3.4"), ""}, *snap, tcp, &processes);
    ASSERT_EQ(report.protocols[0].claims.size(), 1U);
    EXPECT_FALSE(report.processes.contains(inode));
    const auto v = boost::json::parse(http::claims_json(report));
    EXPECT_FALSE(v.at("protocols")
                     .at("TCP")
                     .at("claims")
                     .at(0)
                     .at("socket")
                     .as_object()
                     .contains("process"));
}

TEST_F(ProvenanceNetns, NativeNftRulesCarryTheirComment) {
    TestNetns ns;
    ns.sh("nft add table ip vipnat");
    ns.sh("nft add chain ip vipnat prerouting '{ type nat hook prerouting priority dstnat; }'");
    ns.sh(
        "nft add rule ip vipnat prerouting ip daddr 1.2.3.4 tcp dport 80 "
        "dnat to 10.0.0.5:8080 comment '\"web dnat\"'");
    ns.sh(
        "nft add rule ip vipnat prerouting ip daddr 1.2.3.4 tcp dport 25 "
        "redirect to :2525 comment '\"mail redirect\"'");
    ns.sh(
        "nft add rule ip vipnat prerouting ip daddr 5.6.7.9 dnat to 10.1.1.1 "
        "comment '\"eip 5.6.7.9\"'");
    ns.sh("nft add table ip mang");
    ns.sh("nft add chain ip mang pre '{ type filter hook prerouting priority mangle; }'");
    ns.sh(
        "nft add rule ip mang pre ip daddr 1.2.3.4 tcp dport 9999 "
        "tproxy to :8888 comment '\"tp 9999\"'");
    const auto snap = scan(ns);
    const auto tcp = snap->claims_for(ip("1.2.3.4"), Protocol::tcp);

    expect_rule(rule_with_comment(tcp, "web dnat"), Protocol::tcp, agent::PortSet::single(80),
                origin("nftables", "vipnat", "prerouting",
                       nft_handle(ns, "ip vipnat prerouting", "web dnat"), "dnat", "10.0.0.5:8080",
                       "web dnat"));
    expect_rule(rule_with_comment(tcp, "mail redirect"), Protocol::tcp, agent::PortSet::single(25),
                origin("nftables", "vipnat", "prerouting",
                       nft_handle(ns, "ip vipnat prerouting", "mail redirect"), "redirect", ":2525",
                       "mail redirect"));
    expect_rule(rule_with_comment(tcp, "tp 9999"), Protocol::tcp, agent::PortSet::single(9999),
                origin("nftables", "mang", "pre", nft_handle(ns, "ip mang pre", "tp 9999"),
                       "tproxy", ":8888", "tp 9999"));

    // Whole-IP NAT (EIP): every port of both protocols, and nothing on another VIP.
    const auto eip = origin("nftables", "vipnat", "prerouting",
                            nft_handle(ns, "ip vipnat prerouting", "eip 5.6.7.9"), "dnat",
                            "10.1.1.1", "eip 5.6.7.9");
    for (const Protocol p : {Protocol::tcp, Protocol::udp}) {
        const auto claims = snap->claims_for(ip("5.6.7.9"), p);
        ASSERT_EQ(claims.size(), 1U);
        expect_rule(claims[0], p, agent::PortSet::range(1, 65535), eip);
    }
    EXPECT_THROW((void)rule_with_comment(tcp, "eip 5.6.7.9"), std::runtime_error);
}

TEST_F(ProvenanceNetns, IptablesNftRulesCarryTheirXtComment) {
    if (!have("iptables-nft")) {
        GTEST_SKIP() << "iptables-nft not installed";
    }
    TestNetns ns;
    ns.sh(
        "iptables-nft -t nat -A PREROUTING -d 1.2.3.4/32 -p tcp --dport 81 "
        "-m comment --comment 'ipt-nft dnat' -j DNAT --to-destination 10.0.0.6:8081");
    ns.sh(
        "iptables-nft -t nat -A PREROUTING -d 1.2.3.4/32 -p udp --dport 53 "
        "-m comment --comment 'dns redirect' -j REDIRECT --to-ports 5353");
    ns.sh(
        "iptables-nft -t mangle -A PREROUTING -d 1.2.3.4/32 -p tcp --dport 9998 "
        "-m comment --comment 'ipt tproxy' -j TPROXY --on-port 8887 --tproxy-mark 0x1/0x1");
    const auto snap = scan(ns);
    const auto tcp = snap->claims_for(ip("1.2.3.4"), Protocol::tcp);
    const auto udp = snap->claims_for(ip("1.2.3.4"), Protocol::udp);

    // iptables-nft rules are nf_tables rules: source "nftables", the kind is the xt target.
    expect_rule(
        rule_with_comment(tcp, "ipt-nft dnat"), Protocol::tcp, agent::PortSet::single(81),
        origin("nftables", "nat", "PREROUTING", nft_handle(ns, "ip nat PREROUTING", "dport 81 "),
               "DNAT", "10.0.0.6:8081", "ipt-nft dnat"));
    expect_rule(
        rule_with_comment(udp, "dns redirect"), Protocol::udp, agent::PortSet::single(53),
        origin("nftables", "nat", "PREROUTING", nft_handle(ns, "ip nat PREROUTING", "dport 53 "),
               "REDIRECT", ":5353", "dns redirect"));
    expect_rule(rule_with_comment(tcp, "ipt tproxy"), Protocol::tcp, agent::PortSet::single(9998),
                origin("nftables", "mangle", "PREROUTING",
                       nft_handle(ns, "ip mangle PREROUTING", "dport 9998 "), "TPROXY", ":8887",
                       "ipt tproxy"));
}

TEST_F(ProvenanceNetns, LegacyRulesCarryTheirCommentAndPosition) {
    if (!have("iptables-legacy")) {
        GTEST_SKIP() << "iptables-legacy not installed";
    }
    TestNetns ns;
    ns.sh(
        "iptables-legacy -t nat -A PREROUTING -d 1.2.3.4/32 -p tcp --dport 82 "
        "-m comment --comment 'legacy dnat' -j DNAT --to-destination 10.0.0.7:8082");
    ns.sh(
        "iptables-legacy -t nat -A PREROUTING -d 1.2.3.4/32 -p udp --dport 54 "
        "-m comment --comment 'legacy redirect' -j REDIRECT --to-ports 5454");
    ns.sh(
        "iptables-legacy -t nat -A PREROUTING -d 5.6.7.0/24 "
        "-m comment --comment 'legacy netmap' -j NETMAP --to 10.9.9.0/24");
    ns.sh(
        "iptables-legacy -t mangle -A PREROUTING -d 1.2.3.4/32 -p tcp --dport 9997 "
        "-m comment --comment 'legacy tproxy' -j TPROXY --on-port 8886 --tproxy-mark 0x1/0x1");
    const auto snap = scan(ns);
    const auto tcp = snap->claims_for(ip("1.2.3.4"), Protocol::tcp);
    const auto udp = snap->claims_for(ip("1.2.3.4"), Protocol::udp);

    expect_rule(rule_with_comment(tcp, "legacy dnat"), Protocol::tcp, agent::PortSet::single(82),
                origin("iptables-legacy", "nat", "PREROUTING",
                       legacy_position(ns, "nat -L PREROUTING", "legacy dnat"), "DNAT",
                       "10.0.0.7:8082", "legacy dnat"));
    expect_rule(rule_with_comment(udp, "legacy redirect"), Protocol::udp,
                agent::PortSet::single(54),
                origin("iptables-legacy", "nat", "PREROUTING",
                       legacy_position(ns, "nat -L PREROUTING", "legacy redirect"), "REDIRECT",
                       ":5454", "legacy redirect"));
    expect_rule(rule_with_comment(tcp, "legacy tproxy"), Protocol::tcp,
                agent::PortSet::single(9997),
                origin("iptables-legacy", "mangle", "PREROUTING",
                       legacy_position(ns, "mangle -L PREROUTING", "legacy tproxy"), "TPROXY",
                       ":8886", "legacy tproxy"));
    const auto netmap = origin("iptables-legacy", "nat", "PREROUTING",
                               legacy_position(ns, "nat -L PREROUTING", "legacy netmap"), "NETMAP",
                               "10.9.9.0-10.9.9.255", "legacy netmap");
    for (const Protocol p : {Protocol::tcp, Protocol::udp}) {
        const auto claims = snap->claims_for(ip("5.6.7.8"), p);
        ASSERT_EQ(claims.size(), 1U);
        expect_rule(claims[0], p, agent::PortSet::range(1, 65535), netmap);
    }

    // The JSON carries every origin field.
    const auto report = agent::make_claims_report(agent::Vip{"v", ip("1.2.3.4"), ""}, *snap,
                                                  std::vector<Protocol>{Protocol::tcp}, nullptr);
    const auto v = boost::json::parse(http::claims_json(report));
    bool seen = false;
    for (const auto& c : v.at("protocols").at("TCP").at("claims").as_array()) {
        if (c.as_object().contains("rule") && c.at("rule").at("comment") == "legacy dnat") {
            seen = true;
            EXPECT_EQ(c.at("ports"), boost::json::parse(R"(["82"])"));
            EXPECT_EQ(c.at("certainty"), "exact");
            EXPECT_EQ(c.at("rule").at("source"), "iptables-legacy");
            EXPECT_EQ(c.at("rule").at("table"), "nat");
            EXPECT_EQ(c.at("rule").at("chain"), "PREROUTING");
            EXPECT_EQ(c.at("rule").at("handle"), 1);
            EXPECT_EQ(c.at("rule").at("kind"), "DNAT");
            EXPECT_EQ(c.at("rule").at("target"), "10.0.0.7:8082");
            EXPECT_EQ(c.at("rule").at("path"), boost::json::parse(R"(["PREROUTING"])"));
        }
    }
    EXPECT_TRUE(seen) << boost::json::serialize(v);
}

}  // namespace
}  // namespace vipportd
