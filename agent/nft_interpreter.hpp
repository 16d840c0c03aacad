#pragma once
// nf_tables rules -> claims (kernel.md §2.8): a register machine in the manner of nftables'
// src/netlink_delinearize.c, run over every path through the chain graph. Pure, no logging.
//
// Walks, in every non-dormant ip/ip6/inet table:
//   - nat base chains at prerouting (hook 0) and output (3): DNAT (`nat` type DNAT), `redir`, and
//     the iptables-nft x_tables targets DNAT, REDIRECT, NETMAP claim;
//   - every other base chain at prerouting: `tproxy` and the xt TPROXY target claim.
// A path carries an agent::RuleConstraint (destination addresses, TCP/UDP, destination ports)
// from the base chain through jump, goto and verdict-map elements; register loads (payload, meta)
// are tracked byte by byte, so prefixes (short loads, bitwise masks), concatenations, named and
// anonymous sets, interval sets (rbtree start/end pairs, pipapo KEY..KEY_END), maps, inversions
// and `meta nfproto` in inet tables narrow it. Packets a rule matches exactly and stops (accept,
// drop, return, goto, nat, ...) are subtracted from the paths that go on past it.
//
// Widening, never narrowing: a test that cannot be interpreted (an Unknown expression, ct, mark,
// iifname, fib, an xt match other than tcp/udp/multiport/comment, a negated concatenation) is
// ignored, and every claim on that path is Certainty::uncertain with the reason, naming
// "<family> <table> <chain> handle <n>". Source-side tests (saddr, sport, tcp flags) narrow the
// rule but not the claim: the claim stays exact, the rule is just not subtracted.

#include <cstddef>
#include <vector>

#include "agent/model.hpp"
#include "netlink/error.hpp"
#include "netlink/nft_objects.hpp"

namespace vipportd::agent {

struct NftInterpretLimits {
    /// Rule evaluations over the whole ruleset; beyond it the walk fails (a crafted DAG of jumps
    /// can make the number of paths exponential).
    std::size_t max_steps = 2'000'000;
    /// Disjoint constraints carried through one chain; beyond it a rule is not subtracted from
    /// the paths after it (those claims become uncertain).
    std::size_t max_paths = 64;
    /// Chains on one path. The kernel refuses deeper jump stacks (NFT_JUMP_STACK_SIZE 16,
    /// include/net/netfilter/nf_tables.h), so only crafted input gets here.
    std::size_t max_depth = 16;
    /// Elements of one set expanded into separate paths (concatenations, maps, verdict maps);
    /// a larger lookup is ignored as not interpreted.
    std::size_t max_split = 100'000;
};

/// Every claim of the ruleset, in walk order (base chains in dump order, rules in chain order,
/// jump targets where they are jumped to), claims of one rule over several disjoint paths merged
/// (merge_claims). Origins: {source "nftables", family "ip"/"ip6"/"inet", table, chain of the
/// claiming rule, handle, kind "dnat"/"redirect"/"tproxy" or the xt target name, target such as
/// "10.0.0.5:8080", comment (rule comment or xt comment match), reason, path of chain names}.
/// Errors: Errc::malformed when the walk exceeds limits.max_steps.
[[nodiscard]] netlink::Result<std::vector<Claim>> interpret_nft(
    const netlink::nft::Ruleset& ruleset, const NftInterpretLimits& limits = {});

}  // namespace vipportd::agent
