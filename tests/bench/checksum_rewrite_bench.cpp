// Micro-benchmarks for the per-packet checksum and rewrite work (issue 11):
// the Internet checksum, the parser (which verifies the IPv4 header), the
// engine's capture-time TCP check, and both rewrite directions as the engine
// performs them. Written against the API the baseline and this change share,
// so the same file measures both side by side (scripts: see BENCHMARKS.md);
// the one-pass backup -> client entry point exists only after the change.

#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "rewrite/frame_rewrite.hpp"
#include "sniffer/parser.hpp"

#if __has_include("rewrite/frames.hpp")
// After issue 11: the checksum lives in sniffer/, and the one-pass entry
// point exists.
#include "rewrite/frames.hpp"
#include "sniffer/checksum.hpp"
#define MIGWARE_BENCH_ONE_PASS 1
namespace cs = migware::sniffer;
#else
#include "rewrite/checksum.hpp"
namespace cs = migware::rewrite;
#endif

namespace {

namespace rw = migware::rewrite;
namespace sn = migware::sniffer;

constexpr std::size_t kEth = 14;

void put16(std::vector<std::byte>& b, std::size_t at, std::uint16_t v) {
    b[at] = std::byte{static_cast<std::uint8_t>(v >> 8)};
    b[at + 1] = std::byte{static_cast<std::uint8_t>(v)};
}
void put32(std::vector<std::byte>& b, std::size_t at, std::uint32_t v) {
    put16(b, at, static_cast<std::uint16_t>(v >> 16));
    put16(b, at + 2, static_cast<std::uint16_t>(v));
}

/// A bare IPv4/TCP packet with NOP NOP TS (the lab's data segments), valid
/// checksums, `payload` bytes of data.
std::vector<std::byte> ip_packet(std::size_t payload) {
    const std::size_t thl = 32;
    const std::size_t total = 20 + thl + payload;
    std::vector<std::byte> b(total);
    b[0] = std::byte{0x45};
    put16(b, 2, static_cast<std::uint16_t>(total));
    put16(b, 4, 0x1234);
    put16(b, 6, 0x4000);
    b[8] = std::byte{64};
    b[9] = std::byte{6};
    put32(b, 12, 0xc6120003);  // 198.18.0.3
    put32(b, 16, 0xc6120002);  // 198.18.0.2
    put16(b, 20, 8080);
    put16(b, 22, 40001);
    put32(b, 24, 0x10000000);
    put32(b, 28, 0x20000000);
    b[32] = std::byte{static_cast<std::uint8_t>((thl / 4) << 4)};
    b[33] = std::byte{0x18};  // ACK PSH
    put16(b, 34, 502);
    b[40] = std::byte{1};
    b[41] = std::byte{1};
    b[42] = std::byte{8};
    b[43] = std::byte{10};
    put32(b, 44, 0x01020304);
    put32(b, 48, 0x05060708);
    for (std::size_t i = 0; i < payload; ++i) b[52 + i] = std::byte{static_cast<std::uint8_t>(i * 13)};
    const std::span<const std::byte> all(b);
    put16(b, 10, cs::ipv4_header_checksum(all.first(20)));
    put16(b, 36, cs::tcp_checksum(sn::Ipv4Addr{0xc6120003}, sn::Ipv4Addr{0xc6120002},
                                  all.subspan(20)));
    return b;
}

std::vector<std::byte> eth_frame(std::size_t payload) {
    std::vector<std::byte> f(kEth);
    for (std::size_t i = 0; i < 12; ++i) f[i] = std::byte{static_cast<std::uint8_t>(i + 1)};
    f[12] = std::byte{0x08};
    const auto ip = ip_packet(payload);
    f.insert(f.end(), ip.begin(), ip.end());
    return f;
}

rw::Offsets offsets() {
    rw::Offsets o;
    o.d1 = rw::SeqDelta{0};
    o.d2 = rw::SeqDelta{0x31};
    o.dts = rw::SeqDelta{0xfffffef9u};
    o.client_shift = 7;
    o.primary_shift = 10;
    o.backup_shift = 9;
    o.twin_client_shift = 7;
    o.timestamps = true;
    return o;
}

rw::AddressMap address_map() {
    rw::AddressMap m;
    m.to_backup.src = {sn::Ipv4Addr{0xc6120002}, sn::Port{40000}};
    m.to_backup.dst = {sn::Ipv4Addr{0xc6120003}, sn::Port{8080}};
    m.to_client.src = {sn::Ipv4Addr{0xc6120002}, sn::Port{80}};
    m.to_client.dst = {sn::Ipv4Addr{0xc6120110}, sn::Port{40000}};
    m.to_client.macs = rw::MacRewrite{sn::MacAddr{{2, 0, 0, 0, 0, 2}}, sn::MacAddr{{2, 0, 0, 0, 0, 0xfe}}};
    return m;
}

void BM_InternetChecksum(benchmark::State& state) {
    std::vector<std::byte> b(static_cast<std::size_t>(state.range(0)));
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = std::byte{static_cast<std::uint8_t>(i * 31)};
    for (auto _ : state) {
        benchmark::DoNotOptimize(b.data());
        benchmark::DoNotOptimize(cs::internet_checksum(b));
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * b.size()));
}
BENCHMARK(BM_InternetChecksum)->Arg(20)->Arg(64)->Arg(1480);

