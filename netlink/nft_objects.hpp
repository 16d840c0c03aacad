#pragma once
// Plain values for the nf_tables objects of a ruleset dump (kernel.md §2.1): tables, chains, rules
// with typed expressions, sets with their elements, and the generation id. Decoded from NFTA_*
// attributes (linux/netfilter/nf_tables.h, nf_tables_compat.h) by nft_decode.hpp; no libnftnl.
//
// Byte strings (cmp data, set keys, immediates, xt blobs) are kept exactly as the kernel sends
// them: register data in network order, as `nft --debug=netlink` shows as little-endian words
// (kernel.md §2.3). Register numbers are kept as the kernel dumps them (NFT_REG_1..4 = 1..4,
// NFT_REG32_00..15 = 8..23, verdict = 0); slot_of_register() maps them to 32-bit slots (§2.8).

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace vipportd::netlink::nft {

using Bytes = std::vector<std::uint8_t>;

/// The value of one cmp/range/bitwise/immediate operand, kept inline: the kernel holds each of
/// them in a struct nft_data (u32 data[4], 16 bytes; include/net/netfilter/nf_tables.h) and
/// nft_value_init() (net/netfilter/nf_tables_api.c) refuses a longer NFTA_DATA_VALUE with
/// -EOVERFLOW, so no expression the kernel dumps carries more. (NFT_DATA_VALUE_MAXLEN, 64, is
/// the register file and bounds set keys, which stay Bytes.) A std::vector here cost one heap
/// block of a few bytes per operand: five per DNAT rule. The decoder turns a longer value into
/// Unknown instead of cutting it.
class RegData {
  public:
    static constexpr std::size_t kCapacity = 16;  // sizeof(((struct nft_data*)0)->data)

    constexpr RegData() = default;
    /// For literals and tests: throws std::length_error above kCapacity (decoders use from()).
    explicit RegData(std::span<const std::uint8_t> bytes);
    RegData(std::initializer_list<std::uint8_t> bytes)
        : RegData(std::span<const std::uint8_t>(bytes.begin(), bytes.size())) {}
    /// nullopt when bytes is longer than kCapacity.
    [[nodiscard]] static std::optional<RegData> from(std::span<const std::uint8_t> bytes) noexcept;

    [[nodiscard]] const std::uint8_t* data() const noexcept { return bytes_.data(); }
    [[nodiscard]] std::uint8_t* data() noexcept { return bytes_.data(); }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] const std::uint8_t* begin() const noexcept { return data(); }
    [[nodiscard]] const std::uint8_t* end() const noexcept { return data() + size_; }
    [[nodiscard]] std::uint8_t* begin() noexcept { return data(); }
    [[nodiscard]] std::uint8_t* end() noexcept { return data() + size_; }
    [[nodiscard]] std::uint8_t operator[](std::size_t i) const noexcept { return bytes_[i]; }
    [[nodiscard]] std::uint8_t& operator[](std::size_t i) noexcept { return bytes_[i]; }
    // A contiguous sized range: it converts to std::span<const std::uint8_t> (and, mutable, to
    // std::span<std::uint8_t>) through span's range constructor.

    // The bytes past size() stay zero (write only within [0, size())), so the member-wise
    // comparison compares the values.
    friend bool operator==(const RegData&, const RegData&) = default;

  private:
    std::array<std::uint8_t, kCapacity> bytes_{};
    std::uint8_t size_ = 0;
};

// Table families (linux/netfilter.h NFPROTO_*).
inline constexpr std::uint8_t kFamilyUnspec = 0;  // NFPROTO_UNSPEC: "every family" in dumps
inline constexpr std::uint8_t kFamilyInet = 1;    // NFPROTO_INET
inline constexpr std::uint8_t kFamilyIpv4 = 2;    // NFPROTO_IPV4 ("ip")
inline constexpr std::uint8_t kFamilyArp = 3;     // NFPROTO_ARP
inline constexpr std::uint8_t kFamilyNetdev = 5;  // NFPROTO_NETDEV
inline constexpr std::uint8_t kFamilyBridge = 7;  // NFPROTO_BRIDGE
inline constexpr std::uint8_t kFamilyIpv6 = 10;   // NFPROTO_IPV6 ("ip6")

/// "ip", "ip6", "inet", "arp", "bridge", "netdev", or the number for anything else.
[[nodiscard]] std::string family_name(std::uint8_t family);

