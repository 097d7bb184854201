#pragma once
// The membership messages on the wire of the group layer (CPG payloads).
//
// Binary, network byte order, version 1:
//   "MWM" version:u8 kind:u8 flags:u8 priority:u32 epoch:u64 active:u32
//   sent_at:i64 ring:u64 facts_length:u32 facts
// flags: 1 has active, 2 active_left, 4 verdict known, 8 verdict "down".
// The sender's node id is never in the payload: the group layer says who
// sent a message (Corosync: the node id of the delivering ring member).

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "membership/decision.hpp"

namespace migware::membership {

inline constexpr std::size_t kMaxMessage = 1 << 20;  // facts chunks stay far below

std::vector<std::byte> encode(const Message& m);

struct Decoded {
    std::optional<Message> message;
    std::string error;  // why it was refused, when message is empty
};
/// `from` is the group layer's word for the sender.
Decoded decode(std::span<const std::byte> bytes, NodeId from);

}  // namespace migware::membership
