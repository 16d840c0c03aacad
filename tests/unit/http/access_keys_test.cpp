// ZStack's AccessKey scheme: header parsing in RestServer's order, the Date format and skew
// window, HMAC-SHA1 (RFC 2202 vectors), the keys file and verification.

#include "http/access_keys.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include <gtest/gtest.h>
#include <sys/stat.h>

namespace vipportd::http {
namespace {

namespace fs = std::filesystem;
namespace bhttp = boost::beast::http;
using std::chrono::minutes;
using std::chrono::seconds;
using std::chrono::system_clock;

constexpr std::string_view kDate = "Tue, 03 Jun 2008 11:05:30 GMT";
constexpr std::string_view kPath = "/v1/vips/vip-1/usedports";

// 2008-06-03T11:05:30Z.
const system_clock::time_point kWhen = system_clock::time_point(seconds(1212491130));

std::variant<AccessKeyRequest, PlainRejection> parse(std::string_view auth,
                                                     std::optional<std::string_view> date = kDate,
                                                     system_clock::time_point now = kWhen) {
    return parse_access_key(auth, date, "GET", kPath, now);
}

void expect_rejection(const std::variant<AccessKeyRequest, PlainRejection>& r,
                      bhttp::status status,
                      std::string_view body) {
    const auto* p = std::get_if<PlainRejection>(&r);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->status, status);
    EXPECT_EQ(p->body, body);
}

TEST(AccessKeyDate, ParsesTheJavaFormat) {
    EXPECT_EQ(parse_access_key_date(kDate), kWhen);
    // Beyond system_clock's nanosecond span (1678-2262): clamped, never an overflow (fuzz
    // finding finding_date_year_7810.http); such a date is then simply too skewed (403).
    EXPECT_EQ(parse_access_key_date("Mon, 01 Jan 7810 00:00:00 GMT"),
              std::chrono::system_clock::time_point::max());
    EXPECT_EQ(parse_access_key_date("Wed, 01 Jan 1000 00:00:00 GMT"),
              std::chrono::system_clock::time_point::min());
    EXPECT_EQ(parse_access_key_date("Tue, 3 Jun 2008 11:05:30 GMT"), kWhen);  // RFC 1123 'd'
    EXPECT_EQ(parse_access_key_date("Tue, 03 Jun 2008 11:05:30 UTC"), kWhen);
    EXPECT_EQ(parse_access_key_date("Thu, 01 Jan 1970 00:00:00 GMT"), system_clock::time_point{});
    EXPECT_EQ(parse_access_key_date("Thu, 29 Feb 2024 23:59:59 GMT"),
              system_clock::time_point(seconds(1709251199)));
}

TEST(AccessKeyDate, RefusesAnythingElse) {
    for (const char* bad : {
             "",
             "Wed, 03 Jun 2008 11:05:30 GMT",  // wrong weekday
             "tue, 03 Jun 2008 11:05:30 GMT",  // names are case-sensitive
             "Tue, 03 jun 2008 11:05:30 GMT",
             "Tue, 03 Jun 08 11:05:30 GMT",  // two-digit year
             "Tue, 03 Jun 2008 11:05 GMT",   // no seconds
             "Tue, 03 Jun 2008 24:00:00 GMT",
             "Tue, 03 Jun 2008 11:60:30 GMT",
             "Tue, 03 Jun 2008 11:05:30 +0000",  // offsets are not zone names
             "Tue, 03 Jun 2008 11:05:30 CEST",
             "Tue, 03 Jun 2008 11:05:30",
             "Tue, 03 Jun 2008 11:05:30 GMT extra",
             "Tue,  03 Jun 2008 11:05:30 GMT",
             "Sat, 31 Jun 2008 11:05:30 GMT",  // no 31 June
             "Fri, 29 Feb 2023 11:05:30 GMT",  // not a leap year
             "2008-06-03T11:05:30Z",
         }) {
        EXPECT_FALSE(parse_access_key_date(bad).has_value()) << bad;
    }
}

TEST(AccessKeyHeader, WellFormedRequestCarriesWhatIsSigned) {
    const auto r = parse("ZStack AK1:c2lnbmF0dXJl");
    const auto* a = std::get_if<AccessKeyRequest>(&r);
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->id, "AK1");
    EXPECT_EQ(a->signature, "c2lnbmF0dXJl");
    EXPECT_EQ(a->string_to_sign, "GET\n" + std::string(kDate) + "\n" + std::string(kPath));
    // No space is needed after the scheme, and the rest is trimmed (replaceFirst + trim).
    const auto tight = parse("ZStackAK1:sig  ");
    ASSERT_NE(std::get_if<AccessKeyRequest>(&tight), nullptr);
    EXPECT_EQ(std::get<AccessKeyRequest>(tight).id, "AK1");
    EXPECT_EQ(std::get<AccessKeyRequest>(tight).signature, "sig");
    // Java's split(":") drops trailing empty fields: "a:b:" is two fields.
    const auto trailing = parse("ZStack a:b::");
    ASSERT_NE(std::get_if<AccessKeyRequest>(&trailing), nullptr);
    EXPECT_EQ(std::get<AccessKeyRequest>(trailing).signature, "b");
    // ":sig" keeps its empty id (then unknown to every store).
    const auto no_id = parse("ZStack :sig");
    ASSERT_NE(std::get_if<AccessKeyRequest>(&no_id), nullptr);
    EXPECT_EQ(std::get<AccessKeyRequest>(no_id).id, "");
}

