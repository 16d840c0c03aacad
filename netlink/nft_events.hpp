#pragma once
// nf_tables change events (kernel.md §2.2): every committed batch yields one message per changed
// object and then NFT_MSG_NEWGEN on the NFNLGRP_NFTABLES multicast group. Events are not applied
// incrementally; they only say "the cached ruleset may be stale". ENOBUFS on receive means events
// were lost, which invalidates just the same.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "netlink/error.hpp"
#include "netlink/nft_objects.hpp"

namespace vipportd::netlink::nft {

/// What the events queued since the previous drain() said.
struct EventSummary {
    std::size_t messages = 0;                   // nf_tables messages read
    bool changed = false;                       // any nf_tables message (object change or NEWGEN)
    bool overflowed = false;                    // ENOBUFS (events lost) or a truncated datagram
    std::optional<Generation> last_generation;  // the last NEWGEN seen
    [[nodiscard]] bool invalidates() const { return changed || overflowed; }
};

class EventSource {
  public:
    virtual ~EventSource() = default;
    /// Reads every queued event without blocking. Errors: Errc::system for socket failures other
    /// than EAGAIN/EINTR/ENOBUFS (ENOBUFS is reported as overflowed, not as an error).
    [[nodiscard]] virtual Result<EventSummary> drain() = 0;
    /// A descriptor that becomes readable when events are queued (for an event loop), or -1.
    [[nodiscard]] virtual int fd() const { return -1; }
};

/// A NETLINK_NETFILTER socket in the calling thread's netns, joined to NFNLGRP_NFTABLES
/// (setsockopt SOL_NETLINK NETLINK_ADD_MEMBERSHIP), non-blocking, with a large receive buffer:
/// SO_RCVBUFFORCE, falling back to SO_RCVBUF (nft monitor: 16 MiB, src/mnl.c
/// NFTABLES_NLEVENT_BUFSIZ). Not thread-safe.
class KernelEventSource final : public EventSource {
  public:
    /// Errors: Errc::system "nf_tables: NFNLGRP_NFTABLES membership" with EPERM without
    /// CAP_NET_ADMIN (kernel.md §6), or the errno of socket()/bind().
    [[nodiscard]] static Result<std::unique_ptr<KernelEventSource>> open(
        std::size_t receive_buffer = std::size_t{1} << 24);
    ~KernelEventSource() override;
    KernelEventSource(const KernelEventSource&) = delete;
    KernelEventSource& operator=(const KernelEventSource&) = delete;

    [[nodiscard]] Result<EventSummary> drain() override;
    [[nodiscard]] int fd() const override { return fd_; }

  private:
    explicit KernelEventSource(int fd) : fd_(fd) {}
    int fd_ = -1;
};

}  // namespace vipportd::netlink::nft
