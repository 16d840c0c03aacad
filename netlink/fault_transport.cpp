#include "netlink/fault_transport.hpp"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <deque>
#include <utility>

#include <linux/netlink.h>

#include "netlink/bytes.hpp"

namespace vipportd::netlink {

namespace {

// Any non-zero value: the loop only checks that replies carry the port id the socket reports.
constexpr std::uint32_t kFaultPort = 0x7fa17;
// Datagram size for re-cut replies: the kernel sizes dump skbs to the reader's buffer, capped
// near 32 KiB (kernel.md §1.11), which is also KernelTransport's initial buffer.
constexpr std::size_t kDatagramSize = 32768;

// xorshift32 (Marsaglia 2003): deterministic garbage, the same bytes for the same seed everywhere.
class Garbage {
  public:
    explicit Garbage(std::uint32_t seed) : state_(seed == 0 ? 0x9e3779b9U : seed) {}
    std::uint8_t next() {
        state_ ^= state_ << 13;
        state_ ^= state_ >> 17;
        state_ ^= state_ << 5;
        return static_cast<std::uint8_t>(state_ >> 24);
    }
    void fill(std::span<std::uint8_t> bytes) {
        for (auto& b : bytes) {
            b = next();
        }
    }

  private:
    std::uint32_t state_;
};

// A terminator in the kernel's layout: NLMSG_DONE carries an int status (0), an ACK a struct
// nlmsgerr whose error is 0 or -errno followed by the request's header (linux/netlink.h).
std::vector<std::uint8_t> terminator(std::uint16_t type,
                                     std::uint16_t flags,
                                     int error,
                                     const nlmsghdr& request) {
    const std::size_t len = kNlmsghdrSize + (type == NLMSG_DONE ? sizeof(int) : sizeof(nlmsgerr));
    std::vector<std::uint8_t> d(len, 0);
    nlmsghdr h{};
    h.nlmsg_len = static_cast<std::uint32_t>(len);
    h.nlmsg_type = type;
    h.nlmsg_flags = flags;
    store(std::span<std::uint8_t>(d), 0, h);
    store(std::span<std::uint8_t>(d), kNlmsghdrSize, error);
    if (type == NLMSG_ERROR) {
        store(std::span<std::uint8_t>(d), kNlmsghdrSize + sizeof(int), request);
    }
    return d;
}

// Calls f(datagram, header offset, header) for every well-formed message of a datagram.
template <class F>
void each_message(std::vector<std::uint8_t>& datagram, F&& f) {
    MessageWalker walk(datagram);
    while (true) {
        const std::size_t at = walk.offset();
        auto m = walk.next();
        if (!m || !*m) {
            return;
        }
        f(datagram, at, (*m)->header);
    }
}

bool applies(const Fault& f, std::span<const std::uint8_t> request) {
    const auto h = load_prefix<nlmsghdr>(request);
    if (!h) {
        return false;
    }
    if (f.request_type && h->nlmsg_type != *f.request_type) {
        return false;
    }
    if (f.payload_match) {
        const std::size_t at = kNlmsghdrSize + f.payload_match->first;
        if (at >= request.size() || request[at] != f.payload_match->second) {
            return false;
        }
    }
    return true;
}

}  // namespace

std::string_view to_string(FaultKind kind) {
    switch (kind) {
        case FaultKind::dump_intr:
            return "dump_intr";
        case FaultKind::kernel_error:
            return "kernel_error";
        case FaultKind::socket_error:
            return "socket_error";
        case FaultKind::truncated:
            return "truncated";
        case FaultKind::msg_trunc:
            return "msg_trunc";
        case FaultKind::garbage_payload:
            return "garbage_payload";
        case FaultKind::garbage_datagram:
            return "garbage_datagram";
        case FaultKind::never_ends:
            return "never_ends";
        case FaultKind::silence:
            return "silence";
    }
    return "unknown";
}

// A scripted socket: send() stamps the armed datagrams with the live seq and port id and queues
// them; receive() hands them out with recvmsg semantics, plus the armed socket-level faults.
class FaultTransport::Socket final : public NetlinkSocket {
  public:
    struct Script {
        std::deque<std::vector<std::uint8_t>> datagrams;
        std::size_t raw_front = 0;         // this many leading datagrams are not stamped (garbage)
        int receive_errno = 0;             // the first receive fails with it
        bool msg_trunc = false;            // the first non-peek receive reports MSG_TRUNC
        std::vector<std::uint8_t> repeat;  // once empty, this datagram repeats forever
    };

