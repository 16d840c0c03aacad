#include "netlink/xt_blobs.hpp"

#include <cstddef>
#include <cstdio>
#include <cstring>

#include <arpa/inet.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/xt_TPROXY.h>
#include <linux/netfilter/xt_comment.h>
#include <linux/netfilter/xt_multiport.h>
#include <linux/netfilter/xt_tcpudp.h>

// Layouts below are spelled out as byte offsets (static_assert-ed against the uapi structs) so that
// a blob is read with memcpy only (no alignment assumptions) and every size is visible next to the
// check that guards it. The sizes are sizeof() of the uapi structs on Linux (all members are
// naturally aligned, so the layout is the same on every ABI the kernel supports); nf_tables compat
// pads NFTA_MATCH_INFO/NFTA_TARGET_INFO to XT_ALIGN, so every decoder accepts longer blobs.

namespace vipportd::netlink::xt {

namespace {

// include/uapi/linux/netfilter/xt_tcpudp.h
//   struct xt_tcp { u16 spts[2]; u16 dpts[2]; u8 option, flg_mask, flg_cmp, invflags; }  = 12
//   struct xt_udp { u16 spts[2]; u16 dpts[2]; u8 invflags; }  = 10 (9 + tail padding to 2)
constexpr std::size_t kXtTcpSize = 12;
constexpr std::size_t kXtUdpSize = 10;
constexpr std::uint8_t kInvSrcPt = 0x01;    // XT_TCP_INV_SRCPT / XT_UDP_INV_SRCPT
constexpr std::uint8_t kInvDstPt = 0x02;    // XT_TCP_INV_DSTPT / XT_UDP_INV_DSTPT
constexpr std::uint8_t kTcpInvMask = 0x0f;  // XT_TCP_INV_MASK
constexpr std::uint8_t kUdpInvMask = 0x03;  // XT_UDP_INV_MASK

// include/uapi/linux/netfilter/xt_multiport.h
//   struct xt_multiport    { u8 flags; u8 count; u16 ports[15]; }                          = 32
//   struct xt_multiport_v1 { u8 flags; u8 count; u16 ports[15]; u8 pflags[15]; u8 invert; } = 48
constexpr std::size_t kMultiPorts = 15;  // XT_MULTI_PORTS
constexpr std::size_t kMultiportV0Size = 32;
constexpr std::size_t kMultiportV1Size = 48;
constexpr std::size_t kMultiportPortsOff = 2;
constexpr std::size_t kMultiportPflagsOff = 32;
constexpr std::size_t kMultiportInvertOff = 47;

// include/uapi/linux/netfilter/nf_nat.h
//   struct nf_nat_ipv4_range { u32 flags; be32 min_ip, max_ip; be16 min, max; }          = 16
//   struct nf_nat_ipv4_multi_range_compat { u32 rangesize; nf_nat_ipv4_range range[1]; } = 20
//   struct nf_nat_range  { u32 flags; nf_inet_addr min_addr, max_addr; be16 min_proto, max_proto; }
//   = 40 struct nf_nat_range2 { ...nf_nat_range; be16 base_proto; }  = 44 (42 + tail padding to 4)
constexpr std::size_t kNatCompatSize = 20;
constexpr std::size_t kNatRangeSize = 40;
constexpr std::size_t kNatRange2Size = 44;
constexpr std::uint32_t kNatMapIps = 1U << 0;          // NF_NAT_RANGE_MAP_IPS
constexpr std::uint32_t kNatProtoSpecified = 1U << 1;  // NF_NAT_RANGE_PROTO_SPECIFIED

// include/uapi/linux/netfilter/xt_TPROXY.h
//   struct xt_tproxy_target_info    { u32 mark_mask, mark_value; be32 laddr; be16 lport; }       =
//   16 struct xt_tproxy_target_info_v1 { u32 mark_mask, mark_value; nf_inet_addr laddr; be16 lport;
//   } = 28
constexpr std::size_t kTproxyV0Size = 16;
constexpr std::size_t kTproxyV1Size = 28;

// include/uapi/linux/netfilter/xt_comment.h: struct xt_comment_info { char comment[256]; }
constexpr std::size_t kCommentSize = 256;  // XT_MAX_COMMENT_LEN

// The offsets above, checked against the uapi headers themselves.
static_assert(sizeof(xt_tcp) == kXtTcpSize && offsetof(xt_tcp, invflags) == 11);
static_assert(sizeof(xt_udp) == kXtUdpSize && offsetof(xt_udp, invflags) == 8);
static_assert(sizeof(xt_multiport) == kMultiportV0Size && XT_MULTI_PORTS == kMultiPorts);
static_assert(sizeof(xt_multiport_v1) == kMultiportV1Size &&
              offsetof(xt_multiport_v1, pflags) == kMultiportPflagsOff &&
              offsetof(xt_multiport_v1, invert) == kMultiportInvertOff);
static_assert(sizeof(nf_nat_ipv4_multi_range_compat) == kNatCompatSize);
static_assert(sizeof(nf_nat_range) == kNatRangeSize && offsetof(nf_nat_range, max_addr) == 20 &&
              offsetof(nf_nat_range, min_proto) == 36);
static_assert(sizeof(nf_nat_range2) == kNatRange2Size);
static_assert(sizeof(xt_tproxy_target_info) == kTproxyV0Size &&
              offsetof(xt_tproxy_target_info, lport) == 12);
static_assert(sizeof(xt_tproxy_target_info_v1) == kTproxyV1Size &&
              offsetof(xt_tproxy_target_info_v1, lport) == 24);
static_assert(sizeof(xt_comment_info) == kCommentSize);
static_assert(NF_NAT_RANGE_MAP_IPS == kNatMapIps &&
              NF_NAT_RANGE_PROTO_SPECIFIED == kNatProtoSpecified);

using Bytes = std::span<const std::uint8_t>;

std::uint16_t host_u16(Bytes b, std::size_t off) {
    std::uint16_t v = 0;
    std::memcpy(&v, b.data() + off, sizeof v);
    return v;
}

std::uint32_t host_u32(Bytes b, std::size_t off) {
    std::uint32_t v = 0;
    std::memcpy(&v, b.data() + off, sizeof v);
    return v;
}

std::uint16_t net_u16(Bytes b, std::size_t off) { return ntohs(host_u16(b, off)); }

Result<void> need(Bytes blob, std::size_t size, std::string_view what) {
    if (blob.size() < size) {
        return Error::of(Errc::truncated, std::string(what) + ": blob of " +
                                              std::to_string(blob.size()) + " bytes, need " +
                                              std::to_string(size));
    }
    return {};
}

Result<TcpUdpMatch> decode_tcpudp(Bytes blob,
                                  std::size_t size,
                                  std::size_t invflags_off,
                                  std::uint8_t inv_mask,
                                  std::string_view what) {
    if (auto r = need(blob, size, what); !r) {
        return r.error();
    }
    TcpUdpMatch m;
    m.sports = {host_u16(blob, 0), host_u16(blob, 2)};
    m.dports = {host_u16(blob, 4), host_u16(blob, 6)};
    const std::uint8_t inv = blob[invflags_off];
    if ((inv & ~inv_mask) != 0) {
        // The kernel's checkentry rejects unknown bits (net/netfilter/xt_tcpudp.c), so this blob
        // did not come from a loaded rule.
        char buf[8];
        std::snprintf(buf, sizeof buf, "0x%02x", inv);
        return Error::of(Errc::malformed, std::string(what) + ": unknown invflags " + buf);
    }
    m.invert_sports = (inv & kInvSrcPt) != 0;
    m.invert_dports = (inv & kInvDstPt) != 0;
    return m;
}

std::string address_part(const NatTarget& t, bool bracket) {
    if (!t.min_addr) {
        return {};
    }
    std::string s = t.min_addr->to_string();
    if (t.max_addr && *t.max_addr != *t.min_addr) {
        s += "-" + t.max_addr->to_string();
    }
    // IPv6 with a port: "[a-b]:p", as iptables' libxt_DNAT prints it.
    return bracket ? "[" + s + "]" : s;
}

void append_ports(std::string& s, const PortSpan& p) {
    s += ':';
    s += std::to_string(p.first);
    if (p.last != p.first) {
        s += '-';
        s += std::to_string(p.last);
    }
}

// Fills t from the flags/addresses/ports of nf_nat_range(2) or of one nf_nat_ipv4_range.
// addr_len is 4 for nf_nat_ipv4_range/IPv4 nf_inet_addr (union member .ip) and 16 for IPv6.
NatTarget nat_from(Bytes blob,
                   std::size_t flags_off,
                   std::size_t min_addr_off,
                   std::size_t max_addr_off,
                   std::size_t min_port_off,
                   std::size_t max_port_off,
                   Family family) {
    NatTarget t;
    t.flags = host_u32(blob, flags_off);
    if ((t.flags & kNatMapIps) != 0) {
        t.min_addr = InetAddress::from_bytes(family, blob.data() + min_addr_off);
        t.max_addr = InetAddress::from_bytes(family, blob.data() + max_addr_off);
    }
    if ((t.flags & kNatProtoSpecified) != 0) {
        t.ports = PortSpan{net_u16(blob, min_port_off), net_u16(blob, max_port_off)};
    }
    return t;
}

Result<NatTarget> decode_compat(Bytes blob, std::string_view what) {
    if (auto r = need(blob, kNatCompatSize, what); !r) {
        return r.error();
    }
    // net/netfilter/xt_nat.c xt_nat_checkentry_v0: "multiple ranges no longer supported".
    if (const std::uint32_t n = host_u32(blob, 0); n != 1) {
        return Error::of(Errc::malformed,
                         std::string(what) + ": rangesize " + std::to_string(n) + ", expected 1");
    }
    // range[0] at offset 4: flags 4, min_ip 8, max_ip 12, min 16, max 18.
    return nat_from(blob, 4, 8, 12, 16, 18, Family::v4);
}

Result<NatTarget> decode_range(Bytes blob, std::size_t size, Family family, std::string_view what) {
    if (auto r = need(blob, size, what); !r) {
        return r.error();
    }
    // flags 0, min_addr 4, max_addr 20, min_proto 36, max_proto 38 (base_proto 40 in range2,
    // used only with NF_NAT_RANGE_PROTO_OFFSET, which does not change the claimed ports).
    return nat_from(blob, 0, 4, 20, 36, 38, family);
}

std::string family_tag(Family f) { return f == Family::v4 ? "IPv4" : "IPv6"; }

}  // namespace

std::string NatTarget::to_string() const {
    const bool v6 = min_addr && min_addr->family == Family::v6;
    std::string s = address_part(*this, v6 && ports.has_value());
    if (ports) {
        append_ports(s, *ports);
    }
    return s;
}

std::string TproxyTarget::to_string() const {
    std::string s;
    if (address) {
        s = address->family == Family::v6 && port != 0 ? "[" + address->to_string() + "]"
                                                       : address->to_string();
    }
    if (port != 0) {
        s += ":" + std::to_string(port);
    }
    return s;
}

Result<TcpUdpMatch> decode_tcp(std::span<const std::uint8_t> blob) {
    auto m = decode_tcpudp(blob, kXtTcpSize, 11, kTcpInvMask, "xt_tcp");
    if (m) {
        // option (8), flg_mask (9): tcp options/flags tests narrow the match but not the ports.
        m->tcp_flags_or_options = blob[8] != 0 || blob[9] != 0;
    }
    return m;
}

Result<TcpUdpMatch> decode_udp(std::span<const std::uint8_t> blob) {
    return decode_tcpudp(blob, kXtUdpSize, 8, kUdpInvMask, "xt_udp");
}

Result<MultiportMatch> decode_multiport(std::span<const std::uint8_t> blob, std::uint8_t revision) {
    if (revision > 1) {
        return Error::of(Errc::malformed,
                         "multiport: unsupported revision " + std::to_string(revision));
    }
    const bool v1 = revision == 1;
    const std::string_view what = v1 ? "xt_multiport_v1" : "xt_multiport";
    if (auto r = need(blob, v1 ? kMultiportV1Size : kMultiportV0Size, what); !r) {
        return r.error();
    }
    MultiportMatch m;
    const std::uint8_t flags = blob[0];
    if (flags > 2) {  // XT_MULTIPORT_SOURCE 0, _DESTINATION 1, _EITHER 2
        return Error::of(Errc::malformed,
                         std::string(what) + ": unknown flags " + std::to_string(flags));
    }
    m.direction = static_cast<MultiportMatch::Direction>(flags);
    const std::size_t count = blob[1];
    if (count > kMultiPorts) {  // net/netfilter/xt_multiport.c check(): count <= XT_MULTI_PORTS
        return Error::of(Errc::malformed,
                         std::string(what) + ": count " + std::to_string(count) + " > 15");
    }
    for (std::size_t i = 0; i < count; ++i) {
        const std::uint16_t port = host_u16(blob, kMultiportPortsOff + 2 * i);
        // Rev 1: pflags[i] = 1 makes ports[i]..ports[i+1] one range (xt_multiport.c
        // ports_match_v1).
        if (v1 && blob[kMultiportPflagsOff + i] != 0) {
            if (i + 1 >= count) {
                return Error::of(Errc::malformed, std::string(what) + ": range at port index " +
                                                      std::to_string(i) + " has no end");
            }
            ++i;
            m.ports.push_back({port, host_u16(blob, kMultiportPortsOff + 2 * i)});
        } else {
            m.ports.push_back({port, port});
        }
    }
    m.invert = v1 && blob[kMultiportInvertOff] != 0;
    return m;
}

Result<NatTarget> decode_nat(std::string_view name,
                             std::uint8_t revision,
                             Family family,
                             std::span<const std::uint8_t> blob) {
    const std::string what =
        std::string(name) + " rev " + std::to_string(revision) + " " + family_tag(family);
    if (name == "DNAT" || name == "SNAT") {
        // net/netfilter/xt_nat.c: rev 0 IPv4 only (compat), rev 1 nf_nat_range, rev 2
        // nf_nat_range2.
        switch (revision) {
            case 0:
                if (family != Family::v4) {
                    break;
                }
                return decode_compat(blob, what + " (nf_nat_ipv4_multi_range_compat)");
            case 1:
                return decode_range(blob, kNatRangeSize, family, what + " (nf_nat_range)");
            case 2:
                return decode_range(blob, kNatRange2Size, family, what + " (nf_nat_range2)");
            default:
                break;
        }
    } else if (name == "REDIRECT" || name == "NETMAP") {
        // net/netfilter/xt_REDIRECT.c, xt_NETMAP.c: rev 0 only; IPv4 uses the compat struct,
        // IPv6 nf_nat_range.
        if (revision == 0) {
            return family == Family::v4
                       ? decode_compat(blob, what + " (nf_nat_ipv4_multi_range_compat)")
                       : decode_range(blob, kNatRangeSize, family, what + " (nf_nat_range)");
        }
    } else {
        return Error::of(Errc::malformed, "decode_nat: not a NAT target: " + std::string(name));
    }
    return Error::of(Errc::malformed, what + ": unsupported revision/family");
}

Result<TproxyTarget> decode_tproxy(std::uint8_t revision,
                                   Family family,
                                   std::span<const std::uint8_t> blob) {
    TproxyTarget t;
    std::size_t addr_off = 8;
    std::size_t port_off = 0;
    if (revision == 0 && family == Family::v4) {
        // laddr 8 (be32), lport 12
        if (auto r = need(blob, kTproxyV0Size, "TPROXY rev 0 (xt_tproxy_target_info)"); !r) {
            return r.error();
        }
        port_off = 12;
    } else if (revision == 1) {
        // laddr 8 (nf_inet_addr), lport 24
        if (auto r = need(blob, kTproxyV1Size, "TPROXY rev 1 (xt_tproxy_target_info_v1)"); !r) {
            return r.error();
        }
        port_off = 24;
    } else {
        return Error::of(Errc::malformed, "TPROXY rev " + std::to_string(revision) + " " +
                                              family_tag(family) + ": unsupported revision/family");
    }
    const InetAddress a = InetAddress::from_bytes(family, blob.data() + addr_off);
    if (!a.is_unspecified()) {
        t.address = a;
    }
    t.port = net_u16(blob, port_off);
    return t;
}

Result<std::string> decode_comment(std::span<const std::uint8_t> blob) {
    if (auto r = need(blob, kCommentSize, "xt_comment_info"); !r) {
        return r.error();
    }
    const auto* p = reinterpret_cast<const char*>(blob.data());
    // The kernel does not enforce the terminator (xt_comment.c has no checkentry): stop at 256.
    return std::string(p, strnlen(p, kCommentSize));
}

}  // namespace vipportd::netlink::xt
