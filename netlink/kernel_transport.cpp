#include "netlink/kernel_transport.hpp"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <fcntl.h>
#include <poll.h>
#include <string>
#include <unistd.h>

#include <linux/netlink.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <sys/socket.h>

#include "netlink/bytes.hpp"

namespace vipportd::netlink {

namespace {

// ---------------------------------------------------------------------------------------------
// The real socket: libnl-3 core allocates the nl_sock and binds it (nl_connect picks a free port
// id); the loop itself uses the fd directly so that errors keep their errno.
class LibnlSocket final : public NetlinkSocket {
  public:
    LibnlSocket(nl_sock* sk, std::uint32_t port)
        : sk_(sk), fd_(nl_socket_get_fd(sk)), port_(port) {}
    ~LibnlSocket() override { nl_socket_free(sk_); }  // closes the fd
    LibnlSocket(const LibnlSocket&) = delete;
    LibnlSocket& operator=(const LibnlSocket&) = delete;

    [[nodiscard]] std::uint32_t port_id() const override { return port_; }

    [[nodiscard]] Result<void> send(std::span<const std::uint8_t> datagram) override {
        sockaddr_nl kernel{};
        kernel.nl_family = AF_NETLINK;  // nl_pid 0: the kernel
        const ssize_t n = ::sendto(fd_, datagram.data(), datagram.size(), 0,
                                   reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel);
        if (n < 0) {
            return Error::sys(errno, "netlink sendto");
        }
        if (static_cast<std::size_t>(n) != datagram.size()) {
            return Error::of(Errc::system, "netlink sendto: short send of " + std::to_string(n) +
                                               " of " + std::to_string(datagram.size()) + " bytes");
        }
        return {};
    }

    [[nodiscard]] Result<bool> wait_readable(std::chrono::milliseconds timeout) override {
        pollfd p{fd_, POLLIN, 0};
        const auto ms = static_cast<int>(
            std::clamp<std::chrono::milliseconds::rep>(timeout.count(), 0, 24L * 3600 * 1000));
        const int rc = ::poll(&p, 1, ms);
        if (rc < 0) {
            return Error::sys(errno, "netlink poll");
        }
        return rc > 0;
    }

    [[nodiscard]] Result<Datagram> receive(std::span<std::uint8_t> buffer, bool peek) override {
        sockaddr_nl from{};
        iovec iov{buffer.empty() ? nullptr : buffer.data(), buffer.size()};
        msghdr msg{};
        msg.msg_name = &from;
        msg.msg_namelen = sizeof from;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        // MSG_TRUNC on a netlink socket makes recvmsg return the datagram's real length
        // (net/netlink/af_netlink.c netlink_recvmsg), which is how iproute2 sizes its buffer.
        const int flags = MSG_DONTWAIT | (peek ? (MSG_PEEK | MSG_TRUNC) : 0);
        const ssize_t n = ::recvmsg(fd_, &msg, flags);
        if (n < 0) {
            return Error::sys(errno, peek ? "netlink recvmsg(MSG_PEEK)" : "netlink recvmsg");
        }
        Datagram d;
        d.length = static_cast<std::size_t>(n);
        d.sender_port = from.nl_pid;
        d.truncated = (msg.msg_flags & MSG_TRUNC) != 0;
        return d;
    }

