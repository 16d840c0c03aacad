#pragma once
// A throw-away network namespace for tests that need the real kernel (root only).
//   TestNetns ns;                       // ip netns add vipportd-t<pid>-<n>; lo up
//   ns.sh("ip addr add 1.2.3.4/32 dev lo");
//   int fd = ns.in([] { return socket(...); });   // runs on a thread inside the namespace
// Sockets created inside in() stay in the namespace for their whole life, whatever thread uses
// them afterwards (kernel.md §1.9), so KernelTransport objects can be built inside in() too.

#include <string>
#include <thread>
#include <type_traits>
#include <utility>

namespace vipportd::test {

class TestNetns {
  public:
    TestNetns();
    ~TestNetns();
    TestNetns(const TestNetns&) = delete;
    TestNetns& operator=(const TestNetns&) = delete;

    [[nodiscard]] const std::string& name() const { return name_; }
    /// Runs a shell command inside the namespace; returns its exit status.
    int run(const std::string& command) const;
    /// Same, and throws std::runtime_error (with the command) when it fails.
    void sh(const std::string& command) const;
    /// Runs a shell command inside the namespace and returns its standard output.
    [[nodiscard]] std::string output(const std::string& command) const;

    /// Runs f on a fresh thread that has entered the namespace, and returns its result.
    template <class F>
    auto in(F&& f) const -> std::invoke_result_t<F> {
        using R = std::invoke_result_t<F>;
        if constexpr (std::is_void_v<R>) {
            std::thread t([&] {
                enter();
                f();
            });
            t.join();
        } else {
            R result{};
            std::thread t([&] {
                enter();
                result = f();
            });
            t.join();
            return result;
        }
    }

  private:
    void enter() const;  // setns(CLONE_NEWNET) on the calling thread; aborts on failure
    std::string name_;
};

/// True when the process may create namespaces (root); tests GTEST_SKIP() otherwise.
bool can_create_netns();

}  // namespace vipportd::test
