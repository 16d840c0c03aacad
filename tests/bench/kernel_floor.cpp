// vipportd_bench_floor: the kernel floor of one vipportd scan, for scripts/bench.
//
// Does only the netlink round trips a scan cannot avoid, counts the reply messages and parses
// nothing: three sock_diag dumps (TCP LISTEN|BOUND_INACTIVE for both families in one compat
// dump, udp4 and udp6 all states, kernel.md §1.1-1.2) and the nf_tables read of kernel.md §2.1 (GETGEN, GETTABLE, GETCHAIN,
// GETRULE, GETSET dumps, GETGEN again for the consistency check). Raw AF_NETLINK sockets, no
// library: this is the baseline vipportd's cold scan is compared with, so it must stay minimal.
//
//   vipportd_bench_floor [--repeat N] [--no-bound-inactive] [--no-nft]
//
// Prints one line of key=value pairs on stdout:
//   runs=N median_us=.. min_us=.. max_us=.. sock_median_us=.. nft_median_us=..
//   sock_msgs=.. nft_msgs=.. dump_intr=..
// (message counts are those of the last run; dump_intr counts nf_tables dumps that the kernel
// flagged NLM_F_DUMP_INTR, which a real reader would have to repeat). Exit 1 on any error.

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

#include <linux/inet_diag.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace {

// TCP_LISTEN (10) and the TCP_BOUND_INACTIVE pseudo-state (13, Linux >= 6.8): kernel.md §1.2,
// include/net/tcp_states.h. Debian 12's uapi headers predate the latter, hence the literals.
constexpr std::uint32_t kTcpListen = 1U << 10;
constexpr std::uint32_t kTcpBoundInactive = 1U << 13;
constexpr std::uint32_t kAllStates = ~0U;

// Dump skbs are sized to the reader's buffer but capped near 32 KiB (kernel.md §1.11); a
// larger buffer only guards against a future kernel sending bigger ones.
constexpr std::size_t kBufferSize = 64 * 1024;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "vipportd_bench_floor: %s\n", what.c_str());
    std::exit(1);
}

std::string errno_text(const char* call) { return std::string(call) + ": " + std::strerror(errno); }

class Netlink {
  public:
    explicit Netlink(int protocol) : fd_(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol)) {
        if (fd_ < 0) {
            die(errno_text("socket(AF_NETLINK)"));
        }
        buffer_.resize(kBufferSize);
    }
    ~Netlink() { close(fd_); }
    Netlink(const Netlink&) = delete;
    Netlink& operator=(const Netlink&) = delete;

    /// Sends one request (header fields filled here) and counts reply messages until NLMSG_DONE,
    /// or until the ACK (NLMSG_ERROR with error 0) of a non-dump request sent with NLM_F_ACK.
    std::uint64_t round_trip(std::uint16_t type,
                             std::uint16_t flags,
                             const void* payload,
                             std::size_t payload_len,
                             std::uint64_t* dump_intr = nullptr) {
        std::vector<std::uint8_t> req(NLMSG_SPACE(payload_len));
        auto* nlh = reinterpret_cast<nlmsghdr*>(req.data());
        nlh->nlmsg_len = static_cast<std::uint32_t>(NLMSG_LENGTH(payload_len));
        nlh->nlmsg_type = type;
        nlh->nlmsg_flags = flags;
        nlh->nlmsg_seq = ++seq_;
        std::memcpy(NLMSG_DATA(nlh), payload, payload_len);
        sockaddr_nl kernel{};
        kernel.nl_family = AF_NETLINK;
        if (sendto(fd_, req.data(), nlh->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel),
                   sizeof kernel) < 0) {
            die(errno_text("sendto"));
        }
        std::uint64_t messages = 0;
        for (;;) {
            const ssize_t n = recv(fd_, buffer_.data(), buffer_.size(), 0);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                die(errno_text("recv"));
            }
            auto len = static_cast<unsigned int>(n);
            for (auto* m = reinterpret_cast<nlmsghdr*>(buffer_.data()); NLMSG_OK(m, len);
                 m = NLMSG_NEXT(m, len)) {
                if (m->nlmsg_seq != seq_) {
                    continue;  // a stale reply from an earlier request
                }
                if (dump_intr != nullptr && (m->nlmsg_flags & NLM_F_DUMP_INTR) != 0) {
                    ++*dump_intr;
                    dump_intr = nullptr;  // count the dump once
                }
                if (m->nlmsg_type == NLMSG_DONE) {
                    return messages;
                }
                if (m->nlmsg_type == NLMSG_ERROR) {
                    const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(m));
                    if (e->error != 0) {
                        die("netlink request type " + std::to_string(type) +
                            " failed: " + std::strerror(-e->error));
                    }
                    return messages;  // the ACK that ends a non-dump request
                }
                ++messages;
            }
        }
    }

  private:
    int fd_;
    std::uint32_t seq_ = 0;
    std::vector<std::uint8_t> buffer_;
};