  private:
    nl_sock* sk_;
    int fd_;
    std::uint32_t port_;
};

bool retryable(const Error& e) {
    return e.code == Errc::system &&
           (e.sys_errno == EINTR || e.sys_errno == EAGAIN || e.sys_errno == EWOULDBLOCK);
}

// Serial number arithmetic (RFC 1982 style): seq is older than current.
bool older(std::uint32_t seq, std::uint32_t current) {
    return static_cast<std::int32_t>(seq - current) < 0;
}

// The NLMSGERR_ATTR_MSG string of an extended ACK (linux/netlink.h), or "".
std::string extack_message(std::span<const std::uint8_t> tlvs) {
    AttributeWalker walk(tlvs);
    while (true) {
        auto a = walk.next();
        if (!a || !*a) {
            return {};
        }
        if ((*a)->type == NLMSGERR_ATTR_MSG) {
            const auto v = (*a)->value;
            const auto end = std::find(v.begin(), v.end(), std::uint8_t{0});
            return std::string(v.begin(), end);
        }
    }
}

std::string type_name(std::uint16_t type) { return "type " + std::to_string(type); }

// The errno of a kernel status int (0 or -errno), or 0 when it is not one: errnos are below
// MAX_ERRNO (4095, include/linux/err.h), so anything else is a malformed reply.
int errno_of(int status) { return status < 0 && status >= -4095 ? -status : 0; }

}  // namespace

Result<std::unique_ptr<NetlinkSocket>> open_netlink_socket(int netlink_protocol) {
    const std::string what = "netlink socket (protocol " + std::to_string(netlink_protocol) + ")";
    nl_sock* sk = nl_socket_alloc();
    if (sk == nullptr) {
        return Error::sys(ENOMEM, what + ": nl_socket_alloc");
    }
    errno = 0;
    if (const int rc = nl_connect(sk, netlink_protocol); rc < 0) {
        const int err = errno != 0 ? errno : EINVAL;
        nl_socket_free(sk);
        return Error::sys(err, what + ": nl_connect: " + nl_geterror(rc));
    }
    const int fd = nl_socket_get_fd(sk);
    // Belt and braces: recent libnl opens with SOCK_CLOEXEC; a fork/exec must not inherit it.
    (void)::fcntl(fd, F_SETFD, FD_CLOEXEC);
    // Ask for extended ACK messages (NETLINK_EXT_ACK, 4.12) without the request echoed back
    // (NETLINK_CAP_ACK, 4.3); both are optional, so failures are ignored (linux/netlink.h).
    const int one = 1;
    (void)::setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
    (void)::setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
    // The port id the kernel will put in nlmsg_pid of its replies: read it back from the socket
    // rather than trusting libnl's choice.
    sockaddr_nl local{};
    socklen_t len = sizeof local;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) {
        const int err = errno;
        nl_socket_free(sk);
        return Error::sys(err, what + ": getsockname");
    }
    return std::unique_ptr<NetlinkSocket>(new LibnlSocket(sk, local.nl_pid));
}

// ---------------------------------------------------------------------------------------------

struct KernelTransport::Expect {
    std::uint16_t request_type = 0;
    std::uint32_t seq = 0;
    std::uint32_t port = 0;
    bool ack = false;  // the request asked for NLM_F_ACK
    std::chrono::steady_clock::time_point deadline;
};

KernelTransport::KernelTransport(int netlink_protocol, KernelTransportOptions options)
    : options_(options) {
    auto s = open_netlink_socket(netlink_protocol);
    if (s) {
        socket_ = std::move(*s);
    } else {
        open_error_ = s.error();
    }
}

KernelTransport::KernelTransport(std::unique_ptr<NetlinkSocket> socket,
                                 KernelTransportOptions options)
    : socket_(std::move(socket)), options_(options) {
    if (!socket_) {
        open_error_ = Error::of(Errc::system, "netlink transport without a socket");
    }
}

KernelTransport::~KernelTransport() = default;

Result<Dump> KernelTransport::exchange(std::span<const std::uint8_t> request) {
    Dump dump;
    Output out{.dump = &dump};
    if (auto r = run(request, out); !r) {
        return r.error();
    }
    dump.interrupted = out.interrupted;
    return dump;
}

Result<bool> KernelTransport::exchange_each(std::span<const std::uint8_t> request,
                                            const MessageSink& on_message) {
    Output out{.sink = &on_message};
    if (auto r = run(request, out); !r) {
        return r.error();
    }
    return out.interrupted;
}

Result<void> KernelTransport::run(std::span<const std::uint8_t> request, Output& out) {
    if (!socket_) {
        return *open_error_;
    }
    // Exactly one message: the reply ends at the first DONE/ACK, so a batch would lose replies.
    MessageWalker walk(request);
    auto first = walk.next();
    if (!first || !*first || walk.offset() != request.size() || request.size() % 4 != 0) {
        return Error::of(Errc::malformed, "netlink request of " + std::to_string(request.size()) +
                                              " bytes is not exactly one aligned message");
    }
    seq_ = seq_ + 1 == 0 ? 1 : seq_ + 1;
    Expect expect;
    expect.request_type = (*first)->header.nlmsg_type;
    expect.seq = seq_;
    expect.port = socket_->port_id();
    expect.ack = ((*first)->header.nlmsg_flags & NLM_F_ACK) != 0;

    request_.assign(request.begin(), request.end());
    store(std::span<std::uint8_t>(request_), offsetof(nlmsghdr, nlmsg_seq), expect.seq);
    store(std::span<std::uint8_t>(request_), offsetof(nlmsghdr, nlmsg_pid), expect.port);

    while (true) {
        auto sent = socket_->send(request_);
        if (sent) {
            break;
        }
        if (!retryable(sent.error())) {
            return sent.error();
        }
    }

    expect.deadline = std::chrono::steady_clock::now() + options_.timeout;
    if (buffer_.size() < options_.initial_buffer) {
        buffer_.resize(options_.initial_buffer);
    }
    terminated_ = false;
    auto r = receive_replies(expect, &out, Mode::collect);
    if (!r) {
        // The kernel may still be producing the rest of this dump; a new dump on a socket whose
        // dump is running fails with EBUSY (net/netlink/af_netlink.c __netlink_dump_start), so
        // read the remainder away (bounded by the same deadline) unless the dump is known over.
        const Errc c = r.error().code;
        if (!terminated_ &&
            (c == Errc::truncated || c == Errc::unexpected || c == Errc::malformed)) {
            (void)receive_replies(expect, nullptr, Mode::drain);
        }
        return r.error();
    }
    return {};
}

