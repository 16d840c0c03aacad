// The VIP registration API through the router (http/vips_api.cpp): PUT/DELETE/GET
// /vipportd/v1/vips, their validation and status codes, conflicts with file VIPs, presence per
// namespace (null when unknown), and the same authentication as usedports.

#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <string>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/address_table.hpp"
#include "agent/vip_catalog.hpp"
#include "http/router.hpp"
#include "http/zstack.hpp"
#include "http_fakes.hpp"

namespace vipportd::http {
namespace {

namespace bhttp = boost::beast::http;
namespace fs = std::filesystem;
namespace json = boost::json;
using test::NetnsProvider;
using test::RejectAll;
using testing::HasSubstr;

agent::AddressEntry address(std::string_view a, std::string name, std::uint32_t flags = 0x80) {
    agent::AddressEntry e;
    e.address = test::ip(a);
    e.ifindex = 1;
    e.interface = std::move(name);
    e.flags = flags;
    return e;
}

class VipsApi : public ::testing::Test {
  protected:
    VipsApi() {
        dir_ = fs::path(::testing::TempDir()) /
               ("vipportd-vipsapi-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        // Own namespace: 192.0.2.1 on eth0, 192.0.2.2 tentative. "blue": nothing configured.
        // "red": the address source failed. Any other namespace cannot be entered.
        auto own = std::make_shared<agent::Snapshot>();
        own->addresses =
            std::make_shared<const agent::AddressTable>(std::vector<agent::AddressEntry>{
                address("192.0.2.1", "eth0"), address("192.0.2.2", "eth1", 0xc0)});
        own->sources.push_back({"addresses", false, true, "", {}});
        auto blue = std::make_shared<agent::Snapshot>();
        blue->addresses = std::make_shared<const agent::AddressTable>();
        auto red = std::make_shared<agent::Snapshot>();
        red->sources.push_back({"sockets", true, true, "", {}});
        red->sources.push_back({"addresses", false, false, "RTM_GETADDR dump: boom", {}});
        provider->by_netns[""] = own;
        provider->by_netns["blue"] = blue;
        provider->by_netns["red"] = red;

        auto store = std::make_unique<agent::VipStore>(dir_);
        EXPECT_TRUE(store->load());
        catalog = std::make_shared<agent::VipCatalog>(std::move(store));
        catalog->set_static(agent::static_vips({{"cfg", test::ip("192.0.2.1"), ""}},
                                               "/etc/vipportd/vipportd.toml", nullptr, nullptr));
    }
    ~VipsApi() override {
        catalog->shutdown();
        fs::remove_all(dir_);
    }

    Response call(Request req, std::shared_ptr<const Authenticator> auth = nullptr) {
        RouterDeps deps{provider, [this] { return catalog->registry(); },
                        auth ? std::move(auth) : std::make_shared<AcceptAll>()};
        deps.vips = with_catalog ? catalog : nullptr;
        Router router(std::move(deps));
        std::promise<Response> p;
        std::atomic<int> calls{0};
        router.handle(std::move(req), [&](Response res) {
            if (++calls == 1) {
                p.set_value(std::move(res));
            }
        });
        auto res = p.get_future().get();
        EXPECT_EQ(calls, 1);
        return res;
    }
    Response put(const std::string& uuid, std::string body) {
        Request req{bhttp::verb::put, "/vipportd/v1/vips/" + uuid, 11};
        req.set(bhttp::field::authorization, "OAuth token-1");
        req.body() = std::move(body);
        req.prepare_payload();
        return call(std::move(req));
    }
    Response del(const std::string& uuid) {
        Request req{bhttp::verb::delete_, "/vipportd/v1/vips/" + uuid, 11};
        req.set(bhttp::field::authorization, "OAuth token-1");
        return call(std::move(req));
    }
    Response get(const std::string& target) { return call(test::get(target)); }

    std::shared_ptr<NetnsProvider> provider = std::make_shared<NetnsProvider>();
    std::shared_ptr<agent::VipCatalog> catalog;
    bool with_catalog = true;
    fs::path dir_;
};

void expect_error(const Response& res,
                  bhttp::status status,
                  std::string_view code,
                  std::string_view details) {
    EXPECT_EQ(res.result(), status) << res.body();
    EXPECT_EQ(res[bhttp::field::content_type], "application/json; charset=utf-8");
    const auto v = json::parse(res.body().view());
    EXPECT_EQ(v.at("error").at("code").as_string(), code);
    EXPECT_EQ(v.at("error").at("details").as_string(), details) << res.body();
}

constexpr std::string_view kSys1007 = "SYS.1007";

TEST_F(VipsApi, PutCreatesThenReplacesIdempotently) {
    const auto source = (dir_ / "vips.json").string();
    auto res = put("api-1", R"({"ip":"192.0.2.2"})");
    EXPECT_EQ(res.result(), bhttp::status::created) << res.body();
    EXPECT_EQ(res[bhttp::field::location], "/vipportd/v1/vips/api-1");
    EXPECT_EQ(res.body(),
              R"({"uuid":"api-1","ip":"192.0.2.2","netns":"","origin":"api","source":")" + source +
                  R"(","active":true})");
    res = put("api-1", R"({"ip":"192.0.2.2"})");
    EXPECT_EQ(res.result(), bhttp::status::ok);
    res = put("api-1", R"({"ip":"2001:db8::2","netns":"blue"})");
    EXPECT_EQ(res.result(), bhttp::status::ok);
    EXPECT_THAT(res.body(), HasSubstr(R"("ip":"2001:db8::2","netns":"blue")"));
    // null netns and an echoed uuid are accepted (a listed object can be sent back).
    res = put("api-2", R"({"uuid":"api-2","ip":"192.0.2.9","netns":null})");
    EXPECT_EQ(res.result(), bhttp::status::created) << res.body();
    // A uuid that needs escaping in the Location header.
    res = put("a%20b%3Fc", R"({"ip":"192.0.2.9"})");
    EXPECT_EQ(res.result(), bhttp::status::created) << res.body();
    EXPECT_EQ(res[bhttp::field::location], "/vipportd/v1/vips/a%20b%3Fc");

