#pragma once
// Big-endian loads and stores on frame bytes. Every access is a size check
// followed by memcpy, so alignment never matters and an out-of-range offset
// is a harmless no-op (loads give 0) instead of undefined behaviour. The
// rewriter validates its layout first, so the checks never fire on the hot
// path; they are the last line of defence, not the error handling.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace migware::rewrite {

inline bool fits(std::size_t size, std::size_t offset, std::size_t length) noexcept {
    return offset <= size && length <= size - offset;
}

inline std::uint8_t load_u8(std::span<const std::byte> bytes, std::size_t offset) noexcept {
    return offset < bytes.size() ? std::to_integer<std::uint8_t>(bytes[offset]) : 0;
}

inline std::uint16_t load_be16(std::span<const std::byte> bytes, std::size_t offset) noexcept {
    if (!fits(bytes.size(), offset, 2)) return 0;
    std::array<std::uint8_t, 2> b{};
    std::memcpy(b.data(), bytes.data() + offset, b.size());
    return static_cast<std::uint16_t>((b[0] << 8) | b[1]);
}

inline std::uint32_t load_be32(std::span<const std::byte> bytes, std::size_t offset) noexcept {
    if (!fits(bytes.size(), offset, 4)) return 0;
    std::array<std::uint8_t, 4> b{};
    std::memcpy(b.data(), bytes.data() + offset, b.size());
    return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) |
           std::uint32_t{b[3]};
}

inline void store_u8(std::span<std::byte> bytes, std::size_t offset, std::uint8_t value) noexcept {
    if (offset < bytes.size()) bytes[offset] = std::byte{value};
}

inline void store_be16(std::span<std::byte> bytes, std::size_t offset,
                       std::uint16_t value) noexcept {
    if (!fits(bytes.size(), offset, 2)) return;
    const std::array<std::uint8_t, 2> b{static_cast<std::uint8_t>(value >> 8),
                                        static_cast<std::uint8_t>(value)};
    std::memcpy(bytes.data() + offset, b.data(), b.size());
}

inline void store_be32(std::span<std::byte> bytes, std::size_t offset,
                       std::uint32_t value) noexcept {
    if (!fits(bytes.size(), offset, 4)) return;
    const std::array<std::uint8_t, 4> b{
        static_cast<std::uint8_t>(value >> 24), static_cast<std::uint8_t>(value >> 16),
        static_cast<std::uint8_t>(value >> 8), static_cast<std::uint8_t>(value)};
    std::memcpy(bytes.data() + offset, b.data(), b.size());
}

}  // namespace migware::rewrite
