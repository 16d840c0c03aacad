#pragma once
// Legacy iptables (x_tables) reader and blob walker (kernel.md §3).
//
// Reading a table is two getsockopt calls on a raw socket (IPT_SO_GET_INFO, IPT_SO_GET_ENTRIES;
// IPv6: IP6T_SO_*), behind the IptSource interface so that unit tests replay recorded kernel
// bytes. Querying a table that does not exist *creates* it in that netns (kernel.md §3.3), so a
// caller first asks table_names() (/proc/self/net/ip{,6}_tables_names) and queries only what is
// listed. parse_ipt_blob() turns the entries blob into chains and rules; every offset in it
// (next_offset, target_offset, match_size, target_size, jump offsets, hook entries) is checked
// against the buffer, and a malformed blob yields an error naming the offset, never a crash.
//
// Nothing here interprets rules; agent/ipt_legacy_source does.

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "netlink/error.hpp"
#include "netlink/inet_address.hpp"

namespace vipportd::netlink::ipt {

/// NF_INET_NUMHOOKS (linux/netfilter.h): PRE_ROUTING 0, LOCAL_IN 1, FORWARD 2, LOCAL_OUT 3,
/// POST_ROUTING 4.
inline constexpr std::size_t kNumHooks = 5;
/// "PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"; "" for hook >= kNumHooks.
std::string_view hook_chain_name(std::size_t hook);

/// "ip" / "ip6" (the names of the iptables / ip6tables families in claims and errors).
std::string_view family_name(Family f);

/// struct ipt_getinfo / ip6t_getinfo (identical layouts, linux/netfilter_ipv4/ip_tables.h).
struct TableInfo {
    std::string name;
    std::uint32_t valid_hooks = 0;                      // bit h set: hook h has a builtin chain
    std::array<std::uint32_t, kNumHooks> hook_entry{};  // byte offset of each builtin chain
    std::array<std::uint32_t, kNumHooks> underflow{};   // byte offset of each chain's policy
    std::uint32_t num_entries = 0;
    std::uint32_t size = 0;  // bytes of entries
    friend bool operator==(const TableInfo&, const TableInfo&) = default;
};

inline constexpr std::size_t kGetInfoSize = 84;  // sizeof(struct ipt_getinfo)
/// Decodes the ipt_getinfo bytes the kernel returned. Errors: Errc::truncated.
Result<TableInfo> decode_getinfo(std::span<const std::uint8_t> bytes);
/// The inverse (used to record fixtures); name truncated to 31 bytes.
std::vector<std::uint8_t> encode_getinfo(const TableInfo& info);

/// Where legacy tables come from: the kernel, or a recording.
class IptSource {
  public:
    virtual ~IptSource() = default;
    /// Tables listed in ip_tables_names (v4) / ip6_tables_names (v6). An absent file (x_tables
    /// not loaded) is an empty list, not an error. Errors: Errc::system (e.g. EACCES: the file is
    /// mode 0440 root:root, see net/netfilter/x_tables.c xt_proto_init).
    [[nodiscard]] virtual Result<std::vector<std::string>> table_names(Family f) = 0;
    /// IPT_SO_GET_INFO / IP6T_SO_GET_INFO. Errors: Errc::system naming the call ("nat:
    /// IPT_SO_GET_INFO", EPERM without CAP_NET_ADMIN, ENOENT for an unknown table).
    [[nodiscard]] virtual Result<TableInfo> get_info(Family f, std::string_view table) = 0;
    /// IPT_SO_GET_ENTRIES / IP6T_SO_GET_ENTRIES for exactly size bytes. Errors: Errc::system; the
    /// kernel answers EAGAIN when the table's size is no longer `size` (net/ipv4/netfilter/
    /// ip_tables.c get_entries).
    [[nodiscard]] virtual Result<std::vector<std::uint8_t>> get_entries(Family f,
                                                                        std::string_view table,
                                                                        std::uint32_t size) = 0;
};

/// The real thing: raw sockets (socket(AF_INET|AF_INET6, SOCK_RAW, IPPROTO_RAW)) opened in the
/// constructor, i.e. in the network namespace of the constructing thread, and used from any
/// thread afterwards. A socket that cannot be opened (EPERM without CAP_NET_RAW) is reported by
/// get_info/get_entries, so a host with no legacy tables needs no capability at all.
class KernelIptSource final : public IptSource {
  public:
    /// proc_net: the directory holding ip_tables_names; "/proc/self/net" (kernel.md §3.3: it is
    /// still visible under systemd ProcSubset=pid). Tests pass /proc/self/task/<tid>/net of a
    /// thread that lives in their namespace.
    explicit KernelIptSource(std::filesystem::path proc_net = "/proc/self/net");
    ~KernelIptSource() override;
    KernelIptSource(const KernelIptSource&) = delete;
    KernelIptSource& operator=(const KernelIptSource&) = delete;

