// Checksums against a deliberately naive reference: 16-bit words summed over
// a std::vector<uint8_t>, folding after every addition.

#include "sniffer/checksum.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace migware::sniffer {
namespace {

using Bytes = std::vector<std::uint8_t>;

std::uint16_t naive_sum(const Bytes& data) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < data.size(); i += 2) {
        std::uint32_t word = std::uint32_t{data[i]} << 8;
        if (i + 1 < data.size()) word |= data[i + 1];
        sum += word;
        if (sum > 0xffff) sum = (sum & 0xffff) + 1;
    }
    return static_cast<std::uint16_t>(sum);
}

std::uint16_t naive_checksum(const Bytes& data) {
    return static_cast<std::uint16_t>(~naive_sum(data) & 0xffff);
}

Bytes pseudo_header(std::uint32_t src, std::uint32_t dst, std::size_t tcp_len) {
    return Bytes{static_cast<std::uint8_t>(src >> 24), static_cast<std::uint8_t>(src >> 16),
                 static_cast<std::uint8_t>(src >> 8),  static_cast<std::uint8_t>(src),
                 static_cast<std::uint8_t>(dst >> 24), static_cast<std::uint8_t>(dst >> 16),
                 static_cast<std::uint8_t>(dst >> 8),  static_cast<std::uint8_t>(dst),
                 0, 6, static_cast<std::uint8_t>(tcp_len >> 8),
                 static_cast<std::uint8_t>(tcp_len)};
}

std::uint16_t naive_tcp_checksum(std::uint32_t src, std::uint32_t dst, Bytes segment) {
    segment[16] = 0;
    segment[17] = 0;
    Bytes all = pseudo_header(src, dst, segment.size());
    all.insert(all.end(), segment.begin(), segment.end());
    return naive_checksum(all);
}

std::span<const std::byte> view(const Bytes& b) { return std::as_bytes(std::span(b)); }

Bytes random_bytes(std::mt19937& rng, std::size_t n) {
    Bytes out(n);
    for (auto& b : out) b = static_cast<std::uint8_t>(rng());
    return out;
}

void put16(Bytes& b, std::size_t at, std::uint16_t v) {
    b[at] = static_cast<std::uint8_t>(v >> 8);
    b[at + 1] = static_cast<std::uint8_t>(v);
}

std::uint16_t get16(const Bytes& b, std::size_t at) {
    return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]);
}

