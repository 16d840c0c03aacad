#pragma once
// vips_dir: drop-in *.toml files holding [[vip]] tables, merged after the main file's VIPs and
// watched with inotify so that a config tool can add, change or remove VIPs without a reload.
//
// Editors and config tools rarely write a file in place: vim renames the old file to a backup and
// writes a new one, sed -i and ansible write a temporary file and rename it over the target, some
// tools delete then create. So the watcher never interprets single events: any change in the
// directory (re)arms a short debounce timer, and then the whole directory is read again. Names
// starting with '.' (editor swap and temporary files) and names not ending in ".toml" (backups
// such as "x.toml~", sed's "sedXXXXXX") are ignored.

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "agent/config.hpp"

namespace vipportd::agent {

/// True for the names vips_dir reads ("10-edge.toml"), false for hidden, backup and temporary
/// files.
bool is_vips_dropin_name(std::string_view filename);

/// The contents of a vips_dir, file by file. A file that cannot be read or parsed keeps the
/// entries it had at the last successful read (a half-written or broken file never drops VIPs
/// that were being served); a file that is gone drops its entries.
class VipsDir {
  public:
    explicit VipsDir(std::filesystem::path dir) : dir_(std::move(dir)) {}

    struct Scan {
        std::vector<std::string> errors;  // "FILE:LINE:COL: key ...: ..." per failed file
        bool changed = false;             // the merged entries differ from the previous scan
    };
    /// Reads every drop-in file again. A missing directory counts as empty (with an error).
    Scan rescan();

    /// base (the main file's VIPs) followed by the drop-ins in file-name order. A uuid already
    /// present is skipped with a message in *conflicts ("FILE: uuid "x" already defined").
    [[nodiscard]] std::vector<VipEntry> merged(const std::vector<VipEntry>& base,
                                               std::vector<std::string>* conflicts) const;
    [[nodiscard]] std::size_t file_count() const { return files_.size(); }
    /// The last good entries of each drop-in file, by file name (the order merged() uses).
    [[nodiscard]] const std::map<std::string, std::vector<VipEntry>>& files() const {
        return files_;
    }
    [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

  private:
    std::filesystem::path dir_;
    std::map<std::string, std::vector<VipEntry>> files_;  // file name -> last good entries
};

/// Calls on_change (on executor) at most debounce after the last change inside dir. Missing
/// directories and a directory that is deleted or renamed are retried every retry period, with
/// on_change when the directory (re)appears.
class VipsDirWatcher {
  public:
    VipsDirWatcher(boost::asio::any_io_executor executor,
                   std::filesystem::path dir,
                   std::function<void()> on_change,
                   std::chrono::milliseconds debounce = std::chrono::milliseconds(100),
                   std::chrono::milliseconds retry = std::chrono::seconds(1));
    ~VipsDirWatcher();
    VipsDirWatcher(const VipsDirWatcher&) = delete;
    VipsDirWatcher& operator=(const VipsDirWatcher&) = delete;

    /// Starts watching; false (with the reason logged) when inotify itself is unavailable.
    bool start();
    /// Stops watching; no on_change after it returns (when called on the executor).
    void stop();

  private:
    void try_watch();
    void read_events();
    void schedule_change();
    void schedule_retry();

    boost::asio::any_io_executor executor_;
    std::filesystem::path dir_;
    std::function<void()> on_change_;
    std::chrono::milliseconds debounce_;
    std::chrono::milliseconds retry_;
    boost::asio::posix::stream_descriptor inotify_;
    boost::asio::steady_timer debounce_timer_;
    boost::asio::steady_timer retry_timer_;
    int watch_ = -1;
    bool stopped_ = false;
    bool missing_logged_ = false;
    std::vector<char> buffer_;
};

}  // namespace vipportd::agent
