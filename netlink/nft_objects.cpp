#include "netlink/nft_objects.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <ostream>
#include <stdexcept>

namespace vipportd::netlink::nft {

namespace {

template <class... Ts>
struct Overloaded : Ts... {
    using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// Register data as libnftnl prints it: 32-bit words read in host (little-endian) order from the
// zero-padded network-order bytes, "0x%.8x " each (kernel.md §2.3; libnftnl src/expr/data_reg.c).
std::string words(std::span<const std::uint8_t> data, bool prefix_0x) {
    std::string out;
    for (std::size_t i = 0; i < data.size(); i += 4) {
        std::uint32_t w = 0;
        for (std::size_t j = 0; j < 4 && i + j < data.size(); ++j) {
            w |= std::uint32_t{data[i + j]} << (8 * j);
        }
        char buf[16];
        std::snprintf(buf, sizeof buf, prefix_0x ? "0x%.8x " : "%.8x ", w);
        out += buf;
    }
    return out;
}

std::string reg(std::uint32_t r) { return "reg " + std::to_string(r); }

std::string hex(std::uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%x", v);
    return buf;
}

// enum nft_meta_keys order (linux/netfilter/nf_tables.h); names as libnftnl src/expr/meta.c.
constexpr std::array<const char*, 36> kMetaKeys = {
    "len",         "protocol",  "priority",  "mark",     "iif",         "oif",
    "iifname",     "oifname",   "iiftype",   "oiftype",  "skuid",       "skgid",
    "nftrace",     "rtclassid", "secmark",   "nfproto",  "l4proto",     "bri_iifname",
    "bri_oifname", "pkttype",   "cpu",       "iifgroup", "oifgroup",    "cgroup",
    "prandom",     "secpath",   "iifkind",   "oifkind",  "bri_iifpvid", "bri_iifvproto",
    "time_ns",     "time_day",  "time_hour", "sdif",     "sdifname",    "bri_broute"};

// enum nft_ct_keys order; names as libnftnl src/expr/ct.c.
constexpr std::array<const char*, 23> kCtKeys = {
    "state",     "direction",  "status",  "mark",    "secmark",  "expiration",
    "helper",    "l3protocol", "src",     "dst",     "protocol", "proto_src",
    "proto_dst", "label",      "packets", "bytes",   "avgpkt",   "zone",
    "event",     "src_ip",     "dst_ip",  "src_ip6", "dst_ip6"};

std::string key_name(std::uint32_t key, const auto& names) {
    return key < names.size() ? names[key] : std::to_string(key);
}

const char* cmp_op(std::uint32_t op) {
    constexpr std::array<const char*, 6> kOps = {"eq", "neq", "lt", "lte", "gt", "gte"};
    return op < kOps.size() ? kOps[op] : "?";
}

const char* payload_base(std::uint32_t base) {
    constexpr std::array<const char*, 4> kBases = {"link", "network", "transport", "inner"};
    return base < kBases.size() ? kBases[base] : "unknown";
}

}  // namespace

RegData::RegData(std::span<const std::uint8_t> bytes) {
    auto r = from(bytes);
    if (!r) {
        throw std::length_error("RegData of " + std::to_string(bytes.size()) + " bytes, at most " +
                                std::to_string(kCapacity));
    }
    *this = *r;
}

std::optional<RegData> RegData::from(std::span<const std::uint8_t> bytes) noexcept {
    if (bytes.size() > kCapacity) {
        return std::nullopt;
    }
    RegData r;
    std::copy(bytes.begin(), bytes.end(), r.bytes_.begin());
    r.size_ = static_cast<std::uint8_t>(bytes.size());
    return r;
}

XtName::XtName(std::string_view name) {
    auto n = from(name);
    if (!n) {
        throw std::length_error("x_tables name '" + std::string(name) + "' longer than " +
                                std::to_string(kMaxLength));
    }
    *this = *n;
}

std::optional<XtName> XtName::from(std::string_view name) noexcept {
    if (name.size() > kMaxLength) {
        return std::nullopt;
    }
    XtName n;
    std::copy(name.begin(), name.end(), n.chars_.begin());
    return n;
}

std::string_view XtName::view() const noexcept {
    const auto end = std::find(chars_.begin(), chars_.end(), '\0');
    return {chars_.data(), static_cast<std::size_t>(end - chars_.begin())};
}

std::ostream& operator<<(std::ostream& os, const XtName& n) { return os << n.view(); }

std::string meta_key_name(std::uint32_t key) { return key_name(key, kMetaKeys); }

std::string ct_key_name(std::uint32_t key) { return key_name(key, kCtKeys); }

std::string family_name(std::uint8_t family) {
    switch (family) {
        case kFamilyInet:
            return "inet";
        case kFamilyIpv4:
            return "ip";
        case kFamilyArp:
            return "arp";
        case kFamilyNetdev:
            return "netdev";
        case kFamilyBridge:
            return "bridge";
        case kFamilyIpv6:
            return "ip6";
        default:
            return std::to_string(family);
    }
}

std::string to_string(const Verdict& v) {
    switch (v.code) {
        case kVerdictDrop:
            return "drop";
        case kVerdictAccept:
            return "accept";
        case kVerdictContinue:
            return "continue";
        case kVerdictBreak:
            return "break";
        case kVerdictJump:
            return "jump -> " + v.chain;
        case kVerdictGoto:
            return "goto -> " + v.chain;
        case kVerdictReturn:
            return "return";
        default:
            break;
    }
    // NF_STOLEN 2, NF_QUEUE 3 (the queue number in the upper 16 bits, linux/netfilter.h).
    if (v.code >= 0 && (v.code & 0xff) == 3) {
        return "queue";
    }
    return "verdict " + std::to_string(v.code);
}

std::string_view expr_name(const Expr& e) {
    return std::visit(Overloaded{
                          [](const Payload&) -> std::string_view { return "payload"; },
                          [](const Meta&) -> std::string_view { return "meta"; },
                          [](const Cmp&) -> std::string_view { return "cmp"; },
                          [](const Range&) -> std::string_view { return "range"; },
                          [](const Lookup&) -> std::string_view { return "lookup"; },
                          [](const Bitwise&) -> std::string_view { return "bitwise"; },
                          [](const Immediate&) -> std::string_view { return "immediate"; },
                          [](const Nat&) -> std::string_view { return "nat"; },
                          [](const Redir&) -> std::string_view { return "redir"; },
                          [](const Tproxy&) -> std::string_view { return "tproxy"; },
                          [](const Match&) -> std::string_view { return "match"; },
                          [](const Target&) -> std::string_view { return "target"; },
                          [](const Counter&) -> std::string_view { return "counter"; },
                          [](const Ct&) -> std::string_view { return "ct"; },
                          [](const Unknown& u) -> std::string_view { return u.name; },
                      },
                      e);
}

const Table* Ruleset::find_table(std::uint8_t family, std::string_view table) const {
    for (const auto& t : tables) {
        if (t.family == family && t.name == table) {
            return &t;
        }
    }
    return nullptr;
}

const Chain* Ruleset::find_chain(std::uint8_t family,
                                 std::string_view table,
                                 std::string_view chain) const {
    for (const auto& c : chains) {
        if (c.family == family && c.table == table && c.name == chain) {
            return &c;
        }
    }
    return nullptr;
}

const Set* Ruleset::find_set(std::uint8_t family,
                             std::string_view table,
                             std::string_view set) const {
    for (const auto& s : sets) {
        if (s.family == family && s.table == table && s.name == set) {
            return &s;
        }
    }
    return nullptr;
}

std::string to_debug_string(const Expr& e) {
    const std::string body = std::visit(
        Overloaded{
            [](const Payload& p) {
                if (p.sreg) {
                    return "payload write " + reg(*p.sreg) + " => " + std::to_string(p.len) +
                           "b @ " + payload_base(p.base) + " header + " + std::to_string(p.offset) +
                           " ";
                }
                return "payload load " + std::to_string(p.len) + "b @ " + payload_base(p.base) +
                       " header + " + std::to_string(p.offset) + " => " + reg(p.dreg.value_or(0)) +
                       " ";
            },
            [](const Meta& m) {
                if (m.sreg) {
                    return "meta set " + key_name(m.key, kMetaKeys) + " with " + reg(*m.sreg) + " ";
                }
                return "meta load " + key_name(m.key, kMetaKeys) + " => " +
                       reg(m.dreg.value_or(0)) + " ";
            },
            [](const Cmp& c) {
                return std::string("cmp ") + cmp_op(c.op) + " " + reg(c.sreg) + " " +
                       words(c.data, true);
            },
            [](const Range& r) {
                return std::string("range ") + (r.op == kRangeNeq ? "neq " : "eq ") + reg(r.sreg) +
                       " " + words(r.from, true) + words(r.to, true);
            },
            [](const Lookup& l) {
                std::string s = "lookup " + reg(l.sreg) + " set " + l.set + " ";
                if (l.dreg) {
                    s += "d" + reg(*l.dreg) + " ";
                }
                return s + hex(l.flags) + " ";
            },
            [](const Bitwise& b) {
                if (b.op == kBitwiseMaskXor) {
                    return "bitwise " + reg(b.dreg) + " = ( " + reg(b.sreg) + " & " +
                           words(b.mask, true) + ") ^ " + words(b.xor_value, true);
                }
                return "bitwise " + reg(b.dreg) + " = ( " + reg(b.sreg) +
                       (b.op == kBitwiseLshift ? " << " : " >> ") + words(b.data, true) + ") ";
            },
            [](const Immediate& i) {
                if (const auto* v = i.verdict()) {
                    return "immediate " + reg(i.dreg) + " " + to_string(*v) + " ";
                }
                return "immediate " + reg(i.dreg) + " " + words(*i.data(), true);
            },
            [](const Nat& n) {
                std::string s = std::string("nat ") + (n.type == kNatDnat ? "dnat " : "snat ") +
                                family_name(static_cast<std::uint8_t>(n.family)) + " ";
                if (n.reg_addr_min) {
                    s += "addr_min " + reg(*n.reg_addr_min) + " ";
                }
                if (n.reg_addr_max) {
                    s += "addr_max " + reg(*n.reg_addr_max) + " ";
                }
                if (n.reg_proto_min) {
                    s += "proto_min " + reg(*n.reg_proto_min) + " ";
                }
                if (n.reg_proto_max) {
                    s += "proto_max " + reg(*n.reg_proto_max) + " ";
                }
                if (n.flags != 0) {
                    s += "flags " + hex(n.flags) + " ";
                }
                return s;
            },
            [](const Redir& r) {
                std::string s = "redir ";
                if (r.reg_proto_min) {
                    s += "proto_min " + reg(*r.reg_proto_min) + " ";
                }
                if (r.reg_proto_max) {
                    s += "proto_max " + reg(*r.reg_proto_max) + " ";
                }
                if (r.flags != 0) {
                    s += "flags " + hex(r.flags) + " ";
                }
                return s;
            },
            [](const Tproxy& t) {
                std::string s = "tproxy " + family_name(static_cast<std::uint8_t>(t.family)) + " ";
                if (t.reg_addr) {
                    s += "addr " + reg(*t.reg_addr) + " ";
                }
                if (t.reg_port) {
                    s += "port " + reg(*t.reg_port) + " ";
                }
                return s;
            },
            [](const Match& m) {
                return "match name " + m.name.str() + " rev " + std::to_string(m.rev) + " ";
            },
            [](const Target& t) {
                return "target name " + t.name.str() + " rev " + std::to_string(t.rev) + " ";
            },
            [](const Counter& c) {
                return "counter pkts " + std::to_string(c.packets) + " bytes " +
                       std::to_string(c.bytes) + " ";
            },
            [](const Ct& c) {
                if (c.sreg) {
                    return "ct set " + key_name(c.key, kCtKeys) + " with " + reg(*c.sreg) + " ";
                }
                std::string s =
                    "ct load " + key_name(c.key, kCtKeys) + " => " + reg(c.dreg.value_or(0)) + " ";
                if (c.direction) {
                    s += std::string(", dir ") + (*c.direction == 0 ? "original " : "reply ");
                }
                return s;
            },
            [](const Unknown& u) { return u.name + " "; },
        },
        e);
    return "[ " + body + "]";
}

std::string to_debug_string(const Rule& r) {
    std::string s =
        family_name(r.family) + " " + r.table + " " + r.chain + " " + std::to_string(r.handle);
    if (r.position) {
        s += " " + std::to_string(*r.position);
    }
    s += "\n";
    for (const auto& e : r.exprs) {
        s += "  " + to_debug_string(e) + "\n";
    }
    return s;
}

std::string to_debug_string(const Set& set) {
    std::string s = family_name(set.family) + " " + set.table + " @" + set.name + "\n";
    for (const auto& e : set.elements) {
        s += "\telement " + words(e.key, false);
        if (!e.key_end.empty()) {
            s += " - " + words(e.key_end, false);
        }
        s += " : ";
        if (e.verdict) {
            s += to_string(*e.verdict) + " ";
        } else {
            s += words(e.data, false);
        }
        s += std::to_string(e.flags) + " [end]\n";
    }
    return s;
}

}  // namespace vipportd::netlink::nft
