#pragma once
// Enum <-> name. Each enum's names are written once, in an array beside the
// enum, in enumerator order; both directions come from that array (the
// control protocol parses what the log and the dashboard print).

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace migware {

template <typename E, std::size_t N>
constexpr std::string_view enum_name(const std::array<std::string_view, N>& names, E e) noexcept {
    const auto i = static_cast<std::size_t>(e);
    return i < N ? names[i] : std::string_view("unknown");
}

template <typename E, std::size_t N>
constexpr std::optional<E> enum_from_name(const std::array<std::string_view, N>& names,
                                          std::string_view s) noexcept {
    for (std::size_t i = 0; i < N; ++i)
        if (names[i] == s) return static_cast<E>(i);
    return std::nullopt;
}

/// "a, b, c": the names for a message.
template <std::size_t N>
std::string joined(const std::array<std::string_view, N>& names, std::string_view sep = ", ") {
    std::string out;
    for (std::string_view n : names) {
        if (!out.empty()) out += sep;
        out += n;
    }
    return out;
}

}  // namespace migware
