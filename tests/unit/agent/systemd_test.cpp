#include "agent/systemd.hpp"

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <unistd.h>

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>

namespace vipportd::agent::systemd {
namespace {

Getenv env_of(std::map<std::string, std::string> vars) {
    auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
    return [shared](const char* name) -> const char* {
        auto it = shared->find(name);
        return it == shared->end() ? nullptr : it->second.c_str();
    };
}

/// A datagram socket bound to a path or an abstract name, standing in for systemd.
class Receiver {
  public:
    explicit Receiver(bool abstract) : fd_(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        const std::string name =
            "vipportd-test-" + std::to_string(::getpid()) + (abstract ? "-abs" : "-path");
        socklen_t len = 0;
        if (abstract) {
            address_ = "@" + name;
            std::memcpy(sa.sun_path + 1, name.data(), name.size());
            len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
        } else {
            address_ = ::testing::TempDir() + name;
            ::unlink(address_.c_str());
            std::memcpy(sa.sun_path, address_.data(), address_.size());
            len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size() + 1);
        }
        EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&sa), len), 0) << std::strerror(errno);
    }
    ~Receiver() {
        ::close(fd_);
        if (address_.front() == '/') {
            ::unlink(address_.c_str());
        }
    }
    [[nodiscard]] const std::string& address() const { return address_; }
    std::string receive() {
        char buf[512];
        const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
        return n < 0 ? std::string("<nothing>") : std::string(buf, static_cast<std::size_t>(n));
    }

  private:
    int fd_;
    std::string address_;
};

TEST(Notifier, DisabledWithoutNotifySocketIsASilentSuccess) {
    const auto n = Notifier::from_environment(env_of({}));
    EXPECT_FALSE(n.enabled());
    std::string error = "untouched";
    EXPECT_TRUE(n.notify("READY=1", &error));
    EXPECT_EQ(error, "untouched");
    EXPECT_FALSE(Notifier::from_environment(env_of({{"NOTIFY_SOCKET", ""}})).enabled());
}

TEST(Notifier, SendsToAFilesystemSocket) {
    Receiver r(false);
    const auto n = Notifier::from_environment(env_of({{"NOTIFY_SOCKET", r.address()}}));
    ASSERT_TRUE(n.enabled());
    std::string error;
    ASSERT_TRUE(n.notify("READY=1\nSTATUS=hello", &error)) << error;
    EXPECT_EQ(r.receive(), "READY=1\nSTATUS=hello");
}

TEST(Notifier, SendsToAnAbstractSocketWrittenWithAt) {
    Receiver r(true);
    const Notifier n(r.address());
    std::string error;
    ASSERT_TRUE(n.notify("WATCHDOG=1", &error)) << error;
    EXPECT_EQ(r.receive(), "WATCHDOG=1");
}

TEST(Notifier, ReportsWhyItFailed) {
    std::string error;
    EXPECT_FALSE(Notifier("relative/path").notify("READY=1", &error));
    EXPECT_NE(error.find("not an absolute path"), std::string::npos) << error;
    EXPECT_FALSE(Notifier("/nonexistent/vipportd/notify").notify("READY=1", &error));
    EXPECT_NE(error.find("sendto"), std::string::npos) << error;
    EXPECT_FALSE(Notifier("/" + std::string(200, 'x')).notify("READY=1", &error));
    EXPECT_NE(error.find("longer than sun_path"), std::string::npos) << error;
}

TEST(Notifier, ReloadingCarriesMonotonicUsec) {
    const std::string m = reloading_message();
    EXPECT_EQ(m.rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0U) << m;
    EXPECT_GT(std::stoull(m.substr(m.find('=', 12) + 1)), 0U);
}

TEST(Watchdog, IntervalFromEnvironment) {
    EXPECT_EQ(watchdog_interval(42, env_of({})), std::nullopt);
    EXPECT_EQ(watchdog_interval(42, env_of({{"WATCHDOG_USEC", "30000000"}})),
              std::chrono::microseconds(30000000));
    EXPECT_EQ(watchdog_interval(42, env_of({{"WATCHDOG_USEC", "400000"}, {"WATCHDOG_PID", "42"}})),
              std::chrono::microseconds(400000));
    // Inherited from a parent: not ours.
    EXPECT_EQ(watchdog_interval(42, env_of({{"WATCHDOG_USEC", "400000"}, {"WATCHDOG_PID", "7"}})),
              std::nullopt);
    EXPECT_EQ(watchdog_interval(42, env_of({{"WATCHDOG_USEC", "0"}})), std::nullopt);
    EXPECT_EQ(watchdog_interval(42, env_of({{"WATCHDOG_USEC", "12x"}})), std::nullopt);
    EXPECT_EQ(watchdog_interval(42, env_of({{"WATCHDOG_USEC", "-5"}})), std::nullopt);
}

TEST(ListenFds, OnlyForThisPidWithNames) {
    EXPECT_TRUE(listen_fds(42, env_of({{"LISTEN_FDS", "2"}})).empty());  // LISTEN_PID mandatory
    EXPECT_TRUE(listen_fds(42, env_of({{"LISTEN_FDS", "2"}, {"LISTEN_PID", "41"}})).empty());
    EXPECT_TRUE(listen_fds(42, env_of({{"LISTEN_FDS", "x"}, {"LISTEN_PID", "42"}})).empty());
    const auto fds = listen_fds(
        42, env_of({{"LISTEN_FDS", "2"}, {"LISTEN_PID", "42"}, {"LISTEN_FDNAMES", "v4:v6"}}));
    ASSERT_EQ(fds.size(), 2U);
    EXPECT_EQ(fds[0].fd, 3);
    EXPECT_EQ(fds[0].name, "v4");
    EXPECT_EQ(fds[1].fd, 4);
    EXPECT_EQ(fds[1].name, "v6");
    const auto unnamed = listen_fds(42, env_of({{"LISTEN_FDS", "1"}, {"LISTEN_PID", "42"}}));
    ASSERT_EQ(unnamed.size(), 1U);
    EXPECT_EQ(unnamed[0].name, "unknown");
}

}  // namespace
}  // namespace vipportd::agent::systemd
