#include "netlink/ipt_legacy.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include "netlink/fixture.hpp"
// The uapi headers after glibc's <netinet/in.h>: linux/libc-compat.h then skips its duplicates.
#include <linux/netfilter_ipv4/ip_tables.h>
#include <linux/netfilter_ipv6/ip6_tables.h>

namespace vipportd::netlink::ipt {

namespace {

using Bytes = std::span<const std::uint8_t>;

// ---- Layouts ---------------------------------------------------------------------------------
// Byte offsets of the fields we read, per family; static_asserts tie them to the uapi structs
// (linux/netfilter_ipv4/ip_tables.h, linux/netfilter_ipv6/ip6_tables.h). All reads use memcpy, so
// a blob need not be aligned.
//
//   ipt_entry (112):  ipt_ip { src 0, dst 4, smsk 8, dmsk 12, iniface[16] 16, outiface[16] 32,
//                     iniface_mask 48, outiface_mask 64, u16 proto 80, u8 flags 82,
//                     u8 invflags 83 }, nfcache 84, u16 target_offset 88, u16 next_offset 90,
//                     comefrom 92, xt_counters 96 (16), elems 112
//   ip6t_entry (168): ip6t_ip6 { src 0, dst 16, smsk 32, dmsk 48, iniface 64, outiface 80,
//                     iniface_mask 96, outiface_mask 112, u16 proto 128, u8 tos 130, u8 flags 131,
//                     u8 invflags 132 }, nfcache 136, target_offset 140, next_offset 142,
//                     comefrom 144, xt_counters 152, elems 168
struct Layout {
    std::size_t entry_size;
    std::size_t src, dst, smsk, dmsk, iniface, outiface, proto, flags, invflags;
    std::size_t target_offset, next_offset, counters;
    std::uint8_t flag_goto;
    std::uint8_t flag_proto;  // 0: IPv4 has none (proto 0 means any)
    std::uint8_t flag_other;  // IPT_F_FRAG / IP6T_F_TOS
};

constexpr Layout kV4{112, 0, 4, 8, 12, 16, 32, 80, 82, 83, 88, 90, 96, IPT_F_GOTO, 0, IPT_F_FRAG};
constexpr Layout kV6{168, 0,   16,  32,  48,  64,          80,           128,
                     131, 132, 140, 142, 152, IP6T_F_GOTO, IP6T_F_PROTO, IP6T_F_TOS};

static_assert(sizeof(ipt_entry) == 112 && sizeof(ip6t_entry) == 168);
static_assert(offsetof(ipt_ip, dst) == 4 && offsetof(ipt_ip, dmsk) == 12 &&
              offsetof(ipt_ip, iniface) == 16 && offsetof(ipt_ip, outiface) == 32 &&
              offsetof(ipt_ip, proto) == 80 && offsetof(ipt_ip, flags) == 82 &&
              offsetof(ipt_ip, invflags) == 83);
static_assert(offsetof(ipt_entry, target_offset) == 88 && offsetof(ipt_entry, next_offset) == 90 &&
              offsetof(ipt_entry, counters) == 96);
static_assert(offsetof(ip6t_ip6, dst) == 16 && offsetof(ip6t_ip6, dmsk) == 48 &&
              offsetof(ip6t_ip6, iniface) == 64 && offsetof(ip6t_ip6, outiface) == 80 &&
              offsetof(ip6t_ip6, proto) == 128 && offsetof(ip6t_ip6, flags) == 131 &&
              offsetof(ip6t_ip6, invflags) == 132);
static_assert(offsetof(ip6t_entry, target_offset) == 140 &&
              offsetof(ip6t_entry, next_offset) == 142 && offsetof(ip6t_entry, counters) == 152);

// xt_entry_match / xt_entry_target (linux/netfilter/x_tables.h): u16 size, char name[29],
// u8 revision, then the payload; 32 bytes of header.
constexpr std::size_t kXtHeaderSize = 32;
constexpr std::size_t kXtNameLen = XT_EXTENSION_MAXNAMELEN;  // 29
constexpr std::size_t kXtRevisionOff = 31;
static_assert(sizeof(xt_entry_match) == kXtHeaderSize && sizeof(xt_entry_target) == kXtHeaderSize);
// xt_standard_target: header + int verdict; xt_error_target: header + char errorname[30].
constexpr std::size_t kVerdictSize = sizeof(int);
constexpr std::size_t kErrorNameLen = XT_FUNCTION_MAXNAMELEN;  // 30

constexpr std::uint8_t kInvViaIn = IPT_INV_VIA_IN;  // 0x01, same in ip6_tables.h
constexpr std::uint8_t kInvViaOut = IPT_INV_VIA_OUT;
constexpr std::uint8_t kInvSrcIp = IPT_INV_SRCIP;  // 0x08
constexpr std::uint8_t kInvDstIp = IPT_INV_DSTIP;  // 0x10
constexpr std::uint8_t kInvFrag = IPT_INV_FRAG;    // 0x20
constexpr std::uint8_t kInvProto = XT_INV_PROTO;   // 0x40
static_assert(IP6T_INV_DSTIP == kInvDstIp && IP6T_INV_SRCIP == kInvSrcIp &&
              IP6T_INV_PROTO == kInvProto && IP6T_INV_VIA_IN == kInvViaIn &&
              IP6T_INV_VIA_OUT == kInvViaOut);

// ipt_getinfo: name[32] 0, valid_hooks 32, hook_entry[5] 36, underflow[5] 56, num_entries 76,
// size 80.
static_assert(sizeof(ipt_getinfo) == kGetInfoSize && sizeof(ip6t_getinfo) == kGetInfoSize);
static_assert(offsetof(ipt_getinfo, hook_entry) == 36 && offsetof(ipt_getinfo, underflow) == 56 &&
              offsetof(ipt_getinfo, num_entries) == 76 && offsetof(ipt_getinfo, size) == 80);
static_assert(NF_INET_NUMHOOKS == kNumHooks);
// ipt_get_entries: name[32], u32 size, then the entries at 40 (aligned for the u64 counters).
static_assert(sizeof(ipt_get_entries) == 40 && sizeof(ip6t_get_entries) == 40);
constexpr std::size_t kTableNameLen = XT_TABLE_MAXNAMELEN;  // 32, NUL included

const Layout& layout(Family f) { return f == Family::v4 ? kV4 : kV6; }

template <class T>
T load(Bytes b, std::size_t off) {
    T v;
    std::memcpy(&v, b.data() + off, sizeof v);
    return v;
}

std::string bounded_string(Bytes b, std::size_t off, std::size_t max) {
    const auto* p = reinterpret_cast<const char*>(b.data() + off);
    return std::string(p, strnlen(p, max));
}

std::string call_name(Family f, bool info) {
    if (f == Family::v4) {
        return info ? "IPT_SO_GET_INFO" : "IPT_SO_GET_ENTRIES";
    }
    return info ? "IP6T_SO_GET_INFO" : "IP6T_SO_GET_ENTRIES";
}

std::string names_file(Family f) {
    return f == Family::v4 ? "ip_tables_names" : "ip6_tables_names";
}

// ---- Hex for fixtures ------------------------------------------------------------------------

// One whitespace-free hex token appended to out (the fixture module owns hex parsing).
bool append_hex(std::string_view token, std::vector<std::uint8_t>& out) {
    auto bytes = from_hex(token);
    if (!bytes) {
        return false;
    }
    out.insert(out.end(), bytes->begin(), bytes->end());
    return true;
}

// Groups of 4 bytes, 16 groups per line; continuation lines are indented.
std::string hex_lines(Bytes b) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string s;
    for (std::size_t i = 0; i < b.size(); ++i) {
        if (i % 64 == 0) {
            s += "\n   ";
        }
        if (i % 4 == 0) {
            s += ' ';
        }
        s += kDigits[b[i] >> 4];
        s += kDigits[b[i] & 0x0f];
    }
    return s;
}

std::vector<std::string_view> split_ws(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) {
            ++i;
        }
        const std::size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') {
            ++i;
        }
        if (i > start) {
            out.push_back(line.substr(start, i - start));
        }
    }
    return out;
}

