// Fail-back policy: connections opened once the primary answers again are
// relayed to it frame by frame (only the Ethernet addresses change).

#include "migware/failover.hpp"

#include <cstring>

#include "migware/engine_detail.hpp"

namespace migware {

using namespace detail;

bool FailoverEngine::relay_to_primary(const sniffer::RawFrame& frame, const Packet& p, MonoNs now) {
    if (!primary_mac_known_ || !p.has_ethernet || frame.bytes.size() > scratch_.size()) {
        ++counters_.new_connections_unserved;
        return false;
    }
    if (!forward_frame(frame, primary_mac_)) return false;
    Relay& r = relayed_[{{p.ip.src, p.tcp.src_port}, {p.ip.dst, p.tcp.dst_port}}];
    r.last = now;
    r.client_mac = p.eth.src;
    if (p.tcp.has(tf::kFin) || p.tcp.has(tf::kRst)) r.closing = true;
    if (next_relay_sweep_ == 0) next_relay_sweep_ = now + kRelaySweep;
    return true;
}

bool FailoverEngine::forward_frame(const sniffer::RawFrame& frame, const sniffer::MacAddr& dst) {
    // Only the Ethernet addresses change: to `dst`, from this host (a client's
    // MAC as the source would teach a switch the client is here).
    if (frame.bytes.size() < kEthernet || frame.bytes.size() > scratch_.size()) return false;
    const std::span<std::byte> buf(scratch_.data(), frame.bytes.size());
    std::memcpy(buf.data(), frame.bytes.data(), frame.bytes.size());
    for (std::size_t i = 0; i < 6; ++i) {
        buf[i] = std::byte{dst.bytes[i]};
        if (has_own_mac_) buf[6 + i] = std::byte{config_.backup_mac.bytes[i]};
    }
    if (!send_client(buf)) return false;
    ++counters_.relayed_to_primary;
    return true;
}

void FailoverEngine::expire_relays(MonoNs now) {
    next_relay_sweep_ = now + kRelaySweep;
    std::erase_if(relayed_, [&](const auto& kv) {
        const Relay& r = kv.second;
        return r.last + (r.closing ? config_.close_linger : kRelayIdle) <= now;
    });
}

}  // namespace migware
