// Fixture text format, ReplayTransport and the two recorders.

#include "netlink/fixture.hpp"

#include <cerrno>
#include <cstring>

#include <gtest/gtest.h>
#include <linux/netlink.h>

#include "netlink/bytes.hpp"
#include "netlink/replay_transport.hpp"
#include "netlink/sock_diag.hpp"

namespace vipportd::netlink {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes message(std::uint16_t type, std::uint16_t flags, std::uint32_t seq, const Bytes& payload) {
    nlmsghdr h{};
    h.nlmsg_len = static_cast<std::uint32_t>(kNlmsghdrSize + payload.size());
    h.nlmsg_type = type;
    h.nlmsg_flags = flags;
    h.nlmsg_seq = seq;
    h.nlmsg_pid = 1234;
    Bytes out(align4(h.nlmsg_len), 0);
    std::memcpy(out.data(), &h, sizeof h);
    std::copy(payload.begin(), payload.end(), out.begin() + kNlmsghdrSize);
    return out;
}

Bytes done_msg() { return message(NLMSG_DONE, NLM_F_MULTI, 0, Bytes(4, 0)); }

TEST(Fixture, HexRoundTrip) {
    const Bytes b{0x00, 0x01, 0xab, 0xff, 0x10};
    EXPECT_EQ(to_hex(b), "0001abff 10");
    auto back = from_hex("0001ABff\t10 ");
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, b);
    EXPECT_FALSE(from_hex("abc"));
    EXPECT_FALSE(from_hex("zz"));
    EXPECT_FALSE(from_hex("a b"));
}

TEST(Fixture, ParsesHeaderExchangeCommentsAndContinuations) {
    const char* text =
        "# header line 1\n"
        "#\n"
        "\n"
        "# first exchange\n"
        "> 01020304\n"
        "< 0a0b\n"
        "+ 0c0d\n"
        "< ff\n"
        "\n"
        "> 05\n";
    auto f = parse_fixture(text);
    ASSERT_TRUE(f) << to_string(f.error());
    EXPECT_EQ(f->header, (std::vector<std::string>{"header line 1", ""}));
    ASSERT_EQ(f->exchanges.size(), 2U);
    EXPECT_EQ(f->exchanges[0].comment, std::vector<std::string>{"first exchange"});
    EXPECT_EQ(f->exchanges[0].request, (Bytes{1, 2, 3, 4}));
    EXPECT_EQ(f->exchanges[0].replies, (std::vector<Bytes>{{0x0a, 0x0b, 0x0c, 0x0d}, {0xff}}));
    EXPECT_TRUE(f->exchanges[1].replies.empty());
}

TEST(Fixture, FormatParsesBackIdentically) {
    Fixture f;
    f.header = {"recorded by a test", "kernel: none"};
    FixtureExchange ex;
    ex.comment = {"two messages in one datagram, then DONE"};
    ex.request = message(20, NLM_F_REQUEST | NLM_F_DUMP, 0, Bytes(8, 1));
    Bytes d = message(20, NLM_F_MULTI, 0, Bytes(6, 2));
    const Bytes second = message(20, NLM_F_MULTI, 0, Bytes(4, 3));
    d.insert(d.end(), second.begin(), second.end());
    ex.replies = {d, done_msg()};
    f.exchanges = {ex, ex};
    const std::string text = format_fixture(f);
    EXPECT_NE(text.find("\n+ "), std::string::npos);  // the second message got its own line
    auto back = parse_fixture(text);
    ASSERT_TRUE(back) << to_string(back.error());
    EXPECT_EQ(*back, f);
}

TEST(Fixture, ErrorsNameTheLine) {
    auto f = parse_fixture("# x\n> 00\n< 0g\n", "t.txt");
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error().code, Errc::malformed);
    EXPECT_NE(f.error().detail.find("t.txt:3:"), std::string::npos) << f.error().detail;
    EXPECT_FALSE(parse_fixture("< 00\n"));
    EXPECT_FALSE(parse_fixture("> 00\n+ 00\n"));
    EXPECT_FALSE(parse_fixture("? 00\n"));
}

TEST(Fixture, ReadingAMissingFileIsASystemError) {
    auto f = read_fixture("/nonexistent/fixture.txt");
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error().code, Errc::system);
}