// Netfilter hooks (linux/netfilter.h enum nf_inet_hooks).
inline constexpr std::uint32_t kHookPrerouting = 0;   // NF_INET_PRE_ROUTING
inline constexpr std::uint32_t kHookInput = 1;        // NF_INET_LOCAL_IN
inline constexpr std::uint32_t kHookForward = 2;      // NF_INET_FORWARD
inline constexpr std::uint32_t kHookOutput = 3;       // NF_INET_LOCAL_OUT
inline constexpr std::uint32_t kHookPostrouting = 4;  // NF_INET_POST_ROUTING

// Verdict codes (linux/netfilter.h NF_*, linux/netfilter/nf_tables.h enum nft_verdicts).
inline constexpr std::int32_t kVerdictDrop = 0;       // NF_DROP
inline constexpr std::int32_t kVerdictAccept = 1;     // NF_ACCEPT
inline constexpr std::int32_t kVerdictContinue = -1;  // NFT_CONTINUE
inline constexpr std::int32_t kVerdictBreak = -2;     // NFT_BREAK
inline constexpr std::int32_t kVerdictJump = -3;      // NFT_JUMP
inline constexpr std::int32_t kVerdictGoto = -4;      // NFT_GOTO
inline constexpr std::int32_t kVerdictReturn = -5;    // NFT_RETURN

/// NFTA_DATA_VERDICT: a verdict code plus, for jump and goto, the target chain.
struct Verdict {
    std::int32_t code = kVerdictContinue;
    std::string chain;
    friend bool operator==(const Verdict&, const Verdict&) = default;
};

/// "accept", "drop", "continue", "break", "jump -> X", "goto -> X", "return", "queue", ...
[[nodiscard]] std::string to_string(const Verdict& v);

inline constexpr unsigned kRegisterSlots = 16;  // NFT_REG32_COUNT
/// NFT_REG_VERDICT (0), NFT_REG_1..4 (16 bytes each) and NFT_REG32_00..15 alias one 64-byte file;
/// the 32-bit slot a register starts at, or nullopt for the verdict register or a number outside
/// the file (kernel.md §2.8; net/netfilter/nf_tables_api.c nft_parse_register()).
/// Inline: the interpreter maps a register for every load and test of every rule.
[[nodiscard]] constexpr std::optional<unsigned> slot_of_register(std::uint32_t reg) {
    // NFT_REG_1..NFT_REG_4 are 16 bytes wide and start at 32-bit slots 0, 4, 8, 12;
    // NFT_REG32_00..NFT_REG32_15 (8..23) are slots 0..15 (nf_tables_api.c nft_parse_register).
    if (reg >= 1 && reg <= 4) {
        return (reg - 1) * 4;
    }
    if (reg >= 8 && reg < 8 + kRegisterSlots) {
        return reg - 8;
    }
    return std::nullopt;
}

// ---- expressions (NFTA_RULE_EXPRESSIONS -> NFTA_LIST_ELEM -> NFTA_EXPR_NAME + NFTA_EXPR_DATA)
// ----

// payload bases (enum nft_payload_bases)
inline constexpr std::uint32_t kPayloadLinkHeader = 0;       // NFT_PAYLOAD_LL_HEADER
inline constexpr std::uint32_t kPayloadNetworkHeader = 1;    // NFT_PAYLOAD_NETWORK_HEADER
inline constexpr std::uint32_t kPayloadTransportHeader = 2;  // NFT_PAYLOAD_TRANSPORT_HEADER
inline constexpr std::uint32_t kPayloadInnerHeader = 3;      // NFT_PAYLOAD_INNER_HEADER

/// "payload": load len bytes at base+offset into dreg, or (sreg set) write them into the packet.
struct Payload {
    std::uint32_t base = 0;
    std::uint32_t offset = 0;
    std::uint32_t len = 0;
    std::optional<std::uint32_t> dreg;  // load
    std::optional<std::uint32_t> sreg;  // write ("payload set"); csum attributes not kept
    friend bool operator==(const Payload&, const Payload&) = default;
};

