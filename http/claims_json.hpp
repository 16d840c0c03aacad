#pragma once
// The body of GET /vipportd/v1/vips/{uuid-or-ip}/claims, also printed by `vipportd query --json`
// (README "Provenance"): compact JSON, ports as ranges where contiguous.
//
//   {"vip":{"uuid":"…","ip":"1.2.3.4","netns":""},
//    "snapshot":{"sequence":7,"taken":"2025-01-01T00:00:00Z"},
//    "protocols":{"TCP":{"used_ports":["22","80"],
//                        "claims":[{"ports":["22"],"certainty":"exact","scope":"0.0.0.0/0",
//                                   "socket":{…}},
//                                  {"ports":["80"],"certainty":"uncertain","reason":"…",
//                                   "scope":"1.2.3.4","rule":{…}}]}}}
//
// A socket claim: {"protocol","family","address","port","state","ifindex","device","uid",
// "inode","v6only","freebind","transparent","reuseport_sockets","process"}, where device and
// v6only are null when unknown and "process" ({"pid","name","argv0"}) is left out when the owner
// could not be read. A rule claim: {"source","family","table","chain","handle","kind","target",
// "comment","path"}, target and comment null when unknown or absent.

#include <span>
#include <string>

#include "agent/claims_report.hpp"

namespace vipportd::http {

/// One VIP's report.
[[nodiscard]] std::string claims_json(const agent::ClaimsReport& report);
/// Several ({"vips":[report, …]}), for `vipportd query --all --json`.
[[nodiscard]] std::string claims_json(std::span<const agent::ClaimsReport> reports);

}  // namespace vipportd::http
