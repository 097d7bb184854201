#pragma once
// Bounds-checked big-endian reads from a frame. Every read is a size check
// followed by memcpy, so alignment never matters and an out-of-bounds read
// cannot be written (tcpdump's GET_* discipline, libtins' memory helpers).

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

namespace migware::sniffer::wire {

inline bool fits(std::span<const std::byte> bytes, std::size_t offset, std::size_t len) {
    return offset <= bytes.size() && len <= bytes.size() - offset;
}

inline std::optional<std::uint8_t> read_u8(std::span<const std::byte> b, std::size_t off) {
    if (!fits(b, off, 1)) return std::nullopt;
    return static_cast<std::uint8_t>(b[off]);
}

inline std::optional<std::uint16_t> read_be16(std::span<const std::byte> b, std::size_t off) {
    if (!fits(b, off, 2)) return std::nullopt;
    std::uint8_t v[2];
    std::memcpy(v, b.data() + off, 2);
    return static_cast<std::uint16_t>((v[0] << 8) | v[1]);
}

inline std::optional<std::uint32_t> read_be32(std::span<const std::byte> b, std::size_t off) {
    if (!fits(b, off, 4)) return std::nullopt;
    std::uint8_t v[4];
    std::memcpy(v, b.data() + off, 4);
    return (std::uint32_t{v[0]} << 24) | (std::uint32_t{v[1]} << 16) | (std::uint32_t{v[2]} << 8) |
           std::uint32_t{v[3]};
}

/// Unchecked variants for use after one `fits` check covers a whole header.
inline std::uint8_t u8_at(std::span<const std::byte> b, std::size_t off) {
    return static_cast<std::uint8_t>(b[off]);
}
inline std::uint16_t be16_at(std::span<const std::byte> b, std::size_t off) {
    std::uint16_t v;
    std::memcpy(&v, b.data() + off, 2);
    if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap16(v);
    return v;
}
inline std::uint32_t be32_at(std::span<const std::byte> b, std::size_t off) {
    std::uint32_t v;
    std::memcpy(&v, b.data() + off, 4);
    if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap32(v);
    return v;
}
inline std::uint16_t le16_at(std::span<const std::byte> b, std::size_t off) {
    return static_cast<std::uint16_t>(u8_at(b, off) | (u8_at(b, off + 1) << 8));
}
inline std::uint32_t le32_at(std::span<const std::byte> b, std::size_t off) {
    return std::uint32_t{u8_at(b, off)} | (std::uint32_t{u8_at(b, off + 1)} << 8) |
           (std::uint32_t{u8_at(b, off + 2)} << 16) | (std::uint32_t{u8_at(b, off + 3)} << 24);
}

}  // namespace migware::sniffer::wire
