#include "rewrite/translation.hpp"

#include <algorithm>

namespace migware::rewrite {

std::uint8_t effective_shift(std::optional<std::uint8_t> ours,
                             std::optional<std::uint8_t> theirs) noexcept {
    if (!ours || !theirs) return 0;
    return std::min(*ours, kMaxWindowShift);
}

SeqNum twin_syn_seq(const ObservedConnection& conn) noexcept { return conn.a - 1u; }

SeqOffsets general_seq_offsets(SeqNum syn_seq, SeqNum a, SeqNum isn_b, SeqNum k) noexcept {
    // The SYN occupies one sequence number (RFC 9293 §3.4), so the first
    // data byte on each side of the twin is its ISN + 1.
    return SeqOffsets{(syn_seq + 1u) - a, (isn_b + 1u) - k};
}

SeqOffsets thesis_push_only_offsets(SeqNum mcs, SeqNum cms, SeqNum mbs, SeqNum bms) noexcept {
    return SeqOffsets{mbs - cms, bms - mcs};
}

Offsets compute_offsets(const ObservedConnection& conn, const TwinHandshake& twin) noexcept {
    Offsets off;
    const SeqOffsets seq = general_seq_offsets(twin.syn_seq, conn.a, twin.isn_b, conn.k);
    off.d1 = seq.d1;
    off.d2 = seq.d2;

    // migware offers B only what C<->P negotiated, so each option is in use
    // on the twin iff it was in use on C<->P and B answered with it.
    const bool cp_wscale = conn.client_wscale && conn.primary_wscale;
    off.client_shift = effective_shift(conn.client_wscale, conn.primary_wscale);
    off.primary_shift = effective_shift(conn.primary_wscale, conn.client_wscale);
    const std::optional<std::uint8_t> offered =
        cp_wscale ? conn.client_wscale : std::optional<std::uint8_t>{};
    off.backup_shift = effective_shift(twin.backup_wscale, offered);
    off.twin_client_shift = effective_shift(offered, twin.backup_wscale);

    off.timestamps = conn.client_timestamps && conn.primary_timestamps && twin.backup_timestamps;
    off.sack =
        conn.client_sack_permitted && conn.primary_sack_permitted && twin.backup_sack_permitted;

    // Backup TSvals continue just above the last TSval the client saw from
    // P, so RFC 7323 §5 PAWS on the client accepts them.
    off.dts = (conn.primary_tsval_last + 1u) - twin.tsb0;
    return off;
}

std::uint16_t rescale_window(std::uint16_t window, std::uint8_t from_shift,
                             std::uint8_t to_shift) noexcept {
    // 65535 << 14 < 2^30: no overflow in 32 bits.
    const std::uint32_t bytes = std::uint32_t{window} << std::min(from_shift, kMaxWindowShift);
    std::uint32_t scaled = bytes >> std::min(to_shift, kMaxWindowShift);
    // An open window must not round down to a closed one: the peer would
    // stop and probe (RFC 9293 §3.8.6.1) although the receiver has room.
    if (scaled == 0 && window != 0) scaled = 1;
    return static_cast<std::uint16_t>(std::min<std::uint32_t>(scaled, 0xffffu));
}

SeqNum client_to_backup_seq(SeqNum seq, const Offsets& off) noexcept { return seq + off.d1; }
SeqNum client_to_backup_ack(SeqNum ack, const Offsets& off) noexcept { return ack + off.d2; }
TsVal client_to_backup_tsecr(TsVal tsecr, const Offsets& off) noexcept { return tsecr - off.dts; }
SackBlock client_to_backup_sack(SackBlock block, const Offsets& off) noexcept {
    // The client SACKs server data, which lives in the D2 space (RFC 2018 §3).
    return SackBlock{block.left + off.d2, block.right + off.d2};
}
std::uint16_t client_to_backup_window(std::uint16_t window, const Offsets& off) noexcept {
    return rescale_window(window, off.client_shift, off.twin_client_shift);
}

SeqNum backup_to_client_seq(SeqNum seq, const Offsets& off) noexcept { return seq - off.d2; }
SeqNum backup_to_client_ack(SeqNum ack, const Offsets& off) noexcept { return ack - off.d1; }
TsVal backup_to_client_tsval(TsVal tsval, const Offsets& off) noexcept { return tsval + off.dts; }
SackBlock backup_to_client_sack(SackBlock block, const Offsets& off) noexcept {
    // B SACKs client data, which lives in the D1 space.
    return SackBlock{block.left - off.d1, block.right - off.d1};
}
std::uint16_t backup_to_client_window(std::uint16_t window, const Offsets& off) noexcept {
    return rescale_window(window, off.backup_shift, off.primary_shift);
}

}  // namespace migware::rewrite