    void arm(Script script) { script_ = std::move(script); }

    [[nodiscard]] std::uint32_t port_id() const override { return kFaultPort; }

    [[nodiscard]] Result<void> send(std::span<const std::uint8_t> datagram) override {
        seq_ = datagram.size() >= kNlmsghdrSize ? load<nlmsghdr>(datagram).nlmsg_seq : 0;
        std::size_t i = 0;
        for (auto& d : script_.datagrams) {
            if (i++ < script_.raw_front) {
                continue;
            }
            stamp(d);
        }
        stamp(script_.repeat);
        return {};
    }

    [[nodiscard]] Result<bool> wait_readable(std::chrono::milliseconds) override {
        // Nothing queued and nothing more coming: report the deadline at once, as a kernel that
        // stays silent would after the timeout (no test sleeps).
        return !script_.datagrams.empty() || !script_.repeat.empty() || script_.receive_errno != 0;
    }

    [[nodiscard]] Result<Datagram> receive(std::span<std::uint8_t> buffer, bool peek) override {
        if (script_.receive_errno != 0) {
            const int err = std::exchange(script_.receive_errno, 0);
            return Error::sys(err, peek ? "netlink recvmsg(MSG_PEEK)" : "netlink recvmsg");
        }
        if (script_.datagrams.empty()) {
            if (script_.repeat.empty()) {
                return Error::sys(EAGAIN, "fault recvmsg");
            }
            script_.datagrams.push_back(script_.repeat);
        }
        const auto& front = script_.datagrams.front();
        const std::size_t n = std::min(front.size(), buffer.size());
        std::copy_n(front.begin(), n, buffer.begin());
        Datagram d;
        d.length = peek ? front.size() : n;
        d.truncated = front.size() > buffer.size();
        if (!peek) {
            if (std::exchange(script_.msg_trunc, false)) {
                d.truncated = true;
            }
            script_.datagrams.pop_front();
            if (script_.raw_front > 0) {
                --script_.raw_front;
            }
        }
        return d;
    }

  private:
    void stamp(std::vector<std::uint8_t>& d) const {
        each_message(d, [&](std::vector<std::uint8_t>& bytes, std::size_t at, const nlmsghdr&) {
            store(std::span<std::uint8_t>(bytes), at + offsetof(nlmsghdr, nlmsg_seq), seq_);
            store(std::span<std::uint8_t>(bytes), at + offsetof(nlmsghdr, nlmsg_pid), kFaultPort);
        });
    }

