// Speaking for the primary's IP on the segment: gratuitous ARP at the
// takeover, answers to ARP and echo requests, the primary's neighbour
// entries fed, and unicast ARP to recent peers when the monitor wants
// evidence that the segment is alive.

#include "migware/failover.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "migware/engine_detail.hpp"
#include "rewrite/frames.hpp"

namespace migware {

using namespace detail;

void FailoverEngine::on_arp(const Packet& p, MonoNs now) {
    if (p.arp.sender_ip == config_.primary) {
        if (!has_own_mac_) return;  // announcing with its MAC: nothing to defend
        // The primary claims its IP again (a request it broadcasts, or its
        // answer to a client's): every host that hears it points the IP
        // back at the primary's MAC, whose kernel would reset the migrated
        // clients. Announce ours again at once.
        if (config_.answer_arp) {
            // Asked about a client (or us)? Answer the primary first, so
            // it does not ask again.
            if (p.arp.op == 1 && config_.fence_returning_primary)
                feed_primary(now, p.arp.target_ip);
            reassert_tokens_ = std::min(
                kReassertBurst, reassert_tokens_ + kReassertPerSecond *
                                                       static_cast<double>(now - reassert_at_) / 1e9);
            reassert_at_ = now;
        }
        fence_hold_until_ = std::max(fence_hold_until_, now + kFenceHold);
        if (config_.answer_arp && reassert_tokens_ >= 1) {
            reassert_tokens_ -= 1;
            if (counters_.arp_reasserted++ < kResetLogLimit)
                log_.emit(now, "arp_reasserted",
                          Fields{{"claimed_by", p.arp.sender_mac.to_string()},
                                 {"op", std::uint64_t{p.arp.op}},
                                 {"n", counters_.arp_reasserted}});
            announce(our_mac());
        }
        primary_heard(now, "arp from the primary");
        return;
    }
    if (config_.answer_arp) answer_arp(p);
    return;
}

void FailoverEngine::point_clients_at_primary() {
    // The takeover's gratuitous ARP may have reached some clients: tell every
    // host the primary's IP is at the primary's MAC again, broadcast (RFC 5227
    // announcement) and, for the clients we know, a reply aimed at each. The
    // Ethernet source stays ours (a switch must not learn the primary's MAC
    // on our port).
    if (primary_mac_known_ && has_own_mac_) {
        announce(primary_mac_);
        for (const Neighbour& n : neighbours_) {
            if (n.ip == config_.backup) continue;
            send_arp_from(2, n.mac, primary_mac_, config_.primary, n.mac, n.ip, n.vlan);
            if (counters_.primary_fed > at_takeover_.primary_fed) {  // this takeover fed it
                // Undo the fence's feeding: the primary's entry for this
                // client points at the client's own MAC again.
                send_arp_from(1, primary_mac_, n.mac, n.ip, sniffer::MacAddr{}, config_.primary,
                              n.vlan);
            }
        }
    }
}

void FailoverEngine::note_peer(const Neighbour& n) {
    // Most recent first; four distinct hosts are enough to ask.
    std::size_t i = 0;
    while (i < recent_peers_n_ && recent_peers_[i] != n) ++i;
    if (i == 0 && recent_peers_n_ > 0) return;  // the common case: the same host again
    if (i == recent_peers_n_) {
        if (recent_peers_n_ < kRecentPeers) ++recent_peers_n_;
        i = recent_peers_n_ - 1;
    }
    for (; i > 0; --i) recent_peers_[i] = recent_peers_[i - 1];
    recent_peers_[0] = n;
}

void FailoverEngine::probe_segment(MonoNs) {
    // An ARP request for the neighbour's own IP, unicast to its MAC, from
    // this host's real address: a live host on a live segment answers at
    // once. Off-link clients (behind a router) do not; their retransmissions
    // or a configured reference address serve instead.
    if (!has_own_mac_) return;
    for (std::size_t i = 0; i < recent_peers_n_; ++i) {
        const Neighbour& n = recent_peers_[i];
        send_arp_from(1, n.mac, config_.backup_mac, config_.backup, sniffer::MacAddr{}, n.ip, n.vlan);
        ++counters_.segment_arp_probes;
    }
}

void FailoverEngine::probe_primary_arp() {
    // From this host's real address: the primary learns nothing false. A
    // host that drops echo still answers ARP for its own address.
    if (!has_own_mac_) return;
    send_arp_from(1, primary_mac_known_ ? primary_mac_ : kBroadcastMac, config_.backup_mac, config_.backup,
                  sniffer::MacAddr{}, config_.primary, primary_vlan_);
    ++counters_.primary_arp_probes;
}

void FailoverEngine::answer_echo(const sniffer::RawFrame& frame, const Packet& p) {
    // Only while this host is the active node (Proxy), only for requests sent
    // to our MAC (a client that still points at the primary's MAC gets the
    // primary's own answer, should it be alive), never fragments.
    // (Fragments and requests the capture cut short are refused by the builder.)
    if (p.icmp.type != 8 || p.ip.dst != config_.primary || !p.has_ethernet || !has_own_mac_ ||
        p.eth.dst != config_.backup_mac)
        return;
    const std::size_t len = rewrite::build_echo_reply(scratch_, frame.bytes, p, config_.backup_mac);
    if (len > 0 && send_client(std::span(scratch_.data(), len))) ++counters_.echo_answered;
}

void FailoverEngine::answer_arp(const Packet& p) {
    // While the twins serve the primary's clients, the clients' neighbour
    // entries for the primary must stay valid and point here: answer for it,
    // with this host's MAC.
    if (p.arp.op != 1 || p.arp.target_ip != config_.primary ||
        !have_a_mac() || p.arp.sender_ip == config_.primary)
        return;
    send_arp(2, p.arp.sender_mac, p.arp.sender_mac, p.arp.sender_ip, p.eth.vlan);
    ++counters_.arp_replies;
}

void FailoverEngine::send_arp(std::uint16_t op, const sniffer::MacAddr& eth_dst,
                              const sniffer::MacAddr& target_mac, Ipv4Addr target_ip,
                              std::optional<std::uint16_t> vlan) {
    send_arp_from(op, eth_dst, our_mac(), config_.primary, target_mac, target_ip, vlan);
}

void FailoverEngine::send_arp_from(std::uint16_t op, const sniffer::MacAddr& eth_dst,
                                   const sniffer::MacAddr& sender_mac, Ipv4Addr sender_ip,
                                   const sniffer::MacAddr& target_mac, Ipv4Addr target_ip,
                                   std::optional<std::uint16_t> vlan) {
    std::array<std::byte, rewrite::kMaxArpFrame> buf{};
    // The Ethernet source is always this host: a switch must not learn a
    // client's MAC (or the primary's) on our port.
    const std::size_t len = rewrite::build_arp(
        buf, {{eth_dst, our_mac(), vlan, rewrite::kEtherTypeArp},
              static_cast<rewrite::ArpOp>(op),  // RFC 826: 1 request, 2 reply
              sender_mac, sender_ip, target_mac, target_ip});
    send_client(std::span(buf.data(), len));
}

void FailoverEngine::announce_takeover(MonoNs now) {
    // A gratuitous ARP (RFC 5227 §3 announcement: a request with sender =
    // target = the primary's IP) from this host's MAC, on every VLAN the
    // clients used. Hosts point the primary's IP at this host, and so does a
    // router in front of remote clients. From then on the clients' frames
    // reach this port by the switch's ordinary learning, and never the
    // primary's kernel again should it come back (it would reset them).
    if (!have_a_mac()) return;
    const std::size_t vlans = announce(our_mac());
    log_.emit(now, "gratuitous_arp",
              Fields{{"ip", config_.primary.to_string()}, {"mac", our_mac().to_string()}, {"vlans", vlans}});
}

std::size_t FailoverEngine::announce(const sniffer::MacAddr& sender) {
    if (!have_a_mac()) return 0;
    std::vector<std::optional<std::uint16_t>> vlans;
    pipeline_.table().for_each([&](const tracker::Connection& c) {
        const std::optional<std::uint16_t> v =
            c.vlan ? std::optional<std::uint16_t>(*c.vlan & 0x0fffu) : std::nullopt;
        if (std::find(vlans.begin(), vlans.end(), v) == vlans.end()) vlans.push_back(v);
    });
    if (vlans.empty()) vlans.push_back(std::nullopt);
    for (const auto& v : vlans) {
        send_arp_from(1, kBroadcastMac, sender, config_.primary, sniffer::MacAddr{}, config_.primary, v);
        ++counters_.gratuitous_arps;
    }
    return vlans.size();
}

}  // namespace migware