Result<void> KernelTransport::receive_replies(const Expect& expect, Output* out, Mode mode) {
    const auto timeout_error = [&] {
        return Error::of(
            Errc::timeout,
            "netlink request " + type_name(expect.request_type) + " seq " +
                std::to_string(expect.seq) + ": no complete reply within " +
                std::to_string(options_.timeout.count()) + " ms" +
                (out != nullptr ? " (" +
                                      std::to_string(out->dump != nullptr ? out->dump->data.size()
                                                                          : out->delivered) +
                                      " bytes received)"
                                : std::string{}));
    };
    while (true) {
        const auto now = std::chrono::steady_clock::now();
        if (now >= expect.deadline) {
            return timeout_error();
        }
        auto ready = socket_->wait_readable(
            std::chrono::ceil<std::chrono::milliseconds>(expect.deadline - now));
        if (!ready) {
            if (retryable(ready.error())) {
                continue;
            }
            return ready.error();
        }
        if (!*ready) {
            return timeout_error();
        }
        // Peek with an empty buffer to learn the datagram's size, then grow (rtnl_recvmsg).
        auto peek = socket_->receive({}, true);
        if (!peek) {
            if (retryable(peek.error())) {
                continue;
            }
            return peek.error();
        }
        if (peek->length > buffer_.size()) {
            buffer_.resize(std::min(align4(peek->length), options_.max_buffer));
        }
        auto got = socket_->receive(buffer_, false);
        if (!got) {
            if (retryable(got.error())) {
                continue;
            }
            return got.error();
        }
        if (got->truncated) {
            return Error::of(Errc::truncated,
                             "netlink datagram of " + std::to_string(peek->length) +
                                 " bytes did not fit the " + std::to_string(buffer_.size()) +
                                 "-byte receive buffer (MSG_TRUNC)");
        }
        if (got->sender_port != 0) {
            if (mode == Mode::drain) {
                continue;
            }
            return Error::of(Errc::unexpected, "netlink datagram from port id " +
                                                   std::to_string(got->sender_port) +
                                                   ", not from the kernel (port id 0)");
        }
        auto done = process_datagram(
            std::span<const std::uint8_t>(buffer_).first(std::min(got->length, buffer_.size())),
            expect, out, mode);
        if (!done) {
            return done.error();
        }
        if (*done) {
            return {};
        }
    }
}

