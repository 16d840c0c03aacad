// Authenticators: TokenFile loading rules and constant-time matching (operations.md §5.2).

#include "http/auth.hpp"

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

class TokenFileTest : public ::testing::Test {
  protected:
    TokenFileTest() {
        std::string tmpl = (fs::temp_directory_path() / "vipportd-auth-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        dir = tmpl;
    }
    ~TokenFileTest() override { fs::remove_all(dir); }

    fs::path write(const std::string& name, const std::string& text, mode_t mode) {
        const fs::path p = dir / name;
        std::ofstream(p) << text;
        EXPECT_EQ(::chmod(p.c_str(), mode), 0);
        return p;
    }

    // The message of the exception load() throws, or "" when it does not throw.
    static std::string load_error(const fs::path& p) {
        try {
            (void)TokenFile::load(p);
        } catch (const std::runtime_error& e) {
            return e.what();
        }
        return "";
    }

    fs::path dir;
};

TEST_F(TokenFileTest, AcceptsOwnerOnlyFile) {
    const auto file = TokenFile::load(write("tokens", "secret-1\n", 0600));
    EXPECT_EQ(file.size(), 1U);
    EXPECT_TRUE(file.accept("secret-1"));
    EXPECT_FALSE(file.accept("secret-2"));
    EXPECT_EQ(TokenFile::load(write("ro", "secret-1\n", 0400)).size(), 1U);
}

TEST_F(TokenFileTest, RefusesGroupOrWorldAccess) {
    for (mode_t mode : {0644U, 0640U, 0604U, 0660U, 0601U, 0610U}) {
        const auto p = write("tokens", "secret-1\n", mode);
        char expected[8];
        std::snprintf(expected, sizeof expected, "%04o", static_cast<unsigned>(mode));
        const std::string err = load_error(p);
        EXPECT_NE(err.find("'" + p.string() + "'"), std::string::npos) << err;
        EXPECT_NE(err.find(std::string("mode ") + expected), std::string::npos) << err;
        EXPECT_NE(err.find("0600"), std::string::npos) << err;
    }
}

TEST_F(TokenFileTest, RefusesMissingFileAndDirectory) {
    const auto missing = dir / "absent";
    std::string err = load_error(missing);
    EXPECT_NE(err.find("'" + missing.string() + "'"), std::string::npos) << err;
    EXPECT_NE(err.find("cannot open"), std::string::npos) << err;
    EXPECT_NE(err.find("No such file or directory"), std::string::npos) << err;

    const auto sub = dir / "sub";
    fs::create_directory(sub);
    ::chmod(sub.c_str(), 0700);
    err = load_error(sub);
    EXPECT_NE(err.find("not a regular file"), std::string::npos) << err;
}

TEST_F(TokenFileTest, RefusesFileWithoutTokens) {
    const std::string err = load_error(write("tokens", "# only a comment\n\n   \n", 0600));
    EXPECT_NE(err.find("contains no token"), std::string::npos) << err;
}

TEST_F(TokenFileTest, IgnoresCommentsBlankLinesAndSurroundingWhitespace) {
    const auto file = TokenFile::load(write("tokens",
                                            "# management node\n"
                                            "\n"
                                            "   first-token  \r\n"
                                            "\tsecond token\t\n"
                                            "  # indented comment\n"
                                            "third#not-a-comment\n"
                                            "last-without-newline",
                                            0600));
    EXPECT_EQ(file.size(), 4U);
    EXPECT_TRUE(file.accept("first-token"));
    EXPECT_TRUE(file.accept("second token"));  // inner whitespace belongs to the token
    EXPECT_TRUE(file.accept("third#not-a-comment"));
    EXPECT_TRUE(file.accept("last-without-newline"));
    EXPECT_FALSE(file.accept("# management node"));
    EXPECT_FALSE(file.accept("management node"));
    EXPECT_FALSE(file.accept("# indented comment"));
    EXPECT_FALSE(file.accept(""));
    EXPECT_FALSE(file.accept("   first-token  "));  // the router trims; the file does not re-trim
}

TEST(TokenFile, EveryTokenIsCheckedExactly) {
    // The comparison visits every token: the first, a middle and the last one all match, and
    // near misses (prefixes, extensions, one bit off, other lengths) never do.
    std::string text;
    for (int i = 0; i < 50; ++i) {
        text += "token-" + std::to_string(i) + "\n";
    }
    const auto file = TokenFile::parse(text, "inline");
    EXPECT_EQ(file.size(), 50U);
    EXPECT_TRUE(file.accept("token-0"));
    EXPECT_TRUE(file.accept("token-25"));
    EXPECT_TRUE(file.accept("token-49"));
    EXPECT_FALSE(file.accept("token-50"));
    EXPECT_FALSE(file.accept("token-"));
    EXPECT_FALSE(file.accept("token-4x"));
    EXPECT_FALSE(file.accept("token-490"));
    EXPECT_FALSE(file.accept("Token-1"));
    EXPECT_FALSE(file.accept(std::string("token-1\0", 8)));
    EXPECT_FALSE(file.accept("token-1 "));
}

TEST(AcceptAll, AcceptsAnything) {
    const AcceptAll all;
    EXPECT_TRUE(all.accept(""));
    EXPECT_TRUE(all.accept("whatever"));
}

// The verdict of a synchronous authenticator; fails the test if check() did not answer inline.
AuthVerdict::Kind verdict_of(const Authenticator& a, const Credentials& c) {
    int calls = 0;
    AuthVerdict out;
    a.check(c, [&](AuthVerdict v) {
        ++calls;
        out = std::move(v);
    });
    EXPECT_EQ(calls, 1);
    return out.kind;
}

Credentials oauth(std::string session) {
    Credentials c;
    c.session = std::move(session);
    return c;
}

Credentials access_key(std::string id, std::string signature, std::string string_to_sign) {
    Credentials c;
    c.scheme = Credentials::Scheme::access_key;
    c.access_key = {std::move(id), std::move(signature), std::move(string_to_sign)};
    return c;
}

using Kind = AuthVerdict::Kind;

TEST(TokenFile, Sha256EntriesMatchTheTokenTheyDigest) {
    // `printf %s secret-1 | sha256sum`; secret-2's digest in upper case, as some tools print it.
    const auto file = TokenFile::parse(
        "sha256:f7e7c36e458e80e6b6a2c67d0a9ec09bd718dadd7bfa8d6bf6e7ad526e46c2f7\n"
        "sha256:F4B6BB6548129DACF11C1A9C4DFFFFEFD4AA6B21FCF4E9754CC03B731CBE7C25\n"
        "plain-token\n",
        "inline");
    EXPECT_EQ(file.size(), 3U);
    EXPECT_TRUE(file.accept("secret-1"));
    EXPECT_TRUE(file.accept("secret-2"));
    EXPECT_TRUE(file.accept("plain-token"));
    EXPECT_FALSE(file.accept("secret-3"));
    // A digest line holds no token: its own text is not accepted.
    EXPECT_FALSE(
        file.accept("sha256:f7e7c36e458e80e6b6a2c67d0a9ec09bd718dadd7bfa8d6bf6e7ad526e46c2f7"));
    EXPECT_FALSE(file.accept("f7e7c36e458e80e6b6a2c67d0a9ec09bd718dadd7bfa8d6bf6e7ad526e46c2f7"));
}

TEST(TokenFile, Sha256EntryOfAKnownToken) {
    // sha256("abc") (FIPS 180-2 appendix B.1).
    const auto file = TokenFile::parse(
        "# digest only\n"
        "  sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD  \n",
        "inline");
    EXPECT_TRUE(file.accept("abc"));
    EXPECT_FALSE(file.accept("abd"));
    EXPECT_FALSE(file.accept(""));
}

TEST(TokenFile, MalformedSha256EntryNamesTheLine) {
    for (const char* bad :
         {"sha256:", "sha256:abc",
          "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a",
          "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015adff",
          "sha256:ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}) {
        try {
            (void)TokenFile::parse(std::string("ok\n\n") + bad + "\n", "/etc/t");
            ADD_FAILURE() << bad;
        } catch (const std::runtime_error& e) {
            EXPECT_EQ(std::string(e.what()),
                      "token file '/etc/t': line 3: malformed digest (expected \"sha256:\" and 64 "
                      "hex digits, as printed by sha256sum)")
                << bad;
        }
    }
}

TEST(TokenFile, CheckAcceptsOnlyKnownOAuthSessions) {
    const auto file = TokenFile::parse("good\n", "inline");
    EXPECT_EQ(verdict_of(file, oauth("good")), Kind::accepted);
    EXPECT_EQ(verdict_of(file, oauth("bad")), Kind::rejected);
    // Without WithAccessKeys the AccessKey scheme is refused, even with a token as id.
    EXPECT_EQ(verdict_of(file, access_key("good", "x", "GET\nd\n/v1")), Kind::rejected);
}

TEST(AcceptAll, CheckAcceptsEveryScheme) {
    const AcceptAll all;
    EXPECT_EQ(verdict_of(all, oauth("")), Kind::accepted);
    EXPECT_EQ(verdict_of(all, access_key("id", "sig", "x")), Kind::accepted);
}

TEST(WithAccessKeys, RoutesEachSchemeToItsChecker) {
    const auto keys =
        std::make_shared<const AccessKeyStore>(AccessKeyStore::parse("AK1 secret-1\n", "inline"));
    const WithAccessKeys both(std::make_shared<const TokenFile>(TokenFile::parse("tok\n", "i")),
                              keys);
    const std::string sts = "GET\nTue, 03 Jun 2008 11:05:30 GMT\n/v1/vips/x/usedports";
    EXPECT_EQ(verdict_of(both, oauth("tok")), Kind::accepted);
    EXPECT_EQ(verdict_of(both, oauth("AK1")), Kind::rejected);
    EXPECT_EQ(verdict_of(both, access_key("AK1", hmac_sha1_base64("secret-1", sts), sts)),
              Kind::accepted);
    EXPECT_EQ(verdict_of(both, access_key("AK1", hmac_sha1_base64("secret-2", sts), sts)),
              Kind::rejected);
    EXPECT_THROW(WithAccessKeys(nullptr, keys), std::invalid_argument);
}

TEST_F(TokenFileTest, MakeAuthenticatorFollowsTheMode) {
    agent::AuthConfig none;
    EXPECT_EQ(verdict_of(*make_authenticator(none), oauth("anything")), Kind::accepted);

    agent::AuthConfig tokens;
    tokens.mode = agent::AuthConfig::Mode::tokens;
    tokens.tokens_file = "/nonexistent/vipportd/tokens";
    EXPECT_THROW(make_authenticator(tokens), std::runtime_error);

    tokens.tokens_file = write("tokens", "tok\n", 0600);
    const auto plain = make_authenticator(tokens);
    EXPECT_EQ(verdict_of(*plain, oauth("tok")), Kind::accepted);
    EXPECT_EQ(verdict_of(*plain, access_key("AK1", "sig", "s")), Kind::rejected);

    // With access_keys_file: the AccessKey scheme as well; an unsafe file is refused.
    tokens.access_keys_file = write("keys", "AK1 s3cret\n", 0600);
    const auto both = make_authenticator(tokens);
    EXPECT_EQ(verdict_of(*both, oauth("tok")), Kind::accepted);
    EXPECT_EQ(verdict_of(*both, access_key("AK1", hmac_sha1_base64("s3cret", "s"), "s")),
              Kind::accepted);
    tokens.access_keys_file = write("keys-open", "AK1 s3cret\n", 0640);
    EXPECT_THROW(make_authenticator(tokens), std::runtime_error);

    agent::AuthConfig zstack;
    zstack.mode = agent::AuthConfig::Mode::zstack;
    zstack.management_node = "ftp://node";
    EXPECT_THROW(make_authenticator(zstack), std::invalid_argument);
}

}  // namespace
}  // namespace vipportd::http