std::optional<Family> parse_family(std::string_view s) {
    if (s == "ip") {
        return Family::v4;
    }
    if (s == "ip6") {
        return Family::v6;
    }
    return std::nullopt;
}

}  // namespace

std::string_view hook_chain_name(std::size_t hook) {
    // NF_INET_PRE_ROUTING .. NF_INET_POST_ROUTING (linux/netfilter.h), iptables' builtin names.
    static constexpr std::array<std::string_view, kNumHooks> kNames{
        "PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"};
    return hook < kNumHooks ? kNames[hook] : std::string_view{};
}

std::string_view family_name(Family f) { return f == Family::v4 ? "ip" : "ip6"; }

Result<TableInfo> decode_getinfo(std::span<const std::uint8_t> bytes) {
    if (bytes.size() < kGetInfoSize) {
        return Error::of(Errc::truncated, "ipt_getinfo: " + std::to_string(bytes.size()) +
                                              " bytes, need " + std::to_string(kGetInfoSize));
    }
    TableInfo info;
    info.name = bounded_string(bytes, 0, kTableNameLen);
    info.valid_hooks = load<std::uint32_t>(bytes, 32);
    for (std::size_t h = 0; h < kNumHooks; ++h) {
        info.hook_entry[h] = load<std::uint32_t>(bytes, 36 + 4 * h);
        info.underflow[h] = load<std::uint32_t>(bytes, 56 + 4 * h);
    }
    info.num_entries = load<std::uint32_t>(bytes, 76);
    info.size = load<std::uint32_t>(bytes, 80);
    return info;
}