    Result<std::vector<std::string>> table_names(Family f) override;
    Result<TableInfo> get_info(Family f, std::string_view table) override;
    Result<std::vector<std::uint8_t>> get_entries(Family f,
                                                  std::string_view table,
                                                  std::uint32_t size) override;

  private:
    struct Sock {
        int fd = -1;
        int open_errno = 0;
    };
    Result<int> fd(Family f) const;
    std::filesystem::path proc_net_;
    Sock v4_;
    Sock v6_;
};

/// Replays a recording (tests, fuzz seeds). Text format, one record per line; a line starting
/// with whitespace continues the previous record's hex:
///   # comment                           (the lines before the first record form the header)
///   names ip|ip6 [TABLE ...]            table_names(); "names ip6 -" = file absent (empty)
///   info ip|ip6 TABLE HEX               get_info(): the struct ipt_getinfo bytes
///   entries ip|ip6 TABLE HEX            get_entries(): the entries blob
///   error names|info|entries ip|ip6 TABLE|- ERRNO    that call failed with ERRNO
/// Several records for the same call are answered in order; the last one repeats.
class ReplayIptSource final : public IptSource {
  public:
    /// Errors: Errc::malformed with "<name>:<line>: what".
    static Result<std::unique_ptr<ReplayIptSource>> parse(std::string_view text,
                                                          std::string_view name = "fixture");
    static Result<std::unique_ptr<ReplayIptSource>> load(const std::filesystem::path& file);

    Result<std::vector<std::string>> table_names(Family f) override;
    Result<TableInfo> get_info(Family f, std::string_view table) override;
    Result<std::vector<std::uint8_t>> get_entries(Family f,
                                                  std::string_view table,
                                                  std::uint32_t size) override;
    /// Comment lines before the first record.
    [[nodiscard]] const std::vector<std::string>& header() const { return header_; }

    struct Answer {
        int error = 0;  // errno, or 0
        std::vector<std::string> names;
        std::vector<std::uint8_t> bytes;
    };
    using Key = std::tuple<std::string, Family, std::string>;  // call, family, table

  private:
    Result<const Answer*> next(const std::string& call, Family f, std::string_view table);
    std::vector<std::string> header_;
    std::map<Key, std::vector<Answer>> answers_;
    std::map<Key, std::size_t> served_;
};

/// Decorator that forwards to another source and writes every answer in the ReplayIptSource
/// format (the header lines first, as comments).
class RecordingIptSource final : public IptSource {
  public:
    RecordingIptSource(IptSource& inner, std::vector<std::string> header)
        : inner_(inner), header_(std::move(header)) {}
    Result<std::vector<std::string>> table_names(Family f) override;
    Result<TableInfo> get_info(Family f, std::string_view table) override;
    Result<std::vector<std::uint8_t>> get_entries(Family f,
                                                  std::string_view table,
                                                  std::uint32_t size) override;
    /// The recording so far, as fixture text.
    [[nodiscard]] std::string text() const;

