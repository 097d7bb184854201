#include "tracker/byte_ring.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <random>
#include <vector>

namespace migware::tracker {
namespace {

std::vector<std::byte> bytes(std::size_t n, std::uint8_t first) {
    std::vector<std::byte> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>(first + i);
    return v;
}

TEST(ByteRing, EmptyRingOwnsNoMemory) {
    ByteRing r;
    EXPECT_EQ(r.capacity(), 0u);
    EXPECT_TRUE(r.empty());
    std::vector<std::byte> none;
    EXPECT_TRUE(r.copy_out(0, none));
    std::vector<std::byte> one(1);
    EXPECT_FALSE(r.copy_out(0, one));
}

TEST(ByteRing, WrapsAroundAndGrowsPreservingOrder) {
    ByteRing r;
    auto a = bytes(1500, 0);
    r.push_back(a);
    r.pop_front(1000);
    auto b = bytes(1000, 100);  // wraps past the 2048-byte end
    r.push_back(b);
    ASSERT_EQ(r.size(), 1500u);
    std::vector<std::byte> out(1500);
    ASSERT_TRUE(r.copy_out(0, out));
    EXPECT_TRUE(std::equal(out.begin(), out.begin() + 500, a.begin() + 1000));
    EXPECT_TRUE(std::equal(out.begin() + 500, out.end(), b.begin()));
    r.push_back(bytes(5000, 7));  // forces a grow while wrapped
    EXPECT_GE(r.capacity(), 6500u);
    std::vector<std::byte> again(500);
    ASSERT_TRUE(r.copy_out(0, again));
    EXPECT_TRUE(std::equal(again.begin(), again.end(), a.begin() + 1000));
    EXPECT_TRUE(r.copy_out(6000, again));   // exactly the last 500 bytes
    EXPECT_FALSE(r.copy_out(6001, again));  // one past the end
}

TEST(ByteRing, MatchesAReferenceQueueUnderRandomOperations) {
    std::mt19937 rng(42);
    ByteRing r;
    std::deque<std::byte> ref;
    std::uint8_t next = 0;
    for (int step = 0; step < 20000; ++step) {
        if (rng() % 2) {
            std::vector<std::byte> chunk(rng() % 3000);
            for (auto& b : chunk) b = static_cast<std::byte>(next++);
            r.push_back(chunk);
            ref.insert(ref.end(), chunk.begin(), chunk.end());
        } else {
            std::size_t n = rng() % 4000;
            r.pop_front(n);
            ref.erase(ref.begin(), ref.begin() + std::min(n, ref.size()));
        }
        ASSERT_EQ(r.size(), ref.size());
        if (!ref.empty()) {
            std::size_t off = rng() % ref.size();
            std::vector<std::byte> out(std::min<std::size_t>(ref.size() - off, 64));
            ASSERT_TRUE(r.copy_out(off, out));
            for (std::size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], ref[off + i]);
        }
    }
    r.clear();
    EXPECT_EQ(r.capacity(), 0u);
}

}  // namespace
}  // namespace migware::tracker