std::uint64_t sock_diag_dump(Netlink& nl,
                             std::uint8_t family,
                             std::uint8_t protocol,
                             std::uint32_t states) {
    inet_diag_req_v2 req{};
    req.sdiag_family = family;
    req.sdiag_protocol = protocol;
    req.idiag_ext = 0;  // no extensions: the smallest messages (kernel.md §1.1)
    req.idiag_states = states;
    return nl.round_trip(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, &req, sizeof req);
}

// Both TCP families in one legacy TCPDIAG_GETSOCK dump, as vipportd reads them
// (netlink/sock_diag.hpp build_tcp_compat_request): the cheapest way the kernel offers, so the
// floor is the real minimum, not two walks of the bind hash.
std::uint64_t tcp_compat_dump(Netlink& nl, std::uint32_t states) {
    inet_diag_req req{};
    req.idiag_family = AF_INET;  // dumped as AF_UNSPEC (net/ipv4/inet_diag.c)
    req.idiag_states = states;
    return nl.round_trip(TCPDIAG_GETSOCK, NLM_F_REQUEST | NLM_F_DUMP, &req, sizeof req);
}

std::uint64_t nft_request(Netlink& nl,
                          std::uint16_t msg,
                          std::uint16_t flags,
                          std::uint64_t* dump_intr) {
    nfgenmsg g{};
    // NFPROTO_UNSPEC (0, linux/netfilter.h, which clashes with glibc's <netinet/in.h>) is
    // AF_UNSPEC: every family in one dump (kernel.md §2.1).
    g.nfgen_family = AF_UNSPEC;
    g.version = NFNETLINK_V0;
    g.res_id = 0;
    return nl.round_trip(static_cast<std::uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | msg), flags, &g,
                         sizeof g, dump_intr);
}

std::uint64_t nft_read(Netlink& nl, std::uint64_t& dump_intr) {
    // GETGEN is not a dump: without NLM_F_ACK nothing ends its reply (kernel.md §2.1 pitfall).
    constexpr std::uint16_t kGet = NLM_F_REQUEST | NLM_F_ACK;
    constexpr std::uint16_t kDump = NLM_F_REQUEST | NLM_F_DUMP;
    std::uint64_t n = nft_request(nl, NFT_MSG_GETGEN, kGet, nullptr);
    for (const auto msg : {NFT_MSG_GETTABLE, NFT_MSG_GETCHAIN, NFT_MSG_GETRULE, NFT_MSG_GETSET}) {
        n += nft_request(nl, static_cast<std::uint16_t>(msg), kDump, &dump_intr);
    }
    return n + nft_request(nl, NFT_MSG_GETGEN, kGet, nullptr);
}

using Clock = std::chrono::steady_clock;

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
    int repeat = 10;
    bool bound_inactive = true;
    bool with_nft = true;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--repeat" && i + 1 < argc) {
            repeat = std::atoi(argv[++i]);
        } else if (a == "--no-bound-inactive") {
            bound_inactive = false;
        } else if (a == "--no-nft") {
            with_nft = false;
        } else {
            std::fprintf(stderr,
                         "usage: %s [--repeat N] [--no-bound-inactive] [--no-nft]\n"
                         "  times the raw sock_diag and nf_tables dumps of one scan\n",
                         argv[0]);
            return 2;
        }
    }
    if (repeat < 1) {
        die("--repeat must be at least 1");
    }
    const std::uint32_t tcp_states = kTcpListen | (bound_inactive ? kTcpBoundInactive : 0U);

    Netlink diag(NETLINK_SOCK_DIAG);
    Netlink nft(NETLINK_NETFILTER);
    std::vector<double> total;
    std::vector<double> sock;
    std::vector<double> nf;
    std::uint64_t sock_msgs = 0;
    std::uint64_t nft_msgs = 0;
    std::uint64_t dump_intr = 0;
    // One unmeasured round first: it faults in the buffers and the sockets' kernel state.
    for (int r = -1; r < repeat; ++r) {
        const auto t0 = Clock::now();
        sock_msgs = tcp_compat_dump(diag, tcp_states) +
                    sock_diag_dump(diag, AF_INET, IPPROTO_UDP, kAllStates) +
                    sock_diag_dump(diag, AF_INET6, IPPROTO_UDP, kAllStates);
        const auto t1 = Clock::now();
        nft_msgs = with_nft ? nft_read(nft, dump_intr) : 0;
        const auto t2 = Clock::now();
        if (r >= 0) {
            sock.push_back(micros(t1 - t0));
            nf.push_back(micros(t2 - t1));
            total.push_back(micros(t2 - t0));
        }
    }
    const auto [lo, hi] = std::minmax_element(total.begin(), total.end());
    std::printf(
        "runs=%d median_us=%.1f min_us=%.1f max_us=%.1f sock_median_us=%.1f "
        "nft_median_us=%.1f sock_msgs=%llu nft_msgs=%llu dump_intr=%llu\n",
        repeat, median(total), *lo, *hi, median(sock), median(nf),
        static_cast<unsigned long long>(sock_msgs), static_cast<unsigned long long>(nft_msgs),
        static_cast<unsigned long long>(dump_intr));
    return 0;
}
