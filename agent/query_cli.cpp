#include "agent/query_cli.hpp"

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <filesystem>
#include <future>
#include <ostream>
#include <unistd.h>

#include "agent/config.hpp"
#include "agent/logging.hpp"
#include "agent/namespaces.hpp"
#include "agent/snapshot_service.hpp"
#include "agent/sources.hpp"
#include "agent/vip_catalog.hpp"
#include "agent/vip_registry.hpp"
#include "agent/vip_store.hpp"
#include "agent/vips_dir.hpp"

namespace vipportd::agent {

namespace {

constexpr std::string_view kUsage = R"(usage: vipportd query <uuid-or-ip> [options]
       vipportd query --all [options]

Scans the kernel once (sockets and netfilter rules, no daemon needed) and shows which ports of a
VIP are used, and by whom: the sockets (with the owning process when /proc lets us see it) and
the netfilter rules that claim them.

options:
  --protocol P    tcp, udp or all (default all)
  --explain       one more line per claim: who holds the ports and why that covers the VIP
  --json          print the JSON of GET /vipportd/v1/vips/{uuid-or-ip}/claims instead
  --all           every registered VIP: the configuration's [[vip]], vips_dir and the
                  registrations in state_dir
  --config FILE   configuration to read VIPs and [sources] from (default
                  /etc/vipportd/vipportd.toml when it exists, else the built-in default;
                  literal addresses work either way)
  --help          print this help and exit

exit status: 0 answered; 1 a required kernel source failed (e.g. nf_tables without
CAP_NET_ADMIN); 2 usage error, unreadable configuration or unknown VIP.
)";

constexpr std::string_view kDefaultConfig = "/etc/vipportd/vipportd.toml";

// Text from the kernel or from files (rule comments, process names, uuids) can hold anything;
// control bytes must not reach the terminal.
std::string safe(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7f) {
            constexpr std::string_view hex = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xf];
        } else {
            out += ch;
        }
    }
    return out;
}

std::string joined(const std::vector<std::string>& parts, std::string_view sep) {
    std::string out;
    for (const auto& p : parts) {
        if (!out.empty()) {
            out += sep;
        }
        out += p;
    }
    return out;
}

