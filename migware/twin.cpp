#include "migware/twin.hpp"

#include <array>

#include "migware/names.hpp"

namespace migware {

namespace {

// Each enum's names, once, in enumerator order (names.hpp).
constexpr std::array<std::string_view, 5> kTwinPhaseNames{"waiting", "syn_sent", "up", "closed", "failed"};
constexpr std::array<std::string_view, 4> kTwinEventNames{"syn_sent", "established", "failed", "closed"};
constexpr std::array<std::string_view, 8> kUnrecoveredNames{"handshake_incomplete", "handshake_unseen",
                                                            "closing", "no_synack", "backup_refused",
                                                            "reply_lost", "reply_not_seen_whole",
                                                            "request_unanswered"};
static_assert(kTwinPhaseNames.size() == static_cast<std::size_t>(TwinPhase::Failed) + 1);
static_assert(kTwinEventNames.size() == static_cast<std::size_t>(TwinEvent::Closed) + 1);
static_assert(kUnrecoveredNames.size() == static_cast<std::size_t>(Unrecovered::kCount));

}  // namespace

std::string_view name_of(TwinPhase p) { return enum_name(kTwinPhaseNames, p); }
std::string_view name_of(TwinEvent e) { return enum_name(kTwinEventNames, e); }
std::string_view name_of(Unrecovered u) { return enum_name(kUnrecoveredNames, u); }

std::optional<TwinPhase> next_phase(TwinPhase from, TwinEvent e) {
    switch (e) {
        case TwinEvent::SynSent:
            if (from == TwinPhase::Waiting) return TwinPhase::SynSent;
            break;
        case TwinEvent::Established:
            if (from == TwinPhase::SynSent) return TwinPhase::Up;
            break;
        case TwinEvent::Failed:
            if (from == TwinPhase::Waiting || from == TwinPhase::SynSent) return TwinPhase::Failed;
            break;
        case TwinEvent::Closed:
            if (from == TwinPhase::Up) return TwinPhase::Closed;
            break;
    }
    return std::nullopt;
}

}  // namespace migware
