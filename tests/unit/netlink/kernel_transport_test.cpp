// The receive loop of KernelTransport driven by a scripted NetlinkSocket: every branch of the
// dump checklist (DONE, ERROR, ACK, DUMP_INTR, truncation, foreign seq/port/sender, EINTR,
// EAGAIN, timeout) without a kernel.

#include "netlink/kernel_transport.hpp"

#include <cerrno>
#include <cstring>
#include <deque>
#include <limits>
#include <vector>

#include <gtest/gtest.h>
#include <linux/netlink.h>

#include "netlink/bytes.hpp"
#include "netlink/transport.hpp"

namespace vipportd::netlink {
namespace {

constexpr std::uint32_t kPort = 77;
constexpr std::uint16_t kType = 20;  // any non-control type

using Bytes = std::vector<std::uint8_t>;

Bytes message(std::uint16_t type,
              std::uint16_t flags,
              std::uint32_t seq,
              std::uint32_t pid,
              const Bytes& payload = {}) {
    nlmsghdr h{};
    h.nlmsg_len = static_cast<std::uint32_t>(kNlmsghdrSize + payload.size());
    h.nlmsg_type = type;
    h.nlmsg_flags = flags;
    h.nlmsg_seq = seq;
    h.nlmsg_pid = pid;
    Bytes out(align4(h.nlmsg_len), 0);
    std::memcpy(out.data(), &h, sizeof h);
    std::copy(payload.begin(), payload.end(), out.begin() + kNlmsghdrSize);
    return out;
}

Bytes int_payload(int v) {
    Bytes b(sizeof v);
    std::memcpy(b.data(), &v, sizeof v);
    return b;
}

Bytes concat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const auto& p : parts) {
        out.insert(out.end(), p.begin(), p.end());
    }
    return out;
}

Bytes data_msg(std::uint32_t seq, std::uint8_t fill, std::uint16_t extra_flags = 0) {
    return message(kType, static_cast<std::uint16_t>(NLM_F_MULTI | extra_flags), seq, kPort,
                   Bytes(8, fill));
}

Bytes done(std::uint32_t seq, int err = 0, std::uint16_t extra_flags = 0) {
    return message(NLMSG_DONE, static_cast<std::uint16_t>(NLM_F_MULTI | extra_flags), seq, kPort,
                   int_payload(err));
}

// nlmsgerr with the request header echoed (as with NETLINK_CAP_ACK), plus optional TLVs.
Bytes error_msg(std::uint32_t seq, int err, const std::string& extack = {}) {
    Bytes payload = int_payload(err);
    Bytes echoed(kNlmsghdrSize, 0);
    payload.insert(payload.end(), echoed.begin(), echoed.end());
    std::uint16_t flags = NLM_F_CAPPED;
    if (!extack.empty()) {
        flags |= NLM_F_ACK_TLVS;
        nlattr a{};
        a.nla_len = static_cast<std::uint16_t>(kNlattrSize + extack.size() + 1);
        a.nla_type = NLMSGERR_ATTR_MSG;
        Bytes attr(align4(a.nla_len), 0);
        std::memcpy(attr.data(), &a, sizeof a);
        std::memcpy(attr.data() + kNlattrSize, extack.data(), extack.size());
        payload.insert(payload.end(), attr.begin(), attr.end());
    }
    return message(NLMSG_ERROR, flags, seq, kPort, payload);
}

// One scripted event per recvmsg-level step.
struct Event {
    enum class Kind { datagram, wait_eintr, recv_eintr, recv_eagain, wait_error };
    Kind kind = Kind::datagram;
    Bytes bytes;
    std::uint32_t sender = 0;
};

class ScriptedSocket final : public NetlinkSocket {
  public:
    std::deque<Event> events;
    std::vector<Bytes> sent;
    int send_eintr = 0;  // fail that many sends with EINTR first
    int waits = 0;

    [[nodiscard]] std::uint32_t port_id() const override { return kPort; }

