#include "agent/claims_report.hpp"

#include <variant>

namespace vipportd::agent {

namespace {

// net/tcp_states.h
constexpr std::uint8_t kTcpEstablished = 1;
constexpr std::uint8_t kTcpClose = 7;
constexpr std::uint8_t kTcpListen = 10;

std::string ports_text(const PortSet& ports) {
    std::string out;
    for (const auto& r : port_ranges(ports)) {
        out += (out.empty() ? "" : ",") + r;
    }
    return out;
}

std::string socket_why(const SocketOrigin& o, const Vip& vip) {
    const InetAddress vip_ip = vip.ip.unmapped();
    std::string why;
    if (o.address.is_unspecified()) {
        if (o.family == Family::v4) {
            why = "bound to the IPv4 wildcard 0.0.0.0, which holds the port on every IPv4 address";
        } else if (!o.v6only) {
            why =
                "bound to :: and the kernel did not report IPV6_V6ONLY (no INET_DIAG_SKV6ONLY): "
                "counted as dual-stack, every IPv4 and IPv6 address";
        } else if (*o.v6only) {
            why = "bound to :: with IPV6_V6ONLY, which holds the port on every IPv6 address";
        } else {
            why =
                "bound to :: without IPV6_V6ONLY (dual-stack), which holds the port on every "
                "IPv4 and IPv6 address";
        }
    } else if (o.address.is_v4_mapped()) {
        why = o.address.unmapped().is_unspecified()
                  ? "bound to ::ffff:0.0.0.0, which the kernel treats as the IPv4 wildcard"
                  : "bound to the IPv4-mapped address " + o.address.to_string() +
                        " (= " + vip_ip.to_string() + ")";
    } else {
        why = "bound to " + o.address.to_string() + " itself";
    }
    if (o.ifindex != 0) {
        why += "; only on device " +
               (o.device.empty() ? "#" + std::to_string(o.ifindex) : o.device) +
               " (SO_BINDTODEVICE/VRF), but a bind without a device still conflicts";
    }
    if (o.freebind || o.transparent) {
        why += std::string("; ") + (o.freebind ? "IP_FREEBIND" : "IP_TRANSPARENT") +
               " lets it hold an address that need not be configured";
    }
    if (o.count > 1) {
        why += "; " + std::to_string(o.count) + " sockets share it (SO_REUSEPORT)";
    }
    return why;
}

}  // namespace

ClaimsReport make_claims_report(const Vip& vip,
                                const Snapshot& snap,
                                std::span<const Protocol> protocols,
                                ProcessLookup* processes) {
    ClaimsReport r;
    r.vip = vip;
    r.sequence = snap.sequence;
    r.taken = snap.taken;
    std::vector<std::uint64_t> inodes;
    for (const Protocol p : protocols) {
        ProtocolClaims pc;
        pc.protocol = p;
        pc.used = snap.used_ports(vip.ip, p);
        pc.claims = snap.claims_for(vip.ip, p);
        for (const auto& c : pc.claims) {
            if (const auto* s = std::get_if<SocketOrigin>(&c.origin)) {
                inodes.push_back(s->inode);
            }
        }
        r.protocols.push_back(std::move(pc));
    }
    if (processes != nullptr && !inodes.empty()) {
        r.processes = processes->find(inodes, snap.taken);
    }
    return r;
}

std::vector<std::string> port_ranges(const PortSet& ports) {
    std::vector<std::string> out;
    for (const auto& r : ports.ranges()) {
        const unsigned lo = r.first == 0 ? 1U : r.first;
        if (lo > r.last) {
            continue;  // the range was port 0 alone
        }
        out.push_back(r.last == lo ? std::to_string(lo)
                                   : std::to_string(lo) + "-" + std::to_string(r.last));
    }
    return out;
}

std::string_view socket_state_name(Protocol p, std::uint8_t state) {
    if (p == Protocol::udp) {
        if (state == kTcpClose) {
            return "UNCONN";
        }
        if (state == kTcpEstablished) {
            return "ESTAB";
        }
    } else {
        if (state == kTcpListen) {
            return "LISTEN";
        }
        if (state == kTcpClose) {
            return "BOUND";
        }
        if (state == kTcpEstablished) {
            return "ESTAB";
        }
    }
    // net/tcp_states.h, in order from TCP_ESTABLISHED (1).
    static constexpr std::string_view names[] = {
        "UNKNOWN",   "ESTABLISHED", "SYN_SENT",     "SYN_RECV",      "FIN_WAIT1",
        "FIN_WAIT2", "TIME_WAIT",   "CLOSE",        "CLOSE_WAIT",    "LAST_ACK",
        "LISTEN",    "CLOSING",     "NEW_SYN_RECV", "BOUND_INACTIVE"};
    return state < std::size(names) ? names[state] : "UNKNOWN";
}

std::string_view family_name(Family f) { return f == Family::v4 ? "ipv4" : "ipv6"; }

std::string uncertainty_reason(const Claim& c) {
    if (c.certainty == Certainty::exact) {
        return {};
    }
    if (const auto* r = std::get_if<RuleOrigin>(&c.origin)) {
        return r->reason.empty() ? std::string("the rule could not be interpreted exactly")
                                 : r->reason;
    }
    const auto& s = std::get<SocketOrigin>(c.origin);
    if (!s.v6only) {
        // socket_scope(): the only uncertain socket claim (kernel.md §1.6, "SKV6ONLY absent").
        return "IPV6_V6ONLY unknown (the kernel sent no INET_DIAG_SKV6ONLY): counted as "
               "dual-stack";
    }
    return "socket scope uncertain";
}

std::string explain(const Claim& c, const Vip& vip, const ProcessInfo* process) {
    std::string out = std::string(to_string(c.protocol)) + " " + ports_text(c.ports) + ": ";
    if (const auto* s = std::get_if<SocketOrigin>(&c.origin)) {
        out += "socket " +
               (s->family == Family::v6 ? "[" + s->address.to_string() + "]"
                                        : s->address.to_string()) +
               ":" + std::to_string(s->port) + " " +
               std::string(socket_state_name(c.protocol, s->state));
        if (process != nullptr) {
            out += " held by " + process->name + " (pid " + std::to_string(process->pid) + ")";
        } else {
            out += " held by an unknown process";
        }
        out += ", uid " + std::to_string(s->uid) + ", inode " + std::to_string(s->inode) + "; " +
               socket_why(*s, vip);
    } else {
        const auto& r = std::get<RuleOrigin>(c.origin);
        const RuleSite& at = r.at();
        // nft rules have handles; a legacy rule is known by its position in its chain.
        out += at.source + " " + at.family + " " + at.table + " " + at.chain +
               (at.source == "nftables" ? " handle " : " rule ") + std::to_string(r.handle) + ": " +
               r.kind;
        if (!r.target.empty()) {
            out += " to " + r.target;
        }
        if (!r.comment.empty()) {
            out += " (comment \"" + r.comment + "\")";
        }
        const bool tproxy = r.kind == "tproxy" || r.kind == "TPROXY";
        out +=
            std::string(tproxy ? "; diverts" : "; rewrites") + " packets to " + c.scope.to_string();
        if (c.scope != AddressScope::exact(vip.ip)) {
            out += " (which includes " + vip.ip.unmapped().to_string() + ")";
        }
        if (at.path.size() > 1) {
            std::string path;
            for (const auto& chain : at.path) {
                path += (path.empty() ? "" : " -> ") + chain;
            }
            out += ", reached via " + path;
        }
    }
    if (c.certainty == Certainty::uncertain) {
        out += "; uncertain: " + uncertainty_reason(c);
    }
    return out;
}

}  // namespace vipportd::agent
