#include "netlink/sock_diag.hpp"

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>

#include "netlink/bytes.hpp"

namespace vipportd::netlink {

namespace {

// Fixed UAPI layouts we copy with memcpy (linux/inet_diag.h). A mismatch means a header we do
// not understand, so stop the build rather than misread the kernel.
static_assert(sizeof(inet_diag_req_v2) == 56);
static_assert(sizeof(inet_diag_msg) == 72);
static_assert(sizeof(inet_diag_req) == 60);
static_assert(sizeof(inet_diag_sockopt) == 2);

// Attributes we read, up to the highest one we know (the enum is append-only UAPI).
constexpr std::size_t kMaxAttr = INET_DIAG_SOCKOPT;  // 22

constexpr AttributePolicy<kMaxAttr> kPolicy = [] {
    AttributePolicy<kMaxAttr> p{};
    p[INET_DIAG_SKV6ONLY] = 1;                         // u8 (inet_diag_msg_attrs_fill)
    p[INET_DIAG_SOCKOPT] = sizeof(inet_diag_sockopt);  // struct inet_diag_sockopt
    return p;
}();

// A zeroed dump request of the given type with room for payload_len bytes after the header
// (NLM_F_REQUEST|NLM_F_DUMP = 0x301; seq and pid 0, stamped by the transport).
std::vector<std::uint8_t> dump_request(std::uint16_t type, std::size_t payload_len) {
    const std::size_t len = kNlmsghdrSize + payload_len;
    std::vector<std::uint8_t> out(len, 0);
    nlmsghdr h{};
    h.nlmsg_len = static_cast<std::uint32_t>(len);
    h.nlmsg_type = type;
    h.nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | NLM_F_DUMP);
    store(std::span<std::uint8_t>(out), 0, h);
    return out;
}

}  // namespace

std::vector<std::uint8_t> build_inet_diag_request(Family family,
                                                  std::uint8_t protocol,
                                                  std::uint32_t states,
                                                  std::span<const std::uint8_t> bytecode) {
    // nlmsghdr | inet_diag_req_v2 | [nlattr INET_DIAG_REQ_BYTECODE | program | pad]
    if (bytecode.size() > 0xffff - kNlattrSize) {
        throw std::invalid_argument("inet_diag bytecode of " + std::to_string(bytecode.size()) +
                                    " bytes does not fit an nlattr");
    }
    const std::size_t attr_len = bytecode.empty() ? 0 : kNlattrSize + bytecode.size();
    std::vector<std::uint8_t> out =
        dump_request(SOCK_DIAG_BY_FAMILY, sizeof(inet_diag_req_v2) + align4(attr_len));  // 20
    const std::span<std::uint8_t> bytes(out);

    inet_diag_req_v2 req{};
    req.sdiag_family = static_cast<std::uint8_t>(family);  // AF_INET 2 / AF_INET6 10
    req.sdiag_protocol = protocol;
    req.idiag_ext = 0;  // no tcp_info/meminfo: smallest replies (kernel.md §1.1)
    req.idiag_states = states;
    store(bytes, kNlmsghdrSize, req);

    if (!bytecode.empty()) {
        nlattr a{};
        a.nla_len = static_cast<std::uint16_t>(attr_len);
        a.nla_type = INET_DIAG_REQ_BYTECODE;  // 1
        const std::size_t at = kNlmsghdrSize + sizeof(inet_diag_req_v2);
        store(bytes, at, a);
        std::copy(bytecode.begin(), bytecode.end(),
                  out.begin() + static_cast<long>(at + kNlattrSize));
    }
    return out;
}

std::vector<std::uint8_t> build_tcp_compat_request(std::uint32_t states) {
    // nlmsghdr | inet_diag_req (no bytecode: we filter nothing in the kernel, README)
    std::vector<std::uint8_t> out = dump_request(TCPDIAG_GETSOCK, sizeof(inet_diag_req));  // 18
    const std::span<std::uint8_t> bytes(out);

    inet_diag_req req{};
    // Ignored by the dump (AF_UNSPEC, inet_diag_dump_compat); AF_INET keeps the request what
    // libnl-idiag and old ss sent.
    req.idiag_family = AF_INET;
    req.idiag_ext = 0;
    req.idiag_states = states;
    store(bytes, kNlmsghdrSize, req);
    return out;
}

