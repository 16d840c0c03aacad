// vipportd_bench_sockets: holds many TCP listeners and UDP sockets in one process, the socket
// load of scripts/bench (tests/e2e/holdport.cpp holds a few named ones; this holds tens of
// thousands laid out by a formula).
//
//   vipportd_bench_sockets --tcp N --udp N --addr A [--addr A...] [--port-base P]
//                          [--tcp-first I] [--udp-first I]
//
// ADDRESS is an IPv4 literal, "0.0.0.0", or "[::]" (an IPv6 wildcard with IPV6_V6ONLY = 0, so it
// also covers every IPv4 address: kernel.md §1.5). Candidate number i (counted separately for TCP
// and UDP, from --tcp-first / --udp-first) is
//     port    = P + i mod (65536 - P)
//     address = addresses[(i mod (65536 - P) + round) mod count], round = i div (65536 - P)
// so ports are all distinct until the port span is used up, and a port is then reused only on
// another address. A candidate whose bind fails with EADDRINUSE (a wildcard already holds the
// port) is skipped; wildcard addresses are used in the first round only.
//
// RLIMIT_NOFILE's hard limit caps one process (20,000 on the development machines, which lack
// CAP_SYS_RESOURCE to raise it): the sockets are spread over as many child processes as needed.
// Binds everything, prints "ready tcp=N udp=N tcp_next=I udp_next=I skipped=K processes=P" (the
// *_next values are where a second instance must start so as not to collide with this one) and
// waits for SIGTERM or SIGINT, on which it stops its children and exits 0. Any failure prints a
// message on stderr and exits 1 before "ready".

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

namespace {

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "vipportd_bench_sockets: %s\n", what.c_str());
    std::exit(1);
}

std::string errno_text(const char* call) { return std::string(call) + ": " + std::strerror(errno); }

struct Address {
    bool v6 = false;
    bool wildcard = false;
    in_addr v4{};
    std::string text;
};

Address parse_address(std::string_view text) {
    Address a;
    a.text = std::string(text);
    if (text == "[::]") {
        a.v6 = true;
        a.wildcard = true;
        return a;
    }
    if (inet_pton(AF_INET, a.text.c_str(), &a.v4) != 1) {
        die("bad address '" + a.text + "' (an IPv4 literal, 0.0.0.0 or [::])");
    }
    a.wildcard = a.v4.s_addr == htonl(INADDR_ANY);
    return a;
}

std::uint64_t parse_number(const char* text, const char* what) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0') {
        die(std::string("bad number for ") + what + ": '" + text + "'");
    }
    return v;
}

/// Raises the soft RLIMIT_NOFILE to the hard limit and returns how many sockets one process may
/// hold. The hard limit itself is left alone: raising it needs CAP_SYS_RESOURCE, which containers
/// often drop; processes are cheaper than asking for it.
std::uint64_t sockets_per_process() {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) {
        die(errno_text("getrlimit(RLIMIT_NOFILE)"));
    }
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
            die(errno_text("setrlimit(RLIMIT_NOFILE)"));
        }
    }
    constexpr std::uint64_t kReserve = 32;  // stdio, the pipe to the parent, libc
    if (lim.rlim_cur <= kReserve + 1) {
        die("RLIMIT_NOFILE is too low: " + std::to_string(lim.rlim_cur));
    }
    return std::min<std::uint64_t>(lim.rlim_cur - kReserve, 1'000'000);
}

/// Opens one socket bound to address:port; returns false on EADDRINUSE, dies on anything else.
bool open_one(bool tcp, const Address& a, std::uint16_t port) {
    const int fd =
        socket(a.v6 ? AF_INET6 : AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        die(errno_text("socket"));
    }
    int rc = 0;
    if (a.v6) {
        const int off = 0;
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0) {
            die(errno_text("setsockopt(IPV6_V6ONLY)"));
        }
        sockaddr_in6 sa{};
        sa.sin6_family = AF_INET6;
        sa.sin6_port = htons(port);
        sa.sin6_addr = in6addr_any;
        rc = bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
    } else {
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(port);
        sa.sin_addr = a.v4;
        rc = bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
    }
    if (rc != 0) {
        if (errno == EADDRINUSE) {
            close(fd);
            return false;
        }
        die(errno_text("bind") + " " + a.text + " port " + std::to_string(port));
    }
    if (tcp && listen(fd, 16) != 0) {
        die(errno_text("listen") + " " + a.text + " port " + std::to_string(port));
    }
    return true;  // the descriptor stays open until the process exits
}

struct Result {
    std::uint64_t next = 0;
    std::uint64_t skipped = 0;
};

