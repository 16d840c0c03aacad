#include "agent/ipt_legacy_source.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <optional>
#include <utility>

#include "agent/rule_constraint.hpp"
#include "netlink/xt_blobs.hpp"

namespace vipportd::agent {

namespace ipt = netlink::ipt;
namespace xt = netlink::xt;
using netlink::Errc;
using netlink::Error;
using netlink::Result;

namespace {

constexpr std::uint16_t kProtoTcp = 6;   // IPPROTO_TCP
constexpr std::uint16_t kProtoUdp = 17;  // IPPROTO_UDP

// A table the kernel accepted has no loops (ip_tables.c mark_source_chains) and depth bounded by
// its chain count; the step limit only stops crafted input (fuzzing) from walking forever.
constexpr std::size_t kMaxSteps = 2'000'000;  // rule visits per table
// Disjoint constraints carried through a chain. Each exact rule a path passes can split it in up
// to three (RuleConstraint::subtracted); beyond this the paths are merged, widening if need be.
constexpr std::size_t kMaxPaths = 64;

// Targets that end the traversal of a table for the packets they match (they return a verdict,
// not XT_CONTINUE; net/netfilter/xt_*.c, net/ipv4/netfilter/ipt_*.c). "ERROR" drops
// (ip_tables.c ipt_error).
constexpr std::array<std::string_view, 7> kTerminalTargets{
    "SNAT", "MASQUERADE", "REJECT", "NFQUEUE", "SYNPROXY", "CLUSTERIP", "ERROR"};
// Targets that return XT_CONTINUE: matched packets go on to the next rule.
constexpr std::array<std::string_view, 22> kContinuingTargets{
    "MARK",    "CONNMARK",    "LOG", "NFLOG",     "TRACE", "CT",     "NOTRACK",  "DSCP",
    "TOS",     "TTL",         "HL",  "CLASSIFY",  "SET",   "TCPMSS", "CHECKSUM", "AUDIT",
    "SECMARK", "CONNSECMARK", "TEE", "IDLETIMER", "LED",   "HMARK"};

bool contains(std::span<const std::string_view> list, std::string_view name) {
    return std::find(list.begin(), list.end(), name) != list.end();
}

/// What one rule requires of a packet, in the three dimensions claims have.
struct RuleTest {
    RuleConstraint box;
    /// The box is exactly the set of packets the rule matches: only then may the paths that go
    /// on past the rule exclude it. Source-side tests (-s, -i, --sport, tcp flags) narrow the rule
    /// without narrowing the claim, so they keep the claim exact but make this false.
    bool exact = true;
    std::vector<std::string> reasons;  // tests not understood: the claim is widened
    std::string comment;
};

AddressScope both_families_complement(const AddressScope& s) {
    AddressScope out = s.complement_within(Family::v4);
    out.unite(s.complement_within(Family::v6));
    return out;
}

/// Destination test of the ip part: "(daddr & dmsk) != dst" inverted by IPT_INV_DSTIP
/// (ip_tables.c ip_packet_match; ip6_tables.c ipv6_masked_addr_cmp).
void dst_test(const ipt::Rule& r, Family f, RuleTest& t, const std::string& where) {
    const std::size_t n = r.dst.size();
    unsigned len = 0;           // leading one bits of the mask
    bool holes = false;         // a one bit after a zero bit: not a prefix
    bool outside_mask = false;  // a dst bit the mask clears: "(daddr & dmsk) != dst" always
    for (std::size_t i = 0; i < n; ++i) {
        outside_mask = outside_mask || (r.dst.bytes[i] & ~r.dmsk.bytes[i]) != 0;
    }
    for (unsigned bit = 0; bit < n * 8; ++bit) {
        if ((r.dmsk.bytes[bit / 8] & (0x80u >> (bit % 8))) == 0) {
            continue;
        }
        if (bit == len) {
            ++len;
        } else {
            holes = true;
        }
    }
    AddressScope s;
    if (outside_mask) {
        s = AddressScope::none();
    } else {
        s = AddressScope::prefix(r.dst, len);
        if (holes) {
            // -d 1.2.3.4/255.0.255.0: the leading prefix is a superset of what it matches.
            t.exact = false;
            t.reasons.push_back(where + ": non-contiguous destination mask " + r.dmsk.to_string());
            if (r.invert_dst) {
                t.box.restrict_daddr(AddressScope::all(f));
                return;
            }
        }
    }
    t.box.restrict_daddr(r.invert_dst ? both_families_complement(s) : s);
}

void proto_test(const ipt::Rule& r, RuleTest& t) {
    if (r.proto == 0) {
        if (r.invert_proto) {
            t.box.restrict_protocols(false, false);  // IPv6 "! -p all"
        }
        return;
    }
    t.box.restrict_protocols((r.proto == kProtoTcp) != r.invert_proto,
                             (r.proto == kProtoUdp) != r.invert_proto);
}

PortSet port_set(const xt::PortSpan& s, bool invert) {
    // xt_tcpudp.c port_match: (port >= min && port <= max) ^ invert
    const PortSet p = PortSet::range(s.first, s.last);
    return invert ? p.complement() : p;
}

void tcpudp_test(const xt::TcpUdpMatch& m, RuleTest& t) {
    t.box.restrict_dports(port_set(m.dports, m.invert_dports));
    if (m.sports.first != 0 || m.sports.last != 65535 || m.invert_sports ||
        m.tcp_flags_or_options) {
        t.exact = false;
    }
}

void multiport_test(const xt::MultiportMatch& m, RuleTest& t) {
    PortSet p;
    for (const auto& s : m.ports) {
        p.add(PortRange{s.first, s.last});
    }
    if (m.invert) {
        p = p.complement();
    }
    using D = xt::MultiportMatch::Direction;
    if (m.direction == D::source) {
        t.exact = false;  // a source-port test: the claim keeps every destination port
        return;
    }
    // "either" also matches packets by their source port; like --sport, that side does not
    // narrow the claim, and the rule is not exact enough to subtract.
    t.box.restrict_dports(p);
    if (m.direction == D::either) {
        t.exact = false;
    }
}

RuleTest rule_test(const ipt::Rule& r, Family f, const std::string& where) {
    RuleTest t{RuleConstraint::for_family(f), true, {}, {}};
    dst_test(r, f, t, where);
    proto_test(r, t);
    if (!r.smsk.is_unspecified() || r.invert_src || !r.iniface.empty() || !r.outiface.empty() ||
        r.invert_iniface || r.invert_outiface || r.other_ip_test) {
        t.exact = false;
    }
    for (const auto& m : r.matches) {
        const std::string what = where + ": match '" + m.name + "'";
        if (m.name == "tcp" || m.name == "udp") {
            const bool tcp = m.name == "tcp";
            auto d = tcp ? xt::decode_tcp(m.data) : xt::decode_udp(m.data);
            t.box.restrict_protocols(tcp, !tcp);  // xt_tcpudp.c registers .proto per match
            if (!d) {
                t.exact = false;
                t.reasons.push_back(what + ": " + netlink::to_string(d.error()));
                continue;
            }
            tcpudp_test(*d, t);
        } else if (m.name == "multiport") {
            auto d = xt::decode_multiport(m.data, m.revision);
            if (!d) {
                t.exact = false;
                t.reasons.push_back(what + ": " + netlink::to_string(d.error()));
                continue;
            }
            multiport_test(*d, t);
        } else if (m.name == "comment") {
            if (auto c = xt::decode_comment(m.data)) {
                t.comment = *c;
            }
        } else {
            // set, mark, conntrack, state, addrtype, iprange, ...: it may match any packet of
            // the box; keep the box (widened) and say why.
            t.exact = false;
            t.reasons.push_back(what + " (rev " + std::to_string(m.revision) + ") not interpreted");
        }
    }
    return t;
}

/// Keeps paths.size() <= kMaxPaths. First merges paths that differ in one dimension only and
/// carry the same reasons (exact). If that is not enough, keeps the first path (the one that
/// avoided every earlier rule's addresses: subtraction puts that piece first) and replaces the
/// others by one covering path per protocol combination: a superset, so every claim after it is
/// still complete, marked uncertain with `reason` where it touches the merged part.
void coalesce(std::vector<RuleConstraint>& paths, const std::string& reason) {
    if (paths.size() <= kMaxPaths) {
        return;
    }
    for (std::size_t i = 0; i < paths.size(); ++i) {
        for (std::size_t j = i + 1; j < paths.size();) {
            RuleConstraint& a = paths[i];
            const RuleConstraint& b = paths[j];
            const bool same_protocols = a.tcp == b.tcp && a.udp == b.udp;
            if (!same_protocols || a.uncertain != b.uncertain) {
                ++j;
            } else if (a.dports == b.dports) {
                a.daddr.unite(b.daddr);
                paths.erase(paths.begin() + static_cast<std::ptrdiff_t>(j));
            } else if (a.daddr == b.daddr) {
                a.dports.unite(b.dports);
                paths.erase(paths.begin() + static_cast<std::ptrdiff_t>(j));
            } else {
                ++j;
            }
        }
    }
    if (paths.size() <= kMaxPaths) {
        return;
    }
    std::vector<RuleConstraint> out{std::move(paths.front())};
    std::array<std::optional<RuleConstraint>, 4> hulls;  // by (tcp, udp)
    std::array<std::size_t, 4> merged{};
    for (std::size_t i = 1; i < paths.size(); ++i) {
        RuleConstraint& p = paths[i];
        const std::size_t g = (p.tcp ? 2U : 0U) + (p.udp ? 1U : 0U);
        auto& h = hulls[g];
        ++merged[g];
        if (!h) {
            h = std::move(p);
            continue;
        }
        h->daddr.unite(p.daddr);
        h->dports.unite(p.dports);
        for (auto& r : p.uncertain) {
            if (std::find(h->uncertain.begin(), h->uncertain.end(), r) == h->uncertain.end()) {
                h->uncertain.push_back(std::move(r));
            }
        }
    }
    for (std::size_t g = 0; g < hulls.size(); ++g) {
        if (hulls[g]) {
            if (merged[g] > 1) {
                hulls[g]->widen(reason);
            }
            out.push_back(std::move(*hulls[g]));
        }
    }
    paths = std::move(out);
}

class Interpreter {
  public:
    explicit Interpreter(const ipt::Table& t) : t_(t) {
        tests_.resize(t.chains.size());
        for (std::size_t c = 0; c < t.chains.size(); ++c) {
            for (std::size_t i = 0; i < t.chains[c].rules.size(); ++i) {
                tests_[c].push_back(rule_test(t.chains[c].rules[i], t.family, where(c, i)));
            }
        }
    }