    // The registration answers usedports at once.
    res = get("/zstack/v1/vips/api-2/usedports?protocol=TCP");
    EXPECT_EQ(res.result(), bhttp::status::ok) << res.body();
}

TEST_F(VipsApi, PutValidatesPathAndBody) {
    struct Case {
        std::string uuid;
        std::string body;
        std::string details;
    };
    const std::string shape =
        R"(expected a JSON object {"ip":"<address>"} or {"ip":"<address>","netns":"<name or path>"})";
    const std::vector<Case> cases{
        {"x", "", "missing body (" + shape + ")"},
        {"x", "{", "body is not valid JSON (incomplete JSON; " + shape + ")"},
        {"x", "[1]", "body is not a JSON object (" + shape + ")"},
        {"x", "{}", "field ip: missing (" + shape + ")"},
        {"x", R"({"ip":"192.0.2.1","port":1})",
         R"(unknown field "port" (expected ip and optionally netns))"},
        {"x", R"({"ip":5})", "field ip: expected a string, got 5"},
        {"x", R"({"ip":"192.0.2.1/32"})",
         R"(field ip: expected an IPv4 or IPv6 address (no prefix length), got "192.0.2.1/32")"},
        {"x", R"({"ip":"0.0.0.0"})",
         "field ip: not a VIP (expected a unicast address, got unspecified 0.0.0.0)"},
        {"x", R"({"ip":"::ffff:192.0.2.1"})",
         "field ip: v4-mapped address (expected the IPv4 form 192.0.2.1, got ::ffff:192.0.2.1)"},
        {"x", R"({"ip":"192.0.2.1","netns":""})",
         "field netns: expected a namespace name or an absolute path, got an empty string (leave "
         "netns out for the daemon's namespace)"},
        {"x", R"({"ip":"192.0.2.1","netns":"../x"})",
         R"(field netns: expected a name under /run/netns (no '/', not . or ..) or an absolute path, got "../x" (leave netns out for the daemon's namespace))"},
        {"x", R"({"ip":"192.0.2.1","uuid":"y"})", R"(field uuid: "y" differs from the path's "x")"},
        {"%20x", R"({"ip":"192.0.2.1"})",
         R"(path parameter uuid: invalid uuid (expected no leading or trailing spaces, got " x"))"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.uuid + " " + c.body);
        expect_error(put(c.uuid, c.body), bhttp::status::bad_request, kSys1007, c.details);
    }
    EXPECT_EQ(catalog->registry()->size(), 1U);  // nothing registered
    EXPECT_FALSE(fs::exists(dir_ / "vips.json"));
}

TEST_F(VipsApi, FileVipsAreNotTheApis) {
    expect_error(put("cfg", R"({"ip":"192.0.2.3"})"), bhttp::status::conflict, "SYS.1006",
                 "uuid \"cfg\" is defined in /etc/vipportd/vipportd.toml (config, 192.0.2.1); "
                 "change it there, not through the API");
    expect_error(del("cfg"), bhttp::status::conflict, "SYS.1006",
                 "uuid \"cfg\" is defined in /etc/vipportd/vipportd.toml (config), not "
                 "registered through the API; remove it there");
    expect_error(del("nobody"), bhttp::status::not_found, "SYS.1003",
                 "uuid \"nobody\" is not registered");
}

TEST_F(VipsApi, DeleteAnswers204WithoutContent) {
    ASSERT_EQ(put("api-1", R"({"ip":"192.0.2.2"})").result(), bhttp::status::created);
    const auto res = del("api-1");
    EXPECT_EQ(res.result(), bhttp::status::no_content);
    EXPECT_TRUE(res.body().empty());
    EXPECT_EQ(res.find(bhttp::field::content_length), res.end());
    EXPECT_EQ(res.find(bhttp::field::content_type), res.end());
    EXPECT_EQ(del("api-1").result(), bhttp::status::not_found);
    EXPECT_FALSE(catalog->registry()->resolve("api-1"));
}

TEST_F(VipsApi, ListShowsOriginsConflictsAndPresencePerNamespace) {
    ASSERT_EQ(put("a-tentative", R"({"ip":"192.0.2.2"})").result(), bhttp::status::created);
    ASSERT_EQ(put("b-blue", R"({"ip":"192.0.2.1","netns":"blue"})").result(),
              bhttp::status::created);
    ASSERT_EQ(put("c-red", R"({"ip":"192.0.2.1","netns":"red"})").result(), bhttp::status::created);
    ASSERT_EQ(put("d-gone", R"({"ip":"192.0.2.1","netns":"gone"})").result(),
              bhttp::status::created);
    ASSERT_EQ(put("shadow", R"({"ip":"192.0.2.7"})").result(), bhttp::status::created);
    // A reload defines "shadow" in the configuration: the file wins, the registration is listed.
    catalog->set_static(agent::static_vips(
        {{"cfg", test::ip("192.0.2.1"), ""}, {"shadow", test::ip("192.0.2.1"), ""}},
        "/etc/vipportd/vipportd.toml", nullptr, nullptr));

    const auto res = get("/vipportd/v1/vips");
    ASSERT_EQ(res.result(), bhttp::status::ok) << res.body();
    EXPECT_EQ(res[bhttp::field::content_type], "application/json; charset=utf-8");
    const auto file = (dir_ / "vips.json").string();
    const auto api = [&](std::string_view uuid, std::string_view ip, std::string_view netns) {
        return R"({"uuid":")" + std::string(uuid) + R"(","ip":")" + std::string(ip) +
               R"(","netns":")" + std::string(netns) + R"(","origin":"api","source":")" + file +
               R"(","active":true,)";
    };
    EXPECT_EQ(
        res.body(),
        R"({"vips":[)" + api("a-tentative", "192.0.2.2", "") +
            R"("present":false,"state":"tentative","interface":"eth1"},)" +
            api("b-blue", "192.0.2.1", "blue") +
            R"("present":false,"state":"absent","interface":null},)" +
            api("c-red", "192.0.2.1", "red") +
            R"("present":null,"state":"unknown","interface":null,"presence_error":"addresses failed: RTM_GETADDR dump: boom"},)" +
            R"({"uuid":"cfg","ip":"192.0.2.1","netns":"","origin":"config","source":"/etc/vipportd/vipportd.toml","active":true,"present":true,"state":"present","interface":"eth0"},)" +
            api("d-gone", "192.0.2.1", "gone") +
            R"("present":null,"state":"unknown","interface":null,"presence_error":"netns gone failed: cannot enter namespace"},)" +
            R"({"uuid":"shadow","ip":"192.0.2.1","netns":"","origin":"config","source":"/etc/vipportd/vipportd.toml","active":true,"present":true,"state":"present","interface":"eth0"},)" +
            R"({"uuid":"shadow","ip":"192.0.2.7","netns":"","origin":"api","source":")" + file +
            R"(","active":false,"conflict":"uuid also defined in /etc/vipportd/vipportd.toml (config, 192.0.2.1), which takes precedence","present":false,"state":"absent","interface":null}],)" +
            R"("registration":{"enabled":true,"file":")" + file + R"(","error":null}})");
    // One fresh snapshot per namespace, each asked once.
    ASSERT_EQ(provider->requests.size(), 1U);
    EXPECT_EQ(provider->requests[0], (std::vector<std::string>{"", "blue", "red", "gone"}));

    // One VIP: the active definition.
    const auto one = get("/vipportd/v1/vips/shadow");
    EXPECT_EQ(one.result(), bhttp::status::ok);
    EXPECT_THAT(one.body(), HasSubstr(R"("origin":"config")"));
    EXPECT_THAT(one.body().str(), testing::StartsWith(R"({"uuid":"shadow")"));
    expect_error(get("/vipportd/v1/vips/none"), bhttp::status::not_found, "SYS.1003",
                 "uuid \"none\" is not a known VIP");

    // HEAD: the headers of the GET answer, no body.
    Request head{bhttp::verb::head, "/vipportd/v1/vips", 11};
    head.set(bhttp::field::authorization, "OAuth t");
    const auto h = call(std::move(head));
    EXPECT_EQ(h.result(), bhttp::status::ok);
    EXPECT_TRUE(h.body().empty());
    EXPECT_EQ(h[bhttp::field::content_length], std::to_string(res.body().size()));
}

