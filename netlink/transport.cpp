#include "netlink/transport.hpp"

#include "netlink/bytes.hpp"

namespace vipportd::netlink {

Result<std::vector<MessageView>> Dump::messages() const {
    std::vector<MessageView> out;
    MessageWalker walk(data);
    while (true) {
        auto m = walk.next();
        if (!m) {
            return m.error();
        }
        if (!*m) {
            return out;
        }
        out.push_back({(*m)->header.nlmsg_type, (*m)->header.nlmsg_flags, (*m)->payload});
    }
}

Result<Dump> exchange_consistent(Transport& transport,
                                 std::span<const std::uint8_t> request,
                                 int max_attempts) {
    if (max_attempts < 1) {
        max_attempts = 1;
    }
    for (int attempt = 1;; ++attempt) {
        auto dump = transport.exchange(request);
        if (!dump || !dump->interrupted) {
            return dump;
        }
        if (attempt >= max_attempts) {
            return Error::of(Errc::interrupted, "dump interrupted (NLM_F_DUMP_INTR) on all " +
                                                    std::to_string(max_attempts) + " attempts");
        }
    }
}

}  // namespace vipportd::netlink
