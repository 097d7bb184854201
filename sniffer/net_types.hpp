#pragma once
// Value types for wire quantities. Each is distinct so that a swapped
// address/port or a plain `<` on sequence numbers does not compile.

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace migware::sniffer {

/// IPv4 address, host byte order.
struct Ipv4Addr {
    std::uint32_t value = 0;
    constexpr auto operator<=>(const Ipv4Addr&) const = default;
    std::string to_string() const;
    /// Dotted quad only; nullopt on anything else.
    static std::optional<Ipv4Addr> parse(std::string_view text);
};

/// TCP/UDP port, host byte order.
struct Port {
    std::uint16_t value = 0;
    constexpr auto operator<=>(const Port&) const = default;
};

struct MacAddr {
    std::array<std::uint8_t, 6> bytes{};
    constexpr auto operator<=>(const MacAddr&) const = default;
    std::string to_string() const;
};

/// An IP:port pair, e.g. a protected server endpoint.
struct Endpoint {
    Ipv4Addr ip;
    Port port;
    constexpr auto operator<=>(const Endpoint&) const = default;
    std::string to_string() const;
    /// "a.b.c.d:port"; nullopt on anything else.
    static std::optional<Endpoint> parse(std::string_view text);
};

/// Signed distance between two sequence numbers (mod 2^32).
struct SeqDelta {
    std::uint32_t value = 0;  // two's complement modulo 2^32
    constexpr auto operator<=>(const SeqDelta&) const = default;
    constexpr SeqDelta operator-() const { return SeqDelta{0u - value}; }
    constexpr std::int32_t as_signed() const { return static_cast<std::int32_t>(value); }
};

/// A 32-bit TCP sequence/ack number with RFC 1982 serial arithmetic.
/// Ordering is only defined for values less than 2^31 apart
/// (RFC 9293 §3.4); there is deliberately no operator<=>.
class SeqNum {
public:
    constexpr SeqNum() = default;
    constexpr explicit SeqNum(std::uint32_t raw) : raw_(raw) {}
    constexpr std::uint32_t raw() const { return raw_; }

    constexpr bool operator==(const SeqNum&) const = default;
    constexpr bool before(SeqNum other) const {
        return static_cast<std::int32_t>(raw_ - other.raw_) < 0;
    }
    constexpr bool after(SeqNum other) const { return other.before(*this); }
    constexpr bool before_or_eq(SeqNum other) const { return !after(other); }
    constexpr bool after_or_eq(SeqNum other) const { return !before(other); }

    constexpr SeqNum operator+(SeqDelta d) const { return SeqNum{raw_ + d.value}; }
    constexpr SeqNum operator-(SeqDelta d) const { return SeqNum{raw_ - d.value}; }
    constexpr SeqNum operator+(std::uint32_t n) const { return SeqNum{raw_ + n}; }
    constexpr SeqNum operator-(std::uint32_t n) const { return SeqNum{raw_ - n}; }
    /// Distance from `other` to this (this - other), mod 2^32.
    constexpr SeqDelta operator-(SeqNum other) const { return SeqDelta{raw_ - other.raw_}; }

    /// The later of two numbers in serial order.
    static constexpr SeqNum max(SeqNum a, SeqNum b) { return a.before(b) ? b : a; }

private:
    std::uint32_t raw_ = 0;
};

/// TCP timestamp values (RFC 7323) wrap like sequence numbers.
using TsVal = SeqNum;

}  // namespace migware::sniffer

template <>
struct std::hash<migware::sniffer::Ipv4Addr> {
    std::size_t operator()(const migware::sniffer::Ipv4Addr& a) const noexcept {
        return std::hash<std::uint32_t>{}(a.value);
    }
};
