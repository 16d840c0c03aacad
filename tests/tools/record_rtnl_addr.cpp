// Records the rtnetlink address fixtures used by the unit tests from the real kernel.
//
//   sudo build/bin/vipportd_record_rtnl_addr tests/fixtures
//
// Creates a throw-away netns (TestNetns), configures the addresses below, and records:
//   rtnl_addr/dump.txt    the RTM_GETADDR dump (netlink::build_addr_dump_request()) and the
//                         RTM_GETLINK dump (netlink::build_link_dump_request()), byte for byte
//                         through RecordingSocket under KernelTransport.
//   rtnl_addr/events.txt  the datagrams an RTNLGRP_IPV4_IFADDR + RTNLGRP_IPV6_IFADDR +
//                         RTNLGRP_LINK subscriber receives for each command of kEvents. Each
//                         exchange has an empty request (events are not answers to a request)
//                         and the command as its comment; seq and port id are zeroed (the
//                         kernel copies those of the `ip` command's request).

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/utsname.h>

#include "netlink/bytes.hpp"
#include "netlink/fixture.hpp"
#include "netlink/kernel_transport.hpp"
#include "netlink/replay_transport.hpp"
#include "netlink/rtnl_addr.hpp"
#include "netlink/rtnl_link.hpp"
#include "tests/support/netns.hpp"

namespace {

using namespace vipportd;
using namespace std::chrono_literals;

// addr_gen_mode 1 (IN6_ADDR_GEN_MODE_NONE, Documentation/networking/ip-sysctl.rst): no
// link-local addresses, so no background DAD events and no addresses derived from random MACs.
const std::vector<std::string> kSetup = {
    "sysctl -qw net.ipv6.conf.default.addr_gen_mode=1",
    "ip link add v0 type veth peer name v1",
    "ip link add v2 type veth peer name v3",
    "ip link set v0 up",
    "ip link set v1 up",
    "ip addr add 1.2.3.4/32 dev lo",
    "ip addr add 10.0.0.1/24 dev v0 label v0:vip",
    "ip addr add 10.0.0.2/24 dev v0",
    "ip addr add 10.9.0.1 peer 10.9.0.2/32 dev v0",
    "ip addr add 10.2.0.1/24 dev v2  (v2 stays down: the HA backup case)",
    "ip -6 addr add 2001:db8::1/128 dev lo nodad",
    "ip -6 addr add 2001:db8::5/64 dev v1 nodad",
    "ip -6 addr add 2001:db8::5/64 dev v0  (then wait until DAD fails: v1 owns it)",
    "ip -6 addr add 2001:db8::2/64 dev v0  (dumped at once: still tentative)",
};

struct EventStep {
    std::string command;
    std::size_t expect;  // messages to wait for (then 300 ms of quiet), at most 5 s
};

const std::vector<EventStep> kEvents = {
    {"ip addr add 1.2.3.9/32 dev lo", 1},
    {"ip -6 addr add 2001:db8::9/128 dev lo", 2},
    {"ip addr del 1.2.3.9/32 dev lo", 1},
    {"ip addr add 10.7.0.1 peer 10.7.0.2/32 dev v0", 1},
    {"ip -6 addr add 2001:db8::7/64 dev v0", 2},
    {"ip link set v2 up", 1},
    {"ip -6 addr del 2001:db8::9/128 dev lo", 1},
};

std::string kernel_release() {
    utsname u{};
    ::uname(&u);
    return std::string(u.sysname) + " " + u.release;
}

netlink::Fixture header(const std::string& what) {
    netlink::Fixture f;
    f.header.push_back(what);
    f.header.push_back(
        "Recorded by tests/tools/record_rtnl_addr.cpp (vipportd_record_rtnl_addr "
        "<fixtures dir>, as root) on " +
        kernel_release() + ", in a fresh netns set up with:");
    for (const auto& c : kSetup) {
        f.header.push_back("  " + c);
    }
    f.header.push_back("Format: netlink/fixture.hpp. Regenerate rather than edit.");
    return f;
}

void must(const netlink::Result<void>& r) {
    if (!r) {
        throw std::runtime_error(netlink::to_string(r.error()));
    }
}

std::string strip_note(const std::string& c) {
    const auto at = c.find("  (");
    return at == std::string::npos ? c : c.substr(0, at);
}

// A raw subscriber like KernelAddressEventSource, kept raw so that the datagrams are recorded
// exactly as received.
int open_subscriber() {
    const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
    if (fd < 0) {
        throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    }
    sockaddr_nl addr{};
    addr.nl_family = AF_NETLINK;
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        throw std::runtime_error(std::string("bind: ") + std::strerror(errno));
    }
    for (const int group : {RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, RTNLGRP_LINK}) {
        if (::setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) != 0) {
            throw std::runtime_error(std::string("membership: ") + std::strerror(errno));
        }
    }
    return fd;
}

