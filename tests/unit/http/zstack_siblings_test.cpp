// ZStack's siblings of usedports through the router (http/zstack_siblings.cpp): the batch
// GET /zstack/v1/vips/usedports, check-port-availability and get-port-availability, with
// ZStack's parameter conversion, validation order and texts, and the paging edges.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <gtest/gtest.h>
#include <zlib.h>

#include "http/router.hpp"
#include "http/zstack.hpp"
#include "http_fakes.hpp"

namespace vipportd::http {
namespace {

namespace bhttp = boost::beast::http;
using agent::AddressScope;
using agent::PortSet;
using agent::Protocol;
using test::gunzip;
using test::NetnsProvider;
using test::RejectAll;

// The daemon's own namespace: test::sample_snapshot() (10.0.0.5: TCP 0, 20-23, 80; UDP 53;
// 10.0.0.6: TCP 443; every IPv4 address: TCP 8080), plus 10.0.0.7 with every UDP port (a
// whole-IP DNAT). Namespace "blue": 10.0.0.5 again (another namespace, another VIP) with TCP 9000
// and an IPv4 wildcard TCP 7000.
class Siblings : public ::testing::Test {
  protected:
    Siblings() {
        auto own = std::const_pointer_cast<agent::Snapshot>(test::sample_snapshot());
        own->claims.push_back(
            test::claim(Protocol::udp, PortSet::all(), AddressScope::exact(test::ip("10.0.0.7"))));
        auto blue = std::make_shared<agent::Snapshot>();
        blue->claims.push_back(test::claim(Protocol::tcp, PortSet::single(9000),
                                           AddressScope::exact(test::ip("10.0.0.5"))));
        blue->claims.push_back(test::claim(Protocol::tcp, PortSet::single(7000),
                                           AddressScope::all(agent::Family::v4)));
        blue->sources.push_back({"sockets", true, true, "", {}});
        provider->by_netns[""] = own;
        provider->by_netns["blue"] = blue;
        // Listed out of order: answers are ordered by uuid.
        registry = std::make_shared<const agent::VipRegistry>(std::vector<agent::VipEntry>{
            {"vip-c", test::ip("10.0.0.5"), "blue"},
            {"vip-a", test::ip("10.0.0.5"), ""},
            {"vip-b", test::ip("10.0.0.6"), ""},
        });
    }

    Response call(Request req, std::shared_ptr<const Authenticator> auth = nullptr) {
        Router router(RouterDeps{provider, [this] { return registry; },
                                 auth ? std::move(auth) : std::make_shared<AcceptAll>()});
        int calls = 0;
        std::optional<Response> out;
        router.handle(std::move(req), [&](Response res) {
            ++calls;
            out = std::move(res);
        });
        EXPECT_EQ(calls, 1);
        return out.value_or(Response{});
    }
    Response get(std::string target) { return call(test::get(std::move(target))); }

