#include "sniffer/net_types.hpp"

#include <charconv>
#include <cstdio>

namespace migware::sniffer {

std::string Ipv4Addr::to_string() const {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", (value >> 24) & 0xffu, (value >> 16) & 0xffu,
                  (value >> 8) & 0xffu, value & 0xffu);
    return buf;
}

std::optional<Ipv4Addr> Ipv4Addr::parse(std::string_view text) {
    std::uint32_t out = 0;
    const char* p = text.data();
    const char* end = text.data() + text.size();
    for (int i = 0; i < 4; ++i) {
        if (i > 0) {
            if (p == end || *p != '.') return std::nullopt;
            ++p;
        }
        if (p == end || *p < '0' || *p > '9') return std::nullopt;
        const char* digits = p;
        unsigned octet = 0;
        auto [next, ec] = std::from_chars(p, end, octet);
        if (ec != std::errc{} || octet > 255 || next - digits > 3) return std::nullopt;
        // Leading zeros are ambiguous (octal in inet_aton); refuse them.
        if (next - digits > 1 && *digits == '0') return std::nullopt;
        out = (out << 8) | octet;
        p = next;
    }
    if (p != end) return std::nullopt;
    return Ipv4Addr{out};
}

std::string MacAddr::to_string() const {
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                  bytes[3], bytes[4], bytes[5]);
    return buf;
}

std::string Endpoint::to_string() const {
    return ip.to_string() + ":" + std::to_string(port.value);
}

std::optional<Endpoint> Endpoint::parse(std::string_view text) {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    auto ip = Ipv4Addr::parse(text.substr(0, colon));
    if (!ip) return std::nullopt;
    auto port_text = text.substr(colon + 1);
    if (port_text.empty() || port_text.size() > 5) return std::nullopt;
    unsigned port = 0;
    auto [next, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || next != port_text.data() + port_text.size() || port == 0 ||
        port > 65535)
        return std::nullopt;
    return Endpoint{*ip, Port{static_cast<std::uint16_t>(port)}};
}

}  // namespace migware::sniffer
