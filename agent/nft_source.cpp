#include "agent/nft_source.hpp"

#include <poll.h>
#include <utility>

#include <linux/netlink.h>

#include "netlink/kernel_transport.hpp"

namespace vipportd::agent {

NftSource::NftSource(std::unique_ptr<netlink::Transport> transport,
                     std::unique_ptr<netlink::nft::EventSource> events,
                     NftSourceOptions options)
    : transport_(std::move(transport)), events_(std::move(events)), options_(options) {}

std::unique_ptr<NftSource> NftSource::open_kernel(NftSourceOptions options) {
    // Events first: a change between the subscription and the first dump is then either in the
    // dump or in the queue (kernel.md §2.2 "subscribe before the initial dump").
    auto events = netlink::nft::KernelEventSource::open();
    std::unique_ptr<netlink::nft::EventSource> ev;
    std::optional<netlink::Error> error;
    if (events) {
        ev = std::move(*events);
    } else {
        error = events.error();
    }
    auto transport = std::make_unique<netlink::KernelTransport>(NETLINK_NETFILTER);
    auto source = std::make_unique<NftSource>(std::move(transport), std::move(ev), options);
    source->events_error_ = std::move(error);
    return source;
}

std::optional<std::uint32_t> NftSource::generation() const {
    if (!cache_) {
        return std::nullopt;
    }
    return cache_->genid;
}

int NftSource::event_fd() const { return events_ ? events_->fd() : -1; }

bool NftSource::may_be_slow() const {
    if (!cache_) {
        return true;
    }
    // Readable: events are queued. A poll with timeout 0 reads nothing (collect() drains them).
    pollfd p{event_fd(), POLLIN, 0};
    return p.fd >= 0 && ::poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0;
}

bool NftSource::events_say_stale() {
    if (!events_) {
        return false;
    }
    auto ev = events_->drain();
    if (!ev) {
        // The events are only a hint; the GETGEN check below stays exact without them.
        events_error_ = ev.error();
        events_.reset();
        return true;
    }
    if (ev->overflowed) {
        return true;  // ENOBUFS: events were lost, resync with a full dump (kernel.md §2.2)
    }
    if (!ev->changed) {
        return false;
    }
    // Changes whose NEWGEN is the generation already cached were in that dump (nf_tables sends
    // the object messages of a batch, then its NEWGEN).
    return !ev->last_generation || !cache_ || ev->last_generation->id != cache_->genid;
}

netlink::Result<std::vector<Claim>> NftSource::collect() {
    auto shared = collect_shared();
    if (!shared) {
        return shared.error();
    }
    return *shared->claims;
}

netlink::Result<Collected> NftSource::collect_shared() {
    const bool stale = events_say_stale();
    if (cache_ && !stale) {
        auto gen = netlink::nft::get_generation(*transport_);
        if (!gen) {
            cache_.reset();
            return gen.error();
        }
        if (gen->id == cache_->genid) {
            return Collected{cache_->claims, nullptr, nullptr};  // the polling case: nothing copied
        }
    }
    cache_.reset();
    netlink::nft::DumpOptions dump = options_.dump;
    if (dump.expected_rules == 0) {
        dump.expected_rules = last_rule_count_;  // a ruleset rarely changes much between dumps
    }
    auto ruleset = netlink::nft::dump_ruleset(*transport_, dump);
    if (!ruleset) {
        return ruleset.error();
    }
    ++dumps_;
    last_rule_count_ = ruleset->rules.size();
    auto claims = interpret_nft(*ruleset, options_.limits);
    if (!claims) {
        return claims.error();
    }
    const std::uint32_t genid = ruleset->genid;
    *ruleset = netlink::nft::Ruleset{};  // the decoded objects are not needed any more: lower the
                                         // scan's peak memory
    cache_ = Cache{genid, std::make_shared<const std::vector<Claim>>(std::move(*claims))};
    return Collected{cache_->claims, nullptr, nullptr};
}

}  // namespace vipportd::agent