std::vector<std::uint8_t> encode_getinfo(const TableInfo& info) {
    std::vector<std::uint8_t> b(kGetInfoSize, 0);
    std::memcpy(b.data(), info.name.data(), std::min(info.name.size(), kTableNameLen - 1));
    const auto put = [&](std::size_t off, std::uint32_t v) { std::memcpy(b.data() + off, &v, 4); };
    put(32, info.valid_hooks);
    for (std::size_t h = 0; h < kNumHooks; ++h) {
        put(36 + 4 * h, info.hook_entry[h]);
        put(56 + 4 * h, info.underflow[h]);
    }
    put(76, info.num_entries);
    put(80, info.size);
    return b;
}

// ---- KernelIptSource -------------------------------------------------------------------------

KernelIptSource::KernelIptSource(std::filesystem::path proc_net) : proc_net_(std::move(proc_net)) {
    // kernel.md §3.1: IPT_SO_* are answered on a raw IP socket; needs CAP_NET_RAW to open and
    // CAP_NET_ADMIN for the getsockopt (§6).
    for (auto [sock, af] : {std::pair{&v4_, AF_INET}, std::pair{&v6_, AF_INET6}}) {
        sock->fd = ::socket(af, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
        sock->open_errno = sock->fd < 0 ? errno : 0;
    }
}

KernelIptSource::~KernelIptSource() {
    for (const Sock* s : {&v4_, &v6_}) {
        if (s->fd >= 0) {
            ::close(s->fd);
        }
    }
}

Result<int> KernelIptSource::fd(Family f) const {
    const Sock& s = f == Family::v4 ? v4_ : v6_;
    if (s.fd < 0) {
        return Error::sys(s.open_errno, f == Family::v4
                                            ? "socket(AF_INET, SOCK_RAW, IPPROTO_RAW)"
                                            : "socket(AF_INET6, SOCK_RAW, IPPROTO_RAW)");
    }
    return s.fd;
}

Result<std::vector<std::string>> KernelIptSource::table_names(Family f) {
    const std::filesystem::path file = proc_net_ / names_file(f);
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return std::vector<std::string>{};  // x_tables for this family not loaded
        }
        return Error::sys(errno, "open " + file.string());
    }
    std::string text;
    char buf[4096];
    while (true) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            const int err = errno;
            ::close(fd);
            return Error::sys(err, "read " + file.string());
        }
        if (n == 0) {
            break;
        }
        text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    std::vector<std::string> names;
    for (const auto tok : split_ws(text)) {
        for (std::size_t start = 0; start < tok.size();) {
            const std::size_t nl = std::min(tok.find('\n', start), tok.size());
            if (nl > start) {
                names.emplace_back(tok.substr(start, nl - start));
            }
            start = nl + 1;
        }
    }
    return names;
}

Result<TableInfo> KernelIptSource::get_info(Family f, std::string_view table) {
    const std::string what = std::string(table) + ": " + call_name(f, true);
    if (table.empty() || table.size() >= kTableNameLen) {
        return Error::of(Errc::malformed, what + ": bad table name");
    }
    auto s = fd(f);
    if (!s) {
        return Error::sys(s.error().sys_errno, std::string(table) + ": " + s.error().detail);
    }
    ipt_getinfo gi{};  // same layout as ip6t_getinfo (static_assert above)
    std::memcpy(gi.name, table.data(), table.size());
    socklen_t len = sizeof gi;
    const int level = f == Family::v4 ? SOL_IP : SOL_IPV6;
    const int opt = f == Family::v4 ? IPT_SO_GET_INFO : IP6T_SO_GET_INFO;
    if (::getsockopt(*s, level, opt, &gi, &len) != 0) {
        return Error::sys(errno, what);
    }
    return decode_getinfo(std::span(reinterpret_cast<const std::uint8_t*>(&gi), len));
}

Result<std::vector<std::uint8_t>> KernelIptSource::get_entries(Family f,
                                                               std::string_view table,
                                                               std::uint32_t size) {
    const std::string what = std::string(table) + ": " + call_name(f, false);
    if (table.empty() || table.size() >= kTableNameLen) {
        return Error::of(Errc::malformed, what + ": bad table name");
    }
    auto s = fd(f);
    if (!s) {
        return Error::sys(s.error().sys_errno, std::string(table) + ": " + s.error().detail);
    }
    // The kernel insists on len == sizeof(struct ipt_get_entries) + size (ip_tables.c
    // get_entries: EINVAL otherwise) and answers EAGAIN if the table's size is not `size`.
    constexpr std::size_t kHeader = sizeof(ipt_get_entries);
    std::vector<std::uint8_t> buf(kHeader + size, 0);
    std::memcpy(buf.data(), table.data(), table.size());
    std::memcpy(buf.data() + offsetof(ipt_get_entries, size), &size, sizeof size);
    auto len = static_cast<socklen_t>(buf.size());
    const int level = f == Family::v4 ? SOL_IP : SOL_IPV6;
    const int opt = f == Family::v4 ? IPT_SO_GET_ENTRIES : IP6T_SO_GET_ENTRIES;
    if (::getsockopt(*s, level, opt, buf.data(), &len) != 0) {
        return Error::sys(errno, what);
    }
    buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(kHeader));
    return buf;
}

