#include "agent/port_set.hpp"

#include <algorithm>
#include <bit>

namespace vipportd::agent {

PortSet::PortSet(std::initializer_list<PortRange> ranges) {
    for (const auto& r : ranges) {
        add(r);
    }
}

PortSet PortSet::range(std::uint16_t first, std::uint16_t last) {
    PortSet s;
    if (first <= last) {
        s.ranges_.push_back(PortRange{first, last});  // one range is normalized: no add()
    }
    return s;
}

void PortSet::add(PortRange r) {
    if (r.first > r.last) {
        return;
    }
    // First range that could touch r: the first whose last + 1 >= r.first.
    auto it = std::lower_bound(ranges_.begin(), ranges_.end(), r.first,
                               [](const PortRange& x, std::uint16_t v) { return x.last + 1u < v; });
    auto end = it;
    std::uint16_t first = r.first;
    std::uint16_t last = r.last;
    while (end != ranges_.end() && end->first <= static_cast<std::uint32_t>(last) + 1u) {
        first = std::min(first, end->first);
        last = std::max(last, end->last);
        ++end;
    }
    it = ranges_.erase(it, end);
    ranges_.insert(it, PortRange{first, last});
}

void PortSet::unite(const PortSet& other) {
    if (ranges_.empty()) {
        ranges_ = other.ranges_;
        return;
    }
    for (const auto& r : other.ranges_) {
        add(r);
    }
}

PortSet PortSet::united(const PortSet& other) const {
    PortSet s = *this;
    s.unite(other);
    return s;
}

PortSet PortSet::intersected(const PortSet& other) const {
    PortSet out;
    auto a = ranges_.begin();
    auto b = other.ranges_.begin();
    while (a != ranges_.end() && b != other.ranges_.end()) {
        const auto lo = std::max(a->first, b->first);
        const auto hi = std::min(a->last, b->last);
        if (lo <= hi) {
            out.ranges_.push_back({lo, hi});  // inputs are normalized, so outputs stay disjoint
        }
        (a->last < b->last) ? ++a : ++b;
    }
    return out;
}

PortSet PortSet::complement() const {
    PortSet out;
    std::uint32_t next = 0;  // first port not yet covered
    for (const auto& r : ranges_) {
        if (r.first > next) {
            out.ranges_.push_back(
                {static_cast<std::uint16_t>(next), static_cast<std::uint16_t>(r.first - 1)});
        }
        next = r.last + 1u;
    }
    if (next <= 65535) {
        out.ranges_.push_back({static_cast<std::uint16_t>(next), 65535});
    }
    return out;
}

PortSet PortSet::subtracted(const PortSet& other) const { return intersected(other.complement()); }

bool PortSet::contains(std::uint16_t port) const {
    auto it = std::lower_bound(ranges_.begin(), ranges_.end(), port,
                               [](const PortRange& x, std::uint16_t v) { return x.last < v; });
    return it != ranges_.end() && it->first <= port;
}

std::uint32_t PortSet::count() const {
    std::uint32_t n = 0;
    for (const auto& r : ranges_) {
        n += static_cast<std::uint32_t>(r.last - r.first) + 1u;
    }
    return n;
}

std::string PortSet::to_string() const {
    std::string out;
    for (const auto& r : ranges_) {
        if (!out.empty()) {
            out += ',';
        }
        out += std::to_string(r.first);
        if (r.last != r.first) {
            out += '-';
            out += std::to_string(r.last);
        }
    }
    return out;
}

void PortBitmap::set(PortRange r) {
    if (r.first > r.last) {
        return;
    }
    const unsigned first = r.first;
    const unsigned last = r.last;
    const unsigned fw = first >> 6U;
    const unsigned lw = last >> 6U;
    const std::uint64_t ones = ~std::uint64_t{0};
    const std::uint64_t head = ones << (first & 63U);         // bits first..63 of word fw
    const std::uint64_t tail = ones >> (63U - (last & 63U));  // bits 0..last of word lw
    if (fw == lw) {
        words_[fw] |= head & tail;
        return;
    }
    words_[fw] |= head;
    for (unsigned w = fw + 1; w < lw; ++w) {
        words_[w] = ones;
    }
    words_[lw] |= tail;
}

void PortBitmap::set(const PortSet& s) {
    for (const auto& r : s.ranges()) {
        set(r);
    }
}

PortSet PortBitmap::to_set() const {
    // Bit b of `edges` is set where port b differs from port b - 1 (port -1 counting as clear):
    // a set port there starts a range, a clear one ends the range before it. Counting the starts
    // first sizes the vector once; most words are zero (this runs for every distinct answer).
    std::size_t starts = 0;
    std::uint64_t carry = 0;  // the previous word's top bit
    for (const std::uint64_t word : words_) {
        if (const std::uint64_t s = word & ~((word << 1U) | carry); s != 0) {
            starts += static_cast<std::size_t>(std::popcount(s));
        }
        carry = word >> 63U;
    }
    PortSet out;
    out.ranges_.reserve(starts);
    carry = 0;
    std::uint32_t start = 0;
    for (std::uint32_t w = 0; w < words_.size(); ++w) {
        const std::uint64_t word = words_[w];
        std::uint64_t edges = word ^ ((word << 1U) | carry);
        carry = word >> 63U;
        for (; edges != 0; edges &= edges - 1) {
            const auto b = static_cast<std::uint32_t>(std::countr_zero(edges));
            const std::uint32_t port = w * 64 + b;
            if (((word >> b) & 1U) != 0) {
                start = port;
            } else {
                out.ranges_.push_back(PortRange{static_cast<std::uint16_t>(start),
                                                static_cast<std::uint16_t>(port - 1)});
            }
        }
    }
    if (carry != 0) {
        out.ranges_.push_back(PortRange{static_cast<std::uint16_t>(start), 65535});
    }
    return out;
}

}  // namespace vipportd::agent