std::vector<std::vector<std::uint8_t>> collect(int fd, std::size_t expect) {
    std::vector<std::vector<std::uint8_t>> out;
    std::size_t messages = 0;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        const int quiet_ms = messages >= expect ? 300 : 100;
        if (::poll(&p, 1, quiet_ms) == 0) {
            if (messages >= expect) {
                break;
            }
            continue;
        }
        std::vector<std::uint8_t> buf(65536);
        const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n <= 0) {
            continue;
        }
        buf.resize(static_cast<std::size_t>(n));
        netlink::zero_seq_pid(buf);
        netlink::MessageWalker walk(buf);
        while (true) {
            auto m = walk.next();
            if (!m || !*m) {
                break;
            }
            ++messages;
        }
        out.push_back(std::move(buf));
    }
    if (messages < expect) {
        throw std::runtime_error("expected " + std::to_string(expect) + " event messages, got " +
                                 std::to_string(messages));
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) try {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s FIXTURES_DIR\n", argv[0]);
        return 2;
    }
    const std::filesystem::path dir = argv[1];
    std::filesystem::create_directories(dir / "rtnl_addr");

    test::TestNetns ns;
    for (const auto& c : kSetup) {
        ns.sh(strip_note(c));
        if (c.find("until DAD fails") != std::string::npos) {
            bool failed = false;
            for (int i = 0; i < 100 && !failed; ++i) {
                failed = ns.output("ip -6 addr show dev v0").find("dadfailed") != std::string::npos;
                if (!failed) {
                    ::usleep(50000);
                }
            }
            if (!failed) {
                throw std::runtime_error("DAD of 2001:db8::5 on v0 did not fail within 5 s");
            }
        }
    }

    netlink::Fixture dump = header(
        "RTM_GETADDR dump (netlink::build_addr_dump_request()), then RTM_GETLINK dump "
        "(netlink::build_link_dump_request())");
    ns.in([&] {
        auto s = netlink::open_netlink_socket(NETLINK_ROUTE);
        if (!s) {
            throw std::runtime_error(netlink::to_string(s.error()));
        }
        auto rec = std::make_unique<netlink::RecordingSocket>(std::move(*s), dump);
        auto* tap = rec.get();
        netlink::KernelTransport t(std::move(rec));
        tap->annotate("RTM_GETADDR dump");
        if (auto r = t.exchange(netlink::build_addr_dump_request()); !r) {
            throw std::runtime_error("addresses: " + netlink::to_string(r.error()));
        }
        tap->annotate("RTM_GETLINK dump");
        if (auto r = t.exchange(netlink::build_link_dump_request()); !r) {
            throw std::runtime_error("links: " + netlink::to_string(r.error()));
        }
    });

    // Let the DAD of 2001:db8::2 finish before subscribing, so that its completion event does
    // not land in the middle of the recorded steps.
    bool settled = false;
    for (int i = 0; i < 100 && !settled; ++i) {
        const auto out = ns.output("ip -6 addr show dev v0 to 2001:db8::2");
        settled = !out.empty() && out.find("tentative") == std::string::npos;
        if (!settled) {
            ::usleep(50000);
        }
    }
    if (!settled) {
        throw std::runtime_error("DAD of 2001:db8::2 on v0 did not complete within 5 s");
    }

    netlink::Fixture events =
        header("Address and link events (RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, RTNLGRP_LINK)");
    events.header.push_back(
        "Each exchange: the command as comment, an empty request, the datagrams received.");
    const int fd = ns.in(open_subscriber);
    for (const auto& step : kEvents) {
        ns.sh(step.command);
        netlink::FixtureExchange ex;
        ex.comment.push_back(step.command);
        ex.replies = collect(fd, step.expect);
        events.exchanges.push_back(std::move(ex));
    }
    ::close(fd);

    must(netlink::write_fixture(dump, dir / "rtnl_addr" / "dump.txt"));
    must(netlink::write_fixture(events, dir / "rtnl_addr" / "events.txt"));
    std::printf("recorded into %s\n", (dir / "rtnl_addr").c_str());
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "record_rtnl_addr: %s\n", e.what());
    return 1;
}
