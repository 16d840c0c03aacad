// gzip bodies and Accept-Encoding negotiation (RFC 9110 §12.5.3), decompressed with zlib.

#include "http/gzip.hpp"

#include <string>

#include <gtest/gtest.h>
#include <zlib.h>

#include "agent/port_set.hpp"
#include "http/body_cache.hpp"
#include "http/zstack.hpp"
#include "http_fakes.hpp"

namespace vipportd::http {
namespace {

using test::gunzip;

TEST(AcceptsGzip, Negotiation) {
    EXPECT_TRUE(accepts_gzip("gzip"));
    EXPECT_TRUE(accepts_gzip("GZip"));
    EXPECT_TRUE(accepts_gzip("deflate, gzip"));
    EXPECT_TRUE(accepts_gzip("gzip;q=0.5"));
    EXPECT_TRUE(accepts_gzip("x-gzip"));
    EXPECT_TRUE(accepts_gzip("*"));
    EXPECT_TRUE(accepts_gzip(" br ; q=1 , gzip ; q=0.001 "));
    EXPECT_TRUE(accepts_gzip("gzip;q=bogus"));  // unreadable q: lenient
    EXPECT_FALSE(accepts_gzip(""));
    EXPECT_FALSE(accepts_gzip("identity"));
    EXPECT_FALSE(accepts_gzip("deflate, br"));
    EXPECT_FALSE(accepts_gzip("gzip;q=0"));
    EXPECT_FALSE(accepts_gzip("gzip;q=0.000"));
    EXPECT_FALSE(accepts_gzip("*, gzip;q=0"));
    EXPECT_FALSE(accepts_gzip("*;q=0"));
    EXPECT_FALSE(accepts_gzip("gzipper"));
}

TEST(GzipCompress, RoundTripsAndShrinksAWholeIpBody) {
    const std::string body = zstack::used_ports_body(
        "0123456789abcdef0123456789abcdef", agent::Protocol::tcp, agent::PortSet::all(), true);
    ASSERT_GT(body.size(), 500'000u);
    const std::string gz = gzip_compress(body);
    ASSERT_GE(gz.size(), 18u);
    EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);  // RFC 1952 §2.3.1 ID1, ID2
    EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
    EXPECT_EQ(gunzip(gz), body);
    // 65,535 consecutive decimal strings are close to incompressible for deflate's LZ77 (each
    // differs from its neighbour): ~3.6x, not 10x (README "Performance").
    EXPECT_LT(gz.size() * 3, body.size());
    EXPECT_EQ(gunzip(gzip_compress("")), "");
}

TEST(BodyCache, RendersOncePerDistinctBodyAndCompressesOnDemand) {
    BodyCache cache;
    int renders = 0;
    const auto render = [&] {
        ++renders;
        return std::string(2000, 'x');
    };
    const agent::PortSet a = agent::PortSet::range(1, 10);
    const auto p1 = cache.get("k", a, false, render);
    const auto p2 = cache.get("k", a, false, render);
    EXPECT_EQ(renders, 1);
    EXPECT_EQ(p1, p2);  // the same bytes, shared
    const auto g1 = cache.get("k", a, true, render);
    const auto g2 = cache.get("k", a, true, render);
    EXPECT_EQ(renders, 1);
    EXPECT_EQ(g1, g2);
    EXPECT_EQ(cache.compressions(), 1u);
    EXPECT_EQ(gunzip(*g1), *p1);
    // Other ports: rendered again; another key: its own entry.
    (void)cache.get("k", agent::PortSet::range(1, 11), false, render);
    (void)cache.get("other", a, false, render);
    EXPECT_EQ(renders, 3);
    EXPECT_EQ(cache.renders(), 3u);
}

TEST(BodyCache, StaysWithinItsByteBudget) {
    BodyCache cache(10'000);
    for (int i = 0; i < 50; ++i) {
        const auto body = cache.get("k" + std::to_string(i), agent::PortSet::single(1), false,
                                    [] { return std::string(3000, 'y'); });
        EXPECT_EQ(body->size(), 3000u);
        EXPECT_LE(cache.bytes(), 10'000u);
    }
    // Larger than the budget: served, never kept.
    const auto big =
        cache.get("big", agent::PortSet::single(1), false, [] { return std::string(20'000, 'z'); });
    EXPECT_EQ(big->size(), 20'000u);
    EXPECT_LE(cache.bytes(), 10'000u);
}

}  // namespace
}  // namespace vipportd::http
