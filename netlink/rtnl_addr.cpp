#include "netlink/rtnl_addr.hpp"

#include <algorithm>
#include <cerrno>
#include <limits>
#include <unistd.h>

#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include "netlink/bytes.hpp"

namespace vipportd::netlink {

namespace {

static_assert(sizeof(ifaddrmsg) == 8 && sizeof(ifinfomsg) == 16);
static_assert(kIfaDadFailed == IFA_F_DADFAILED && kIfaTentative == IFA_F_TENTATIVE &&
              kIfaOptimistic == IFA_F_OPTIMISTIC && kIfaDeprecated == IFA_F_DEPRECATED &&
              kIfaPermanent == IFA_F_PERMANENT && kIfaSecondary == IFA_F_SECONDARY &&
              kIfaNodad == IFA_F_NODAD);

constexpr std::size_t kMaxAddrAttr = IFA_FLAGS;  // 8: the last attribute we read
// IFA_FLAGS is a u32 (linux/if_addr.h); the addresses are checked against the family below.
constexpr AttributePolicy<kMaxAddrAttr> kAddrPolicy = [] {
    AttributePolicy<kMaxAddrAttr> p{};
    p[IFA_FLAGS] = sizeof(std::uint32_t);
    return p;
}();

// recv() buffer for events: address and link notifications are built with NLMSG_GOODSIZE or
// if_nlmsg_size() (net/ipv4/devinet.c inet_ifa_notify, net/core/rtnetlink.c rtmsg_ifinfo), a
// few KiB at most; 64 KiB never truncates them (MSG_TRUNC reports it if it ever did).
constexpr std::size_t kDatagramBuffer = 65536;
// A churning host could keep the queue non-empty forever; after this many datagrams drain()
// returns what it has, and the rest waits for the next call.
constexpr std::size_t kMaxDatagramsPerDrain = 10000;

std::string nul_terminated(std::span<const std::uint8_t> v) {
    const auto end = std::find(v.begin(), v.end(), std::uint8_t{0});
    return std::string(v.begin(), end);
}

Result<InetAddress> address_of(const RawAttribute& a, Family family, const char* what) {
    const std::size_t want = family == Family::v4 ? 4 : 16;
    if (a.value.size() != want) {
        return Error::of(Errc::malformed, std::string(what) + " at offset " +
                                              std::to_string(a.offset) + ": " +
                                              std::to_string(a.value.size()) + " bytes, expected " +
                                              std::to_string(want));
    }
    return InetAddress::from_bytes(family, a.value.data());
}

}  // namespace

std::vector<std::uint8_t> build_addr_dump_request() {
    const std::size_t len = kNlmsghdrSize + sizeof(ifaddrmsg);
    std::vector<std::uint8_t> out(len, 0);
    nlmsghdr h{};
    h.nlmsg_len = static_cast<std::uint32_t>(len);
    h.nlmsg_type = RTM_GETADDR;
    h.nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | NLM_F_DUMP);
    store(std::span<std::uint8_t>(out), 0, h);
    ifaddrmsg ifa{};
    ifa.ifa_family = AF_UNSPEC;  // both families (kernel.md §4)
    store(std::span<std::uint8_t>(out), kNlmsghdrSize, ifa);
    return out;
}

Result<std::optional<InterfaceAddress>> decode_addr_message(std::uint16_t nlmsg_type,
                                                            std::span<const std::uint8_t> payload,
                                                            std::size_t base_offset) {
    const auto where = [&] {
        return std::string(nlmsg_type == RTM_DELADDR ? "RTM_DELADDR" : "RTM_NEWADDR") +
               " message at offset " + std::to_string(base_offset);
    };
    if (nlmsg_type != RTM_NEWADDR && nlmsg_type != RTM_DELADDR) {
        return Error::of(Errc::malformed, "message at offset " + std::to_string(base_offset) +
                                              ": nlmsg_type " + std::to_string(nlmsg_type) +
                                              ", expected RTM_NEWADDR (20) or RTM_DELADDR (21)");
    }
    if (payload.size() < sizeof(ifaddrmsg)) {
        return Error::of(Errc::truncated, where() + ": payload of " +
                                              std::to_string(payload.size()) +
                                              " bytes, ifaddrmsg needs 8");
    }
    const auto ifa = load<ifaddrmsg>(payload);
    Family family;
    if (ifa.ifa_family == AF_INET) {
        family = Family::v4;
    } else if (ifa.ifa_family == AF_INET6) {
        family = Family::v6;
    } else {
        return std::optional<InterfaceAddress>{};
    }
    AttributeTable<kMaxAddrAttr> attrs;
    const std::size_t attr_at = align4(sizeof(ifaddrmsg));
    auto parsed = parse_attributes(payload.subspan(attr_at), base_offset + kNlmsghdrSize + attr_at,
                                   kAddrPolicy, attrs);
    if (!parsed) {
        Error e = parsed.error();
        e.detail = where() + ": " + e.detail;
        return e;
    }
    InterfaceAddress out;
    out.deleted = nlmsg_type == RTM_DELADDR;
    out.prefix_len = ifa.ifa_prefixlen;
    out.scope = ifa.ifa_scope;
    out.ifindex = ifa.ifa_index;
    out.flags = ifa.ifa_flags;
    std::optional<InetAddress> local;
    std::optional<InetAddress> address;
    if (const auto& a = attrs[IFA_LOCAL]) {
        auto v = address_of(*a, family, "IFA_LOCAL");
        if (!v) {
            Error e = v.error();
            e.detail = where() + ": " + e.detail;
            return e;
        }
        local = *v;
    }
    if (const auto& a = attrs[IFA_ADDRESS]) {
        auto v = address_of(*a, family, "IFA_ADDRESS");
        if (!v) {
            Error e = v.error();
            e.detail = where() + ": " + e.detail;
            return e;
        }
        address = *v;
    }
    if (!local && !address) {
        return Error::of(Errc::malformed, where() + ": neither IFA_LOCAL nor IFA_ADDRESS");
    }
    // linux/if_addr.h: "for point-to-point IFA_ADDRESS is DESTINATION address, local address is
    // supplied in IFA_LOCAL attribute". On other links both carry the same address.
    out.address = local ? *local : *address;
    if (local && address && *local != *address) {
        out.peer = *address;
    }
    if (const auto& a = attrs[IFA_FLAGS]) {
        out.flags = load<std::uint32_t>(a->value);
    }
    if (const auto& a = attrs[IFA_LABEL]) {
        out.label = nul_terminated(a->value);
    }
    return std::optional<InterfaceAddress>{std::move(out)};
}

