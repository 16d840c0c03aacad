#pragma once
// PortSet: a normalized set of TCP/UDP ports, stored as sorted, disjoint, non-adjacent inclusive
// ranges. Port 0 is a valid member (rule interpretation may produce it); renderers decide whether
// to show it. All operations keep the normal form, so equality is structural.

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include <boost/container/small_vector.hpp>

namespace vipportd::agent {

struct PortRange {
    std::uint16_t first = 0;
    std::uint16_t last = 0;  // inclusive
    friend bool operator==(const PortRange&, const PortRange&) = default;
};

class PortSet {
  public:
    PortSet() = default;
    PortSet(std::initializer_list<PortRange> ranges);

    static PortSet single(std::uint16_t port) { return PortSet{{port, port}}; }
    static PortSet range(std::uint16_t first, std::uint16_t last);
    static PortSet all() { return range(0, 65535); }

    void add(std::uint16_t port) { add(PortRange{port, port}); }
    void add(PortRange r);  // r.first > r.last is ignored
    void unite(const PortSet& other);

    [[nodiscard]] PortSet united(const PortSet& other) const;
    [[nodiscard]] PortSet intersected(const PortSet& other) const;
    [[nodiscard]] PortSet subtracted(const PortSet& other) const;
    [[nodiscard]] PortSet complement() const;  // relative to 0-65535

    [[nodiscard]] bool contains(std::uint16_t port) const;
    [[nodiscard]] bool empty() const { return ranges_.empty(); }
    [[nodiscard]] std::uint32_t count() const;  // number of ports (0 - 65536)
    [[nodiscard]] std::span<const PortRange> ranges() const { return ranges_; }
    /// "22,80,8000-8100" (empty set: "")
    [[nodiscard]] std::string to_string() const;

    friend bool operator==(const PortSet&, const PortSet&) = default;

  private:
    friend class PortBitmap;
    // Inline up to four ranges: the rule interpreters copy, add to and intersect port sets many
    // times per rule, and a heap block per copy was among the largest allocation counts of
    // interpreting 10,000 DNAT rules.
    boost::container::small_vector<PortRange, 4> ranges_;
};

/// 65,536 bits (8 KiB): the accumulator of a query. Setting a port is O(1) whatever the order,
/// so a VIP's ports can be gathered from unsorted socket records and overlapping claims, and
/// turned into a normalized PortSet in one pass over 1,024 words.
class PortBitmap {
  public:
    void set(std::uint16_t port) { words_[port >> 6U] |= std::uint64_t{1} << (port & 63U); }
    void set(PortRange r);
    void set(const PortSet& s);
    [[nodiscard]] PortSet to_set() const;

  private:
    std::array<std::uint64_t, 1024> words_{};
};

}  // namespace vipportd::agent
