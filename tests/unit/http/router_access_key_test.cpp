// Router + AccessKey scheme ("Authorization: ZStack id:sig" + Date, zstack-api.md §2.3, §8.1a):
// exact answers for every case, with signatures computed from the Date of now.

#include <ctime>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "http/access_keys.hpp"
#include "http/auth.hpp"
#include "http/router.hpp"
#include "http_fakes.hpp"

namespace vipportd::http {
namespace {

namespace bhttp = boost::beast::http;
using std::chrono::system_clock;

constexpr std::string_view kTarget = "/zstack/v1/vips/vip-1/usedports?protocol=TCP";
constexpr std::string_view kSignedPath = "/v1/vips/vip-1/usedports";
const std::string id1001 =
    R"({"error":{"code":"ID.1001","description":"The session is invalid, either wrong session id or the session has been expired","details":"Session expired"}})";

// "EEE, dd MMM yyyy HH:mm:ss GMT" in English, as the Java SDK sends it.
std::string http_date(system_clock::time_point t) {
    const std::time_t tt = system_clock::to_time_t(t);
    std::tm tm{};
    ::gmtime_r(&tt, &tm);
    static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
                  tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                  tm.tm_sec);
    return buf;
}

class RouterAccessKeyTest : public ::testing::Test {
  protected:
    RouterAccessKeyTest()
        : provider(std::make_shared<test::FakeProvider>(test::sample_snapshot())),
          keys(std::make_shared<const AccessKeyStore>(
              AccessKeyStore::parse("AK1 secret-1\nAK2 secret-2\n", "inline"))) {}

    Response call(Request req, std::shared_ptr<const Authenticator> auth = nullptr) {
        if (!auth) {
            auth = std::make_shared<const WithAccessKeys>(
                std::make_shared<const TokenFile>(TokenFile::parse("tok\n", "inline")), keys);
        }
        RouterDeps deps;  // field by field: other members have defaults
        deps.snapshots = provider;
        deps.registry = [this] { return registry; };
        deps.auth = std::move(auth);
        Router router(std::move(deps));
        int calls = 0;
        std::optional<Response> out;
        router.handle(std::move(req), [&](Response res) {
            ++calls;
            out = std::move(res);
        });
        EXPECT_EQ(calls, 1);
        return out.value_or(Response{});
    }

    static Request signed_get(std::string_view id,
                              std::string_view secret,
                              std::optional<std::string> date,
                              std::string_view target = kTarget,
                              std::string_view signed_path = kSignedPath,
                              bhttp::verb method = bhttp::verb::get) {
        Request req{method, target, 11};
        std::string sts = std::string(bhttp::to_string(method)) + "\n" + date.value_or("") + "\n" +
                          std::string(signed_path);
        req.set(bhttp::field::authorization,
                "ZStack " + std::string(id) + ":" + hmac_sha1_base64(secret, sts));
        if (date) {
            req.set(bhttp::field::date, *date);
        }
        return req;
    }

