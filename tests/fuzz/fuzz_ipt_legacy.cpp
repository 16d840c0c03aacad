// Fuzz target: legacy iptables entries blob -> walker -> interpreter (and, through it, the xt
// match/target decoders).
//
// Input: byte 0 selects the family (bit 0: 0 = IPv4 ipt_entry, 1 = IPv6 ip6t_entry), bytes 1-84
// are a struct ipt_getinfo as IPT_SO_GET_INFO returns it, the rest is the entries blob. The info's
// size is overwritten with the blob's length so that inputs get past that first check. Seeds in
// corpus/ipt_legacy/ are the tables recorded in tests/fixtures/ipt/*.txt in this format (one file
// per family and table).
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "agent/ipt_legacy_source.hpp"
#include "netlink/ipt_legacy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace ipt = vipportd::netlink::ipt;
    using vipportd::netlink::Family;
    if (size < 1 + ipt::kGetInfoSize) {
        return 0;
    }
    const Family f = (data[0] & 1) != 0 ? Family::v6 : Family::v4;
    auto info = ipt::decode_getinfo(std::span(data + 1, ipt::kGetInfoSize));
    if (!info) {
        return 0;
    }
    std::vector<std::uint8_t> entries(data + 1 + ipt::kGetInfoSize, data + size);
    info->size = static_cast<std::uint32_t>(entries.size());
    ipt::clear_counters(f, entries);
    auto table = ipt::parse_ipt_blob(f, *info, entries);
    if (!table) {
        return 0;
    }
    // Both interpreted tables, whatever name the input carries.
    for (const char* name : {"nat", "mangle"}) {
        table->name = name;
        [[maybe_unused]] auto claims = vipportd::agent::interpret_ipt_table(*table);
    }
    return 0;
}
