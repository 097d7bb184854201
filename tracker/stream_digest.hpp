#pragma once
// The running digest of a byte stream (issue 13): what lets migware compare
// the bytes a client already received from the primary with the bytes the
// backup regenerates, without holding either. FNV-1a, 64 bits: byte by byte,
// so the digest of a stream does not depend on how it was cut into segments.
// It guards against a service that is not deterministic, not against an
// adversary (a chosen collision is easy; an accidental one is 2^-64).

#include <cstddef>
#include <cstdint>
#include <span>

namespace migware::tracker {

inline constexpr std::uint64_t kDigestBasis = 0xcbf29ce484222325ull;

inline std::uint64_t digest_update(std::uint64_t h, std::span<const std::byte> bytes) noexcept {
    for (std::byte b : bytes) {
        h ^= std::to_integer<std::uint8_t>(b);
        h *= 0x100000001b3ull;
    }
    return h;
}

}  // namespace migware::tracker