Result<bool> KernelTransport::process_datagram(std::span<const std::uint8_t> datagram,
                                               const Expect& expect,
                                               Output* out,
                                               Mode mode) {
    MessageWalker walk(datagram);
    while (true) {
        auto next = walk.next();
        if (!next) {
            Error e = next.error();
            e.detail = "netlink reply datagram of " + std::to_string(datagram.size()) +
                       " bytes: " + e.detail;
            return e;
        }
        if (!*next) {
            return false;  // the reply continues in the next datagram
        }
        const RawMessage& m = **next;
        const nlmsghdr& h = m.header;
        if (older(h.nlmsg_seq, expect.seq)) {
            continue;  // a late reply to an earlier exchange (one that timed out or failed)
        }
        if (h.nlmsg_seq != expect.seq || h.nlmsg_pid != expect.port) {
            if (mode == Mode::drain) {
                continue;
            }
            return Error::of(
                Errc::unexpected,
                "netlink reply " + type_name(h.nlmsg_type) + " at datagram offset " +
                    std::to_string(m.offset) + " has seq " + std::to_string(h.nlmsg_seq) +
                    " port id " + std::to_string(h.nlmsg_pid) + ", expected seq " +
                    std::to_string(expect.seq) + " port id " + std::to_string(expect.port));
        }
        if ((h.nlmsg_flags & NLM_F_DUMP_INTR) != 0 && out != nullptr) {
            out->interrupted = true;
        }
        switch (h.nlmsg_type) {
            case NLMSG_NOOP:
                continue;
            case NLMSG_DONE: {
                terminated_ = true;
                // netlink_dump_done() (net/netlink/af_netlink.c) puts the dump's final status
                // (an int, 0 or -errno) in the DONE payload; extended ACK TLVs may follow it.
                if (mode == Mode::collect && m.payload.size() >= sizeof(int)) {
                    const int err = load<int>(m.payload);
                    if (err < 0) {
                        std::string detail = "netlink dump " + type_name(expect.request_type) +
                                             ": NLMSG_DONE carried an error";
                        if ((h.nlmsg_flags & NLM_F_ACK_TLVS) != 0) {
                            if (auto msg = extack_message(m.payload.subspan(sizeof(int)));
                                !msg.empty()) {
                                detail += " (" + msg + ")";
                            }
                        }
                        if (errno_of(err) == 0) {
                            return Error::of(Errc::malformed, detail + ": implausible status " +
                                                                  std::to_string(err));
                        }
                        return Error{Errc::kernel, errno_of(err), std::move(detail)};
                    }
                }
                return true;
            }
            case NLMSG_ERROR: {
                terminated_ = true;
                if (mode == Mode::drain) {
                    return true;
                }
                // struct nlmsgerr { int error; struct nlmsghdr msg; } (linux/netlink.h);
                // error 0 is an ACK.
                if (m.payload.size() < sizeof(int)) {
                    return Error::of(Errc::truncated,
                                     "netlink NLMSG_ERROR at datagram offset " +
                                         std::to_string(m.offset) + ": payload of " +
                                         std::to_string(m.payload.size()) + " bytes");
                }
                const int err = load<int>(m.payload);
                if (err == 0) {
                    return true;
                }
                std::string detail = "netlink request " + type_name(expect.request_type) +
                                     ": kernel answered NLMSG_ERROR";
                if ((h.nlmsg_flags & NLM_F_ACK_TLVS) != 0 && m.payload.size() >= sizeof(nlmsgerr)) {
                    // The TLVs follow the echoed request, or only its header when capped.
                    const auto echoed = load<nlmsghdr>(m.payload, sizeof(int));
                    std::size_t tlv_at = sizeof(nlmsgerr);
                    if ((h.nlmsg_flags & NLM_F_CAPPED) == 0 && echoed.nlmsg_len >= kNlmsghdrSize) {
                        tlv_at += align4(echoed.nlmsg_len) - kNlmsghdrSize;
                    }
                    if (tlv_at < m.payload.size()) {
                        if (auto msg = extack_message(m.payload.subspan(tlv_at)); !msg.empty()) {
                            detail += " (" + msg + ")";
                        }
                    }
                }
                if (errno_of(err) == 0) {
                    return Error::of(Errc::malformed,
                                     detail + ": implausible status " + std::to_string(err));
                }
                return Error{Errc::kernel, errno_of(err), std::move(detail)};
            }
            case NLMSG_OVERRUN:
                if (mode == Mode::drain) {
                    continue;
                }
                return Error::of(Errc::unexpected, "netlink NLMSG_OVERRUN at datagram offset " +
                                                       std::to_string(m.offset));
            default:
                break;
        }
        if (out != nullptr && out->dump != nullptr) {
            // Keep the message, padded to its aligned size so that Dump::messages() can walk it.
            Dump* dump = out->dump;
            const auto bytes = datagram.subspan(m.offset, h.nlmsg_len);
            dump->data.insert(dump->data.end(), bytes.begin(), bytes.end());
            dump->data.resize(dump->data.size() + (align4(h.nlmsg_len) - h.nlmsg_len), 0);
        } else if (out != nullptr && out->sink != nullptr) {
            RawMessage streamed = m;
            streamed.offset = out->delivered;
            out->delivered += align4(h.nlmsg_len);
            if (auto r = (*out->sink)(streamed); !r) {
                return r.error();
            }
        }
        // A reply without NLM_F_MULTI is the whole answer, unless an ACK was asked for (the
        // kernel sends it after the reply, net/netlink/af_netlink.c netlink_rcv_skb).
        if ((h.nlmsg_flags & NLM_F_MULTI) == 0 && !expect.ack) {
            return true;
        }
    }
}

}  // namespace vipportd::netlink
