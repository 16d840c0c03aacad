// Router: every rule of the API contract (zstack-api.md §2, §3, §5, §17), without a socket.

#include "http/router.hpp"

#include <optional>
#include <string>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <gtest/gtest.h>

#include "http/zstack.hpp"
#include "http_fakes.hpp"

namespace vipportd::http {
namespace {

namespace bhttp = boost::beast::http;
using test::get;

constexpr std::string_view base = "/zstack/v1/vips/vip-1/usedports";

class RouterTest : public ::testing::Test {
  protected:
    RouterTest() : provider(std::make_shared<test::FakeProvider>(test::sample_snapshot())) {}

    Router make_router(std::shared_ptr<const Authenticator> auth = std::make_shared<AcceptAll>()) {
        return Router(RouterDeps{provider, [this] { return registry; }, std::move(auth)});
    }

    // Calls the router and insists that done ran exactly once, synchronously (fake provider).
    Response call(Request req) { return call(make_router(), std::move(req)); }
    Response call(const Router& router, Request req) {
        int calls = 0;
        std::optional<Response> out;
        router.handle(std::move(req), [&](Response res) {
            ++calls;
            out = std::move(res);
        });
        EXPECT_EQ(calls, 1);
        return out.value_or(Response{});
    }

    std::shared_ptr<test::FakeProvider> provider;
    std::shared_ptr<const agent::VipRegistry> registry = test::sample_registry();
};

void expect_plain(const Response& res, bhttp::status status, std::string_view body) {
    EXPECT_EQ(res.result(), status);
    EXPECT_EQ(res[bhttp::field::content_type], "text/plain; charset=utf-8");
    EXPECT_EQ(res.body(), body);
    EXPECT_EQ(res[bhttp::field::content_length], std::to_string(body.size()));
    EXPECT_EQ(res[bhttp::field::server], "vipportd");
}

void expect_error(const Response& res, std::string_view body) {
    EXPECT_EQ(res.result(), bhttp::status::service_unavailable);
    EXPECT_EQ(res[bhttp::field::content_type], "application/json; charset=utf-8");
    EXPECT_EQ(res.body(), body);
    EXPECT_EQ(res[bhttp::field::server], "vipportd");
    EXPECT_EQ(res[bhttp::field::content_length], std::to_string(body.size()));
}

const std::string ok_tcp =
    R"({"inventories":[{"uuid":"vip-1","protcol":"TCP","protocol":"TCP","usedPorts":["20","21","22","23","80","8080"]}]})";

// --- 10. success ---------------------------------------------------------------------------

TEST_F(RouterTest, SuccessBodyIsExactSortedUniqueWithoutPortZero) {
    const auto res = call(get(std::string(base) + "?protocol=TCP"));
    EXPECT_EQ(res.result(), bhttp::status::ok);
    EXPECT_EQ(res[bhttp::field::content_type], "application/json; charset=utf-8");
    EXPECT_EQ(res[bhttp::field::server], "vipportd");
    EXPECT_EQ(res.body(), ok_tcp);
    EXPECT_EQ(res[bhttp::field::content_length], std::to_string(ok_tcp.size()));
    EXPECT_EQ(res.version(), 11U);
    EXPECT_TRUE(res.keep_alive());
    EXPECT_EQ(provider->calls, 1);
}

TEST_F(RouterTest, UdpOnlyListsUdpClaims) {
    const auto res = call(get(std::string(base) + "?protocol=UDP"));
    EXPECT_EQ(
        res.body(),
        R"({"inventories":[{"uuid":"vip-1","protcol":"UDP","protocol":"UDP","usedPorts":["53"]}]})");
}

TEST_F(RouterTest, ProtocolIsCaseInsensitiveAndTrimmedAndAnsweredUpperCase) {
    EXPECT_EQ(call(get(std::string(base) + "?protocol=tcp")).body(), ok_tcp);
    EXPECT_EQ(call(get(std::string(base) + "?protocol=Tcp")).body(), ok_tcp);
    EXPECT_EQ(call(get(std::string(base) + "?protocol=%20tCp%09")).body(), ok_tcp);
    EXPECT_EQ(call(get(std::string(base) + "?protocol=+TCP+")).body(), ok_tcp);  // '+' is a space
}

TEST_F(RouterTest, JsonSchemaHeaderAddsSchemaObjectWhateverItsValue) {
    auto req = get(std::string(base) + "?protocol=TCP");
    req.set("X-JSON-Schema", "false");
    const auto res = call(std::move(req));
    EXPECT_EQ(
        res.body(),
        R"({"schema":{"inventories[0]":"org.zstack.network.service.virtualrouter.APIGetVipUsedPortsReply$VipPortRangeInventory"},)"
        R"("inventories":[{"uuid":"vip-1","protcol":"TCP","protocol":"TCP","usedPorts":["20","21","22","23","80","8080"]}]})");
}

TEST_F(RouterTest, HeadHasGetHeadersAndNoBody) {
    auto req = get(std::string(base) + "?protocol=TCP");
    req.method(bhttp::verb::head);
    const auto res = call(std::move(req));
    EXPECT_EQ(res.result(), bhttp::status::ok);
    EXPECT_EQ(res.body(), "");
    EXPECT_EQ(res[bhttp::field::content_length], std::to_string(ok_tcp.size()));
    EXPECT_EQ(res[bhttp::field::content_type], "application/json; charset=utf-8");
}

TEST_F(RouterTest, HeadOfAnErrorKeepsItsLength) {
    auto req = get(std::string(base) + "?protocol=sctp");
    req.method(bhttp::verb::head);
    const auto res = call(std::move(req));
    EXPECT_EQ(res.result(), bhttp::status::service_unavailable);
    EXPECT_EQ(res.body(), "");
    EXPECT_EQ(res[bhttp::field::content_length],
              std::to_string(zstack::error_body(zstack::protocol_invalid("sctp")).size()));
}

TEST_F(RouterTest, Http10ClosesUnlessKeepAliveAsked) {
    auto req = get(std::string(base) + "?protocol=TCP");
    req.version(10);
    auto res = call(req);
    EXPECT_EQ(res.version(), 10U);
    EXPECT_FALSE(res.keep_alive());
    EXPECT_EQ(res.body(), ok_tcp);

    req.set(bhttp::field::connection, "keep-alive");
    res = call(req);
    EXPECT_EQ(res.version(), 10U);
    EXPECT_TRUE(res.keep_alive());
    EXPECT_EQ(res[bhttp::field::connection], "keep-alive");
}

TEST_F(RouterTest, Http11ConnectionCloseIsMirrored) {
    auto req = get(std::string(base) + "?protocol=TCP");
    req.set(bhttp::field::connection, "close");
    const auto res = call(req);
    EXPECT_FALSE(res.keep_alive());
    EXPECT_EQ(res[bhttp::field::connection], "close");
}

TEST_F(RouterTest, PercentEncodedUuidIsDecodedTrimmedAndEchoed) {
    const auto res = call(get("/zstack/v1/vips/%20%76ip-1%09/usedports?protocol=TCP"));
    EXPECT_EQ(res.body(), ok_tcp);
}

TEST_F(RouterTest, LiteralAddressIsAcceptedAsUuid) {
    auto res = call(get("/zstack/v1/vips/10.0.0.5/usedports?protocol=TCP"));
    EXPECT_EQ(
        res.body(),
        R"({"inventories":[{"uuid":"10.0.0.5","protcol":"TCP","protocol":"TCP","usedPorts":["20","21","22","23","80","8080"]}]})");
    res = call(get("/zstack/v1/vips/10.0.0.6/usedports?protocol=TCP"));
    EXPECT_EQ(
        res.body(),
        R"({"inventories":[{"uuid":"10.0.0.6","protcol":"TCP","protocol":"TCP","usedPorts":["443","8080"]}]})");
}

TEST_F(RouterTest, NullRegistryStillResolvesLiteralAddresses) {
    registry = nullptr;
    EXPECT_EQ(call(get("/zstack/v1/vips/10.0.0.6/usedports?protocol=TCP")).result(),
              bhttp::status::ok);
    expect_error(call(get(std::string(base) + "?protocol=TCP")),
                 zstack::error_body(zstack::vip_not_found("vip-1")));
}

TEST_F(RouterTest, TagsAndUnknownParametersAreIgnored) {
    const auto res =
        call(get(std::string(base) +
                 "?systemTags=a&systemTags=b&userTags=x&userTags=y&systemTags.0=c&systemTags.1=d"
                 "&requestIp=1.2.3.4&requestIp=5.6.7.8&Protocol=bogus&&protocol=TCP&flag"));
    EXPECT_EQ(res.body(), ok_tcp);
}

TEST_F(RouterTest, PathUuidWinsOverUuidParameter) {
    EXPECT_EQ(call(get(std::string(base) + "?protocol=TCP&uuid=10.0.0.6")).body(), ok_tcp);
}

TEST_F(RouterTest, AbsoluteFormTargetIsRouted) {
    EXPECT_EQ(call(get("http://127.0.0.1:8080/zstack/v1/vips/vip-1/usedports?protocol=TCP")).body(),
              ok_tcp);
}

TEST_F(RouterTest, EmptyPortListIsAnEmptyArray) {
    const auto res = call(get("/zstack/v1/vips/192.0.2.1/usedports?protocol=UDP"));
    EXPECT_EQ(
        res.body(),
        R"({"inventories":[{"uuid":"192.0.2.1","protcol":"UDP","protocol":"UDP","usedPorts":[]}]})");
}

TEST_F(RouterTest, WholeRangeListsEveryPortOnceInOrder) {
    auto s = std::make_shared<agent::Snapshot>(*test::sample_snapshot());
    s->claims.push_back(test::claim(agent::Protocol::udp, agent::PortSet::all(),
                                    agent::AddressScope::exact(test::ip("10.0.0.5"))));
    s->claims.push_back(test::claim(agent::Protocol::udp, agent::PortSet::range(100, 200),
                                    agent::AddressScope::exact(test::ip("10.0.0.5"))));
    provider->snapshot = s;
    const auto res = call(get(std::string(base) + "?protocol=udp"));
    ASSERT_EQ(res.result(), bhttp::status::ok);

    const auto v = boost::json::parse(res.body().view());
    const auto& ports = v.at("inventories").at(0).at("usedPorts").as_array();
    ASSERT_EQ(ports.size(), 65535U);
    for (std::size_t i = 0; i < ports.size(); ++i) {
        ASSERT_EQ(ports[i].as_string(), std::to_string(i + 1));
    }
    // Prefix + every `"p",` (digits + 3) - the last comma + suffix.
    std::size_t digits = 0;
    for (unsigned p = 1; p <= 65535; ++p) {
        digits += std::to_string(p).size() + 3;
    }
    const std::string prefix =
        R"({"inventories":[{"uuid":"vip-1","protcol":"UDP","protocol":"UDP","usedPorts":[)";
    EXPECT_EQ(res.body().size(), prefix.size() + digits - 1 + std::string("]}]}").size());
    EXPECT_LT(res.body().size(), 600U * 1024U);
}

TEST_F(RouterTest, HostileUuidIsEscapedIntoValidJson) {
    // No '/': an encoded slash would be decoded before matching and make it another path.
    const std::string no_slash = "a\"b\\c\x01\x1f\n\t\xe2\x82\xac\xe2\x80\xa8<&>\xff\xc0\xaf z";
    registry = test::sample_registry({{no_slash, test::ip("10.0.0.5")}});
    // Every byte percent-encoded, as a client would send it.
    std::string target = "/zstack/v1/vips/";
    for (char c : no_slash) {
        char buf[4];
        std::snprintf(buf, sizeof buf, "%%%02X",
                      static_cast<unsigned>(static_cast<unsigned char>(c)));
        target += buf;
    }
    const auto res = call(get(target + "/usedports?protocol=TCP"));
    ASSERT_EQ(res.result(), bhttp::status::ok);
    const std::string expected_uuid = R"("a\"b\\c\u0001\u001f\n\t)"
                                      "\xe2\x82\xac"
                                      R"(\u2028<&>)"
                                      "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                                      R"( z")";
    EXPECT_EQ(
        res.body(),
        R"({"inventories":[{"uuid":)" + expected_uuid +
            R"(,"protcol":"TCP","protocol":"TCP","usedPorts":["20","21","22","23","80","8080"]}]})");
    // And it is valid JSON whose uuid is the sent text (invalid UTF-8 replaced by U+FFFD).
    const auto v = boost::json::parse(res.body().view());
    EXPECT_EQ(
        v.at("inventories").at(0).at("uuid").as_string(),
        "a\"b\\c\x01\x1f\n\t\xe2\x82\xac\xe2\x80\xa8<&>\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd z");

    // A slash-free hostile unknown uuid lands in the SYS.1003 details, escaped the same way.
    const auto nf = call(get("/zstack/v1/vips/%22%5C%0A%FF/usedports?protocol=TCP"));
    expect_error(nf, R"({"error":{"code":"SYS.1003","description":"A resource can not be found",)"
                     R"("details":"invalid field[uuid], resource[uuid:\"\\\n)"
                     "\xef\xbf\xbd"
                     R"(, type:VipVO] not found"}})");
    EXPECT_NO_THROW(boost::json::parse(nf.body().view()));
}

TEST_F(RouterTest, HealthzAnswersOkWithoutAuthorization) {
    const auto res = call(get("/healthz", ""));
    expect_plain(res, bhttp::status::ok, "ok");
    EXPECT_EQ(provider->calls, 0);
    auto post = get("/healthz", "");
    post.method(bhttp::verb::post);
    const auto r405 = call(std::move(post));
    EXPECT_EQ(r405.result(), bhttp::status::method_not_allowed);
    EXPECT_EQ(r405[bhttp::field::allow], "GET, HEAD");
}

// --- 1. unknown path -------------------------------------------------------------------------

TEST_F(RouterTest, UnknownPathIs404WithDecodedPathAfterContext) {
    expect_plain(call(get("/zstack/v1/vips/vip-1/usedport?protocol=TCP", "")),
                 bhttp::status::not_found, "no api mapping to /v1/vips/vip-1/usedport");
    expect_plain(call(get("/zstack/v1/vips%2Fvip-1", "")), bhttp::status::not_found,
                 "no api mapping to /v1/vips/vip-1");
    expect_plain(call(get("/other/p%41th", "")), bhttp::status::not_found,
                 "no api mapping to /other/pAth");
    expect_plain(call(get("/zstack", "")), bhttp::status::not_found, "no api mapping to /");
    expect_plain(call(get("/zstackx/v1", "")), bhttp::status::not_found,
                 "no api mapping to /zstackx/v1");
    // Empty uuid, a uuid with an encoded '/', a trailing slash: not the route.
    expect_plain(call(get("/zstack/v1/vips//usedports")), bhttp::status::not_found,
                 "no api mapping to /v1/vips//usedports");
    expect_plain(call(get("/zstack/v1/vips/a%2Fb/usedports")), bhttp::status::not_found,
                 "no api mapping to /v1/vips/a/b/usedports");
    expect_plain(call(get("/zstack/v1/vips/vip-1/usedports/")), bhttp::status::not_found,
                 "no api mapping to /v1/vips/vip-1/usedports/");
    EXPECT_EQ(provider->calls, 0);
}

TEST_F(RouterTest, UnknownPathWinsOverMethodAndAuth) {
    auto req = get("/zstack/v1/nothing", "");
    req.method(bhttp::verb::delete_);
    expect_plain(call(std::move(req)), bhttp::status::not_found, "no api mapping to /v1/nothing");
}

TEST_F(RouterTest, MalformedPercentEscapeInPathIs400) {
    expect_plain(call(get("/zstack/v1/vips/vip%2/usedports?protocol=TCP")),
                 bhttp::status::bad_request, "invalid percent-encoding in request path");
    expect_plain(call(get("/zstack/v1/vips/vip-1/usedports%")), bhttp::status::bad_request,
                 "invalid percent-encoding in request path");
    expect_plain(call(get("/zstack/v1/vips/vip%zz/usedports")), bhttp::status::bad_request,
                 "invalid percent-encoding in request path");
}

// --- 2. method ---------------------------------------------------------------------------------

TEST_F(RouterTest, OtherMethodsAre405WithAllow) {
    for (auto verb : {bhttp::verb::post, bhttp::verb::put, bhttp::verb::delete_,
                      bhttp::verb::options, bhttp::verb::patch}) {
        auto req = get(std::string(base) + "?protocol=TCP", "");  // no auth: 405 comes first
        req.method(verb);
        const auto res = call(std::move(req));
        EXPECT_EQ(res.result(), bhttp::status::method_not_allowed);
        EXPECT_EQ(res[bhttp::field::allow], "GET, HEAD");
        EXPECT_EQ(res[bhttp::field::content_type], "text/plain; charset=utf-8");
        EXPECT_EQ(res.body(), "method " + std::string(bhttp::to_string(verb)) +
                                  " not allowed, use GET or HEAD");
    }
    EXPECT_EQ(provider->calls, 0);
}

// --- 3. Authorization --------------------------------------------------------------------------

TEST_F(RouterTest, MissingAuthorizationIs400) {
    expect_plain(call(get(std::string(base) + "?protocol=TCP", "")), bhttp::status::bad_request,
                 "missing header 'Authorization'");
}

TEST_F(RouterTest, NonOAuthAuthorizationIs400) {
    for (const char* value : {"Bearer token-1", "zstack AK:signature", "oauth token-1", "OAut",
                              "Basic dXNlcjpwYXNz", " "}) {
        auto req = get(std::string(base) + "?protocol=TCP", value);
        expect_plain(call(std::move(req)), bhttp::status::bad_request,
                     "Authorization type must be 'OAuth'");
    }
}

TEST_F(RouterTest, OAuthTokenIsTrimmedAndNeedsNoSpace) {
    const auto tokens = std::make_shared<const TokenFile>(TokenFile::parse("xyz\n", "test"));
    const Router router = make_router(tokens);
    EXPECT_EQ(call(router, get(std::string(base) + "?protocol=TCP", "OAuthxyz")).body(), ok_tcp);
    EXPECT_EQ(call(router, get(std::string(base) + "?protocol=TCP", "  OAuth \t xyz  ")).body(),
              ok_tcp);
    expect_error(call(router, get(std::string(base) + "?protocol=TCP", "OAuth xyzw")),
                 zstack::error_body(zstack::session_expired()));
    expect_error(call(router, get(std::string(base) + "?protocol=TCP", "OAuth")),
                 zstack::error_body(zstack::session_expired()));
}

// --- 4. repeated scalar parameter --------------------------------------------------------------

TEST_F(RouterTest, RepeatedScalarParameterIs400) {
    expect_plain(call(get(std::string(base) + "?protocol=TCP&protocol=UDP")),
                 bhttp::status::bad_request,
                 "Invalid query parameter[protocol], only one value is allowed for the parameter "
                 "but multiple values found");
    expect_plain(call(get(std::string(base) + "?protocol=TCP&uuid=a&uuid=b")),
                 bhttp::status::bad_request,
                 "Invalid query parameter[uuid], only one value is allowed for the parameter but "
                 "multiple values found");
    // An encoded name is the same parameter.
    expect_plain(call(get(std::string(base) + "?protocol=TCP&%70rotocol=TCP")),
                 bhttp::status::bad_request,
                 "Invalid query parameter[protocol], only one value is allowed for the parameter "
                 "but multiple values found");
    EXPECT_EQ(provider->calls, 0);
}

TEST_F(RouterTest, AuthorizationFormatIsCheckedBeforeParameters) {
    expect_plain(call(get(std::string(base) + "?protocol=TCP&protocol=UDP", "")),
                 bhttp::status::bad_request, "missing header 'Authorization'");
}

TEST_F(RouterTest, MalformedPercentEscapeInQueryIs400) {
    expect_plain(call(get(std::string(base) + "?protocol=TC%P")), bhttp::status::bad_request,
                 "invalid percent-encoding in query string");
    expect_plain(call(get(std::string(base) + "?protocol=TCP&junk%=1")), bhttp::status::bad_request,
                 "invalid percent-encoding in query string");
}

// --- 5. X-Job-UUID -----------------------------------------------------------------------------

TEST_F(RouterTest, JobUuidMustBe32Characters) {
    auto req = get(std::string(base) + "?protocol=TCP");
    req.set("X-Job-UUID", "0123456789abcdef0123456789abcde");  // 31
    expect_plain(call(req), bhttp::status::bad_request,
                 "Invalid header[X-Job-UUID], it must be a UUID with '-' stripped");
    req.set("X-Job-UUID", "01234567-89ab-cdef-0123-456789abcdef");  // 36, dashed
    expect_plain(call(req), bhttp::status::bad_request,
                 "Invalid header[X-Job-UUID], it must be a UUID with '-' stripped");
    req.set("x-job-uuid", "0123456789abcdef0123456789abcdef");  // 32, any case of the name
    EXPECT_EQ(call(req).body(), ok_tcp);
}

// --- 6. session ----------------------------------------------------------------------------------

TEST_F(RouterTest, RejectedSessionIs503Id1001BeforeParameterErrors) {
    const auto tokens = std::make_shared<const TokenFile>(TokenFile::parse("good\n", "test"));
    const Router router = make_router(tokens);
    const std::string id1001 =
        R"({"error":{"code":"ID.1001","description":"The session is invalid, either wrong session id or the session has been expired","details":"Session expired"}})";
    expect_error(call(router, get(std::string(base) + "?protocol=TCP", "OAuth bad")), id1001);
    // vipportd's order (§17): the session wins over a bad protocol and an unknown uuid.
    expect_error(call(router, get("/zstack/v1/vips/nope/usedports?protocol=sctp", "OAuth bad")),
                 id1001);
    expect_error(call(router, get("/zstack/v1/vips/nope/usedports", "OAuth bad")), id1001);
    EXPECT_EQ(call(router, get(std::string(base) + "?protocol=TCP", "OAuth good")).body(), ok_tcp);
    EXPECT_EQ(provider->calls, 1);
}

// --- 7. protocol ---------------------------------------------------------------------------------

TEST_F(RouterTest, MissingProtocolIsSys1007) {
    const std::string body =
        R"({"error":{"code":"SYS.1007","description":"One or more API argument is invalid","details":"field[protocol] of message[org.zstack.header.message.ApiMessageParamValidator] is mandatory, can not be null"}})";
    expect_error(call(get(std::string(base))), body);
    expect_error(call(get(std::string(base) + "?Protocol=TCP")), body);  // names are case-sensitive
    expect_error(call(get(std::string(base) + "?protocol.0=TCP")), body);
}

TEST_F(RouterTest, InvalidProtocolIsSys1007WithTrimmedValue) {
    const auto body = [](std::string_view v) {
        return R"({"error":{"code":"SYS.1007","description":"One or more API argument is invalid","details":"valid value for field[protocol] of message[org.zstack.header.message.ApiMessageParamValidator] are [TCP, UDP], but )" +
               std::string(v) + R"( found"}})";
    };
    expect_error(call(get(std::string(base) + "?protocol=sctp")), body("sctp"));
    expect_error(call(get(std::string(base) + "?protocol=%20icmp%20")), body("icmp"));
    expect_error(call(get(std::string(base) + "?protocol=")), body(""));
    expect_error(call(get(std::string(base) + "?protocol")), body(""));
    expect_error(call(get(std::string(base) + "?protocol=TCP,UDP")), body("TCP,UDP"));
    expect_error(call(get(std::string(base) + "?protocol=%22x%22")), body(R"(\"x\")"));
    EXPECT_EQ(body("").find("but  found") != std::string::npos, true);
}

