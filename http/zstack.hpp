#pragma once
// ZStack's wire format for GET /zstack/v1/vips/{uuid}/usedports: the success body, the error
// catalogue entries vipportd answers with, and the JSON string escaping they share
// (zstack-api.md §3, §5.2, §6, §17).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

// ---- ZStack's siblings (issue 6): batch usedports and the port-availability APIs ----------------
// Sources are cited as zstack:<path> at zstackio/zstack 5a29293bd5 (zstack-api.md's commit).

/// One VIP's inventory in the batch answer.
struct Inventory {
    std::string uuid;
    agent::PortSet ports;
};

/// Appends one inventory object exactly as used_ports_body renders it:
/// {"uuid":…,"protcol":"TCP","protocol":"TCP","usedPorts":["22",…]}.
void append_inventory(std::string& out,
                      std::string_view uuid,
                      agent::Protocol protocol,
                      const agent::PortSet& ports);

/// vipportd's batch answer {"inventories":[…]}: one inventory per VIP, in the given order. With
/// X-JSON-Schema, "schema" has one "inventories[i]" entry per element, last index first, as
/// zstack:header/…/message/JsonSchemaBuilder.java builds it for a list (it reverses its keys), so
/// that the Java SDK types every element (zstack-api.md §8.1a); {} for an empty list.
std::string used_ports_batch_body(agent::Protocol protocol,
                                  const std::vector<Inventory>& inventories,
                                  bool with_schema);

/// SYS.1007 for an @APIParam field that is null: "field[<field>] of message[...] is mandatory,
/// can not be null" (zstack:header/…/message/ApiMessageParamValidator.java, validate()).
ApiError field_mandatory(std::string_view field);
/// SYS.1007 for a value outside validValues {"TCP","UDP"} (ApiMessageParamValidator.validateValue:
/// "valid value for field[%s] of message[%s] are %s, but %s found", Arrays.toString).
ApiError field_not_tcp_udp(std::string_view field, std::string_view value);
/// SYS.1007 for an @APIParam(numberRange) violation (ApiMessageParamValidator.validateNonNullValue:
/// "field[%s] must be in range of [%s, %s]"; no "found" part, no message class).
ApiError field_out_of_range(std::string_view field, std::int64_t low, std::int64_t high);
/// SYS.1003 from zstack:portal/…/apimediator/PortApiValidator.java for @APIParam(resourceType =
/// VipVO.class): "invalid field[<field>], resource[uuid:<uuid>, type:VipVO] not found".
ApiError vip_field_not_found(std::string_view field, std::string_view uuid);

/// A query value converted to a Java int as ZStack's RestServer does it for an int/Integer field
/// (RestServer.Api.queryParameterToApiFieldValue -> zstack:utils/…/TypeUtils.java stringToValue:
/// Double.valueOf(text).intValue()). Either the value or the text of the NumberFormatException,
/// which RestServer answers as a plain-text 500 (its catch (Throwable) in handle()).
struct JavaInt {
    std::optional<std::int32_t> value;
    std::string error;  // "For input string: \"abc\"" or "empty String" (JDK 8 FloatingDecimal)
};
/// Double.valueOf's grammar (JDK 8 FloatingDecimal.readJavaFormatString): Java's trim, optional
/// sign, "NaN", "Infinity", decimal digits with optional '.', exponent and f/F/d/D suffix, or a hex
/// float with a mandatory p exponent; then (int) with Java's rounding toward zero, saturation and
/// NaN -> 0. So "80.9" is 80, "1e3" is 1000, " 80 " is 80 and "1e10" is 2147483647.
JavaInt java_query_int(std::string_view text);

/// The texts of the JDK 8 java.util.ArrayList.subList range checks (subListRangeCheck), which
/// ZStack's VipManagerImpl.getFreePortListPage reaches with a negative start or limit; the
/// exception becomes SYS.1000 through @MessageSafe (zstack:core/…/aspect/MessageSafeAspect.aj,
/// ErrorFacadeImpl.throwableToInternalError: details = the exception's message).
std::string java_sublist_negative_from(std::int64_t from);  // "fromIndex = -1"
std::string java_sublist_from_after_to(std::int64_t from,
                                       std::int64_t to);  // "fromIndex(5) > toIndex(4)"

/// APICheckVipPortAvailabilityReply as RestServer writes it: @RestResponse(fieldsTo = {"all"})
/// maps every non-@APINoSee field of the reply class and its superclasses (RestResponseWrapper),
/// i.e. "available" and MessageReply's "success" (and "error", null, so omitted by Gson), into
/// ApiResponse, a java.util.HashMap: {"success":true,"available":true} in its bucket order.
/// X-JSON-Schema adds "schema":{} (a Boolean gets no schema entry) first.
std::string port_availability_body(bool available, bool with_schema);
/// APIGetVipAvailablePortReply the same way: {"success":true,"availablePort":[1,2,…]} with ports
/// as JSON numbers (List<Integer>). X-JSON-Schema adds "schema":{} first (see the .cpp for why
/// ZStack's own per-element "java.lang.Integer" entries are left out).
std::string available_ports_body(const agent::PortSet& page, bool with_schema);

}  // namespace vipportd::http::zstack
