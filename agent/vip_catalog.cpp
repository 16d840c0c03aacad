#include "agent/vip_catalog.hpp"

#include <algorithm>
#include <map>
#include <utility>

#include "agent/logging.hpp"
#include "agent/vips_dir.hpp"

namespace vipportd::agent {

std::string_view to_string(VipOrigin o) {
    switch (o) {
        case VipOrigin::config:
            return "config";
        case VipOrigin::vips_dir:
            return "vips_dir";
        case VipOrigin::api:
            return "api";
    }
    return "config";
}

std::vector<StaticVip> static_vips(const std::vector<VipEntry>& config_vips,
                                   const std::filesystem::path& config_file,
                                   const VipsDir* dir,
                                   std::vector<std::string>* conflicts) {
    std::vector<StaticVip> out;
    std::map<std::string, std::string> seen;  // uuid -> where it was defined
    const std::string main_file =
        config_file.empty() ? std::string("built-in default") : config_file.string();
    for (const auto& v : config_vips) {
        seen.emplace(v.uuid, "the main configuration");
        out.push_back({v, VipOrigin::config, main_file});
    }
    if (dir == nullptr) {
        return out;
    }
    for (const auto& [name, entries] : dir->files()) {
        const std::string path = (dir->dir() / name).string();
        for (const auto& v : entries) {
            auto [it, inserted] = seen.emplace(v.uuid, path);
            if (!inserted) {
                if (conflicts != nullptr) {
                    conflicts->push_back(path + ": uuid \"" + log_escape(v.uuid) +
                                         "\" already defined in " + it->second +
                                         "; this entry is ignored");
                }
                continue;
            }
            out.push_back({v, VipOrigin::vips_dir, path});
        }
    }
    return out;
}

VipCatalog::VipCatalog(std::unique_ptr<VipStore> store)
    : store_(std::move(store)), worker_([this] { run(); }) {
    std::lock_guard lock(mutex_);
    rebuild();
}

VipCatalog::~VipCatalog() { shutdown(); }

void VipCatalog::shutdown() {
    std::deque<std::function<void()>> dropped;
    {
        std::lock_guard lock(queue_mutex_);
        stopping_ = true;
        dropped.swap(queue_);
    }
    wake_.notify_all();
    if (worker_.joinable() && worker_.get_id() != std::this_thread::get_id()) {
        worker_.join();
    }
    dropped.clear();  // here, on the calling thread, without running them
}

void VipCatalog::run() {
    std::unique_lock lock(queue_mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) {
            return;
        }
        auto job = std::move(queue_.front());
        queue_.pop_front();
        lock.unlock();
        job();
        job = nullptr;  // its callback's captures go on this thread, before the next job
        lock.lock();
    }
}

void VipCatalog::post(std::function<void()> job) {
    {
        std::lock_guard lock(queue_mutex_);
        if (stopping_) {
            return;  // shutting down: the job (and its callback) is destroyed unanswered
        }
        queue_.push_back(std::move(job));
    }
    wake_.notify_one();
}

void VipCatalog::set_on_change(std::function<void()> f) {
    std::lock_guard lock(mutex_);
    on_change_ = std::move(f);
}

std::optional<StaticVip> VipCatalog::static_of(std::string_view uuid) const {
    for (const auto& s : statics_) {
        if (s.entry.uuid == uuid) {
            return s;
        }
    }
    return std::nullopt;
}

void VipCatalog::rebuild() {
    std::vector<VipEntry> entries;
    entries.reserve(statics_.size());
    for (const auto& s : statics_) {
        entries.push_back(s.entry);
    }
    if (store_) {
        for (auto& e : store_->entries()) {
            if (!static_of(e.uuid)) {
                entries.push_back(std::move(e));
            }
        }
    }
    registry_ = std::make_shared<const VipRegistry>(entries);
}

std::vector<std::string> VipCatalog::set_static(std::vector<StaticVip> vips) {
    std::lock_guard lock(mutex_);
    statics_ = std::move(vips);
    std::vector<std::string> warnings;
    if (store_) {
        for (const auto& e : store_->entries()) {
            if (const auto s = static_of(e.uuid)) {
                warnings.push_back(
                    "uuid \"" + log_escape(e.uuid) + "\" is registered through the API (" +
                    e.ip.to_string() + " in " + store_->file().string() + ") and defined in " +
                    s->source + " (" + s->entry.ip.to_string() + "); the file's VIP is used, " +
                    "the registration is kept but inactive until the file drops the uuid or it " +
                    "is deleted through the API");
            }
        }
    }
    rebuild();
    return warnings;
}

std::shared_ptr<const VipRegistry> VipCatalog::registry() const {
    std::lock_guard lock(mutex_);
    return registry_;
}