TEST_F(RouterTest, ProtocolErrorWinsOverUnknownUuid) {
    const auto res = call(get("/zstack/v1/vips/nope/usedports?protocol=sctp"));
    expect_error(res, zstack::error_body(zstack::protocol_invalid("sctp")));
}

// --- 8. uuid -----------------------------------------------------------------------------------

TEST_F(RouterTest, UnknownUuidIsSys1003) {
    expect_error(
        call(get("/zstack/v1/vips/0a1b2c3d4e5f60718293a4b5c6d7e8f9/usedports?protocol=TCP")),
        R"({"error":{"code":"SYS.1003","description":"A resource can not be found","details":"invalid field[uuid], resource[uuid:0a1b2c3d4e5f60718293a4b5c6d7e8f9, type:VipVO] not found"}})");
    // Trimmed to nothing, multicast and unspecified addresses are no VIPs either.
    expect_error(call(get("/zstack/v1/vips/%20/usedports?protocol=TCP")),
                 zstack::error_body(zstack::vip_not_found("")));
    expect_error(call(get("/zstack/v1/vips/224.0.0.1/usedports?protocol=TCP")),
                 zstack::error_body(zstack::vip_not_found("224.0.0.1")));
    expect_error(call(get("/zstack/v1/vips/0.0.0.0/usedports?protocol=TCP")),
                 zstack::error_body(zstack::vip_not_found("0.0.0.0")));
    EXPECT_EQ(provider->calls, 0);
}

