#pragma once
// ClaimsReport: why the ports of a VIP are used. The claims of one snapshot for one VIP, per
// protocol, with the owning process of every socket claim (ProcessLookup), ready to be rendered
// by the claims API (http/claims_json.hpp) and the `vipportd query` table (agent/query_cli.hpp).

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "agent/model.hpp"
#include "agent/process_index.hpp"
#include "agent/vip_registry.hpp"

namespace vipportd::agent {

struct ProtocolClaims {
    Protocol protocol = Protocol::tcp;
    PortSet used;               // Snapshot::used_ports(vip, protocol)
    std::vector<Claim> claims;  // Snapshot::claims_for(vip, protocol)
};

struct ClaimsReport {
    Vip vip;
    std::uint64_t sequence = 0;  // of the snapshot
    std::chrono::system_clock::time_point taken{};
    std::vector<ProtocolClaims> protocols;  // in the order asked for
    ProcessMap processes;                   // socket inode -> holder, for those found
};

/// The report for vip from snap (which must not have a failed required source: the caller
/// answers SYS.1006 first). processes may be null (no owner lookup).
[[nodiscard]] ClaimsReport make_claims_report(const Vip& vip,
                                              const Snapshot& snap,
                                              std::span<const Protocol> protocols,
                                              ProcessLookup* processes);

/// Ports as vipportd lists them: ascending, contiguous runs collapsed ("22", "8000-8010"); port 0
/// is never listed (it is not a port a service can be reached on).
[[nodiscard]] std::vector<std::string> port_ranges(const PortSet& ports);

/// A socket's state as `ss` names it: LISTEN; BOUND (a TCP socket bound but neither listening nor
/// connected: sock_diag reports TCP_CLOSE for the TCP_BOUND_INACTIVE dump, kernel.md §1.2);
/// UNCONN (UDP TCP_CLOSE); ESTAB; otherwise the net/tcp_states.h name.
[[nodiscard]] std::string_view socket_state_name(Protocol p, std::uint8_t state);

/// "ipv4" / "ipv6".
[[nodiscard]] std::string_view family_name(Family f);

/// Why the claim is uncertain; empty when it is exact.
[[nodiscard]] std::string uncertainty_reason(const Claim& c);

/// One human sentence: who holds the ports and why that holds them on the VIP (the CLI's
/// --explain). process may be null.
[[nodiscard]] std::string explain(const Claim& c, const Vip& vip, const ProcessInfo* process);

}  // namespace vipportd::agent
