#pragma once
// Errors of the netlink layer: a code a caller can branch on plus a precise human-readable detail
// (what was being read, the errno, the offset of a malformed attribute). No exceptions, no logging.

#include <string>
#include <utility>

#include <boost/system/result.hpp>

namespace vipportd::netlink {

enum class Errc {
    system,       // a syscall failed; sys_errno says which errno
    kernel,       // the kernel answered NLMSG_ERROR; sys_errno holds the positive errno
    truncated,    // a message or attribute is shorter than its header claims
    malformed,    // a value the decoder cannot accept (bad type, bad length, unknown layout)
    interrupted,  // NLM_F_DUMP_INTR (or a generation change) persisted after every retry
    unexpected,   // a message that does not belong to our request (seq, port id, type)
    timeout,      // the kernel did not finish a dump in time
};

struct Error {
    Errc code = Errc::malformed;
    int sys_errno = 0;
    std::string detail;

    static Error sys(int err, std::string what) { return {Errc::system, err, std::move(what)}; }
    static Error of(Errc c, std::string what) { return {c, 0, std::move(what)}; }
};

/// Human-readable "detail: strerror" form used in logs and in SYS.1006 error bodies.
std::string to_string(const Error& e);

/// boost::system::result with our Error; value() on an error throws std::runtime_error(to_string).
template <class T>
using Result = boost::system::result<T, Error>;

[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

}  // namespace vipportd::netlink
