#pragma once
// The offset algorithm of DESIGN.md §3: how numbers on the client<->primary
// connection (C<->P) map onto the twin connection migware<->backup and back.
//
// All arithmetic is modulo 2^32 through SeqNum/SeqDelta, so wrap-around is
// never a special case and a plain `<` on sequence numbers cannot compile.

#include <cstdint>
#include <optional>

#include "sniffer/net_types.hpp"
#include "sniffer/packet.hpp"

namespace migware::rewrite {

using sniffer::SackBlock;
using sniffer::SeqDelta;
using sniffer::SeqNum;
using sniffer::TsVal;

/// RFC 7323 §2.3: a shift above 14 is used as 14.
inline constexpr std::uint8_t kMaxWindowShift = 14;

/// What the tracker observed on C<->P (the table in DESIGN.md §3).
struct ObservedConnection {
    SeqNum a;  ///< highest ACK P sent: the first client byte P has not acknowledged
    SeqNum k;  ///< highest ACK C sent: the next server byte C expects
    std::optional<std::uint16_t> client_mss;
    std::optional<std::uint8_t> client_wscale;   ///< shift as sent in C's SYN
    std::optional<std::uint8_t> primary_wscale;  ///< shift as sent in P's SYN-ACK
    bool client_sack_permitted = false;
    bool primary_sack_permitted = false;
    bool client_timestamps = false;   ///< C's SYN carried a TS option
    bool primary_timestamps = false;  ///< P's SYN-ACK carried a TS option
    TsVal client_tsval_latest;        ///< C's most recent TSval
    TsVal primary_tsval_last;         ///< TSp_last: highest TSval seen from P
};

/// What the twin handshake produced: the SYN migware sent and B's SYN-ACK.
struct TwinHandshake {
    SeqNum syn_seq;  ///< sequence number of migware's SYN (A - 1 by choice)
    SeqNum isn_b;    ///< ISNb: sequence number of B's SYN-ACK
    std::optional<std::uint8_t> backup_wscale;  ///< WSb as sent in B's SYN-ACK
    bool backup_sack_permitted = false;
    bool backup_timestamps = false;
    TsVal tsb0;  ///< TSb0: TSval in B's SYN-ACK
};

/// Everything the per-packet translation needs, computed once per connection.
struct Offsets {
    SeqDelta d1;   ///< client seq -> twin seq
    SeqDelta d2;   ///< client-view server seq -> backup seq
    SeqDelta dts;  ///< backup TSval -> client-view TSval (mod 2^32)
    /// Effective shifts (0 where window scaling is not in use, at most 14).
    std::uint8_t client_shift = 0;       ///< WSc on C<->P: how P reads C's windows
    std::uint8_t primary_shift = 0;      ///< WSp on C<->P: how C reads P's windows
    std::uint8_t backup_shift = 0;       ///< WSb on the twin: how migware reads B's windows
    std::uint8_t twin_client_shift = 0;  ///< how B reads the windows migware forwards
    bool timestamps = false;             ///< in use on both C<->P and the twin
    bool sack = false;                   ///< SACK permitted on both C<->P and the twin
};

/// The shift actually in force on a connection: RFC 7323 §2.2 scaling is on
/// only if both SYNs carried the option; §2.3 caps it at 14.
std::uint8_t effective_shift(std::optional<std::uint8_t> ours,
                             std::optional<std::uint8_t> theirs) noexcept;

/// seq of the twin SYN: A - 1, so the twin's first data byte is A and D1 = 0.
SeqNum twin_syn_seq(const ObservedConnection& conn) noexcept;

/// DESIGN.md §3, general form (any traffic pattern):
///   D1 = (SYNseq + 1) - A,  D2 = (ISNb + 1) - K,  Dts = TSp_last + 1 - TSb0.
Offsets compute_offsets(const ObservedConnection& conn, const TwinHandshake& twin) noexcept;

struct SeqOffsets {
    SeqDelta d1;
    SeqDelta d2;
};

/// D1 and D2 of the general form alone.
SeqOffsets general_seq_offsets(SeqNum syn_seq, SeqNum a, SeqNum isn_b, SeqNum k) noexcept;

/// The thesis's formulas (Bakke & Meland 2004, §5.2): D1 = MBS - CMS,
/// D2 = BMS - MCS. Only right for client-push traffic (the server never
/// sends data, so K = MCS + 1). The thesis names four numbers:
///   MCS  the sequence number of P's SYN-ACK, i.e. ISNp.
///   CMS  the sequence number of the client's last retransmission before
///        failover, i.e. the first byte P has not acknowledged (= A).
///   MBS  the twin-connection sequence number that stands for CMS, i.e. the
///        twin's first data byte = SYNseq + 1. The thesis says the SYN is
///        built from "the CMS, also called MBS"; if MBS is read literally as
///        the SYN's own sequence number, D1 comes out one short, because the
///        SYN consumes a sequence number (RFC 9293 §3.4) while CMS is a data
///        byte. D2 has no such problem: MCS and BMS are both SYN-ACK ISNs, and
///        the +1 of (ISNb + 1) - (ISNp + 1) cancels.
///   BMS  the sequence number of B's SYN-ACK, i.e. ISNb.
SeqOffsets thesis_push_only_offsets(SeqNum mcs, SeqNum cms, SeqNum mbs, SeqNum bms) noexcept;

/// min(65535, (win << from_shift) >> to_shift), shifts capped at 14. Rounds
/// down, so the receiver is never promised buffer that the sender lacks.
std::uint16_t rescale_window(std::uint16_t window, std::uint8_t from_shift,
                             std::uint8_t to_shift) noexcept;

// client -> backup
SeqNum client_to_backup_seq(SeqNum seq, const Offsets& off) noexcept;
SeqNum client_to_backup_ack(SeqNum ack, const Offsets& off) noexcept;
TsVal client_to_backup_tsecr(TsVal tsecr, const Offsets& off) noexcept;
SackBlock client_to_backup_sack(SackBlock block, const Offsets& off) noexcept;
/// Identity when B accepted the client's window scale (the normal case).
std::uint16_t client_to_backup_window(std::uint16_t window, const Offsets& off) noexcept;

// backup -> client
SeqNum backup_to_client_seq(SeqNum seq, const Offsets& off) noexcept;
SeqNum backup_to_client_ack(SeqNum ack, const Offsets& off) noexcept;
TsVal backup_to_client_tsval(TsVal tsval, const Offsets& off) noexcept;
SackBlock backup_to_client_sack(SackBlock block, const Offsets& off) noexcept;
std::uint16_t backup_to_client_window(std::uint16_t window, const Offsets& off) noexcept;

}  // namespace migware::rewrite