// ---- ReplayIptSource -------------------------------------------------------------------------

Result<std::unique_ptr<ReplayIptSource>> ReplayIptSource::parse(std::string_view text,
                                                                std::string_view name) {
    auto src = std::unique_ptr<ReplayIptSource>(new ReplayIptSource());
    bool seen_record = false;
    Answer* last_hex = nullptr;  // the record a continuation line extends
    std::size_t line_no = 0;
    const auto fail = [&](const std::string& what) {
        return Error::of(Errc::malformed,
                         std::string(name) + ":" + std::to_string(line_no) + ": " + what);
    };
    for (std::size_t pos = 0; pos <= text.size();) {
        const std::size_t nl = std::min(text.find('\n', pos), text.size());
        const std::string_view line = text.substr(pos, nl - pos);
        pos = nl + 1;
        ++line_no;
        const auto tok = split_ws(line);
        if (tok.empty()) {
            continue;
        }
        if (tok[0].front() == '#') {
            if (!seen_record) {
                std::string_view c = line.substr(line.find('#') + 1);
                if (!c.empty() && c.front() == ' ') {
                    c.remove_prefix(1);
                }
                src->header_.emplace_back(c);
            }
            continue;
        }
        if (line.front() == ' ' || line.front() == '\t') {
            if (last_hex == nullptr) {
                return fail("continuation line without an info/entries record");
            }
            for (const auto t : tok) {
                if (!append_hex(t, last_hex->bytes)) {
                    return fail("bad hex '" + std::string(t) + "'");
                }
            }
            continue;
        }
        seen_record = true;
        last_hex = nullptr;
        const std::string_view kind = tok[0];
        if (kind == "error") {
            if (tok.size() != 5) {
                return fail("error record needs: error CALL FAMILY TABLE ERRNO");
            }
            const auto fam = parse_family(tok[2]);
            if (!fam || (tok[1] != "names" && tok[1] != "info" && tok[1] != "entries")) {
                return fail("bad error record");
            }
            Answer a;
            a.error = std::atoi(std::string(tok[4]).c_str());
            if (a.error <= 0) {
                return fail("bad errno '" + std::string(tok[4]) + "'");
            }
            const std::string table = tok[1] == "names" ? "" : std::string(tok[3]);
            src->answers_[{std::string(tok[1]), *fam, table}].push_back(std::move(a));
            continue;
        }
        if (tok.size() < 2) {
            return fail("record without a family");
        }
        const auto fam = parse_family(tok[1]);
        if (!fam) {
            return fail("unknown family '" + std::string(tok[1]) + "'");
        }
        if (kind == "names") {
            Answer a;
            if (!(tok.size() == 3 && tok[2] == "-")) {
                for (std::size_t i = 2; i < tok.size(); ++i) {
                    a.names.emplace_back(tok[i]);
                }
            }
            src->answers_[{"names", *fam, ""}].push_back(std::move(a));
        } else if (kind == "info" || kind == "entries") {
            if (tok.size() < 3) {
                return fail("record without a table");
            }
            Answer a;
            for (std::size_t i = 3; i < tok.size(); ++i) {
                if (!append_hex(tok[i], a.bytes)) {
                    return fail("bad hex '" + std::string(tok[i]) + "'");
                }
            }
            auto& list = src->answers_[{std::string(kind), *fam, std::string(tok[2])}];
            list.push_back(std::move(a));
            last_hex = &list.back();
        } else {
            return fail("unknown record '" + std::string(kind) + "'");
        }
    }
    // Decode every info record now, so a bad fixture fails at load time.
    for (const auto& [key, list] : src->answers_) {
        if (std::get<0>(key) != "info") {
            continue;
        }
        for (const auto& a : list) {
            if (a.error == 0 && a.bytes.size() != kGetInfoSize) {
                line_no = 0;
                return fail("info " + std::string(family_name(std::get<1>(key))) + " " +
                            std::get<2>(key) + ": " + std::to_string(a.bytes.size()) +
                            " bytes, need " + std::to_string(kGetInfoSize));
            }
        }
    }
    return src;
}

Result<std::unique_ptr<ReplayIptSource>> ReplayIptSource::load(const std::filesystem::path& file) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return Error::sys(errno, "open " + file.string());
    }
    std::string text;
    char buf[8192];
    ssize_t n = 0;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) {
        text.append(buf, static_cast<std::size_t>(n));
    }
    const int err = errno;
    ::close(fd);
    if (n < 0) {
        return Error::sys(err, "read " + file.string());
    }
    return parse(text, file.filename().string());
}

