#include "migware/snapshot.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

namespace migware {

namespace {

using sniffer::Endpoint;
using sniffer::MacAddr;
using sniffer::SeqNum;
using tracker::HandshakeFacts;

template <typename T>
std::string opt(const std::optional<T>& v) {
    return v ? std::to_string(*v) : "-";
}

std::vector<std::string_view> split(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && line[i] == ' ') ++i;
        const std::size_t start = i;
        while (i < line.size() && line[i] != ' ') ++i;
        if (i > start) out.push_back(line.substr(start, i - start));
    }
    return out;
}

template <typename T>
bool num(std::string_view s, T& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && p == s.data() + s.size();
}

template <typename T>
bool opt_num(std::string_view s, std::optional<T>& out) {
    if (s == "-") {
        out.reset();
        return true;
    }
    T v{};
    if (!num(s, v)) return false;
    out = v;
    return true;
}

bool flag(std::string_view s, bool& out) {
    if (s != "0" && s != "1") return false;
    out = s == "1";
    return true;
}

bool mac(std::string_view s, MacAddr& out) {
    if (s.size() != 17) return false;
    for (std::size_t i = 0; i < 6; ++i) {
        if (i > 0 && s[i * 3 - 1] != ':') return false;
        unsigned v = 0;
        auto [p, ec] = std::from_chars(s.data() + i * 3, s.data() + i * 3 + 2, v, 16);
        if (ec != std::errc{} || p != s.data() + i * 3 + 2) return false;
        out.bytes[i] = static_cast<std::uint8_t>(v);
    }
    return true;
}

}  // namespace

std::uint32_t crc32(std::string_view data) {
    // IEEE 802.3 polynomial (reflected), the one zlib and gzip use.
    static const std::array<std::uint32_t, 256> table = [] {
        std::array<std::uint32_t, 256> t{};
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    std::uint32_t crc = 0xffffffffu;
    for (unsigned char ch : data) crc = table[(crc ^ ch) & 0xffu] ^ (crc >> 8);
    return crc ^ 0xffffffffu;
}

std::string serialize_snapshot(const std::vector<HandshakeFacts>& facts) {
    std::string out = "migware-snapshot " + std::to_string(kSnapshotVersion) + " " +
                      std::to_string(facts.size()) + "\n";
    for (const auto& f : facts) {
        out += f.key.client.to_string() + " " + f.key.server.to_string() + " " +
               std::to_string(f.client_isn.raw()) + " " + std::to_string(f.server_isn.raw()) + " " +
               opt(f.client_mss) + " " + opt(f.server_mss) + " " + opt(f.client_wscale) + " " +
               opt(f.server_wscale) + " " + (f.client_sack ? "1" : "0") + " " +
               (f.server_sack ? "1" : "0") + " " + (f.client_ts ? "1" : "0") + " " +
               (f.server_ts ? "1" : "0") + " " + f.client_mac.to_string() + " " +
               f.server_mac.to_string() + " " + opt(f.vlan) + "\n";
    }
    char end[32];
    std::snprintf(end, sizeof end, "end %08x\n", crc32(out));
    return out + end;
}

SnapshotParse parse_snapshot(std::string_view text) {
    SnapshotParse r;
    auto fail = [&](std::string why) {
        r.facts.clear();
        r.error = std::move(why);
        return r;
    };
    const std::size_t end_at = text.rfind("end ");
    if (end_at == std::string_view::npos || (end_at > 0 && text[end_at - 1] != '\n'))
        return fail("truncated: no end line");
    std::string_view trailer = text.substr(end_at + 4);
    if (!trailer.empty() && trailer.back() == '\n') trailer.remove_suffix(1);
    std::uint32_t want = 0;
    auto [p, ec] = std::from_chars(trailer.data(), trailer.data() + trailer.size(), want, 16);
    if (ec != std::errc{} || p != trailer.data() + trailer.size() || trailer.size() != 8)
        return fail("truncated or damaged end line");
    const std::string_view body = text.substr(0, end_at);
    if (crc32(body) != want) return fail("checksum mismatch (damaged file)");
    std::size_t pos = 0;
    std::size_t line_no = 0;
    std::size_t expected = 0;
    while (pos < body.size()) {
        const std::size_t nl = body.find('\n', pos);
        if (nl == std::string_view::npos) return fail("line " + std::to_string(line_no + 1) + ": no newline");
        const std::string_view line = body.substr(pos, nl - pos);
        pos = nl + 1;
        ++line_no;
        const auto f = split(line);
        if (line_no == 1) {
            if (f.size() != 3 || f[0] != "migware-snapshot") return fail("not a migware snapshot");
            int version = 0;
            if (!num(f[1], version)) return fail("bad version field");
            if (version != kSnapshotVersion)
                return fail("unsupported version " + std::string(f[1]) + " (this migware reads " +
                            std::to_string(kSnapshotVersion) + ")");
            if (!num(f[2], expected)) return fail("bad count");
            continue;
        }
        HandshakeFacts h;
        std::uint32_t cisn = 0, sisn = 0;
        auto client = f.size() == 15 ? Endpoint::parse(f[0]) : std::nullopt;
        auto server = f.size() == 15 ? Endpoint::parse(f[1]) : std::nullopt;
        std::optional<std::uint16_t> vlan;
        if (!client || !server || !num(f[2], cisn) || !num(f[3], sisn) ||
            !opt_num(f[4], h.client_mss) || !opt_num(f[5], h.server_mss) ||
            !opt_num(f[6], h.client_wscale) || !opt_num(f[7], h.server_wscale) ||
            !flag(f[8], h.client_sack) || !flag(f[9], h.server_sack) || !flag(f[10], h.client_ts) ||
            !flag(f[11], h.server_ts) || !mac(f[12], h.client_mac) || !mac(f[13], h.server_mac) ||
            !opt_num(f[14], vlan))
            return fail("line " + std::to_string(line_no) + ": malformed connection record");
        h.key = {*client, *server};
        h.client_isn = SeqNum{cisn};
        h.server_isn = SeqNum{sisn};
        h.vlan = vlan;
        r.facts.push_back(h);
    }
    if (line_no == 0) return fail("empty");
    if (r.facts.size() != expected)
        return fail("holds " + std::to_string(r.facts.size()) + " records, header says " +
                    std::to_string(expected));
    return r;
}

std::string write_snapshot_file(const std::string& path, const std::string& contents) {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return tmp + ": " + std::strerror(errno);
    std::size_t done = 0;
    while (done < contents.size()) {
        const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            const std::string err = std::strerror(errno);
            ::close(fd);
            return tmp + ": " + err;
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) return tmp + ": " + std::strerror(errno);
    if (::rename(tmp.c_str(), path.c_str()) != 0) return path + ": " + std::strerror(errno);
    // Make the rename itself durable.
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
    return {};
}

std::string read_snapshot_file(const std::string& path, bool& exists, std::string& error) {
    exists = false;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) {
            exists = true;
            error = std::strerror(errno);
        }
        return {};
    }
    exists = true;
    std::string out;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            error = std::strerror(errno);
            break;
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > (64u << 20)) {
            error = "larger than 64 MiB";
            break;
        }
    }
    ::close(fd);
    return out;
}

}  // namespace migware