// meta keys used by the interpreter (enum nft_meta_keys)
inline constexpr std::uint32_t kMetaProtocol = 1;  // NFT_META_PROTOCOL: ethertype, 2 bytes
inline constexpr std::uint32_t kMetaMark = 3;      // NFT_META_MARK
inline constexpr std::uint32_t kMetaIif = 4;       // NFT_META_IIF
inline constexpr std::uint32_t kMetaOif = 5;       // NFT_META_OIF
inline constexpr std::uint32_t kMetaIifname = 6;   // NFT_META_IIFNAME
inline constexpr std::uint32_t kMetaOifname = 7;   // NFT_META_OIFNAME
inline constexpr std::uint32_t kMetaNfproto = 15;  // NFT_META_NFPROTO: 1 byte
inline constexpr std::uint32_t kMetaL4proto = 16;  // NFT_META_L4PROTO: 1 byte

/// libnftnl's name of a meta key ("l4proto", "iifname", ...), or the number.
[[nodiscard]] std::string meta_key_name(std::uint32_t key);

/// "meta": load a packet/metadata key into dreg, or (sreg set) set it.
struct Meta {
    std::uint32_t key = 0;
    std::optional<std::uint32_t> dreg;
    std::optional<std::uint32_t> sreg;
    friend bool operator==(const Meta&, const Meta&) = default;
};

// cmp ops (enum nft_cmp_ops)
inline constexpr std::uint32_t kCmpEq = 0;   // NFT_CMP_EQ
inline constexpr std::uint32_t kCmpNeq = 1;  // NFT_CMP_NEQ
inline constexpr std::uint32_t kCmpLt = 2;   // NFT_CMP_LT
inline constexpr std::uint32_t kCmpLte = 3;  // NFT_CMP_LTE
inline constexpr std::uint32_t kCmpGt = 4;   // NFT_CMP_GT
inline constexpr std::uint32_t kCmpGte = 5;  // NFT_CMP_GTE

/// "cmp": memcmp(reg[sreg], data, data.size()) op 0 (net/netfilter/nft_cmp.c).
struct Cmp {
    std::uint32_t sreg = 0;
    std::uint32_t op = kCmpEq;
    RegData data;
    friend bool operator==(const Cmp&, const Cmp&) = default;
};

// range ops (enum nft_range_ops)
inline constexpr std::uint32_t kRangeEq = 0;   // NFT_RANGE_EQ
inline constexpr std::uint32_t kRangeNeq = 1;  // NFT_RANGE_NEQ

/// "range": from <= reg[sreg] <= to (memcmp, inclusive), or its negation
/// (net/netfilter/nft_range.c).
struct Range {
    std::uint32_t sreg = 0;
    std::uint32_t op = kRangeEq;
    RegData from;
    RegData to;
    friend bool operator==(const Range&, const Range&) = default;
};

inline constexpr std::uint32_t kLookupInvert = 1;  // NFT_LOOKUP_F_INV

/// "lookup": reg[sreg..] (set key_len bytes) in set; dreg 0 = verdict map, >= 1 = data map.
struct Lookup {
    std::string set;
    std::uint32_t sreg = 0;
    std::optional<std::uint32_t> dreg;
    std::optional<std::uint32_t> set_id;
    std::uint32_t flags = 0;
    [[nodiscard]] bool inverted() const { return (flags & kLookupInvert) != 0; }
    friend bool operator==(const Lookup&, const Lookup&) = default;
};

// bitwise ops (enum nft_bitwise_ops)
inline constexpr std::uint32_t kBitwiseMaskXor = 0;  // NFT_BITWISE_MASK_XOR (formerly _BOOL)
inline constexpr std::uint32_t kBitwiseLshift = 1;   // NFT_BITWISE_LSHIFT
inline constexpr std::uint32_t kBitwiseRshift = 2;   // NFT_BITWISE_RSHIFT

/// "bitwise": dreg = (sreg & mask) ^ xor for op MASK_XOR; shifts by data otherwise.
/// Registers, len and op are u8 as in the kernel's struct nft_bitwise (net/netfilter/
/// nft_bitwise.c: a register number is at most NFT_REG32_15 = 23, len passes
/// nft_parse_u32_check(..., U8_MAX)); the decoder turns a larger value into Unknown. That keeps
/// three 16-byte operands within the 56 bytes an Expr alternative may take.
struct Bitwise {
    std::uint8_t sreg = 0;
    std::uint8_t dreg = 0;
    std::uint8_t len = 0;
    std::uint8_t op = kBitwiseMaskXor;
    RegData mask;
    RegData xor_value;
    RegData data;  // shift amount (LSHIFT/RSHIFT)
    friend bool operator==(const Bitwise&, const Bitwise&) = default;
};

