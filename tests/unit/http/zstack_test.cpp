// ZStack body rendering and JSON string escaping (zstack-api.md §3, §6).

#include "http/zstack.hpp"

#include <string>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <gtest/gtest.h>

namespace vipportd::http::zstack {
namespace {

std::string json(std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
}

TEST(JsonString, EscapesLikeGsonWithoutHtmlEscaping) {
    EXPECT_EQ(json(""), R"("")");
    EXPECT_EQ(json("plain-uuid_0123"), R"("plain-uuid_0123")");
    EXPECT_EQ(json("\"\\"), R"("\"\\")");
    EXPECT_EQ(json("\b\t\n\f\r"), R"("\b\t\n\f\r")");
    EXPECT_EQ(json(std::string("\x00\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\x7f\"");
    EXPECT_EQ(json("<a href='x'>&</a>="), R"("<a href='x'>&</a>=")");
    EXPECT_EQ(json("/"), R"("/")");
    EXPECT_EQ(json("\xe2\x80\xa8\xe2\x80\xa9"), R"("\u2028\u2029")");
}

TEST(JsonString, KeepsValidUtf8AndReplacesInvalidBytes) {
    EXPECT_EQ(json("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
              "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    const std::string fffd = "\xef\xbf\xbd";
    EXPECT_EQ(json("\xff"), "\"" + fffd + "\"");
    EXPECT_EQ(json("\xc0\xaf"), "\"" + fffd + fffd + "\"");             // overlong '/'
    EXPECT_EQ(json("\xed\xa0\x80"), "\"" + fffd + fffd + fffd + "\"");  // UTF-16 surrogate
    EXPECT_EQ(json("\xf4\x90\x80\x80"), "\"" + fffd + fffd + fffd + fffd + "\"");  // > U+10FFFF
    EXPECT_EQ(json("\xe2\x82"), "\"" + fffd + fffd + "\"");                        // truncated
    EXPECT_EQ(json("a\xe2\x82z"), "\"a" + fffd + fffd + "z\"");
    EXPECT_EQ(json("\xe0\x80\x80"), "\"" + fffd + fffd + fffd + "\"");  // overlong 3-byte
}

TEST(JsonString, EveryByteRoundTripsThroughAJsonParser) {
    std::string all;
    for (int c = 0; c < 128; ++c) {
        all += static_cast<char>(c);
    }
    const auto v = boost::json::parse("[" + json(all) + "]");
    EXPECT_EQ(v.as_array().at(0).as_string(), all);
}

TEST(ErrorBody, IsCompactAndOrdered) {
    EXPECT_EQ(
        error_body(session_expired()),
        R"({"error":{"code":"ID.1001","description":"The session is invalid, either wrong session id or the session has been expired","details":"Session expired"}})");
    EXPECT_EQ(
        error_body(source_failed("sockets", "recvmsg: ENOBUFS")),
        R"({"error":{"code":"SYS.1006","description":"An operation failed","details":"failed to read kernel state from source[sockets]: recvmsg: ENOBUFS"}})");
    EXPECT_EQ(protocol_invalid("").details,
              "valid value for field[protocol] of message[org.zstack.header.message."
              "ApiMessageParamValidator] are [TCP, UDP], but  found");
}

TEST(UsedPortsBody, RendersRangesAsSingleDecimalStringsSkippingZero) {
    const agent::PortSet ports{{0, 2}, {65534, 65535}};
    EXPECT_EQ(
        used_ports_body("u", agent::Protocol::tcp, ports, false),
        R"({"inventories":[{"uuid":"u","protcol":"TCP","protocol":"TCP","usedPorts":["1","2","65534","65535"]}]})");
    EXPECT_EQ(used_ports_body("u", agent::Protocol::udp, agent::PortSet::single(0), false),
              R"({"inventories":[{"uuid":"u","protcol":"UDP","protocol":"UDP","usedPorts":[]}]})");
    EXPECT_EQ(
        used_ports_body("u", agent::Protocol::udp, {}, true),
        R"({"schema":{"inventories[0]":"org.zstack.network.service.virtualrouter.APIGetVipUsedPortsReply$VipPortRangeInventory"},"inventories":[{"uuid":"u","protcol":"UDP","protocol":"UDP","usedPorts":[]}]})");
}

}  // namespace
}  // namespace vipportd::http::zstack
