#include "netlink/nft_request.hpp"

#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include "netlink/bytes.hpp"
#include "netlink/nft_decode.hpp"

namespace vipportd::netlink::nft {

namespace {

std::vector<std::uint8_t> header(std::uint16_t msg, std::uint16_t flags, std::uint8_t family) {
    std::vector<std::uint8_t> out(kNlmsghdrSize + kNfgenmsgSize, 0);
    nlmsghdr h{};
    h.nlmsg_len = static_cast<std::uint32_t>(out.size());
    h.nlmsg_type = nft_nlmsg_type(msg);
    h.nlmsg_flags = flags;
    store(std::span<std::uint8_t>(out), 0, h);
    out[kNlmsghdrSize] = family;            // nfgen_family
    out[kNlmsghdrSize + 1] = NFNETLINK_V0;  // version; res_id stays 0
    return out;
}

// Appends an NLA_STRING attribute (with its NUL and padding) and updates nlmsg_len.
void put_string(std::vector<std::uint8_t>& msg, std::uint16_t type, std::string_view value) {
    const std::size_t len = kNlattrSize + value.size() + 1;
    nlattr a{};
    a.nla_len = static_cast<std::uint16_t>(len);
    a.nla_type = type;
    const std::size_t at = msg.size();
    msg.resize(at + align4(len), 0);
    store(std::span<std::uint8_t>(msg), at, a);
    std::copy(value.begin(), value.end(),
              msg.begin() + static_cast<std::ptrdiff_t>(at + kNlattrSize));
    store(std::span<std::uint8_t>(msg), 0, static_cast<std::uint32_t>(msg.size()));
}

}  // namespace

std::vector<std::uint8_t> build_getgen_request() {
    return header(NFT_MSG_GETGEN, NLM_F_REQUEST | NLM_F_ACK, kFamilyUnspec);
}

std::vector<std::uint8_t> build_dump_request(std::uint16_t msg) {
    return header(msg, NLM_F_REQUEST | NLM_F_DUMP, kFamilyUnspec);
}

std::vector<std::uint8_t> build_getsetelem_request(std::uint8_t family,
                                                   std::string_view table,
                                                   std::string_view set) {
    auto out = header(NFT_MSG_GETSETELEM, NLM_F_REQUEST | NLM_F_DUMP, family);
    put_string(out, NFTA_SET_ELEM_LIST_TABLE, table);
    put_string(out, NFTA_SET_ELEM_LIST_SET, set);
    return out;
}

}  // namespace vipportd::netlink::nft
