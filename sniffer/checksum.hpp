#pragma once
// The Internet checksum (RFC 1071) and its incremental update (RFC 1624):
// the project's one implementation. It lives in sniffer/, the lowest layer,
// so that the parser (IPv4 header check), rewrite/ (rewriting and building
// frames) and the engine (capture-time TCP check) share it without a
// dependency cycle.
//
// Sums are kept unfolded in a 64-bit accumulator: the one's complement sum
// is associative and commutative, so folding once at the end gives the same
// 16-bit result as folding after every word, and a 64-bit accumulator cannot
// overflow for anything shorter than 2^48 bytes.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "sniffer/net_types.hpp"

namespace migware::sniffer {

inline constexpr std::uint8_t kIpProtoTcp = 6;

/// Adds `bytes` as big-endian 16-bit words to `acc` (RFC 1071 §4.1); an odd
/// trailing byte is padded with a zero low byte. The result is congruent
/// (mod 0xffff) to the plain word-by-word sum and zero only if that is, so
/// fold() of it is bit-identical; the words themselves are summed 32 bits at
/// a time in host order (RFC 1071 §2(B)).
/// Inline, with fold() and ipv4_header_checksum_ok(): the parser runs them
/// on every IPv4 frame.
inline std::uint64_t sum_words(std::span<const std::byte> bytes, std::uint64_t acc = 0) noexcept;

/// Folds the carries back into 16 bits (end-around carry). Not complemented.
inline std::uint16_t fold(std::uint64_t sum) noexcept {
    while ((sum >> 16) != 0) sum = (sum & 0xffffu) + (sum >> 16);
    return static_cast<std::uint16_t>(sum);
}

/// The folded sum of `bytes` in host byte order: on a little-endian machine
/// the byte-swapped RFC 1071 sum (§2(B)). 0xffff either way is 0xffff.
inline std::uint16_t host_order_sum(std::span<const std::byte> bytes) noexcept {
    // 32-bit host-order words into a 64-bit sum: 2^16 = 1 (mod 0xffff), so
    // carries out of a 16-bit half are end-around carries in waiting. 2^32
    // words would be needed to overflow.
    const std::byte* p = bytes.data();
    const std::size_t n = bytes.size();
    const std::size_t whole = n & ~std::size_t{3};
    std::uint64_t s = 0;
    for (std::size_t i = 0; i < whole; i += 4) {
        std::uint32_t w;
        std::memcpy(&w, p + i, 4);
        s += w;
    }
    if ((n & 2) != 0) {
        std::uint16_t w;
        std::memcpy(&w, p + whole, 2);
        s += w;
    }
    if ((n & 1) != 0) {
        // The odd byte is the high half of a zero-padded big-endian word.
        const auto b = std::to_integer<std::uint64_t>(p[n - 1]);
        s += std::endian::native == std::endian::little ? b : (b << 8);
    }
    return fold(s);
}

inline std::uint64_t sum_words(std::span<const std::byte> bytes, std::uint64_t acc) noexcept {
    std::uint16_t v = host_order_sum(bytes);
    if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap16(v);
    return acc + v;
}

/// ~fold(sum_words(bytes)): the value to store in a checksum field whose bytes
/// are zero inside `bytes`.
std::uint16_t internet_checksum(std::span<const std::byte> bytes) noexcept;

/// Sum of the IPv4 pseudo-header (RFC 9293 §3.1) for a segment of
/// `l4_length` bytes.
std::uint64_t pseudo_header_sum(Ipv4Addr src, Ipv4Addr dst, std::uint8_t protocol,
                                std::uint16_t l4_length) noexcept;

/// The IPv4 header checksum `header` should carry (RFC 791). The two bytes
/// currently in the checksum field (offset 10) are ignored. `header` is the
/// whole header, options included (IHL * 4 bytes).
std::uint16_t ipv4_header_checksum(std::span<const std::byte> header) noexcept;

/// True if the header, checksum field included, sums to 0xffff.
inline bool ipv4_header_checksum_ok(std::span<const std::byte> header) noexcept {
    return header.size() >= 20 && host_order_sum(header) == 0xffffu;
}

/// The TCP checksum `segment` (header + payload, exactly the IP payload)
/// should carry; the bytes in the checksum field (offset 16) are ignored.
std::uint16_t tcp_checksum(Ipv4Addr src, Ipv4Addr dst,
                           std::span<const std::byte> segment) noexcept;

/// True if pseudo-header + segment, checksum field included, sums to 0xffff.
bool tcp_checksum_ok(Ipv4Addr src, Ipv4Addr dst,
                     std::span<const std::byte> segment) noexcept;

/// RFC 1624 eqn 3: HC' = ~(~HC + ~m + m') for one 16-bit word at an even
/// offset. Eqn 3, not eqn 2, because it cannot produce 0xffff (-0) from any
/// HC that a full computation can produce, so the result is bit-identical to
/// a full recomputation (RFC 1624 §3-§4).
std::uint16_t checksum_update16(std::uint16_t hc, std::uint16_t old_word,
                                std::uint16_t new_word) noexcept;

/// RFC 1624 eqn 3 for a 32-bit field at an even offset (two words).
std::uint16_t checksum_update32(std::uint16_t hc, std::uint32_t old_value,
                                std::uint32_t new_value) noexcept;

/// RFC 1624 eqn 3 for a field of any length at any offset. `odd_offset` says
/// the field starts at an odd byte offset from the start of the checksummed
/// region (TCP options need not be word aligned); RFC 1071 §2(B): the sum of
/// byte-swapped words is the byte-swapped sum, so each byte just lands in the
/// other half of its word. Spans of different lengths leave `hc` unchanged.
std::uint16_t checksum_update_bytes(std::uint16_t hc, std::span<const std::byte> old_bytes,
                                    std::span<const std::byte> new_bytes, bool odd_offset) noexcept;

}  // namespace migware::sniffer
