// libFuzzer target: arbitrary bytes as the concatenated messages of a sock_diag dump, through the
// decoder and the matching that turns sockets into claims. Must never crash, hang or read out of
// bounds; a malformed dump must come back as an error.
#include <cstdint>
#include <map>
#include <string>

#include "agent/socket_source.hpp"
#include "netlink/sock_diag.hpp"
#include "netlink/transport.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace vipportd;
    netlink::Dump dump;
    dump.data.assign(data, data + size);
    for (std::uint8_t protocol : {std::uint8_t{6}, std::uint8_t{17}}) {  // IPPROTO_TCP, IPPROTO_UDP
        auto entries = netlink::parse_inet_diag(dump, protocol);
        if (!entries) {
            continue;
        }
        const std::map<std::uint32_t, std::string> names{{1, "lo"}};
        const auto claims = agent::socket_claims(*entries, names);
        if (claims.size() > entries->size()) {
            __builtin_trap();  // folding reuseport groups can only shrink the list
        }
    }
    return 0;
}
