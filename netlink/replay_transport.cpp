#include "netlink/replay_transport.hpp"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <deque>
#include <utility>

#include <linux/netlink.h>

#include "netlink/bytes.hpp"

namespace vipportd::netlink {

namespace {

// Any non-zero value will do: the loop only checks that replies carry the port id we report.
constexpr std::uint32_t kReplayPort = 0x7e9a1;

std::vector<std::uint8_t> normalized(std::span<const std::uint8_t> bytes) {
    std::vector<std::uint8_t> copy(bytes.begin(), bytes.end());
    zero_seq_pid(copy);
    return copy;
}

}  // namespace

// A scripted socket: send() looks the request up, queues its recorded datagrams restamped with
// the live seq and port id; receive() hands them out with recvmsg semantics.
class ReplayTransport::Socket final : public NetlinkSocket {
  public:
    Socket(Fixture fixture, std::string name)
        : fixture_(std::move(fixture)), name_(std::move(name)), used_(fixture_.exchanges.size()) {}

    [[nodiscard]] std::uint32_t port_id() const override { return kReplayPort; }

    [[nodiscard]] Result<void> send(std::span<const std::uint8_t> datagram) override {
        const auto key = normalized(datagram);
        std::size_t chosen = fixture_.exchanges.size();
        for (std::size_t i = 0; i < fixture_.exchanges.size(); ++i) {
            if (fixture_.exchanges[i].request != key) {
                continue;
            }
            chosen = i;  // the last match, unless an unused one comes first
            if (!used_[i]) {
                break;
            }
        }
        if (chosen == fixture_.exchanges.size()) {
            std::string what = "request not in " + name_;
            if (const auto h = load_prefix<nlmsghdr>(datagram)) {
                what += " (nlmsg_type " + std::to_string(h->nlmsg_type) + ", nlmsg_flags " +
                        std::to_string(h->nlmsg_flags) + ")";
            }
            what += ": " + to_hex(key);
            return Error::of(Errc::unexpected, std::move(what));
        }
        used_[chosen] = true;
        ++served_;
        const std::uint32_t seq =
            datagram.size() >= kNlmsghdrSize ? load<nlmsghdr>(datagram).nlmsg_seq : 0;
        queue_.clear();
        for (const auto& reply : fixture_.exchanges[chosen].replies) {
            auto d = reply;
            MessageWalker walk(d);
            while (true) {
                const std::size_t at = walk.offset();
                auto m = walk.next();
                if (!m || !*m) {
                    break;  // recorded bytes stay as they are; the loop will judge them
                }
                store(std::span<std::uint8_t>(d), at + offsetof(nlmsghdr, nlmsg_seq), seq);
                store(std::span<std::uint8_t>(d), at + offsetof(nlmsghdr, nlmsg_pid), kReplayPort);
            }
            queue_.push_back(std::move(d));
        }
        return {};
    }

    [[nodiscard]] Result<bool> wait_readable(std::chrono::milliseconds) override {
        return !queue_.empty();  // nothing more recorded: time out at once
    }

    [[nodiscard]] Result<Datagram> receive(std::span<std::uint8_t> buffer, bool peek) override {
        if (queue_.empty()) {
            return Error::sys(EAGAIN, "replay recvmsg");
        }
        const auto& front = queue_.front();
        const std::size_t n = std::min(front.size(), buffer.size());
        std::copy_n(front.begin(), n, buffer.begin());
        Datagram d;
        d.length = peek ? front.size() : n;
        d.truncated = front.size() > buffer.size();
        if (!peek) {
            queue_.pop_front();
        }
        return d;
    }

    [[nodiscard]] std::size_t served() const { return served_; }