    Result<void> run_hook(std::size_t hook) {
        const auto& chain = t_.hook_chain[hook];
        if (!chain) {
            return {};
        }
        auto r = run(*chain, 0, {RuleConstraint::for_family(t_.family)});
        if (!r) {
            return r.error();
        }
        return {};  // what returns from a builtin chain meets its policy: no claim
    }

    std::vector<Claim> take_claims() {
        merge_claims(claims_);
        return std::move(claims_);
    }

  private:
    std::string where(std::size_t chain, std::size_t rule) const {
        return std::string(ipt::family_name(t_.family)) + " " + t_.name + " " +
               t_.chains[chain].name + " rule " + std::to_string(rule + 1);
    }

    Error fail(const std::string& what) const {
        return Error::of(Errc::malformed,
                         std::string(ipt::family_name(t_.family)) + " " + t_.name + ": " + what);
    }

    static void widen_all(std::vector<RuleConstraint>& paths, const std::string& reason) {
        for (auto& p : paths) {
            p.widen(reason);
        }
    }

    void claim(const ipt::Rule& r,
               std::size_t chain,
               std::size_t index,
               const RuleTest& test,
               const std::vector<RuleConstraint>& matched) {
        auto& site = sites_.back();  // chain is the one run() is walking
        if (!site) {
            site = std::make_shared<const RuleSite>(
                RuleSite{"iptables-legacy", std::string(ipt::family_name(t_.family)), t_.name,
                         t_.chains[chain].name, path_});
        }
        RuleOrigin o;
        o.site = site;
        o.handle = index + 1;
        o.kind = r.target.name;
        o.comment = test.comment;
        std::optional<std::string> bad;
        if (r.target.name == "TPROXY") {
            auto d = xt::decode_tproxy(r.target.revision, t_.family, r.target.data);
            if (d) {
                o.target = d->to_string();
            } else {
                bad = netlink::to_string(d.error());
            }
        } else {
            auto d = xt::decode_nat(r.target.name, r.target.revision, t_.family, r.target.data);
            if (d) {
                o.target = d->to_string();
            } else {
                bad = netlink::to_string(d.error());
            }
        }
        for (RuleConstraint m : matched) {
            if (bad) {
                // The rule rewrites these packets; only where to is unknown.
                m.widen(where(chain, index) + ": target " + r.target.name + ": " + *bad);
            }
            m.append_claims(o, claims_);
        }
    }