    std::shared_ptr<NetnsProvider> provider = std::make_shared<NetnsProvider>();
    std::shared_ptr<const agent::VipRegistry> registry;
};

void expect_json(const Response& res, std::string_view body) {
    EXPECT_EQ(res.result(), bhttp::status::ok) << res.body();
    EXPECT_EQ(res[bhttp::field::content_type], "application/json; charset=utf-8");
    EXPECT_EQ(res.body(), body);
}

void expect_error(const Response& res,
                  std::string_view code,
                  std::string_view description,
                  std::string_view details) {
    EXPECT_EQ(res.result(), bhttp::status::service_unavailable);
    EXPECT_EQ(res[bhttp::field::content_type], "application/json; charset=utf-8");
    EXPECT_EQ(res.body(),
              zstack::error_body(zstack::ApiError{code, description, std::string(details)}));
}

void expect_sys1007(const Response& res, std::string_view details) {
    expect_error(res, "SYS.1007", "One or more API argument is invalid", details);
}

void expect_plain(const Response& res, bhttp::status status, std::string_view body) {
    EXPECT_EQ(res.result(), status);
    EXPECT_EQ(res[bhttp::field::content_type], "text/plain; charset=utf-8");
    EXPECT_EQ(res.body(), body);
}

constexpr std::string_view kValidator = "org.zstack.header.message.ApiMessageParamValidator";

std::string mandatory(std::string_view field) {
    return "field[" + std::string(field) + "] of message[" + std::string(kValidator) +
           "] is mandatory, can not be null";
}
std::string not_tcp_udp(std::string_view field, std::string_view value) {
    return "valid value for field[" + std::string(field) + "] of message[" +
           std::string(kValidator) + "] are [TCP, UDP], but " + std::string(value) + " found";
}

// ---- batch -----------------------------------------------------------------------------------

constexpr std::string_view kBatchTcp =
    R"({"inventories":[)"
    R"({"uuid":"vip-a","protcol":"TCP","protocol":"TCP","usedPorts":["20","21","22","23","80","8080"]},)"
    R"({"uuid":"vip-b","protcol":"TCP","protocol":"TCP","usedPorts":["443","8080"]},)"
    R"({"uuid":"vip-c","protcol":"TCP","protocol":"TCP","usedPorts":["7000","9000"]}]})";

TEST_F(Siblings, BatchListsEveryVipByUuidFromOneScanPerNamespace) {
    const Response res = get("/zstack/v1/vips/usedports?protocol=TCP");
    expect_json(res, kBatchTcp);
    EXPECT_EQ(res[bhttp::field::vary], "Accept-Encoding");
    // Namespaces in the order their first VIP (by uuid) needs them; each scanned once.
    ASSERT_EQ(provider->requests.size(), 1u);
    EXPECT_EQ(provider->requests[0], (std::vector<std::string>{"", "blue"}));
}

TEST_F(Siblings, BatchInventoriesAreTheSingleVipInventories) {
    // Each element is byte for byte the inventory of usedports for that VIP (same namespace).
    const Response one = get("/zstack/v1/vips/vip-a/usedports?protocol=TCP");
    ASSERT_EQ(one.result(), bhttp::status::ok);
    const std::string inner(one.body().view().substr(
        std::string_view(R"({"inventories":[)").size(),
        one.body().size() - std::string_view(R"({"inventories":[)").size() - 2));
    EXPECT_NE(get("/zstack/v1/vips/usedports?protocol=TCP").body().view().find(inner),
              std::string::npos);
}

TEST_F(Siblings, BatchUdpAndProtocolSpelling) {
    const std::string udp =
        R"({"inventories":[)"
        R"({"uuid":"vip-a","protcol":"UDP","protocol":"UDP","usedPorts":["53"]},)"
        R"({"uuid":"vip-b","protcol":"UDP","protocol":"UDP","usedPorts":[]},)"
        R"({"uuid":"vip-c","protcol":"UDP","protocol":"UDP","usedPorts":[]}]})";
    expect_json(get("/zstack/v1/vips/usedports?protocol=UDP"), udp);
    expect_json(get("/zstack/v1/vips/usedports?protocol=udp"), udp);
    expect_json(get("/zstack/v1/vips/usedports?protocol=%20uDp%20"), udp);
}

TEST_F(Siblings, BatchSchemaHasOneEntryPerElementLastFirst) {
    Request req = test::get("/zstack/v1/vips/usedports?protocol=TCP");
    req.set("X-JSON-Schema", "false");  // presence counts
    const std::string cls =
        "\"org.zstack.network.service.virtualrouter.APIGetVipUsedPortsReply$"
        "VipPortRangeInventory\"";
    const std::string expected = R"({"schema":{"inventories[2]":)" + cls + R"(,"inventories[1]":)" +
                                 cls + R"(,"inventories[0]":)" + cls + "}," +
                                 std::string(kBatchTcp).substr(1);
    expect_json(call(std::move(req)), expected);
}

TEST_F(Siblings, BatchOfAnEmptyRegistryScansNothing) {
    registry = std::make_shared<const agent::VipRegistry>();
    expect_json(get("/zstack/v1/vips/usedports?protocol=TCP"), R"({"inventories":[]})");
    Request req = test::get("/zstack/v1/vips/usedports?protocol=TCP");
    req.set("X-JSON-Schema", "true");
    expect_json(call(std::move(req)), R"({"schema":{},"inventories":[]})");
    registry = nullptr;  // no registry at all: the same
    expect_json(get("/zstack/v1/vips/usedports?protocol=UDP"), R"({"inventories":[]})");
    EXPECT_TRUE(provider->requests.empty());
}

TEST_F(Siblings, BatchProtocolErrorsAreUsedportsErrors) {
    expect_sys1007(get("/zstack/v1/vips/usedports"), mandatory("protocol"));
    expect_sys1007(get("/zstack/v1/vips/usedports?protocol=ICMP"), not_tcp_udp("protocol", "ICMP"));
    expect_sys1007(get("/zstack/v1/vips/usedports?protocol="), not_tcp_udp("protocol", ""));
    // protocolType is not this route's parameter.
    expect_sys1007(get("/zstack/v1/vips/usedports?protocolType=TCP"), mandatory("protocol"));
    expect_plain(get("/zstack/v1/vips/usedports?protocol=TCP&protocol=UDP"),
                 bhttp::status::bad_request,
                 "Invalid query parameter[protocol], only one value is allowed for the parameter "
                 "but multiple values found");
    EXPECT_TRUE(provider->requests.empty());
}

TEST_F(Siblings, BatchFailsWhenANamespaceCannotBeRead) {
    provider->by_netns.erase("blue");
    expect_error(get("/zstack/v1/vips/usedports?protocol=TCP"), "SYS.1006", "An operation failed",
                 "failed to read kernel state from source[netns blue]: cannot enter namespace");
}

TEST_F(Siblings, BatchSessionIsCheckedBeforeParameters) {
    expect_error(
        call(test::get("/zstack/v1/vips/usedports?protocol=ICMP"), std::make_shared<RejectAll>()),
        "ID.1001",
        "The session is invalid, either wrong session id or the session has been expired",
        "Session expired");
    expect_plain(call(test::get("/zstack/v1/vips/usedports?protocol=ICMP", "")),
                 bhttp::status::bad_request, "missing header 'Authorization'");
    EXPECT_TRUE(provider->requests.empty());
}

TEST_F(Siblings, BatchAnswersGetAndHeadOnly) {
    Request post = test::get("/zstack/v1/vips/usedports?protocol=TCP");
    post.method(bhttp::verb::post);
    const Response res = call(std::move(post));
    EXPECT_EQ(res.result(), bhttp::status::method_not_allowed);
    EXPECT_EQ(res[bhttp::field::allow], "GET, HEAD");

    Request head = test::get("/zstack/v1/vips/usedports?protocol=TCP");
    head.method(bhttp::verb::head);
    const Response h = call(std::move(head));
    EXPECT_EQ(h.result(), bhttp::status::ok);
    EXPECT_EQ(h[bhttp::field::content_length], std::to_string(kBatchTcp.size()));
    EXPECT_TRUE(h.body().empty());
}

TEST_F(Siblings, BatchIsGzippedWhenAskedAndLarge) {
    registry = std::make_shared<const agent::VipRegistry>(std::vector<agent::VipEntry>{
        {"vip-a", test::ip("10.0.0.5"), ""},
        {"vip-w", test::ip("10.0.0.7"), ""},  // every UDP port: ~0.5 MB
    });
    const Response plain = get("/zstack/v1/vips/usedports?protocol=UDP");
    ASSERT_EQ(plain.result(), bhttp::status::ok);
    EXPECT_EQ(plain.count(bhttp::field::content_encoding), 0u);
    ASSERT_GT(plain.body().size(), 500'000u);

    Request req = test::get("/zstack/v1/vips/usedports?protocol=UDP");
    req.set(bhttp::field::accept_encoding, "gzip");
    const Response gz = call(std::move(req));
    ASSERT_EQ(gz.result(), bhttp::status::ok);
    EXPECT_EQ(gz[bhttp::field::content_encoding], "gzip");
    EXPECT_EQ(gz[bhttp::field::vary], "Accept-Encoding");
    EXPECT_LT(gz.body().size() * 3, plain.body().size());
    EXPECT_EQ(gunzip(gz.body().str()), plain.body());

    // A small batch is sent as it is even when gzip is welcome.
    Request small = test::get("/zstack/v1/vips/usedports?protocol=TCP");
    small.set(bhttp::field::accept_encoding, "gzip");
    const Response s = call(std::move(small));
    EXPECT_EQ(s.count(bhttp::field::content_encoding), 0u);
    EXPECT_EQ(s[bhttp::field::vary], "Accept-Encoding");
}

TEST_F(Siblings, BatchFollowsTheKernelBetweenPolls) {
    // The cache is keyed by what the answer says: a change of ports is never served stale.
    expect_json(get("/zstack/v1/vips/usedports?protocol=TCP"), kBatchTcp);
    auto blue = std::make_shared<agent::Snapshot>();
    blue->sources.push_back({"sockets", true, true, "", {}});
    provider->by_netns["blue"] = blue;
    const Response res = get("/zstack/v1/vips/usedports?protocol=TCP");
    EXPECT_NE(res.body(), kBatchTcp);
    EXPECT_NE(res.body().view().find(
                  R"({"uuid":"vip-c","protcol":"TCP","protocol":"TCP","usedPorts":[]})"),
              std::string::npos);
}

// ---- check-port-availability -------------------------------------------------------------------

constexpr std::string_view kAvailable = R"({"success":true,"available":true})";
constexpr std::string_view kTaken = R"({"success":true,"available":false})";

std::string check(std::string_view vip, std::string_view query) {
    return "/zstack/v1/vips/" + std::string(vip) + "/check-port-availability?" + std::string(query);
}

TEST_F(Siblings, CheckAnswersFromTheUsedPorts) {
    expect_json(get(check("vip-a", "port=80&protocolType=TCP")), kTaken);
    expect_json(get(check("vip-a", "port=8080&protocolType=TCP")), kTaken);     // IPv4 wildcard
    expect_json(get(check("vip-a", "port=443&protocolType=TCP")), kAvailable);  // other address
    expect_json(get(check("vip-b", "port=443&protocolType=TCP")), kTaken);
    expect_json(get(check("vip-a", "port=53&protocolType=UDP")), kTaken);
    expect_json(get(check("vip-a", "port=80&protocolType=UDP")), kAvailable);
    expect_json(get(check("vip-a", "port=65535&protocolType=TCP")), kAvailable);
    expect_json(get(check("vip-a", "port=1&protocolType=TCP")), kAvailable);
    // The same address in another namespace is another VIP.
    expect_json(get(check("vip-c", "port=80&protocolType=TCP")), kAvailable);
    expect_json(get(check("vip-c", "port=9000&protocolType=TCP")), kTaken);
    // A literal address, any case, trimmed values, a vipUuid query parameter loses to the path.
    expect_json(get(check("10.0.0.5", "port=80&protocolType=tcp")), kTaken);
    expect_json(get(check("vip-a", "port=%2080%20&protocolType=%20Tcp%20&vipUuid=vip-b")), kTaken);
    // Tags and unknown parameters are ignored; start and limit are accepted and unused.
    expect_json(get(check("vip-a",
                          "systemTags=x&systemTags=y&x=1&start=5&limit=0&port=80&"
                          "protocolType=TCP")),
                kTaken);
    for (const auto& r : provider->requests) {
        EXPECT_EQ(r.size(), 1u);
    }
}

TEST_F(Siblings, CheckWithSchema) {
    Request req = test::get(check("vip-a", "port=80&protocolType=TCP"));
    req.set("X-JSON-Schema", "true");
    expect_json(call(std::move(req)), R"({"schema":{},"success":true,"available":false})");
}

TEST_F(Siblings, CheckPortIsConvertedLikeZStack) {
    // Double.valueOf(v).intValue(): fractions truncate, exponents and suffixes are Java syntax.
    expect_json(get(check("vip-a", "port=80.9&protocolType=TCP")), kTaken);
    expect_json(get(check("vip-a", "port=8e1&protocolType=TCP")), kTaken);
    expect_json(get(check("vip-a", "port=80d&protocolType=TCP")), kTaken);
    expect_json(get(check("vip-a", "port=%2B80&protocolType=TCP")), kTaken);  // "+80"
    expect_json(get(check("vip-a", "port=0x50p0&protocolType=TCP")), kTaken);
    expect_json(get(check("vip-a", "port=1.5&protocolType=TCP")), kAvailable);
}

TEST_F(Siblings, CheckPortOutOfRange) {
    const std::string range = "field[port] must be in range of [1, 65535]";
    // port is a primitive int: a missing one is 0, which fails the range, not "mandatory".
    expect_sys1007(get(check("vip-a", "protocolType=TCP")), range);
    for (const char* bad :
         {"0", "65536", "-1", "0.5", "NaN", "Infinity", "-Infinity", "1e10", "99999999999"}) {
        expect_sys1007(get(check("vip-a", "protocolType=TCP&port=" + std::string(bad))), range);
    }
    EXPECT_TRUE(provider->requests.empty());
}

TEST_F(Siblings, CheckNonNumbersFailInTheRestLayerAsPlainText500) {
    const auto expect_500 = [&](std::string query, std::string_view text) {
        expect_plain(get(check("vip-a", query)), bhttp::status::internal_server_error, text);
    };
    expect_500("port=abc&protocolType=TCP", R"(For input string: "abc")");
    expect_500("port=%20abc%20&protocolType=TCP", R"(For input string: "abc")");  // trimmed
    expect_500("port=&protocolType=TCP", "empty String");
    expect_500("port=%20&protocolType=TCP", "empty String");
    expect_500("port=1.2.3&protocolType=TCP", "multiple points");
    expect_500("port=0x50&protocolType=TCP", R"(For input string: "0x50")");
    expect_500("port=80&protocolType=TCP&start=x", R"(For input string: "x")");
    expect_500("port=80&protocolType=TCP&limit=", "empty String");
    // Conversion comes before every validation: port first, also over an unknown VIP.
    expect_500("port=x&protocolType=ICMP&start=y", R"(For input string: "x")");
    expect_plain(get(check("nope", "port=x")), bhttp::status::internal_server_error,
                 R"(For input string: "x")");
    EXPECT_TRUE(provider->requests.empty());
}

TEST_F(Siblings, CheckValidationOrderIsPortThenVipUuidThenProtocolType) {
    const std::string range = "field[port] must be in range of [1, 65535]";
    expect_sys1007(get(check("nope", "port=0&protocolType=ICMP")), range);
    expect_error(get(check("nope", "port=80&protocolType=ICMP")), "SYS.1003",
                 "A resource can not be found",
                 "invalid field[vipUuid], resource[uuid:nope, type:VipVO] not found");
    // The uuid is echoed trimmed.
    expect_error(get(check("%20nope%20", "port=80")), "SYS.1003", "A resource can not be found",
                 "invalid field[vipUuid], resource[uuid:nope, type:VipVO] not found");
    expect_sys1007(get(check("vip-a", "port=80")), mandatory("protocolType"));
    expect_sys1007(get(check("vip-a", "port=80&protocolType=ICMP")),
                   not_tcp_udp("protocolType", "ICMP"));
    expect_sys1007(get(check("vip-a", "port=80&protocolType=")), not_tcp_udp("protocolType", ""));
    expect_sys1007(get(check("vip-a", "port=80&protocolType=%20SCTP%20")),
                   not_tcp_udp("protocolType", "SCTP"));
    // ZStack's usedports parameter name is not this API's.
    expect_sys1007(get(check("vip-a", "port=80&protocol=TCP")), mandatory("protocolType"));
    EXPECT_TRUE(provider->requests.empty());
}

TEST_F(Siblings, CheckRestLayerAndSessionComeFirst) {
    expect_plain(get(check("vip-a", "port=80&port=81&protocolType=TCP")),
                 bhttp::status::bad_request,
                 "Invalid query parameter[port], only one value is allowed for the parameter but "
                 "multiple values found");
    expect_plain(get(check("vip-a", "port=80&protocolType=TCP&vipUuid=a&vipUuid=b")),
                 bhttp::status::bad_request,
                 "Invalid query parameter[vipUuid], only one value is allowed for the parameter "
                 "but multiple values found");
    expect_error(call(test::get(check("nope", "port=x")), std::make_shared<RejectAll>()), "ID.1001",
                 "The session is invalid, either wrong session id or the session has been expired",
                 "Session expired");
    Request job = test::get(check("vip-a", "port=80&protocolType=TCP"));
    job.set("X-Job-UUID", "short");
    expect_plain(call(std::move(job)), bhttp::status::bad_request,
                 "Invalid header[X-Job-UUID], it must be a UUID with '-' stripped");
    Request put = test::get(check("vip-a", "port=80&protocolType=TCP"));
    put.method(bhttp::verb::put);
    EXPECT_EQ(call(std::move(put)).result(), bhttp::status::method_not_allowed);
    expect_plain(get("/zstack/v1/vips/vip-a/check-port-availability/x?port=80"),
                 bhttp::status::not_found,
                 "no api mapping to /v1/vips/vip-a/check-port-availability/x");
}

TEST_F(Siblings, CheckHeadAndFailedSource) {
    Request head = test::get(check("vip-a", "port=80&protocolType=TCP"));
    head.method(bhttp::verb::head);
    const Response h = call(std::move(head));
    EXPECT_EQ(h.result(), bhttp::status::ok);
    EXPECT_EQ(h[bhttp::field::content_length], std::to_string(kTaken.size()));
    EXPECT_TRUE(h.body().empty());

    provider->by_netns.erase("blue");
    expect_error(get(check("vip-c", "port=80&protocolType=TCP")), "SYS.1006", "An operation failed",
                 "failed to read kernel state from source[netns blue]: cannot enter namespace");
}

// ---- get-port-availability ---------------------------------------------------------------------

std::string avail(std::string_view vip, std::string_view query) {
    return "/zstack/v1/vips/" + std::string(vip) + "/get-port-availability?" + std::string(query);
}

// {"success":true,"availablePort":[...]} for the given ports.
std::string ports_body(const std::vector<unsigned>& ports, bool schema = false) {
    std::string out = schema ? R"({"schema":{},"success":true,"availablePort":[)"
                             : R"({"success":true,"availablePort":[)";
    for (std::size_t i = 0; i < ports.size(); ++i) {
        out += (i ? "," : "") + std::to_string(ports[i]);
    }
    return out + "]}";
}

// Free TCP ports of vip-a (10.0.0.5 in the own namespace): 1-65535 minus 20-23, 80, 8080.
std::vector<unsigned> free_tcp_a() {
    std::vector<unsigned> out;
    for (unsigned p = 1; p <= 65535; ++p) {
        if (!(p >= 20 && p <= 23) && p != 80 && p != 8080) {
            out.push_back(p);
        }
    }
    return out;
}

std::vector<unsigned> slice(const std::vector<unsigned>& v, std::size_t from, std::size_t n) {
    const std::size_t to = std::min(v.size(), from + n);
    return from >= to ? std::vector<unsigned>{}
                      : std::vector<unsigned>(v.begin() + static_cast<std::ptrdiff_t>(from),
                                              v.begin() + static_cast<std::ptrdiff_t>(to));
}

TEST_F(Siblings, GetPagesThroughTheFreePorts) {
    const auto free = free_tcp_a();
    ASSERT_EQ(free.size(), 65529u);
    // Defaults: start 0, limit 1000.
    expect_json(get(avail("vip-a", "protocolType=TCP")), ports_body(slice(free, 0, 1000)));
    expect_json(get(avail("vip-a", "protocolType=TCP&start=5&limit=3")), ports_body({6, 7, 8}));
    // start is an index into the free list, not a port: index 17 is port 18, then 19, 24, 25.
    expect_json(get(avail("vip-a", "protocolType=TCP&start=17&limit=4")),
                ports_body({18, 19, 24, 25}));
    expect_json(get(avail("vip-a", "protocolType=TCP&start=1000&limit=2")),
                ports_body(slice(free, 1000, 2)));
    // The list's end: the last index, then one past it, then far beyond.
    expect_json(get(avail("vip-a", "protocolType=TCP&start=65528")), ports_body({65535}));
    expect_json(get(avail("vip-a", "protocolType=TCP&start=65529")), ports_body({}));
    expect_json(get(avail("vip-a", "protocolType=TCP&start=2147483647&limit=2147483647")),
                ports_body({}));
    expect_json(get(avail("vip-a", "protocolType=TCP&start=65520&limit=100")),
                ports_body(slice(free, 65520, 100)));
    // limit 0 gives an empty page.
    expect_json(get(avail("vip-a", "protocolType=TCP&start=3&limit=0")), ports_body({}));
    // Converted like ZStack: 1.5e1 is 15, " 2 " is 2.
    expect_json(get(avail("vip-a", "protocolType=tcp&start=1.5e1&limit=%202%20")),
                ports_body({16, 17}));
}

TEST_F(Siblings, GetHugeLimitReturnsTheRestOfTheList) {
    const auto free = free_tcp_a();
    expect_json(get(avail("vip-a", "protocolType=TCP&limit=2147483647")), ports_body(free));
    expect_json(get(avail("vip-a", "protocolType=TCP&limit=1e99")), ports_body(free));
    // ZStack's int overflow (start + limit > 2^31-1) would fail here; vipportd gives the rest.
    expect_json(get(avail("vip-a", "protocolType=TCP&start=1&limit=2147483647")),
                ports_body(slice(free, 1, free.size())));
    expect_json(get(avail("vip-a", "protocolType=TCP&start=65000&limit=2147483000")),
                ports_body(slice(free, 65000, free.size())));
}

TEST_F(Siblings, GetNegativeStartOrLimitFailsAsZStacksSubList) {
    const auto expect_1000 = [&](std::string query, std::string_view details) {
        expect_error(get(avail("vip-a", "protocolType=TCP&" + query)), "SYS.1000",
                     "An internal error happened in system", details);
    };
    expect_1000("start=-1", "fromIndex = -1");
    expect_1000("start=-3&limit=100000", "fromIndex = -3");
    expect_1000("start=-2147483648&limit=-1", "fromIndex = -2147483648");
    expect_1000("limit=-1", "fromIndex(0) > toIndex(-1)");
    expect_1000("start=5&limit=-10", "fromIndex(5) > toIndex(-5)");
    expect_1000("start=-1e20", "fromIndex = -2147483648");
    // Past the end the page is empty before any range check, as in ZStack.
    expect_json(get(avail("vip-a", "protocolType=TCP&start=70000&limit=-5")), ports_body({}));
}

TEST_F(Siblings, GetOfAVipWithEveryPortUsedIsEmpty) {
    // A whole-IP DNAT (ZStack's EIP) claims every port: no free port, whatever start and limit.
    const std::string whole = "10.0.0.7";
    expect_json(get(avail(whole, "protocolType=UDP")), ports_body({}));
    expect_json(get(avail(whole, "protocolType=UDP&start=-1&limit=-1")), ports_body({}));
    expect_json(get(check(whole, "port=53&protocolType=UDP")), kTaken);
    EXPECT_EQ(get(avail(whole, "protocolType=TCP&limit=3")).body(), ports_body({1, 2, 3}));
}

TEST_F(Siblings, GetWithSchemaAndOtherNamespace) {
    Request req = test::get(avail("vip-c", "protocolType=TCP&start=6998&limit=3"));
    req.set("X-JSON-Schema", "");
    // vip-c's free TCP list skips 7000 (its namespace's wildcard) and 9000.
    expect_json(call(std::move(req)), ports_body({6999, 7001, 7002}, true));
    ASSERT_EQ(provider->requests.size(), 1u);
    EXPECT_EQ(provider->requests[0], std::vector<std::string>{"blue"});
}

TEST_F(Siblings, GetValidationAndOrder) {
    const auto expect_500 = [&](std::string vip, std::string query, std::string_view text) {
        expect_plain(get(avail(vip, query)), bhttp::status::internal_server_error, text);
    };
    // 1. conversion (start, then limit), before anything else.
    expect_500("nope", "start=a&limit=b", R"(For input string: "a")");
    expect_500("nope", "limit=b", R"(For input string: "b")");
    expect_500("vip-a", "protocolType=TCP&start=", "empty String");
    expect_500("vip-a", "protocolType=TCP&limit=..", "multiple points");
    // 2. vipUuid, then protocolType.
    expect_error(get(avail("nope", "protocolType=ICMP")), "SYS.1003", "A resource can not be found",
                 "invalid field[vipUuid], resource[uuid:nope, type:VipVO] not found");
    expect_sys1007(get(avail("vip-a", "start=1")), mandatory("protocolType"));
    expect_sys1007(get(avail("vip-a", "protocolType=tcp6")), not_tcp_udp("protocolType", "tcp6"));
    // port is not a field of this message: ignored, even when it is not a number.
    expect_json(get(avail("vip-a", "protocolType=TCP&port=x&limit=1")), ports_body({1}));
    expect_plain(get(avail("vip-a", "protocolType=TCP&start=1&start=2")),
                 bhttp::status::bad_request,
                 "Invalid query parameter[start], only one value is allowed for the parameter but "
                 "multiple values found");
}

TEST_F(Siblings, GetLargePagesAreGzippedAndHeadKeepsTheLength) {
    Request req = test::get(avail("vip-a", "protocolType=TCP&limit=65535"));
    req.set(bhttp::field::accept_encoding, "gzip");
    const Response gz = call(std::move(req));
    ASSERT_EQ(gz.result(), bhttp::status::ok);
    EXPECT_EQ(gz[bhttp::field::content_encoding], "gzip");
    EXPECT_EQ(gunzip(gz.body().str()), ports_body(free_tcp_a()));

    Request small = test::get(avail("vip-a", "protocolType=TCP&limit=3"));
    small.set(bhttp::field::accept_encoding, "gzip");
    const Response s = call(std::move(small));
    EXPECT_EQ(s.count(bhttp::field::content_encoding), 0u);
    EXPECT_EQ(s[bhttp::field::vary], "Accept-Encoding");

    Request head = test::get(avail("vip-a", "protocolType=TCP"));
    head.method(bhttp::verb::head);
    const Response h = call(std::move(head));
    EXPECT_EQ(h.result(), bhttp::status::ok);
    EXPECT_EQ(h[bhttp::field::content_length],
              std::to_string(ports_body(slice(free_tcp_a(), 0, 1000)).size()));
    EXPECT_TRUE(h.body().empty());
}

TEST_F(Siblings, GetParsesAsJsonIntegers) {
    const Response res = get(avail("vip-a", "protocolType=TCP&limit=4"));
    const boost::json::value v = boost::json::parse(res.body().view());
    ASSERT_TRUE(v.at("availablePort").is_array());
    EXPECT_EQ(v.at("availablePort").as_array().size(), 4u);
    EXPECT_TRUE(v.at("availablePort").as_array()[0].is_int64());
    EXPECT_TRUE(v.at("success").as_bool());
}

// ---- Java's number conversion ------------------------------------------------------------------

TEST(JavaQueryInt, FollowsDoubleValueOfThenIntValue) {
    const std::vector<std::pair<std::string, std::int32_t>> ok = {
        {"0", 0},
        {"80", 80},
        {"+80", 80},
        {"-80", -80},
        {"007", 7},
        {" \t80\n", 80},
        {"80.99", 80},
        {"-80.99", -80},
        {".5", 0},
        {"5.", 5},
        {"1e3", 1000},
        {"1E+3", 1000},
        {"12345e-2", 123},
        {"1.5e1", 15},
        {"80f", 80},
        {"80D", 80},
        {"1e3d", 1000},
        {"0x50p0", 80},
        {"0X1.8p3", 12},
        {"0x.8p1", 1},
        {"-0x10P0f", -16},
        {"NaN", 0},
        {"-NaN", 0},
        {"Infinity", 2147483647},
        {"-Infinity", -2147483647 - 1},
        {"1e10", 2147483647},
        {"-1e10", -2147483647 - 1},
        {"2147483647.9", 2147483647},
        {"1e99999", 2147483647},
        {"1e-99999", 0},
    };
    for (const auto& [text, want] : ok) {
        const zstack::JavaInt got = zstack::java_query_int(text);
        ASSERT_TRUE(got.value.has_value()) << text << ": " << got.error;
        EXPECT_EQ(*got.value, want) << text;
    }
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"", "empty String"},
        {"   ", "empty String"},
        {"abc", R"(For input string: "abc")"},
        {" abc ", R"(For input string: "abc")"},
        {"+", R"(For input string: "+")"},
        {".", R"(For input string: ".")"},
        {"1e", R"(For input string: "1e")"},
        {"1e+", R"(For input string: "1e+")"},
        {"e5", R"(For input string: "e5")"},
        {"80ff", R"(For input string: "80ff")"},
        {"80 80", R"(For input string: "80 80")"},
        {"0x50", R"(For input string: "0x50")"},
        {"0xp1", R"(For input string: "0xp1")"},
        {"0x1p", R"(For input string: "0x1p")"},
        {"nan", R"(For input string: "nan")"},
        {"Infinityf", R"(For input string: "Infinityf")"},
        {"1_000", R"(For input string: "1_000")"},
        {"1.2.3", "multiple points"},
        {"..", "multiple points"},
        {"1,5", R"(For input string: "1,5")"},
        {"\xff"
         "1",
         "For input string: \"\xef\xbf\xbd"
         "1\""},
    };
    for (const auto& [text, want] : bad) {
        const zstack::JavaInt got = zstack::java_query_int(text);
        EXPECT_FALSE(got.value.has_value()) << text;
        EXPECT_EQ(got.error, want) << text;
    }
}

TEST(SiblingTexts, MatchZStack) {
    EXPECT_EQ(zstack::field_out_of_range("port", 1, 65535).details,
              "field[port] must be in range of [1, 65535]");
    EXPECT_EQ(zstack::vip_field_not_found("vipUuid", "x").details,
              "invalid field[vipUuid], resource[uuid:x, type:VipVO] not found");
    EXPECT_EQ(zstack::java_sublist_negative_from(-7), "fromIndex = -7");
    EXPECT_EQ(zstack::java_sublist_from_after_to(3, 1), "fromIndex(3) > toIndex(1)");
    EXPECT_EQ(zstack::port_availability_body(true, false), kAvailable);
    EXPECT_EQ(zstack::available_ports_body(PortSet{{1, 3}, {7, 7}}, false),
              R"({"success":true,"availablePort":[1,2,3,7]})");
}

}  // namespace
}  // namespace vipportd::http