TEST(Checksum, Rfc1071WorkedExample) {
    // RFC 1071 §3: these bytes sum to 0xddf2.
    const Bytes data{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    EXPECT_EQ(fold(sum_words(view(data))), 0xddf2);
    EXPECT_EQ(internet_checksum(view(data)), 0x220d);
}

TEST(Checksum, KnownIpv4Header) {
    // A well-known header whose stored checksum is 0xb861.
    Bytes hdr{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
              0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    EXPECT_TRUE(ipv4_header_checksum_ok(view(hdr)));
    EXPECT_EQ(ipv4_header_checksum(view(hdr)), 0xb861);  // stored field ignored
    put16(hdr, 10, 0x1234);
    EXPECT_EQ(ipv4_header_checksum(view(hdr)), 0xb861);
    EXPECT_FALSE(ipv4_header_checksum_ok(view(hdr)));
}

TEST(Checksum, SumMatchesNaiveForEveryLengthIncludingOdd) {
    std::mt19937 rng(1071);
    for (std::size_t len = 0; len <= 67; ++len) {
        const Bytes data = random_bytes(rng, len);
        EXPECT_EQ(fold(sum_words(view(data))), naive_sum(data)) << "len " << len;
        EXPECT_EQ(internet_checksum(view(data)), naive_checksum(data)) << "len " << len;
    }
}

TEST(Checksum, OddTrailingBytePaddedWithZeroLowByte) {
    const Bytes odd{0x12, 0x34, 0x56};
    EXPECT_EQ(fold(sum_words(view(odd))), 0x1234 + 0x5600);
}

TEST(Checksum, Ipv4HeaderWithOptionsMatchesNaive) {
    std::mt19937 rng(791);
    for (std::size_t ihl = 5; ihl <= 15; ++ihl) {
        Bytes hdr = random_bytes(rng, ihl * 4);
        hdr[0] = static_cast<std::uint8_t>(0x40 | ihl);
        Bytes zeroed = hdr;
        put16(zeroed, 10, 0);
        const std::uint16_t want = naive_checksum(zeroed);
        EXPECT_EQ(ipv4_header_checksum(view(hdr)), want) << "ihl " << ihl;
        put16(hdr, 10, want);
        EXPECT_TRUE(ipv4_header_checksum_ok(view(hdr)));
        hdr[ihl * 4 - 1] ^= 0x01;
        EXPECT_FALSE(ipv4_header_checksum_ok(view(hdr)));
    }
}

TEST(Checksum, TcpMatchesNaiveIncludingOddPayloads) {
    std::mt19937 rng(9293);
    for (std::size_t len : {20u, 21u, 23u, 32u, 33u, 61u, 1480u, 1481u}) {
        const auto src = static_cast<std::uint32_t>(rng());
        const auto dst = static_cast<std::uint32_t>(rng());
        Bytes seg = random_bytes(rng, len);
        const std::uint16_t want = naive_tcp_checksum(src, dst, seg);
        EXPECT_EQ(tcp_checksum(Ipv4Addr{src}, Ipv4Addr{dst}, view(seg)), want)
            << "len " << len;
        put16(seg, 16, want);
        EXPECT_TRUE(tcp_checksum_ok(Ipv4Addr{src}, Ipv4Addr{dst}, view(seg)));
        // Any single-bit change anywhere in the covered data is detected.
        seg[len - 1] ^= 0x80;
        EXPECT_FALSE(tcp_checksum_ok(Ipv4Addr{src}, Ipv4Addr{dst}, view(seg)));
        seg[len - 1] ^= 0x80;
        EXPECT_FALSE(
            tcp_checksum_ok(Ipv4Addr{src ^ 1u}, Ipv4Addr{dst}, view(seg)));
    }
}

TEST(Checksum, TooShortInputsNeverVerify) {
    const Bytes zeros(19, 0xff);
    EXPECT_FALSE(ipv4_header_checksum_ok(view(zeros)));
    EXPECT_FALSE(tcp_checksum_ok(Ipv4Addr{0}, Ipv4Addr{0}, view(zeros)));
}

// Edge words chosen to hit the one's complement corner cases: 0x0000 and
// 0xffff (the two zeros), carries out of the top bit, no change at all.
struct Update16Case {
    std::uint16_t old_word;
    std::uint16_t new_word;
};

class Update16 : public ::testing::TestWithParam<Update16Case> {};

TEST_P(Update16, EqualsFullRecomputationAtEveryEvenOffset) {
    const Update16Case c = GetParam();
    std::mt19937 rng(1624u + c.old_word + c.new_word);
    for (int round = 0; round < 50; ++round) {
        Bytes data = random_bytes(rng, 40 + static_cast<std::size_t>(round % 3));
        const std::size_t field = 2 * static_cast<std::size_t>(rng() % 19);  // not the checksum
        const std::size_t cks = 38;
        if (field == cks) continue;
        put16(data, field, c.old_word);
        put16(data, cks, 0);
        put16(data, cks, naive_checksum(data));
        const std::uint16_t before = get16(data, cks);
        put16(data, field, c.new_word);
        Bytes zeroed = data;
        put16(zeroed, cks, 0);
        EXPECT_EQ(checksum_update16(before, c.old_word, c.new_word), naive_checksum(zeroed))
            << std::hex << c.old_word << "->" << c.new_word << " at " << field;
    }
}

INSTANTIATE_TEST_SUITE_P(Rfc1624, Update16,
                         ::testing::Values(Update16Case{0x0000, 0xffff},
                                           Update16Case{0xffff, 0x0000},
                                           Update16Case{0x0000, 0x0001},
                                           Update16Case{0x8000, 0x7fff},
                                           Update16Case{0x1234, 0x1234},
                                           Update16Case{0xfffe, 0x0001},
                                           Update16Case{0xabcd, 0x5432}));

TEST(Checksum, Update16Rfc1624Section4Example) {
    // RFC 1624 §4: a header summing to 0xcd7a has a word changed from
    // 0x5555 to 0x3285. Eqn 3 gives HC' = 0x0000 where eqn 2 gives 0xffff.
    EXPECT_EQ(checksum_update16(0xdd2f, 0x5555, 0x3285), 0x0000);
}

TEST(Checksum, Update32EqualsFullRecomputationWithWraparoundValues) {
    std::mt19937 rng(32);
    const std::uint32_t edges[] = {0x00000000u, 0xffffffffu, 0x7fffffffu, 0x80000000u,
                                   0x0000ffffu, 0xffff0000u, 0x00000001u, 0xfffffffeu};
    for (std::uint32_t from : edges) {
        for (std::uint32_t to : edges) {
            Bytes data = random_bytes(rng, 37);  // odd length, like an odd payload
            put16(data, 16, 0);
            data[4] = static_cast<std::uint8_t>(from >> 24);
            data[5] = static_cast<std::uint8_t>(from >> 16);
            data[6] = static_cast<std::uint8_t>(from >> 8);
            data[7] = static_cast<std::uint8_t>(from);
            const std::uint16_t hc = naive_checksum(data);
            data[4] = static_cast<std::uint8_t>(to >> 24);
            data[5] = static_cast<std::uint8_t>(to >> 16);
            data[6] = static_cast<std::uint8_t>(to >> 8);
            data[7] = static_cast<std::uint8_t>(to);
            EXPECT_EQ(checksum_update32(hc, from, to), naive_checksum(data))
                << std::hex << from << "->" << to;
        }
    }
}

TEST(Checksum, UpdateBytesAtOddAndEvenOffsets) {
    std::mt19937 rng(2018);
    for (std::size_t len = 1; len <= 8; ++len) {
        for (std::size_t at = 1; at + len <= 30; ++at) {
            Bytes data = random_bytes(rng, 31);
            data[0] = 0;  // checksum lives in bytes 0..1 here
            data[1] = 0;
            const std::uint16_t hc = naive_checksum(data);
            const Bytes old_field(data.begin() + static_cast<std::ptrdiff_t>(at),
                                  data.begin() + static_cast<std::ptrdiff_t>(at + len));
            const Bytes new_field = random_bytes(rng, len);
            std::copy(new_field.begin(), new_field.end(),
                      data.begin() + static_cast<std::ptrdiff_t>(at));
            EXPECT_EQ(checksum_update_bytes(hc, view(old_field), view(new_field), at % 2 == 1),
                      naive_checksum(data))
                << "len " << len << " at " << at;
        }
    }
}

TEST(Checksum, UpdateBytesWithMismatchedLengthsLeavesChecksum) {
    const Bytes a{1, 2, 3, 4};
    const Bytes b{1, 2, 3};
    EXPECT_EQ(checksum_update_bytes(0x1234, view(a), view(b), false), 0x1234);
}

TEST(Checksum, ChainedUpdatesStayExact) {
    // Many successive updates must not drift from a full recomputation.
    std::mt19937 rng(7323);
    Bytes data = random_bytes(rng, 60);
    put16(data, 16, 0);
    std::uint16_t hc = naive_checksum(data);
    for (int i = 0; i < 2000; ++i) {
        std::size_t at = 2 * (rng() % 30);
        if (at == 16) at = 18;
        const std::uint16_t old_word = get16(data, at);
        const auto new_word = static_cast<std::uint16_t>(rng());
        put16(data, at, new_word);
        hc = checksum_update16(hc, old_word, new_word);
        ASSERT_EQ(hc, naive_checksum(data)) << "step " << i;
    }
}

}  // namespace
}  // namespace migware::sniffer
