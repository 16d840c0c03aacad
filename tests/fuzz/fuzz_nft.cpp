// libFuzzer target: arbitrary bytes as the concatenated reply messages of an nf_tables ruleset
// dump (NEWTABLE, NEWCHAIN, NEWRULE, NEWSET, NEWSETELEM, NEWGEN in any order), through every
// decoder into a Ruleset, then the interpreter and the debug printer. Must never crash, hang or
// read out of bounds; malformed messages must come back as errors.
//
// Seeds in corpus/nft/ are the replies of the dumps recorded in tests/fixtures/nft/*.txt, one
// file per fixture, in this format (NLMSG_DONE and ACKs left out).
#include <cstddef>
#include <cstdint>

#include <linux/netfilter/nf_tables.h>

#include "agent/nft_interpreter.hpp"
#include "netlink/nft_decode.hpp"
#include "netlink/nft_objects.hpp"
#include "netlink/transport.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace vipportd;
    namespace nft = netlink::nft;
    netlink::Dump dump;
    dump.data.assign(data, data + size);
    auto msgs = dump.messages();
    if (!msgs) {
        return 0;
    }
    nft::Ruleset rs;
    for (const auto& m : *msgs) {
        switch (nft::nft_message(m.type).value_or(0xffff)) {
            case NFT_MSG_NEWGEN:
                if (auto g = nft::decode_generation(m.payload)) {
                    rs.genid = g->id;
                }
                break;
            case NFT_MSG_NEWTABLE:
                if (auto t = nft::decode_table(m.payload)) {
                    rs.tables.push_back(std::move(*t));
                }
                break;
            case NFT_MSG_NEWCHAIN:
                if (auto c = nft::decode_chain(m.payload)) {
                    rs.chains.push_back(std::move(*c));
                }
                break;
            case NFT_MSG_NEWRULE:
                if (auto r = nft::decode_rule(m.payload)) {
                    rs.rules.push_back(std::move(*r));
                }
                break;
            case NFT_MSG_NEWSET:
                if (auto s = nft::decode_set(m.payload)) {
                    rs.sets.push_back(std::move(*s));
                }
                break;
            case NFT_MSG_NEWSETELEM:
                if (auto l = nft::decode_set_elems(m.payload)) {
                    for (auto& s : rs.sets) {
                        if (s.family == l->family && s.table == l->table && s.name == l->set) {
                            s.elements.insert(s.elements.end(), l->elements.begin(),
                                              l->elements.end());
                        }
                    }
                }
                break;
            default:
                break;
        }
    }
    for (const auto& r : rs.rules) {
        [[maybe_unused]] auto text = nft::to_debug_string(r);
    }
    for (const auto& s : rs.sets) {
        [[maybe_unused]] auto text = nft::to_debug_string(s);
    }
    // Smaller limits than the daemon's: a fuzz input must finish in milliseconds.
    agent::NftInterpretLimits limits;
    limits.max_steps = 20000;
    limits.max_split = 2000;
    [[maybe_unused]] auto claims = agent::interpret_nft(rs, limits);
    return 0;
}
