#pragma once
// KernelTransport: the one netlink request/reply loop (the checklist of iproute2's
// lib/libnetlink.c rtnl_recvmsg/rtnl_dump_filter_l): stamp seq and port id, send, wait with a
// deadline, peek to size the buffer, receive, check sender/port id/sequence, collect messages,
// stop at NLMSG_DONE or the ACK, report NLMSG_ERROR, truncation and NLM_F_DUMP_INTR.
//
// The syscalls sit behind NetlinkSocket so unit tests drive the loop with scripted datagrams
// (ReplayTransport uses the same seam to push recorded kernel bytes through this very loop).
//
// Namespaces: a netlink socket answers for the netns it was created in, whatever thread uses it
// later (kernel.md §1.9). KernelTransport creates its socket in the constructor and never
// re-creates it, so constructing it on a thread inside a netns pins it there.
//
// Not thread-safe: one exchange at a time per transport.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "netlink/error.hpp"
#include "netlink/transport.hpp"

namespace vipportd::netlink {

/// What recvmsg() reported about one datagram.
struct Datagram {
    std::size_t length = 0;         // full datagram length (MSG_TRUNC semantics), even when peeking
    std::uint32_t sender_port = 0;  // sockaddr_nl.nl_pid of the sender; 0 is the kernel
    bool truncated = false;         // msg_flags & MSG_TRUNC: the buffer was too small
};

/// The syscall boundary under KernelTransport. Errors carry errno (Error::sys); EINTR and EAGAIN
/// are retried by the loop.
class NetlinkSocket {
  public:
    virtual ~NetlinkSocket() = default;
    /// Our netlink port id (nl_pid after bind), which the kernel copies into every reply.
    [[nodiscard]] virtual std::uint32_t port_id() const = 0;
    /// Sends one datagram to the kernel (nl_pid 0).
    [[nodiscard]] virtual Result<void> send(std::span<const std::uint8_t> datagram) = 0;
    /// Waits until a datagram can be read: true, or false when timeout passed first.
    [[nodiscard]] virtual Result<bool> wait_readable(std::chrono::milliseconds timeout) = 0;
    /// Receives (peek: MSG_PEEK|MSG_TRUNC, the datagram stays queued) into buffer without
    /// blocking (EAGAIN when nothing is queued).
    [[nodiscard]] virtual Result<Datagram> receive(std::span<std::uint8_t> buffer, bool peek) = 0;
};

/// A real AF_NETLINK socket of the given protocol (NETLINK_SOCK_DIAG, NETLINK_ROUTE, ...) in the
/// calling thread's netns, allocated and bound with libnl-3 core (nl_socket_alloc, nl_connect).
/// Errors: Errc::system with the errno of the failing step.
[[nodiscard]] Result<std::unique_ptr<NetlinkSocket>> open_netlink_socket(int netlink_protocol);

struct KernelTransportOptions {
    /// Deadline for a whole exchange (send to NLMSG_DONE); Errc::timeout after it.
    std::chrono::milliseconds timeout{5000};
    /// Initial receive buffer. The kernel sizes dump skbs to the reader's buffer, capped near
    /// 32 KiB (kernel.md §1.11; iproute2 uses at least 32768), so smaller buys nothing.
    std::size_t initial_buffer = 32768;
    /// A peeked datagram larger than this is received truncated: Errc::truncated.
    std::size_t max_buffer = std::size_t{1} << 20;
};

class KernelTransport final : public Transport {
  public:
    /// Opens a socket of netlink_protocol now, in the calling thread's netns. If that fails, the
    /// transport stays usable as a value and every exchange() returns the open error.
    explicit KernelTransport(int netlink_protocol, KernelTransportOptions options = {});
    /// Runs the loop over any NetlinkSocket (tests, replay). socket must not be null.
    explicit KernelTransport(std::unique_ptr<NetlinkSocket> socket,
                             KernelTransportOptions options = {});
    ~KernelTransport() override;
    KernelTransport(const KernelTransport&) = delete;
    KernelTransport& operator=(const KernelTransport&) = delete;

    /// The error of the constructor's socket(), if it failed.
    [[nodiscard]] const std::optional<Error>& open_error() const { return open_error_; }

    /// request: one or more complete netlink messages; every nlmsghdr gets our seq and port id.
    /// Collects replies until NLMSG_DONE; for a request without NLM_F_DUMP, until the ACK when
    /// it asked for NLM_F_ACK, else until the first reply without NLM_F_MULTI.
    /// Errors: Errc::malformed (bad request), Errc::system (socket), Errc::kernel (NLMSG_ERROR or
    /// an error in NLMSG_DONE; sys_errno = errno, detail includes the extended ACK message),
    /// Errc::truncated (MSG_TRUNC or a short message), Errc::unexpected (a sender other than
    /// the kernel, a foreign port id or a future sequence number, NLMSG_OVERRUN),
    /// Errc::timeout (deadline passed).
    [[nodiscard]] Result<Dump> exchange(std::span<const std::uint8_t> request) override;
    /// The same loop, each message handed to on_message as its datagram arrives (one receive
    /// buffer is all the memory a dump of any size needs). An error from on_message ends the
    /// exchange like a malformed reply: the rest of the dump is read away.
    [[nodiscard]] Result<bool> exchange_each(std::span<const std::uint8_t> request,
                                             const MessageSink& on_message) override;

  private:
    enum class Mode { collect, drain };
    struct Expect;
    // Where collected messages go: appended to dump, or handed to sink (exactly one is set).
    struct Output {
        Dump* dump = nullptr;
        const MessageSink* sink = nullptr;
        bool interrupted = false;
        std::size_t delivered = 0;  // bytes streamed so far (the offset a Dump would have)
    };
    [[nodiscard]] Result<void> run(std::span<const std::uint8_t> request, Output& out);
    [[nodiscard]] Result<void> receive_replies(const Expect& expect, Output* out, Mode mode);
    [[nodiscard]] Result<bool> process_datagram(std::span<const std::uint8_t> datagram,
                                                const Expect& expect,
                                                Output* out,
                                                Mode mode);

    std::unique_ptr<NetlinkSocket> socket_;
    std::optional<Error> open_error_;
    KernelTransportOptions options_;
    std::uint32_t seq_ = 0;
    bool terminated_ = false;            // this exchange's DONE/ERROR was seen (no drain needed)
    std::vector<std::uint8_t> request_;  // the stamped copy of the request being sent
    std::vector<std::uint8_t> buffer_;   // receive buffer, reused across exchanges
};

}  // namespace vipportd::netlink