TEST_F(RouterTest, RegistryIsAskedPerRequest) {
    EXPECT_EQ(call(get("/zstack/v1/vips/vip-2/usedports?protocol=TCP")).result(),
              bhttp::status::service_unavailable);
    registry = test::sample_registry({{"vip-2", test::ip("10.0.0.6")}});  // a reload
    EXPECT_EQ(
        call(get("/zstack/v1/vips/vip-2/usedports?protocol=TCP")).body(),
        R"({"inventories":[{"uuid":"vip-2","protcol":"TCP","protocol":"TCP","usedPorts":["443","8080"]}]})");
}

// --- 9. snapshot ---------------------------------------------------------------------------------

TEST_F(RouterTest, FailedRequiredSourceIsSys1006) {
    auto s = std::make_shared<agent::Snapshot>(*test::sample_snapshot());
    s->sources[1].ok = false;
    s->sources[1].error = "netlink dump of nf_tables rules failed: EPERM (\"not permitted\")";
    provider->snapshot = s;
    expect_error(
        call(get(std::string(base) + "?protocol=TCP")),
        R"json({"error":{"code":"SYS.1006","description":"An operation failed","details":"failed to read kernel state from source[nftables]: netlink dump of nf_tables rules failed: EPERM (\"not permitted\")"}})json");
}

