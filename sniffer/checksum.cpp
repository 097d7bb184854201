#include "sniffer/checksum.hpp"

namespace migware::sniffer {
namespace {

constexpr std::size_t kIpChecksumOffset = 10;
constexpr std::size_t kTcpChecksumOffset = 16;

// Sum of the bytes with each byte placed in the high half of its word when
// it sits at an even position, else in the low half (RFC 1071 §2(B)).
std::uint64_t sum_at_parity(std::span<const std::byte> bytes, bool odd_offset) noexcept {
    if (!odd_offset) return sum_words(bytes);
    std::uint64_t acc = 0;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        const auto b = std::to_integer<std::uint64_t>(bytes[i]);
        acc += (i % 2 == 0) ? b : (b << 8);
    }
    return acc;
}

// Sums `region` but skips the 16-bit checksum field at `field` (even), so a
// stale or partial value in it cannot leak into a full recomputation.
std::uint64_t sum_skipping(std::span<const std::byte> region, std::size_t field,
                           std::uint64_t acc) noexcept {
    if (region.size() <= field) return sum_words(region, acc);
    acc = sum_words(region.first(field), acc);
    if (region.size() > field + 2) acc = sum_words(region.subspan(field + 2), acc);
    return acc;
}

std::uint16_t l4_length(std::span<const std::byte> segment) noexcept {
    // An IPv4 payload never exceeds 65515 bytes; anything longer is a caller
    // bug, and truncating keeps the function total instead of undefined.
    return static_cast<std::uint16_t>(segment.size() & 0xffffu);
}

}  // namespace

std::uint16_t internet_checksum(std::span<const std::byte> bytes) noexcept {
    return static_cast<std::uint16_t>(~fold(sum_words(bytes)));
}

std::uint64_t pseudo_header_sum(Ipv4Addr src, Ipv4Addr dst, std::uint8_t protocol,
                                std::uint16_t length) noexcept {
    return std::uint64_t{src.value >> 16} + (src.value & 0xffffu) + (dst.value >> 16) +
           (dst.value & 0xffffu) + protocol + length;
}

std::uint16_t ipv4_header_checksum(std::span<const std::byte> header) noexcept {
    return static_cast<std::uint16_t>(~fold(sum_skipping(header, kIpChecksumOffset, 0)));
}

std::uint16_t tcp_checksum(Ipv4Addr src, Ipv4Addr dst,
                           std::span<const std::byte> segment) noexcept {
    const std::uint64_t pseudo = pseudo_header_sum(src, dst, kIpProtoTcp, l4_length(segment));
    return static_cast<std::uint16_t>(~fold(sum_skipping(segment, kTcpChecksumOffset, pseudo)));
}

bool tcp_checksum_ok(Ipv4Addr src, Ipv4Addr dst,
                     std::span<const std::byte> segment) noexcept {
    if (segment.size() < 20) return false;
    const std::uint64_t pseudo = pseudo_header_sum(src, dst, kIpProtoTcp, l4_length(segment));
    return fold(sum_words(segment, pseudo)) == 0xffffu;
}

std::uint16_t checksum_update16(std::uint16_t hc, std::uint16_t old_word,
                                std::uint16_t new_word) noexcept {
    const std::uint64_t sum = std::uint64_t{static_cast<std::uint16_t>(~hc)} +
                              static_cast<std::uint16_t>(~old_word) + new_word;
    return static_cast<std::uint16_t>(~fold(sum));
}

std::uint16_t checksum_update32(std::uint16_t hc, std::uint32_t old_value,
                                std::uint32_t new_value) noexcept {
    const std::uint64_t sum = std::uint64_t{static_cast<std::uint16_t>(~hc)} +
                              static_cast<std::uint16_t>(~(old_value >> 16)) +
                              static_cast<std::uint16_t>(~old_value) + (new_value >> 16) +
                              (new_value & 0xffffu);
    return static_cast<std::uint16_t>(~fold(sum));
}

std::uint16_t checksum_update_bytes(std::uint16_t hc, std::span<const std::byte> old_bytes,
                                    std::span<const std::byte> new_bytes,
                                    bool odd_offset) noexcept {
    if (old_bytes.size() != new_bytes.size()) return hc;
    // ~m is taken on the folded sum: one's complement negation distributes
    // over one's complement addition, so ~(a +' b) = ~a +' ~b.
    const std::uint16_t m = fold(sum_at_parity(old_bytes, odd_offset));
    const std::uint16_t m_new = fold(sum_at_parity(new_bytes, odd_offset));
    const std::uint64_t sum =
        std::uint64_t{static_cast<std::uint16_t>(~hc)} + static_cast<std::uint16_t>(~m) + m_new;
    return static_cast<std::uint16_t>(~fold(sum));
}

}  // namespace migware::sniffer
