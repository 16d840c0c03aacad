#include "netlink/nft_events.hpp"

#include <cerrno>
#include <limits>
#include <unistd.h>
#include <vector>

#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>

#include "netlink/bytes.hpp"
#include "netlink/nft_decode.hpp"

namespace vipportd::netlink::nft {

namespace {

// recv() buffer: nf_tables notifications are allocated with NLMSG_GOODSIZE (at most one page
// plus headers, net/netfilter/nf_tables_api.c nf_tables_*_notify), so 64 KiB never truncates.
constexpr std::size_t kDatagramBuffer = 65536;
// A busy writer can keep the queue non-empty forever; after this many datagrams the summary is
// returned (it already says "changed") and the rest waits for the next drain.
constexpr std::size_t kMaxDatagramsPerDrain = 100000;

}  // namespace

Result<std::unique_ptr<KernelEventSource>> KernelEventSource::open(std::size_t receive_buffer) {
    const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER);
    if (fd < 0) {
        return Error::sys(errno, "nf_tables: event socket");
    }
    std::unique_ptr<KernelEventSource> self(new KernelEventSource(fd));
    sockaddr_nl addr{};
    addr.nl_family = AF_NETLINK;  // nl_pid 0: the kernel assigns our port id
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        return Error::sys(errno, "nf_tables: bind event socket");
    }
    const int group = NFNLGRP_NFTABLES;
    if (::setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) != 0) {
        return Error::sys(errno, "nf_tables: NFNLGRP_NFTABLES membership");
    }
    const int size = receive_buffer > static_cast<std::size_t>(std::numeric_limits<int>::max())
                         ? std::numeric_limits<int>::max()
                         : static_cast<int>(receive_buffer);
    // SO_RCVBUFFORCE ignores rmem_max but needs CAP_NET_ADMIN; SO_RCVBUF is capped by
    // net.core.rmem_max. Either way a smaller buffer only means an earlier ENOBUFS, which is
    // handled.
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
        (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    return self;
}

KernelEventSource::~KernelEventSource() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

Result<EventSummary> KernelEventSource::drain() {
    EventSummary out;
    std::vector<std::uint8_t> buffer(kDatagramBuffer);
    for (std::size_t n = 0; n < kMaxDatagramsPerDrain; ++n) {
        sockaddr_nl from{};
        socklen_t from_len = sizeof from;
        const ssize_t got = ::recvfrom(fd_, buffer.data(), buffer.size(), MSG_DONTWAIT | MSG_TRUNC,
                                       reinterpret_cast<sockaddr*>(&from), &from_len);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return out;
            }
            if (errno == ENOBUFS) {
                // The receive queue overflowed: events were dropped (netlink_overrun()).
                out.overflowed = true;
                continue;
            }
            return Error::sys(errno, "nf_tables: event socket recv");
        }
        if (from.nl_pid != 0) {
            continue;  // only the kernel sends nf_tables events
        }
        const auto len = static_cast<std::size_t>(got);
        if (len > buffer.size()) {
            out.overflowed = true;  // truncated: its content is lost, treat like a lost event
            continue;
        }
        MessageWalker walk(std::span<const std::uint8_t>(buffer.data(), len));
        while (true) {
            auto m = walk.next();
            if (!m || !*m) {
                if (!m) {
                    out.overflowed = true;  // unreadable datagram: assume the worst
                }
                break;
            }
            const auto msg = nft_message((*m)->header.nlmsg_type);
            if (!msg) {
                continue;
            }
            ++out.messages;
            out.changed = true;
            if (*msg == NFT_MSG_NEWGEN) {
                if (auto g = decode_generation((*m)->payload)) {
                    out.last_generation = *g;
                }
            }
        }
    }
    return out;
}

}  // namespace vipportd::netlink::nft
