#pragma once
// NftSource: the "nftables" PortSource. Reads the whole nf_tables ruleset with the consistent dump
// of kernel.md §2.1 and interprets it (nft_interpreter.hpp), caching the claims by generation:
//
// - change events (NFNLGRP_NFTABLES, kernel.md §2.2) are subscribed to when the source is built,
//   before the first dump, on their own socket;
// - collect() drains the queued events without blocking. A NEWGEN for a generation other than
//   the cached one, an object change without its NEWGEN yet, or lost events (ENOBUFS) make the
//   cache stale: full dump. Otherwise one GETGEN checks that the generation did not move, and the
//   cached claims are returned without dumping: an unchanged ruleset is never dumped again.
// - without an event source every collect() still costs only that GETGEN while nothing changes.
//
// Not thread-safe: collect() runs on the scan worker only.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "agent/model.hpp"
#include "agent/nft_interpreter.hpp"
#include "agent/source.hpp"
#include "netlink/error.hpp"
#include "netlink/nft_dump.hpp"
#include "netlink/nft_events.hpp"
#include "netlink/transport.hpp"

namespace vipportd::agent {

struct NftSourceOptions {
    netlink::nft::DumpOptions dump;  // attempts before "ruleset changed during every dump"
    NftInterpretLimits limits;
};

class NftSource final : public PortSource {
  public:
    /// transport: NETLINK_NETFILTER requests (netlink::KernelTransport, or a replay) in the netns
    /// to read. events: that netns' change events, or null. Neither is used before collect().
    NftSource(std::unique_ptr<netlink::Transport> transport,
              std::unique_ptr<netlink::nft::EventSource> events,
              NftSourceOptions options = {});

    /// A KernelTransport(NETLINK_NETFILTER) and a KernelEventSource, both in the calling thread's
    /// netns, the events subscribed now. When the subscription fails (EPERM without
    /// CAP_NET_ADMIN, kernel.md §6) the source runs without events and events_error() says why;
    /// collect() will then report its own error if the dump is refused too.
    [[nodiscard]] static std::unique_ptr<NftSource> open_kernel(NftSourceOptions options = {});

    [[nodiscard]] std::string_view name() const override { return "nftables"; }

    /// The claims of the current ruleset (cached while the generation does not move).
    /// Errors: "nf_tables: GETGEN: Operation not permitted" (Errc::kernel, EPERM) without
    /// CAP_NET_ADMIN; other dump errors named after the failing step; Errc::interrupted when the
    /// ruleset kept changing during every dump attempt; Errc::malformed when the ruleset is too
    /// complex to interpret. After an error the next collect() dumps again.
    [[nodiscard]] netlink::Result<std::vector<Claim>> collect() override;
    /// The same, sharing the cached list with every snapshot until the generation moves.
    [[nodiscard]] netlink::Result<Collected> collect_shared() override;

    /// No cached claims yet, or change events are queued (the next collect() dumps).
    [[nodiscard]] bool may_be_slow() const override;

    /// Full dumps done so far (not counting GETGEN-only checks).
    [[nodiscard]] std::uint64_t dumps() const { return dumps_; }
    /// The generation the cached claims belong to.
    [[nodiscard]] std::optional<std::uint32_t> generation() const;
    /// Readable when change events are queued (for an event loop that wants to refresh early),
    /// or -1 without events.
    [[nodiscard]] int event_fd() const;
    /// Why there are no events (subscription or receive failure), if so.
    [[nodiscard]] const std::optional<netlink::Error>& events_error() const {
        return events_error_;
    }

  private:
    struct Cache {
        std::uint32_t genid = 0;
        ClaimList claims;
    };
    [[nodiscard]] bool events_say_stale();

    std::unique_ptr<netlink::Transport> transport_;
    std::unique_ptr<netlink::nft::EventSource> events_;
    NftSourceOptions options_;
    std::optional<netlink::Error> events_error_;
    std::optional<Cache> cache_;
    std::uint64_t dumps_ = 0;
    std::size_t last_rule_count_ = 0;  // of the last dump: DumpOptions::expected_rules
};

}  // namespace vipportd::agent
