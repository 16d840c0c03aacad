#pragma once
// The kernel seam: "request bytes -> reply messages". KernelTransport talks to a real netlink
// socket, ReplayTransport serves recorded bytes, RecordingTransport tees a real exchange into a
// fixture. Decoders only ever see a Dump, so unit tests replay exactly what the kernel sent.

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "netlink/error.hpp"

struct nlmsghdr;

namespace vipportd::netlink {

struct RawMessage;  // netlink/bytes.hpp

/// Receives the reply messages of a streamed exchange one at a time, in order; an error stops
/// the exchange and is returned from it.
using MessageSink = std::function<Result<void>(const RawMessage&)>;

/// One reply message: its header fields and the payload after the nlmsghdr (bounded by nlmsg_len).
struct MessageView {
    std::uint16_t type = 0;
    std::uint16_t flags = 0;
    std::span<const std::uint8_t> payload;
};

/// Every reply message of one exchange, concatenated as received (NLMSG_DONE and the final ACK are
/// not kept). One buffer for the whole dump: 45,000 sockets must not mean 45,000 allocations.
struct Dump {
    std::vector<std::uint8_t> data;
    bool interrupted = false;  // some message carried NLM_F_DUMP_INTR (linux/netlink.h)

    /// Walks data; stops (and reports Errc::truncated) at a header that overruns the buffer.
    [[nodiscard]] Result<std::vector<MessageView>> messages() const;
};

class Transport {
  public:
    virtual ~Transport() = default;
    /// Sends one request (the transport overwrites nlmsg_seq and nlmsg_pid) and collects replies
    /// until NLMSG_DONE, or until the ACK of a non-dump request sent with NLM_F_ACK.
    /// Errors: Errc::kernel for NLMSG_ERROR < 0 (sys_errno = the errno), Errc::system for socket
    /// failures, Errc::truncated for MSG_TRUNC or short messages, Errc::timeout if the kernel
    /// stalls.
    [[nodiscard]] virtual Result<Dump> exchange(std::span<const std::uint8_t> request) = 0;

    /// The same exchange, each reply message handed to on_message while the reply is still
    /// arriving instead of being collected: a 45,000-socket dump then never exists in memory as
    /// a whole (RawMessage::offset counts from the start of the reply, as in a Dump). Returns
    /// whether some message carried NLM_F_DUMP_INTR. The default collects with exchange() and
    /// then walks the Dump; KernelTransport streams for real.
    [[nodiscard]] virtual Result<bool> exchange_each(std::span<const std::uint8_t> request,
                                                     const MessageSink& on_message);
};

/// exchange() repeated while the dump comes back with NLM_F_DUMP_INTR (the kernel's "this dump
/// raced a change", linux/netlink.h; nl_dump_check_consistent), at most max_attempts times in all.
/// Errors: whatever exchange() returned, or Errc::interrupted when every attempt was interrupted.
[[nodiscard]] Result<Dump> exchange_consistent(Transport& transport,
                                               std::span<const std::uint8_t> request,
                                               int max_attempts = 3);

/// exchange_consistent() for a streamed exchange: restart() runs before every attempt, so the
/// receiver can drop what an interrupted attempt delivered.
[[nodiscard]] Result<void> exchange_each_consistent(Transport& transport,
                                                    std::span<const std::uint8_t> request,
                                                    int max_attempts,
                                                    const std::function<void()>& restart,
                                                    const MessageSink& on_message);

}  // namespace vipportd::netlink
