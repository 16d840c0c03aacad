#pragma once
// ReplayTransport serves recorded kernel replies (a Fixture, fixture.hpp) for recorded requests;
// RecordingTransport wraps any Transport and tees each exchange into a Fixture.
//
// Replay pushes the recorded datagrams through KernelTransport's own receive loop (over a scripted
// NetlinkSocket that stamps them with the live seq and port id), so unit tests exercise exactly
// the code path that reads the kernel: DONE, ERROR, DUMP_INTR and all.

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "netlink/error.hpp"
#include "netlink/fixture.hpp"
#include "netlink/kernel_transport.hpp"
#include "netlink/transport.hpp"

namespace vipportd::netlink {

class ReplayTransport final : public Transport {
  public:
    /// name appears in errors ("request not in <name>").
    explicit ReplayTransport(Fixture fixture, std::string name = "fixture");
    ~ReplayTransport() override;
    ReplayTransport(const ReplayTransport&) = delete;
    ReplayTransport& operator=(const ReplayTransport&) = delete;

    /// read_fixture(file), then a transport over it. Errors: those of read_fixture.
    [[nodiscard]] static Result<std::unique_ptr<ReplayTransport>> open(
        const std::filesystem::path& file);

    /// Requests are compared with nlmsg_seq and nlmsg_pid zeroed. Identical requests are served
    /// by their recorded exchanges in order; once those are used up, the last one repeats.
    /// Errors: Errc::unexpected "request not in <name>" (with the request's type, flags and
    /// hex), Errc::timeout when the recorded replies end without DONE/ACK, and every error the
    /// recorded bytes make KernelTransport report (Errc::kernel for a recorded NLMSG_ERROR, ...).
    [[nodiscard]] Result<Dump> exchange(std::span<const std::uint8_t> request) override;
    /// Streams the recorded replies through KernelTransport's streaming loop.
    [[nodiscard]] Result<bool> exchange_each(std::span<const std::uint8_t> request,
                                             const MessageSink& on_message) override;

    /// How many exchanges were served so far (tests check that a fixture was really used).
    [[nodiscard]] std::size_t served() const;

  private:
    class Socket;
    Socket* socket_;  // owned by loop_
    KernelTransport loop_;
};

/// A NetlinkSocket decorator that records every datagram sent and received, byte for byte (seq
/// and pid zeroed), into a Fixture: KernelTransport(std::make_unique<RecordingSocket>(...))
/// records exactly what the kernel sent, terminators and datagram boundaries included.
class RecordingSocket final : public NetlinkSocket {
  public:
    /// sink must outlive this socket.
    RecordingSocket(std::unique_ptr<NetlinkSocket> inner, Fixture& sink);

    /// Adds a comment line to the next recorded exchange.
    void annotate(std::string line);

    [[nodiscard]] std::uint32_t port_id() const override;
    [[nodiscard]] Result<void> send(std::span<const std::uint8_t> datagram) override;
    [[nodiscard]] Result<bool> wait_readable(std::chrono::milliseconds timeout) override;
    [[nodiscard]] Result<Datagram> receive(std::span<std::uint8_t> buffer, bool peek) override;

  private:
    std::unique_ptr<NetlinkSocket> inner_;
    Fixture& sink_;
    std::vector<std::string> pending_comment_;
};

class RecordingTransport final : public Transport {
  public:
    /// inner and sink must outlive this transport.
    RecordingTransport(Transport& inner, Fixture& sink);

    /// Adds a comment line to the next recorded exchange.
    void annotate(std::string line);

    /// inner.exchange(request), recorded: the request and every reply message with seq/pid
    /// zeroed, then the terminator the loop consumed (NLMSG_DONE, the ACK, or for Errc::kernel
    /// an NLMSG_ERROR with that errno). Other errors are recorded as a comment, without replies.
    [[nodiscard]] Result<Dump> exchange(std::span<const std::uint8_t> request) override;

  private:
    Transport& inner_;
    Fixture& sink_;
    std::vector<std::string> pending_comment_;
};

}  // namespace vipportd::netlink
