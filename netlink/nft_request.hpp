#pragma once
// Request builders for the nf_tables dump (kernel.md §2.1): complete netlink messages as bytes,
// nlmsg_seq and nlmsg_pid left 0 for the transport to stamp.
//
//   nlmsghdr { len, type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_x, flags, seq 0, pid 0 }
//   nfgenmsg { nfgen_family, version = NFNETLINK_V0, res_id = 0 }
//   [attributes]
//
// (nftnl_nlmsg_build_hdr() in libnftnl builds the same header.)

#include <cstdint>
#include <string_view>
#include <vector>

namespace vipportd::netlink::nft {

/// NFT_MSG_GETGEN, AF_UNSPEC, NLM_F_REQUEST | NLM_F_ACK. The ACK matters: the reply to a
/// non-dump request has no NLMSG_DONE, so without it a blocking reader waits forever (§2.1).
[[nodiscard]] std::vector<std::uint8_t> build_getgen_request();

/// NFT_MSG_GETTABLE / GETCHAIN / GETRULE / GETSET with NLM_F_REQUEST | NLM_F_DUMP for every
/// family (NFPROTO_UNSPEC). msg must be one of those four; never GETRULE_RESET (it resets
/// counters, §2.1).
[[nodiscard]] std::vector<std::uint8_t> build_dump_request(std::uint16_t msg);

/// NFT_MSG_GETSETELEM dump of one set: its family, NFTA_SET_ELEM_LIST_TABLE and _SET
/// (nftnl_set_elems_nlmsg_build_payload()). Names longer than NFT_NAME_MAXLEN are sent as given;
/// the kernel answers ENAMETOOLONG/ENOENT.
[[nodiscard]] std::vector<std::uint8_t> build_getsetelem_request(std::uint8_t family,
                                                                 std::string_view table,
                                                                 std::string_view set);

}  // namespace vipportd::netlink::nft