Result<const ReplayIptSource::Answer*> ReplayIptSource::next(const std::string& call,
                                                             Family f,
                                                             std::string_view table) {
    const Key key{call, f, std::string(table)};
    const auto it = answers_.find(key);
    if (it == answers_.end() || it->second.empty()) {
        return Error::of(Errc::unexpected, "replay: nothing recorded for " + call + " " +
                                               std::string(family_name(f)) + " " +
                                               std::string(table));
    }
    std::size_t& i = served_[key];
    const Answer* a = &it->second[std::min(i, it->second.size() - 1)];
    ++i;
    return a;
}

Result<std::vector<std::string>> ReplayIptSource::table_names(Family f) {
    auto a = next("names", f, "");
    if (!a) {
        return a.error();
    }
    if ((*a)->error != 0) {
        return Error::sys((*a)->error, "open /proc/self/net/" + names_file(f));
    }
    return (*a)->names;
}

Result<TableInfo> ReplayIptSource::get_info(Family f, std::string_view table) {
    auto a = next("info", f, table);
    if (!a) {
        return a.error();
    }
    if ((*a)->error != 0) {
        return Error::sys((*a)->error, std::string(table) + ": " + call_name(f, true));
    }
    return decode_getinfo((*a)->bytes);
}

Result<std::vector<std::uint8_t>> ReplayIptSource::get_entries(Family f,
                                                               std::string_view table,
                                                               std::uint32_t size) {
    auto a = next("entries", f, table);
    if (!a) {
        return a.error();
    }
    const std::string what = std::string(table) + ": " + call_name(f, false);
    if ((*a)->error != 0) {
        return Error::sys((*a)->error, what);
    }
    if ((*a)->bytes.size() != size) {
        return Error::sys(EAGAIN, what);  // what the kernel answers for a size mismatch
    }
    return (*a)->bytes;
}

// ---- RecordingIptSource ----------------------------------------------------------------------

namespace {
// Only errno failures can be replayed; anything else is kept as a comment.
std::string error_record(const std::string& call, const Error& e) {
    if (e.sys_errno > 0) {
        return "error " + call + " " + std::to_string(e.sys_errno);
    }
    return "# " + call + " failed: " + e.detail;
}
}  // namespace

Result<std::vector<std::string>> RecordingIptSource::table_names(Family f) {
    auto r = inner_.table_names(f);
    const std::string fam(family_name(f));
    if (!r) {
        records_.push_back(error_record("names " + fam + " -", r.error()));
    } else {
        std::string line = "names " + fam;
        for (const auto& n : *r) {
            line += " " + n;
        }
        records_.push_back(line);
    }
    return r;
}

Result<TableInfo> RecordingIptSource::get_info(Family f, std::string_view table) {
    auto r = inner_.get_info(f, table);
    const std::string key = std::string(family_name(f)) + " " + std::string(table);
    if (!r) {
        records_.push_back(error_record("info " + key, r.error()));
    } else {
        records_.push_back("info " + key + hex_lines(encode_getinfo(*r)));
    }
    return r;
}

Result<std::vector<std::uint8_t>> RecordingIptSource::get_entries(Family f,
                                                                  std::string_view table,
                                                                  std::uint32_t size) {
    auto r = inner_.get_entries(f, table, size);
    const std::string key = std::string(family_name(f)) + " " + std::string(table);
    if (!r) {
        records_.push_back(error_record("entries " + key, r.error()));
    } else {
        records_.push_back("entries " + key + hex_lines(*r));
    }
    return r;
}

std::string RecordingIptSource::text() const {
    std::string s;
    for (const auto& h : header_) {
        s += "# " + h + "\n";
    }
    s += "\n";
    for (const auto& r : records_) {
        s += r + "\n";
    }
    return s;
}

// ---- read_table, clear_counters --------------------------------------------------------------

Result<RawTable> read_table(IptSource& source,
                            Family f,
                            std::string_view table,
                            unsigned max_attempts) {
    for (unsigned attempt = 0; attempt < max_attempts; ++attempt) {
        auto info = source.get_info(f, table);
        if (!info) {
            return info.error();
        }
        auto entries = source.get_entries(f, table, info->size);
        if (!entries) {
            if (entries.error().code == Errc::system && entries.error().sys_errno == EAGAIN) {
                continue;  // the table was replaced with one of another size: start again
            }
            return entries.error();
        }
        if (entries->size() != info->size) {
            continue;
        }
        // A replacement of the same size between the calls would pair old hook offsets with new
        // entries; a second GET_INFO that still agrees makes that (nearly) impossible, and
        // parse_ipt_blob validates every offset anyway.
        auto again = source.get_info(f, table);
        if (!again) {
            return again.error();
        }
        if (*again != *info) {
            continue;
        }
        return RawTable{f, std::move(*info), std::move(*entries)};
    }
    return Error::of(Errc::interrupted, std::string(table) + ": " + call_name(f, false) +
                                            ": table changed during " +
                                            std::to_string(max_attempts) + " read attempts");
}

