#include "agent/socket_source.hpp"

#include <algorithm>
#include <cerrno>
#include <numeric>
#include <tuple>
#include <unistd.h>
#include <utility>

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "agent/socket_table.hpp"
#include "netlink/rtnl_link.hpp"

namespace vipportd::agent {

namespace {

using netlink::SocketEntry;

// The SO_REUSEPORT group key (kernel.md §1.7): reuseport siblings differ only in inode/cookie.
auto group_key(const SocketEntry& e) {
    return std::tie(e.family, e.protocol, e.address, e.port, e.ifindex);
}

}  // namespace

SocketScope socket_scope(const InetAddress& bound, std::optional<bool> v6only) {
    if (bound.family == Family::v4 || bound.is_v4_mapped()) {
        // An AF_INET6 socket on ::ffff:V is an IPv4 socket on V for binding purposes; on
        // ::ffff:0.0.0.0 it is the IPv4 wildcard (net/ipv6/af_inet6.c __inet6_bind accepts
        // INADDR_ANY there; net/ipv6/inet6_connection_sock.c ipv6_rcv_saddr_equal compares
        // mapped addresses as IPv4).
        const InetAddress v4 = bound.unmapped();
        return {v4.is_unspecified() ? AddressScope::all(Family::v4) : AddressScope::exact(v4),
                Certainty::exact};
    }
    if (!bound.is_unspecified()) {
        return {AddressScope::exact(bound), Certainty::exact};
    }
    // [::]: IPv6 always; IPv4 too unless IPV6_V6ONLY (kernel.md §1.5 rows 4/5, 10/11).
    SocketScope s{AddressScope::all(Family::v6), Certainty::exact};
    if (v6only != true) {
        s.scope.unite(AddressScope::all(Family::v4));
        if (!v6only.has_value()) {
            // No INET_DIAG_SKV6ONLY (pre-3.18 kernels, kernel.md §0, §1.6): assume dual-stack,
            // the answer that never hides a conflict, and say it is a guess.
            s.certainty = Certainty::uncertain;
        }
    }
    return s;
}

std::vector<SocketDump> socket_dumps(const SocketSourceOptions& options, TcpRequest tcp_request) {
    using netlink::build_inet_diag_request;
    // TCP: listeners only, so the kernel skips the established hash (kernel.md §1.2, §1.11),
    // plus bound-only sockets when asked (bit 13, 6.8+; empty before, but the established hash
    // is then walked: kernel_reports_bound_inactive()).
    const std::uint32_t tcp = netlink::kStatesTcpListen |
                              (options.tcp_bound_inactive ? netlink::kStatesTcpBoundInactive : 0U);
    // UDP: every state; bound sockets show as TCP_CLOSE, connected ones as ESTABLISHED (§1.2).
    const std::uint32_t udp = netlink::kStatesAll;
    std::vector<SocketDump> d;
    if (tcp_request == TcpRequest::compat) {
        // Both families in one dump: the bound-inactive part walks the kernel's global bind
        // hash (65,536 buckets here) once instead of twice (netlink/sock_diag.hpp).
        d.push_back(
            {"tcp", netlink::kProtoTcp, netlink::build_tcp_compat_request(tcp), TCPDIAG_GETSOCK});
    } else {
        d.push_back({"tcp4", netlink::kProtoTcp,
                     build_inet_diag_request(Family::v4, netlink::kProtoTcp, tcp)});
        d.push_back({"tcp6", netlink::kProtoTcp,
                     build_inet_diag_request(Family::v6, netlink::kProtoTcp, tcp)});
    }
    // UDP has no compat request (inet_diag_type2proto knows TCP and DCCP only), and a v2
    // request needs a real family (net/core/sock_diag.c looks its handler up by family).
    d.push_back(
        {"udp4", netlink::kProtoUdp, build_inet_diag_request(Family::v4, netlink::kProtoUdp, udp)});
    d.push_back(
        {"udp6", netlink::kProtoUdp, build_inet_diag_request(Family::v6, netlink::kProtoUdp, udp)});
    return d;
}

std::vector<Claim> socket_claims(std::span<const SocketEntry> entries,
                                 const std::map<std::uint32_t, std::string>& device_names) {
    std::vector<std::size_t> order(entries.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return group_key(entries[a]) < group_key(entries[b]);
    });

