#include "http/auth.hpp"

#include <stdexcept>
#include <string>

#include "http/java_text.hpp"
#include "http/secret_file.hpp"
#include "http/zstack_sessions.hpp"

namespace vipportd::http {

namespace {

constexpr std::string_view sha256_prefix = "sha256:";

// "sha256:" followed by exactly 64 hex digits (either case), as sha256sum prints a digest.
std::optional<Sha256Digest> parse_digest(std::string_view hex) {
    Sha256Digest d{};
    if (hex.size() != d.size() * 2) {
        return std::nullopt;
    }
    for (std::size_t i = 0; i < d.size(); ++i) {
        const int hi = hex_digit(hex[2 * i]);
        const int lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return std::nullopt;
        }
        d[i] = static_cast<std::uint8_t>(hi * 16 + lo);
    }
    return d;
}

std::shared_ptr<const Authenticator> with_keys(std::shared_ptr<const Authenticator> sessions,
                                               const agent::AuthConfig& config) {
    if (config.access_keys_file.empty()) {
        return sessions;
    }
    return std::make_shared<const WithAccessKeys>(
        std::move(sessions),
        std::make_shared<const AccessKeyStore>(AccessKeyStore::load(config.access_keys_file)));
}

}  // namespace

TokenFile TokenFile::parse(std::string_view text, const std::filesystem::path& origin) {
    std::vector<Sha256Digest> digests;
    for_each_entry(text, [&](std::string_view line, std::size_t number) {
        if (line.starts_with(sha256_prefix)) {
            const auto d = parse_digest(line.substr(sha256_prefix.size()));
            if (!d) {
                throw std::runtime_error("token file '" + origin.string() + "': line " +
                                         std::to_string(number) +
                                         ": malformed digest (expected \"sha256:\" and 64 hex "
                                         "digits, as printed by sha256sum)");
            }
            digests.push_back(*d);
        } else {
            digests.push_back(sha256(line));
        }
    });
    if (digests.empty()) {
        throw std::runtime_error("token file '" + origin.string() +
                                 "': contains no token (one token per line, '#' starts a comment)");
    }
    return TokenFile(std::move(digests));
}

TokenFile TokenFile::load(const std::filesystem::path& path) {
    return parse(read_secret_file(path, "token file"), path);
}

bool TokenFile::accept(std::string_view session) const {
    const Sha256Digest candidate = sha256(session);
    // Every digest is compared, whatever matched before: no early exit (operations.md §5.3).
    unsigned matched = 0;
    for (const auto& d : digests_) {
        matched |= static_cast<unsigned>(digest_equal(candidate, d));
    }
    return matched != 0;
}

void TokenFile::check(const Credentials& credentials, Callback done) const {
    const bool ok = credentials.scheme == Credentials::Scheme::oauth && accept(credentials.session);
    done(ok ? AuthVerdict::accept() : AuthVerdict::reject());
}

WithAccessKeys::WithAccessKeys(std::shared_ptr<const Authenticator> sessions,
                               std::shared_ptr<const AccessKeyStore> keys)
    : sessions_(std::move(sessions)), keys_(std::move(keys)) {
    if (!sessions_ || !keys_) {
        throw std::invalid_argument("http::WithAccessKeys: sessions and keys are required");
    }
}

void WithAccessKeys::check(const Credentials& credentials, Callback done) const {
    if (credentials.scheme == Credentials::Scheme::access_key) {
        return done(keys_->verify(credentials.access_key) ? AuthVerdict::accept()
                                                          : AuthVerdict::reject());
    }
    sessions_->check(credentials, std::move(done));
}

std::shared_ptr<const Authenticator> make_authenticator(const agent::AuthConfig& config) {
    switch (config.mode) {
        case agent::AuthConfig::Mode::tokens:
            return with_keys(std::make_shared<const TokenFile>(TokenFile::load(config.tokens_file)),
                             config);
        case agent::AuthConfig::Mode::zstack:
            return with_keys(
                std::make_shared<const ZStackSessions>(ZStackSessionsOptions::from(config)),
                config);
        case agent::AuthConfig::Mode::none:
            break;
    }
    return std::make_shared<const AcceptAll>();
}

std::shared_ptr<const Authenticator> make_authenticator(const agent::AuthConfig& config,
                                                        boost::asio::any_io_executor executor) {
    if (config.mode == agent::AuthConfig::Mode::zstack) {
        return with_keys(std::make_shared<const ZStackSessions>(ZStackSessionsOptions::from(config),
                                                                std::move(executor)),
                         config);
    }
    return make_authenticator(config);
}

}  // namespace vipportd::http
