// The VIP registration API (README "VIP registration"): vipportd's own endpoints, authenticated
// like usedports; errors are ZStack-shaped JSON bodies with a meaningful status (400 SYS.1007,
// 404 SYS.1003, 409/503 SYS.1006, 500 SYS.1000).
//
//   GET|HEAD /vipportd/v1/vips          every VIP: origin, conflicts, presence per namespace
//   GET|HEAD /vipportd/v1/vips/{uuid}   one of them
//   PUT      /vipportd/v1/vips/{uuid}   {"ip":"192.0.2.10","netns":"blue"}: 201 created,
//                                       200 replaced or unchanged (idempotent)
//   DELETE   /vipportd/v1/vips/{uuid}   204; 404 unknown; 409 defined by a file
//
// Presence comes from a fresh snapshot of each VIP's namespace (async_fresh_many), so an
// address removed a moment ago is already absent.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "agent/address_table.hpp"
#include "agent/vip_catalog.hpp"
#include "http/api.hpp"
#include "http/routes.hpp"
#include "http/zstack.hpp"

namespace vipportd::http {

namespace bhttp = boost::beast::http;
namespace json = boost::json;

namespace {

// zstack-api.md §7.
constexpr std::string_view sys_1000 = "An internal error happened in system";
constexpr std::string_view sys_1003 = "A resource can not be found";
constexpr std::string_view sys_1006 = "An operation failed";
constexpr std::string_view sys_1007 = "One or more API argument is invalid";

Response bad_request(const Reply& reply, std::string details) {
    return reply.error(bhttp::status::bad_request,
                       zstack::ApiError{"SYS.1007", sys_1007, std::move(details)});
}

Response unavailable(const Reply& reply, std::string details) {
    return reply.error(bhttp::status::service_unavailable,
                       zstack::ApiError{"SYS.1006", sys_1006, std::move(details)});
}

/// RFC 3986 §2.3 unreserved characters stay, everything else is %XX (a Location header).
std::string percent_encode(std::string_view s) {
    constexpr std::string_view hex = "0123456789ABCDEF";
    std::string out;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out += ch;
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 0xf];
        }
    }
    return out;
}

/// The registration fields of v (no presence).
json::object vip_json(const agent::CatalogVip& v) {
    json::object o;
    o["uuid"] = v.entry.uuid;
    o["ip"] = v.entry.ip.to_string();
    o["netns"] = v.entry.netns;
    o["origin"] = std::string(agent::to_string(v.origin));
    o["source"] = v.source;
    o["active"] = v.active;
    if (!v.conflict.empty()) {
        o["conflict"] = v.conflict;
    }
    return o;
}

/// Adds present/state/interface (and presence_error when unknown) from snap.
void add_presence(json::object& o, const agent::CatalogVip& v, const agent::SnapshotPtr& snap) {
    std::string why = "no snapshot";
    std::optional<agent::Presence> p;
    if (snap) {
        p = agent::presence_in(*snap, v.entry.ip, &why);
    }
    if (!p) {
        o["present"] = nullptr;
        o["state"] = "unknown";
        o["interface"] = nullptr;
        o["presence_error"] = why;
        return;
    }
    o["present"] = p->present();
    o["state"] = std::string(agent::to_string(p->state));
    if (p->interface.empty()) {
        o["interface"] = nullptr;
    } else {
        o["interface"] = p->interface;
    }
}

json::object registration_json(const agent::VipCatalog& catalog) {
    json::object r;
    const auto file = catalog.store_file();
    r["enabled"] = !file.empty();
    r["file"] = file.empty() ? json::value(nullptr) : json::value(file);
    if (const auto problem = catalog.store_problem(); problem && !file.empty()) {
        r["error"] = *problem;
    } else {
        r["error"] = nullptr;
    }
    return r;
}