    std::shared_ptr<test::FakeProvider> provider;
    std::shared_ptr<const agent::VipRegistry> registry = test::sample_registry();
    std::shared_ptr<const AccessKeyStore> keys;
};

TEST_F(RouterAccessKeyTest, GoodSignatureIsAnswered) {
    const auto res = call(signed_get("AK1", "secret-1", http_date(system_clock::now())));
    EXPECT_EQ(res.result(), bhttp::status::ok);
    EXPECT_NE(res.body().view().find("\"usedPorts\":[\"20\""), std::string::npos) << res.body();
    EXPECT_EQ(provider->calls, 1);
    // OAuth keeps working next to it.
    EXPECT_EQ(call(test::get(std::string(kTarget), "OAuth tok")).result(), bhttp::status::ok);
}

TEST_F(RouterAccessKeyTest, BadSignatureAndUnknownKeyAreId1001) {
    const std::string now = http_date(system_clock::now());
    for (auto req : {signed_get("AK1", "secret-2", now), signed_get("AK9", "secret-1", now),
                     // signed for another VIP
                     signed_get("AK1", "secret-1", now, kTarget, "/v1/vips/vip-2/usedports")}) {
        const auto res = call(std::move(req));
        EXPECT_EQ(res.result(), bhttp::status::service_unavailable);
        EXPECT_EQ(res.body(), id1001);
    }
    // Session before parameters (§17): an unauthenticated caller learns nothing of the uuid.
    const auto res = call(signed_get("AK1", "secret-2", now, "/zstack/v1/vips/nope/usedports",
                                     "/v1/vips/nope/usedports"));
    EXPECT_EQ(res.body(), id1001);
    EXPECT_EQ(provider->calls, 0);
}

TEST_F(RouterAccessKeyTest, DateProblemsArePlainTextAsZStackWordsThem) {
    const auto text = [](const Response& r) {
        EXPECT_EQ(r[bhttp::field::content_type], "text/plain; charset=utf-8");
        return std::make_pair(r.result_int(), r.body().str());
    };
    EXPECT_EQ(text(call(signed_get("AK1", "secret-1", std::nullopt))),
              std::make_pair(400U, std::string("'Date' must be incuded in request header")));
    EXPECT_EQ(
        text(call(signed_get("AK1", "secret-1", std::string("2024-01-01T00:00:00Z")))),
        std::make_pair(
            400U,
            std::string("'Date' format error, correct format is 'EEE, dd MMM yyyy HH:mm:ss z'")));
    const auto skewed = http_date(system_clock::now() - std::chrono::minutes(16));
    EXPECT_EQ(text(call(signed_get("AK1", "secret-1", skewed))),
              std::make_pair(403U, std::string("requestTimeTooSkewed")));
    const auto ahead = http_date(system_clock::now() + std::chrono::minutes(16));
    EXPECT_EQ(text(call(signed_get("AK1", "secret-1", ahead))).first, 403U);
    // Ten minutes off is inside the window.
    const auto near = http_date(system_clock::now() - std::chrono::minutes(10));
    EXPECT_EQ(call(signed_get("AK1", "secret-1", near)).result(), bhttp::status::ok);

    auto req = test::get(std::string(kTarget), "ZStack AK1");
    req.set(bhttp::field::date, http_date(system_clock::now()));
    EXPECT_EQ(
        text(call(std::move(req))),
        std::make_pair(400U, std::string("accessKey format is 'ZStack AccessKeyId:Signature'")));
    EXPECT_EQ(provider->calls, 1);
}

TEST_F(RouterAccessKeyTest, SignedPathIsDecodedWithoutContextOrQuery) {
    registry = test::sample_registry({{"vip 2", test::ip("10.0.0.5")}});
    const auto res = call(signed_get("AK2", "secret-2", http_date(system_clock::now()),
                                     "/zstack/v1/vips/vip%202/usedports?protocol=TCP&x=1",
                                     "/v1/vips/vip 2/usedports"));
    EXPECT_EQ(res.result(), bhttp::status::ok) << res.body();
}

TEST_F(RouterAccessKeyTest, HeadSignsItsOwnMethod) {
    const std::string now = http_date(system_clock::now());
    auto head = call(signed_get("AK1", "secret-1", now, kTarget, kSignedPath, bhttp::verb::head));
    EXPECT_EQ(head.result(), bhttp::status::ok);
    // A GET signature replayed on HEAD does not verify.
    auto req = signed_get("AK1", "secret-1", now);
    req.method(bhttp::verb::head);
    EXPECT_EQ(call(std::move(req)).result(), bhttp::status::service_unavailable);
}

TEST_F(RouterAccessKeyTest, WithoutAKeyFileTheSchemeIsRecognisedButRejected) {
    const auto tokens = std::make_shared<const TokenFile>(TokenFile::parse("tok\n", "inline"));
    const auto res = call(signed_get("AK1", "secret-1", http_date(system_clock::now())), tokens);
    EXPECT_EQ(res.body(), id1001);
    // Mode none accepts any well-formed credential, like any OAuth token.
    EXPECT_EQ(call(signed_get("AK1", "wrong", http_date(system_clock::now())),
                   std::make_shared<const AcceptAll>())
                  .result(),
              bhttp::status::ok);
}

}  // namespace
}  // namespace vipportd::http
