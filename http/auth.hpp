#pragma once
// Who may call the API. The router hands the OAuth token of every request to an Authenticator;
// a rejected token answers ZStack's ID.1001 (zstack-api.md §5.2).

#include <filesystem>
#include <memory>
#include <string_view>
#include <vector>

#include "agent/config.hpp"
#include "http/sha256.hpp"

namespace vipportd::http {

class Authenticator {
  public:
    virtual ~Authenticator() = default;
    /// True when session (the token after "OAuth", trimmed) may use the API. Thread-safe.
    [[nodiscard]] virtual bool accept(std::string_view session) const = 0;
};

/// auth mode "none": every token (even an empty one) is accepted. Config validation restricts
/// this mode to loopback listeners.
class AcceptAll final : public Authenticator {
  public:
    [[nodiscard]] bool accept(std::string_view /*session*/) const override { return true; }
};

/// auth mode "tokens": a fixed set of static tokens read from a file (operations.md §5.2).
/// Only SHA-256 digests are kept; accept() hashes the candidate and compares it with every
/// digest, with no early exit, so timing reveals neither which token matched nor how many bytes.
class TokenFile final : public Authenticator {
  public:
    /// Reads path: one token per line, surrounding whitespace trimmed, blank lines and lines
    /// starting with '#' (after trimming) ignored. Throws std::runtime_error naming the path when
    /// the file cannot be opened or read, is not a regular file, grants any permission to group or
    /// others (mode & 077), or holds no token.
    static TokenFile load(const std::filesystem::path& path);
    /// The same parsing rules on text already in memory (origin is used only in messages).
    static TokenFile parse(std::string_view text, const std::filesystem::path& origin);

    [[nodiscard]] bool accept(std::string_view session) const override;
    [[nodiscard]] std::size_t size() const { return digests_.size(); }

  private:
    explicit TokenFile(std::vector<Sha256Digest> digests) : digests_(std::move(digests)) {}
    std::vector<Sha256Digest> digests_;
};

/// The authenticator an [auth] section asks for: AcceptAll for mode none, TokenFile::load for
/// mode tokens (which may throw std::runtime_error as described there).
std::shared_ptr<const Authenticator> make_authenticator(const agent::AuthConfig& config);

}  // namespace vipportd::http
