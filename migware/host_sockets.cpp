#include "migware/host_sockets.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <optional>

namespace migware {

namespace {

constexpr std::uint32_t kListen = 0x0A;

std::optional<std::uint32_t> hex(std::string_view s) {
    std::uint32_t v = 0;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v, 16);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
    return v;
}

/// "0A12C6C6:1B58": the address as the kernel printed its network-order
/// bytes read as a host integer (little-endian here: bytes reversed), the
/// port in plain hex.
bool endpoint(std::string_view s, sniffer::Ipv4Addr& ip, std::uint16_t& port) {
    const auto colon = s.find(':');
    if (colon != 8 || s.size() != 13) return false;
    const auto a = hex(s.substr(0, 8));
    const auto p = hex(s.substr(9));
    if (!a || !p || *p > 0xffff) return false;
    std::uint32_t v = *a;
    if constexpr (std::endian::native == std::endian::little)
        v = (v & 0xff) << 24 | ((v >> 8) & 0xff) << 16 | ((v >> 16) & 0xff) << 8 | (v >> 24);
    ip = sniffer::Ipv4Addr{v};
    port = static_cast<std::uint16_t>(*p);
    return true;
}

std::vector<std::string_view> fields(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < line.size() && out.size() < 4) {
        while (i < line.size() && line[i] == ' ') ++i;
        const std::size_t start = i;
        while (i < line.size() && line[i] != ' ') ++i;
        if (i > start) out.push_back(line.substr(start, i - start));
    }
    return out;
}

}  // namespace

std::vector<std::uint16_t> twin_ports_in_use(std::string_view text, sniffer::Ipv4Addr primary,
                                             sniffer::Ipv4Addr backup,
                                             const std::vector<std::uint16_t>& service_ports) {
    std::vector<std::uint16_t> out;
    std::size_t pos = text.find('\n');  // the header line
    while (pos != std::string_view::npos && pos + 1 < text.size()) {
        const std::size_t end = text.find('\n', pos + 1);
        const std::string_view line = text.substr(pos + 1, end == std::string_view::npos ? end : end - pos - 1);
        pos = end;
        const auto f = fields(line);  // sl local rem st
        if (f.size() < 4) continue;
        sniffer::Ipv4Addr lip, rip;
        std::uint16_t lport = 0, rport = 0;
        const auto st = hex(f[3]);
        if (!endpoint(f[1], lip, lport) || !endpoint(f[2], rip, rport) || !st || *st == kListen) continue;
        if (lip == backup && rip == primary &&
            std::find(service_ports.begin(), service_ports.end(), lport) != service_ports.end())
            out.push_back(rport);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

}  // namespace migware
