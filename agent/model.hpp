#pragma once
// The domain model: a Claim says "these ports of this protocol are used on these destination
// addresses", and why (a socket or a netfilter rule). Sources produce claims; a Snapshot holds the
// claims of one scan of every source; queries ask a Snapshot about one VIP.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "agent/port_set.hpp"
#include "netlink/inet_address.hpp"

namespace vipportd::agent {

using netlink::Family;
using netlink::InetAddress;

enum class Protocol : std::uint8_t { tcp = 6, udp = 17 };  // values are IPPROTO_TCP / IPPROTO_UDP

std::string_view to_string(Protocol p);  // "TCP" / "UDP"
/// Case-insensitive "tcp"/"udp"; nullopt otherwise.
std::optional<Protocol> parse_protocol(std::string_view text);

/// Inclusive range of addresses of one family (first.family == last.family).
struct AddressRange {
    InetAddress first;
    InetAddress last;
    friend bool operator==(const AddressRange&, const AddressRange&) = default;
};

/// The destination addresses a claim covers: a union of address ranges, over both families.
/// IPv4-mapped IPv6 addresses are always stored as their IPv4 address.
class AddressScope {
  public:
    static AddressScope none() { return {}; }
    static AddressScope exact(const InetAddress& a);  // a v4-mapped address becomes IPv4
    static AddressScope all(Family f);                // 0.0.0.0-255.255.255.255 or ::-ffff:...
    static AddressScope prefix(const InetAddress& a, unsigned prefix_len);
    /// The union of any number of ranges in one O(n log n) pass (add() per range is quadratic);
    /// ranges with mixed families or first > last are dropped, as add() does.
    static AddressScope from_ranges(std::vector<AddressRange> ranges);

    void add(AddressRange r);
    void unite(const AddressScope& other);
    [[nodiscard]] AddressScope intersected(const AddressScope& other) const;
    [[nodiscard]] AddressScope complement_within(Family f) const;  // all(f) minus this

    [[nodiscard]] bool covers(const InetAddress& a) const;
    [[nodiscard]] bool covers_all(Family f) const;
    [[nodiscard]] bool empty() const { return ranges_.empty(); }
    [[nodiscard]] std::span<const AddressRange> ranges() const { return ranges_; }
    [[nodiscard]] std::string to_string() const;  // "1.2.3.4, 10.0.0.0-10.0.0.255, ::/0" style

    friend bool operator==(const AddressScope&, const AddressScope&) = default;

  private:
    void normalize();  // drops invalid ranges, then sorts and merges ranges_, in place
    std::vector<AddressRange> ranges_;  // sorted, disjoint, merged (per family)
};

enum class Certainty : std::uint8_t {
    exact,      // the claim is exactly what the kernel object implies
    uncertain,  // widened because something could not be interpreted; see origin's reason
};

/// A socket as sock_diag reported it (after SO_REUSEPORT groups are folded into one).
struct SocketOrigin {
    Family family = Family::v4;
    std::uint8_t state =
        0;                // TCP_LISTEN (10), TCP_CLOSE (7), TCP_ESTABLISHED (1) (net/tcp_states.h)
    InetAddress address;  // as bound (may be ::, ::ffff:a.b.c.d, or unconfigured with freebind)
    std::uint16_t port = 0;
    std::uint32_t ifindex = 0;  // SO_BINDTODEVICE / VRF, 0 = any device
    std::string device;         // interface name of ifindex, when it could be resolved
    std::uint32_t uid = 0;
    std::uint64_t inode = 0;
    std::optional<bool> v6only;  // absent when the kernel did not send INET_DIAG_SKV6ONLY
    bool freebind = false;
    bool transparent = false;
    std::uint32_t count = 1;  // sockets in the SO_REUSEPORT group (same family/addr/port/device)
};

/// Where a rule sits: the same for every rule one walk of a chain meets, so the claims of those
/// rules share one (RuleOrigin::site). Held per claim, the four names and the path cost about
/// 150 bytes plus a path vector per claim: at 10,000 DNAT rules, two claim lists (the published
/// snapshot's and the next) held 5 MiB of them.
struct RuleSite {
    std::string source;  // "nftables" or "iptables-legacy"
    std::string family;  // "ip", "ip6", "inet"
    std::string table;
    std::string chain;
    std::vector<std::string> path;  // chains traversed from the base chain, base chain first
    friend bool operator==(const RuleSite&, const RuleSite&) = default;
};

/// A netfilter rule (nf_tables, iptables-nft or legacy iptables) that rewrites or diverts traffic.
struct RuleOrigin {
    std::shared_ptr<const RuleSite> site;  // set by the sources; at() reads it null-safe
    std::uint64_t handle = 0;  // nft rule handle, or the legacy rule's 1-based index in its chain
    std::string kind;     // "dnat", "redirect", "tproxy", "DNAT", "REDIRECT", "TPROXY", "NETMAP"
    std::string target;   // "10.0.0.5:8080", ":5353", "" when unknown
    std::string comment;  // nft rule userdata comment / xt comment match
    std::string reason;   // why the claim is uncertain (empty when exact)

