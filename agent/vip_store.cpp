#include "agent/vip_store.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <system_error>
#include <unistd.h>

#include <boost/json/parse_options.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/stream_parser.hpp>
#include <boost/json/value.hpp>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include "agent/logging.hpp"

namespace vipportd::agent {

namespace json = boost::json;

namespace {

bool by_uuid(const VipEntry& a, const VipEntry& b) { return a.uuid < b.uuid; }

/// A JSON string literal of s (RFC 8259 §7), via Boost.JSON's own escaping.
std::string json_text(std::string_view s) { return json::serialize(json::value(json::string(s))); }

/// "line L, column C" of byte offset at in text (1-based).
std::string line_col(std::string_view text, std::size_t at) {
    at = std::min(at, text.size());
    std::size_t line = 1;
    std::size_t col = 1;
    for (std::size_t i = 0; i < at; ++i) {
        if (text[i] == '\n') {
            ++line;
            col = 1;
        } else {
            ++col;
        }
    }
    return "line " + std::to_string(line) + ", column " + std::to_string(col);
}

/// Writes all of data to fd (short writes and EINTR retried).
netlink::Result<void> write_all(int fd, std::string_view data, const std::string& what) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return netlink::Error::sys(errno, what + ": write");
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
}

class Fd {
  public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    [[nodiscard]] int get() const { return fd_; }
    /// close(2) with its error (NFS and some file systems report write errors only here).
    int close() {
        const int rc = ::close(fd_);
        fd_ = -1;
        return rc;
    }

  private:
    int fd_;
};

}  // namespace

VipStore::VipStore(std::filesystem::path dir) : dir_(std::move(dir)) {}

netlink::Result<void> VipStore::load() {
    const auto path = file();
    std::string text;
    auto fail = [&](netlink::Error e) -> netlink::Result<void> {
        std::lock_guard lock(mutex_);
        entries_.clear();
        broken_ = netlink::to_string(e);
        return e;
    };
    {
        const int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (raw < 0) {
            if (errno == ENOENT) {
                std::lock_guard lock(mutex_);
                entries_.clear();
                broken_.reset();
                return {};  // nothing registered yet
            }
            return fail(netlink::Error::sys(errno, path.string() + ": open"));
        }
        Fd fd(raw);
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) {
            return fail(netlink::Error::sys(errno, path.string() + ": fstat"));
        }
        if (!S_ISREG(st.st_mode)) {
            return fail(netlink::Error::of(netlink::Errc::malformed,
                                           path.string() + ": not a regular file"));
        }
        if (static_cast<std::size_t>(st.st_size) > max_file_bytes) {
            return fail(netlink::Error::of(netlink::Errc::malformed,
                                           path.string() + ": " + std::to_string(st.st_size) +
                                               " bytes, more than a registry file can be (" +
                                               std::to_string(max_file_bytes) + ")"));
        }
        text.resize(static_cast<std::size_t>(st.st_size));
        std::size_t got = 0;
        while (got < text.size()) {
            const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                return fail(netlink::Error::sys(errno, path.string() + ": read"));
            }
            if (n == 0) {
                break;  // shrank meanwhile: parse what is there
            }
            got += static_cast<std::size_t>(n);
        }
        text.resize(got);
    }
    auto parsed = parse(text, path);
    if (!parsed) {
        return fail(parsed.error());
    }
    std::lock_guard lock(mutex_);
    entries_ = std::move(*parsed);
    broken_.reset();
    return {};
}

std::vector<VipEntry> VipStore::entries() const {
    std::lock_guard lock(mutex_);
    return entries_;
}

std::optional<std::string> VipStore::broken() const {
    std::lock_guard lock(mutex_);
    return broken_;
}

netlink::Result<void> VipStore::writable() const {
    if (broken_) {
        return netlink::Error::of(netlink::Errc::unexpected,
                                  "the registry file is invalid, so it is not overwritten: " +
                                      *broken_ + " (fix or remove it, then reload vipportd)");
    }
    return {};
}

