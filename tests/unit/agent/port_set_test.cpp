#include "agent/port_set.hpp"

#include <bitset>
#include <random>

#include <gtest/gtest.h>

namespace vipportd::agent {
namespace {

using Bits = std::bitset<65536>;

Bits to_bits(const PortSet& s) {
    Bits b;
    for (const auto& r : s.ranges()) {
        for (std::uint32_t p = r.first; p <= r.last; ++p) {
            b.set(p);
        }
    }
    return b;
}

void expect_normalized(const PortSet& s) {
    const auto& r = s.ranges();
    for (std::size_t i = 0; i < r.size(); ++i) {
        ASSERT_LE(r[i].first, r[i].last);
        if (i > 0) {
            ASSERT_GT(r[i].first, r[i - 1].last + 1u) << "ranges must be disjoint and non-adjacent";
        }
    }
}

PortSet random_set(std::mt19937& rng, Bits& oracle) {
    PortSet s;
    std::uniform_int_distribution<int> n(0, 12);
    std::uniform_int_distribution<int> start(0, 65535);
    std::uniform_int_distribution<int> len(0, 3000);
    for (int i = n(rng); i > 0; --i) {
        const int a = start(rng);
        const int b = std::min(65535, a + (len(rng) % 4 == 0 ? 0 : len(rng)));
        s.add(PortRange{static_cast<std::uint16_t>(a), static_cast<std::uint16_t>(b)});
        for (int p = a; p <= b; ++p) {
            oracle.set(static_cast<std::size_t>(p));
        }
    }
    return s;
}

TEST(PortSet, MergesAdjacentAndOverlapping) {
    PortSet s{{100, 200}, {150, 150}, {201, 210}, {5, 5}};
    EXPECT_EQ(s.to_string(), "5,100-210");
    EXPECT_EQ(s.count(), 112u);
    EXPECT_TRUE(s.contains(210));
    EXPECT_FALSE(s.contains(211));
    EXPECT_FALSE(s.contains(6));
}

TEST(PortSet, ComplementOfNegationIsTheZStackWholeRange) {
    EXPECT_EQ(PortSet::single(22).complement().to_string(), "0-21,23-65535");
    EXPECT_EQ(PortSet{}.complement(), PortSet::all());
    EXPECT_TRUE(PortSet::all().complement().empty());
    EXPECT_EQ(PortSet::range(0, 0).complement().to_string(), "1-65535");
    EXPECT_EQ(PortSet::range(65535, 65535).complement().to_string(), "0-65534");
}

TEST(PortSet, IgnoresInvertedRange) {
    PortSet s;
    s.add(PortRange{10, 5});
    EXPECT_TRUE(s.empty());
}

TEST(PortSet, AgreesWithBitsetOracle) {
    std::mt19937 rng(20261127);
    for (int round = 0; round < 200; ++round) {
        Bits a_bits;
        Bits b_bits;
        const PortSet a = random_set(rng, a_bits);
        const PortSet b = random_set(rng, b_bits);
        expect_normalized(a);
        ASSERT_EQ(to_bits(a), a_bits);
        ASSERT_EQ(a.count(), a_bits.count());
        ASSERT_EQ(to_bits(a.united(b)), a_bits | b_bits);
        ASSERT_EQ(to_bits(a.intersected(b)), a_bits & b_bits);
        ASSERT_EQ(to_bits(a.subtracted(b)), a_bits & ~b_bits);
        ASSERT_EQ(to_bits(a.complement()), ~a_bits);
        expect_normalized(a.united(b));
        expect_normalized(a.complement());
        for (int port : {0, 1, 80, 443, 8080, 65535}) {
            const auto p = static_cast<std::uint16_t>(port);
            ASSERT_EQ(a.contains(p), a_bits.test(p));
        }
    }
}

}  // namespace
}  // namespace vipportd::agent