TEST(Fixture, ZeroSeqPidAlsoClearsTheEchoedRequestHeader) {
    Bytes payload(sizeof(nlmsgerr), 0);
    const int err = -EINVAL;
    std::memcpy(payload.data(), &err, sizeof err);
    nlmsghdr echoed{};
    echoed.nlmsg_seq = 5;
    echoed.nlmsg_pid = 6;
    std::memcpy(payload.data() + sizeof(int), &echoed, sizeof echoed);
    Bytes m = message(NLMSG_ERROR, 0, 9, payload);
    zero_seq_pid(m);
    const auto h = load<nlmsghdr>(m);
    const auto e = load<nlmsghdr>(m, kNlmsghdrSize + sizeof(int));
    EXPECT_EQ(h.nlmsg_seq, 0U);
    EXPECT_EQ(h.nlmsg_pid, 0U);
    EXPECT_EQ(e.nlmsg_seq, 0U);
    EXPECT_EQ(e.nlmsg_pid, 0U);
}

TEST(ReplayTransport, ServesRecordedRepliesWhateverTheSeq) {
    Fixture f;
    FixtureExchange ex;
    ex.request = message(20, NLM_F_REQUEST | NLM_F_DUMP, 0, Bytes(8, 1));
    zero_seq_pid(ex.request);
    ex.replies = {message(20, NLM_F_MULTI, 0, Bytes(4, 9)), done_msg()};
    f.exchanges.push_back(ex);
    ReplayTransport t(f, "unit");
    // The caller's seq/pid do not matter: the transport stamps its own anyway.
    const Bytes req = message(20, NLM_F_REQUEST | NLM_F_DUMP, 77, Bytes(8, 1));
    for (int i = 0; i < 3; ++i) {  // used up: the last matching exchange repeats
        auto dump = t.exchange(req);
        ASSERT_TRUE(dump) << to_string(dump.error());
        auto msgs = dump->messages();
        ASSERT_TRUE(msgs);
        ASSERT_EQ(msgs->size(), 1U);
        EXPECT_EQ(msgs->front().payload[0], 9);
    }
    EXPECT_EQ(t.served(), 3U);
}

TEST(ReplayTransport, IdenticalRequestsAreServedInOrder) {
    Fixture f;
    const Bytes req = message(20, NLM_F_REQUEST | NLM_F_DUMP, 0, Bytes(8, 1));
    for (const std::uint8_t v : {std::uint8_t{1}, std::uint8_t{2}}) {
        FixtureExchange ex;
        ex.request = req;
        zero_seq_pid(ex.request);
        ex.replies = {message(20, NLM_F_MULTI, 0, Bytes(4, v)), done_msg()};
        f.exchanges.push_back(ex);
    }
    ReplayTransport t(f);
    EXPECT_EQ(t.exchange(req)->messages()->front().payload[0], 1);
    EXPECT_EQ(t.exchange(req)->messages()->front().payload[0], 2);
    EXPECT_EQ(t.exchange(req)->messages()->front().payload[0], 2);
}

TEST(ReplayTransport, UnknownRequestIsAClearError) {
    ReplayTransport t(Fixture{}, "empty.txt");
    auto dump = t.exchange(build_inet_diag_request(Family::v4, kProtoTcp, kStatesTcpListen));
    ASSERT_FALSE(dump);
    EXPECT_EQ(dump.error().code, Errc::unexpected);
    EXPECT_NE(dump.error().detail.find("request not in empty.txt"), std::string::npos);
    EXPECT_NE(dump.error().detail.find("nlmsg_type 20"), std::string::npos);
}

TEST(ReplayTransport, MissingTerminatorIsATimeout) {
    Fixture f;
    FixtureExchange ex;
    ex.request = message(20, NLM_F_REQUEST | NLM_F_DUMP, 0, Bytes(8, 1));
    zero_seq_pid(ex.request);
    ex.replies = {message(20, NLM_F_MULTI, 0, Bytes(4, 9))};
    f.exchanges.push_back(ex);
    ReplayTransport t(f);
    auto dump = t.exchange(ex.request);
    ASSERT_FALSE(dump);
    EXPECT_EQ(dump.error().code, Errc::timeout);
}

TEST(ReplayTransport, OpensRecordedFiles) {
    auto t = ReplayTransport::open(VIPPORTD_FIXTURES "/sock_diag/scenario.txt");
    ASSERT_TRUE(t) << to_string(t.error());
    auto dump = (*t)->exchange(build_inet_diag_request(Family::v6, kProtoUdp, kStatesAll));
    ASSERT_TRUE(dump) << to_string(dump.error());
    EXPECT_FALSE(dump->data.empty());
    EXPECT_FALSE(ReplayTransport::open(VIPPORTD_FIXTURES "/nope.txt"));
}

