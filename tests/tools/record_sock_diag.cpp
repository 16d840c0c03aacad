// Records the sock_diag and RTM_GETLINK fixtures used by the unit tests from the real kernel.
//
//   sudo build/bin/vipportd_record_sock_diag tests/fixtures
//
// Creates a throw-away netns (TestNetns), configures it, opens the sockets of the scenario below
// (fixed ports are fine there: nothing else lives in that namespace), and records, byte for byte
// through RecordingSocket under KernelTransport:
//   sock_diag/scenario.txt  tcp (compat, LISTEN|BOUND_INACTIVE), udp4/udp6 (all states), then
//                           tcp with LISTEN only (SocketSourceOptions{.tcp_bound_inactive =
//                           false}), then tcp4/tcp6 per family (TcpRequest::per_family) with
//                           and without BOUND_INACTIVE: exactly the requests of
//                           agent::socket_dumps().
//   sock_diag/errors.txt    a request with an invalid family (NLMSG_ERROR) and one for an
//                           unsupported protocol (the kernel's answer, whatever it is).
//   rtnl/links.txt          the RTM_GETLINK dump of that netns.

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <net/if.h>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/utsname.h>

#include "agent/socket_source.hpp"
#include "netlink/fixture.hpp"
#include "netlink/kernel_transport.hpp"
#include "netlink/replay_transport.hpp"
#include "netlink/rtnl_link.hpp"
#include "netlink/sock_diag.hpp"
#include "tests/support/netns.hpp"

namespace {

using namespace vipportd;

const std::vector<std::string> kSetup = {
    "ip link add v0 type veth peer name v1",
    "ip link set v0 up",
    "ip link set v1 up",
    "ip addr add 1.2.3.4/32 dev lo",
    "ip -6 addr add 2001:db8::1/128 dev lo nodad",
};

const std::vector<std::string> kScenario = {
    "tcp4 LISTEN 1.2.3.4:80, accepted connection from 1.2.3.4:40000 (client and child are "
    "ESTABLISHED: not dumped)",
    "tcp4 LISTEN 1.2.3.4:443 twice with SO_REUSEPORT",
    "tcp4 LISTEN 0.0.0.0:22",
    "tcp4 LISTEN 0.0.0.0:9000 SO_BINDTODEVICE lo; 0.0.0.0:9002 SO_BINDTODEVICE v0",
    "tcp4 LISTEN 9.9.9.9:9001 IP_FREEBIND; 9.9.9.8:9003 IP_TRANSPARENT (both unconfigured)",
    "tcp4 bound, not listening, 1.2.3.4:7777 (TCP_BOUND_INACTIVE)",
    "tcp6 LISTEN [::]:8080 v6only=0; [::]:8081 v6only=1; [::ffff:1.2.3.4]:8082; "
    "[2001:db8::1]:8083",
    "udp4 1.2.3.4:53; 0.0.0.0:67 SO_BINDTODEVICE lo; 1.2.3.4:5300 connected to 1.2.3.4:53; "
    "1.2.3.4:5400 twice with SO_REUSEPORT",
    "udp6 [::]:5353 v6only=0; [::]:5354 v6only=1",
};

[[noreturn]] void die(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

int sock(int family, int type) {
    const int fd = ::socket(family, type | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        die("socket");
    }
    return fd;
}

void opt(int fd, int level, int name, int value) {
    if (::setsockopt(fd, level, name, &value, sizeof value) != 0) {
        die("setsockopt " + std::to_string(name));
    }
}

void device(int fd, const char* dev) {
    if (::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev,
                     static_cast<socklen_t>(std::strlen(dev))) != 0) {
        die(std::string("SO_BINDTODEVICE ") + dev);
    }
}

void bind4(int fd, const char* addr, std::uint16_t port) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    ::inet_pton(AF_INET, addr, &sa.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        die(std::string("bind ") + addr + ":" + std::to_string(port));
    }
}

void bind6(int fd, const char* addr, std::uint16_t port) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(port);
    ::inet_pton(AF_INET6, addr, &sa.sin6_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        die(std::string("bind [") + addr + "]:" + std::to_string(port));
    }
}

void connect4(int fd, const char* addr, std::uint16_t port) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    ::inet_pton(AF_INET, addr, &sa.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        die(std::string("connect ") + addr);
    }
}

