#pragma once
// VipStore: the VIPs registered through the management API (PUT/DELETE /vipportd/v1/vips),
// persisted in <state_dir>/vips.json so that they survive restarts.
//
// Crash safety: every change writes the whole registry to <state_dir>/.vips.json.tmp, fsyncs
// it, renames it over vips.json (rename(2) replaces atomically) and fsyncs the directory (so the
// rename itself is durable, fsync(2) NOTES). A crash at any point leaves either the old or the
// new file, never a torn one; a leftover temporary file is ignored and overwritten next time.
// The in-memory registry changes only after the rename succeeded, so it always matches the file.
//
// File format (JSON, RFC 8259), one entry per line for people who look at it:
//   {"version":1,"vips":[
//   {"uuid":"3f2c...","ip":"192.0.2.10"},
//   {"uuid":"8e1d...","ip":"2001:db8::10","netns":"blue"}
//   ]}
// "version" is 1; entries are sorted by uuid; "netns" is omitted for the daemon's own namespace.
// Loading is strict: unknown keys, a wrong type, a uuid/ip/netns the [[vip]] rules reject
// (config.hpp vip_*_problem) or a duplicate uuid make the whole file invalid, with an error that
// names the file, the entry and the key (or line and column for a JSON syntax error).
//
// Thread-safe; writers are serialised by one mutex. One process per state directory.

#include <cstddef>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config.hpp"
#include "netlink/error.hpp"

namespace vipportd::agent {

class VipStore {
  public:
    static constexpr std::string_view file_name = "vips.json";
    static constexpr std::string_view temp_name = ".vips.json.tmp";
    static constexpr int format_version = 1;
    /// Registrations beyond this are refused: every change rewrites the whole file, and a
    /// router has hundreds of VIPs, not tens of thousands.
    static constexpr std::size_t max_entries = 10000;
    /// A registry file larger than this is not one (10,000 entries are about 1 MiB).
    static constexpr std::size_t max_file_bytes = std::size_t{16} << 20;

    explicit VipStore(std::filesystem::path dir);

    /// (Re)reads the file. A missing file (or directory) is an empty registry. On error the
    /// store is broken: entries() is empty and put()/remove() are refused until a load()
    /// succeeds, so that a damaged file is never overwritten (it is the only copy).
    /// Errors: Errc::system (cannot read, with errno), Errc::malformed (content).
    netlink::Result<void> load();

    /// Every registered VIP, sorted by uuid.
    [[nodiscard]] std::vector<VipEntry> entries() const;
    /// The error of the last load(), if it failed.
    [[nodiscard]] std::optional<std::string> broken() const;
    [[nodiscard]] std::filesystem::path file() const { return dir_ / file_name; }
    [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

    enum class PutResult { created, replaced, unchanged };
    /// Adds or replaces e (e is valid: the caller checked it). unchanged writes nothing.
    /// Errors: Errc::unexpected when broken or full (max_entries), Errc::system when the file
    /// could not be written (the registry is then unchanged).
    [[nodiscard]] netlink::Result<PutResult> put(const VipEntry& e);
    /// Removes uuid: true, or false when it is not registered (nothing written).
    /// Errors as put().
    [[nodiscard]] netlink::Result<bool> remove(std::string_view uuid);

    /// The file's content for entries (sorted by uuid by the caller or not: it sorts).
    [[nodiscard]] static std::string serialize(std::vector<VipEntry> entries);
    /// Parses and validates file content; file names the file in errors.
    [[nodiscard]] static netlink::Result<std::vector<VipEntry>> parse(
        std::string_view text, const std::filesystem::path& file);

  private:
    [[nodiscard]] netlink::Result<void> write(const std::vector<VipEntry>& entries) const;
    [[nodiscard]] netlink::Result<void> writable() const;  // mutex_ held

    std::filesystem::path dir_;
    mutable std::mutex mutex_;
    std::vector<VipEntry> entries_;  // sorted by uuid
    std::optional<std::string> broken_;
};

}  // namespace vipportd::agent
