// The claims JSON and GET /vipportd/v1/vips/{uuid-or-ip}/claims through the router.

#include <optional>
#include <string>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <gtest/gtest.h>

#include "http/claims_json.hpp"
#include "http/router.hpp"
#include "http_fakes.hpp"

namespace vipportd::http {
namespace {

namespace bhttp = boost::beast::http;
namespace json = boost::json;
using test::ip;

agent::Claim socket_claim(agent::Protocol p,
                          std::string_view address,
                          std::uint16_t port,
                          std::uint64_t inode) {
    agent::Claim c;
    c.protocol = p;
    c.ports = agent::PortSet::single(port);
    agent::SocketOrigin o;
    o.address = ip(address);
    o.family = o.address.family;
    o.port = port;
    o.state = p == agent::Protocol::tcp ? 10 : 7;
    o.inode = inode;
    o.uid = 33;
    c.scope = o.address.is_unspecified() ? agent::AddressScope::all(o.family)
                                         : agent::AddressScope::exact(o.address);
    c.origin = o;
    return c;
}

agent::Claim rule_claim() {
    agent::Claim c;
    c.protocol = agent::Protocol::tcp;
    c.ports = agent::PortSet{{0, 0}, {80, 80}, {8000, 8010}, {8011, 8011}};
    c.scope = agent::AddressScope::exact(ip("10.0.0.5"));
    c.certainty = agent::Certainty::uncertain;
    agent::RuleOrigin o;
    o.site = std::make_shared<const agent::RuleSite>(
        agent::RuleSite{"nftables", "ip", "nat", "svc", {"prerouting", "svc"}});
    o.handle = 12;
    o.kind = "dnat";
    o.comment = "say \"hi\"\n";
    o.reason = "ip nat svc handle 12: expression 'ct' not interpreted";
    c.origin = o;
    return c;
}

agent::ClaimsReport sample_report() {
    agent::ClaimsReport r;
    r.vip = agent::Vip{"vip-1", ip("10.0.0.5"), ""};
    r.sequence = 9;
    r.taken = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
    agent::ProtocolClaims tcp{agent::Protocol::tcp, agent::PortSet{{22, 22}, {80, 80}}, {}};
    tcp.claims.push_back(socket_claim(agent::Protocol::tcp, "0.0.0.0", 22, 1001));
    tcp.claims.push_back(rule_claim());
    r.protocols.push_back(std::move(tcp));
    agent::ProtocolClaims udp{agent::Protocol::udp, agent::PortSet::single(53), {}};
    udp.claims.push_back(socket_claim(agent::Protocol::udp, "10.0.0.5", 53, 1002));
    r.protocols.push_back(std::move(udp));
    r.processes[1001] = agent::ProcessInfo{612, "sshd", "/usr/sbin/sshd"};
    return r;
}

TEST(ClaimsJson, ExactBodyWithRangesProcessesAndNulls) {
    EXPECT_EQ(
        claims_json(sample_report()),
        R"({"vip":{"uuid":"vip-1","ip":"10.0.0.5","netns":""},)"
        R"("snapshot":{"sequence":9,"taken":"2023-11-14T22:13:20Z"},"protocols":{)"
        R"("TCP":{"used_ports":["22","80"],"claims":[)"
        R"({"ports":["22"],"certainty":"exact","scope":"0.0.0.0/0","socket":{"protocol":"TCP",)"
        R"("family":"ipv4","address":"0.0.0.0","port":22,"state":"LISTEN","ifindex":0,)"
        R"("device":null,"uid":33,"inode":1001,"v6only":null,"freebind":false,)"
        R"("transparent":false,"reuseport_sockets":1,)"
        R"("process":{"pid":612,"name":"sshd","argv0":"/usr/sbin/sshd"}}},)"
        R"({"ports":["80","8000-8011"],"certainty":"uncertain",)"
        R"("reason":"ip nat svc handle 12: expression 'ct' not interpreted","scope":"10.0.0.5",)"
        R"("rule":{"source":"nftables","family":"ip","table":"nat","chain":"svc","handle":12,)"
        R"("kind":"dnat","target":null,"comment":"say \"hi\"\n","path":["prerouting","svc"]}}]},)"
        R"("UDP":{"used_ports":["53"],"claims":[)"
        R"({"ports":["53"],"certainty":"exact","scope":"10.0.0.5","socket":{"protocol":"UDP",)"
        R"("family":"ipv4","address":"10.0.0.5","port":53,"state":"UNCONN","ifindex":0,)"
        R"("device":null,"uid":33,"inode":1002,"v6only":null,"freebind":false,)"
        R"("transparent":false,"reuseport_sockets":1}}]}}})");
}