    std::vector<Claim> claims;
    for (std::size_t i = 0; i < order.size();) {
        const SocketEntry& first = entries[order[i]];
        std::size_t j = i;
        Claim c;
        c.protocol = first.protocol == netlink::kProtoUdp ? Protocol::udp : Protocol::tcp;
        c.ports = PortSet::single(first.port);
        // Members of a group could differ in v6only (two reuseport [::] sockets, one of each):
        // the group holds the union of what its members hold.
        for (; j < order.size() && group_key(entries[order[j]]) == group_key(first); ++j) {
            const SocketEntry& e = entries[order[j]];
            SocketScope s = socket_scope(e.address, e.v6only);
            if (j == i) {
                c.scope = std::move(s.scope);
            } else {
                c.scope.unite(s.scope);
            }
            if (s.certainty == Certainty::uncertain) {
                c.certainty = Certainty::uncertain;
            }
        }
        SocketOrigin o;
        o.family = first.family;
        o.state = first.state;
        o.address = first.address;
        o.port = first.port;
        o.ifindex = first.ifindex;
        if (first.ifindex != 0) {
            if (const auto it = device_names.find(first.ifindex); it != device_names.end()) {
                o.device = it->second;
            }
        }
        o.uid = first.uid;
        o.inode = first.inode;
        o.v6only = first.v6only;
        o.freebind = first.freebind.value_or(false);
        o.transparent = first.transparent.value_or(false);
        o.count = static_cast<std::uint32_t>(j - i);
        c.origin = std::move(o);
        claims.push_back(std::move(c));
        i = j;
    }
    return claims;
}

netlink::Result<bool> dump_reports_inode(netlink::Transport& sock_diag,
                                         std::span<const std::uint8_t> request,
                                         std::uint64_t inode) {
    bool seen = false;
    // As many tries as a scan gets for an interrupted dump (NLM_F_DUMP_INTR).
    static const int attempts = SocketSourceOptions{}.max_attempts;
    auto r = netlink::exchange_each_consistent(
        sock_diag, request, attempts, [&seen] { seen = false; },
        [&seen, inode](const netlink::RawMessage& m) -> netlink::Result<void> {
            auto entry = netlink::parse_inet_diag_message(m, netlink::kProtoTcp);
            if (!entry) {
                return entry.error();
            }
            seen = seen || entry->inode == inode;
            return {};
        });
    if (!r) {
        return r.error();
    }
    return seen;
}

std::optional<bool> kernel_reports_bound_inactive(netlink::Transport& sock_diag) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return std::nullopt;
    }
    // Loopback and an ephemeral port: the probe holds no port anyone could want, for the
    // microseconds it lives.
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct stat st {};
    std::optional<bool> verdict;
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0 && ::fstat(fd, &st) == 0) {
        const auto request = netlink::build_inet_diag_request(
            Family::v4, netlink::kProtoTcp,
            netlink::kStatesTcpListen | netlink::kStatesTcpBoundInactive);
        if (auto r = dump_reports_inode(sock_diag, request, st.st_ino)) {
            verdict = *r;
        }
    }
    ::close(fd);
    return verdict;
}

SocketSource::SocketSource(std::unique_ptr<netlink::Transport> sock_diag,
                           std::unique_ptr<netlink::Transport> route,
                           SocketSourceOptions options)
    : sock_diag_(std::move(sock_diag)),
      route_(std::move(route)),
      options_(options),
      dumps_(socket_dumps(options, tcp_request_)) {}