// RecordingTransport over a replay of recorded kernel bytes: what it records replays to the same
// Dump, and kernel errors are recorded as NLMSG_ERROR with their errno.
TEST(RecordingTransport, RecordsWhatReplaysToTheSameDump) {
    auto kernel = ReplayTransport::open(VIPPORTD_FIXTURES "/sock_diag/scenario.txt");
    ASSERT_TRUE(kernel);
    auto errors = ReplayTransport::open(VIPPORTD_FIXTURES "/sock_diag/errors.txt");
    ASSERT_TRUE(errors);
    Fixture sink;
    RecordingTransport rec(**kernel, sink);
    const auto req =
        build_inet_diag_request(Family::v4, kProtoTcp, kStatesTcpListen | kStatesTcpBoundInactive);
    rec.annotate("tcp4");
    auto original = rec.exchange(req);
    ASSERT_TRUE(original);
    RecordingTransport rec_err(**errors, sink);
    const auto bad = build_inet_diag_request(Family::v4, 254, kStatesAll);
    auto failed = rec_err.exchange(bad);
    ASSERT_FALSE(failed);

    ASSERT_EQ(sink.exchanges.size(), 2U);
    EXPECT_EQ(sink.exchanges[0].comment, std::vector<std::string>{"tcp4"});
    auto reparsed = parse_fixture(format_fixture(sink));
    ASSERT_TRUE(reparsed);
    ReplayTransport replay(*reparsed);
    auto again = replay.exchange(req);
    ASSERT_TRUE(again) << to_string(again.error());
    EXPECT_EQ(again->data.size(), original->data.size());
    EXPECT_EQ(parse_inet_diag(*again, kProtoTcp).value(),
              parse_inet_diag(*original, kProtoTcp).value());
    auto err = replay.exchange(bad);
    ASSERT_FALSE(err);
    EXPECT_EQ(err.error().code, Errc::kernel);
    EXPECT_EQ(err.error().sys_errno, failed.error().sys_errno);
}

// RecordingSocket under a KernelTransport records datagrams byte for byte.
TEST(RecordingSocket, TeesDatagramsVerbatim) {
    // An inner socket that answers any request with one datagram: a message and DONE.
    class Inner final : public NetlinkSocket {
      public:
        Bytes reply;
        bool delivered = false;
        std::uint32_t port_id() const override { return 5; }
        Result<void> send(std::span<const std::uint8_t> d) override {
            const auto h = load<nlmsghdr>(d);
            reply = message(20, NLM_F_MULTI, h.nlmsg_seq, Bytes(4, 3));
            nlmsghdr r = load<nlmsghdr>(reply);
            r.nlmsg_pid = 5;
            store(std::span<std::uint8_t>(reply), 0, r);
            Bytes done = message(NLMSG_DONE, NLM_F_MULTI, h.nlmsg_seq, Bytes(4, 0));
            nlmsghdr dh = load<nlmsghdr>(done);
            dh.nlmsg_pid = 5;
            store(std::span<std::uint8_t>(done), 0, dh);
            reply.insert(reply.end(), done.begin(), done.end());
            return {};
        }
        Result<bool> wait_readable(std::chrono::milliseconds) override { return !delivered; }
        Result<Datagram> receive(std::span<std::uint8_t> buffer, bool peek) override {
            const std::size_t n = std::min(buffer.size(), reply.size());
            std::copy_n(reply.begin(), n, buffer.begin());
            if (!peek) {
                delivered = true;
            }
            return Datagram{peek ? reply.size() : n, 0, reply.size() > buffer.size()};
        }
    };
    Fixture sink;
    auto rec = std::make_unique<RecordingSocket>(std::make_unique<Inner>(), sink);
    rec->annotate("scripted");
    KernelTransport t(std::move(rec));
    const auto req = build_inet_diag_request(Family::v4, kProtoUdp, kStatesAll);
    auto dump = t.exchange(req);
    ASSERT_TRUE(dump) << to_string(dump.error());
    ASSERT_EQ(sink.exchanges.size(), 1U);
    EXPECT_EQ(sink.exchanges[0].comment, std::vector<std::string>{"scripted"});
    EXPECT_EQ(sink.exchanges[0].request, req);        // seq/pid zeroed again
    ASSERT_EQ(sink.exchanges[0].replies.size(), 1U);  // one datagram holding both messages
    auto recorded = sink.exchanges[0].replies[0];
    EXPECT_EQ(recorded.size(), 2 * (kNlmsghdrSize + 4));
    EXPECT_EQ(load<nlmsghdr>(recorded).nlmsg_seq, 0U);
    EXPECT_EQ(load<nlmsghdr>(recorded).nlmsg_pid, 0U);
}

}  // namespace
}  // namespace vipportd::netlink
