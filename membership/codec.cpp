#include "membership/codec.hpp"

namespace migware::membership {

namespace {

constexpr std::byte kMagic[3] = {std::byte{'M'}, std::byte{'W'}, std::byte{'M'}};
constexpr std::uint8_t kVersion = 1;
constexpr std::size_t kHeader = 3 + 1 + 1 + 1 + 4 + 8 + 4 + 8 + 8 + 4;
constexpr std::uint8_t kHasActive = 1, kActiveLeft = 2, kVerdictKnown = 4, kVerdictDown = 8;

void put(std::vector<std::byte>& out, std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<std::byte>(v >> (8 * i)));
}
std::uint64_t get(std::span<const std::byte> in, std::size_t at, int bytes) {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | std::to_integer<std::uint64_t>(in[at + i]);
    return v;
}

}  // namespace

std::vector<std::byte> encode(const Message& m) {
    std::vector<std::byte> out;
    out.reserve(kHeader + m.facts.size());
    for (std::byte b : kMagic) out.push_back(b);
    put(out, kVersion, 1);
    put(out, static_cast<std::uint8_t>(m.kind), 1);
    std::uint8_t flags = 0;
    if (m.active) flags |= kHasActive;
    if (m.active_left) flags |= kActiveLeft;
    if (m.primary_down) flags |= kVerdictKnown;
    if (m.primary_down.value_or(false)) flags |= kVerdictDown;
    put(out, flags, 1);
    put(out, m.priority, 4);
    put(out, m.epoch, 8);
    put(out, m.active.value_or(0), 4);
    put(out, static_cast<std::uint64_t>(m.sent_at), 8);
    put(out, m.ring, 8);
    put(out, m.facts.size(), 4);
    for (char c : m.facts) out.push_back(static_cast<std::byte>(c));
    return out;
}

Decoded decode(std::span<const std::byte> in, NodeId from) {
    if (in.size() < kHeader) return {std::nullopt, "short message (" + std::to_string(in.size()) + " bytes)"};
    if (in[0] != kMagic[0] || in[1] != kMagic[1] || in[2] != kMagic[2]) return {std::nullopt, "bad magic"};
    if (get(in, 3, 1) != kVersion) return {std::nullopt, "unknown version " + std::to_string(get(in, 3, 1))};
    const auto kind = get(in, 4, 1);
    if (kind > static_cast<std::uint8_t>(MessageKind::Facts)) return {std::nullopt, "unknown kind " + std::to_string(kind)};
    const auto flags = static_cast<std::uint8_t>(get(in, 5, 1));
    if (flags & ~(kHasActive | kActiveLeft | kVerdictKnown | kVerdictDown)) return {std::nullopt, "unknown flags"};
    if ((flags & kVerdictDown) && !(flags & kVerdictKnown)) return {std::nullopt, "inconsistent verdict flags"};
    const std::uint64_t facts_len = get(in, kHeader - 4, 4);
    if (facts_len != in.size() - kHeader) return {std::nullopt, "facts length does not match the message"};
    Message m;
    m.kind = static_cast<MessageKind>(kind);
    m.from = from;
    m.priority = static_cast<std::uint32_t>(get(in, 6, 4));
    m.epoch = get(in, 10, 8);
    if (flags & kHasActive) m.active = static_cast<NodeId>(get(in, 18, 4));
    m.active_left = (flags & kActiveLeft) != 0;
    if (flags & kVerdictKnown) m.primary_down = (flags & kVerdictDown) != 0;
    m.sent_at = static_cast<MonoNs>(get(in, 22, 8));
    m.ring = get(in, 30, 8);
    m.facts.reserve(facts_len);
    for (std::size_t i = kHeader; i < in.size(); ++i) m.facts.push_back(static_cast<char>(in[i]));
    return {std::move(m), {}};
}

}  // namespace migware::membership