/// The engine's capture-time check of a client segment (FailoverEngine::tcp_checksum_ok).
void BM_TcpChecksumOk(benchmark::State& state) {
    const auto ip = ip_packet(static_cast<std::size_t>(state.range(0)));
    const std::span<const std::byte> seg = std::span<const std::byte>(ip).subspan(20);
    for (auto _ : state) {
        benchmark::DoNotOptimize(seg.data());
        benchmark::DoNotOptimize(cs::tcp_checksum_ok(sn::Ipv4Addr{0xc6120003}, sn::Ipv4Addr{0xc6120002}, seg));
    }
}
BENCHMARK(BM_TcpChecksumOk)->Arg(0)->Arg(1448);

/// Parse of an Ethernet/IPv4/TCP frame; includes the IPv4 header check.
void BM_ParseFrame(benchmark::State& state) {
    const auto f = eth_frame(static_cast<std::size_t>(state.range(0)));
    sn::Packet p;
    for (auto _ : state) {
        benchmark::DoNotOptimize(f.data());
        auto r = sn::parse(f, static_cast<std::uint32_t>(f.size()), sn::LinkType::Ethernet, p);
        benchmark::DoNotOptimize(r);
        benchmark::DoNotOptimize(p);
    }
}
BENCHMARK(BM_ParseFrame)->Arg(0)->Arg(1448);

/// Client -> backup as FailoverEngine::proxy_client_frame does it: copy the
/// captured frame into scratch, rewrite in place.
void BM_ClientToBackup(benchmark::State& state) {
    const auto f = eth_frame(static_cast<std::size_t>(state.range(0)));
    sn::Packet p;
    if (sn::parse(f, static_cast<std::uint32_t>(f.size()), sn::LinkType::Ethernet, p)) {
        state.SkipWithError("parse");
        return;
    }
    const auto off = offsets();
    const auto map = address_map();
    std::vector<std::byte> scratch(f.size());
    for (auto _ : state) {
        std::memcpy(scratch.data(), f.data(), f.size());
        auto r = rw::translate_client_to_backup(scratch, p, off, map);
        benchmark::DoNotOptimize(r);
        benchmark::DoNotOptimize(scratch.data());
    }
}
BENCHMARK(BM_ClientToBackup)->Arg(0)->Arg(1448);

/// Backup -> client as FailoverEngine::proxy_backup_packet does it today: the
/// packet is already parsed as bare IP; write Ethernet, copy, parse again,
/// rewrite.
void BM_BackupToClientParseTwice(benchmark::State& state) {
    const auto ip = ip_packet(static_cast<std::size_t>(state.range(0)));
    const auto off = offsets();
    const auto map = address_map();
    std::vector<std::byte> scratch(kEth + ip.size());
    for (auto _ : state) {
        sn::Packet p;
        if (sn::parse(ip, static_cast<std::uint32_t>(ip.size()), sn::LinkType::RawIp, p)) break;
        const auto& macs = *map.to_client.macs;
        std::memcpy(scratch.data(), macs.dst.bytes.data(), 6);
        std::memcpy(scratch.data() + 6, macs.src.bytes.data(), 6);
        scratch[12] = std::byte{0x08};
        scratch[13] = std::byte{0};
        std::memcpy(scratch.data() + kEth, ip.data(), ip.size());
        sn::Packet fp;
        if (sn::parse(scratch, static_cast<std::uint32_t>(scratch.size()), sn::LinkType::Ethernet, fp)) break;
        auto r = rw::translate_backup_to_client(scratch, fp, off, map);
        benchmark::DoNotOptimize(r);
        benchmark::DoNotOptimize(scratch.data());
    }
}
BENCHMARK(BM_BackupToClientParseTwice)->Arg(0)->Arg(1448);

#ifdef MIGWARE_BENCH_ONE_PASS
/// Backup -> client through the one-pass entry point: one parse (the
/// engine's), one copy.
void BM_BackupToClientOnePass(benchmark::State& state) {
    const auto ip = ip_packet(static_cast<std::size_t>(state.range(0)));
    const auto off = offsets();
    const auto map = address_map();
    std::vector<std::byte> scratch(kEth + ip.size());
    for (auto _ : state) {
        sn::Packet p;
        if (sn::parse(ip, static_cast<std::uint32_t>(ip.size()), sn::LinkType::RawIp, p)) break;
        auto r = rw::translate_backup_to_client_frame(ip, p, std::nullopt, off, map, scratch);
        benchmark::DoNotOptimize(r);
        benchmark::DoNotOptimize(scratch.data());
    }
}
BENCHMARK(BM_BackupToClientOnePass)->Arg(0)->Arg(1448);
#endif

}  // namespace

BENCHMARK_MAIN();