TEST(ClaimsJson, HostileTextStaysValidJson) {
    auto r = sample_report();
    r.vip.uuid = "a\"b\\c\x01\xff";
    r.processes[1001].name = "x\ty\x7f";
    const auto v = json::parse(claims_json(r));
    EXPECT_EQ(v.at("vip").at("uuid").as_string(), "a\"b\\c\x01\xEF\xBF\xBD");
    EXPECT_EQ(v.at("protocols").at("TCP").at("claims").at(0).at("socket").at("process").at("name"),
              "x\ty\x7f");
}

TEST(ClaimsJson, ManyIsAnArrayOfReports) {
    const std::vector<agent::ClaimsReport> none;
    EXPECT_EQ(claims_json(std::span<const agent::ClaimsReport>(none)), R"({"vips":[]})");
    const std::vector<agent::ClaimsReport> two{sample_report(), sample_report()};
    const auto v = json::parse(claims_json(std::span<const agent::ClaimsReport>(two)));
    ASSERT_EQ(v.at("vips").as_array().size(), 2U);
    EXPECT_EQ(v.at("vips").at(1).at("vip").at("ip"), "10.0.0.5");
}

class FakeLookup final : public agent::ProcessLookup {
  public:
    agent::ProcessMap find(std::span<const std::uint64_t> inodes,
                           std::chrono::system_clock::time_point) override {
        ++calls;
        agent::ProcessMap out;
        for (const auto i : inodes) {
            if (i == 1001) {
                out.emplace(i, agent::ProcessInfo{612, "sshd", "/usr/sbin/sshd"});
            }
        }
        return out;
    }
    int calls = 0;
};

class ClaimsRoute : public ::testing::Test {
  protected:
    ClaimsRoute() {
        auto snap = std::make_shared<agent::Snapshot>();
        snap->claims.push_back(socket_claim(agent::Protocol::tcp, "0.0.0.0", 22, 1001));
        snap->claims.push_back(rule_claim());
        snap->claims.push_back(socket_claim(agent::Protocol::udp, "10.0.0.5", 53, 1002));
        snap->claims.push_back(socket_claim(agent::Protocol::udp, "10.0.0.6", 54, 1003));
        snap->sources.push_back({"sockets", true, true, "", {}});
        provider = std::make_shared<test::FakeProvider>(snap);
    }
    Response call(Request req) {
        RouterDeps deps{provider, [this] { return registry; }, std::make_shared<AcceptAll>()};
        deps.processes = lookup;
        const Router router(std::move(deps));
        int calls = 0;
        std::optional<Response> out;
        router.handle(std::move(req), [&](Response res) {
            ++calls;
            out = std::move(res);
        });
        EXPECT_EQ(calls, 1);
        return out.value_or(Response{});
    }
    static json::value body(const Response& res) { return json::parse(res.body().view()); }

    std::shared_ptr<test::FakeProvider> provider;
    std::shared_ptr<const agent::VipRegistry> registry = test::sample_registry();
    std::shared_ptr<FakeLookup> lookup = std::make_shared<FakeLookup>();
};

TEST_F(ClaimsRoute, BothProtocolsWithoutTheParameter) {
    const auto res = call(test::get("/vipportd/v1/vips/vip-1/claims"));
    ASSERT_EQ(res.result(), bhttp::status::ok) << res.body();
    EXPECT_EQ(res[bhttp::field::content_type], "application/json; charset=utf-8");
    const auto v = body(res);
    EXPECT_EQ(v.at("vip").at("uuid"), "vip-1");
    EXPECT_EQ(v.at("vip").at("ip"), "10.0.0.5");
    EXPECT_EQ(v.at("protocols").at("TCP").at("used_ports"),
              json::parse(R"(["22","80","8000-8011"])"));
    EXPECT_EQ(v.at("protocols").at("UDP").at("used_ports"), json::parse(R"(["53"])"));
    const auto& tcp = v.at("protocols").at("TCP").at("claims").as_array();
    ASSERT_EQ(tcp.size(), 2U);
    EXPECT_EQ(tcp.at(0).at("socket").at("process").at("name"), "sshd");
    EXPECT_EQ(tcp.at(1).at("rule").at("comment"), "say \"hi\"\n");
    EXPECT_FALSE(v.at("protocols")
                     .at("UDP")
                     .at("claims")
                     .at(0)
                     .at("socket")
                     .as_object()
                     .contains("process"));
    EXPECT_EQ(lookup->calls, 1);
}

