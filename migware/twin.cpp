#include "migware/twin.hpp"

namespace migware {

std::string_view name_of(TwinPhase p) {
    switch (p) {
        case TwinPhase::Waiting: return "waiting";
        case TwinPhase::SynSent: return "syn_sent";
        case TwinPhase::Up: return "up";
        case TwinPhase::Closed: return "closed";
        case TwinPhase::Failed: return "failed";
    }
    return "unknown";
}

std::string_view name_of(TwinEvent e) {
    switch (e) {
        case TwinEvent::SynSent: return "syn_sent";
        case TwinEvent::Established: return "established";
        case TwinEvent::Failed: return "failed";
        case TwinEvent::Closed: return "closed";
    }
    return "unknown";
}

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

std::string_view name_of(Unrecovered u) {
    switch (u) {
        case Unrecovered::HandshakeIncomplete: return "handshake_incomplete";
        case Unrecovered::HandshakeUnseen: return "handshake_unseen";
        case Unrecovered::Closing: return "closing";
        case Unrecovered::NoSynAck: return "no_synack";
        case Unrecovered::BackupRefused: return "backup_refused";
        case Unrecovered::kCount: break;
    }
    return "unknown";
}

}  // namespace migware
