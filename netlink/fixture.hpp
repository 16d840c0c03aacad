#pragma once
// Netlink fixtures: recorded request/reply bytes as text, replayed by ReplayTransport through the
// production receive loop, written by RecordingTransport.
//
// File format (line oriented, UTF-8/ASCII):
//
//   # free text           comment. Comment lines before the first blank line of the file form
//                         the header (what was recorded, the commands, the kernel version);
//                         comment lines between exchanges belong to the exchange that follows.
//   > HEX                 starts an exchange: the request as sent, nlmsg_seq and nlmsg_pid zeroed.
//   < HEX                 starts one reply datagram of the current exchange (in order of
//                         arrival), with nlmsg_seq and nlmsg_pid zeroed in every message (and in
//                         the request header an NLMSG_ERROR echoes).
//   + HEX                 more bytes of the same datagram: the writer puts each message of a
//                         datagram on its own line, `<` for the first and `+` for the others.
//                         RecordingSocket records datagrams exactly as the kernel sent them;
//                         RecordingTransport (which only sees a Dump) writes one message per
//                         datagram and ends with a reconstructed NLMSG_DONE (dump), ACK
//                         (NLM_F_ACK) or NLMSG_ERROR (kernel error).
//   (blank)               ignored.
//
// HEX is pairs of hex digits; spaces and tabs between pairs are ignored (the writer groups 4 bytes
// per word, so the 16-byte nlmsghdr is the first four words of a line). A `<` before any `>`,
// a `+` without a datagram to continue, an odd number of digits or another leading character is
// an error naming the line.

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "netlink/error.hpp"

namespace vipportd::netlink {

struct FixtureExchange {
    std::vector<std::string> comment;  // lines without the leading "# "
    std::vector<std::uint8_t> request;
    std::vector<std::vector<std::uint8_t>> replies;  // datagrams
    friend bool operator==(const FixtureExchange&, const FixtureExchange&) = default;
};

struct Fixture {
    std::vector<std::string> header;  // lines without the leading "# "
    std::vector<FixtureExchange> exchanges;
    friend bool operator==(const Fixture&, const Fixture&) = default;
};

/// Parses fixture text. Errors: Errc::malformed with "<name>:<line>: what".
[[nodiscard]] Result<Fixture> parse_fixture(std::string_view text,
                                            std::string_view name = "fixture");
/// Reads and parses a file. Errors: Errc::system (cannot read) or parse errors.
[[nodiscard]] Result<Fixture> read_fixture(const std::filesystem::path& file);
/// The text form (parse_fixture(format_fixture(f)) == f).
[[nodiscard]] std::string format_fixture(const Fixture& fixture);
/// Writes format_fixture(fixture) to file. Errors: Errc::system.
[[nodiscard]] Result<void> write_fixture(const Fixture& fixture, const std::filesystem::path& file);

/// Sets nlmsg_seq and nlmsg_pid to 0 in every message of a buffer, and in the request header that
/// an NLMSG_ERROR echoes; stops at the first header that does not fit (the bytes are recorded as
/// they are, so a malformed reply stays malformed).
void zero_seq_pid(std::span<std::uint8_t> messages);

/// "0a1b2c3d 4e..." (groups of 4 bytes) and its inverse (whitespace ignored; nullopt-like error
/// on odd length or a non-hex character).
[[nodiscard]] std::string to_hex(std::span<const std::uint8_t> bytes);
[[nodiscard]] Result<std::vector<std::uint8_t>> from_hex(std::string_view text);

}  // namespace vipportd::netlink