/// "immediate": a constant into dreg; dreg 0 (NFT_REG_VERDICT) carries a verdict instead. The
/// kernel dumps one or the other (NFTA_DATA_VALUE or NFTA_DATA_VERDICT, nft_data_dump()), so one
/// variant holds it: no empty optional<Verdict> (48 bytes) beside every constant.
struct Immediate {
    std::uint32_t dreg = 0;
    std::variant<RegData, Verdict> value;
    /// The constant, or nullptr for a verdict.
    [[nodiscard]] const RegData* data() const { return std::get_if<RegData>(&value); }
    /// The verdict, or nullptr for a constant.
    [[nodiscard]] const Verdict* verdict() const { return std::get_if<Verdict>(&value); }
    friend bool operator==(const Immediate&, const Immediate&) = default;
};

// nat types (enum nft_nat_types)
inline constexpr std::uint32_t kNatSnat = 0;  // NFT_NAT_SNAT
inline constexpr std::uint32_t kNatDnat = 1;  // NFT_NAT_DNAT
// nat/redir flags (linux/netfilter/nf_nat.h)
inline constexpr std::uint32_t kNatRangeMapIps = 1;          // NF_NAT_RANGE_MAP_IPS
inline constexpr std::uint32_t kNatRangeProtoSpecified = 2;  // NF_NAT_RANGE_PROTO_SPECIFIED

/// "nat": SNAT/DNAT to the addresses/ports held in the given registers.
struct Nat {
    std::uint32_t type = kNatDnat;
    std::uint32_t family = 0;  // NFPROTO_IPV4 / NFPROTO_IPV6
    std::optional<std::uint32_t> reg_addr_min;
    std::optional<std::uint32_t> reg_addr_max;
    std::optional<std::uint32_t> reg_proto_min;
    std::optional<std::uint32_t> reg_proto_max;
    std::uint32_t flags = 0;
    friend bool operator==(const Nat&, const Nat&) = default;
};

/// "redir": redirect to the local machine, optionally to the ports held in registers.
struct Redir {
    std::optional<std::uint32_t> reg_proto_min;
    std::optional<std::uint32_t> reg_proto_max;
    std::uint32_t flags = 0;
    friend bool operator==(const Redir&, const Redir&) = default;
};

/// "tproxy": divert to a local socket at the address/port held in registers.
struct Tproxy {
    std::uint32_t family = 0;  // NFPROTO_IPV4 / NFPROTO_IPV6 / NFPROTO_UNSPEC (inet)
    std::optional<std::uint32_t> reg_addr;
    std::optional<std::uint32_t> reg_port;
    friend bool operator==(const Tproxy&, const Tproxy&) = default;
};

/// An x_tables extension name ("tcp", "DNAT"), inline. The kernel keeps them in
/// char name[XT_EXTENSION_MAXNAMELEN] (29 with the NUL, linux/netfilter/x_tables.h) and
/// nft_compat.c dumps that name, so a dumped one has at most 28 characters; the decoder turns a
/// longer one into Unknown. A std::string here made Match and Target the largest Expr
/// alternatives (64 bytes).
class XtName {
  public:
    static constexpr std::size_t kMaxLength = 28;  // XT_EXTENSION_MAXNAMELEN - 1

    constexpr XtName() = default;
    /// For literals and tests: throws std::length_error above kMaxLength (decoders use from()).
    explicit XtName(std::string_view name);
    XtName(const char* name) : XtName(std::string_view(name)) {}
    /// nullopt when name is longer than kMaxLength.
    [[nodiscard]] static std::optional<XtName> from(std::string_view name) noexcept;

    [[nodiscard]] std::string_view view() const noexcept;
    operator std::string_view() const noexcept { return view(); }
    [[nodiscard]] std::string str() const { return std::string(view()); }

    friend bool operator==(const XtName&, const XtName&) = default;
    friend bool operator==(const XtName& a, std::string_view b) noexcept { return a.view() == b; }
    friend bool operator==(const XtName& a, const char* b) noexcept {
        return a.view() == std::string_view(b);
    }
    friend std::ostream& operator<<(std::ostream& os, const XtName& n);

  private:
    // NUL-padded, no terminator at full length (no length byte: Match stays at 56 bytes).
    std::array<char, kMaxLength> chars_{};
};

