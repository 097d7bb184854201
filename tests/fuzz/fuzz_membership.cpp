// libFuzzer target: what the group layer delivers to a member (issue 12).
// The input is a script of steps, each [op][len][bytes...]:
//   op % 4 == 0: a CPG payload from node (bytes[0] % 4) + 1, through
//                membership::decode, then into the decision core; a Facts
//                payload also goes through parse_snapshot, as the daemon's;
//   op % 4 == 1: a view: members from the bytes' low bits, quorate from op;
//   op % 4 == 2: time passes (bytes as milliseconds), tick;
//   op % 4 == 3: this member's monitor verdict.
// Checked after every step: decode(encode(m)) == m for every decoded
// message; the epoch never goes backwards; may_act only for the member the
// group made active, and only within a lease re-derived here, independently
// of the decision core, from this member's own claim and heartbeats as the
// group delivered them. Anything else aborts.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "membership/codec.hpp"
#include "membership/decision.hpp"
#include "migware/snapshot.hpp"

using namespace migware::membership;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Decision d(Config{.self = 1, .priority = 1});
    const MonoNs lease = d.config().lease;
    MonoNs now = 1'000'000'000;
    std::uint64_t ring = 0, epoch = 0;
    // The lease as the rule says: an accepted own claim starts it at its
    // send time; an own heartbeat of the current view delivered while active
    // extends it.
    MonoNs lease_until = 0;
    std::size_t i = 0;
    while (i + 2 <= size) {
        const std::uint8_t op = data[i];
        const std::size_t len = std::min<std::size_t>(data[i + 1], size - i - 2);
        const auto bytes = std::span(reinterpret_cast<const std::byte*>(data + i + 2), len);
        i += 2 + len;
        switch (op % 4) {
            case 0: {
                if (len == 0) break;
                const NodeId from = std::to_integer<NodeId>(bytes[0]) % 4 + 1;
                const Decoded dec = decode(bytes.subspan(1), from);
                if (!dec.message) {
                    if (dec.error.empty()) std::abort();  // refused without a reason
                    break;
                }
                const Decoded again = decode(encode(*dec.message), from);
                if (!again.message || !(*again.message == *dec.message)) std::abort();
                if (dec.message->kind == MessageKind::Facts) (void)migware::parse_snapshot(dec.message->facts);
                const Message& m = *dec.message;
                const bool was_active = d.role() == Role::Active;
                const std::uint64_t epoch_before = d.epoch();
                d.on_message(m, now);
                if (m.from == 1 && m.kind == MessageKind::Heartbeat && was_active && m.ring == ring)
                    lease_until = std::max(lease_until, m.sent_at + lease);
                if (m.from == 1 && m.kind == MessageKind::Claim && d.epoch() != epoch_before && d.active() == NodeId{1})
                    lease_until = m.sent_at + lease;
                break;
            }
            case 1: {
                View v{++ring, {}, (op & 0x10) != 0};
                std::uint8_t mask = len > 0 ? std::to_integer<std::uint8_t>(bytes[0]) : 1;
                for (NodeId n = 1; n <= 4; ++n)
                    if (mask & (1u << (n - 1))) v.members.push_back(n);
                d.on_view(v, now);
                break;
            }
            case 2: {
                MonoNs ms = 0;
                for (std::byte b : bytes.first(std::min<std::size_t>(len, 2))) ms = ms * 256 + std::to_integer<int>(b);
                now += ms * 1'000'000;
                d.tick(now);
                break;
            }
            case 3:
                d.on_local_verdict((op & 0x10) != 0, now);
                break;
        }
        if (d.epoch() < epoch) std::abort();
        epoch = d.epoch();
        if (d.may_act(now) && (d.active() != NodeId{1} || d.epoch() == 0 || now >= lease_until)) std::abort();
        // What the member sends must decode as sent.
        for (const Message& m : d.take_outgoing()) {
            const Decoded out = decode(encode(m), m.from);
            if (!out.message || !(*out.message == m)) std::abort();
        }
        d.take_notices();
        d.take_facts();
    }
    return 0;
}
