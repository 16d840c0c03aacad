#pragma once
// SHA-256 (FIPS 180-4), used only to compare bearer tokens in constant time: both sides are
// hashed, so the comparison sees fixed-size digests and leaks neither content nor length.

#include <array>
#include <cstdint>
#include <string_view>

namespace vipportd::http {

using Sha256Digest = std::array<std::uint8_t, 32>;

/// The SHA-256 digest of data (FIPS 180-4 §6.2).
Sha256Digest sha256(std::string_view data);

/// True when a == b; the running time does not depend on where the digests differ.
bool digest_equal(const Sha256Digest& a, const Sha256Digest& b);

}  // namespace vipportd::http