    [[nodiscard]] Result<void> send(std::span<const std::uint8_t> d) override {
        if (send_eintr > 0) {
            --send_eintr;
            return Error::sys(EINTR, "sendto");
        }
        sent.emplace_back(d.begin(), d.end());
        return {};
    }

    [[nodiscard]] Result<bool> wait_readable(std::chrono::milliseconds) override {
        ++waits;
        if (events.empty()) {
            return false;
        }
        if (events.front().kind == Event::Kind::wait_eintr) {
            events.pop_front();
            return Error::sys(EINTR, "poll");
        }
        if (events.front().kind == Event::Kind::wait_error) {
            events.pop_front();
            return Error::sys(EBADF, "poll");
        }
        return true;
    }

    [[nodiscard]] Result<Datagram> receive(std::span<std::uint8_t> buffer, bool peek) override {
        if (events.empty()) {
            return Error::sys(EAGAIN, "recvmsg");
        }
        Event& e = events.front();
        if (e.kind == Event::Kind::recv_eintr) {
            events.pop_front();
            return Error::sys(EINTR, "recvmsg");
        }
        if (e.kind == Event::Kind::recv_eagain) {
            events.pop_front();
            return Error::sys(EAGAIN, "recvmsg");
        }
        const std::size_t n = std::min(buffer.size(), e.bytes.size());
        std::copy_n(e.bytes.begin(), n, buffer.begin());
        Datagram d{peek ? e.bytes.size() : n, e.sender, e.bytes.size() > buffer.size()};
        if (!peek) {
            events.pop_front();
        }
        return d;
    }
};

Bytes request(std::uint16_t flags = NLM_F_REQUEST | NLM_F_DUMP) {
    return message(kType, flags, 0, 0, Bytes(8, 0xab));
}

struct Harness {
    ScriptedSocket* socket;
    KernelTransport transport;

    explicit Harness(KernelTransportOptions options = {})
        : Harness(std::make_unique<ScriptedSocket>(), options) {}

    void push(Bytes bytes, std::uint32_t sender = 0) {
        socket->events.push_back({Event::Kind::datagram, std::move(bytes), sender});
    }
    void push(Event::Kind kind) { socket->events.push_back({kind, {}, 0}); }

  private:
    Harness(std::unique_ptr<ScriptedSocket> s, KernelTransportOptions options)
        : socket(s.get()), transport(std::move(s), options) {}
};

TEST(KernelTransport, CollectsADumpAcrossDatagramsUntilDone) {
    Harness h;
    h.push(concat({data_msg(1, 0x11), data_msg(1, 0x22)}));
    h.push(concat({data_msg(1, 0x33), done(1)}));
    auto dump = h.transport.exchange(request());
    ASSERT_TRUE(dump) << to_string(dump.error());
    EXPECT_FALSE(dump->interrupted);
    auto msgs = dump->messages();
    ASSERT_TRUE(msgs);
    ASSERT_EQ(msgs->size(), 3U);
    EXPECT_EQ((*msgs)[0].type, kType);
    EXPECT_EQ((*msgs)[2].payload[0], 0x33);
    EXPECT_TRUE(h.socket->events.empty());

    // The request went out stamped with seq 1 and our port id, otherwise unchanged.
    ASSERT_EQ(h.socket->sent.size(), 1U);
    const auto sent = load<nlmsghdr>(h.socket->sent[0]);
    EXPECT_EQ(sent.nlmsg_seq, 1U);
    EXPECT_EQ(sent.nlmsg_pid, kPort);
    EXPECT_TRUE(std::equal(h.socket->sent[0].begin() + kNlmsghdrSize, h.socket->sent[0].end(),
                           request().begin() + kNlmsghdrSize));
}

TEST(KernelTransport, EmptyDumpIsJustDone) {
    Harness h;
    h.push(done(1));
    auto dump = h.transport.exchange(request());
    ASSERT_TRUE(dump);
    EXPECT_TRUE(dump->data.empty());
}