/// "match" (x_tables compat, iptables-nft): NFTA_MATCH_NAME/REV/INFO (the xt blob, §2.7).
struct Match {
    XtName name;
    std::uint32_t rev = 0;
    Bytes info;
    friend bool operator==(const Match&, const Match&) = default;
};

/// "target" (x_tables compat): NFTA_TARGET_NAME/REV/INFO.
struct Target {
    XtName name;
    std::uint32_t rev = 0;
    Bytes info;
    friend bool operator==(const Target&, const Target&) = default;
};

/// "counter": packets and bytes (never reset by us: GETRULE_RESET is not used).
struct Counter {
    std::uint64_t packets = 0;
    std::uint64_t bytes = 0;
    friend bool operator==(const Counter&, const Counter&) = default;
};

/// libnftnl's name of a ct key ("state", "mark", ...), or the number.
[[nodiscard]] std::string ct_key_name(std::uint32_t key);

/// "ct": load a conntrack key into dreg, or (sreg set) set it.
struct Ct {
    std::uint32_t key = 0;
    std::optional<std::uint32_t> dreg;
    std::optional<std::uint32_t> sreg;
    std::optional<std::uint8_t> direction;
    friend bool operator==(const Ct&, const Ct&) = default;
};

/// Any other expression (log, limit, fib, masq, reject, dynset, exthdr, ...), or a known one whose
/// attributes did not make sense (why says what). Kept so that nothing is silently skipped: a
/// skipped `!=` or `ct state` changes a rule's meaning (style.md, google/nftables exprsFromBytes).
struct Unknown {
    std::string name;
    /// Empty for an expression we simply do not model. Always a string literal of the decoder
    /// (static storage): a view keeps Unknown within an Expr's 56-byte budget.
    std::string_view why;
    friend bool operator==(const Unknown&, const Unknown&) = default;
};

using Expr = std::variant<Payload,
                          Meta,
                          Cmp,
                          Range,
                          Lookup,
                          Bitwise,
                          Immediate,
                          Nat,
                          Redir,
                          Tproxy,
                          Match,
                          Target,
                          Counter,
                          Ct,
                          Unknown>;
// The decoded ruleset is mostly expressions (a DNAT rule has nine): keep the largest alternative
// (Lookup, Immediate, Match, Target: 56 bytes) plus the index within 64.
static_assert(sizeof(Expr) <= 64, "an Expr alternative grew past 56 bytes");

/// The expression's NFTA_EXPR_NAME ("payload", "cmp", ..., Unknown::name).
[[nodiscard]] std::string_view expr_name(const Expr& e);

// ---- objects ----

inline constexpr std::uint32_t kTableDormant = 1;  // NFT_TABLE_F_DORMANT

struct Table {
    std::uint8_t family = 0;
    std::string name;
    std::uint32_t flags = 0;
    std::uint64_t handle = 0;
    [[nodiscard]] bool dormant() const { return (flags & kTableDormant) != 0; }
    friend bool operator==(const Table&, const Table&) = default;
};

struct Hook {
    std::uint32_t hooknum = 0;
    std::int32_t priority = 0;
    friend bool operator==(const Hook&, const Hook&) = default;
};

struct Chain {
    std::uint8_t family = 0;
    std::string table;
    std::string name;
    std::uint64_t handle = 0;
    std::optional<Hook> hook;  // base chains only
    std::string type;          // "filter", "nat", "route" (base chains)
    std::optional<std::uint32_t> policy;
    std::uint32_t flags = 0;
    [[nodiscard]] bool is_base() const { return hook.has_value(); }
    friend bool operator==(const Chain&, const Chain&) = default;
};

struct Rule {
    std::uint8_t family = 0;
    std::string table;
    std::string chain;
    std::uint64_t handle = 0;
    std::optional<std::uint64_t> position;  // NFTA_RULE_POSITION: handle of the previous rule
    std::vector<Expr> exprs;
    // NFTA_RULE_USERDATA itself is not kept: the comment is all that is read from it.
    std::optional<std::string> comment;  // NFTNL_UDATA_RULE_COMMENT from NFTA_RULE_USERDATA
    friend bool operator==(const Rule&, const Rule&) = default;
};

