// Kernel faults seen from the API: a real SnapshotService over the three real sources, each on
// recorded kernel replies behind a fault injector (netlink/fault_transport.hpp), answered by the
// real Router. A failed required source answers 503 SYS.1006 naming the source and what failed;
// when the fault clears, the next answer is the complete one again. Nothing hangs: every answer
// arrives within a bound.

#include <cerrno>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "agent/ipt_legacy_source.hpp"
#include "agent/nft_source.hpp"
#include "agent/snapshot_service.hpp"
#include "agent/socket_source.hpp"
#include "http/router.hpp"
#include "http_fakes.hpp"
#include "netlink/fault_transport.hpp"
#include "netlink/ipt_legacy.hpp"
#include "netlink/replay_transport.hpp"

namespace vipportd::http {
namespace {

namespace bhttp = boost::beast::http;
using netlink::Fault;
using netlink::FaultKind;
using testing::StartsWith;

constexpr auto kGetGen = static_cast<std::uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN);
constexpr std::string_view kTcp = "/zstack/v1/vips/vip-1/usedports?protocol=TCP";

std::unique_ptr<netlink::FaultTransport> faulty(const std::string& fixture) {
    auto replay = netlink::ReplayTransport::open(std::string(VIPPORTD_FIXTURES) + "/" + fixture);
    EXPECT_TRUE(replay) << netlink::to_string(replay.error());
    netlink::KernelTransportOptions options;
    options.timeout = std::chrono::milliseconds(50);
    return std::make_unique<netlink::FaultTransport>(std::move(*replay), options);
}

std::string error_body(std::string_view details) {
    return R"({"error":{"code":"SYS.1006","description":"An operation failed","details":")" +
           std::string(details) + R"("}})";
}

class FaultRouter : public ::testing::Test {
  protected:
    FaultRouter() {
        auto sock = faulty("sock_diag/scenario.txt");
        sockets = sock.get();
        auto nft = faulty("nft/native_ip.txt");
        nftables = nft.get();
        auto ev = std::make_unique<netlink::FaultEventSource>();
        events = ev.get();
        auto replay = netlink::ipt::ReplayIptSource::load(std::string(VIPPORTD_FIXTURES) +
                                                          "/ipt/zstack_nat.txt");
        EXPECT_TRUE(replay) << netlink::to_string(replay.error());
        auto ipt = std::make_unique<netlink::FaultIptSource>(std::move(*replay));
        legacy = ipt.get();

        std::vector<agent::SourceSlot> slots;
        slots.push_back({std::make_unique<agent::SocketSource>(std::move(sock), nullptr), true});
        slots.push_back({std::make_unique<agent::NftSource>(std::move(nft), std::move(ev)), true});
        slots.push_back({std::make_unique<agent::IptLegacySource>(std::move(ipt)), true});
        service = std::make_shared<agent::SnapshotService>(std::move(slots));

        RouterDeps deps;
        deps.snapshots = service;
        auto registry = std::make_shared<const agent::VipRegistry>(
            std::vector<agent::VipEntry>{{"vip-1", test::ip("1.2.3.4")}});
        deps.registry = [registry] { return registry; };
        deps.auth = std::make_shared<AcceptAll>();
        router = std::make_unique<Router>(std::move(deps));
    }

    // One GET through the router and the snapshot worker; never waits more than 10 s.
    Response get(std::string_view target = kTcp) {
        auto done = std::make_shared<std::promise<Response>>();
        auto answer = done->get_future();
        router->handle(test::get(std::string(target)),
                       [done](Response res) { done->set_value(std::move(res)); });
        if (answer.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
            ADD_FAILURE() << "no answer within 10 s";
            std::abort();  // the callback still refers to this fixture
        }
        return answer.get();
    }

    netlink::FaultTransport* sockets = nullptr;
    netlink::FaultTransport* nftables = nullptr;
    netlink::FaultEventSource* events = nullptr;
    netlink::FaultIptSource* legacy = nullptr;
    std::shared_ptr<agent::SnapshotService> service;
    std::unique_ptr<Router> router;
};

