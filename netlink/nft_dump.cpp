#include "netlink/nft_dump.hpp"

#include <cerrno>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include <linux/netfilter/nf_tables.h>

#include "netlink/bytes.hpp"
#include "netlink/nft_decode.hpp"
#include "netlink/nft_request.hpp"

namespace vipportd::netlink::nft {

namespace {

// Why an attempt has to be thrown away (kernel.md §2.1 retry rules).
struct Retry {
    std::string why;
};

template <class T>
using Step = std::variant<T, Retry, Error>;

Error named(const Error& e, const std::string& step) {
    // A kernel error is fully described by the step and its errno ("nf_tables: GETGEN:
    // Operation not permitted"); other errors keep their own detail.
    if (e.code == Errc::kernel) {
        return Error{e.code, e.sys_errno, "nf_tables: " + step};
    }
    return Error{e.code, e.sys_errno, "nf_tables: " + step + ": " + e.detail};
}

Result<Generation> generation_from(const Dump& dump) {
    auto msgs = dump.messages();
    if (!msgs) {
        return msgs.error();
    }
    for (const auto& m : *msgs) {
        if (nft_message(m.type) == NFT_MSG_NEWGEN) {
            return decode_generation(m.payload);
        }
    }
    return Error::of(Errc::malformed, "no NEWGEN message in the reply");
}

// Runs one dump request and decodes every reply message of the expected type with decode.
// Messages must carry res_id == genid & 0xffff.
//
// The reply is streamed (Transport::exchange_each) instead of collected: a 10,000-rule dump is
// then decoded from the receive buffer as it arrives, never copied into one growing Dump and a
// message index first. The outcome is the one the collected form gave: a transport error first,
// then NLM_F_DUMP_INTR (known only at the end), then the first message that failed; messages
// after a failure are drained but not decoded.
template <class Decode>
Step<bool> run_dump(Transport& transport,
                    const std::vector<std::uint8_t>& request,
                    const std::string& step,
                    std::uint16_t expected_msg,
                    std::uint32_t genid,
                    Decode&& decode) {
    std::optional<Step<bool>> failed;
    std::size_t index = 0;
    const MessageSink sink = [&](const RawMessage& m) -> Result<void> {
        if (failed) {
            return {};
        }
        const auto msg = nft_message(m.header.nlmsg_type);
        if (msg != expected_msg) {
            failed = named(
                Error::of(Errc::unexpected, "reply message " + std::to_string(index) +
                                                " has type " + std::to_string(m.header.nlmsg_type)),
                step);
            return {};
        }
        auto hdr = decode_nfgen_header(m.payload);
        if (!hdr) {
            failed = named(hdr.error(), step);
            return {};
        }
        // nfnl_msg_put(..., nft_base_seq(net)) stamps every reply with the generation it was
        // read in (net/netfilter/nf_tables_api.c).
        if (hdr->res_id != (genid & 0xffffU)) {
            failed = Retry{step + " message " + std::to_string(index) + " from generation " +
                           std::to_string(hdr->res_id) + " (res_id), dump started in " +
                           std::to_string(genid)};
            return {};
        }
        if (auto r = decode(m.payload); !r) {
            Error e = r.error();
            e.detail = "message " + std::to_string(index) + ": " + e.detail;
            failed = named(e, step);
            return {};
        }
        ++index;
        return {};
    };
    auto interrupted = transport.exchange_each(request, sink);
    if (!interrupted) {
        return named(interrupted.error(), step);
    }
    if (*interrupted) {
        return Retry{step + " dump interrupted (NLM_F_DUMP_INTR)"};
    }
    if (failed) {
        return std::move(*failed);
    }
    return true;
}

Step<Ruleset> attempt(Transport& transport, const DumpOptions& options) {
    auto gen = get_generation(transport);
    if (!gen) {
        return gen.error();
    }
    Ruleset rs;
    rs.genid = gen->id;
    if (options.expected_rules > 0) {
        // ~3% headroom for rules added since: past it the vector grows by doubling as usual.
        rs.rules.reserve(options.expected_rules + options.expected_rules / 32 + 8);
    }

    auto collect = [&](std::uint16_t get, std::uint16_t reply, const char* step, auto& out,
                       auto decode) -> std::optional<Step<Ruleset>> {
        auto r = run_dump(transport, build_dump_request(get), step, reply, rs.genid,
                          [&](std::span<const std::uint8_t> p) -> Result<void> {
                              auto v = decode(p);
                              if (!v) {
                                  return v.error();
                              }
                              out.push_back(std::move(*v));
                              return {};
                          });
        if (auto* retry = std::get_if<Retry>(&r)) {
            return Step<Ruleset>{std::move(*retry)};
        }
        if (auto* err = std::get_if<Error>(&r)) {
            return Step<Ruleset>{std::move(*err)};
        }
        return std::nullopt;
    };
    if (auto s = collect(NFT_MSG_GETTABLE, NFT_MSG_NEWTABLE, "GETTABLE", rs.tables, decode_table)) {
        return std::move(*s);
    }
    if (auto s = collect(NFT_MSG_GETCHAIN, NFT_MSG_NEWCHAIN, "GETCHAIN", rs.chains, decode_chain)) {
        return std::move(*s);
    }
    {
        // Rules are decoded in place (decode_rule_into): the bulk of a dump, each rule ~200
        // bytes plus its expressions, so no extra move per rule out of a Result.
        auto r =
            run_dump(transport, build_dump_request(NFT_MSG_GETRULE), "GETRULE", NFT_MSG_NEWRULE,
                     rs.genid, [&](std::span<const std::uint8_t> p) -> Result<void> {
                         auto& rule = rs.rules.emplace_back();
                         if (auto d = decode_rule_into(p, rule); !d) {
                             rs.rules.pop_back();
                             return d.error();
                         }
                         return {};
                     });
        if (auto* retry = std::get_if<Retry>(&r)) {
            return std::move(*retry);
        }
        if (auto* err = std::get_if<Error>(&r)) {
            return std::move(*err);
        }
    }
    if (auto s = collect(NFT_MSG_GETSET, NFT_MSG_NEWSET, "GETSET", rs.sets, decode_set)) {
        return std::move(*s);
    }

    for (auto& set : rs.sets) {
        const std::string step =
            "GETSETELEM " + family_name(set.family) + " " + set.table + " " + set.name;
        auto r = run_dump(
            transport, build_getsetelem_request(set.family, set.table, set.name), step,
            NFT_MSG_NEWSETELEM, rs.genid, [&](std::span<const std::uint8_t> p) -> Result<void> {
                auto l = decode_set_elems(p);
                if (!l) {
                    return l.error();
                }
                if (l->table != set.table || l->set != set.name) {
                    return Error::of(Errc::unexpected, "elements of " + l->table + " " + l->set);
                }
                for (auto& e : l->elements) {
                    set.elements.push_back(std::move(e));
                }
                return {};
            });
        if (auto* err = std::get_if<Error>(&r)) {
            // The set was deleted after GETSET: the generation moved, start over.
            if (err->code == Errc::kernel && err->sys_errno == ENOENT) {
                return Retry{step + ": set vanished (ENOENT)"};
            }
            return std::move(*err);
        }
        if (auto* retry = std::get_if<Retry>(&r)) {
            return std::move(*retry);
        }
    }

    auto end = get_generation(transport);
    if (!end) {
        return end.error();
    }
    if (end->id != rs.genid) {
        return Retry{"generation moved from " + std::to_string(rs.genid) + " to " +
                     std::to_string(end->id) + " during the dump"};
    }
    return rs;
}

}  // namespace

Result<Generation> get_generation(Transport& transport) {
    auto dump = transport.exchange(build_getgen_request());
    if (!dump) {
        return named(dump.error(), "GETGEN");
    }
    auto gen = generation_from(*dump);
    if (!gen) {
        return named(gen.error(), "GETGEN");
    }
    return gen;
}

Result<Ruleset> dump_ruleset(Transport& transport, const DumpOptions& options) {
    const int attempts = options.max_attempts < 1 ? 1 : options.max_attempts;
    std::string last;
    for (int i = 0; i < attempts; ++i) {
        auto step = attempt(transport, options);
        if (auto* rs = std::get_if<Ruleset>(&step)) {
            return std::move(*rs);
        }
        if (auto* err = std::get_if<Error>(&step)) {
            return std::move(*err);
        }
        last = std::get<Retry>(step).why;
    }
    return Error::of(Errc::interrupted, "nf_tables: ruleset changed during each of " +
                                            std::to_string(attempts) +
                                            " dump attempts (last: " + last + ")");
}

}  // namespace vipportd::netlink::nft