void listen_(int fd) {
    if (::listen(fd, 8) != 0) {
        die("listen");
    }
}

std::vector<int> open_scenario() {
    std::vector<int> fds;
    const auto keep = [&](int fd) {
        fds.push_back(fd);
        return fd;
    };
    int fd = keep(sock(AF_INET, SOCK_STREAM));
    bind4(fd, "1.2.3.4", 80);
    listen_(fd);
    const int client = keep(sock(AF_INET, SOCK_STREAM));
    bind4(client, "1.2.3.4", 40000);
    connect4(client, "1.2.3.4", 80);
    const int child = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (child < 0) {
        die("accept");
    }
    keep(child);
    for (int i = 0; i < 2; ++i) {
        fd = keep(sock(AF_INET, SOCK_STREAM));
        opt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
        bind4(fd, "1.2.3.4", 443);
        listen_(fd);
    }
    fd = keep(sock(AF_INET, SOCK_STREAM));
    bind4(fd, "0.0.0.0", 22);
    listen_(fd);
    fd = keep(sock(AF_INET, SOCK_STREAM));
    device(fd, "lo");
    bind4(fd, "0.0.0.0", 9000);
    listen_(fd);
    fd = keep(sock(AF_INET, SOCK_STREAM));
    device(fd, "v0");
    bind4(fd, "0.0.0.0", 9002);
    listen_(fd);
    fd = keep(sock(AF_INET, SOCK_STREAM));
    opt(fd, IPPROTO_IP, IP_FREEBIND, 1);
    bind4(fd, "9.9.9.9", 9001);
    listen_(fd);
    fd = keep(sock(AF_INET, SOCK_STREAM));
    opt(fd, IPPROTO_IP, IP_TRANSPARENT, 1);
    bind4(fd, "9.9.9.8", 9003);
    listen_(fd);
    fd = keep(sock(AF_INET, SOCK_STREAM));
    bind4(fd, "1.2.3.4", 7777);

    fd = keep(sock(AF_INET6, SOCK_STREAM));
    opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
    bind6(fd, "::", 8080);
    listen_(fd);
    fd = keep(sock(AF_INET6, SOCK_STREAM));
    opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    bind6(fd, "::", 8081);
    listen_(fd);
    fd = keep(sock(AF_INET6, SOCK_STREAM));
    opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
    bind6(fd, "::ffff:1.2.3.4", 8082);
    listen_(fd);
    fd = keep(sock(AF_INET6, SOCK_STREAM));
    bind6(fd, "2001:db8::1", 8083);
    listen_(fd);

    fd = keep(sock(AF_INET, SOCK_DGRAM));
    bind4(fd, "1.2.3.4", 53);
    fd = keep(sock(AF_INET, SOCK_DGRAM));
    device(fd, "lo");
    bind4(fd, "0.0.0.0", 67);
    fd = keep(sock(AF_INET, SOCK_DGRAM));
    bind4(fd, "1.2.3.4", 5300);
    connect4(fd, "1.2.3.4", 53);
    for (int i = 0; i < 2; ++i) {
        fd = keep(sock(AF_INET, SOCK_DGRAM));
        opt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
        bind4(fd, "1.2.3.4", 5400);
    }
    fd = keep(sock(AF_INET6, SOCK_DGRAM));
    opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
    bind6(fd, "::", 5353);
    fd = keep(sock(AF_INET6, SOCK_DGRAM));
    opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    bind6(fd, "::", 5354);
    return fds;
}

std::string kernel_release() {
    utsname u{};
    ::uname(&u);
    return std::string(u.sysname) + " " + u.release;
}

netlink::Fixture header(const std::string& what) {
    netlink::Fixture f;
    f.header.push_back(what);
    f.header.push_back(
        "Recorded by tests/tools/record_sock_diag.cpp (vipportd_record_sock_diag "
        "<fixtures dir>, as root) on " +
        kernel_release() + ", in a fresh netns set up with:");
    for (const auto& c : kSetup) {
        f.header.push_back("  " + c);
    }
    f.header.push_back("Sockets open while recording:");
    for (const auto& s : kScenario) {
        f.header.push_back("  " + s);
    }
    f.header.push_back("Format: netlink/fixture.hpp. Regenerate rather than edit.");
    return f;
}

