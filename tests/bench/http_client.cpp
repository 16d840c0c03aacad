// vipportd_bench_client: a minimal HTTP/1.1 keep-alive client that times requests, for
// scripts/bench. Unlike curl it connects before the clock starts and times only request to last
// byte of response, and it can keep C requests in flight on C connections at once (the
// "64 concurrent pollers" measurement) from one thread, so the client itself costs little CPU.
//
//   vipportd_bench_client --port P --path PATH [--host IPv4] [--header "Name: value"]...
//                         [--connections C] [--rounds R] [--warmup W] [--body FILE]
//
// Opens C connections to HOST:P (default 127.0.0.1, 1 connection). Each round sends one
// GET PATH on every connection back to back, then waits until every response is complete
// (Content-Length framing); a request's latency runs from its own send to its response's last
// byte. W unmeasured rounds run first. Every response must be 200, else exit 1.
// --body FILE writes the last response body to FILE (the bench serves it from nginx).
//
// Prints one line: n=.. min_us=.. median_us=.. p90_us=.. p99_us=.. max_us=.. bytes=.. all_us=..
// (percentiles by nearest rank over all C*R latencies; bytes = body size of the last response;
// all_us = every latency in the order measured, comma-separated).

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "vipportd_bench_client: %s\n", what.c_str());
    std::exit(1);
}

std::string errno_text(const char* call) { return std::string(call) + ": " + std::strerror(errno); }

struct Connection {
    int fd = -1;
    std::string in;
    Clock::time_point sent;
    bool done = true;
    std::string body;
};

bool iequals_prefix(std::string_view text, std::string_view prefix) {
    if (text.size() < prefix.size()) {
        return false;
    }
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        const auto a = static_cast<unsigned char>(text[i]);
        const auto b = static_cast<unsigned char>(prefix[i]);
        if (std::tolower(a) != std::tolower(b)) {
            return false;
        }
    }
    return true;
}

/// True when c.in holds a complete response; checks its status and keeps its body.
bool response_complete(Connection& c) {
    const auto end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) {
        return false;
    }
    const std::string_view head(c.in.data(), end);
    std::size_t length = 0;
    bool have_length = false;
    for (std::size_t pos = head.find("\r\n"); pos != std::string_view::npos;) {
        const std::size_t next = head.find("\r\n", pos + 2);
        const std::string_view line = head.substr(
            pos + 2, next == std::string_view::npos ? std::string_view::npos : next - pos - 2);
        if (iequals_prefix(line, "content-length:")) {
            length = std::strtoull(std::string(line.substr(15)).c_str(), nullptr, 10);
            have_length = true;
        }
        pos = next;
    }
    if (!have_length) {
        die("response without Content-Length: " + std::string(head.substr(0, 200)));
    }
    if (c.in.size() < end + 4 + length) {
        return false;
    }
    if (head.substr(0, 12) != "HTTP/1.1 200") {
        die("unexpected response: " + std::string(head.substr(0, head.find("\r\n"))) + " " +
            c.in.substr(end + 4, std::min<std::size_t>(length, 300)));
    }
    c.body = c.in.substr(end + 4, length);
    c.in.erase(0, end + 4 + length);
    return true;
}

int connect_to(const in_addr& host, std::uint16_t port) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        die(errno_text("socket"));
    }
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr = host;
    if (connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
        die(errno_text("connect"));
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Non-blocking only after connecting: the rounds below multiplex with poll().
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

void send_all(int fd, const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
        const ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                pollfd p{fd, POLLOUT, 0};
                poll(&p, 1, 1000);
                continue;
            }
            die(errno_text("send"));
        }
        off += static_cast<std::size_t>(n);
    }
}