    // Runs the paths `in` through chain from rule `start`; returns the paths that come back to
    // the caller (RETURN, or the end of a user chain).
    Result<std::vector<RuleConstraint>> run(std::size_t chain,
                                            std::size_t start,
                                            std::vector<RuleConstraint> in) {
        if (std::find(stack_.begin(), stack_.end(), chain) != stack_.end()) {
            std::string p;
            for (const auto& n : path_) {
                p += n + " -> ";
            }
            return fail("jump loop: " + p + t_.chains[chain].name);
        }
        const ipt::Chain& c = t_.chains[chain];
        stack_.push_back(chain);
        path_.push_back(c.name);
        sites_.emplace_back();
        std::vector<RuleConstraint> current = std::move(in);
        std::vector<RuleConstraint> returned;
        for (std::size_t i = start; i < c.rules.size() && !current.empty(); ++i) {
            if (++steps_ > kMaxSteps) {
                return fail("more than " + std::to_string(kMaxSteps) + " rule visits");
            }
            const ipt::Rule& r = c.rules[i];
            const RuleTest& test = tests_[chain][i];
            // matched: the paths' packets this rule matches; rest: the paths that go on past it
            // when it matches and ends them. A path the rule cannot match goes on unchanged.
            std::vector<RuleConstraint> matched;
            std::vector<RuleConstraint> rest;
            for (const auto& p : current) {
                RuleConstraint m = p;
                m.restrict_daddr(test.box.daddr);
                m.restrict_protocols(test.box.tcp, test.box.udp);
                m.restrict_dports(test.box.dports);
                if (m.impossible()) {
                    rest.push_back(p);
                    continue;
                }
                for (const auto& reason : test.reasons) {
                    m.widen(reason);
                }
                matched.push_back(std::move(m));
                if (test.exact) {
                    for (auto& d : p.subtracted(test.box)) {
                        rest.push_back(std::move(d));
                    }
                } else {
                    rest.push_back(p);
                }
            }
            if (matched.empty()) {
                continue;
            }
            switch (r.target.kind) {
                case ipt::Target::Kind::verdict:
                    if (r.target.verdict == ipt::kVerdictReturn) {
                        for (auto& m : matched) {
                            returned.push_back(std::move(m));
                        }
                    }
                    current = std::move(rest);  // ACCEPT, DROP, QUEUE, ...: the path ends here
                    break;
                case ipt::Target::Kind::jump: {
                    auto back = run(r.target.jump_chain, r.target.jump_rule, std::move(matched));
                    if (!back) {
                        return back.error();
                    }
                    if (r.target.is_goto) {
                        // -g: a RETURN in the target chain returns to *our* caller.
                        for (auto& m : *back) {
                            returned.push_back(std::move(m));
                        }
                    } else {
                        for (auto& m : *back) {
                            rest.push_back(std::move(m));
                        }
                    }
                    current = std::move(rest);
                    break;
                }
                case ipt::Target::Kind::named: {
                    const std::string& n = r.target.name;
                    const bool nat =
                        t_.name == "nat" && (n == "DNAT" || n == "REDIRECT" || n == "NETMAP");
                    if (nat || n == "TPROXY") {
                        claim(r, chain, i, test, matched);
                        current = std::move(rest);
                    } else if (contains(kTerminalTargets, n)) {
                        current = std::move(rest);
                    } else if (!contains(kContinuingTargets, n)) {
                        // Unknown: assume the packets go on (claims after it may be too wide).
                        widen_all(current, where(chain, i) + ": target '" + n +
                                               "' not interpreted, assumed to continue");
                    }
                    break;
                }
            }
            if (current.size() > kMaxPaths) {
                coalesce(current, where(chain, i) + ": more than " + std::to_string(kMaxPaths) +
                                      " disjoint paths after this rule, merged");
            }
        }
        if (!c.builtin && c.policy && !current.empty()) {
            // The RETURN iptables appends to every user chain. Without it the walk runs into the
            // next ERROR head, which drops (ip_tables.c ipt_error): nothing comes back.
            for (auto& p : current) {
                returned.push_back(std::move(p));
            }
        }
        coalesce(returned, std::string(ipt::family_name(t_.family)) + " " + t_.name + " " + c.name +
                               ": more than " + std::to_string(kMaxPaths) +
                               " disjoint paths return, merged");
        stack_.pop_back();
        path_.pop_back();
        sites_.pop_back();
        return returned;
    }

