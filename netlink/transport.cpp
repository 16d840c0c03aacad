#include "netlink/transport.hpp"

#include <algorithm>
#include <string>

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

Result<bool> Transport::exchange_each(std::span<const std::uint8_t> request,
                                      const MessageSink& on_message) {
    auto dump = exchange(request);
    if (!dump) {
        return dump.error();
    }
    MessageWalker walk(dump->data);
    while (true) {
        auto m = walk.next();
        if (!m) {
            return m.error();
        }
        if (!*m) {
            return dump->interrupted;
        }
        if (auto r = on_message(**m); !r) {
            return r.error();
        }
    }
}

namespace {

Error all_interrupted(int max_attempts) {
    return Error::of(Errc::interrupted, "dump interrupted (NLM_F_DUMP_INTR) on all " +
                                            std::to_string(max_attempts) + " attempts");
}

}  // namespace

Result<void> exchange_each_consistent(Transport& transport,
                                      std::span<const std::uint8_t> request,
                                      int max_attempts,
                                      const std::function<void()>& restart,
                                      const MessageSink& on_message) {
    max_attempts = std::max(max_attempts, 1);
    for (int attempt = 1;; ++attempt) {
        restart();
        auto interrupted = transport.exchange_each(request, on_message);
        if (!interrupted) {
            return interrupted.error();
        }
        if (!*interrupted) {
            return {};
        }
        if (attempt >= max_attempts) {
            return all_interrupted(max_attempts);
        }
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
            return all_interrupted(max_attempts);
        }
    }
}

}  // namespace vipportd::netlink