void must(const netlink::Result<void>& r) {
    if (!r) {
        throw std::runtime_error(netlink::to_string(r.error()));
    }
}

}  // namespace

int main(int argc, char** argv) try {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s FIXTURES_DIR\n", argv[0]);
        return 2;
    }
    const std::filesystem::path dir = argv[1];
    std::filesystem::create_directories(dir / "sock_diag");
    std::filesystem::create_directories(dir / "rtnl");

    test::TestNetns ns;
    for (const auto& c : kSetup) {
        ns.sh(c);
    }
    const std::vector<int> fds = ns.in(open_scenario);

    netlink::Fixture scenario = header(
        "sock_diag dumps: agent::socket_dumps() with tcp_bound_inactive on, then its TCP dump "
        "with it off, then the per-family TCP dumps (the fallback) with it on and off");
    netlink::Fixture errors = header("sock_diag requests the kernel rejects");
    netlink::Fixture links = header("RTM_GETLINK dump (netlink::build_link_dump_request())");

    // Sockets and transports are created on a thread inside the netns (kernel.md §1.9).
    ns.in([&] {
        const auto record = [](netlink::Fixture& sink, int protocol) {
            auto s = netlink::open_netlink_socket(protocol);
            if (!s) {
                throw std::runtime_error(netlink::to_string(s.error()));
            }
            auto rec = std::make_unique<netlink::RecordingSocket>(std::move(*s), sink);
            return rec;
        };
        {
            auto rec = record(scenario, NETLINK_SOCK_DIAG);
            auto* tap = rec.get();
            netlink::KernelTransport t(std::move(rec));
            std::vector<agent::SocketDump> dumps = agent::socket_dumps({});
            const auto add_tcp = [&dumps](std::vector<agent::SocketDump> more,
                                          const std::string& suffix) {
                for (auto& d : more) {
                    if (d.protocol == netlink::kProtoTcp) {
                        d.label += suffix;
                        dumps.push_back(std::move(d));
                    }
                }
            };
            add_tcp(agent::socket_dumps({.tcp_bound_inactive = false}), " (LISTEN only)");
            add_tcp(agent::socket_dumps({}, agent::TcpRequest::per_family), " (per family)");
            add_tcp(
                agent::socket_dumps({.tcp_bound_inactive = false}, agent::TcpRequest::per_family),
                " (per family, LISTEN only)");
            for (const auto& d : dumps) {
                tap->annotate(d.label);
                auto r = t.exchange(d.request);
                if (!r) {
                    throw std::runtime_error(d.label + ": " + netlink::to_string(r.error()));
                }
            }
        }
        {
            auto rec = record(errors, NETLINK_SOCK_DIAG);
            auto* tap = rec.get();
            netlink::KernelTransport t(std::move(rec));
            auto bad_family =
                netlink::build_inet_diag_request(netlink::Family::v4, netlink::kProtoTcp, 0x400);
            bad_family[16] = 255;  // sdiag_family >= AF_MAX: -EINVAL (net/core/sock_diag.c)
            tap->annotate("sdiag_family 255 (>= AF_MAX)");
            (void)t.exchange(bad_family);
            tap->annotate("AF_INET, sdiag_protocol 254 (no inet_diag handler)");
            (void)t.exchange(
                netlink::build_inet_diag_request(netlink::Family::v4, 254, netlink::kStatesAll));
        }
        {
            auto rec = record(links, NETLINK_ROUTE);
            auto* tap = rec.get();
            netlink::KernelTransport t(std::move(rec));
            tap->annotate("RTM_GETLINK dump");
            auto r = t.exchange(netlink::build_link_dump_request());
            if (!r) {
                throw std::runtime_error("links: " + netlink::to_string(r.error()));
            }
        }
    });
    for (const int fd : fds) {
        ::close(fd);
    }
    must(netlink::write_fixture(scenario, dir / "sock_diag" / "scenario.txt"));
    must(netlink::write_fixture(errors, dir / "sock_diag" / "errors.txt"));
    must(netlink::write_fixture(links, dir / "rtnl" / "links.txt"));
    std::printf("recorded into %s\n", dir.c_str());
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "record_sock_diag: %s\n", e.what());
    return 1;
}
