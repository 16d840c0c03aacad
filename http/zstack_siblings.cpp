// ZStack's siblings of usedports (issue 6): every VIP in one poll, and the two port-availability
// APIs of ZStack's VIP plugin, answered from the kernel's truth (Snapshot::used_ports, the same
// set usedports lists).
//
//   GET|HEAD /zstack/v1/vips/usedports?protocol=TCP|UDP                     (vipportd's batch)
//   GET|HEAD /zstack/v1/vips/{vipUuid}/check-port-availability?port=N&protocolType=TCP|UDP
//   GET|HEAD /zstack/v1/vips/{vipUuid}/get-port-availability?protocolType=TCP|UDP&start=N&limit=M
//
// The router has already settled path, method, Authorization format, repeated parameters,
// X-Job-UUID and the session (vipportd's order, zstack-api.md §17). What follows reproduces the
// rest of ZStack's processing, in ZStack's order, from zstackio/zstack 5a29293bd5:
//
// 1. RestServer.handleApi converts each query value of an int/Integer field of the message with
//    TypeUtils.stringToValue (Double.valueOf(v).intValue()); a NumberFormatException escapes to
//    RestServer.handle's catch (Throwable) and is answered 500, plain text, its message
//    (zstack:rest/src/main/java/org/zstack/rest/RestServer.java, queryParameterToApiFieldValue;
//    zstack:utils/src/main/java/org/zstack/utils/TypeUtils.java). Those fields are `port`
//    (APICheckVipPortAvailabilityMsg) and `start`, `limit` (inherited from
//    zstack:header/src/main/java/org/zstack/header/message/APIGetMessage.java, defaults 0 and
//    1000, no @APIParam, so never range-checked), for both messages. ZStack converts them in the
//    HashMap order of the query parameter names: port, then start and limit in the order the query
//    string gives them (one bucket). vipportd does port, start, limit: only a request with both
//    start and limit malformed, limit first, gets the other name in its message.
// 2. ApiParamValidator runs the @APIParam checks field by field in the order of
//    APIMessage.apiParams, a HashMap keyed by field name (zstack:header/…/message/APIMessage.java
//    collectApiParams). With Java's String.hashCode and a 16-bucket table that order is
//      APICheckVipPortAvailabilityMsg: port (5), vipUuid (6), limit/start (8), tags (9),
//                                      protocolType (11)
//      APIGetVipAvailablePortMsg:      vipUuid (6), limit/start (8), tags (9), protocolType (11)
//    (the same computation gives APIGetVipUsedPortsMsg's protocol-before-uuid of §5.1). Fields:
//    `@APIParam(numberRange = {1, 65535}) int port` (a primitive: a missing port is 0, so it fails
//    the range check, never "mandatory"), `@APIParam(resourceType = VipVO.class) String vipUuid`
//    (SYS.1003 from PortApiValidator), `@APIParam(validValues = {"TCP", "UDP"}) String
//    protocolType` (zstack:plugin/vip/src/main/java/org/zstack/network/service/vip/
//    APICheckVipPortAvailabilityMsg.java, APIGetVipAvailablePortMsg.java). Texts: http/zstack.hpp.
//    vipportd accepts protocolType in any case and answers in upper case, like usedports' protocol
//    (§17); the VIP may be a literal address, like usedports' uuid.
// 3. VipManagerImpl.handle (zstack:plugin/vip/…/vip/VipManagerImpl.java): check answers whether
//    the port lies outside every used range; get lists 1-65535 minus the used ports and returns
//    getFreePortListPage(list, start, limit): [] when the list is empty or start >= its size,
//    else subList(start, min(start + limit, size)), whose JDK 8 range checks throw for a negative
//    start ("fromIndex = -1") or a negative limit ("fromIndex(0) > toIndex(-1)"); @MessageSafe
//    turns that into 503 SYS.1000 with the exception's message, reproduced here. One deliberate
//    difference: ZStack adds start + limit in 32-bit ints, so e.g. start=1&limit=2147483647
//    overflows and fails with SYS.1000; vipportd adds in 64 bits and returns the rest of the list,
//    the only reading such a request can have.
//    ZStack answers "no port available" for a VIP used by EIP or a performance-exclusive SLB; in
//    the kernel that VIP has a whole-IP DNAT rule, which claims every port, so the same answer
//    follows from the used ports.
//
// The batch (no ZStack counterpart: ZStack would route /v1/vips/usedports to its VIP query API)
// validates protocol exactly as usedports and lists one inventory per registered VIP, ordered by
// uuid, each rendered as usedports renders it, from one scan per network namespace.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>