TEST_F(ClaimsRoute, OneProtocolInAnyCaseByUuidOrAddress) {
    const auto v = body(call(test::get("/vipportd/v1/vips/10.0.0.5/claims?protocol=%20udp")));
    EXPECT_EQ(v.at("vip").at("uuid"), "10.0.0.5");
    EXPECT_FALSE(v.at("protocols").as_object().contains("TCP"));
    EXPECT_EQ(v.at("protocols").at("UDP").at("claims").as_array().size(), 1U);
}

TEST_F(ClaimsRoute, BadProtocolIs400Sys1007) {
    const auto res = call(test::get("/vipportd/v1/vips/vip-1/claims?protocol=icmp"));
    EXPECT_EQ(res.result(), bhttp::status::bad_request);
    EXPECT_EQ(res.body(),
              R"({"error":{"code":"SYS.1007","description":"One or more API argument is invalid",)"
              R"("details":"invalid query parameter[protocol]: expected TCP or UDP (or no )"
              R"(protocol parameter for both), got 'icmp'"}})");
    EXPECT_EQ(call(test::get("/vipportd/v1/vips/vip-1/claims?protocol=")).result(),
              bhttp::status::bad_request);
    EXPECT_EQ(call(test::get("/vipportd/v1/vips/vip-1/claims?protocol=tcp&protocol=udp")).result(),
              bhttp::status::bad_request);
    EXPECT_EQ(provider->calls, 0);
}

TEST_F(ClaimsRoute, UnknownVipIs404Sys1003) {
    const auto res = call(test::get("/vipportd/v1/vips/nope/claims"));
    EXPECT_EQ(res.result(), bhttp::status::not_found);
    EXPECT_EQ(body(res).at("error").at("code"), "SYS.1003");
    EXPECT_EQ(provider->calls, 0);
}

TEST_F(ClaimsRoute, FailedRequiredSourceIs503Sys1006) {
    auto snap = std::make_shared<agent::Snapshot>(*provider->snapshot);
    snap->sources.push_back({"nftables", true, false, "EPERM", {}});
    provider->snapshot = snap;
    const auto res = call(test::get("/vipportd/v1/vips/vip-1/claims"));
    EXPECT_EQ(res.result(), bhttp::status::service_unavailable);
    EXPECT_EQ(body(res).at("error").at("code"), "SYS.1006");
    EXPECT_NE(res.body().view().find("nftables"), std::string::npos);
    EXPECT_EQ(lookup->calls, 0);
}

TEST_F(ClaimsRoute, WithoutALookupThereAreNoProcessFields) {
    lookup.reset();
    RouterDeps deps{provider, [this] { return registry; }, std::make_shared<AcceptAll>()};
    const Router router(std::move(deps));
    std::optional<Response> out;
    router.handle(test::get("/vipportd/v1/vips/vip-1/claims?protocol=TCP"),
                  [&](Response res) { out = std::move(res); });
    ASSERT_TRUE(out);
    EXPECT_EQ(out->body().view().find("\"process\""), std::string::npos) << out->body();
}

TEST_F(ClaimsRoute, HeadMethodsAndAuthorization) {
    auto head = test::get("/vipportd/v1/vips/vip-1/claims");
    head.method(bhttp::verb::head);
    const auto h = call(std::move(head));
    EXPECT_EQ(h.result(), bhttp::status::ok);
    EXPECT_TRUE(h.body().empty());
    EXPECT_NE(h[bhttp::field::content_length], "0");

    auto post = test::get("/vipportd/v1/vips/vip-1/claims");
    post.method(bhttp::verb::post);
    const auto p = call(std::move(post));
    EXPECT_EQ(p.result(), bhttp::status::method_not_allowed);
    EXPECT_EQ(p[bhttp::field::allow], "GET, HEAD");

    EXPECT_EQ(call(test::get("/vipportd/v1/vips/vip-1/claims", "")).result(),
              bhttp::status::bad_request);
    EXPECT_EQ(call(test::get("/vipportd/v1/vips//claims")).result(), bhttp::status::not_found);
}

}  // namespace
}  // namespace vipportd::http