std::string iso_time(std::chrono::system_clock::time_point t) {
    const std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

struct Row {
    std::string protocol;
    std::string ports;
    std::string claim;
    std::string holder;
    std::string detail;
    bool uncertain = false;
    std::string explanation;
};

Row row_of(const Claim& c, const ClaimsReport& r) {
    Row row;
    row.protocol = std::string(to_string(c.protocol));
    row.ports = joined(port_ranges(c.ports), ",");
    row.uncertain = c.certainty == Certainty::uncertain;
    const ProcessInfo* process = nullptr;
    if (const auto* s = std::get_if<SocketOrigin>(&c.origin)) {
        if (const auto it = r.processes.find(s->inode); it != r.processes.end()) {
            process = &it->second;
        }
        row.claim = "socket";
        row.holder = process ? safe(process->name) + "[" + std::to_string(process->pid) + "]" : "-";
        const std::string addr =
            s->family == Family::v6 ? "[" + s->address.to_string() + "]" : s->address.to_string();
        row.detail = addr + ":" + std::to_string(s->port) + " " +
                     std::string(socket_state_name(c.protocol, s->state));
        if (s->ifindex != 0) {
            row.detail +=
                " dev " + (s->device.empty() ? "#" + std::to_string(s->ifindex) : safe(s->device));
        }
        if (s->count > 1) {
            row.detail += " x" + std::to_string(s->count);
        }
        row.detail += " uid " + std::to_string(s->uid) + " inode " + std::to_string(s->inode);
    } else {
        const auto& o = std::get<RuleOrigin>(c.origin);
        const RuleSite& at = o.at();
        row.claim = safe(o.kind);
        row.holder = at.source;
        row.detail = safe(at.family + " " + at.table + " " + at.chain) +
                     (at.source == "nftables" ? " handle " : " rule ") + std::to_string(o.handle);
        if (!o.target.empty()) {
            row.detail += " -> " + safe(o.target);
        }
        if (!o.comment.empty()) {
            row.detail += " \"" + safe(o.comment) + "\"";
        }
    }
    if (row.uncertain) {
        row.detail += " (uncertain)";
    }
    row.explanation = safe(explain(c, r.vip, process));
    return row;
}

std::string padded(const std::string& s, std::size_t width) {
    return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

}  // namespace

std::string_view query_usage() { return kUsage; }

std::variant<QueryOptions, std::string> parse_query_args(std::span<const std::string_view> args) {
    QueryOptions o;
    std::optional<std::string> protocol;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view a = args[i];
        std::optional<std::string> value;
        auto take = [&](std::string_view name) -> std::optional<std::string> {
            if (a == name) {
                if (i + 1 >= args.size()) {
                    return std::nullopt;
                }
                return std::string(args[++i]);
            }
            return std::string(a.substr(name.size() + 1));  // "--name=value"
        };
        const auto is = [&](std::string_view name) {
            return a == name ||
                   (a.starts_with(name) && a.size() > name.size() && a[name.size()] == '=');
        };
        if (is("--protocol")) {
            value = take("--protocol");
            if (!value) {
                return std::string("option --protocol needs a value (tcp, udp or all)");
            }
            protocol = *value;
        } else if (is("--config")) {
            value = take("--config");
            if (!value || value->empty()) {
                return std::string("option --config needs a file");
            }
            o.config = *value;
        } else if (a == "--explain") {
            o.explain = true;
        } else if (a == "--json") {
            o.json = true;
        } else if (a == "--all") {
            o.all = true;
        } else if (a == "--help" || a == "-h") {
            o.help = true;
        } else if (a.starts_with("-") && a.size() > 1) {
            return "unknown option '" + safe(a) + "' (see vipportd query --help)";
        } else if (!o.target.empty()) {
            return "more than one VIP given ('" + safe(o.target) + "', '" + safe(a) +
                   "'); use --all for every registered VIP";
        } else if (a.empty()) {
            return std::string("the VIP is empty (expected a registered uuid or an address)");
        } else {
            o.target = std::string(a);
        }
    }
    if (protocol) {
        std::string lower;
        for (const char c : *protocol) {
            lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
        if (lower == "all") {
            o.protocols = {Protocol::tcp, Protocol::udp};
        } else if (const auto p = parse_protocol(lower)) {
            o.protocols = {*p};
        } else {
            return "unknown protocol '" + safe(*protocol) + "' (tcp, udp or all)";
        }
    }
    if (o.help) {
        return o;
    }
    if (o.all && !o.target.empty()) {
        return "give either a VIP or --all, not both";
    }
    if (!o.all && o.target.empty()) {
        return std::string("which VIP? give a registered uuid or an address, or --all");
    }
    return o;
}

bool use_color(int fd) {
    const char* no_color = std::getenv("NO_COLOR");
    if (no_color != nullptr && *no_color != '\0') {
        return false;
    }
    return ::isatty(fd) == 1;
}

std::string render_table(const ClaimsReport& r, const TableStyle& style) {
    const auto bold = [&](const std::string& s) {
        return style.color ? "\x1b[1m" + s + "\x1b[0m" : s;
    };
    const auto yellow = [&](const std::string& s) {
        return style.color ? "\x1b[33m" + s + "\x1b[0m" : s;
    };
    const auto dim = [&](const std::string& s) {
        return style.color ? "\x1b[2m" + s + "\x1b[0m" : s;
    };

    std::string out = bold("VIP " + r.vip.ip.to_string());
    if (r.vip.uuid != r.vip.ip.to_string()) {
        out += "  uuid " + safe(r.vip.uuid);
    }
    out += "  netns " + (r.vip.netns.empty() ? std::string("(own)") : safe(r.vip.netns));
    out += "  scan #" + std::to_string(r.sequence) + " " + iso_time(r.taken) + "\n";

    std::vector<Row> rows;
    for (const auto& p : r.protocols) {
        for (const auto& c : p.claims) {
            rows.push_back(row_of(c, r));
        }
    }
    const Row header{"PROTO", "PORTS", "CLAIM", "HOLDER", "DETAIL", false, {}};
    // Column widths; a very long port list does not widen every row (it overflows its own).
    constexpr std::size_t kMaxPortsWidth = 24;
    std::size_t w_proto = header.protocol.size();
    std::size_t w_ports = header.ports.size();
    std::size_t w_claim = header.claim.size();
    std::size_t w_holder = header.holder.size();
    for (const auto& row : rows) {
        w_proto = std::max(w_proto, row.protocol.size());
        w_ports = std::max(w_ports, std::min(row.ports.size(), kMaxPortsWidth));
        w_claim = std::max(w_claim, row.claim.size());
        w_holder = std::max(w_holder, row.holder.size());
    }
    const auto line = [&](const Row& row) {
        std::string l = padded(row.protocol, w_proto) + "  " + padded(row.ports, w_ports) + "  " +
                        padded(row.claim, w_claim) + "  " + padded(row.holder, w_holder) + "  " +
                        row.detail;
        while (!l.empty() && l.back() == ' ') {
            l.pop_back();
        }
        return l;
    };
    if (rows.empty()) {
        out += "no used ports\n";
    } else {
        out += bold(line(header)) + "\n";
        for (const auto& row : rows) {
            out += (row.uncertain ? yellow(line(row)) : line(row)) + "\n";
            if (style.explain) {
                out += dim("    " + row.explanation) + "\n";
            }
        }
    }
    for (const auto& p : r.protocols) {
        const auto ranges = port_ranges(p.used);
        out += "used " + std::string(to_string(p.protocol)) + ": " +
               (ranges.empty() ? std::string("none") : joined(ranges, ",")) + "\n";
    }
    return out;
}

int run_query(std::span<const std::string_view> args,
              const QueryRenderers& renderers,
              std::ostream& out,
              std::ostream& err,
              std::optional<bool> color) {
    auto parsed = parse_query_args(args);
    if (const auto* e = std::get_if<std::string>(&parsed)) {
        err << "vipportd query: " << *e << "\n";
        return 2;
    }
    const QueryOptions o = std::get<QueryOptions>(std::move(parsed));
    if (o.help) {
        out << kUsage;
        return 0;
    }
    // Sources log through spdlog: keep stdout for the answer, and only warnings and worse.
    setup_logging(spdlog::level::warn, LogFormat::text, true);

    Config config;
    std::string config_name = "built-in default";
    std::shared_ptr<const VipRegistry> registry;
    try {
        std::optional<std::filesystem::path> file;
        if (o.config) {
            file = *o.config;
        } else if (std::error_code ec; std::filesystem::exists(kDefaultConfig, ec)) {
            file = std::filesystem::path(kDefaultConfig);
        }
        if (file) {
            config = load_config(*file);
            config_name = file->string();
        } else {
            config = default_config();
            validate(config);
        }
        // The daemon's registry: the files' VIPs plus the registrations (agent/vip_catalog.hpp),
        // read only. Problems are warnings: the VIPs that could be read still resolve.
        const auto warn = [&err](const std::string& what) {
            err << "vipportd query: warning: " << safe(what) << "\n";
        };
        std::optional<VipsDir> dir;
        if (!config.vips_dir.empty()) {
            dir.emplace(config.vips_dir);
            for (const auto& e : dir->rescan().errors) {
                warn("vips_dir: " + e);
            }
        }
        std::vector<std::string> conflicts;
        auto statics =
            static_vips(config.vips, config.source_file, dir ? &*dir : nullptr, &conflicts);
        for (const auto& c : conflicts) {
            warn("vips_dir: " + c);
        }
        std::unique_ptr<VipStore> store;
        if (!config.state_dir.empty()) {
            store = std::make_unique<VipStore>(config.state_dir);
            if (auto r = store->load(); !r) {
                warn("registered VIPs not read: " + netlink::to_string(r.error()));
            }
        }
        VipCatalog catalog(std::move(store));
        for (const auto& w : catalog.set_static(std::move(statics))) {
            warn("VIP conflict: " + w);
        }
        registry = catalog.registry();
    } catch (const std::exception& e) {
        err << "vipportd query: " << safe(e.what()) << "\n";
        return 2;
    }

    std::vector<Vip> vips;
    if (o.all) {
        vips = registry->all();
    } else if (auto v = registry->resolve(o.target)) {
        vips.push_back(std::move(*v));
    } else {
        err << "vipportd query: unknown VIP '" << safe(o.target) << "': not a registered uuid ("
            << registry->size() << " VIPs; configuration " << safe(config_name)
            << ") and not a unicast IPv4/IPv6 address\n";
        return 2;
    }

    // One scan per namespace the VIPs live in, all from the same request (as the daemon does).
    std::vector<SnapshotPtr> snaps;
    try {
        if (!vips.empty()) {
            std::vector<std::string> netns;
            netns.reserve(vips.size());
            for (const auto& v : vips) {
                netns.push_back(v.netns);
            }
            // The own namespace, and a scanner inside each other namespace a VIP names
            // (agent/namespaces.hpp; entering one needs CAP_SYS_ADMIN).
            NamespaceScanners scanners(std::make_shared<SnapshotService>(make_sources(config)),
                                       [&config](const std::filesystem::path& proc_net) {
                                           return make_sources(config, proc_net);
                                       });
            std::promise<std::vector<SnapshotPtr>> done;
            auto result = done.get_future();
            scanners.async_fresh_many(std::move(netns), [&done](std::vector<SnapshotPtr> s) {
                done.set_value(std::move(s));
            });
            snaps = result.get();
            scanners.shutdown();
        }
    } catch (const std::exception& e) {
        err << "vipportd query: the kernel scan failed: " << safe(e.what()) << "\n";
        return 1;
    }

    ProcessIndex processes;
    std::vector<ClaimsReport> reports;
    int status = 0;
    for (std::size_t i = 0; i < vips.size(); ++i) {
        const Vip& vip = vips[i];
        const Snapshot& snap = *snaps[i];
        const std::string who =
            "VIP " + safe(vip.uuid) +
            (vip.uuid == vip.ip.to_string() ? "" : " (" + vip.ip.to_string() + ")");
        if (const auto* failed = snap.failed_required()) {
            err << "vipportd query: " << who << ": kernel source " << safe(failed->name)
                << " failed: " << safe(failed->error) << "\n";
            status = 1;
            continue;
        }
        for (const auto& s : snap.sources) {
            if (!s.ok) {
                err << "vipportd query: warning: " << who << ": optional source " << safe(s.name)
                    << " failed: " << safe(s.error) << "\n";
            }
        }
        reports.push_back(make_claims_report(vip, snap, o.protocols, &processes));
    }

    if (o.json) {
        if (o.all) {
            out << renderers.many(reports) << "\n";
        } else if (!reports.empty()) {
            out << renderers.one(reports.front()) << "\n";
        }
    } else {
        const TableStyle style{color.value_or(use_color(STDOUT_FILENO)), o.explain};
        for (std::size_t i = 0; i < reports.size(); ++i) {
            out << (i > 0 ? "\n" : "") << render_table(reports[i], style);
        }
        if (o.all && vips.empty()) {
            out << "no registered VIPs in " << safe(config_name) << "\n";
        }
    }
    out.flush();
    return status;
}

}  // namespace vipportd::agent