#include "agent/model.hpp"
#include "agent/port_set.hpp"
#include "agent/snapshot_service.hpp"
#include "agent/vip_registry.hpp"
#include "http/api.hpp"
#include "http/java_text.hpp"
#include "http/routes.hpp"
#include "http/zstack.hpp"

namespace vipportd::http {

namespace bhttp = boost::beast::http;

namespace {

// VipConstant.MAX_PORT: ZStack's free list is 1..65535 (port 0 is never offered).
constexpr std::uint16_t kMaxPort = 65535;

// APIGetMessage's field defaults.
constexpr std::int32_t kDefaultStart = 0;
constexpr std::int32_t kDefaultLimit = 1000;

// An int field of the message: its default when absent, or the converted query value, or the
// plain-text 500 ZStack's REST layer answers for a value Double.valueOf rejects (step 1).
struct IntField {
    std::int32_t value = 0;
    std::optional<std::string> error;
};
IntField int_field(const QueryParams& params, std::string_view name, std::int32_t absent) {
    const auto text = params.get(name);
    if (!text) {
        return {absent, std::nullopt};
    }
    zstack::JavaInt parsed = zstack::java_query_int(*text);
    if (!parsed.value) {
        return {0, std::move(parsed.error)};
    }
    return {*parsed.value, std::nullopt};
}

Response number_format_error(const Reply& reply, std::string message) {
    return reply.text(bhttp::status::internal_server_error, std::move(message));
}

// protocolType: missing, or (trimmed, any case) not TCP/UDP, is SYS.1007.
struct ProtocolField {
    std::optional<agent::Protocol> protocol;
    std::optional<zstack::ApiError> error;
};
ProtocolField protocol_type(const QueryParams& params) {
    const auto text = params.get("protocolType");
    if (!text) {
        return {std::nullopt, zstack::field_mandatory("protocolType")};
    }
    const std::string_view trimmed = java_trim(*text);
    const auto protocol = agent::parse_protocol(trimmed);
    if (!protocol) {
        return {std::nullopt, zstack::field_not_tcp_udp("protocolType", trimmed)};
    }
    return {protocol, std::nullopt};
}

// vipUuid: the path variable (it overrides a vipUuid query parameter, RestServer.handleApi),
// trimmed (APIMessage.validate), a registered uuid or a literal address.
struct VipField {
    std::string uuid;
    std::optional<agent::Vip> vip;
};
VipField vip_uuid(const ApiCall& call) {
    VipField out{std::string(java_trim(call.path_params.at(0))), std::nullopt};
    const auto registry = call.deps->registry();
    out.vip = registry ? registry->resolve(out.uuid) : agent::VipRegistry{}.resolve(out.uuid);
    return out;
}

// The snapshot of a single-VIP answer (async_fresh_many with one namespace).
agent::SnapshotPtr first(const std::vector<agent::SnapshotPtr>& snaps) {
    return snaps.empty() ? nullptr : snaps.front();
}

// Appends a length-prefixed field to a cache key: client text may hold any byte.
void key_field(std::string& key, std::string_view field) {
    key += std::to_string(field.size());
    key += ':';
    key += field;
}

// getFreePortListPage (step 3): the ports of free (ascending, 1-65535) at list indices
// [start, start + limit), or the SYS.1000 details ZStack's subList range checks produce.
struct Page {
    agent::PortSet ports;
    std::optional<std::string> error;
};
Page free_port_page(const agent::PortSet& free, std::int32_t start, std::int32_t limit) {
    const std::int64_t size = free.count();
    if (size == 0 || start >= size) {
        return {};
    }
    // 64-bit: no int overflow (the documented difference, see the top of this file).
    const std::int64_t end = std::int64_t{start} + std::int64_t{limit};
    std::int64_t to = 0;
    if (end > size) {
        if (start < 0) {
            return {{}, zstack::java_sublist_negative_from(start)};
        }
        to = size;
    } else {
        if (start < 0) {
            return {{}, zstack::java_sublist_negative_from(start)};
        }
        if (start > end) {
            return {{}, zstack::java_sublist_from_after_to(start, end)};
        }
        to = end;
    }
    Page page;
    std::int64_t index = 0;  // list index of the current range's first port
    for (const auto& r : free.ranges()) {
        const std::int64_t n = std::int64_t{r.last} - r.first + 1;
        const std::int64_t lo = std::max<std::int64_t>(start, index);
        const std::int64_t hi = std::min<std::int64_t>(to, index + n);  // exclusive
        if (lo < hi) {
            page.ports.add(
                agent::PortRange{static_cast<std::uint16_t>(r.first + (lo - index)),
                                 static_cast<std::uint16_t>(r.first + (hi - 1 - index))});
        }
        index += n;
        if (index >= to) {
            break;
        }
    }
    return page;
}

}  // namespace

void answer_usedports_batch(ApiCall call, Router::Done done) {
    // protocol exactly as usedports (same texts, any case, trimmed).
    std::optional<Response> invalid;
    const auto protocol = protocol_param(call, invalid);
    if (!protocol) {
        return done(std::move(*invalid));
    }

    const auto registry = call.deps->registry();
    std::vector<agent::Vip> vips = registry ? registry->all() : std::vector<agent::Vip>{};
    // One scan per namespace, shared by every VIP that lives there (never merged across).
    std::vector<std::string> namespaces;
    std::vector<std::size_t> scan_of;  // vips[i] is answered from snapshot scan_of[i]
    scan_of.reserve(vips.size());
    for (const auto& vip : vips) {
        const auto it = std::find(namespaces.begin(), namespaces.end(), vip.netns);
        scan_of.push_back(static_cast<std::size_t>(it - namespaces.begin()));
        if (it == namespaces.end()) {
            namespaces.push_back(vip.netns);
        }
    }

    auto answer = [call, proto = *protocol, vips = std::move(vips), scan_of = std::move(scan_of),
                   expected = namespaces.size(),
                   done = std::move(done)](const std::vector<agent::SnapshotPtr>& snaps) {
        const Reply& r = call.reply;
        Response res;
        try {
            std::vector<zstack::Inventory> inventories;
            inventories.reserve(vips.size());
            // The whole answer is the key: every VIP's uuid and ports (ranges are short text).
            std::string key("\0batch\0", 7);
            key += agent::to_string(proto);
            key += call.with_schema ? 's' : '-';
            std::optional<Response> error;
            if (snaps.size() != expected) {
                error = r.error(zstack::internal_error("no kernel snapshot available"));
            }
            for (std::size_t i = 0; i < vips.size() && !error; ++i) {
                // A namespace that cannot be read fails the whole answer (SYS.1006): a list
                // without that VIP would claim it has no ports in use.
                const agent::SnapshotPtr snap = usable(snaps[scan_of[i]], r, error);
                if (!snap) {
                    break;
                }
                inventories.push_back(
                    {vips[i].uuid, snap->used_ports_remembered(vips[i].ip, proto)});
                key_field(key, inventories.back().uuid);
                key_field(key, inventories.back().ports.to_string());
            }
            if (error) {
                res = std::move(*error);
            } else {
                res = cached_json(call, key, agent::PortSet{}, [&] {
                    return zstack::used_ports_batch_body(proto, inventories, call.with_schema);
                });
            }
        } catch (const std::exception& e) {
            res = r.text(bhttp::status::internal_server_error,
                         std::string("internal error: ") + e.what());
        }
        done(std::move(res));
    };
    if (namespaces.empty()) {
        return answer({});  // no VIP: nothing to scan
    }
    call.deps->snapshots->async_fresh_many(
        std::move(namespaces),
        [answer = std::move(answer)](std::vector<agent::SnapshotPtr> snaps) { answer(snaps); });
}

void answer_check_port_availability(ApiCall call, Router::Done done) {
    const Reply& reply = call.reply;
    // 1. REST-layer conversion of the int fields (port is a primitive int: absent means 0).
    IntField port = int_field(call.params, "port", 0);
    if (port.error) {
        return done(number_format_error(reply, std::move(*port.error)));
    }
    for (const auto& [name, absent] : {std::pair{std::string_view("start"), kDefaultStart},
                                       std::pair{std::string_view("limit"), kDefaultLimit}}) {
        IntField unused = int_field(call.params, name, absent);
        if (unused.error) {
            return done(number_format_error(reply, std::move(*unused.error)));
        }
    }
    // 2. @APIParam checks: port, vipUuid, protocolType.
    if (port.value < 1 || port.value > kMaxPort) {
        return done(reply.error(zstack::field_out_of_range("port", 1, kMaxPort)));
    }
    VipField vip = vip_uuid(call);
    if (!vip.vip) {
        return done(reply.error(zstack::vip_field_not_found("vipUuid", vip.uuid)));
    }
    const ProtocolField protocol = protocol_type(call.params);
    if (protocol.error) {
        return done(reply.error(*protocol.error));
    }

    // 3. The answer, from a snapshot taken after this request arrived.
    call.deps->snapshots->async_fresh_many(
        {vip.vip->netns},
        [reply, ip = vip.vip->ip, proto = *protocol.protocol,
         p = static_cast<std::uint16_t>(port.value), with_schema = call.with_schema,
         done = std::move(done)](std::vector<agent::SnapshotPtr> snaps) {
            Response res;
            try {
                std::optional<Response> error;
                if (const auto snap = usable(first(snaps), reply, error)) {
                    const bool available = !snap->used_ports_remembered(ip, proto).contains(p);
                    res = reply.json(bhttp::status::ok,
                                     zstack::port_availability_body(available, with_schema));
                } else {
                    res = std::move(*error);
                }
            } catch (const std::exception& e) {
                res = reply.text(bhttp::status::internal_server_error,
                                 std::string("internal error: ") + e.what());
            }
            done(std::move(res));
        });
}

void answer_get_port_availability(ApiCall call, Router::Done done) {
    const Reply& reply = call.reply;
    // 1. REST-layer conversion of start and limit.
    IntField start = int_field(call.params, "start", kDefaultStart);
    if (start.error) {
        return done(number_format_error(reply, std::move(*start.error)));
    }
    IntField limit = int_field(call.params, "limit", kDefaultLimit);
    if (limit.error) {
        return done(number_format_error(reply, std::move(*limit.error)));
    }
    // 2. @APIParam checks: vipUuid, protocolType.
    VipField vip = vip_uuid(call);
    if (!vip.vip) {
        return done(reply.error(zstack::vip_field_not_found("vipUuid", vip.uuid)));
    }
    const ProtocolField protocol = protocol_type(call.params);
    if (protocol.error) {
        return done(reply.error(*protocol.error));
    }

    // 3. The page of free ports, from a snapshot taken after this request arrived.
    const agent::Vip target = *vip.vip;
    call.deps->snapshots->async_fresh_many(
        {target.netns}, [call, uuid = std::move(vip.uuid), ip = target.ip,
                         proto = *protocol.protocol, s = start.value, l = limit.value,
                         done = std::move(done)](std::vector<agent::SnapshotPtr> snaps) {
            const Reply& r = call.reply;
            Response res;
            try {
                std::optional<Response> error;
                if (const auto snap = usable(first(snaps), r, error)) {
                    const agent::PortSet used = snap->used_ports_remembered(ip, proto);
                    const agent::PortSet free =
                        used.complement().subtracted(agent::PortSet::single(0));
                    Page page = free_port_page(free, s, l);
                    if (page.error) {
                        res = r.error(zstack::internal_error(*page.error));
                    } else {
                        std::string key("\0avail\0", 7);
                        key_field(key, uuid);
                        key += agent::to_string(proto);
                        key += call.with_schema ? 's' : '-';
                        key_field(key, std::to_string(s));
                        key_field(key, std::to_string(l));
                        res = cached_json(call, key, used, [&] {
                            return zstack::available_ports_body(page.ports, call.with_schema);
                        });
                    }
                } else {
                    res = std::move(*error);
                }
            } catch (const std::exception& e) {
                res = r.text(bhttp::status::internal_server_error,
                             std::string("internal error: ") + e.what());
            }
            done(std::move(res));
        });
}

}  // namespace vipportd::http