void clear_counters(Family f, std::span<std::uint8_t> entries) {
    const Layout& l = layout(f);
    std::size_t off = 0;
    while (entries.size() - off >= l.entry_size) {
        const auto next = load<std::uint16_t>(entries, off + l.next_offset);
        std::memset(entries.data() + off + l.counters, 0, sizeof(xt_counters));
        if (next < l.entry_size || next > entries.size() - off) {
            return;
        }
        off += next;
    }
}

// ---- parse_ipt_blob --------------------------------------------------------------------------

const Chain* Table::find(std::string_view chain) const {
    for (const auto& c : chains) {
        if (c.name == chain) {
            return &c;
        }
    }
    return nullptr;
}

namespace {

struct Walker {
    Family family;
    const Layout& l;
    const TableInfo& info;
    Bytes b;
    std::string prefix;  // "ip nat"

    Error err(Errc c, std::uint32_t off, const std::string& what) const {
        return Error::of(c, prefix + ": entry at offset " + std::to_string(off) + ": " + what);
    }

    InetAddress addr(std::size_t off) const {
        return InetAddress::from_bytes(family, b.data() + off);
    }

    Result<Rule> entry(std::uint32_t off, std::uint16_t target_off, std::uint16_t next_off) const {
        Rule r;
        r.offset = off;
        r.src = addr(off + l.src);
        r.smsk = addr(off + l.smsk);
        r.dst = addr(off + l.dst);
        r.dmsk = addr(off + l.dmsk);
        r.iniface = bounded_string(b, off + l.iniface, IFNAMSIZ);
        r.outiface = bounded_string(b, off + l.outiface, IFNAMSIZ);
        const auto proto = load<std::uint16_t>(b, off + l.proto);
        const std::uint8_t flags = b[off + l.flags];
        const std::uint8_t inv = b[off + l.invflags];
        r.invert_src = (inv & kInvSrcIp) != 0;
        r.invert_dst = (inv & kInvDstIp) != 0;
        r.invert_iniface = (inv & kInvViaIn) != 0;
        r.invert_outiface = (inv & kInvViaOut) != 0;
        if (family == Family::v4) {
            // ip_tables.c ip_packet_match: "if (ipinfo->proto && NF_INVF(... IPT_INV_PROTO ...))"
            r.proto = proto;
            r.invert_proto = proto != 0 && (inv & kInvProto) != 0;
            r.other_ip_test = (flags & l.flag_other) != 0 || (inv & kInvFrag) != 0;
        } else if ((flags & l.flag_proto) != 0) {
            // ip6_tables.c ip6_packet_match: the protocol is tested only with IP6T_F_PROTO; proto
            // 0 then matches everything, or nothing when inverted.
            r.proto = proto;
            r.invert_proto = (inv & kInvProto) != 0;
            r.other_ip_test = (flags & l.flag_other) != 0;
        } else {
            r.other_ip_test = (flags & l.flag_other) != 0;
        }
        // Matches: from the end of the entry up to target_offset (x_tables.h xt_ematch_foreach).
        for (std::size_t m = l.entry_size; m < target_off;) {
            const std::size_t left = target_off - m;
            if (left < kXtHeaderSize) {
                return err(Errc::truncated, off,
                           "match at +" + std::to_string(m) + ": " + std::to_string(left) +
                               " bytes before target_offset, header needs 32");
            }
            const auto size = load<std::uint16_t>(b, off + m);
            Match match;
            match.name = bounded_string(b, off + m + 2, kXtNameLen);
            if (size < kXtHeaderSize) {
                return err(Errc::malformed, off,
                           "match '" + match.name + "' at +" + std::to_string(m) + ": match_size " +
                               std::to_string(size) + " < 32");
            }
            if (size > left) {
                return err(Errc::truncated, off,
                           "match '" + match.name + "' at +" + std::to_string(m) + ": match_size " +
                               std::to_string(size) + " runs past target_offset " +
                               std::to_string(target_off));
            }
            match.revision = b[off + m + kXtRevisionOff];
            match.offset = static_cast<std::uint32_t>(off + m);
            const auto* p = b.data() + off + m + kXtHeaderSize;
            match.data.assign(p, p + (size - kXtHeaderSize));
            r.matches.push_back(std::move(match));
            m += size;
        }
        // Target at target_offset: xt_entry_target, bounded by next_offset.
        const std::size_t left = next_off - target_off;  // >= 32, checked by the caller
        const auto tsize = load<std::uint16_t>(b, off + target_off);
        const std::string tname = bounded_string(b, off + target_off + 2, kXtNameLen);
        if (tsize < kXtHeaderSize) {
            return err(Errc::malformed, off,
                       "target '" + tname + "': target_size " + std::to_string(tsize) + " < 32");
        }
        if (tsize > left) {
            return err(Errc::truncated, off,
                       "target '" + tname + "': target_size " + std::to_string(tsize) +
                           " runs past next_offset " + std::to_string(next_off));
        }
        const auto* tp = b.data() + off + target_off + kXtHeaderSize;
        const std::size_t tdata = tsize - kXtHeaderSize;
        if (tname.empty()) {  // XT_STANDARD_TARGET ""
            if (tdata < kVerdictSize) {
                return err(Errc::truncated, off,
                           "standard target of " + std::to_string(tsize) + " bytes has no verdict");
            }
            std::int32_t v = 0;
            std::memcpy(&v, tp, sizeof v);
            if (v >= 0) {
                r.target.kind = Target::Kind::jump;
                r.target.jump_offset = static_cast<std::uint32_t>(v);
                r.target.is_goto = (flags & l.flag_goto) != 0;
            } else if (v >= kVerdictStop) {
                r.target.kind = Target::Kind::verdict;
                r.target.verdict = v;
            } else {
                // ip_tables.c mark_source_chains rejects verdicts below -NF_MAX_VERDICT - 1.
                return err(Errc::malformed, off, "unknown standard verdict " + std::to_string(v));
            }
        } else {
            r.target.kind = Target::Kind::named;
            r.target.name = tname;
            r.target.revision = b[off + target_off + kXtRevisionOff];
            r.target.data.assign(tp, tp + tdata);
        }
        return r;
    }
};

bool is_unconditional_return(const Rule& r) {
    // libiptc ends every user chain with an unconditional RETURN (its "policy" entry).
    return r.matches.empty() && r.target.kind == Target::Kind::verdict &&
           r.target.verdict == kVerdictReturn && r.dmsk.is_unspecified() &&
           r.smsk.is_unspecified() && r.proto == 0 && !r.invert_proto && r.iniface.empty() &&
           r.outiface.empty() && !r.other_ip_test;
}

}  // namespace

