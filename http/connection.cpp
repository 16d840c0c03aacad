#include "http/connection.hpp"

namespace vipportd::http {

// The production instantiation, compiled once here (the header declares it extern).
template class Connection<boost::asio::ip::tcp::socket>;

}  // namespace vipportd::http
