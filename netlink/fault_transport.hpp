#pragma once
// Kernel fault injection for tests (issue 7 "load and faults"): decorators that sit where the
// kernel would and misbehave on purpose, so that every layer above shows a defined outcome
// (retry, resync, an error naming the source) instead of a crash, a hang or a partial answer.
//
// - FaultTransport wraps any Transport (a ReplayTransport over recorded kernel bytes, or a live
//   KernelTransport). An exchange without an armed fault is passed through untouched. An exchange
//   with one is re-played, altered, through KernelTransport's own receive loop over a scripted
//   socket: the reply messages the inner transport returned are cut into datagrams as the kernel
//   sends them (NLMSG_DONE or the ACK appended), then the fault is applied to those bytes, so the
//   very code that reads the kernel judges them.
// - FaultEventSource wraps an nf_tables EventSource and reports lost events (what ENOBUFS on the
//   event socket means, kernel.md §2.2) or a socket failure.
// - FaultIptSource wraps a legacy iptables IptSource and fails or mangles its calls.
//
// Test tooling: nothing in the daemon constructs these. Not thread-safe (like the transports).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "netlink/error.hpp"
#include "netlink/inet_address.hpp"
#include "netlink/ipt_legacy.hpp"
#include "netlink/kernel_transport.hpp"
#include "netlink/nft_events.hpp"
#include "netlink/transport.hpp"

namespace vipportd::netlink {

enum class FaultKind {
    /// NLM_F_DUMP_INTR on the reply's NLMSG_DONE (linux/netlink.h: the kernel may set it on any
    /// message of a dump, DONE included; nl_dump_check_consistent). Expected: retry.
    dump_intr,
    /// The kernel refuses the request: one NLMSG_ERROR carrying -sys_errno and the echoed request
    /// header, nothing else (e.g. EPERM: nfnetlink_rcv() without CAP_NET_ADMIN, kernel.md §6).
    kernel_error,
    /// recvmsg() fails with sys_errno (e.g. ENOBUFS: the socket's receive queue overran).
    socket_error,
    /// The first reply datagram ends inside its last message: `bytes` bytes (at least 1, at most
    /// the message's length minus 1) of the length its nlmsghdr claims are missing.
    truncated,
    /// recvmsg() reports MSG_TRUNC: the datagram did not fit the receive buffer.
    msg_trunc,
    /// Every reply message keeps its nlmsghdr and the first `bytes` bytes of its payload (the
    /// fixed family header: nfgenmsg 4, inet_diag_msg 72, ...); the rest becomes pseudo-random.
    garbage_payload,
    /// A datagram of `bytes` pseudo-random bytes arrives before the real replies.
    garbage_datagram,
    /// The reply messages arrive, then copies of the last one forever, never NLMSG_DONE: only the
    /// transport's deadline (KernelTransportOptions::timeout) ends the exchange.
    never_ends,
    /// No reply at all.
    silence,
};

/// "dump_intr", "kernel_error", ...
[[nodiscard]] std::string_view to_string(FaultKind kind);

/// Built fluently: Fault(FaultKind::kernel_error).with_errno(EPERM).on_type(kGetRule).after(1).
struct Fault {
    FaultKind kind = FaultKind::dump_intr;
    /// Only requests with this nlmsg_type (e.g. (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETRULE,
    /// SOCK_DIAG_BY_FAMILY); any request when empty.
    std::optional<std::uint16_t> request_type;
    /// Only requests whose byte at payload_match->first (after the nlmsghdr) equals ->second,
    /// e.g. {0, AF_INET6} for the sock_diag family or the nfgenmsg family.
    std::optional<std::pair<std::size_t, std::uint8_t>> payload_match;
    int skip = 0;            // let this many matching exchanges through first
    int times = 1;           // then alter this many (negative: every one from then on)
    int sys_errno = 0;       // kernel_error, socket_error
    std::size_t bytes = 4;   // truncated, garbage_payload, garbage_datagram (see FaultKind)
    std::uint32_t seed = 1;  // garbage_*: the pseudo-random sequence (deterministic)

