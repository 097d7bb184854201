#pragma once
// migware's top-level state chart (thesis figure 9, extended):
//
//   Normal --PrimaryDown--> Recovery --TwinsResolved--> Proxy
//      ^                        |                          |
//      +---- TakeoverRolledBack (the primary never died) --+
//      +---- StoodDown (membership: another member acts) --+
//
// PrimaryAnswering in Recovery or Proxy changes nothing: the twins keep
// serving the clients; it is logged so the operator knows. A primary that
// answers with numbers that moved past the twins' starting points never died
// (issue 10): the takeover was wrong and is rolled back. Fail-back from a
// primary that really returns stays an operator's decision.

#include <cstdint>
#include <string_view>

#include "migware/names.hpp"

namespace migware {

enum class State : std::uint8_t { Normal, Recovery, Proxy };
enum class Event : std::uint8_t { PrimaryDown, TwinsResolved, PrimaryAnswering, TakeoverRolledBack, StoodDown };

inline constexpr std::array<std::string_view, 3> kStateNames{"normal", "recovery", "proxy"};
inline constexpr std::array<std::string_view, 5> kEventNames{"primary_down", "twins_resolved",
                                                             "primary_answering", "takeover_rolled_back",
                                                             "stood_down"};
static_assert(kStateNames.size() == static_cast<std::size_t>(State::Proxy) + 1);
static_assert(kEventNames.size() == static_cast<std::size_t>(Event::StoodDown) + 1);
constexpr std::string_view name_of(State s) { return enum_name(kStateNames, s); }
constexpr std::string_view name_of(Event e) { return enum_name(kEventNames, e); }

struct Transition {
    State to;
    bool changed = false;
};

/// Pure: no I/O, no clock.
constexpr Transition next_state(State from, Event event) {
    switch (from) {
        case State::Normal:
            if (event == Event::PrimaryDown) return {State::Recovery, true};
            return {from, false};
        case State::Recovery:
            if (event == Event::TwinsResolved) return {State::Proxy, true};
            if (event == Event::TakeoverRolledBack || event == Event::StoodDown) return {State::Normal, true};
            return {from, false};
        case State::Proxy:
            if (event == Event::TakeoverRolledBack || event == Event::StoodDown) return {State::Normal, true};
            return {from, false};
    }
    return {from, false};
}

}  // namespace migware
