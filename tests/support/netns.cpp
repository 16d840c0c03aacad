#include "tests/support/netns.hpp"

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <sched.h>
#include <stdexcept>
#include <unistd.h>

namespace vipportd::test {

namespace {
std::atomic<int> counter{0};

std::string quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') {
            out += "'\\''";
        } else {
            out += c;
        }
    }
    return out + "'";
}
}  // namespace

bool can_create_netns() { return geteuid() == 0; }

TestNetns::TestNetns()
    : name_("vipportd-t" + std::to_string(getpid()) + "-" + std::to_string(counter++)) {
    if (std::system(("ip netns add " + name_).c_str()) != 0) {
        throw std::runtime_error("cannot create network namespace " + name_);
    }
    sh("ip link set lo up");
}

TestNetns::~TestNetns() {
    [[maybe_unused]] int rc = std::system(("ip netns del " + name_ + " 2>/dev/null").c_str());
}

int TestNetns::run(const std::string& command) const {
    const std::string full = "ip netns exec " + name_ + " sh -c " + quote(command);
    const int status = std::system(full.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

void TestNetns::sh(const std::string& command) const {
    if (int rc = run(command); rc != 0) {
        throw std::runtime_error("in netns " + name_ + ": `" + command + "` exited " +
                                 std::to_string(rc));
    }
}

std::string TestNetns::output(const std::string& command) const {
    const std::string full = "ip netns exec " + name_ + " sh -c " + quote(command);
    FILE* p = popen(full.c_str(), "r");
    if (p == nullptr) {
        throw std::runtime_error("popen failed for " + command);
    }
    std::string out;
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) {
        out.append(buf.data(), n);
    }
    pclose(p);
    return out;
}

void TestNetns::enter() const {
    const std::string path = "/run/netns/" + name_;
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
        std::perror(("enter " + path).c_str());
        std::abort();
    }
    close(fd);
}

}  // namespace vipportd::test