    explicit Fault(FaultKind k) : kind(k) {}
    Fault& on_type(std::uint16_t type) { return request_type = type, *this; }
    Fault& on_payload_byte(std::size_t offset, std::uint8_t value) {
        return payload_match = std::pair{offset, value}, *this;
    }
    Fault& after(int n) { return skip = n, *this; }
    Fault& count(int n) { return times = n, *this; }
    Fault& always() { return times = -1, *this; }
    Fault& with_errno(int e) { return sys_errno = e, *this; }
    Fault& with_bytes(std::size_t n) { return bytes = n, *this; }
    Fault& with_seed(std::uint32_t s) { return seed = s, *this; }
};

class FaultTransport final : public Transport {
  public:
    /// inner answers the requests (with their real replies); options are those of the loop the
    /// altered replies go through (a short timeout keeps never_ends and silence tests fast).
    explicit FaultTransport(std::unique_ptr<Transport> inner, KernelTransportOptions options = {});
    ~FaultTransport() override;
    FaultTransport(const FaultTransport&) = delete;
    FaultTransport& operator=(const FaultTransport&) = delete;

    /// Arms a fault; faults are checked in the order they were added, the first one that applies
    /// to an exchange alters it (every matching fault counts the exchange towards its skip).
    void inject(Fault fault);
    /// Disarms every fault: from now on exchanges pass through.
    void clear();

    /// The inner transport's answer, altered by the first applicable fault. Errors: whatever
    /// KernelTransport reports for the altered bytes (see each FaultKind), or the inner error.
    [[nodiscard]] Result<Dump> exchange(std::span<const std::uint8_t> request) override;

    /// Exchanges seen, and how many of them a fault altered.
    [[nodiscard]] std::size_t exchanges() const { return exchanges_; }
    [[nodiscard]] std::size_t injected() const { return injected_; }

  private:
    class Socket;
    struct Armed {
        Fault fault;
        int seen = 0;
        int used = 0;
    };
    std::unique_ptr<Transport> inner_;
    std::vector<Armed> faults_;
    Socket* socket_;  // owned by loop_
    KernelTransport loop_;
    std::size_t exchanges_ = 0;
    std::size_t injected_ = 0;
};

/// nf_tables change events with faults on demand; without an inner source it is a socket on
/// which nothing ever happens.
class FaultEventSource final : public nft::EventSource {
  public:
    explicit FaultEventSource(std::unique_ptr<nft::EventSource> inner = nullptr);
    /// The next drain() reports overflowed: recv() failed with ENOBUFS, events were lost
    /// (netlink_overrun(), net/netlink/af_netlink.c).
    void lose_events() { overflow_ = true; }
    /// The next drain() fails with Errc::system sys_errno "nf_tables: event socket recv".
    void fail_next(int sys_errno) { fail_errno_ = sys_errno; }

    [[nodiscard]] Result<nft::EventSummary> drain() override;
    [[nodiscard]] int fd() const override;

  private:
    std::unique_ptr<nft::EventSource> inner_;
    bool overflow_ = false;
    int fail_errno_ = 0;
};

/// Legacy iptables calls with faults on demand.
class FaultIptSource final : public ipt::IptSource {
  public:
    enum class Call { names, info, entries };
    enum class Kind {
        error,     // the call fails with Errc::system sys_errno, named as the kernel source would
        truncate,  // entries: the blob loses its last `bytes` bytes
        garbage,   // entries: every byte after the first `bytes` becomes pseudo-random
    };
    struct IptFault {
        Call call = Call::info;
        Kind kind = Kind::error;
        std::optional<Family> family;  // any when empty
        std::string table;             // any when empty
        int sys_errno = 0;
        std::size_t bytes = 0;
        std::uint32_t seed = 1;
        int times = 1;  // negative: every matching call
    };

    explicit FaultIptSource(std::unique_ptr<ipt::IptSource> inner);
    void inject(IptFault fault);
    void clear() { faults_.clear(); }

    Result<std::vector<std::string>> table_names(Family f) override;
    Result<ipt::TableInfo> get_info(Family f, std::string_view table) override;
    Result<std::vector<std::uint8_t>> get_entries(Family f,
                                                  std::string_view table,
                                                  std::uint32_t size) override;

  private:
    IptFault* take(Call call, Family f, std::string_view table);
    std::unique_ptr<ipt::IptSource> inner_;
    std::vector<IptFault> faults_;
};

}  // namespace vipportd::netlink