TEST_F(VipsApi, EmptyListNeedsNoSnapshot) {
    catalog->set_static({});
    const auto res = get("/vipportd/v1/vips");
    EXPECT_EQ(res.body(), R"({"vips":[],"registration":{"enabled":true,"file":")" +
                              (dir_ / "vips.json").string() + R"(","error":null}})");
    EXPECT_TRUE(provider->requests.empty());
}

TEST_F(VipsApi, DisabledOrMissingRegistration) {
    with_catalog = false;
    expect_error(put("x", R"({"ip":"192.0.2.1"})"), bhttp::status::service_unavailable, "SYS.1006",
                 "VIP registration is not available in this server");
    expect_error(get("/vipportd/v1/vips"), bhttp::status::service_unavailable, "SYS.1006",
                 "VIP registration is not available in this server");

    with_catalog = true;
    catalog = std::make_shared<agent::VipCatalog>(nullptr);
    catalog->set_static({});
    expect_error(put("x", R"({"ip":"192.0.2.1"})"), bhttp::status::service_unavailable, "SYS.1006",
                 "VIP registration is disabled (state_dir = \"\")");
    expect_error(del("x"), bhttp::status::service_unavailable, "SYS.1006",
                 "VIP registration is disabled (state_dir = \"\")");
    EXPECT_EQ(get("/vipportd/v1/vips").body(),
              R"({"vips":[],"registration":{"enabled":false,"file":null,"error":null}})");
}