Result<std::vector<SocketEntry>> parse_inet_diag(const Dump& dump, std::uint8_t protocol) {
    std::vector<SocketEntry> out;
    // Upper bound on the message count (each is at least nlmsghdr + inet_diag_msg): one
    // allocation for the whole dump.
    out.reserve(dump.data.size() / (kNlmsghdrSize + sizeof(inet_diag_msg)));
    MessageWalker walk(dump.data);
    while (true) {
        auto next = walk.next();
        if (!next) {
            Error e = next.error();
            e.detail = "sock_diag dump: " + e.detail;
            return e;
        }
        if (!*next) {
            return out;
        }
        auto e = parse_inet_diag_message(**next, protocol);
        if (!e) {
            return e.error();
        }
        out.push_back(*e);
    }
}

Result<SocketEntry> parse_inet_diag_message(const RawMessage& m, std::uint8_t protocol) {
    const auto where = [&] { return "sock_diag message at offset " + std::to_string(m.offset); };
    // The reply type is the request's (net/ipv4/inet_diag.c): 20 for inet_diag_req_v2, 18 for
    // the TCP compat request.
    if (m.header.nlmsg_type != SOCK_DIAG_BY_FAMILY && m.header.nlmsg_type != TCPDIAG_GETSOCK) {
        return Error::of(Errc::malformed,
                         where() + ": nlmsg_type " + std::to_string(m.header.nlmsg_type) +
                             ", expected SOCK_DIAG_BY_FAMILY (20) or TCPDIAG_GETSOCK (18)");
    }
    if (m.payload.size() < sizeof(inet_diag_msg)) {
        return Error::of(Errc::truncated, where() + ": payload of " +
                                              std::to_string(m.payload.size()) +
                                              " bytes, inet_diag_msg needs 72");
    }
    const auto msg = load<inet_diag_msg>(m.payload);
    SocketEntry e;
    if (msg.idiag_family == AF_INET) {
        e.family = Family::v4;
    } else if (msg.idiag_family == AF_INET6) {
        e.family = Family::v6;
    } else {
        return Error::of(Errc::malformed, where() + ": idiag_family " +
                                              std::to_string(msg.idiag_family) +
                                              ", expected AF_INET (2) or AF_INET6 (10)");
    }
    e.protocol = protocol;
    e.state = msg.idiag_state;
    // idiag_src/dst are network-order words; AF_INET uses only the first (linux/inet_diag.h).
    e.address =
        InetAddress::from_bytes(e.family, m.payload.data() + offsetof(inet_diag_msg, id.idiag_src));
    e.remote =
        InetAddress::from_bytes(e.family, m.payload.data() + offsetof(inet_diag_msg, id.idiag_dst));
    e.port = ntohs(msg.id.idiag_sport);
    e.remote_port = ntohs(msg.id.idiag_dport);
    e.ifindex = msg.id.idiag_if;
    e.uid = msg.idiag_uid;
    e.inode = msg.idiag_inode;
    e.cookie =
        std::uint64_t{msg.id.idiag_cookie[0]} | (std::uint64_t{msg.id.idiag_cookie[1]} << 32);

    // Attributes start at NLMSG_ALIGN(sizeof(inet_diag_msg)) = 72 (already aligned).
    const std::size_t attr_at = align4(sizeof(inet_diag_msg));
    const std::size_t payload_offset = m.offset + kNlmsghdrSize;
    // One pass over the attributes, policy-checked like nla_parse but without filling a
    // table: at 45,000 sockets per scan the per-message cost matters (kernel.md §1.11).
    AttributeWalker attrs(m.payload.subspan(std::min(attr_at, m.payload.size())),
                          payload_offset + attr_at);
    while (true) {
        auto next_attr = attrs.next();
        if (!next_attr) {
            Error err = next_attr.error();
            err.detail = where() + ": " + err.detail;
            return err;
        }
        if (!*next_attr) {
            break;
        }
        const RawAttribute& a = **next_attr;
        if (a.type < kPolicy.size() && a.value.size() < kPolicy[a.type]) {
            return Error::of(Errc::malformed,
                             where() + ": attribute type " + std::to_string(a.type) +
                                 " at offset " + std::to_string(a.offset) + ": value of " +
                                 std::to_string(a.value.size()) + " bytes, needs at least " +
                                 std::to_string(kPolicy[a.type]));
        }
        if (a.type == INET_DIAG_SKV6ONLY) {
            e.v6only = a.value[0] != 0;
        } else if (a.type == INET_DIAG_SOCKOPT) {
            // Bitfields: copy into the UAPI struct and let the compiler apply the ABI.
            const auto opt = load<inet_diag_sockopt>(a.value);
            e.freebind = opt.freebind != 0;
            e.transparent = opt.transparent != 0;
        }
    }
    return e;
}

}  // namespace vipportd::netlink