  private:
    Fixture fixture_;
    std::string name_;
    std::vector<bool> used_;
    std::deque<std::vector<std::uint8_t>> queue_;
    std::size_t served_ = 0;
};

namespace {
std::unique_ptr<NetlinkSocket> hold(NetlinkSocket* s) { return std::unique_ptr<NetlinkSocket>(s); }
}  // namespace

ReplayTransport::ReplayTransport(Fixture fixture, std::string name)
    : socket_(new Socket(std::move(fixture), std::move(name))), loop_(hold(socket_)) {}

ReplayTransport::~ReplayTransport() = default;

Result<std::unique_ptr<ReplayTransport>> ReplayTransport::open(const std::filesystem::path& file) {
    auto f = read_fixture(file);
    if (!f) {
        return f.error();
    }
    return std::make_unique<ReplayTransport>(std::move(*f), file.filename().string());
}

Result<Dump> ReplayTransport::exchange(std::span<const std::uint8_t> request) {
    return loop_.exchange(request);
}

Result<bool> ReplayTransport::exchange_each(std::span<const std::uint8_t> request,
                                            const MessageSink& on_message) {
    return loop_.exchange_each(request, on_message);
}

std::size_t ReplayTransport::served() const { return socket_->served(); }

// ---------------------------------------------------------------------------------------------

RecordingSocket::RecordingSocket(std::unique_ptr<NetlinkSocket> inner, Fixture& sink)
    : inner_(std::move(inner)), sink_(sink) {}

void RecordingSocket::annotate(std::string line) { pending_comment_.push_back(std::move(line)); }

std::uint32_t RecordingSocket::port_id() const { return inner_->port_id(); }

Result<void> RecordingSocket::send(std::span<const std::uint8_t> datagram) {
    FixtureExchange ex;
    ex.comment = std::move(pending_comment_);
    pending_comment_.clear();
    ex.request = normalized(datagram);
    sink_.exchanges.push_back(std::move(ex));
    return inner_->send(datagram);
}

Result<bool> RecordingSocket::wait_readable(std::chrono::milliseconds timeout) {
    return inner_->wait_readable(timeout);
}

Result<Datagram> RecordingSocket::receive(std::span<std::uint8_t> buffer, bool peek) {
    auto d = inner_->receive(buffer, peek);
    if (d && !peek && !sink_.exchanges.empty()) {
        const std::size_t n = std::min(d->length, buffer.size());
        sink_.exchanges.back().replies.push_back(normalized(buffer.first(n)));
    }
    return d;
}

// ---------------------------------------------------------------------------------------------

RecordingTransport::RecordingTransport(Transport& inner, Fixture& sink)
    : inner_(inner), sink_(sink) {}

void RecordingTransport::annotate(std::string line) { pending_comment_.push_back(std::move(line)); }

Result<Dump> RecordingTransport::exchange(std::span<const std::uint8_t> request) {
    auto result = inner_.exchange(request);

    FixtureExchange ex;
    ex.comment = std::move(pending_comment_);
    pending_comment_.clear();
    ex.request = normalized(request);
    const auto req = load_prefix<nlmsghdr>(request).value_or(nlmsghdr{});

    // A terminator in the kernel's own layout: nlmsghdr + int (DONE) or + struct nlmsgerr.
    const auto terminator = [&](std::uint16_t type, std::uint16_t flags, int error) {
        const std::size_t len =
            kNlmsghdrSize + (type == NLMSG_DONE ? sizeof(int) : sizeof(nlmsgerr));
        std::vector<std::uint8_t> d(len, 0);
        nlmsghdr h{};
        h.nlmsg_len = static_cast<std::uint32_t>(len);
        h.nlmsg_type = type;
        h.nlmsg_flags = flags;
        store(std::span<std::uint8_t>(d), 0, h);
        store(std::span<std::uint8_t>(d), kNlmsghdrSize, error);
        if (type == NLMSG_ERROR) {
            nlmsghdr echoed = req;  // the request's header, as with NETLINK_CAP_ACK
            echoed.nlmsg_seq = 0;
            echoed.nlmsg_pid = 0;
            store(std::span<std::uint8_t>(d), kNlmsghdrSize + sizeof(int), echoed);
            h.nlmsg_flags = NLM_F_CAPPED;
            store(std::span<std::uint8_t>(d), 0, h);
        }
        return d;
    };

    if (!result) {
        if (result.error().code == Errc::kernel) {
            ex.replies.push_back(terminator(NLMSG_ERROR, 0, -result.error().sys_errno));
        } else {
            ex.comment.push_back("exchange failed: " + to_string(result.error()));
        }
        sink_.exchanges.push_back(std::move(ex));
        return result;
    }

    bool multi = false;
    MessageWalker walk(result->data);
    while (true) {
        auto m = walk.next();
        if (!m || !*m) {
            break;
        }
        const auto bytes = std::span<const std::uint8_t>(result->data)
                               .subspan((*m)->offset, (*m)->header.nlmsg_len);
        ex.replies.push_back(normalized(bytes));
        multi = multi || ((*m)->header.nlmsg_flags & NLM_F_MULTI) != 0;
    }
    const bool ack = (req.nlmsg_flags & NLM_F_ACK) != 0;
    const bool dump_request = (req.nlmsg_flags & NLM_F_DUMP) != 0;
    if (multi || (ex.replies.empty() && dump_request)) {
        const auto intr = static_cast<std::uint16_t>(result->interrupted ? NLM_F_DUMP_INTR : 0);
        ex.replies.push_back(
            terminator(NLMSG_DONE, static_cast<std::uint16_t>(NLM_F_MULTI | intr), 0));
    } else if (ack) {
        ex.replies.push_back(terminator(NLMSG_ERROR, 0, 0));
    }
    sink_.exchanges.push_back(std::move(ex));
    return result;
}

}  // namespace vipportd::netlink