TEST_F(VipsApi, BrokenRegistryFileIsShownAndRefusesWrites) {
    fs::create_directories(dir_);
    std::ofstream(dir_ / "vips.json") << "garbage";
    auto store = std::make_unique<agent::VipStore>(dir_);
    EXPECT_FALSE(store->load());
    catalog = std::make_shared<agent::VipCatalog>(std::move(store));
    catalog->set_static({});
    const auto res = put("x", R"({"ip":"192.0.2.1"})");
    EXPECT_EQ(res.result(), bhttp::status::service_unavailable);
    EXPECT_THAT(res.body(), HasSubstr("the registry file is invalid: "));
    const auto list = json::parse(get("/vipportd/v1/vips").body().view());
    EXPECT_THAT(std::string(list.at("registration").at("error").as_string()),
                HasSubstr("not valid JSON at line 1, column 1"));
}

TEST_F(VipsApi, SameAuthenticationAsUsedports) {
    Request no_auth{bhttp::verb::put, "/vipportd/v1/vips/x", 11};
    no_auth.body() = R"({"ip":"192.0.2.1"})";
    no_auth.prepare_payload();
    auto res = call(std::move(no_auth));
    EXPECT_EQ(res.result(), bhttp::status::bad_request);
    EXPECT_EQ(res.body(), zstack::missing_authorization);

    Request rejected{bhttp::verb::delete_, "/vipportd/v1/vips/cfg", 11};
    rejected.set(bhttp::field::authorization, "OAuth nope");
    res = call(std::move(rejected), std::make_shared<RejectAll>());
    EXPECT_EQ(res.result(), bhttp::status::service_unavailable);
    EXPECT_EQ(res.body(), zstack::error_body(zstack::session_expired()));
    res = call(test::get("/vipportd/v1/vips"), std::make_shared<RejectAll>());
    EXPECT_EQ(res.body(), zstack::error_body(zstack::session_expired()));
    EXPECT_TRUE(provider->requests.empty());  // nothing learnt before the session check

    Request post{bhttp::verb::post, "/vipportd/v1/vips/x", 11};
    post.set(bhttp::field::authorization, "OAuth t");
    res = call(std::move(post));
    EXPECT_EQ(res.result(), bhttp::status::method_not_allowed);
    EXPECT_EQ(res[bhttp::field::allow], "GET, HEAD, PUT, DELETE");
    Request put_list{bhttp::verb::put, "/vipportd/v1/vips", 11};
    put_list.set(bhttp::field::authorization, "OAuth t");
    res = call(std::move(put_list));
    EXPECT_EQ(res.result(), bhttp::status::method_not_allowed);
    EXPECT_EQ(res[bhttp::field::allow], "GET, HEAD");
}

}  // namespace
}  // namespace vipportd::http
