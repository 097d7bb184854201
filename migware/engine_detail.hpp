#pragma once
// What the engine's files share and nothing else needs: its constants and a
// few helpers on sequence numbers and frames. Internal to migware/failover*.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "monitor/clock.hpp"
#include "sniffer/packet.hpp"

namespace migware::detail {

using monitor::MonoNs;
using sniffer::Endpoint;
using sniffer::Packet;
using sniffer::PacketKind;
using sniffer::SeqNum;
namespace tf = sniffer::tcp_flag;

inline constexpr std::size_t kScratchBytes = 65536 + 64;
inline constexpr std::uint16_t kDefaultMss = 536;  // RFC 9293 §3.7.1 when the client sent none
inline constexpr std::size_t kUnrecoverableLogLimit = 50;
inline constexpr std::size_t kResetLogLimit = 20;
// Gratuitous ARPs against the primary's own claims: one for every claim (an
// ARP request aimed at a host overrides its entry whatever its age), within a
// token bucket that only a flood would empty.
inline constexpr double kReassertBurst = 64;
inline constexpr double kReassertPerSecond = 1000;
inline constexpr MonoNs kFenceRoundGap = 1'000 * monitor::kMillisecond;
// No RST to a stale socket until the primary's ARP claims have been quiet this
// long: while some client still points at the primary, a live stale socket
// answers its segments with harmless duplicate ACKs, a reset one with RSTs.
inline constexpr MonoNs kFenceHold = 50 * monitor::kMillisecond;
// After a RST, the probe that checks the socket is gone. A primary with no
// socket answers at once and without rate limit.
inline constexpr MonoNs kFenceVerify = 20 * monitor::kMillisecond;
// No RST to any stale socket until this long after the primary is first heard
// (issue 10): a primary that never died shows it within milliseconds (its
// ACKs run past what migware saw the clients send), and one such ACK must
// stop the fence before it resets anything of a healthy service.
inline constexpr MonoNs kFenceClassify = 150 * monitor::kMillisecond;
inline constexpr MonoNs kRelaySweep = 1'000 * monitor::kMillisecond;
inline constexpr MonoNs kRelayIdle = 600'000 * monitor::kMillisecond;
inline constexpr std::size_t kEthernet = 14;
// The warning that the capture loses frames: at the first loss in Normal, then
// at most this often.
inline constexpr MonoNs kLossWarnEvery = 60'000 * monitor::kMillisecond;
// A takeover is settled (never rolled back any more) once client frames have
// been heard for this long after it with no proof of life: this host hears
// the segment, and a living primary would have shown itself (its clients'
// ACKs run past what migware saw within milliseconds). Or once the fence has
// reset a stale socket. Until then segments past a hole are not proxied; from
// then on they are, and a lost frame costs one retransmission.
inline constexpr MonoNs kSettleHeard = 500 * monitor::kMillisecond;
// Capture loss this long before a takeover (or after it) makes a client's ACK
// of server bytes migware never saw no proof of life: those bytes may have
// been sent before the failure (detection takes up to ~1.5 s) and dropped.
inline constexpr MonoNs kLossWindow = 5'000 * monitor::kMillisecond;
// RSTs at most per reset client, answering its segments at their ACK number.
inline constexpr int kResetAnswers = 8;
// How often Normal expires closed and idle connections from the table.
inline constexpr MonoNs kExpirySweep = 1'000 * monitor::kMillisecond;

inline constexpr sniffer::MacAddr kBroadcastMac{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

inline bool known(const sniffer::MacAddr& m) { return m != sniffer::MacAddr{}; }

inline std::string ep(const Endpoint& e) { return e.to_string(); }

/// One past the last sequence number `seq` occupies with `p`'s payload and FIN.
inline sniffer::SeqNum segment_end(sniffer::SeqNum seq, const sniffer::Packet& p) {
    return seq + (p.payload_length + (p.tcp.has(sniffer::tcp_flag::kFin) ? 1u : 0u));
}

/// Moves `edge` to `end` when [seq, end) starts inside what it already covers:
/// coverage that stays contiguous, never across a hole.
inline void extend_contiguous(sniffer::SeqNum& edge, sniffer::SeqNum seq, sniffer::SeqNum end) {
    if (!seq.after(edge) && end.after(edge)) edge = end;
}

}  // namespace migware::detail