netlink::Result<VipStore::PutResult> VipStore::put(const VipEntry& e) {
    std::lock_guard lock(mutex_);
    if (auto w = writable(); !w) {
        return w.error();
    }
    auto next = entries_;
    const auto it = std::lower_bound(next.begin(), next.end(), e, by_uuid);
    PutResult result = PutResult::created;
    if (it != next.end() && it->uuid == e.uuid) {
        if (it->ip == e.ip && it->netns == e.netns) {
            return PutResult::unchanged;
        }
        *it = e;
        result = PutResult::replaced;
    } else {
        if (next.size() >= max_entries) {
            return netlink::Error::of(
                netlink::Errc::unexpected,
                "registration limit reached (" + std::to_string(max_entries) + " VIPs)");
        }
        next.insert(it, e);
    }
    if (auto w = write(next); !w) {
        return w.error();
    }
    entries_ = std::move(next);
    return result;
}

netlink::Result<bool> VipStore::remove(std::string_view uuid) {
    std::lock_guard lock(mutex_);
    if (auto w = writable(); !w) {
        return w.error();
    }
    auto next = entries_;
    const auto it =
        std::find_if(next.begin(), next.end(), [&](const VipEntry& v) { return v.uuid == uuid; });
    if (it == next.end()) {
        return false;
    }
    next.erase(it);
    if (auto w = write(next); !w) {
        return w.error();
    }
    entries_ = std::move(next);
    return true;
}

std::string VipStore::serialize(std::vector<VipEntry> entries) {
    std::sort(entries.begin(), entries.end(), by_uuid);
    std::string out = R"({"version":)" + std::to_string(format_version) + R"(,"vips":[)";
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const auto& e = entries[i];
        out += "\n{\"uuid\":" + json_text(e.uuid) + ",\"ip\":" + json_text(e.ip.to_string());
        if (!e.netns.empty()) {
            out += ",\"netns\":" + json_text(e.netns);
        }
        out += i + 1 < entries.size() ? "}," : "}";
    }
    out += "\n]}\n";
    return out;
}

