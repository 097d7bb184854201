#pragma once
// Builders for the two packets migware injects to open the twin connection
// (DESIGN.md §3): complete IPv4+TCP packets with no link header, as written
// to a TUN device or an IPPROTO_RAW socket.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "rewrite/translation.hpp"
#include "sniffer/net_types.hpp"

namespace migware::rewrite {

/// IPv4 header (20) + TCP header with the longest option set built here (40).
inline constexpr std::size_t kMaxHandshakePacket = 60;
inline constexpr std::uint8_t kHandshakeTtl = 64;

struct TimestampPair {
    TsVal tsval;
    TsVal tsecr;
};

struct TwinSynSpec {
    sniffer::Endpoint src;             ///< IPp:q
    sniffer::Endpoint dst;             ///< IPb:s_b
    SeqNum seq;                        ///< A - 1
    std::optional<std::uint16_t> mss;  ///< MSSc; omitted when the client sent none
    bool sack_permitted = false;
    std::optional<TsVal> tsval;          ///< client's latest TSval; TSecr is 0
    std::optional<std::uint8_t> wscale;  ///< WSc
    std::uint16_t window = 0;            ///< RFC 7323 §2.2: never scaled in a SYN
    std::uint16_t ip_id = 0;
};

struct TwinAckSpec {
    sniffer::Endpoint src;
    sniffer::Endpoint dst;
    SeqNum seq;                               ///< A
    SeqNum ack;                               ///< ISNb + 1
    std::optional<TimestampPair> timestamps;  ///< TSval = client's, TSecr = TSb0
    std::uint16_t window = 0;                 ///< as B will read it, i.e. scaled
    std::uint16_t ip_id = 0;
};

/// The twin SYN for `conn`: seq = A - 1 and C's options, offered only where
/// C<->P negotiated them.
TwinSynSpec twin_syn_spec(const ObservedConnection& conn, sniffer::Endpoint src,
                          sniffer::Endpoint dst, std::uint16_t window,
                          std::uint16_t ip_id) noexcept;

/// The ACK completing the twin handshake: seq = SYNseq + 1, ack = ISNb + 1,
/// timestamps (client's latest TSval, TSecr = TSb0) when in use on both.
TwinAckSpec twin_ack_spec(const ObservedConnection& conn, const TwinHandshake& twin,
                          sniffer::Endpoint src, sniffer::Endpoint dst, std::uint16_t window,
                          std::uint16_t ip_id) noexcept;

/// Writes the SYN into `out`. Options in Linux's order (MSS, SACK-permitted,
/// TS, NOP, WS; NOP-padded to 32-bit words where an option is left out).
/// Returns the packet length, or 0 if `out` is too small.
std::size_t build_twin_syn(std::span<std::byte> out, const TwinSynSpec& spec) noexcept;

/// Writes the completing ACK (NOP, NOP, TS when timestamps are set).
/// Returns the packet length, or 0 if `out` is too small.
std::size_t build_twin_ack(std::span<std::byte> out, const TwinAckSpec& spec) noexcept;

/// A data segment on the twin: the client bytes the primary never
/// acknowledged, handed to the backup right after the handshake (DESIGN.md §3)
/// instead of waiting for the client's backed-off retransmission timer.
struct TwinDataSpec {
    sniffer::Endpoint src;                    ///< IPp:q
    sniffer::Endpoint dst;                    ///< IPb:s_b
    SeqNum seq;                               ///< client sequence + D1
    SeqNum ack;                               ///< K + D2 (= ISNb + 1 right after the handshake)
    std::optional<TimestampPair> timestamps;  ///< client's latest TSval, backup's latest TSval
    std::uint16_t window = 0;                 ///< as B reads it (client's raw window)
    std::uint16_t ip_id = 0;
    bool fin = false;                         ///< the client's FIN, after its last byte
};

/// Writes IPv4 + TCP (ACK|PSH, or ACK|FIN with `fin`) + payload. Returns the length, or 0 (nothing
/// written) when `out` is too small or the packet would exceed 65535 bytes.
std::size_t build_twin_data(std::span<std::byte> out, const TwinDataSpec& spec,
                            std::span<const std::byte> payload) noexcept;

/// A bare RST (no ACK, no options). Sent with the receiver's exact rcv_nxt it
/// ends the connection there (RFC 5961 §3.2: any other in-window sequence only
/// draws a challenge ACK).
struct ResetSpec {
    sniffer::Endpoint src;
    sniffer::Endpoint dst;
    SeqNum seq;
    std::uint16_t ip_id = 0;
};

/// Writes IPv4 + TCP RST. Returns the length, or 0 when `out` is too small.
std::size_t build_reset(std::span<std::byte> out, const ResetSpec& spec) noexcept;

}  // namespace migware::rewrite