    const ipt::Table& t_;
    std::vector<std::vector<RuleTest>> tests_;
    std::vector<std::size_t> stack_;
    std::vector<std::string> path_;
    // One per path_ entry: the site of the chain run there, made at its first claim.
    std::vector<std::shared_ptr<const RuleSite>> sites_;
    std::vector<Claim> claims_;
    std::size_t steps_ = 0;
};

Error prefixed(const Error& e) {
    return Error{e.code, e.sys_errno, "iptables-legacy: " + e.detail};
}

}  // namespace

Result<std::vector<Claim>> interpret_ipt_table(const ipt::Table& table) {
    std::vector<std::size_t> hooks;
    if (table.name == "nat") {
        hooks = {0, 3};  // NF_INET_PRE_ROUTING, NF_INET_LOCAL_OUT: where DNAT/REDIRECT apply
    } else if (table.name == "mangle") {
        hooks = {0};  // TPROXY is valid in mangle PREROUTING only (xt_TPROXY.c .hooks)
    } else {
        return std::vector<Claim>{};
    }
    Interpreter in(table);
    for (const std::size_t h : hooks) {
        if (auto r = in.run_hook(h); !r) {
            return r.error();
        }
    }
    return in.take_claims();
}

IptLegacySource::IptLegacySource(std::unique_ptr<ipt::IptSource> source)
    : source_(std::move(source)) {}

Result<std::vector<Claim>> IptLegacySource::collect() {
    std::vector<Claim> all;
    std::map<std::pair<Family, std::string>, Cached> seen;
    for (const Family f : {Family::v4, Family::v6}) {
        auto names = source_->table_names(f);
        if (!names) {
            return prefixed(names.error());
        }
        for (const std::string table : {"nat", "mangle"}) {
            // Only listed tables: GET_INFO on an absent one would create it (kernel.md §3.3).
            if (std::find(names->begin(), names->end(), table) == names->end()) {
                continue;
            }
            auto raw = ipt::read_table(*source_, f, table);
            if (!raw) {
                return prefixed(raw.error());
            }
            ipt::clear_counters(f, raw->entries);
            const auto key = std::pair{f, table};
            const auto it = cache_.find(key);
            if (it != cache_.end() && it->second.info == raw->info &&
                it->second.entries == raw->entries) {
                all.insert(all.end(), it->second.claims.begin(), it->second.claims.end());
                seen.insert(cache_.extract(it));
                continue;
            }
            auto parsed = ipt::parse_ipt_blob(f, raw->info, raw->entries);
            if (!parsed) {
                return prefixed(parsed.error());
            }
            auto claims = interpret_ipt_table(*parsed);
            if (!claims) {
                return prefixed(claims.error());
            }
            ++interpretations_;
            all.insert(all.end(), claims->begin(), claims->end());
            seen[key] = Cached{std::move(raw->info), std::move(raw->entries), std::move(*claims)};
        }
    }
    cache_ = std::move(seen);  // tables no longer listed are forgotten
    return all;
}

}  // namespace vipportd::agent