// set flags (enum nft_set_flags)
inline constexpr std::uint32_t kSetAnonymous = 0x1;  // NFT_SET_ANONYMOUS
inline constexpr std::uint32_t kSetConstant = 0x2;   // NFT_SET_CONSTANT
inline constexpr std::uint32_t kSetInterval = 0x4;   // NFT_SET_INTERVAL
inline constexpr std::uint32_t kSetMap = 0x8;        // NFT_SET_MAP
inline constexpr std::uint32_t kSetTimeout = 0x10;   // NFT_SET_TIMEOUT
inline constexpr std::uint32_t kSetEval = 0x20;      // NFT_SET_EVAL
inline constexpr std::uint32_t kSetObject = 0x40;    // NFT_SET_OBJECT
inline constexpr std::uint32_t kSetConcat = 0x80;    // NFT_SET_CONCAT
// NFTA_SET_DATA_TYPE of a verdict map (nft_data_types NFT_DATA_VERDICT)
inline constexpr std::uint32_t kDataVerdict = 0xffffff00;

// set element flags (enum nft_set_elem_flags)
inline constexpr std::uint32_t kElemIntervalEnd = 0x1;  // NFT_SET_ELEM_INTERVAL_END
inline constexpr std::uint32_t kElemCatchall = 0x2;     // NFT_SET_ELEM_CATCHALL

struct SetElem {
    Bytes key;      // NFTA_SET_ELEM_KEY (empty for the catch-all element)
    Bytes key_end;  // NFTA_SET_ELEM_KEY_END (pipapo ranges, inclusive)
    std::uint32_t flags = 0;
    Bytes data;                      // data maps
    std::optional<Verdict> verdict;  // verdict maps
    [[nodiscard]] bool interval_end() const { return (flags & kElemIntervalEnd) != 0; }
    [[nodiscard]] bool catchall() const { return (flags & kElemCatchall) != 0; }
    friend bool operator==(const SetElem&, const SetElem&) = default;
};

struct Set {
    std::uint8_t family = 0;
    std::string table;
    std::string name;
    std::uint64_t handle = 0;
    std::uint32_t flags = 0;
    std::uint32_t key_type = 0;  // nft datatype id (concatenations: 6 bits per field)
    std::uint32_t key_len = 0;
    std::uint32_t data_type = 0;  // kDataVerdict for verdict maps
    std::uint32_t data_len = 0;
    std::optional<std::uint32_t> obj_type;
    std::vector<std::uint32_t> field_lengths;  // NFTA_SET_DESC_CONCAT (bytes; pipapo only)
    std::vector<SetElem> elements;             // from GETSETELEM
    [[nodiscard]] bool is_map() const { return (flags & kSetMap) != 0; }
    [[nodiscard]] bool is_interval() const { return (flags & kSetInterval) != 0; }
    [[nodiscard]] bool is_verdict_map() const { return is_map() && data_type == kDataVerdict; }
    friend bool operator==(const Set&, const Set&) = default;
};

/// NFT_MSG_NEWGEN (reply to GETGEN, and the event after every committed batch).
struct Generation {
    std::uint32_t id = 0;
    std::optional<std::uint32_t> proc_pid;
    std::string proc_name;
    friend bool operator==(const Generation&, const Generation&) = default;
};

/// One consistent dump (kernel.md §2.1): everything was read within generation genid.
struct Ruleset {
    std::uint32_t genid = 0;
    std::vector<Table> tables;
    std::vector<Chain> chains;
    std::vector<Rule> rules;  // in dump order: per chain, in rule order
    std::vector<Set> sets;    // with elements

    [[nodiscard]] const Table* find_table(std::uint8_t family, std::string_view table) const;
    [[nodiscard]] const Chain* find_chain(std::uint8_t family,
                                          std::string_view table,
                                          std::string_view chain) const;
    [[nodiscard]] const Set* find_set(std::uint8_t family,
                                      std::string_view table,
                                      std::string_view set) const;
    friend bool operator==(const Ruleset&, const Ruleset&) = default;
};

/// `nft --debug=netlink` notation (libnftnl's expression printers): "[ cmp eq reg 1 0x04030201 ]".
/// Used by tests to compare decoded rules with what nft itself printed for the same dump.
[[nodiscard]] std::string to_debug_string(const Expr& e);
/// "ip vipnat prerouting 7 6\n" followed by one "  [ ... ]\n" line per expression.
[[nodiscard]] std::string to_debug_string(const Rule& r);
/// "ip vipnat @name\n" followed by one "\telement ...\n" line per element (as nft prints sets).
[[nodiscard]] std::string to_debug_string(const Set& s);

}  // namespace vipportd::netlink::nft