std::vector<CatalogVip> VipCatalog::list() const {
    std::lock_guard lock(mutex_);
    std::vector<CatalogVip> out;
    for (const auto& s : statics_) {
        out.push_back({s.entry, s.origin, s.source, true, {}});
    }
    if (store_) {
        const std::string file = store_->file().string();
        for (const auto& e : store_->entries()) {
            CatalogVip v{e, VipOrigin::api, file, true, {}};
            if (const auto s = static_of(e.uuid)) {
                v.active = false;
                v.conflict = "uuid also defined in " + s->source + " (" +
                             std::string(to_string(s->origin)) + ", " + s->entry.ip.to_string() +
                             "), which takes precedence";
            }
            out.push_back(std::move(v));
        }
    }
    // Statics come first, so a stable sort keeps a shadowed registration after its file's VIP.
    std::stable_sort(out.begin(), out.end(), [](const CatalogVip& a, const CatalogVip& b) {
        return a.entry.uuid < b.entry.uuid;
    });
    return out;
}

std::optional<std::string> VipCatalog::store_problem() const {
    if (!store_) {
        return std::string("VIP registration is disabled (state_dir = \"\")");
    }
    if (auto b = store_->broken()) {
        return "the registry file is invalid: " + *b + " (fix or remove it, then reload vipportd)";
    }
    return std::nullopt;
}

std::string VipCatalog::store_file() const { return store_ ? store_->file().string() : ""; }

std::optional<std::string> VipCatalog::reload_store() {
    if (!store_ || !store_->broken()) {
        return store_problem();
    }
    (void)store_->load();
    std::lock_guard lock(mutex_);
    rebuild();
    return store_ && store_->broken() ? store_problem() : std::nullopt;
}

void VipCatalog::async_put(VipEntry e, Callback cb) {
    using Kind = Outcome::Kind;
    if (auto problem = store_problem()) {
        cb(Outcome{Kind::unavailable, *problem, std::nullopt});
        return;
    }
    const auto conflict_with = [this](std::string_view uuid) -> std::optional<std::string> {
        std::lock_guard lock(mutex_);
        if (auto s = static_of(uuid)) {
            return "uuid \"" + std::string(uuid) + "\" is defined in " + s->source + " (" +
                   std::string(to_string(s->origin)) + ", " + s->entry.ip.to_string() +
                   "); change it there, not through the API";
        }
        return std::nullopt;
    };
    if (auto c = conflict_with(e.uuid)) {
        cb(Outcome{Kind::conflict, *c, std::nullopt});
        return;
    }
    post([this, e = std::move(e), cb = std::move(cb), conflict_with]() mutable {
        // Checked again: a reload may have added the uuid to a file meanwhile.
        if (auto c = conflict_with(e.uuid)) {
            cb(Outcome{Kind::conflict, *c, std::nullopt});
            return;
        }
        auto r = store_->put(e);
        if (!r) {
            const bool refused = r.error().code == netlink::Errc::unexpected;
            cb(Outcome{
                refused ? (store_->broken() ? Kind::unavailable : Kind::conflict) : Kind::failed,
                netlink::to_string(r.error()), std::nullopt});
            return;
        }
        std::function<void()> notify;
        {
            std::lock_guard lock(mutex_);
            if (*r != VipStore::PutResult::unchanged) {
                rebuild();
                notify = on_change_;
            }
        }
        if (notify) {
            notify();
        }
        const Kind kind = *r == VipStore::PutResult::created    ? Kind::created
                          : *r == VipStore::PutResult::replaced ? Kind::replaced
                                                                : Kind::unchanged;
        cb(Outcome{kind, {}, CatalogVip{e, VipOrigin::api, store_->file().string(), true, {}}});
    });
}

void VipCatalog::async_remove(std::string uuid, Callback cb) {
    using Kind = Outcome::Kind;
    if (auto problem = store_problem()) {
        cb(Outcome{Kind::unavailable, *problem, std::nullopt});
        return;
    }
    post([this, uuid = std::move(uuid), cb = std::move(cb)]() mutable {
        auto r = store_->remove(uuid);
        if (!r) {
            cb(Outcome{store_->broken() ? Kind::unavailable : Kind::failed,
                       netlink::to_string(r.error()), std::nullopt});
            return;
        }
        std::optional<StaticVip> s;
        std::function<void()> notify;
        {
            std::lock_guard lock(mutex_);
            s = static_of(uuid);
            if (*r) {
                rebuild();
                notify = on_change_;
            }
        }
        if (notify) {
            notify();
        }
        if (*r) {
            cb(Outcome{Kind::removed, {}, std::nullopt});
        } else if (s) {
            cb(Outcome{Kind::conflict,
                       "uuid \"" + uuid + "\" is defined in " + s->source + " (" +
                           std::string(to_string(s->origin)) +
                           "), not registered through the API; remove it there",
                       std::nullopt});
        } else {
            cb(Outcome{Kind::not_found, "uuid \"" + uuid + "\" is not registered", std::nullopt});
        }
    });
}

}  // namespace vipportd::agent