/// Answers with vips and their presence, one fresh snapshot per distinct namespace.
void answer_with_presence(ApiCall call,
                          Router::Done done,
                          std::vector<agent::CatalogVip> vips,
                          bool single) {
    std::vector<std::string> netns;
    std::map<std::string, std::size_t> index;  // namespace -> position in netns
    for (const auto& v : vips) {
        if (index.emplace(v.entry.netns, netns.size()).second) {
            netns.push_back(v.entry.netns);
        }
    }
    auto render = [reply = call.reply, deps = call.deps, vips = std::move(vips), index, single,
                   done = std::move(done)](const std::vector<agent::SnapshotPtr>& snaps) {
        Response res;
        try {
            json::array list;
            for (const auto& v : vips) {
                const auto at = index.at(v.entry.netns);
                auto o = vip_json(v);
                add_presence(o, v, at < snaps.size() ? snaps[at] : nullptr);
                list.emplace_back(std::move(o));
            }
            if (single) {
                res = reply.json(bhttp::status::ok, json::serialize(list.at(0)));
            } else {
                json::object body;
                body["vips"] = std::move(list);
                body["registration"] = registration_json(*deps->vips);
                res = reply.json(bhttp::status::ok, json::serialize(body));
            }
        } catch (const std::exception& e) {
            res = reply.error(bhttp::status::internal_server_error,
                              zstack::ApiError{"SYS.1000", sys_1000, e.what()});
        }
        done(std::move(res));
    };
    if (netns.empty()) {
        return render({});
    }
    call.deps->snapshots->async_fresh_many(
        std::move(netns),
        [render = std::move(render)](std::vector<agent::SnapshotPtr> snaps) { render(snaps); });
}

/// The registration dependency, or an answer saying it is missing.
const std::shared_ptr<agent::VipCatalog>* catalog_of(const ApiCall& call, Router::Done& done) {
    if (!call.deps->vips) {
        done(unavailable(call.reply, "VIP registration is not available in this server"));
        return nullptr;
    }
    return &call.deps->vips;
}

/// PUT body -> entry, or a precise 400 text.
std::optional<agent::VipEntry> parse_put(const std::string& uuid,
                                         std::string_view body,
                                         std::string& error) {
    constexpr std::string_view shape = R"(expected a JSON object {"ip":"<address>"} )"
                                       R"(or {"ip":"<address>","netns":"<name or path>"})";
    if (body.empty()) {
        error = "missing body (" + std::string(shape) + ")";
        return std::nullopt;
    }
    boost::system::error_code ec;
    const json::value root = json::parse(body, ec);
    if (ec) {
        error = "body is not valid JSON (" + ec.message() + "; " + std::string(shape) + ")";
        return std::nullopt;
    }
    const auto* obj = root.if_object();
    if (obj == nullptr) {
        error = "body is not a JSON object (" + std::string(shape) + ")";
        return std::nullopt;
    }
    agent::VipEntry e;
    e.uuid = uuid;
    bool has_ip = false;
    for (const auto& kv : *obj) {
        const std::string key(kv.key());
        const auto* s = kv.value().if_string();
        if (key != "ip" && key != "netns" && key != "uuid") {
            error = "unknown field " + json::serialize(json::value(json::string(key))) +
                    " (expected ip and optionally netns)";
            return std::nullopt;
        }
        if (key == "netns" && kv.value().is_null()) {
            continue;  // the daemon's own namespace, as when netns is left out
        }
        if (s == nullptr) {
            error = "field " + key + ": expected a string, got " + json::serialize(kv.value());
            return std::nullopt;
        }
        const std::string_view value(s->data(), s->size());
        if (key == "uuid") {
            // Allowed so that a listed object can be sent back, but it must name this VIP.
            if (value != uuid) {
                error = "field uuid: \"" + std::string(value) + "\" differs from the path's \"" +
                        uuid + "\"";
                return std::nullopt;
            }
        } else if (key == "ip") {
            auto ip = netlink::InetAddress::parse(value);
            if (!ip) {
                error = "field ip: expected an IPv4 or IPv6 address (no prefix length), got \"" +
                        std::string(value) + "\"";
                return std::nullopt;
            }
            if (auto why = agent::vip_ip_problem(*ip)) {
                error = "field ip: " + *why;
                return std::nullopt;
            }
            e.ip = *ip;
            has_ip = true;
        } else {
            if (auto why = agent::vip_netns_problem(value)) {
                error = "field netns: " + *why + " (leave netns out for the daemon's namespace)";
                return std::nullopt;
            }
            e.netns = std::string(value);
        }
    }
    if (!has_ip) {
        error = "field ip: missing (" + std::string(shape) + ")";
        return std::nullopt;
    }
    return e;
}