  private:
    IptSource& inner_;
    std::vector<std::string> header_;
    std::vector<std::string> records_;
};

/// One table as read by one consistent GET_INFO / GET_ENTRIES / GET_INFO sequence.
struct RawTable {
    Family family = Family::v4;
    TableInfo info;
    std::vector<std::uint8_t> entries;
};

/// Reads a table, restarting from GET_INFO (at most max_attempts times in all) when the kernel
/// answers EAGAIN to GET_ENTRIES (the size changed in between) or when a second GET_INFO
/// disagrees with the first. Errors: those of the source; Errc::interrupted when the table kept
/// changing.
Result<RawTable> read_table(IptSource& source,
                            Family f,
                            std::string_view table,
                            unsigned max_attempts = 5);

/// Zeroes the packet/byte counters of every entry in place (they change with traffic; the rest
/// of the blob changes only when rules do). Stops silently at the first entry that does not fit:
/// parse_ipt_blob reports that.
void clear_counters(Family f, std::span<std::uint8_t> entries);

// ---- Parsed form ---------------------------------------------------------------------------

/// Standard verdicts: -NF_x - 1 (linux/netfilter.h NF_DROP 0 ... NF_STOP 5; x_tables.h XT_RETURN).
inline constexpr std::int32_t kVerdictDrop = -1;
inline constexpr std::int32_t kVerdictAccept = -2;
inline constexpr std::int32_t kVerdictStolen = -3;
inline constexpr std::int32_t kVerdictQueue = -4;
inline constexpr std::int32_t kVerdictReturn = -5;  // XT_RETURN = -NF_REPEAT - 1
inline constexpr std::int32_t kVerdictStop = -6;

/// xt_entry_match: name, revision and the payload after the 32-byte header (xt_blobs.hpp decodes
/// it).
struct Match {
    std::string name;
    std::uint8_t revision = 0;
    std::vector<std::uint8_t> data;
    std::uint32_t offset = 0;  // of its xt_entry_match header in the blob
};

struct Target {
    enum class Kind : std::uint8_t {
        verdict,  // standard target with a negative verdict (ACCEPT, DROP, RETURN, ...)
        jump,     // standard target with a non-negative verdict: jump (or goto) to an entry
        named,    // an extension target ("DNAT", "MARK", ...): name + revision + data
    };
    Kind kind = Kind::verdict;
    std::int32_t verdict = kVerdictAccept;  // Kind::verdict
    bool is_goto = false;                   // Kind::jump with IPT_F_GOTO / IP6T_F_GOTO
    std::uint32_t jump_offset = 0;          // Kind::jump: the byte offset in the blob
    std::size_t jump_chain = 0;             // Kind::jump: index into Table::chains
    std::size_t jump_rule = 0;              // index into that chain's rules (== size: its end)
    std::string name;                       // Kind::named
    std::uint8_t revision = 0;
    std::vector<std::uint8_t> data;
};

/// One ipt_entry / ip6t_entry. Addresses are as stored (network order, dst pre-masked by
/// iptables); protocol and inversion are normalized across the two families.
struct Rule {
    std::uint32_t offset = 0;  // byte offset of the entry in the blob
    InetAddress src;
    InetAddress smsk;
    InetAddress dst;
    InetAddress dmsk;
    bool invert_src = false;  // IPT_INV_SRCIP / IP6T_INV_SRCIP 0x08
    bool invert_dst = false;  // IPT_INV_DSTIP / IP6T_INV_DSTIP 0x10
    std::string iniface;      // "" = any
    std::string outiface;
    bool invert_iniface = false;   // IPT_INV_VIA_IN 0x01
    bool invert_outiface = false;  // IPT_INV_VIA_OUT 0x02
    /// 0 = any protocol. IPv6: 0 unless IP6T_F_PROTO is set (ip6_tables.c ip6_packet_match).
    std::uint16_t proto = 0;
    /// XT_INV_PROTO 0x40. With proto 0 only possible on IPv6 ("! -p all"): matches nothing.
    bool invert_proto = false;
    /// IPv4 IPT_F_FRAG (-f, or ! -f when inverted) or IPv6 IP6T_F_TOS: a test the claim model
    /// does not express.
    bool other_ip_test = false;
    std::vector<Match> matches;
    Target target;
};

struct Chain {
    std::string name;
    bool builtin = false;
    std::uint32_t hooks = 0;   // builtin: the hooks entering here (bit h)
    std::uint32_t offset = 0;  // first entry (builtin) or the ERROR head (user chain)
    std::vector<Rule> rules;   // 1-based index = iptables rule number
    /// Builtin: the underflow entry (policy ACCEPT/DROP). User chain: the unconditional RETURN
    /// that iptables appends; absent if the chain does not end with one (then falling off its end
    /// runs into the next ERROR head, whose target drops: net/ipv4/netfilter/ip_tables.c
    /// ipt_error()).
    std::optional<Rule> policy;
};

struct Table {
    Family family = Family::v4;
    std::string name;
    std::vector<Chain> chains;                                       // in blob order
    std::array<std::optional<std::size_t>, kNumHooks> hook_chain{};  // chain index per hook
    [[nodiscard]] const Chain* find(std::string_view chain) const;
};

/// Walks an entries blob (kernel.md §3.2). Errors (with the byte offset): Errc::truncated when an
/// entry, match or target runs past its container; Errc::malformed for sizes below the header
/// sizes, a size/num_entries mismatch with info, hook entries or jumps that do not land on an
/// entry, an unknown standard verdict, or an entry outside any chain.
Result<Table> parse_ipt_blob(Family f, const TableInfo& info, std::span<const std::uint8_t> bytes);

}  // namespace vipportd::netlink::ipt
