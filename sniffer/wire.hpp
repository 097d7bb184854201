#pragma once
// The one byte-access header: big-endian reads and writes on frame bytes.
// Every access is a size check followed by memcpy, so alignment never
// matters and an out-of-bounds access cannot be written (tcpdump's GET_*
// discipline, libtins' memory helpers). Three flavours:
//   read_*   checked, std::nullopt when out of range: for parsing, where a
//            short frame is an answer (Truncated), not an error;
//   load_* / store_*
//            checked, 0 / no-op when out of range: for code that has
//            validated its layout first (the rewriter, the frame builders),
//            where the checks are the last line of defence and never fire;
//   *_at     unchecked, after one `fits` check has covered a whole header.

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

namespace migware::sniffer::wire {

inline bool fits(std::size_t size, std::size_t offset, std::size_t len) noexcept {
    return offset <= size && len <= size - offset;
}

inline bool fits(std::span<const std::byte> bytes, std::size_t offset, std::size_t len) noexcept {
    return fits(bytes.size(), offset, len);
}

/// Unchecked reads, for use after one `fits` check covers a whole header.
inline std::uint8_t u8_at(std::span<const std::byte> b, std::size_t off) noexcept {
    return static_cast<std::uint8_t>(b[off]);
}
inline std::uint16_t be16_at(std::span<const std::byte> b, std::size_t off) noexcept {
    std::uint16_t v;
    std::memcpy(&v, b.data() + off, 2);
    if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap16(v);
    return v;
}
inline std::uint32_t be32_at(std::span<const std::byte> b, std::size_t off) noexcept {
    std::uint32_t v;
    std::memcpy(&v, b.data() + off, 4);
    if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap32(v);
    return v;
}
inline std::uint16_t le16_at(std::span<const std::byte> b, std::size_t off) noexcept {
    return static_cast<std::uint16_t>(u8_at(b, off) | (u8_at(b, off + 1) << 8));
}
inline std::uint32_t le32_at(std::span<const std::byte> b, std::size_t off) noexcept {
    return std::uint32_t{u8_at(b, off)} | (std::uint32_t{u8_at(b, off + 1)} << 8) |
           (std::uint32_t{u8_at(b, off + 2)} << 16) | (std::uint32_t{u8_at(b, off + 3)} << 24);
}

// ---- checked reads: std::nullopt when out of range

inline std::optional<std::uint8_t> read_u8(std::span<const std::byte> b, std::size_t off) noexcept {
    if (!fits(b, off, 1)) return std::nullopt;
    return u8_at(b, off);
}

inline std::optional<std::uint16_t> read_be16(std::span<const std::byte> b,
                                              std::size_t off) noexcept {
    if (!fits(b, off, 2)) return std::nullopt;
    return be16_at(b, off);
}

inline std::optional<std::uint32_t> read_be32(std::span<const std::byte> b,
                                              std::size_t off) noexcept {
    if (!fits(b, off, 4)) return std::nullopt;
    return be32_at(b, off);
}

// ---- checked loads and stores: 0 / no-op when out of range

inline std::uint8_t load_u8(std::span<const std::byte> b, std::size_t off) noexcept {
    return fits(b, off, 1) ? u8_at(b, off) : std::uint8_t{0};
}

inline std::uint16_t load_be16(std::span<const std::byte> b, std::size_t off) noexcept {
    return fits(b, off, 2) ? be16_at(b, off) : std::uint16_t{0};
}

inline std::uint32_t load_be32(std::span<const std::byte> b, std::size_t off) noexcept {
    return fits(b, off, 4) ? be32_at(b, off) : 0u;
}

inline void store_u8(std::span<std::byte> b, std::size_t off, std::uint8_t value) noexcept {
    if (fits(b.size(), off, 1)) b[off] = std::byte{value};
}

inline void store_be16(std::span<std::byte> b, std::size_t off, std::uint16_t value) noexcept {
    if (!fits(b.size(), off, 2)) return;
    const std::array<std::uint8_t, 2> v{static_cast<std::uint8_t>(value >> 8),
                                        static_cast<std::uint8_t>(value)};
    std::memcpy(b.data() + off, v.data(), v.size());
}

inline void store_be32(std::span<std::byte> b, std::size_t off, std::uint32_t value) noexcept {
    if (!fits(b.size(), off, 4)) return;
    const std::array<std::uint8_t, 4> v{
        static_cast<std::uint8_t>(value >> 24), static_cast<std::uint8_t>(value >> 16),
        static_cast<std::uint8_t>(value >> 8), static_cast<std::uint8_t>(value)};
    std::memcpy(b.data() + off, v.data(), v.size());
}

/// Copies `src` to `off`; nothing is written unless all of it fits.
inline void store_bytes(std::span<std::byte> b, std::size_t off,
                        std::span<const std::byte> src) noexcept {
    if (!fits(b.size(), off, src.size()) || src.empty()) return;
    std::memcpy(b.data() + off, src.data(), src.size());
}

}  // namespace migware::sniffer::wire