TEST_F(FaultRouter, PermissionErrorAnswers503NamingTheSourceThenRecovers) {
    const Response healthy = get();
    ASSERT_EQ(healthy.result(), bhttp::status::ok) << healthy.body();
    // Sockets (22, 80, 443, ...), nftables (80, 443, 1000-2000, ...) and legacy (80, 81, 443).
    EXPECT_THAT(healthy.body().str(), StartsWith(R"({"inventories":[{"uuid":"vip-1","protcol":"TCP")"));
    EXPECT_NE(healthy.body().view().find(R"("1500")"), std::string::npos);  // nft: dport 1000-2000
    EXPECT_NE(healthy.body().view().find(R"("81")"), std::string::npos);  // legacy: OUTPUT DNAT 81

    // The cached ruleset is confirmed with GETGEN; the kernel now refuses it.
    nftables->inject(Fault(FaultKind::kernel_error).on_type(kGetGen).with_errno(EPERM));
    const Response refused = get();
    EXPECT_EQ(refused.result(), bhttp::status::service_unavailable);
    EXPECT_EQ(refused[bhttp::field::content_type], "application/json; charset=utf-8");
    EXPECT_EQ(refused.body(), error_body("failed to read kernel state from source[nftables]: "
                                         "nf_tables: GETGEN: Operation not permitted"));

    const Response recovered = get();
    EXPECT_EQ(recovered.result(), bhttp::status::ok);
    EXPECT_EQ(recovered.body(), healthy.body());
}

TEST_F(FaultRouter, EverySourceIsNamedWhenItFails) {
    const Response healthy = get();
    ASSERT_EQ(healthy.result(), bhttp::status::ok) << healthy.body();

    sockets->inject(Fault(FaultKind::never_ends));
    Response res = get();
    EXPECT_EQ(res.result(), bhttp::status::service_unavailable);
    EXPECT_THAT(res.body().str(),
                StartsWith(R"({"error":{"code":"SYS.1006","description":"An operation failed",)"
                           R"("details":"failed to read kernel state from source[sockets]: )"
                           R"(sock_diag tcp dump: netlink request type 18 seq )"));
    EXPECT_NE(res.body().view().find("no complete reply within 50 ms"), std::string::npos);

    netlink::FaultIptSource::IptFault eperm;
    eperm.call = netlink::FaultIptSource::Call::info;
    eperm.table = "mangle";
    eperm.sys_errno = EPERM;
    legacy->inject(eperm);
    res = get();
    EXPECT_EQ(res.result(), bhttp::status::service_unavailable);
    EXPECT_EQ(res.body(), error_body("failed to read kernel state from source[iptables-legacy]: "
                                     "iptables-legacy: mangle: IPT_SO_GET_INFO: Operation not "
                                     "permitted"));

    // Events lost, and the re-dump keeps being interrupted: a defined error, not the old cache.
    events->lose_events();
    nftables->inject(Fault(FaultKind::dump_intr).always());
    res = get();
    EXPECT_EQ(res.result(), bhttp::status::service_unavailable);
    EXPECT_EQ(res.body(),
              error_body("failed to read kernel state from source[nftables]: nf_tables: ruleset "
                         "changed during each of 5 dump attempts (last: GETTABLE dump interrupted "
                         "(NLM_F_DUMP_INTR))"));
    nftables->clear();

    // Garbage in a sock_diag reply: precise, then the complete answer once it is gone.
    sockets->inject(Fault(FaultKind::garbage_payload).with_bytes(0));
    res = get();
    EXPECT_EQ(res.result(), bhttp::status::service_unavailable);
    EXPECT_THAT(res.body(), testing::HasSubstr("source[sockets]: sock_diag tcp dump: "));

    res = get();
    EXPECT_EQ(res.result(), bhttp::status::ok);
    EXPECT_EQ(res.body(), healthy.body());
}

}  // namespace
}  // namespace vipportd::http