    /// The rule's site, or an empty one when none was set.
    [[nodiscard]] const RuleSite& at() const;
};

struct Claim {
    Protocol protocol = Protocol::tcp;
    PortSet ports;
    AddressScope scope;
    Certainty certainty = Certainty::exact;
    std::variant<SocketOrigin, RuleOrigin> origin;
};

/// Outcome of one source's collection within a snapshot.
struct SourceStatus {
    std::string name;      // "sockets", "nftables", "iptables-legacy"
    bool required = true;  // a failed required source makes queries fail (SYS.1006)
    bool ok = true;
    std::string error;  // precise reason when !ok
    std::chrono::microseconds duration{0};
};

using ClaimList = std::shared_ptr<const std::vector<Claim>>;

/// Which claims of one list can cover a given address, so that a query visits the claims on its
/// VIP and the few wide ones instead of every rule (10,000 DNAT rules made each query cost
/// 10,000 scope tests, the largest part of an HTTP answer). Claims whose scope is a handful of
/// addresses (at most kExpand per range) are filed under each address; the others (prefixes,
/// whole families) are "wide" and visited for every query. Immutable once built.
class ClaimIndex {
  public:
    static constexpr std::uint32_t kExpand = 16;
    explicit ClaimIndex(const std::vector<Claim>& claims);

    /// Calls fn(position) for every claim of protocol p whose scope may cover a (an unmapped
    /// address), in ascending position order; the caller still tests scope.covers(a).
    template <typename Fn>
    void visit(const InetAddress& a, Protocol p, Fn&& fn) const;

  private:
    struct Entry {
        Protocol protocol;
        InetAddress address;
        std::uint32_t position;
        friend auto operator<=>(const Entry&, const Entry&) = default;
    };
    std::vector<Entry> exact_;             // sorted
    std::vector<std::uint32_t> wide_tcp_;  // ascending positions
    std::vector<std::uint32_t> wide_udp_;
};

template <typename Fn>
void ClaimIndex::visit(const InetAddress& a, Protocol p, Fn&& fn) const {
    const auto lo = std::lower_bound(exact_.begin(), exact_.end(), Entry{p, a, 0});
    auto hi = lo;
    while (hi != exact_.end() && hi->protocol == p && hi->address == a) {
        ++hi;
    }
    const auto& wide = p == Protocol::tcp ? wide_tcp_ : wide_udp_;
    // Merge the two ascending sequences (a claim is in exactly one of them).
    auto w = wide.begin();
    for (auto e = lo; e != hi || w != wide.end();) {
        if (w == wide.end() || (e != hi && e->position < *w)) {
            fn((e++)->position);
        } else {
            fn(*w++);
        }
    }
}
class SocketTable;
class AddressTable;  // agent/address_table.hpp: the namespace's configured addresses

/// used_ports() answers remembered for one published snapshot: the requests that one scan serves
/// together (single flight) mostly ask about the same few VIPs, so all but the first are a
/// lookup. At most kMaxEntries (literal addresses are client input); a copy starts empty.
class PortsMemo {
  public:
    PortsMemo() = default;
    PortsMemo(const PortsMemo& /*unused*/) {}
    PortsMemo& operator=(const PortsMemo& other);
    ~PortsMemo() = default;

    /// The remembered answer for (vip, p), else compute()'s, remembered while there is room.
    [[nodiscard]] PortSet get(const InetAddress& vip,
                              Protocol p,
                              const std::function<PortSet()>& compute) const;

    static constexpr std::size_t kMaxEntries = 64;

  private:
    struct Entry {
        InetAddress vip;
        Protocol protocol;
        PortSet ports;
    };
    mutable std::mutex mutex_;
    mutable std::vector<Entry> entries_;
};

/// Immutable result of one scan of every enabled source. Sockets live in an indexed table (a
/// query visits only the sockets on that VIP and on the wildcards); rule claims are shared with
/// the sources' caches, so a snapshot of an unchanged ruleset copies nothing.
struct Snapshot {
    std::shared_ptr<const SocketTable> sockets;  // null when no socket source ran
    /// Addresses configured on interfaces (VIP presence); null when no address source ran.
    std::shared_ptr<const AddressTable> addresses{};
    std::vector<ClaimList> claim_lists;  // one per source that produced claims
    /// claim_indexes[i] indexes claim_lists[i] (SnapshotService builds one per list and reuses it
    /// while a source returns the same list); shorter or null: that list is scanned in full.
    std::vector<std::shared_ptr<const ClaimIndex>> claim_indexes;
    std::vector<Claim> claims;  // owned claims (tests, ad-hoc snapshots)
    std::vector<SourceStatus> sources;
    std::chrono::system_clock::time_point taken{};
    std::uint64_t sequence = 0;  // increases by one per scan
    PortsMemo ports_memo{};      // used_ports_remembered()'s answers

    /// The first required source that failed, if any (queries must then fail, naming it).
    [[nodiscard]] const SourceStatus* failed_required() const;
    /// Ports of protocol p used on vip (v4-mapped vip is treated as IPv4).
    [[nodiscard]] PortSet used_ports(const InetAddress& vip, Protocol p) const;
    /// used_ports(), remembered in ports_memo: for published snapshots (SnapshotPtr), whose
    /// claims no longer change.
    [[nodiscard]] PortSet used_ports_remembered(const InetAddress& vip, Protocol p) const;
    /// The claims behind used_ports(vip, p): sockets first (SO_REUSEPORT groups folded), then
    /// rule claims in source order, then owned claims.
    [[nodiscard]] std::vector<Claim> claims_for(const InetAddress& vip, Protocol p) const;
    /// Number of claims of every kind (a socket table counts its sockets).
    [[nodiscard]] std::size_t size() const;
    /// A copy without the sockets and claims: what readiness, metrics and the status line keep
    /// between scans, so that a scan never holds the previous scan's claims while it builds its
    /// own (the peak memory of a rule change on a big host).
    [[nodiscard]] std::shared_ptr<const Snapshot> summary() const;
};

using SnapshotPtr = std::shared_ptr<const Snapshot>;

}  // namespace vipportd::agent