TEST(AccessKeyHeader, DateChecksComeFirstAsInRestServer) {
    using namespace access_key_text;
    expect_rejection(parse("ZStack AK1:sig", std::nullopt), bhttp::status::bad_request,
                     date_missing);
    // Even a malformed key part is reported as the Date problem first.
    expect_rejection(parse("ZStack nonsense", std::nullopt), bhttp::status::bad_request,
                     date_missing);
    expect_rejection(parse("ZStack nonsense", "yesterday"), bhttp::status::bad_request,
                     date_format);
    expect_rejection(parse("ZStack nonsense", kDate, kWhen + minutes(16)), bhttp::status::forbidden,
                     time_skewed);
    expect_rejection(parse("ZStack nonsense"), bhttp::status::bad_request, bad_format);
}

TEST(AccessKeyHeader, SkewWindowIsFifteenMinutesInclusive) {
    const auto ok = [](system_clock::time_point now) {
        return std::holds_alternative<AccessKeyRequest>(parse("ZStack AK1:sig", kDate, now));
    };
    EXPECT_TRUE(ok(kWhen));
    EXPECT_TRUE(ok(kWhen + minutes(15)));
    EXPECT_TRUE(ok(kWhen - minutes(15)));
    EXPECT_FALSE(ok(kWhen + minutes(15) + seconds(1)));
    EXPECT_FALSE(ok(kWhen - minutes(15) - seconds(1)));
}

TEST(AccessKeyHeader, FormatNeedsExactlyTwoFields) {
    for (const char* bad : {"ZStack", "ZStack ", "ZStack AK1", "ZStack AK1:", "ZStack a:b:c",
                            "ZStack ::", "ZStack :"}) {
        expect_rejection(parse(bad), bhttp::status::bad_request, access_key_text::bad_format);
    }
}

TEST(HmacSha1, Rfc2202Vectors) {
    // RFC 2202 §3 test cases 1 and 2, base64-encoded.
    EXPECT_EQ(hmac_sha1_base64(std::string(20, '\x0b'), "Hi There"),
              "thcxhlUFcmTii8C2+zeMjvFGvgA=");
    EXPECT_EQ(hmac_sha1_base64("Jefe", "what do ya want for nothing?"),
              "7/zfauXrL6LSdBbV8YTfnCWafHk=");
    EXPECT_EQ(hmac_sha1_base64("", "").size(), 28U);
}