TEST(KernelTransport, SequenceIncrementsAndStaleRepliesAreSkipped) {
    Harness h;
    h.push(done(1));
    ASSERT_TRUE(h.transport.exchange(request()));
    // Leftovers of exchange 1 (say it had timed out) arrive before exchange 2's reply.
    h.push(concat({data_msg(1, 0x99), done(1)}));
    h.push(concat({data_msg(2, 0x42), done(2)}));
    auto dump = h.transport.exchange(request());
    ASSERT_TRUE(dump) << to_string(dump.error());
    auto msgs = dump->messages();
    ASSERT_TRUE(msgs);
    ASSERT_EQ(msgs->size(), 1U);
    EXPECT_EQ((*msgs)[0].payload[0], 0x42);
    EXPECT_EQ(load<nlmsghdr>(h.socket->sent[1]).nlmsg_seq, 2U);
}

TEST(KernelTransport, KernelErrorCarriesErrnoAndExtackMessage) {
    Harness h;
    h.push(error_msg(1, -EPERM, "Operation not permitted here"));
    auto dump = h.transport.exchange(request());
    ASSERT_FALSE(dump);
    EXPECT_EQ(dump.error().code, Errc::kernel);
    EXPECT_EQ(dump.error().sys_errno, EPERM);
    EXPECT_NE(dump.error().detail.find("NLMSG_ERROR"), std::string::npos);
    EXPECT_NE(dump.error().detail.find("Operation not permitted here"), std::string::npos);
}

TEST(KernelTransport, ErrorInDoneIsAKernelError) {
    Harness h;
    h.push(concat({data_msg(1, 1), done(1, -ENOBUFS)}));
    auto dump = h.transport.exchange(request());
    ASSERT_FALSE(dump);
    EXPECT_EQ(dump.error().code, Errc::kernel);
    EXPECT_EQ(dump.error().sys_errno, ENOBUFS);
    EXPECT_NE(dump.error().detail.find("NLMSG_DONE"), std::string::npos);
}

TEST(KernelTransport, ImplausibleStatusIsMalformedNotAnErrno) {
    for (const int status : {-5000, std::numeric_limits<int>::min()}) {
        Harness h;
        h.push(error_msg(1, status));
        h.push(data_msg(1, 1));  // after a terminator nothing more is read
        auto dump = h.transport.exchange(request());
        ASSERT_FALSE(dump);
        EXPECT_EQ(dump.error().code, Errc::malformed);
        EXPECT_EQ(h.socket->events.size(), 1U);

        Harness d;
        d.push(done(1, status));
        EXPECT_EQ(d.transport.exchange(request()).error().code, Errc::malformed);
    }
}

TEST(KernelTransport, AckEndsANonDumpRequest) {
    Harness h;
    // A plain reply (no NLM_F_MULTI) to a request with NLM_F_ACK, then the ACK.
    h.push(message(kType, 0, 1, kPort, Bytes(4, 7)));
    h.push(error_msg(1, 0));
    auto dump = h.transport.exchange(request(NLM_F_REQUEST | NLM_F_ACK));
    ASSERT_TRUE(dump) << to_string(dump.error());
    auto msgs = dump->messages();
    ASSERT_TRUE(msgs);
    EXPECT_EQ(msgs->size(), 1U);
    EXPECT_TRUE(h.socket->events.empty());
}

TEST(KernelTransport, SingleReplyEndsARequestWithoutAck) {
    Harness h;
    h.push(message(kType, 0, 1, kPort, Bytes(4, 7)));
    h.push(data_msg(1, 0x55));  // must not be read
    auto dump = h.transport.exchange(request(NLM_F_REQUEST));
    ASSERT_TRUE(dump);
    EXPECT_EQ(dump->messages()->size(), 1U);
    EXPECT_EQ(h.socket->events.size(), 1U);
}

