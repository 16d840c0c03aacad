#pragma once
// ZStack's wire format for GET /zstack/v1/vips/{uuid}/usedports: the success body, the error
// catalogue entries vipportd answers with, and the JSON string escaping they share
// (zstack-api.md §3, §5.2, §6, §17).

#include <string>
#include <string_view>

#include "agent/model.hpp"
#include "agent/port_set.hpp"

namespace vipportd::http::zstack {

/// One entry of ZStack's error catalogue, rendered as {"error":{"code","description","details"}}
/// with HTTP status 503 (RestServer.sendReplyResponse, zstack-api.md §6).
struct ApiError {
    std::string_view code;
    std::string_view description;
    std::string details;
};

/// ID.1001: the Authorization token was rejected (identity Session.checkSessionExpired).
ApiError session_expired();
/// SYS.1007: no protocol parameter.
ApiError protocol_missing();
/// SYS.1007: protocol (already trimmed) is not tcp/udp. The message names the validator class,
/// not the API message: a getClass() bug in ApiMessageParamValidator copied verbatim (§5.2).
ApiError protocol_invalid(std::string_view value);
/// SYS.1003: uuid (decoded, trimmed) is neither a configured VIP nor a literal address.
ApiError vip_not_found(std::string_view uuid);
/// SYS.1006: a required kernel source failed in the snapshot that would answer the query.
ApiError source_failed(std::string_view source, std::string_view error);
/// SYS.1000: vipportd itself failed (no snapshot, unexpected exception).
ApiError internal_error(std::string_view details);

/// {"error":{"code":"…","description":"…","details":"…"}}, compact, as Gson writes it.
std::string error_body(const ApiError& e);

/// The success body (§3 with the §17 deviations): one inventory, the uuid as sent, the protocol in
/// upper case under both "protcol" (the documented spelling) and "protocol", and every port of
/// ports except 0 as a decimal string, ascending and unique. with_schema prepends the "schema"
/// object that the Java SDK needs (request header X-JSON-Schema present).
std::string used_ports_body(std::string_view uuid,
                            agent::Protocol protocol,
                            const agent::PortSet& ports,
                            bool with_schema);

/// Appends s as a JSON string literal (with quotes), escaped as Gson does with HTML escaping
/// off: '"', '\\', U+0000-U+001F (\b \t \n \f \r or \u00XX), U+2028 and U+2029 are escaped;
/// every other character is copied. Bytes that are not well-formed UTF-8 become U+FFFD, as
/// Java's decoder would turn them into when it decoded the request.
void append_json_string(std::string& out, std::string_view s);

// Plain-text bodies of the REST layer's own errors (zstack-api.md §5.2), and vipportd's own.
inline constexpr std::string_view missing_authorization = "missing header 'Authorization'";
inline constexpr std::string_view authorization_not_oauth = "Authorization type must be 'OAuth'";
inline constexpr std::string_view invalid_job_uuid =
    "Invalid header[X-Job-UUID], it must be a UUID with '-' stripped";
/// "Invalid query parameter[<name>], only one value is allowed ..." for a repeated scalar.
std::string repeated_parameter(std::string_view name);
/// "no api mapping to <path>", path being the decoded path with the "/zstack" context stripped.
std::string no_api_mapping(std::string_view path);

/// The value of "schema"."inventories[0]" (note the '$': a nested Java class).
inline constexpr std::string_view inventory_class =
    "org.zstack.network.service.virtualrouter.APIGetVipUsedPortsReply$VipPortRangeInventory";

}  // namespace vipportd::http::zstack
