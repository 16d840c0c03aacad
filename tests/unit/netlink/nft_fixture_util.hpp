#pragma once
// Helpers for the nf_tables fixtures (tests/fixtures/nft/*.txt): their headers carry the output
// of `nft --debug=netlink list ruleset` for the recorded ruleset as "| " lines; these compare the
// rules and sets our decoder produced from the recorded bytes with libnftnl's own decoding.
// Shared by the unit tests (replay) and the netns recorder (live).

#include <map>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "netlink/nft_objects.hpp"

namespace vipportd::test::nft {

inline std::string trim_right(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
        s.pop_back();
    }
    return s;
}

inline std::vector<std::string> split_lines(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    std::string line;
    while (std::getline(in, line)) {
        out.push_back(trim_right(line));
    }
    return out;
}

/// nft's debug output from a fixture header: block header line ("ip nat PREROUTING 3 2",
/// "ip vipnat @webports") -> its "[ ... ]" / "element ..." lines (userdata lines left out).
inline std::map<std::string, std::vector<std::string>> debug_blocks(
    const std::vector<std::string>& header) {
    std::map<std::string, std::vector<std::string>> out;
    std::string current;
    for (const auto& h : header) {
        if (h.rfind("| ", 0) != 0) {
            continue;
        }
        const std::string line = h.substr(2);
        if (trim_right(line).empty() || line.rfind("  userdata", 0) == 0) {
            continue;
        }
        if (line[0] != ' ' && line[0] != '\t') {
            current = trim_right(line);
            out[current];
        } else {
            out[current].push_back(trim_right(line));
        }
    }
    return out;
}

/// Every decoded rule and set as nft printed it: same expressions in the same order with the
/// same registers and data, same set elements. Unknown expressions only need the right name.
/// Returns the number of rules compared.
inline std::size_t expect_matches_nft(const netlink::nft::Ruleset& rs,
                                      const std::vector<std::string>& header) {
    const auto blocks = debug_blocks(header);
    std::size_t compared = 0;
    for (const auto& r : rs.rules) {
        const auto mine = split_lines(netlink::nft::to_debug_string(r));
        const auto it = blocks.find(mine.front());
        if (it == blocks.end()) {
            ADD_FAILURE() << "nft printed no rule " << mine.front();
            continue;
        }
        if (it->second.size() != r.exprs.size()) {
            ADD_FAILURE() << mine.front() << ": nft printed " << it->second.size()
                          << " expressions, decoded " << r.exprs.size();
            continue;
        }
        for (std::size_t i = 0; i < r.exprs.size(); ++i) {
            if (const auto* u = std::get_if<netlink::nft::Unknown>(&r.exprs[i])) {
                EXPECT_EQ(it->second[i].rfind("[ " + u->name + " ", 0), 0U)
                    << mine.front() << ": " << it->second[i];
            } else {
                EXPECT_EQ(mine[i + 1], it->second[i]) << mine.front();
            }
        }
        ++compared;
    }
    for (const auto& s : rs.sets) {
        const auto mine = split_lines(netlink::nft::to_debug_string(s));
        const auto it = blocks.find(mine.front());
        if (it == blocks.end()) {
            ADD_FAILURE() << "nft printed no set " << mine.front();
            continue;
        }
        const std::vector<std::string> elems(mine.begin() + 1, mine.end());
        EXPECT_THAT(elems, testing::UnorderedElementsAreArray(it->second)) << mine.front();
    }
    return compared;
}

}  // namespace vipportd::test::nft
