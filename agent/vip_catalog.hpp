#pragma once
// VipCatalog: every VIP the daemon knows, with where it came from, merged into the VipRegistry
// the router resolves uuids with.
//
// Origins, in order of precedence:
//   config    [[vip]] tables of the main configuration file
//   vips_dir  drop-in files (a uuid the main file has is skipped there, as VipsDir::merged does)
//   api       registrations (PUT /vipportd/v1/vips/{uuid}), persisted by VipStore
// Conflicts are reported, never merged silently:
//   - registering a uuid that config or vips_dir defines is refused (Outcome::conflict, 409);
//   - a configuration change (reload, drop-in edit) that defines a uuid already registered
//     through the API: the file wins, because files are what the operator deploys and the API
//     cannot override them (the same rule as the 409). The registration is kept in the store,
//     inactive, listed with the conflict, and active again once the file drops the uuid;
//     set_static() returns a warning naming both.
// Deleting through the API removes registrations only: a uuid that only a file defines is a
// conflict (409), one that nothing defines is not found (404).
//
// Registrations are written on the catalog's own thread (fsync can take a while on a router's
// flash; HTTP threads must never wait for it), one at a time, in arrival order. Callbacks run on
// that thread. Everything else is thread-safe and non-blocking.

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "agent/config.hpp"
#include "agent/vip_registry.hpp"
#include "agent/vip_store.hpp"

namespace vipportd::agent {

class VipsDir;

enum class VipOrigin : std::uint8_t { config, vips_dir, api };
/// "config", "vips_dir", "api".
std::string_view to_string(VipOrigin o);

/// A VIP from a file: the main configuration or a vips_dir drop-in.
struct StaticVip {
    VipEntry entry;
    VipOrigin origin = VipOrigin::config;
    std::string source;  // the file that defines it
};

/// The main file's VIPs (source: config_file, or "built-in default" when empty), then the
/// drop-ins of dir in file order. A drop-in uuid already defined is skipped with a message in
/// *conflicts (the same rule and wording as VipsDir::merged).
std::vector<StaticVip> static_vips(const std::vector<VipEntry>& config_vips,
                                   const std::filesystem::path& config_file,
                                   const VipsDir* dir,
                                   std::vector<std::string>* conflicts);

/// One VIP as the listing shows it.
struct CatalogVip {
    VipEntry entry;
    VipOrigin origin = VipOrigin::config;
    std::string source;    // file path (config, vips_dir, the registry file for api)
    bool active = true;    // false: a registration shadowed by a file's VIP of the same uuid
    std::string conflict;  // why it is inactive; "" when active
};

class VipCatalog {
  public:
    /// store: the registrations, already load()ed (a broken store is listed as such and refuses
    /// writes); null when registration is disabled (state_dir = "").
    explicit VipCatalog(std::unique_ptr<VipStore> store);
    ~VipCatalog();  // shutdown()
    VipCatalog(const VipCatalog&) = delete;
    VipCatalog& operator=(const VipCatalog&) = delete;

    /// Replaces the VIPs of the files. Returns one warning per registration that a file now
    /// shadows (naming the uuid, the file and the registry file), for the log.
    std::vector<std::string> set_static(std::vector<StaticVip> vips);

    /// What the router resolves with: the files' VIPs plus the active registrations.
    [[nodiscard]] std::shared_ptr<const VipRegistry> registry() const;
    /// Every VIP, sorted by uuid; an inactive registration follows the file's VIP of its uuid.
    [[nodiscard]] std::vector<CatalogVip> list() const;
    /// Why registration is unavailable (disabled, or the registry file is invalid), or nullopt.
    [[nodiscard]] std::optional<std::string> store_problem() const;
    /// The registry file, or "" when registration is disabled.
    [[nodiscard]] std::string store_file() const;
    /// Reads the registry file again if it was invalid (SIGHUP). Returns the problem that
    /// remains, or nullopt.
    std::optional<std::string> reload_store();

    struct Outcome {
        enum class Kind {
            created,      // 201
            replaced,     // 200 (ip or netns changed)
            unchanged,    // 200 (the same registration again)
            removed,      // 204
            not_found,    // 404: nothing defines the uuid
            conflict,     // 409: a file defines it, or the registration limit is reached
            unavailable,  // 503: registration disabled or the registry file is invalid
            failed,       // 500: the file could not be written (nothing changed)
        };
        Kind kind = Kind::failed;
        std::string message;            // for errors: what happened, precisely
        std::optional<CatalogVip> vip;  // created/replaced/unchanged: the registration
    };
    using Callback = std::function<void(Outcome)>;
    /// Registers e (valid: the caller checked uuid, ip and netns). cb runs on the catalog's
    /// thread, or at once for answers that need no write.
    void async_put(VipEntry e, Callback cb);
    void async_remove(std::string uuid, Callback cb);

    /// Called (on the catalog's thread) after a registration changed the registry.
    void set_on_change(std::function<void()> f);

    /// Finishes the write in progress, then destroys the queued ones without calling them (for
    /// an orderly exit while the executor their callbacks post to still exists).
    void shutdown();

  private:
    void run();
    void post(std::function<void()> job);
    void rebuild();                                                                 // mutex_ held
    [[nodiscard]] std::optional<StaticVip> static_of(std::string_view uuid) const;  // held

    std::unique_ptr<VipStore> store_;
    mutable std::mutex mutex_;
    std::vector<StaticVip> statics_;
    std::shared_ptr<const VipRegistry> registry_ = std::make_shared<const VipRegistry>();
    std::function<void()> on_change_;

    std::mutex queue_mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> queue_;
    bool stopping_ = false;
    std::thread worker_;
};

}  // namespace vipportd::agent
