#include "http/connection.hpp"

namespace vipportd::http {

// The production instantiations, compiled once here (the header declares them extern).
template class Connection<boost::asio::ip::tcp::socket>;
template class Connection<TlsStream>;

}  // namespace vipportd::http