TEST(KernelTransport, DumpIntrIsReported) {
    Harness h;
    h.push(concat({data_msg(1, 1), data_msg(1, 2, NLM_F_DUMP_INTR), done(1, 0, NLM_F_DUMP_INTR)}));
    auto dump = h.transport.exchange(request());
    ASSERT_TRUE(dump);
    EXPECT_TRUE(dump->interrupted);
    EXPECT_EQ(dump->messages()->size(), 2U);
}

TEST(KernelTransport, BufferGrowsForLargeDatagrams) {
    Harness h;
    // 40,000 bytes: larger than the 32 KiB initial buffer, found by the MSG_PEEK|MSG_TRUNC peek.
    const Bytes big = message(kType, NLM_F_MULTI, 1, kPort, Bytes(40000 - kNlmsghdrSize, 0x5a));
    h.push(big);
    h.push(done(1));
    auto dump = h.transport.exchange(request());
    ASSERT_TRUE(dump) << to_string(dump.error());
    EXPECT_EQ(dump->data, big);
}

TEST(KernelTransport, TruncatedDatagramIsAnError) {
    KernelTransportOptions o;
    o.initial_buffer = 64;
    o.max_buffer = 64;
    Harness h(o);
    h.push(message(kType, NLM_F_MULTI, 1, kPort, Bytes(100, 1)));
    h.push(done(1));
    auto dump = h.transport.exchange(request());
    ASSERT_FALSE(dump);
    EXPECT_EQ(dump.error().code, Errc::truncated);
    EXPECT_NE(dump.error().detail.find("MSG_TRUNC"), std::string::npos);
    // The rest of the dump was read away so that the next dump on this socket is not EBUSY.
    EXPECT_TRUE(h.socket->events.empty());
}

TEST(KernelTransport, MessageOverrunningItsDatagramIsTruncated) {
    Harness h;
    Bytes bad = data_msg(1, 1);
    bad[0] = 200;  // nlmsg_len larger than the datagram
    h.push(bad);
    h.push(done(1));
    auto dump = h.transport.exchange(request());
    ASSERT_FALSE(dump);
    EXPECT_EQ(dump.error().code, Errc::truncated);
    EXPECT_NE(dump.error().detail.find("nlmsg_len 200"), std::string::npos);
}

TEST(KernelTransport, ForeignSequenceIsAnErrorAndTheDumpIsDrained) {
    Harness h;
    h.push(concat({data_msg(1, 1), data_msg(9, 2)}));
    h.push(concat({data_msg(1, 3), done(1)}));
    auto dump = h.transport.exchange(request());
    ASSERT_FALSE(dump);
    EXPECT_EQ(dump.error().code, Errc::unexpected);
    EXPECT_NE(dump.error().detail.find("seq 9"), std::string::npos);
    EXPECT_TRUE(h.socket->events.empty());
}

TEST(KernelTransport, ForeignPortIdIsAnError) {
    Harness h;
    h.push(message(kType, NLM_F_MULTI, 1, kPort + 1, Bytes(4, 0)));
    auto dump = h.transport.exchange(request());
    ASSERT_FALSE(dump);
    EXPECT_EQ(dump.error().code, Errc::unexpected);
    EXPECT_NE(dump.error().detail.find("port id 78"), std::string::npos);
}

TEST(KernelTransport, DatagramNotFromTheKernelIsAnError) {
    Harness h;
    h.push(concat({data_msg(1, 1), done(1)}), /*sender=*/4242);
    auto dump = h.transport.exchange(request());
    ASSERT_FALSE(dump);
    EXPECT_EQ(dump.error().code, Errc::unexpected);
    EXPECT_NE(dump.error().detail.find("port id 4242"), std::string::npos);
}

TEST(KernelTransport, OverrunIsAnError) {
    Harness h;
    h.push(message(NLMSG_OVERRUN, 0, 1, kPort));
    auto dump = h.transport.exchange(request());
    ASSERT_FALSE(dump);
    EXPECT_EQ(dump.error().code, Errc::unexpected);
}