/// One round: a request on every connection, then wait for every response.
void round_trip(std::vector<Connection>& conns,
                const std::string& request,
                std::vector<double>* latencies) {
    for (auto& c : conns) {
        c.done = false;
        c.sent = Clock::now();
        send_all(c.fd, request);
    }
    std::vector<pollfd> fds(conns.size());
    std::size_t pending = conns.size();
    char buf[64 * 1024];
    while (pending > 0) {
        for (std::size_t i = 0; i < conns.size(); ++i) {
            fds[i] = pollfd{conns[i].done ? -1 : conns[i].fd, POLLIN, 0};
        }
        if (poll(fds.data(), fds.size(), 30000) <= 0) {
            die(errno == 0 ? std::string("no response within 30 s") : errno_text("poll"));
        }
        for (std::size_t i = 0; i < conns.size(); ++i) {
            if (fds[i].revents == 0) {
                continue;
            }
            Connection& c = conns[i];
            for (;;) {
                const ssize_t n = recv(c.fd, buf, sizeof buf, 0);
                if (n > 0) {
                    c.in.append(buf, static_cast<std::size_t>(n));
                    continue;
                }
                if (n == 0) {
                    die("server closed the connection");
                }
                if (errno == EINTR) {
                    continue;
                }
                if (errno == EAGAIN) {
                    break;
                }
                die(errno_text("recv"));
            }
            if (response_complete(c)) {
                const auto now = Clock::now();
                c.done = true;
                --pending;
                if (latencies != nullptr) {
                    latencies->push_back(
                        std::chrono::duration<double, std::micro>(now - c.sent).count());
                }
            }
        }
    }
}

double rank(const std::vector<double>& sorted, double q) {
    const auto n = static_cast<double>(sorted.size());
    const auto idx = static_cast<std::size_t>(std::max(1.0, std::ceil(q * n))) - 1;
    return sorted[std::min(idx, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    long port = 0;
    std::string path;
    std::vector<std::string> headers;
    long connections = 1;
    long rounds = 1;
    long warmup = 0;
    std::string body_file;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        const bool has_value = i + 1 < argc;
        if (a == "--host" && has_value) {
            host = argv[++i];
        } else if (a == "--port" && has_value) {
            port = std::atol(argv[++i]);
        } else if (a == "--path" && has_value) {
            path = argv[++i];
        } else if (a == "--header" && has_value) {
            headers.emplace_back(argv[++i]);
        } else if (a == "--connections" && has_value) {
            connections = std::atol(argv[++i]);
        } else if (a == "--rounds" && has_value) {
            rounds = std::atol(argv[++i]);
        } else if (a == "--warmup" && has_value) {
            warmup = std::atol(argv[++i]);
        } else if (a == "--body" && has_value) {
            body_file = argv[++i];
        } else {
            std::fprintf(stderr,
                         "usage: %s --port P --path PATH [--host IPv4] [--header 'N: v']...\n"
                         "          [--connections C] [--rounds R] [--warmup W] [--body FILE]\n",
                         argv[0]);
            return 2;
        }
    }
    in_addr addr{};
    if (port < 1 || port > 65535 || path.empty() || path.front() != '/' ||
        inet_pton(AF_INET, host.c_str(), &addr) != 1) {
        die("need --port 1-65535, --path /..., and an IPv4 --host");
    }
    if (connections < 1 || rounds < 1 || warmup < 0) {
        die("--connections and --rounds must be at least 1");
    }
    std::string request =
        "GET " + path + " HTTP/1.1\r\nHost: " + host + ":" + std::to_string(port) + "\r\n";
    for (const auto& h : headers) {
        request += h + "\r\n";
    }
    request += "\r\n";

    std::vector<Connection> conns(static_cast<std::size_t>(connections));
    for (auto& c : conns) {
        c.fd = connect_to(addr, static_cast<std::uint16_t>(port));
    }
    for (long r = 0; r < warmup; ++r) {
        round_trip(conns, request, nullptr);
    }
    std::vector<double> lat;
    lat.reserve(static_cast<std::size_t>(connections * rounds));
    for (long r = 0; r < rounds; ++r) {
        round_trip(conns, request, &lat);
    }
    std::string all;
    for (const double l : lat) {
        char item[32];
        std::snprintf(item, sizeof item, "%s%.1f", all.empty() ? "" : ",", l);
        all += item;
    }
    std::sort(lat.begin(), lat.end());
    std::printf(
        "n=%zu min_us=%.1f median_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f bytes=%zu "
        "all_us=%s\n",
        lat.size(), lat.front(), rank(lat, 0.5), rank(lat, 0.9), rank(lat, 0.99), lat.back(),
        conns.back().body.size(), all.c_str());
    if (!body_file.empty()) {
        std::ofstream out(body_file, std::ios::binary);
        out << conns.back().body;
        if (!out) {
            die("cannot write " + body_file);
        }
    }
    for (auto& c : conns) {
        close(c.fd);
    }
    return 0;
}