Result<std::vector<InterfaceAddress>> parse_addr_dump(const Dump& dump) {
    std::vector<InterfaceAddress> out;
    MessageWalker walk(dump.data);
    while (true) {
        auto next = walk.next();
        if (!next) {
            Error e = next.error();
            e.detail = "RTM_GETADDR dump: " + e.detail;
            return e;
        }
        if (!*next) {
            return out;
        }
        const RawMessage& m = **next;
        auto a = decode_addr_message(m.header.nlmsg_type, m.payload, m.offset);
        if (!a) {
            Error e = a.error();
            e.detail = "RTM_GETADDR dump: " + e.detail;
            return e;
        }
        if (*a) {
            out.push_back(std::move(**a));
        }
    }
}

Result<void> decode_address_events(std::span<const std::uint8_t> datagram, AddressEvents& out) {
    MessageWalker walk(datagram);
    while (true) {
        auto next = walk.next();
        if (!next) {
            out.overflowed = true;  // the rest of the datagram is unreadable: as good as lost
            Error e = next.error();
            e.detail = "address event datagram: " + e.detail;
            return e;
        }
        if (!*next) {
            return {};
        }
        const RawMessage& m = **next;
        ++out.messages;
        switch (m.header.nlmsg_type) {
            case RTM_NEWADDR:
            case RTM_DELADDR: {
                auto a = decode_addr_message(m.header.nlmsg_type, m.payload, m.offset);
                if (!a) {
                    out.overflowed = true;
                    Error e = a.error();
                    e.detail = "address event: " + e.detail;
                    return e;
                }
                if (*a) {
                    out.changes.push_back(std::move(**a));
                }
                break;
            }
            case RTM_NEWLINK:
            case RTM_DELLINK:
                out.links_changed = true;
                break;
            default:
                break;  // NLMSG_NOOP and anything a newer kernel adds to these groups
        }
    }
}

Result<std::unique_ptr<KernelAddressEventSource>> KernelAddressEventSource::open(
    std::size_t receive_buffer) {
    const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
    if (fd < 0) {
        return Error::sys(errno, "rtnetlink: address event socket");
    }
    std::unique_ptr<KernelAddressEventSource> self(new KernelAddressEventSource(fd));
    sockaddr_nl addr{};
    addr.nl_family = AF_NETLINK;  // nl_pid 0: the kernel assigns our port id
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        return Error::sys(errno, "rtnetlink: bind address event socket");
    }
    // Group numbers, not RTMGRP_* bit masks (those only reach groups 1-32 via nl_groups).
    for (const int group : {RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, RTNLGRP_LINK}) {
        if (::setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) != 0) {
            return Error::sys(errno, "rtnetlink: membership of group " + std::to_string(group));
        }
    }
    const int size = receive_buffer > static_cast<std::size_t>(std::numeric_limits<int>::max())
                         ? std::numeric_limits<int>::max()
                         : static_cast<int>(receive_buffer);
    // SO_RCVBUFFORCE ignores net.core.rmem_max but needs CAP_NET_ADMIN; SO_RCVBUF is capped by
    // it. A smaller buffer only means an earlier ENOBUFS, which resynchronises.
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
        (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    return self;
}

KernelAddressEventSource::~KernelAddressEventSource() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

Result<AddressEvents> KernelAddressEventSource::drain() {
    AddressEvents out;
    std::vector<std::uint8_t> buffer(kDatagramBuffer);
    for (std::size_t n = 0; n < kMaxDatagramsPerDrain; ++n) {
        sockaddr_nl from{};
        socklen_t from_len = sizeof from;
        const ssize_t got = ::recvfrom(fd_, buffer.data(), buffer.size(), MSG_DONTWAIT | MSG_TRUNC,
                                       reinterpret_cast<sockaddr*>(&from), &from_len);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return out;
            }
            if (errno == ENOBUFS) {
                // The receive queue overflowed and events were dropped (netlink_overrun(),
                // net/netlink/af_netlink.c): the cache must be rebuilt from a dump.
                out.overflowed = true;
                continue;
            }
            return Error::sys(errno, "rtnetlink: address event socket recv");
        }
        if (from.nl_pid != 0) {
            continue;  // only the kernel sends these notifications
        }
        const auto len = static_cast<std::size_t>(got);
        if (len > buffer.size()) {
            out.overflowed = true;  // MSG_TRUNC: its content is lost
            continue;
        }
        // An undecodable datagram sets overflowed (resync); the error itself adds nothing the
        // resync does not repair, so it is not propagated.
        (void)decode_address_events(std::span<const std::uint8_t>(buffer.data(), len), out);
    }
    return out;
}

}  // namespace vipportd::netlink