Result open_many(bool tcp,
                 std::uint64_t count,
                 std::uint64_t first,
                 const std::vector<Address>& addrs,
                 std::uint32_t port_base) {
    const std::uint64_t span = 65536 - port_base;
    std::uint64_t usable = 0;
    for (const auto& a : addrs) {
        usable += a.wildcard ? 0 : 1;
    }
    Result r;
    std::uint64_t opened = 0;
    std::uint64_t i = first;
    for (; opened < count; ++i) {
        const std::uint64_t offset = i % span;
        const std::uint64_t round = i / span;
        if (round >= addrs.size() || (round > 0 && usable == 0)) {
            die("not enough (address, port) pairs for " + std::to_string(count) + " " +
                (tcp ? "TCP" : "UDP") + " sockets: add addresses or lower --port-base");
        }
        const Address& a = addrs[(offset + round) % addrs.size()];
        if (round > 0 && a.wildcard) {
            ++r.skipped;
            continue;
        }
        if (open_one(tcp, a, static_cast<std::uint16_t>(port_base + offset))) {
            ++opened;
        } else {
            ++r.skipped;
        }
    }
    r.next = i;
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    std::uint64_t tcp = 0;
    std::uint64_t udp = 0;
    std::uint64_t tcp_first = 0;
    std::uint64_t udp_first = 0;
    std::uint64_t port_base = 20000;
    std::vector<Address> addrs;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        const bool has_value = i + 1 < argc;
        if (a == "--tcp" && has_value) {
            tcp = parse_number(argv[++i], "--tcp");
        } else if (a == "--udp" && has_value) {
            udp = parse_number(argv[++i], "--udp");
        } else if (a == "--tcp-first" && has_value) {
            tcp_first = parse_number(argv[++i], "--tcp-first");
        } else if (a == "--udp-first" && has_value) {
            udp_first = parse_number(argv[++i], "--udp-first");
        } else if (a == "--port-base" && has_value) {
            port_base = parse_number(argv[++i], "--port-base");
        } else if (a == "--addr" && has_value) {
            addrs.push_back(parse_address(argv[++i]));
        } else {
            std::fprintf(stderr,
                         "usage: %s --tcp N --udp N --addr A [--addr A...] [--port-base P]\n"
                         "          [--tcp-first I] [--udp-first I]\n",
                         argv[0]);
            return 2;
        }
    }
    if (addrs.empty()) {
        die("at least one --addr is needed");
    }
    if (port_base < 1 || port_base > 65535) {
        die("--port-base must be 1-65535");
    }
    // Blocked before "ready" and awaited with sigwait: no handler, no race with the caller's kill.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, nullptr);

    const auto base = static_cast<std::uint32_t>(port_base);
    const std::uint64_t quota = sockets_per_process();

    // One child per `quota` sockets (RLIMIT_NOFILE caps a process, not the load). Children are
    // forked one after another: each reports where it stopped (a skipped candidate shifts the
    // next child's start), then holds its sockets until SIGTERM, or dies with this process
    // (PR_SET_PDEATHSIG), so nothing outlives the holder.
    std::vector<pid_t> children;
    auto fail = [&](const std::string& what) {
        for (const pid_t c : children) {
            kill(c, SIGKILL);
        }
        die(what);
    };
    std::uint64_t tcp_left = tcp;
    std::uint64_t udp_left = udp;
    std::uint64_t skipped = 0;
    while (tcp_left + udp_left > 0) {
        const std::uint64_t t = std::min(tcp_left, quota);
        const std::uint64_t u = std::min(udp_left, quota - t);
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) {
            fail(errno_text("pipe2"));
        }
        const pid_t pid = fork();
        if (pid < 0) {
            fail(errno_text("fork"));
        }
        if (pid == 0) {
            close(fds[0]);
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            const Result rt = open_many(true, t, tcp_first, addrs, base);
            const Result ru = open_many(false, u, udp_first, addrs, base);
            const std::uint64_t report[3] = {rt.next, ru.next, rt.skipped + ru.skipped};
            if (write(fds[1], report, sizeof report) != static_cast<ssize_t>(sizeof report)) {
                _exit(1);
            }
            close(fds[1]);
            int sig = 0;
            sigwait(&set, &sig);
            _exit(0);
        }
        children.push_back(pid);
        close(fds[1]);
        std::uint64_t report[3] = {};
        ssize_t got = 0;
        do {
            got = read(fds[0], report, sizeof report);
        } while (got < 0 && errno == EINTR);
        close(fds[0]);
        if (got != static_cast<ssize_t>(sizeof report)) {
            fail("a socket-holding child failed (see above)");
        }
        tcp_first = report[0];
        udp_first = report[1];
        skipped += report[2];
        tcp_left -= t;
        udp_left -= u;
    }
    std::printf("ready tcp=%llu udp=%llu tcp_next=%llu udp_next=%llu skipped=%llu processes=%zu\n",
                static_cast<unsigned long long>(tcp), static_cast<unsigned long long>(udp),
                static_cast<unsigned long long>(tcp_first),
                static_cast<unsigned long long>(udp_first),
                static_cast<unsigned long long>(skipped), children.size());
    if (std::fflush(stdout) != 0) {
        fail("cannot write to stdout");
    }
    int sig = 0;
    sigwait(&set, &sig);
    for (const pid_t c : children) {
        kill(c, SIGTERM);
    }
    for (const pid_t c : children) {
        waitpid(c, nullptr, 0);
    }
    return 0;
}