netlink::Result<std::vector<VipEntry>> VipStore::parse(std::string_view text,
                                                       const std::filesystem::path& file) {
    const std::string name = file.string();
    const auto bad = [&](const std::string& what) {
        return netlink::Error::of(netlink::Errc::malformed, name + ": " + what);
    };
    json::stream_parser p;
    boost::system::error_code ec;
    const std::size_t used = p.write_some(text.data(), text.size(), ec);
    // write_some stops after one complete value (and the whitespace after it); finish() only
    // when the value is incomplete, to get its error.
    if (!ec && !p.done()) {
        p.finish(ec);
    }
    if (ec) {
        return bad("not valid JSON at " + line_col(text, used) + " (" + ec.message() + ")");
    }
    if (used != text.size()) {
        return bad("unexpected text after the JSON value at " + line_col(text, used));
    }
    const json::value root = p.release();
    const auto* obj = root.if_object();
    if (obj == nullptr) {
        return bad(R"(expected a JSON object {"version":1,"vips":[...]})");
    }
    for (const auto& kv : *obj) {
        if (kv.key() != "version" && kv.key() != "vips") {
            return bad("unknown key " + json_text(kv.key()) + " (expected version and vips)");
        }
    }
    const auto* version = obj->if_contains("version");
    if (version == nullptr) {
        return bad("version: missing (expected 1)");
    }
    if (!version->is_int64() || version->as_int64() != format_version) {
        return bad("version: expected 1, got " + json::serialize(*version) +
                   " (a file written by a newer vipportd?)");
    }
    const auto* vips = obj->if_contains("vips");
    if (vips == nullptr || !vips->is_array()) {
        return bad("vips: expected an array");
    }
    std::vector<VipEntry> out;
    out.reserve(vips->as_array().size());
    std::size_t index = 0;
    for (const auto& item : vips->as_array()) {
        const std::string at = "vips[" + std::to_string(index++) + "]";
        const auto* e = item.if_object();
        if (e == nullptr) {
            return bad(at + ": expected an object with uuid and ip");
        }
        VipEntry v;
        bool has_uuid = false;
        bool has_ip = false;
        for (const auto& kv : *e) {
            const std::string key = at + "." + std::string(kv.key());
            const auto* s = kv.value().if_string();
            if (kv.key() != "uuid" && kv.key() != "ip" && kv.key() != "netns") {
                return bad(at + ": unknown key " + json_text(kv.key()) +
                           " (expected uuid, ip, netns)");
            }
            if (s == nullptr) {
                return bad(key + ": expected a string, got " + json::serialize(kv.value()));
            }
            const std::string_view text_value(s->data(), s->size());
            if (kv.key() == "uuid") {
                if (auto why = vip_uuid_problem(text_value)) {
                    return bad(key + ": " + *why);
                }
                v.uuid = std::string(text_value);
                has_uuid = true;
            } else if (kv.key() == "ip") {
                auto ip = netlink::InetAddress::parse(text_value);
                if (!ip) {
                    return bad(key + ": expected an IPv4 or IPv6 address, got " +
                               json_text(text_value));
                }
                if (auto why = vip_ip_problem(*ip)) {
                    return bad(key + ": " + *why);
                }
                v.ip = *ip;
                has_ip = true;
            } else {
                if (auto why = vip_netns_problem(text_value)) {
                    return bad(key + ": " + *why);
                }
                v.netns = std::string(text_value);
            }
        }
        if (!has_uuid) {
            return bad(at + ".uuid: missing");
        }
        if (!has_ip) {
            return bad(at + ".ip: missing");
        }
        out.push_back(std::move(v));
    }
    std::stable_sort(out.begin(), out.end(), by_uuid);
    for (std::size_t i = 1; i < out.size(); ++i) {
        if (out[i].uuid == out[i - 1].uuid) {
            return bad("duplicate uuid " + json_text(out[i].uuid));
        }
    }
    return out;
}

netlink::Result<void> VipStore::write(const std::vector<VipEntry>& entries) const {
    const std::string content = serialize(entries);
    const std::string dir = dir_.string();
    // The state directory: systemd creates it (StateDirectory=vipportd); without systemd the
    // daemon does, one level only (a missing parent is an operator error worth reporting).
    if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) {
        return netlink::Error::sys(errno, "state directory " + dir + ": mkdir");
    }
    const auto tmp = (dir_ / temp_name).string();
    const auto target = file().string();
    {
        const int raw =
            ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (raw < 0) {
            return netlink::Error::sys(errno, tmp + ": open");
        }
        Fd fd(raw);
        auto fail = [&](netlink::Error e) -> netlink::Result<void> {
            (void)::unlink(tmp.c_str());
            return e;
        };
        if (auto w = write_all(fd.get(), content, tmp); !w) {
            return fail(w.error());
        }
        // The data must be on disk before the rename makes it the registry: otherwise a crash
        // could leave a renamed but empty file (the ext4 "zero-length file" problem).
        if (::fsync(fd.get()) != 0) {
            return fail(netlink::Error::sys(errno, tmp + ": fsync"));
        }
        if (fd.close() != 0) {
            return fail(netlink::Error::sys(errno, tmp + ": close"));
        }
        if (::rename(tmp.c_str(), target.c_str()) != 0) {
            return fail(netlink::Error::sys(errno, "rename " + tmp + " to " + target));
        }
    }
    // The rename is done and visible; the directory fsync makes it survive a power loss
    // (fsync(2): "an explicit fsync() on a file descriptor for the directory is also needed").
    // Its failure does not undo the change, so it is logged rather than reported.
    const int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0 || ::fsync(d) != 0) {
        spdlog::warn("state directory {}: fsync after rename failed: {}", log_escape(dir),
                     std::error_code(errno, std::generic_category()).message());
    }
    if (d >= 0) {
        ::close(d);
    }
    return {};
}

}  // namespace vipportd::agent
