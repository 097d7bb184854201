#include "tests/bench/synthetic_capture.hpp"

#include <stdexcept>

#include "sniffer/parser.hpp"
#include "sniffer/pcap_source.hpp"

namespace migware::bench {

sniffer::MemorySource synthetic_capture(const std::vector<std::string>& paths, int copies) {
    std::vector<sniffer::MemorySource::Frame> base;
    for (const auto& path : paths) {
        sniffer::PcapFileSource src(path);
        if (src.link() != sniffer::LinkType::Ethernet) throw std::runtime_error(path + ": not Ethernet");
        sniffer::RawFrame f;
        while (src.next(f) == sniffer::ReadStatus::Frame)
            base.push_back({{f.bytes.begin(), f.bytes.end()}, f.wire_length, f.timestamp_ns});
    }
    std::vector<sniffer::MemorySource::Frame> out;
    out.reserve(base.size() * static_cast<std::size_t>(copies));
    sniffer::Packet p;
    for (int copy = 0; copy < copies; ++copy) {
        for (const auto& f : base) {
            auto g = f;
            g.timestamp_ns += copy;
            if (!sniffer::parse(g.bytes, g.wire_length, sniffer::LinkType::Ethernet, p) &&
                p.kind == sniffer::PacketKind::Tcp) {
                // The client is the side with the ephemeral (higher) port. Each
                // copy moves the client to its own address (198.19.x.y), so
                // every original connection becomes `copies` distinct ones.
                const bool from_client = p.tcp.src_port.value > p.tcp.dst_port.value;
                const std::size_t ip_at = p.layout.l3 + (from_client ? 12u : 16u);
                const std::uint8_t addr[4] = {198, 19, static_cast<std::uint8_t>(copy / 250),
                                              static_cast<std::uint8_t>(copy % 250 + 1)};
                for (std::size_t i = 0; i < 4; ++i) g.bytes[ip_at + i] = static_cast<std::byte>(addr[i]);
                // Keep the IPv4 header checksum valid (RFC 1624 would do; a full
                // recompute is simpler off the measured path).
                std::uint32_t sum = 0;
                g.bytes[p.layout.l3 + 10] = g.bytes[p.layout.l3 + 11] = std::byte{0};
                for (std::size_t i = 0; i < p.ip.header_length; i += 2)
                    sum += (std::to_integer<std::uint32_t>(g.bytes[p.layout.l3 + i]) << 8) |
                           std::to_integer<std::uint32_t>(g.bytes[p.layout.l3 + i + 1]);
                while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
                const auto csum = static_cast<std::uint16_t>(~sum);
                g.bytes[p.layout.l3 + 10] = static_cast<std::byte>(csum >> 8);
                g.bytes[p.layout.l3 + 11] = static_cast<std::byte>(csum & 0xff);
            }
            out.push_back(std::move(g));
        }
    }
    return sniffer::MemorySource(sniffer::LinkType::Ethernet, std::move(out));
}

}  // namespace migware::bench
