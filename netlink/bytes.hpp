#pragma once
// Bounds-checked views over netlink bytes: nlmsghdr walking, nlattr walking and an nla_parse-like
// table fill with minimum lengths. Every read goes through memcpy, so no alignment is assumed and
// no reinterpret_cast is needed. Offsets in errors are relative to the buffer the caller names
// (base_offset lets a caller report positions inside a larger Dump).
//
// Layouts (linux/netlink.h):
//   nlmsghdr  { u32 nlmsg_len; u16 nlmsg_type; u16 nlmsg_flags; u32 nlmsg_seq; u32 nlmsg_pid; }
//             followed by the payload; the next message starts at NLMSG_ALIGN(nlmsg_len) (4).
//   nlattr    { u16 nla_len; u16 nla_type; } followed by the value; the next attribute starts at
//             NLA_ALIGN(nla_len) (4). nla_type carries NLA_F_NESTED / NLA_F_NET_BYTEORDER in its
//             two top bits (NLA_TYPE_MASK strips them).

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <type_traits>

#include <linux/netlink.h>

#include "netlink/error.hpp"

namespace vipportd::netlink {

/// NLMSG_ALIGN / NLA_ALIGN: both round up to 4 bytes (linux/netlink.h NLMSG_ALIGNTO, NLA_ALIGNTO).
constexpr std::size_t align4(std::size_t n) { return (n + 3U) & ~std::size_t{3}; }

inline constexpr std::size_t kNlmsghdrSize = sizeof(nlmsghdr);  // 16
inline constexpr std::size_t kNlattrSize = sizeof(nlattr);      // 4
static_assert(kNlmsghdrSize == 16 && kNlattrSize == 4);

/// Copies a trivially copyable T from bytes[offset]; the caller has checked the bounds.
template <class T>
[[nodiscard]] T load(std::span<const std::uint8_t> bytes, std::size_t offset = 0) {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    std::memcpy(&value, bytes.data() + offset, sizeof(T));
    return value;
}

/// Copies value into bytes[offset]; the caller has checked the bounds.
template <class T>
void store(std::span<std::uint8_t> bytes, std::size_t offset, const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

/// Copies a T from the front of bytes, or nullopt when bytes is too short.
template <class T>
[[nodiscard]] std::optional<T> load_prefix(std::span<const std::uint8_t> bytes) {
    if (bytes.size() < sizeof(T)) {
        return std::nullopt;
    }
    return load<T>(bytes);
}

/// One netlink message inside a buffer.
struct RawMessage {
    nlmsghdr header{};
    std::span<const std::uint8_t> payload;  // bounded by nlmsg_len
    std::size_t offset = 0;                 // of the nlmsghdr, base_offset included
};

/// Walks the nlmsghdr sequence of a buffer (a datagram, or a Dump's data).
///   MessageWalker walk(bytes);
///   while (true) { auto m = walk.next(); if (!m) error; if (!*m) break; use **m; }
class MessageWalker {
  public:
    explicit MessageWalker(std::span<const std::uint8_t> bytes, std::size_t base_offset = 0)
        : bytes_(bytes), base_(base_offset) {}

    /// The next message, nullopt at the end. Errc::truncated when a header, or the length it
    /// claims, does not fit in what is left (the error names the offset and both lengths).
    [[nodiscard]] Result<std::optional<RawMessage>> next() {
        const std::size_t left = bytes_.size() - pos_;
        if (left == 0) {
            return std::optional<RawMessage>{};
        }
        const std::size_t at = base_ + pos_;
        if (left < kNlmsghdrSize) {
            return Error::of(Errc::truncated, "netlink message at offset " + std::to_string(at) +
                                                  ": " + std::to_string(left) +
                                                  " bytes left, nlmsghdr needs 16");
        }
        RawMessage m;
        m.header = load<nlmsghdr>(bytes_, pos_);
        m.offset = at;
        const std::size_t len = m.header.nlmsg_len;
        if (len < kNlmsghdrSize || len > left) {
            return Error::of(Errc::truncated, "netlink message at offset " + std::to_string(at) +
                                                  ": nlmsg_len " + std::to_string(len) + " with " +
                                                  std::to_string(left) + " bytes left");
        }
        m.payload = bytes_.subspan(pos_ + kNlmsghdrSize, len - kNlmsghdrSize);
        // The last message of a buffer may omit its alignment padding.
        pos_ += std::min(align4(len), left);
        return std::optional<RawMessage>{m};
    }

    /// Offset (base_offset included) of the next message.
    [[nodiscard]] std::size_t offset() const { return base_ + pos_; }

  private:
    std::span<const std::uint8_t> bytes_;
    std::size_t base_ = 0;
    std::size_t pos_ = 0;
};

/// One attribute inside a message payload.
struct RawAttribute {
    std::uint16_t type = 0;  // NLA_TYPE_MASK applied
    std::span<const std::uint8_t> value;
    std::size_t offset = 0;  // of the nlattr header, base_offset included
};

/// Walks a run of nlattr (a message's attribute area, or a nested attribute's value).
class AttributeWalker {
  public:
    explicit AttributeWalker(std::span<const std::uint8_t> bytes, std::size_t base_offset = 0)
        : bytes_(bytes), base_(base_offset) {}

    /// The next attribute, nullopt at the end; Errc::truncated when an nlattr header or its
    /// nla_len does not fit (nla_len < 4 included: the kernel rejects those too, nla_ok()).
    [[nodiscard]] Result<std::optional<RawAttribute>> next() {
        const std::size_t left = bytes_.size() - pos_;
        if (left == 0) {
            return std::optional<RawAttribute>{};
        }
        const std::size_t at = base_ + pos_;
        if (left < kNlattrSize) {
            return Error::of(Errc::truncated, "attribute at offset " + std::to_string(at) + ": " +
                                                  std::to_string(left) +
                                                  " bytes left, nlattr needs 4");
        }
        const auto hdr = load<nlattr>(bytes_, pos_);
        const std::size_t len = hdr.nla_len;
        if (len < kNlattrSize || len > left) {
            return Error::of(Errc::truncated, "attribute type " +
                                                  std::to_string(hdr.nla_type & NLA_TYPE_MASK) +
                                                  " at offset " + std::to_string(at) +
                                                  ": nla_len " + std::to_string(len) + " with " +
                                                  std::to_string(left) + " bytes left");
        }
        RawAttribute a;
        a.type = static_cast<std::uint16_t>(hdr.nla_type & NLA_TYPE_MASK);
        a.value = bytes_.subspan(pos_ + kNlattrSize, len - kNlattrSize);
        a.offset = at;
        pos_ += std::min(align4(len), left);
        return std::optional<RawAttribute>{a};
    }

  private:
    std::span<const std::uint8_t> bytes_;
    std::size_t base_ = 0;
    std::size_t pos_ = 0;
};

/// Attributes of one message, indexed by type (types above MaxType are ignored, as nla_parse
/// does: the UAPI enums are append-only, newer kernels add types we do not know).
template <std::size_t MaxType>
using AttributeTable = std::array<std::optional<RawAttribute>, MaxType + 1>;

/// nla_policy equivalent: the minimum value length of each type (0 = anything goes).
template <std::size_t MaxType>
using AttributePolicy = std::array<std::size_t, MaxType + 1>;

/// nla_parse equivalent without allocation: fills table (cleared first) from bytes, checking every
/// header and each known type's minimum length. A repeated type keeps the last one (as nla_parse).
/// N (= MaxType + 1) is deduced from the arguments: parse_attributes(bytes, base, policy, table).
/// Errors: Errc::truncated for a bad header, Errc::malformed for a value shorter than its policy.
template <std::size_t N>
[[nodiscard]] Result<void> parse_attributes(std::span<const std::uint8_t> bytes,
                                            std::size_t base_offset,
                                            const std::array<std::size_t, N>& policy,
                                            std::array<std::optional<RawAttribute>, N>& table) {
    table.fill(std::nullopt);
    AttributeWalker walk(bytes, base_offset);
    while (true) {
        auto a = walk.next();
        if (!a) {
            return a.error();
        }
        if (!*a) {
            return {};
        }
        const RawAttribute& attr = **a;
        if (attr.type >= N) {
            continue;
        }
        if (attr.value.size() < policy[attr.type]) {
            return Error::of(Errc::malformed,
                             "attribute type " + std::to_string(attr.type) + " at offset " +
                                 std::to_string(attr.offset) + ": value of " +
                                 std::to_string(attr.value.size()) + " bytes, needs at least " +
                                 std::to_string(policy[attr.type]));
        }
        table[attr.type] = attr;
    }
}

}  // namespace vipportd::netlink