netlink::Result<void> SocketSource::scan(std::vector<SocketRecord>& records,
                                         const SocketDump** failed) {
    for (const auto& d : dumps_) {
        const std::size_t mark = records.size();
        auto r = netlink::exchange_each_consistent(
            *sock_diag_, d.request, options_.max_attempts,
            [&records, mark] { records.resize(mark); },  // an interrupted attempt is redone
            [&records, &d](const netlink::RawMessage& m) -> netlink::Result<void> {
                auto entry = netlink::parse_inet_diag_message(m, d.protocol);
                if (!entry) {
                    return entry.error();
                }
                records.push_back(SocketRecord::from(*entry));
                return {};
            });
        if (!r) {
            netlink::Error e = r.error();
            e.detail = "sock_diag " + d.label + " dump: " + e.detail;
            *failed = &d;
            return e;
        }
    }
    return {};
}

netlink::Result<std::vector<Claim>> SocketSource::collect() {
    auto shared = collect_shared();
    if (!shared) {
        return shared.error();
    }
    return shared->sockets->claims();
}

netlink::Result<Collected> SocketSource::collect_shared() {
    if (!sock_diag_) {
        return netlink::Error::of(netlink::Errc::system,
                                  "sockets source has no sock_diag transport");
    }
    // Each message becomes a 40-byte record as its datagram arrives, so the peak is one receive
    // buffer plus the records, never a whole dump (45,000 TCP sockets are 5.6 MB of messages).
    // The records become the table itself (sorted in place), sized from the last scan so that
    // they are not copied while growing.
    std::vector<SocketRecord> records;
    records.reserve(expected_records_);
    const SocketDump* failed = nullptr;
    auto scanned = scan(records, &failed);
    if (!scanned && failed != nullptr && failed->request_type == TCPDIAG_GETSOCK &&
        scanned.error().code == netlink::Errc::kernel &&
        (scanned.error().sys_errno == EOPNOTSUPP || scanned.error().sys_errno == EINVAL)) {
        // A kernel without the compat request (net/core/sock_diag.c answers EOPNOTSUPP when no
        // inet_rcv_compat handler is registered; EINVAL if a future kernel rejects its layout):
        // one v2 request per family from now on. Other errors (EPERM, ...) would hit the v2
        // requests alike, so they are reported as they are.
        spdlog::warn(
            "source=sockets the TCP compat dump was refused ({}); using one dump per "
            "family",
            netlink::to_string(scanned.error()));
        tcp_request_ = TcpRequest::per_family;
        dumps_ = socket_dumps(options_, tcp_request_);
        records.clear();
        scanned = scan(records, &failed);
    }
    if (!scanned) {
        return scanned.error();
    }
    // Room for some growth; a host that once had many more sockets does not keep the memory.
    expected_records_ = records.size() + records.size() / 16 + 64;
    const bool bound_devices = std::any_of(records.begin(), records.end(),
                                           [](const SocketRecord& r) { return r.ifindex != 0; });

    std::map<std::uint32_t, std::string> names;
    if (route_ && bound_devices) {
        // Only when some socket is device-bound: most hosts have none, and link dumps are large.
        auto dump = netlink::exchange_consistent(*route_, netlink::build_link_dump_request(),
                                                 options_.max_attempts);
        netlink::Result<std::map<std::uint32_t, std::string>> parsed =
            dump ? netlink::parse_link_names(*dump)
                 : netlink::Result<std::map<std::uint32_t, std::string>>(dump.error());
        if (parsed) {
            names = std::move(*parsed);
            if (device_names_failing_) {
                spdlog::info("source=sockets device names resolved again");
                device_names_failing_ = false;
            }
        } else if (!device_names_failing_) {
            spdlog::warn(
                "source=sockets cannot resolve device names, claims keep the ifindex only: {}",
                netlink::to_string(parsed.error()));
            device_names_failing_ = true;
        }
    }
    return Collected{std::make_shared<const std::vector<Claim>>(),
                     std::make_shared<const SocketTable>(std::move(records), std::move(names)),
                     nullptr};
}

}  // namespace vipportd::agent