class AccessKeyStoreTest : public ::testing::Test {
  protected:
    AccessKeyStoreTest() {
        std::string tmpl = (fs::temp_directory_path() / "vipportd-keys-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        dir = tmpl;
    }
    ~AccessKeyStoreTest() override { fs::remove_all(dir); }

    fs::path write(const std::string& name, const std::string& text, mode_t mode) {
        const fs::path p = dir / name;
        std::ofstream(p) << text;
        EXPECT_EQ(::chmod(p.c_str(), mode), 0);
        return p;
    }

    static std::string parse_error(std::string_view text) {
        try {
            (void)AccessKeyStore::parse(text, "/etc/vipportd/keys");
        } catch (const std::runtime_error& e) {
            return e.what();
        }
        return "";
    }

    fs::path dir;
};

AccessKeyRequest signed_request(std::string id, std::string_view secret) {
    AccessKeyRequest r;
    r.id = std::move(id);
    r.string_to_sign = "GET\n" + std::string(kDate) + "\n" + std::string(kPath);
    r.signature = hmac_sha1_base64(secret, r.string_to_sign);
    return r;
}

TEST_F(AccessKeyStoreTest, VerifiesSignaturesOfKnownKeys) {
    const auto store = AccessKeyStore::load(write("keys",
                                                  "# ZStack AccessKey pairs\n"
                                                  "\n"
                                                  "AK1 secret-1\n"
                                                  "  AK2\t\tsecret-two?  \n",
                                                  0600));
    EXPECT_EQ(store.size(), 2U);
    auto good = signed_request("AK1", "secret-1");
    // Independently computed with python3 hmac/base64.
    EXPECT_EQ(good.signature, "r8FUdxS4GB9pOZuX0gJdqONgua4=");
    EXPECT_TRUE(store.verify(good));
    EXPECT_TRUE(store.verify(signed_request("AK2", "secret-two?")));  // tabs separate, trimmed

    auto wrong_secret = signed_request("AK1", "secret-2");
    EXPECT_FALSE(store.verify(wrong_secret));
    auto unknown = signed_request("AK3", "secret-1");
    EXPECT_FALSE(store.verify(unknown));
    auto truncated = good;
    truncated.signature.pop_back();
    EXPECT_FALSE(store.verify(truncated));
    auto other_path = good;
    other_path.string_to_sign += "x";
    EXPECT_FALSE(store.verify(other_path));
    auto empty = good;
    empty.signature.clear();
    EXPECT_FALSE(store.verify(empty));
}

TEST_F(AccessKeyStoreTest, SecretsAreSingleFieldsWithoutInnerBlanks) {
    // "secret two?" has an inner blank: a third field, refused with the line number.
    EXPECT_EQ(parse_error("AK1 s1\nAK2 secret two?\n"),
              "access keys file '/etc/vipportd/keys': line 2: expected \"<AccessKeyId> "
              "<AccessKeySecret>\", got more than two fields");
}

TEST_F(AccessKeyStoreTest, RefusesMalformedFilesWithoutShowingSecrets) {
    EXPECT_EQ(parse_error("AK1\n"),
              "access keys file '/etc/vipportd/keys': line 1: expected \"<AccessKeyId> "
              "<AccessKeySecret>\", got one field");
    EXPECT_EQ(parse_error("AK1 s1\n# c\nAK1 s2\n"),
              "access keys file '/etc/vipportd/keys': line 3: duplicate AccessKeyId 'AK1'");
    EXPECT_EQ(parse_error("A:K s1\n"),
              "access keys file '/etc/vipportd/keys': line 1: AccessKeyId 'A:K' contains ':'");
    EXPECT_NE(parse_error("# nothing\n\n").find("contains no key"), std::string::npos);
    EXPECT_EQ(parse_error("AK1 s1\nAK2 hunter2 x\n").find("hunter2"), std::string::npos);
}

TEST_F(AccessKeyStoreTest, RefusesFilesOthersCanRead) {
    for (mode_t mode : {0644U, 0640U, 0604U}) {
        const auto p = write("keys", "AK1 s1\n", mode);
        try {
            (void)AccessKeyStore::load(p);
            ADD_FAILURE() << mode;
        } catch (const std::runtime_error& e) {
            const std::string what = e.what();
            EXPECT_NE(what.find("access keys file '" + p.string() + "': mode 0"), std::string::npos)
                << what;
            EXPECT_NE(what.find("0600"), std::string::npos) << what;
        }
    }
    EXPECT_THROW((void)AccessKeyStore::load(dir / "absent"), std::runtime_error);
    EXPECT_EQ(AccessKeyStore::load(write("ro", "AK1 s1\n", 0400)).size(), 1U);
}

}  // namespace
}  // namespace vipportd::http
