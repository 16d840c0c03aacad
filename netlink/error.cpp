#include "netlink/error.hpp"

#include <cstring>
#include <stdexcept>

namespace vipportd::netlink {

std::string to_string(const Error& e) {
    if (e.sys_errno != 0) {
        return e.detail + ": " + std::strerror(e.sys_errno);
    }
    return e.detail;
}

void throw_exception_from_error(const Error& e, const boost::source_location&) {
    throw std::runtime_error(to_string(e));
}

}  // namespace vipportd::netlink