    Script script_;
    std::uint32_t seq_ = 0;
};

namespace {
std::unique_ptr<NetlinkSocket> hold(NetlinkSocket* s) { return std::unique_ptr<NetlinkSocket>(s); }
}  // namespace

FaultTransport::FaultTransport(std::unique_ptr<Transport> inner, KernelTransportOptions options)
    : inner_(std::move(inner)), socket_(new Socket()), loop_(hold(socket_), options) {}

FaultTransport::~FaultTransport() = default;

void FaultTransport::inject(Fault fault) { faults_.push_back({fault, 0, 0}); }

void FaultTransport::clear() { faults_.clear(); }

Result<Dump> FaultTransport::exchange(std::span<const std::uint8_t> request) {
    ++exchanges_;
    const Fault* chosen = nullptr;
    for (auto& a : faults_) {
        if (!applies(a.fault, request)) {
            continue;
        }
        ++a.seen;
        if (chosen == nullptr && a.seen > a.fault.skip &&
            (a.fault.times < 0 || a.used < a.fault.times)) {
            ++a.used;
            chosen = &a.fault;
        }
    }
    if (chosen == nullptr) {
        return inner_->exchange(request);
    }
    ++injected_;
    const Fault f = *chosen;
    // The request as the kernel would echo it: header only (NETLINK_CAP_ACK), seq/pid stamped
    // by the loop; only its type and flags matter here.
    nlmsghdr req = load_prefix<nlmsghdr>(request).value_or(nlmsghdr{});
    req.nlmsg_len = static_cast<std::uint32_t>(kNlmsghdrSize);

    Socket::Script script;
    if (f.kind == FaultKind::kernel_error) {
        auto err = terminator(NLMSG_ERROR, NLM_F_CAPPED, -f.sys_errno, req);
        script.datagrams.push_back(std::move(err));
        socket_->arm(std::move(script));
        return loop_.exchange(request);
    }
    if (f.kind == FaultKind::silence) {
        socket_->arm(std::move(script));
        return loop_.exchange(request);
    }

    auto real = inner_->exchange(request);
    if (!real) {
        return real.error();  // nothing to alter
    }
    // Re-cut the reply into kernel-sized datagrams of whole messages.
    std::vector<std::uint8_t> current;
    MessageWalker walk(real->data);
    while (true) {
        auto m = walk.next();
        if (!m) {
            return m.error();
        }
        if (!*m) {
            break;
        }
        const auto bytes = std::span<const std::uint8_t>(real->data)
                               .subspan((*m)->offset, std::min(align4((*m)->header.nlmsg_len),
                                                               real->data.size() - (*m)->offset));
        if (!current.empty() && current.size() + bytes.size() > kDatagramSize) {
            script.datagrams.push_back(std::move(current));
            current.clear();
        }
        current.insert(current.end(), bytes.begin(), bytes.end());
    }
    if (!current.empty()) {
        script.datagrams.push_back(std::move(current));
    }
    const bool dump_request = (req.nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
    std::optional<std::vector<std::uint8_t>> end;
    if (dump_request) {
        const auto intr =
            (real->interrupted || f.kind == FaultKind::dump_intr) ? NLM_F_DUMP_INTR : 0;
        end = terminator(NLMSG_DONE, static_cast<std::uint16_t>(NLM_F_MULTI | intr), 0, req);
    } else if ((req.nlmsg_flags & NLM_F_ACK) != 0) {
        end = terminator(NLMSG_ERROR, NLM_F_CAPPED, 0, req);
    }

    switch (f.kind) {
        case FaultKind::dump_intr:
            if (!dump_request) {
                // No DONE to carry it: flag every reply message instead.
                for (auto& d : script.datagrams) {
                    each_message(d, [](std::vector<std::uint8_t>& b, std::size_t at, nlmsghdr h) {
                        h.nlmsg_flags |= NLM_F_DUMP_INTR;
                        store(std::span<std::uint8_t>(b), at, h);
                    });
                }
            }
            break;
        case FaultKind::socket_error:
            script.receive_errno = f.sys_errno;
            break;
        case FaultKind::msg_trunc:
            script.msg_trunc = true;
            break;
        case FaultKind::truncated: {
            if (script.datagrams.empty() && end) {
                script.datagrams.push_back(*end);  // an empty dump: cut its DONE instead
                end.reset();
            }
            if (script.datagrams.empty()) {
                break;
            }
            auto& d = script.datagrams.front();
            std::size_t last_at = 0;
            std::size_t last_len = 0;
            each_message(d, [&](std::vector<std::uint8_t>&, std::size_t at, const nlmsghdr& h) {
                last_at = at;
                last_len = h.nlmsg_len;
            });
            const std::size_t cut = std::clamp<std::size_t>(f.bytes, 1, last_len - 1);
            d.resize(last_at + last_len - cut);
            break;
        }
        case FaultKind::garbage_payload: {
            Garbage g(f.seed);
            for (auto& d : script.datagrams) {
                each_message(d,
                             [&](std::vector<std::uint8_t>& b, std::size_t at, const nlmsghdr& h) {
                                 const std::size_t from = at + kNlmsghdrSize + f.bytes;
                                 const std::size_t to = at + h.nlmsg_len;
                                 if (from < to) {
                                     g.fill(std::span<std::uint8_t>(b).subspan(from, to - from));
                                 }
                             });
            }
            break;
        }
        case FaultKind::garbage_datagram: {
            std::vector<std::uint8_t> junk(std::max<std::size_t>(f.bytes, 1));
            Garbage(f.seed).fill(junk);
            script.datagrams.push_front(std::move(junk));
            script.raw_front = 1;
            break;
        }
        case FaultKind::never_ends: {
            // Every message must say "more follows", or a non-dump request would end early.
            for (auto& d : script.datagrams) {
                each_message(d, [](std::vector<std::uint8_t>& b, std::size_t at, nlmsghdr h) {
                    h.nlmsg_flags |= NLM_F_MULTI;
                    store(std::span<std::uint8_t>(b), at, h);
                });
            }
            // Then the last message again and again (an empty dump repeats an NLMSG_NOOP).
            nlmsghdr noop{};
            noop.nlmsg_len = static_cast<std::uint32_t>(kNlmsghdrSize);
            noop.nlmsg_type = NLMSG_NOOP;
            noop.nlmsg_flags = NLM_F_MULTI;
            std::vector<std::uint8_t> repeat(kNlmsghdrSize);
            store(std::span<std::uint8_t>(repeat), 0, noop);
            if (!script.datagrams.empty()) {
                each_message(script.datagrams.back(),
                             [&](std::vector<std::uint8_t>& b, std::size_t at, const nlmsghdr& h) {
                                 const auto first = b.begin() + static_cast<std::ptrdiff_t>(at);
                                 repeat.assign(first, first + h.nlmsg_len);
                             });
            }
            script.repeat = std::move(repeat);
            end.reset();
            break;
        }
        case FaultKind::kernel_error:
        case FaultKind::silence:
            break;
    }
    if (end) {
        script.datagrams.push_back(std::move(*end));
    }
    socket_->arm(std::move(script));
    return loop_.exchange(request);
}

// ---------------------------------------------------------------------------------------------

FaultEventSource::FaultEventSource(std::unique_ptr<nft::EventSource> inner)
    : inner_(std::move(inner)) {}

Result<nft::EventSummary> FaultEventSource::drain() {
    if (fail_errno_ != 0) {
        return Error::sys(std::exchange(fail_errno_, 0), "nf_tables: event socket recv");
    }
    nft::EventSummary out;
    if (inner_) {
        auto r = inner_->drain();
        if (!r) {
            return r;
        }
        out = *r;
    }
    if (std::exchange(overflow_, false)) {
        out.overflowed = true;
    }
    return out;
}

int FaultEventSource::fd() const { return inner_ ? inner_->fd() : -1; }

// ---------------------------------------------------------------------------------------------

FaultIptSource::FaultIptSource(std::unique_ptr<ipt::IptSource> inner) : inner_(std::move(inner)) {}

void FaultIptSource::inject(IptFault fault) { faults_.push_back(std::move(fault)); }

FaultIptSource::IptFault* FaultIptSource::take(Call call, Family f, std::string_view table) {
    for (auto& fault : faults_) {
        if (fault.call != call || fault.times == 0 || (fault.family && *fault.family != f) ||
            (!fault.table.empty() && fault.table != table)) {
            continue;
        }
        if (fault.times > 0) {
            --fault.times;
        }
        return &fault;
    }
    return nullptr;
}

namespace {
std::string call_label(Family f, bool info) {
    if (f == Family::v4) {
        return info ? "IPT_SO_GET_INFO" : "IPT_SO_GET_ENTRIES";
    }
    return info ? "IP6T_SO_GET_INFO" : "IP6T_SO_GET_ENTRIES";
}
}  // namespace

Result<std::vector<std::string>> FaultIptSource::table_names(Family f) {
    if (auto* fault = take(Call::names, f, {}); fault && fault->kind == Kind::error) {
        return Error::sys(fault->sys_errno,
                          std::string("open /proc/self/net/") +
                              (f == Family::v4 ? "ip_tables_names" : "ip6_tables_names"));
    }
    return inner_->table_names(f);
}

Result<ipt::TableInfo> FaultIptSource::get_info(Family f, std::string_view table) {
    if (auto* fault = take(Call::info, f, table); fault && fault->kind == Kind::error) {
        return Error::sys(fault->sys_errno, std::string(table) + ": " + call_label(f, true));
    }
    return inner_->get_info(f, table);
}

Result<std::vector<std::uint8_t>> FaultIptSource::get_entries(Family f,
                                                              std::string_view table,
                                                              std::uint32_t size) {
    auto* fault = take(Call::entries, f, table);
    if (fault != nullptr && fault->kind == Kind::error) {
        return Error::sys(fault->sys_errno, std::string(table) + ": " + call_label(f, false));
    }
    auto entries = inner_->get_entries(f, table, size);
    if (!entries || fault == nullptr) {
        return entries;
    }
    auto& e = *entries;
    if (fault->kind == Kind::truncate) {
        e.resize(e.size() - std::min(fault->bytes, e.size()));
    } else if (fault->kind == Kind::garbage && fault->bytes < e.size()) {
        Garbage(fault->seed).fill(std::span<std::uint8_t>(e).subspan(fault->bytes));
    }
    return entries;
}

}  // namespace vipportd::netlink
