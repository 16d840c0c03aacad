// The one translation unit that compiles Asio SSL (separate compilation, see CMakeLists.txt);
// the rest of Asio and Beast is compiled in agent/boost_src.cpp.
#include <boost/asio/ssl/impl/src.hpp>
