#pragma once
// Who may call the API. The router extracts the credentials of every request (the OAuth token,
// or a checked AccessKey request) and hands them to an Authenticator, which answers
// asynchronously: a rejection answers ZStack's ID.1001, an unreachable validator SYS.1006
// (zstack-api.md §5.2, §7). Modes ([auth] mode): none, tokens, zstack; an optional AccessKey
// file adds the "ZStack <id>:<signature>" scheme to tokens and zstack.

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "agent/config.hpp"
#include "http/access_keys.hpp"
#include "http/sha256.hpp"

namespace vipportd::http {

/// What a request presents, as the router parsed it from Authorization (and Date).
struct Credentials {
    enum class Scheme { oauth, access_key };
    Scheme scheme = Scheme::oauth;
    std::string session;          // oauth: the text after "OAuth", trimmed
    AccessKeyRequest access_key;  // access_key: format and clock skew already checked
};

/// The answer of an Authenticator.
struct AuthVerdict {
    enum class Kind {
        accepted,
        rejected,     // 503 ID.1001
        unavailable,  // 503 SYS.1006 with details: the validator could not decide (fail closed)
    };
    Kind kind = Kind::rejected;
    std::string details;  // unavailable: what failed, naming the management node

    static AuthVerdict accept() { return {Kind::accepted, {}}; }
    static AuthVerdict reject() { return {Kind::rejected, {}}; }
    static AuthVerdict unavailable(std::string why) { return {Kind::unavailable, std::move(why)}; }
};

class Authenticator {
  public:
    using Callback = std::function<void(AuthVerdict)>;
    virtual ~Authenticator() = default;
    /// Decides whether credentials may use the API and calls done exactly once: synchronously
    /// for local decisions, or later on another thread (the validator's executor). done must
    /// not throw. Thread-safe.
    virtual void check(const Credentials& credentials, Callback done) const = 0;
};

/// auth mode "none": every credential (even an empty token) is accepted. Config validation
/// restricts this mode to loopback listeners.
class AcceptAll final : public Authenticator {
  public:
    [[nodiscard]] bool accept(std::string_view /*session*/) const { return true; }
    void check(const Credentials& /*credentials*/, Callback done) const override {
        done(AuthVerdict::accept());
    }
};

/// auth mode "tokens": a fixed set of static tokens read from a file (operations.md §5.2).
/// Only SHA-256 digests are kept; accept() hashes the candidate and compares it with every
/// digest, with no early exit, so timing reveals neither which token matched nor how many bytes.
/// AccessKey credentials are rejected (WithAccessKeys adds them).
class TokenFile final : public Authenticator {
  public:
    /// Reads path: one token per line, surrounding whitespace trimmed, blank lines and lines
    /// starting with '#' (after trimming) ignored. A line "sha256:<64 hex digits>" is the
    /// SHA-256 digest of a token instead of the token itself (e.g. from
    /// `printf %s TOKEN | sha256sum`), so the file need not hold the secret. Throws
    /// std::runtime_error naming the path when the file cannot be opened or read, is not a
    /// regular file, grants any permission to group or others (mode & 077), has a malformed
    /// "sha256:" line (the line number is given), or holds no token.
    static TokenFile load(const std::filesystem::path& path);
    /// The same parsing rules on text already in memory (origin is used only in messages).
    static TokenFile parse(std::string_view text, const std::filesystem::path& origin);

    [[nodiscard]] bool accept(std::string_view session) const;
    void check(const Credentials& credentials, Callback done) const override;
    [[nodiscard]] std::size_t size() const { return digests_.size(); }

  private:
    explicit TokenFile(std::vector<Sha256Digest> digests) : digests_(std::move(digests)) {}
    std::vector<Sha256Digest> digests_;
};

/// Adds the AccessKey scheme to an authenticator: OAuth credentials go to sessions, AccessKey
/// credentials are verified against keys.
class WithAccessKeys final : public Authenticator {
  public:
    /// Throws std::invalid_argument when either is null.
    WithAccessKeys(std::shared_ptr<const Authenticator> sessions,
                   std::shared_ptr<const AccessKeyStore> keys);
    void check(const Credentials& credentials, Callback done) const override;

  private:
    std::shared_ptr<const Authenticator> sessions_;
    std::shared_ptr<const AccessKeyStore> keys_;
};

/// The authenticator an [auth] section asks for: AcceptAll for mode none, TokenFile::load for
/// mode tokens, ZStackSessions (http/zstack_sessions.hpp) for mode zstack, wrapped in
/// WithAccessKeys when access_keys_file is set. Throws std::runtime_error for an unreadable or
/// unsafe tokens or access keys file, std::invalid_argument for a bad management_node.
///
/// Mode zstack talks to the management node on a private I/O thread owned by the returned
/// object; the overload with an executor runs that client on executor instead (the daemon's
/// io_context), which must then outlive every pending check.
std::shared_ptr<const Authenticator> make_authenticator(const agent::AuthConfig& config);
std::shared_ptr<const Authenticator> make_authenticator(const agent::AuthConfig& config,
                                                        boost::asio::any_io_executor executor);

}  // namespace vipportd::http
