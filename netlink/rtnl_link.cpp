#include "netlink/rtnl_link.hpp"

#include <algorithm>
#include <cstddef>

#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include "netlink/bytes.hpp"

namespace vipportd::netlink {

namespace {
static_assert(sizeof(ifinfomsg) == 16);
constexpr std::size_t kMaxAttr = IFLA_IFNAME;   // 3: the only attribute we read
constexpr AttributePolicy<kMaxAttr> kPolicy{};  // IFLA_IFNAME: any length, NUL checked below
}  // namespace

std::vector<std::uint8_t> build_link_dump_request() {
    const std::size_t len = kNlmsghdrSize + sizeof(ifinfomsg);
    std::vector<std::uint8_t> out(len, 0);
    nlmsghdr h{};
    h.nlmsg_len = static_cast<std::uint32_t>(len);
    h.nlmsg_type = RTM_GETLINK;
    h.nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | NLM_F_DUMP);
    store(std::span<std::uint8_t>(out), 0, h);
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    store(std::span<std::uint8_t>(out), kNlmsghdrSize, ifi);
    return out;
}

Result<std::map<std::uint32_t, LinkState>> parse_link_states(const Dump& dump) {
    std::map<std::uint32_t, LinkState> links;
    AttributeTable<kMaxAttr> attrs;
    MessageWalker walk(dump.data);
    while (true) {
        auto next = walk.next();
        if (!next) {
            Error e = next.error();
            e.detail = "RTM_GETLINK dump: " + e.detail;
            return e;
        }
        if (!*next) {
            return links;
        }
        const RawMessage& m = **next;
        const auto where = [&] {
            return "RTM_GETLINK dump: RTM_NEWLINK message at offset " + std::to_string(m.offset);
        };
        if (m.header.nlmsg_type != RTM_NEWLINK) {
            return Error::of(Errc::malformed, where() + ": nlmsg_type " +
                                                  std::to_string(m.header.nlmsg_type) +
                                                  ", expected RTM_NEWLINK (16)");
        }
        if (m.payload.size() < sizeof(ifinfomsg)) {
            return Error::of(Errc::truncated, where() + ": payload of " +
                                                  std::to_string(m.payload.size()) +
                                                  " bytes, ifinfomsg needs 16");
        }
        const auto ifi = load<ifinfomsg>(m.payload);
        const std::size_t attr_at = align4(sizeof(ifinfomsg));
        auto parsed = parse_attributes(m.payload.subspan(attr_at),
                                       m.offset + kNlmsghdrSize + attr_at, kPolicy, attrs);
        if (!parsed) {
            Error e = parsed.error();
            e.detail = where() + ": " + e.detail;
            return e;
        }
        if (ifi.ifi_index <= 0) {
            continue;
        }
        LinkState link;
        link.flags = ifi.ifi_flags;
        if (const auto& a = attrs[IFLA_IFNAME]) {
            // NUL-terminated string (NLA_STRING); stop at the first NUL, tolerate a missing one.
            const auto end = std::find(a->value.begin(), a->value.end(), std::uint8_t{0});
            link.name.assign(a->value.begin(), end);
        }
        links[static_cast<std::uint32_t>(ifi.ifi_index)] = std::move(link);
    }
}

Result<std::map<std::uint32_t, std::string>> parse_link_names(const Dump& dump) {
    auto links = parse_link_states(dump);
    if (!links) {
        return links.error();
    }
    std::map<std::uint32_t, std::string> names;
    for (auto& [index, link] : *links) {
        if (!link.name.empty()) {
            names.emplace(index, std::move(link.name));
        }
    }
    return names;
}

}  // namespace vipportd::netlink
