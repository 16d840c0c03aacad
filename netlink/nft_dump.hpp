#pragma once
// The consistent nf_tables dump of kernel.md §2.1 over any Transport:
//   GETGEN (+ACK) -> GETTABLE, GETCHAIN, GETRULE, GETSET dumps (NFPROTO_UNSPEC) -> GETSETELEM per
//   set (its family, table and name) -> GETGEN again,
// started over from scratch when the generation moved, when any message's nfgenmsg.res_id is not
// htons(genid & 0xffff), when a dump came back with NLM_F_DUMP_INTR, or when a set vanished
// between GETSET and GETSETELEM (ENOENT). This is what nft does (src/cache.c nft_cache_update(),
// src/mnl.c check_genid()).

#include <cstddef>
#include <cstdint>

#include "netlink/error.hpp"
#include "netlink/nft_objects.hpp"
#include "netlink/transport.hpp"

namespace vipportd::netlink::nft {

struct DumpOptions {
    int max_attempts = 5;  // whole-dump attempts before Errc::interrupted
    /// Rules expected, e.g. the previous dump's count (0: unknown). Ruleset::rules is reserved
    /// for a little more up front, so a 10,000-rule dump neither ends with the doubling slack
    /// (capacity 16,384) nor holds the old and the new buffer at once while growing.
    std::size_t expected_rules = 0;
};

/// One NFT_MSG_GETGEN exchange. Errors: those of the transport with the detail
/// "nf_tables: GETGEN" (so to_string() reads "nf_tables: GETGEN: Operation not permitted" without
/// CAP_NET_ADMIN, kernel.md §6), Errc::malformed when the reply is not one NEWGEN message.
[[nodiscard]] Result<Generation> get_generation(Transport& transport);

/// The whole ruleset of every family, consistent within one generation.
/// Errors: transport errors named after the step ("nf_tables: GETRULE dump: ..."), decode errors
/// (Errc::truncated/malformed, naming the message), Errc::interrupted when the ruleset kept
/// changing for options.max_attempts attempts.
[[nodiscard]] Result<Ruleset> dump_ruleset(Transport& transport, const DumpOptions& options = {});

}  // namespace vipportd::netlink::nft
