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

TEST(MakeAuthenticator, FollowsTheMode) {
    agent::AuthConfig none;
    EXPECT_TRUE(make_authenticator(none)->accept("anything"));
    agent::AuthConfig tokens;
    tokens.mode = agent::AuthConfig::Mode::tokens;
    tokens.tokens_file = "/nonexistent/vipportd/tokens";
    EXPECT_THROW(make_authenticator(tokens), std::runtime_error);
}

}  // namespace
}  // namespace vipportd::http