/// The uuid path segment, or a 400 answered.
std::optional<std::string> uuid_of(const ApiCall& call, Router::Done& done) {
    std::string uuid = call.path_params.at(0);
    if (auto why = agent::vip_uuid_problem(uuid)) {
        done(bad_request(call.reply, "path parameter uuid: " + *why));
        return std::nullopt;
    }
    return uuid;
}

Response outcome_response(const Reply& reply, const agent::VipCatalog::Outcome& o) {
    using Kind = agent::VipCatalog::Outcome::Kind;
    switch (o.kind) {
        case Kind::created:
        case Kind::replaced:
        case Kind::unchanged: {
            const bool created = o.kind == Kind::created;
            auto res = reply.json(created ? bhttp::status::created : bhttp::status::ok,
                                  json::serialize(vip_json(*o.vip)));
            if (created) {
                res.set(bhttp::field::location,
                        "/vipportd/v1/vips/" + percent_encode(o.vip->entry.uuid));
            }
            return res;
        }
        case Kind::removed: {
            auto res = reply.make(bhttp::status::no_content, application_json, std::string());
            // 204 has no content, and no Content-Length either (RFC 9110 §15.3.5, §8.6).
            res.erase(bhttp::field::content_type);
            res.erase(bhttp::field::content_length);
            return res;
        }
        case Kind::not_found:
            return reply.error(bhttp::status::not_found,
                               zstack::ApiError{"SYS.1003", sys_1003, o.message});
        case Kind::conflict:
            return reply.error(bhttp::status::conflict,
                               zstack::ApiError{"SYS.1006", sys_1006, o.message});
        case Kind::unavailable:
            return unavailable(reply, o.message);
        case Kind::failed:
            break;
    }
    return reply.error(bhttp::status::internal_server_error,
                       zstack::ApiError{"SYS.1000", sys_1000, "could not save: " + o.message});
}

}  // namespace

void answer_vips_list(ApiCall call, Router::Done done) {
    const auto* catalog = catalog_of(call, done);
    if (catalog == nullptr) {
        return;
    }
    auto vips = (*catalog)->list();
    answer_with_presence(std::move(call), std::move(done), std::move(vips), false);
}

void answer_vip_get(ApiCall call, Router::Done done) {
    const auto* catalog = catalog_of(call, done);
    if (catalog == nullptr) {
        return;
    }
    const std::string& uuid = call.path_params.at(0);
    std::vector<agent::CatalogVip> one;
    for (auto& v : (*catalog)->list()) {
        // The active definition: a file's VIP comes before a registration it shadows.
        if (v.entry.uuid == uuid) {
            one.push_back(std::move(v));
            break;
        }
    }
    if (one.empty()) {
        return done(call.reply.error(
            bhttp::status::not_found,
            zstack::ApiError{"SYS.1003", sys_1003, "uuid \"" + uuid + "\" is not a known VIP"}));
    }
    answer_with_presence(std::move(call), std::move(done), std::move(one), true);
}

void answer_vip_put(ApiCall call, Router::Done done) {
    const auto* catalog = catalog_of(call, done);
    if (catalog == nullptr) {
        return;
    }
    const auto uuid = uuid_of(call, done);
    if (!uuid) {
        return;
    }
    std::string error;
    auto entry = parse_put(*uuid, call.body, error);
    if (!entry) {
        return done(bad_request(call.reply, std::move(error)));
    }
    (*catalog)->async_put(std::move(*entry),
                          [reply = call.reply, done = std::move(done)](
                              agent::VipCatalog::Outcome o) { done(outcome_response(reply, o)); });
}

void answer_vip_delete(ApiCall call, Router::Done done) {
    const auto* catalog = catalog_of(call, done);
    if (catalog == nullptr) {
        return;
    }
    const auto uuid = uuid_of(call, done);
    if (!uuid) {
        return;
    }
    (*catalog)->async_remove(
        *uuid, [reply = call.reply, done = std::move(done)](agent::VipCatalog::Outcome o) {
            done(outcome_response(reply, o));
        });
}

}  // namespace vipportd::http
