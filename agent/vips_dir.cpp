#include "agent/vips_dir.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <system_error>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <sys/inotify.h>

#include "agent/logging.hpp"

namespace vipportd::agent {

namespace {

std::string errno_text(int e) { return std::error_code(e, std::generic_category()).message(); }

// Every event that can change which files exist or what they hold (inotify(7)). IN_MODIFY is left
// out on purpose: a writer's IN_CLOSE_WRITE follows, and reacting to each write() would parse
// half-written files. IN_ATTRIB covers chmod and touch.
constexpr std::uint32_t kEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                  IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF |
                                  IN_ONLYDIR;

}  // namespace

bool is_vips_dropin_name(std::string_view name) {
    constexpr std::string_view suffix = ".toml";
    return name.size() > suffix.size() && name.front() != '.' && name.ends_with(suffix);
}

VipsDir::Scan VipsDir::rescan() {
    Scan scan;
    std::set<std::string> present;
    std::error_code ec;
    std::filesystem::directory_iterator it(dir_, ec);
    if (ec) {
        scan.errors.push_back(dir_.string() + ": cannot read directory: " + ec.message());
    } else {
        for (const auto& entry : it) {
            const std::string name = entry.path().filename().string();
            std::error_code type_ec;
            // is_regular_file follows symlinks (a config tool may link files in).
            if (!is_vips_dropin_name(name) || !entry.is_regular_file(type_ec)) {
                continue;
            }
            present.insert(name);
        }
    }
    const auto before = merged({}, nullptr);
    for (auto f = files_.begin(); f != files_.end();) {
        f = present.contains(f->first) ? std::next(f) : files_.erase(f);
    }
    for (const auto& name : present) {
        try {
            files_[name] = load_vips_file(dir_ / name);
        } catch (const ConfigError& e) {
            // The message already names the file, line and key; the last good entries stay.
            scan.errors.push_back(e.what());
        }
    }
    const auto after = merged({}, nullptr);
    scan.changed =
        before.size() != after.size() || !std::equal(before.begin(), before.end(), after.begin(),
                                                     [](const VipEntry& a, const VipEntry& b) {
                                                         return a.uuid == b.uuid && a.ip == b.ip;
                                                     });
    return scan;
}

std::vector<VipEntry> VipsDir::merged(const std::vector<VipEntry>& base,
                                      std::vector<std::string>* conflicts) const {
    std::vector<VipEntry> out = base;
    std::map<std::string, std::string> origin;  // uuid -> where it was defined
    for (const auto& v : base) {
        origin.emplace(v.uuid, "the main configuration");
    }
    for (const auto& [name, entries] : files_) {
        for (const auto& v : entries) {
            auto [it, inserted] = origin.emplace(v.uuid, (dir_ / name).string());
            if (!inserted) {
                if (conflicts != nullptr) {
                    conflicts->push_back((dir_ / name).string() + ": uuid \"" + log_escape(v.uuid) +
                                         "\" already defined in " + it->second +
                                         "; this entry is ignored");
                }
                continue;
            }
            out.push_back(v);
        }
    }
    return out;
}

VipsDirWatcher::VipsDirWatcher(boost::asio::any_io_executor executor,
                               std::filesystem::path dir,
                               std::function<void()> on_change,
                               std::chrono::milliseconds debounce,
                               std::chrono::milliseconds retry)
    : executor_(executor),
      dir_(std::move(dir)),
      on_change_(std::move(on_change)),
      debounce_(debounce),
      retry_(retry),
      inotify_(executor),
      debounce_timer_(executor),
      retry_timer_(executor) {}

VipsDirWatcher::~VipsDirWatcher() { stop(); }

bool VipsDirWatcher::start() {
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        spdlog::error(
            "vips_dir {}: inotify_init1: {}; drop-in files are read only at start and "
            "on reload",
            dir_.string(), errno_text(errno));
        return false;
    }
    inotify_.assign(fd);
    // One inotify event is a struct plus a name of at most NAME_MAX bytes (inotify(7)); 64 of them
    // per read is plenty since events are only counted.
    buffer_.resize(64 * (sizeof(inotify_event) + 256));
    try_watch();
    read_events();
    return true;
}

void VipsDirWatcher::stop() {
    stopped_ = true;
    boost::system::error_code ignored;
    debounce_timer_.cancel();
    retry_timer_.cancel();
    inotify_.close(ignored);
}

void VipsDirWatcher::try_watch() {
    if (stopped_) {
        return;
    }
    watch_ = ::inotify_add_watch(inotify_.native_handle(), dir_.c_str(), kEvents);
    if (watch_ < 0) {
        if (!missing_logged_) {
            spdlog::warn("vips_dir {}: cannot watch: {}; retrying every {} ms", dir_.string(),
                         errno_text(errno), retry_.count());
            missing_logged_ = true;
        }
        schedule_retry();
        return;
    }
    if (missing_logged_) {
        spdlog::info("vips_dir {}: watching again", dir_.string());
        missing_logged_ = false;
        schedule_change();  // it may have come back with files in it
    }
}

void VipsDirWatcher::schedule_retry() {
    retry_timer_.expires_after(retry_);
    retry_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec && !stopped_) {
            try_watch();
        }
    });
}

void VipsDirWatcher::schedule_change() {
    // Re-arming cancels the pending wait: the rescan runs once, debounce_ after the last event.
    debounce_timer_.expires_after(debounce_);
    debounce_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec && !stopped_) {
            on_change_();
        }
    });
}

void VipsDirWatcher::read_events() {
    inotify_.async_read_some(
        boost::asio::buffer(buffer_), [this](const boost::system::error_code& ec, std::size_t n) {
            if (ec || stopped_) {
                if (ec && ec != boost::asio::error::operation_aborted) {
                    spdlog::error("vips_dir {}: reading inotify events: {}", dir_.string(),
                                  ec.message());
                }
                return;
            }
            bool relevant = false;
            bool lost_dir = false;
            for (std::size_t off = 0; off + sizeof(inotify_event) <= n;) {
                inotify_event ev{};
                std::memcpy(&ev, buffer_.data() + off, sizeof ev);
                const std::string_view name =
                    ev.len > 0 ? std::string_view(buffer_.data() + off + sizeof ev) : "";
                off += sizeof ev + ev.len;
                if ((ev.mask & IN_Q_OVERFLOW) != 0) {
                    relevant = true;  // events were lost: a full rescan covers whatever they were
                } else if (ev.wd != watch_) {
                    continue;  // a watch dropped earlier (its final IN_IGNORED)
                } else if ((ev.mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) != 0) {
                    lost_dir = true;
                } else if (is_vips_dropin_name(name)) {
                    relevant = true;
                }
            }
            if (lost_dir && watch_ >= 0) {
                // IN_MOVE_SELF leaves the watch on the moved directory: drop it and watch the
                // path again, whatever is there now.
                (void)::inotify_rm_watch(inotify_.native_handle(), watch_);
                watch_ = -1;
                spdlog::warn("vips_dir {}: directory removed or renamed", dir_.string());
                missing_logged_ = true;
                relevant = true;
                try_watch();
            }
            if (relevant) {
                schedule_change();
            }
            read_events();
        });
}

}  // namespace vipportd::agent
