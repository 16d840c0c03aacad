#pragma once
// Legacy iptables (x_tables) as a PortSource (kernel.md §3, §2.8; zstack-api.md §14).
//
// Reads the nat table (PREROUTING and OUTPUT hooks: DNAT, REDIRECT, NETMAP) and the mangle table
// (PREROUTING: TPROXY) of both families, but only tables listed in ip{,6}_tables_names: querying
// an absent table would create it (kernel.md §3.3). Rules are interpreted path by path from the
// builtin chains with a RuleConstraint per path: jumps and gotos are followed, RETURN goes back to
// the caller, ACCEPT/DROP and the rewriting targets end a path, and the packets a rule matched
// exactly are subtracted from the paths that go on. Legacy tables have no change events: every
// collect() re-reads them, and a table whose bytes (counters aside) did not change is not
// interpreted again.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/model.hpp"
#include "agent/source.hpp"
#include "netlink/error.hpp"
#include "netlink/ipt_legacy.hpp"

namespace vipportd::agent {

/// The claims of one parsed legacy table: "nat" from the PREROUTING and OUTPUT chains, "mangle"
/// from PREROUTING, nothing for other tables. Pure; the origin of each claim is
/// {source "iptables-legacy", family "ip"/"ip6", table, chain, handle = 1-based rule number,
/// kind = target name, target, comment, path}. Errors: Errc::malformed for a jump loop (the
/// kernel refuses to load those) or when the chain graph is too large to walk.
netlink::Result<std::vector<Claim>> interpret_ipt_table(const netlink::ipt::Table& table);

class IptLegacySource final : public PortSource {
  public:
    /// source: the kernel (netlink::ipt::KernelIptSource, built in the namespace to read) or a
    /// replay.
    explicit IptLegacySource(std::unique_ptr<netlink::ipt::IptSource> source);

    [[nodiscard]] std::string_view name() const override { return "iptables-legacy"; }
    /// Claims of every listed nat/mangle table of both families. No listed table (or no names
    /// file: x_tables not loaded) is no claims, not an error. Errors name the table and the call,
    /// e.g. "iptables-legacy: nat: IPT_SO_GET_INFO" with EPERM (CAP_NET_ADMIN and CAP_NET_RAW are
    /// needed), or "iptables-legacy: open /proc/self/net/ip_tables_names" with EACCES (the file
    /// is 0440 root:root: a non-root daemon needs CAP_DAC_READ_SEARCH).
    [[nodiscard]] netlink::Result<std::vector<Claim>> collect() override;

    /// Tables interpreted so far; a table whose bytes were unchanged since the previous collect()
    /// reuses its claims and does not count.
    [[nodiscard]] std::uint64_t interpretations() const { return interpretations_; }

  private:
    struct Cached {
        netlink::ipt::TableInfo info;
        std::vector<std::uint8_t> entries;  // counters zeroed
        std::vector<Claim> claims;
    };
    std::unique_ptr<netlink::ipt::IptSource> source_;
    std::map<std::pair<netlink::Family, std::string>, Cached> cache_;
    std::uint64_t interpretations_ = 0;
};

}  // namespace vipportd::agent