TEST(KernelTransport, EintrAndEagainAreRetried) {
    Harness h;
    h.socket->send_eintr = 2;
    h.push(Event::Kind::wait_eintr);
    h.push(Event::Kind::recv_eintr);
    h.push(Event::Kind::recv_eagain);
    h.push(concat({data_msg(1, 1), done(1)}));
    auto dump = h.transport.exchange(request());
    ASSERT_TRUE(dump) << to_string(dump.error());
    EXPECT_EQ(dump->messages()->size(), 1U);
    EXPECT_EQ(h.socket->sent.size(), 1U);
}

TEST(KernelTransport, OtherSocketErrorsAreReported) {
    Harness h;
    h.push(Event::Kind::wait_error);
    auto dump = h.transport.exchange(request());
    ASSERT_FALSE(dump);
    EXPECT_EQ(dump.error().code, Errc::system);
    EXPECT_EQ(dump.error().sys_errno, EBADF);
}

TEST(KernelTransport, SilenceIsATimeout) {
    Harness h;
    h.push(data_msg(1, 1));  // a dump that never finishes
    auto dump = h.transport.exchange(request());
    ASSERT_FALSE(dump);
    EXPECT_EQ(dump.error().code, Errc::timeout);
}

TEST(KernelTransport, DeadlineIsEnforcedEvenWhenDataKeepsComing) {
    KernelTransportOptions o;
    o.timeout = std::chrono::milliseconds(0);
    Harness h(o);
    h.push(concat({data_msg(1, 1), done(1)}));
    auto dump = h.transport.exchange(request());
    ASSERT_FALSE(dump);
    EXPECT_EQ(dump.error().code, Errc::timeout);
}

TEST(KernelTransport, RejectsMalformedRequests) {
    Harness h;
    EXPECT_EQ(h.transport.exchange(Bytes(8, 0)).error().code, Errc::malformed);
    EXPECT_EQ(h.transport.exchange(concat({request(), request()})).error().code, Errc::malformed);
    Bytes bad = request();
    bad[0] = 99;
    EXPECT_EQ(h.transport.exchange(bad).error().code, Errc::malformed);
    EXPECT_TRUE(h.socket->sent.empty());
}

TEST(KernelTransport, WithoutASocketEveryExchangeFails) {
    KernelTransport t(std::unique_ptr<NetlinkSocket>{});
    ASSERT_TRUE(t.open_error().has_value());
    auto dump = t.exchange(request());
    ASSERT_FALSE(dump);
    EXPECT_EQ(dump.error().code, Errc::system);
}

// exchange_consistent over a transport that returns scripted dumps.
class CountingTransport final : public Transport {
  public:
    int interrupted_first = 0;  // that many interrupted dumps, then clean ones
    int calls = 0;
    [[nodiscard]] Result<Dump> exchange(std::span<const std::uint8_t>) override {
        ++calls;
        Dump d;
        d.interrupted = calls <= interrupted_first;
        return d;
    }
};

TEST(ExchangeConsistent, RetriesInterruptedDumps) {
    CountingTransport t;
    t.interrupted_first = 2;
    auto dump = exchange_consistent(t, request());
    ASSERT_TRUE(dump);
    EXPECT_FALSE(dump->interrupted);
    EXPECT_EQ(t.calls, 3);
}

TEST(ExchangeConsistent, GivesUpAfterMaxAttempts) {
    CountingTransport t;
    t.interrupted_first = 100;
    auto dump = exchange_consistent(t, request(), 4);
    ASSERT_FALSE(dump);
    EXPECT_EQ(dump.error().code, Errc::interrupted);
    EXPECT_EQ(t.calls, 4);
}

TEST(ExchangeConsistent, PassesErrorsThrough) {
    Harness h;  // no replies: timeout
    auto dump = exchange_consistent(h.transport, request());
    ASSERT_FALSE(dump);
    EXPECT_EQ(dump.error().code, Errc::timeout);
    EXPECT_EQ(h.socket->sent.size(), 1U);
}

}  // namespace
}  // namespace vipportd::netlink