TEST_F(RouterTest, FailedOptionalSourceStillAnswers) {
    auto s = std::make_shared<agent::Snapshot>(*test::sample_snapshot());
    s->sources.push_back({"iptables-legacy", false, false, "EPERM", {}});
    provider->snapshot = s;
    EXPECT_EQ(call(get(std::string(base) + "?protocol=TCP")).body(), ok_tcp);
}

TEST_F(RouterTest, MissingSnapshotIsSys1000) {
    provider->snapshot = nullptr;
    expect_error(
        call(get(std::string(base) + "?protocol=TCP")),
        R"({"error":{"code":"SYS.1000","description":"An internal error happened in system","details":"no kernel snapshot available"}})");
}

TEST_F(RouterTest, AsynchronousCompletionCarriesTheRequestData) {
    auto deferred = std::make_shared<test::DeferredProvider>(test::sample_snapshot());
    const Router router(
        RouterDeps{deferred, [this] { return registry; }, std::make_shared<AcceptAll>()});
    std::optional<Response> out;
    auto req = get(std::string(base) + "?protocol=tcp");
    req.version(10);
    router.handle(std::move(req), [&](Response res) { out = std::move(res); });
    EXPECT_FALSE(out.has_value());  // nothing until the snapshot arrives
    deferred->complete_when(1);
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(out->body(), ok_tcp);
    EXPECT_EQ(out->version(), 10U);
    EXPECT_FALSE(out->keep_alive());
}

TEST(RouterDeps, MissingDependencyThrows) {
    auto provider = std::make_shared<test::FakeProvider>(test::sample_snapshot());
    EXPECT_THROW(Router(RouterDeps{nullptr, [] { return test::sample_registry(); },
                                   std::make_shared<AcceptAll>()}),
                 std::invalid_argument);
    EXPECT_THROW(Router(RouterDeps{provider, {}, std::make_shared<AcceptAll>()}),
                 std::invalid_argument);
    EXPECT_THROW(Router(RouterDeps{provider, [] { return test::sample_registry(); }, nullptr}),
                 std::invalid_argument);
}

}  // namespace
}  // namespace vipportd::http
