#pragma once
// Decoders from nf_tables reply/event messages to the plain values of nft_objects.hpp. Each takes
// the message payload (after the nlmsghdr): struct nfgenmsg { u8 nfgen_family; u8 version;
// be16 res_id; } followed by NFTA_* attributes (linux/netfilter/nfnetlink.h, nf_tables.h).
// Every integer attribute of nf_tables is big-endian (nla_put_be32/be64 in
// net/netfilter/nf_tables_api.c); strings are NUL-terminated.
//
// Errors: Errc::truncated for a header or attribute that overruns its buffer, Errc::malformed for
// a missing mandatory attribute or a value of the wrong size; details name the message kind, the
// attribute and its offset within the payload. A known expression with attributes that do not
// make sense decodes to Unknown{name, why} instead: the rule stays, marked as not understood.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "netlink/error.hpp"
#include "netlink/nft_objects.hpp"

namespace vipportd::netlink::nft {

inline constexpr std::size_t kNfgenmsgSize = 4;  // sizeof(struct nfgenmsg)

struct NfgenHeader {
    std::uint8_t family = 0;
    std::uint8_t version = 0;
    std::uint16_t res_id = 0;  // host order; nf_tables puts the low 16 bits of the genid here
};

/// NFT_MSG_* of an nf_tables message type ((NFNL_SUBSYS_NFTABLES << 8) | msg), nullopt for
/// messages of another nfnetlink subsystem (linux/netfilter/nfnetlink.h
/// NFNL_SUBSYS_ID/NFNL_MSG_TYPE).
[[nodiscard]] std::optional<std::uint16_t> nft_message(std::uint16_t nlmsg_type);
/// The nlmsg_type for an NFT_MSG_* value.
[[nodiscard]] std::uint16_t nft_nlmsg_type(std::uint16_t msg);

[[nodiscard]] Result<NfgenHeader> decode_nfgen_header(std::span<const std::uint8_t> payload);
/// NFT_MSG_NEWGEN: NFTA_GEN_ID (mandatory), NFTA_GEN_PROC_PID, NFTA_GEN_PROC_NAME.
[[nodiscard]] Result<Generation> decode_generation(std::span<const std::uint8_t> payload);
/// NFT_MSG_NEWTABLE: NFTA_TABLE_NAME (mandatory), FLAGS, HANDLE.
[[nodiscard]] Result<Table> decode_table(std::span<const std::uint8_t> payload);
/// NFT_MSG_NEWCHAIN: TABLE, NAME (mandatory), HANDLE, HOOK{HOOKNUM, PRIORITY}, TYPE, POLICY, FLAGS.
[[nodiscard]] Result<Chain> decode_chain(std::span<const std::uint8_t> payload);
/// NFT_MSG_NEWRULE: TABLE, CHAIN (mandatory), HANDLE, POSITION, EXPRESSIONS, USERDATA.
[[nodiscard]] Result<Rule> decode_rule(std::span<const std::uint8_t> payload);
/// decode_rule() into a Rule the caller owns (default-constructed; unspecified after an error):
/// a dump decodes straight into Ruleset::rules instead of moving every rule out of a Result.
[[nodiscard]] Result<void> decode_rule_into(std::span<const std::uint8_t> payload, Rule& out);
/// NFT_MSG_NEWSET: TABLE, NAME (mandatory), FLAGS, KEY_TYPE, KEY_LEN, DATA_TYPE, DATA_LEN,
/// OBJ_TYPE, HANDLE, DESC{CONCAT{ELEM{FIELD_LEN}}}.
[[nodiscard]] Result<Set> decode_set(std::span<const std::uint8_t> payload);

/// NFT_MSG_NEWSETELEM: the elements of one set (one message holds a batch of them).
struct SetElemList {
    std::uint8_t family = 0;
    std::string table;
    std::string set;
    std::vector<SetElem> elements;
};
[[nodiscard]] Result<SetElemList> decode_set_elems(std::span<const std::uint8_t> payload);

/// The value of NFTA_RULE_EXPRESSIONS: NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA }...
/// base_offset is added to the offsets named in errors.
[[nodiscard]] Result<std::vector<Expr>> decode_expressions(std::span<const std::uint8_t> list,
                                                           std::size_t base_offset = 0);

/// NFTNL_UDATA_RULE_COMMENT (type 0) from rule userdata TLVs { u8 type; u8 len; u8 value[len]; }
/// (libnftnl include/udata.h; nftables src/rule.c). nullopt when absent or malformed.
[[nodiscard]] std::optional<std::string> rule_comment_from_userdata(
    std::span<const std::uint8_t> userdata);

}  // namespace vipportd::netlink::nft
