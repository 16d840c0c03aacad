// vipportd_holdport: holds TCP/UDP sockets open for the e2e scripts, which cannot rely on python3,
// socat or nc being installed on a fresh Debian.
//
//   vipportd_holdport SPEC...
//   SPEC = PROTO:ADDRESS:PORT[:OPTION[,OPTION...]]
//     PROTO    tcp | udp
//     ADDRESS  IPv4 literal, or IPv6 literal in brackets: [::], [2001:db8::10]
//     PORT     0-65535 (0: the kernel picks one; the chosen port is printed)
//     OPTION   v6only     IPV6_V6ONLY = 1 (IPv6 only)
//              dual       IPV6_V6ONLY = 0 (IPv6 and IPv4; set explicitly, whatever
//                         net.ipv6.bindv6only says)
//              reuseaddr  SO_REUSEADDR
//              reuseport  SO_REUSEPORT
//              bound      tcp only: bind() without listen(), the TCP_BOUND_INACTIVE pseudo-state
//                         (kernel.md §1.2, Linux >= 6.8)
//
// Binds every socket, then prints one line "ready PORT..." (the bound ports, in SPEC order) on
// stdout, flushes, and waits for SIGTERM or SIGINT, on which it exits 0. Any failure prints
// "holdport: SPEC: what" on stderr and exits 1 before "ready", so a caller that waits for the
// line learns about it immediately.

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace {

struct Spec {
    bool tcp = true;
    bool v6 = false;
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    int v6only = -1;  // -1: leave the kernel default
    bool reuseaddr = false;
    bool reuseport = false;
    bool bound_only = false;
};

[[noreturn]] void die(std::string_view spec, const std::string& what) {
    std::fprintf(stderr, "holdport: %.*s: %s\n", static_cast<int>(spec.size()), spec.data(),
                 what.c_str());
    std::exit(1);
}

std::string errno_text(const char* call) { return std::string(call) + ": " + std::strerror(errno); }

Spec parse(std::string_view text) {
    Spec s;
    std::string_view rest = text;
    const auto colon = rest.find(':');
    if (colon == std::string_view::npos) {
        die(text, "expected PROTO:ADDRESS:PORT[:OPTIONS]");
    }
    const std::string_view proto = rest.substr(0, colon);
    if (proto == "tcp") {
        s.tcp = true;
    } else if (proto == "udp") {
        s.tcp = false;
    } else {
        die(text, "protocol must be tcp or udp");
    }
    rest.remove_prefix(colon + 1);

    std::string host;
    if (!rest.empty() && rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos) {
            die(text, "unterminated '['");
        }
        host = std::string(rest.substr(1, close - 1));
        rest.remove_prefix(close + 1);
        s.v6 = true;
    } else {
        const auto c = rest.find(':');
        host = std::string(rest.substr(0, c));
        rest = c == std::string_view::npos ? std::string_view{} : rest.substr(c);
    }
    if (rest.empty() || rest.front() != ':') {
        die(text, "missing port");
    }
    rest.remove_prefix(1);
    const auto c = rest.find(':');
    const std::string port_text(rest.substr(0, c));
    const std::string_view options =
        c == std::string_view::npos ? std::string_view{} : rest.substr(c + 1);

    char* end = nullptr;
    const unsigned long port = std::strtoul(port_text.c_str(), &end, 10);
    if (port_text.empty() || *end != '\0' || port > 65535) {
        die(text, "bad port");
    }
    if (s.v6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&s.addr);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(static_cast<std::uint16_t>(port));
        if (inet_pton(AF_INET6, host.c_str(), &a->sin6_addr) != 1) {
            die(text, "bad IPv6 address");
        }
        s.addr_len = sizeof(sockaddr_in6);
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&s.addr);
        a->sin_family = AF_INET;
        a->sin_port = htons(static_cast<std::uint16_t>(port));
        if (inet_pton(AF_INET, host.c_str(), &a->sin_addr) != 1) {
            die(text, "bad IPv4 address (IPv6 goes in brackets)");
        }
        s.addr_len = sizeof(sockaddr_in);
    }

    std::string_view opts = options;
    while (!opts.empty()) {
        const auto comma = opts.find(',');
        const std::string_view o = opts.substr(0, comma);
        opts = comma == std::string_view::npos ? std::string_view{} : opts.substr(comma + 1);
        if (o == "v6only" || o == "dual") {
            if (!s.v6) {
                die(text, "v6only/dual need an IPv6 address");
            }
            s.v6only = o == "v6only" ? 1 : 0;
        } else if (o == "reuseaddr") {
            s.reuseaddr = true;
        } else if (o == "reuseport") {
            s.reuseport = true;
        } else if (o == "bound") {
            if (!s.tcp) {
                die(text, "bound is for tcp only");
            }
            s.bound_only = true;
        } else {
            die(text, "unknown option '" + std::string(o) + "'");
        }
    }
    return s;
}

void set_flag(std::string_view spec, int fd, int level, int name, int value, const char* what) {
    if (setsockopt(fd, level, name, &value, sizeof value) != 0) {
        die(spec, errno_text(what));
    }
}

/// Opens and binds one socket; returns the bound port.
unsigned open_one(std::string_view text) {
    Spec s = parse(text);
    const int fd = socket(s.v6 ? AF_INET6 : AF_INET, s.tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
    if (fd < 0) {
        die(text, errno_text("socket"));
    }
    if (s.v6only >= 0) {
        set_flag(text, fd, IPPROTO_IPV6, IPV6_V6ONLY, s.v6only, "IPV6_V6ONLY");
    }
    if (s.reuseaddr) {
        set_flag(text, fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
    }
    if (s.reuseport) {
        set_flag(text, fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT");
    }
    if (bind(fd, reinterpret_cast<const sockaddr*>(&s.addr), s.addr_len) != 0) {
        die(text, errno_text("bind"));
    }
    if (s.tcp && !s.bound_only && listen(fd, 16) != 0) {
        die(text, errno_text("listen"));
    }
    sockaddr_storage got{};
    socklen_t len = sizeof got;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&got), &len) != 0) {
        die(text, errno_text("getsockname"));
    }
    // The descriptor is deliberately kept open until the process exits.
    return ntohs(s.v6 ? reinterpret_cast<sockaddr_in6*>(&got)->sin6_port
                      : reinterpret_cast<sockaddr_in*>(&got)->sin_port);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::string_view(argv[1]) == "--help") {
        std::fprintf(stderr,
                     "usage: %s PROTO:ADDRESS:PORT[:OPTION,...]...\n"
                     "  PROTO tcp|udp; ADDRESS a.b.c.d or [v6]; OPTION "
                     "v6only|dual|reuseaddr|reuseport|bound\n",
                     argv[0]);
        return argc < 2 ? 2 : 0;
    }
    // Block the signals before reporting readiness, then wait for them synchronously: no handler,
    // no race between "ready" and the caller's kill.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, nullptr);

    std::vector<unsigned> ports;
    for (int i = 1; i < argc; ++i) {
        ports.push_back(open_one(argv[i]));
    }
    std::string line = "ready";
    for (unsigned p : ports) {
        line += ' ' + std::to_string(p);
    }
    line += '\n';
    if (std::fputs(line.c_str(), stdout) == EOF || std::fflush(stdout) != 0) {
        return 1;
    }
    int sig = 0;
    sigwait(&set, &sig);
    return 0;
}
