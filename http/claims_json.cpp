#include "http/claims_json.hpp"

#include <ctime>
#include <variant>

#include "http/zstack.hpp"

namespace vipportd::http {

namespace {

using agent::Claim;
using agent::ClaimsReport;
using agent::RuleOrigin;
using agent::SocketOrigin;

void key(std::string& out, std::string_view k) {
    out += '"';
    out += k;  // keys are our own ASCII literals
    out += "\":";
}

void str(std::string& out, std::string_view s) { zstack::append_json_string(out, s); }

void str_or_null(std::string& out, std::string_view s) {
    if (s.empty()) {
        out += "null";
    } else {
        str(out, s);
    }
}

void boolean(std::string& out, bool b) { out += b ? "true" : "false"; }

void ports(std::string& out, const agent::PortSet& p) {
    out += '[';
    bool first = true;
    for (const auto& r : agent::port_ranges(p)) {
        out += first ? "\"" : ",\"";
        out += r;
        out += '"';
        first = false;
    }
    out += ']';
}

std::string iso_time(std::chrono::system_clock::time_point t) {
    const std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

void socket(std::string& out,
            const Claim& c,
            const SocketOrigin& o,
            const agent::ProcessMap& processes) {
    out += '{';
    key(out, "protocol");
    str(out, agent::to_string(c.protocol));
    out += ',';
    key(out, "family");
    str(out, agent::family_name(o.family));
    out += ',';
    key(out, "address");
    str(out, o.address.to_string());
    out += ',';
    key(out, "port");
    out += std::to_string(o.port);
    out += ',';
    key(out, "state");
    str(out, agent::socket_state_name(c.protocol, o.state));
    out += ',';
    key(out, "ifindex");
    out += std::to_string(o.ifindex);
    out += ',';
    key(out, "device");
    str_or_null(out, o.device);
    out += ',';
    key(out, "uid");
    out += std::to_string(o.uid);
    out += ',';
    key(out, "inode");
    out += std::to_string(o.inode);
    out += ',';
    key(out, "v6only");
    if (o.v6only) {
        boolean(out, *o.v6only);
    } else {
        out += "null";
    }
    out += ',';
    key(out, "freebind");
    boolean(out, o.freebind);
    out += ',';
    key(out, "transparent");
    boolean(out, o.transparent);
    out += ',';
    key(out, "reuseport_sockets");
    out += std::to_string(o.count);
    if (const auto it = processes.find(o.inode); it != processes.end()) {
        out += ',';
        key(out, "process");
        out += '{';
        key(out, "pid");
        out += std::to_string(it->second.pid);
        out += ',';
        key(out, "name");
        str(out, it->second.name);
        out += ',';
        key(out, "argv0");
        str(out, it->second.argv0);
        out += '}';
    }
    out += '}';
}

void rule(std::string& out, const RuleOrigin& o) {
    const agent::RuleSite& at = o.at();
    out += '{';
    key(out, "source");
    str(out, at.source);
    out += ',';
    key(out, "family");
    str(out, at.family);
    out += ',';
    key(out, "table");
    str(out, at.table);
    out += ',';
    key(out, "chain");
    str(out, at.chain);
    out += ',';
    key(out, "handle");
    out += std::to_string(o.handle);
    out += ',';
    key(out, "kind");
    str(out, o.kind);
    out += ',';
    key(out, "target");
    str_or_null(out, o.target);
    out += ',';
    key(out, "comment");
    str_or_null(out, o.comment);
    out += ',';
    key(out, "path");
    out += '[';
    for (std::size_t i = 0; i < at.path.size(); ++i) {
        if (i > 0) {
            out += ',';
        }
        str(out, at.path[i]);
    }
    out += "]}";
}

void claim(std::string& out, const Claim& c, const agent::ProcessMap& processes) {
    out += '{';
    key(out, "ports");
    ports(out, c.ports);
    out += ',';
    key(out, "certainty");
    if (c.certainty == agent::Certainty::exact) {
        str(out, "exact");
    } else {
        str(out, "uncertain");
        out += ',';
        key(out, "reason");
        str(out, agent::uncertainty_reason(c));
    }
    out += ',';
    key(out, "scope");
    str(out, c.scope.to_string());
    out += ',';
    if (const auto* s = std::get_if<SocketOrigin>(&c.origin)) {
        key(out, "socket");
        socket(out, c, *s, processes);
    } else {
        key(out, "rule");
        rule(out, std::get<RuleOrigin>(c.origin));
    }
    out += '}';
}

void report(std::string& out, const ClaimsReport& r) {
    out += '{';
    key(out, "vip");
    out += '{';
    key(out, "uuid");
    str(out, r.vip.uuid);
    out += ',';
    key(out, "ip");
    str(out, r.vip.ip.to_string());
    out += ',';
    key(out, "netns");
    str(out, r.vip.netns);
    out += "},";
    key(out, "snapshot");
    out += '{';
    key(out, "sequence");
    out += std::to_string(r.sequence);
    out += ',';
    key(out, "taken");
    str(out, iso_time(r.taken));
    out += "},";
    key(out, "protocols");
    out += '{';
    for (std::size_t i = 0; i < r.protocols.size(); ++i) {
        const auto& p = r.protocols[i];
        if (i > 0) {
            out += ',';
        }
        key(out, agent::to_string(p.protocol));
        out += '{';
        key(out, "used_ports");
        ports(out, p.used);
        out += ',';
        key(out, "claims");
        out += '[';
        for (std::size_t j = 0; j < p.claims.size(); ++j) {
            if (j > 0) {
                out += ',';
            }
            claim(out, p.claims[j], r.processes);
        }
        out += "]}";
    }
    out += "}}";
}

}  // namespace

std::string claims_json(const ClaimsReport& r) {
    std::string out;
    out.reserve(256 + 320 * (r.protocols.empty() ? 0 : r.protocols.front().claims.size()));
    report(out, r);
    return out;
}

std::string claims_json(std::span<const ClaimsReport> reports) {
    std::string out = "{\"vips\":[";
    for (std::size_t i = 0; i < reports.size(); ++i) {
        if (i > 0) {
            out += ',';
        }
        report(out, reports[i]);
    }
    out += "]}";
    return out;
}

}  // namespace vipportd::http
