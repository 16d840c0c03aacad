// The usedports answer with Accept-Encoding: gzip (what the ZStack Java SDK's okhttp always
// sends, zstack-api.md §8.1): compressed only when asked and when worth it, same JSON inside.

#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <zlib.h>

#include "http/router.hpp"
#include "http_fakes.hpp"

namespace vipportd::http {
namespace {

namespace bhttp = boost::beast::http;
using test::gunzip;

class RouterGzip : public ::testing::Test {
  protected:
    RouterGzip() {
        auto s = std::const_pointer_cast<agent::Snapshot>(test::sample_snapshot());
        // 10.0.0.7 is a whole-IP DNAT target: every UDP port.
        s->claims.push_back(test::claim(agent::Protocol::udp, agent::PortSet::all(),
                                        agent::AddressScope::exact(test::ip("10.0.0.7"))));
        provider = std::make_shared<test::FakeProvider>(s);
    }
    Response call(std::string target, std::optional<std::string> accept, bool head = false) {
        Router router(RouterDeps{provider, [] { return test::sample_registry(); },
                                 std::make_shared<AcceptAll>()});
        Request req = test::get(std::move(target));
        if (accept) {
            req.set(bhttp::field::accept_encoding, *accept);
        }
        if (head) {
            req.method(bhttp::verb::head);
        }
        std::optional<Response> out;
        router.handle(std::move(req), [&](Response r) { out = std::move(r); });
        EXPECT_TRUE(out.has_value());
        return out ? *out : Response{};
    }
    std::shared_ptr<test::FakeProvider> provider;
};

constexpr const char* whole_ip = "/zstack/v1/vips/10.0.0.7/usedports?protocol=UDP";

TEST_F(RouterGzip, LargeBodyIsCompressedWhenAskedAndDecompressesToThePlainBody) {
    const Response plain = call(whole_ip, std::nullopt);
    ASSERT_EQ(plain.result(), bhttp::status::ok);
    EXPECT_EQ(plain.count(bhttp::field::content_encoding), 0u);
    EXPECT_EQ(plain[bhttp::field::vary], "Accept-Encoding");
    ASSERT_GT(plain.body().size(), 500'000u);

    const Response gz = call(whole_ip, "gzip, deflate");
    ASSERT_EQ(gz.result(), bhttp::status::ok);
    EXPECT_EQ(gz[bhttp::field::content_encoding], "gzip");
    EXPECT_EQ(gz[bhttp::field::vary], "Accept-Encoding");
    EXPECT_EQ(gz[bhttp::field::content_length], std::to_string(gz.body().size()));
    EXPECT_LT(gz.body().size() * 3, plain.body().size());
    EXPECT_EQ(gunzip(gz.body().str()), plain.body());
}

TEST_F(RouterGzip, NeverCompressedUnlessAskedOrWhenSmall) {
    for (const char* refuse : {"identity", "gzip;q=0", "br"}) {
        const Response r = call(whole_ip, std::string(refuse));
        EXPECT_EQ(r.count(bhttp::field::content_encoding), 0u) << refuse;
    }
    // A handful of ports: below kGzipMinBytes, sent as is even to gzip clients.
    const Response small = call("/zstack/v1/vips/vip-1/usedports?protocol=TCP", "gzip");
    ASSERT_EQ(small.result(), bhttp::status::ok);
    EXPECT_EQ(small.count(bhttp::field::content_encoding), 0u);
    EXPECT_NE(small.body().view().find("\"usedPorts\":[\"20\""), std::string::npos);
}

TEST_F(RouterGzip, HeadCarriesTheCompressedLengthAndNoBody) {
    const Response get = call(whole_ip, "gzip");
    const Response head = call(whole_ip, "gzip", true);
    EXPECT_TRUE(head.body().empty());
    EXPECT_EQ(head[bhttp::field::content_encoding], "gzip");
    EXPECT_EQ(head[bhttp::field::content_length], std::to_string(get.body().size()));
}

TEST_F(RouterGzip, ErrorsAreNeverCompressed) {
    const Response r = call("/zstack/v1/vips/nope/usedports?protocol=UDP", "gzip");
    EXPECT_EQ(r.result(), bhttp::status::service_unavailable);
    EXPECT_EQ(r.count(bhttp::field::content_encoding), 0u);
}

TEST_F(RouterGzip, OneRouterKeepsSchemaAndPlainAnswersApart) {
    // The body cache is per router: the same uuid and ports with and without X-JSON-Schema
    // are two different bodies.
    Router router(RouterDeps{provider, [] { return test::sample_registry(); },
                             std::make_shared<AcceptAll>()});
    const auto ask = [&](bool schema) {
        Request req = test::get("/zstack/v1/vips/vip-1/usedports?protocol=TCP");
        if (schema) {
            req.set("X-JSON-Schema", "true");
        }
        std::optional<Response> out;
        router.handle(std::move(req), [&](Response r) { out = std::move(r); });
        return out ? out->body().str() : std::string();
    };
    const std::string plain = ask(false);
    const std::string schema = ask(true);
    EXPECT_EQ(plain.find("\"schema\""), std::string::npos);
    EXPECT_EQ(schema.rfind("{\"schema\":", 0), 0u);
    EXPECT_EQ(ask(false), plain);
    EXPECT_EQ(ask(true), schema);
}

}  // namespace
}  // namespace vipportd::http