Result<Table> parse_ipt_blob(Family f, const TableInfo& info, std::span<const std::uint8_t> bytes) {
    const Layout& l = layout(f);
    Walker w{f, l, info, bytes, std::string(family_name(f)) + " " + info.name};
    if (bytes.size() != info.size) {
        return Error::of(Errc::malformed, w.prefix + ": " + std::to_string(bytes.size()) +
                                              " bytes of entries, GET_INFO said " +
                                              std::to_string(info.size));
    }
    // Pass 1: entry boundaries (x_tables.h XT_ENTRY_ITERATE), every size checked.
    struct Span {
        std::uint32_t off;
        std::uint16_t target_off;
        std::uint16_t next_off;
    };
    std::vector<Span> spans;
    for (std::size_t off = 0; off < bytes.size();) {
        const auto o = static_cast<std::uint32_t>(off);
        const std::size_t left = bytes.size() - off;
        if (left < l.entry_size) {
            return w.err(Errc::truncated, o,
                         std::to_string(left) + " bytes left, an entry needs " +
                             std::to_string(l.entry_size));
        }
        const auto target_off = load<std::uint16_t>(bytes, off + l.target_offset);
        const auto next_off = load<std::uint16_t>(bytes, off + l.next_offset);
        if (target_off < l.entry_size) {
            return w.err(Errc::malformed, o,
                         "target_offset " + std::to_string(target_off) + " < entry size " +
                             std::to_string(l.entry_size));
        }
        if (next_off < target_off + kXtHeaderSize) {
            return w.err(Errc::malformed, o,
                         "next_offset " + std::to_string(next_off) + " leaves no room for a " +
                             "target at target_offset " + std::to_string(target_off));
        }
        if (next_off > left) {
            return w.err(Errc::truncated, o,
                         "next_offset " + std::to_string(next_off) + " runs past the end (" +
                             std::to_string(left) + " bytes left)");
        }
        spans.push_back({o, target_off, next_off});
        off += next_off;
    }
    if (spans.size() != info.num_entries) {
        return Error::of(Errc::malformed, w.prefix + ": " + std::to_string(spans.size()) +
                                              " entries, GET_INFO said " +
                                              std::to_string(info.num_entries));
    }
    const auto index_of = [&](std::uint32_t off) -> std::optional<std::size_t> {
        const auto it = std::lower_bound(spans.begin(), spans.end(), off,
                                         [](const Span& s, std::uint32_t o) { return s.off < o; });
        if (it == spans.end() || it->off != off) {
            return std::nullopt;
        }
        return static_cast<std::size_t>(it - spans.begin());
    };
    for (std::size_t h = 0; h < kNumHooks; ++h) {
        if ((info.valid_hooks & (1U << h)) == 0) {
            continue;
        }
        const std::string hook(hook_chain_name(h));
        if (!index_of(info.hook_entry[h])) {
            return Error::of(Errc::malformed, w.prefix + ": " + hook + " hook_entry " +
                                                  std::to_string(info.hook_entry[h]) +
                                                  " is not an entry offset");
        }
        if (!index_of(info.underflow[h]) || info.underflow[h] < info.hook_entry[h]) {
            return Error::of(Errc::malformed, w.prefix + ": " + hook + " underflow " +
                                                  std::to_string(info.underflow[h]) +
                                                  " is not an entry offset after hook_entry");
        }
    }
    if ((info.valid_hooks >> kNumHooks) != 0) {
        return Error::of(Errc::malformed, w.prefix + ": valid_hooks 0x" +
                                              std::to_string(info.valid_hooks) +
                                              " names hooks beyond NF_INET_NUMHOOKS");
    }

    // Pass 2: decode every entry and assign it to a chain.
    Table t;
    t.family = f;
    t.name = info.name;
    // Where each entry went, to resolve jumps: chain index and rule index (rules.size() for the
    // policy); SIZE_MAX chain for ERROR heads.
    struct Place {
        std::size_t chain = SIZE_MAX;
        std::size_t rule = 0;
    };
    std::vector<Place> places(spans.size());
    std::optional<std::size_t> current;
    bool closed = false;  // the current builtin chain's policy has been seen
    for (std::size_t i = 0; i < spans.size(); ++i) {
        const Span& s = spans[i];
        std::uint32_t hooks_here = 0;
        for (std::size_t h = 0; h < kNumHooks; ++h) {
            if ((info.valid_hooks & (1U << h)) != 0 && info.hook_entry[h] == s.off) {
                hooks_here |= 1U << h;
            }
        }
        auto rule = w.entry(s.off, s.target_off, s.next_off);
        if (!rule) {
            return rule.error();
        }
        if (hooks_here != 0) {
            Chain c;
            c.builtin = true;
            c.hooks = hooks_here;
            c.offset = s.off;
            c.name = hook_chain_name(static_cast<std::size_t>(std::countr_zero(hooks_here)));
            for (std::size_t h = 0; h < kNumHooks; ++h) {
                if ((hooks_here & (1U << h)) != 0) {
                    t.hook_chain[h] = t.chains.size();
                }
            }
            t.chains.push_back(std::move(c));
            current = t.chains.size() - 1;
            closed = false;
        }
        if (rule->target.kind == Target::Kind::named && rule->target.name == "ERROR") {
            // XT_ERROR_TARGET: a user chain's head, or (last entry) the end of the table.
            const auto& d = rule->target.data;
            const std::string name = bounded_string(d, 0, std::min(d.size(), kErrorNameLen));
            if (hooks_here != 0) {
                return w.err(Errc::malformed, s.off, "builtin chain starts at an ERROR entry");
            }
            if (i + 1 == spans.size()) {
                break;
            }
            Chain c;
            c.name = name;
            c.offset = s.off;
            t.chains.push_back(std::move(c));
            current = t.chains.size() - 1;
            closed = false;
            continue;
        }
        if (!current) {
            return w.err(Errc::malformed, s.off, "entry belongs to no chain");
        }
        Chain& c = t.chains[*current];
        if (closed) {
            return w.err(Errc::malformed, s.off,
                         "entry follows the policy of builtin chain " + c.name);
        }
        bool is_policy = false;
        if (c.builtin) {
            for (std::size_t h = 0; h < kNumHooks; ++h) {
                if ((c.hooks & (1U << h)) != 0 && info.underflow[h] == s.off) {
                    is_policy = true;
                }
            }
        }
        places[i] = {*current, c.rules.size()};
        if (is_policy) {
            c.policy = std::move(*rule);
            closed = true;
        } else {
            c.rules.push_back(std::move(*rule));
        }
    }
    // User chains: the trailing unconditional RETURN is the chain's end, not a rule.
    for (std::size_t ci = 0; ci < t.chains.size(); ++ci) {
        Chain& c = t.chains[ci];
        if (!c.builtin && !c.rules.empty() && is_unconditional_return(c.rules.back())) {
            c.policy = std::move(c.rules.back());
            c.rules.pop_back();
        }
    }
    // Pass 3: resolve jumps to (chain, rule).
    const auto resolve = [&](Rule& r) -> Result<void> {
        if (r.target.kind != Target::Kind::jump) {
            return {};
        }
        const auto idx = index_of(r.target.jump_offset);
        if (!idx || places[*idx].chain == SIZE_MAX) {
            return w.err(Errc::malformed, r.offset,
                         "jump to offset " + std::to_string(r.target.jump_offset) +
                             (idx ? ", an ERROR entry" : ", which is not an entry"));
        }
        r.target.jump_chain = places[*idx].chain;
        r.target.jump_rule = places[*idx].rule;
        return {};
    };
    for (auto& c : t.chains) {
        for (auto& r : c.rules) {
            if (auto ok = resolve(r); !ok) {
                return ok.error();
            }
        }
        if (c.policy) {
            if (auto ok = resolve(*c.policy); !ok) {
                return ok.error();
            }
        }
    }
    return t;
}

}  // namespace vipportd::netlink::ipt
