#include "migware/twin.hpp"

namespace migware {

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
