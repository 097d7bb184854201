#!/usr/bin/env python3
"""Seed corpora for the libFuzzer targets (tests/fuzz/README.md), from captures.

    scripts/fuzz_seeds.py OUT_DIR [CAPTURE_OR_DIR...]

Without capture arguments it reads pcaps/*.pcap and ../shared/corpus/**/*.pcap*
(relative to the repository). Writes OUT_DIR/fuzz_parser/ and OUT_DIR/fuzz_engine/:

- fuzz_parser: one file per frame, [selector][frame]: the selector's low nibble is
  the link type (0 Ethernet, 1 Linux SLL, 2 SLL2, 3 raw IPv4, 4 null/loop), its high
  nibble how many 64-byte blocks snaplen cut off. At most 16 distinct frames a capture.
- fuzz_engine: per Ethernet capture with TCP, scripts in fuzz_engine.cpp's format:
  its frames with the server moved to 198.18.0.1:80 (checksums recomputed), the
  primary declared down halfway, the backup answering the twin SYNs, timers; then
  the primary heard and back. Two config bytes each (the daemon's, and another mix).

Reads classic pcap (us and ns) and pcapng (SHB/IDB/EPB/SPB/PB) itself, without
libpcap, and skips what it cannot read: other formats, link types the parser does
not know. Prints what it read and what it skipped, with counts.
"""
import hashlib
import os
import struct
import sys
from pathlib import Path

LINKS = {1: 0, 113: 1, 276: 2, 101: 3, 12: 3, 14: 3, 228: 3, 0: 4, 108: 4}
PRIMARY = bytes([198, 18, 0, 1])
SERVICE = 80
MAX_PARSER_SEEDS_PER_CAPTURE = 16
MAX_ENGINE_FRAMES = 400
MAX_SCRIPT_BYTES = 60000
# Config bytes (fuzz_engine.cpp): the daemon's (checksums verified, ARP answered,
# fence on, own MAC known), and fail-back + replay of unanswered requests, unverified.
CONFIGS = (0x47, 0x1a)


class Unreadable(Exception):
    pass


def read_pcap(data):
    """Yields (link, ts_ns, frame, orig_len)."""
    magic = data[:4]
    order = {b"\xd4\xc3\xb2\xa1": ("<", 1000), b"\xa1\xb2\xc3\xd4": (">", 1000),
             b"\x4d\x3c\xb2\xa1": ("<", 1), b"\xa1\xb2\x3c\x4d": (">", 1)}.get(magic)
    if order is None or len(data) < 24:
        raise Unreadable("not a classic pcap")
    e, unit = order
    link = struct.unpack(e + "I", data[20:24])[0] & 0xffff
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, cap, orig = struct.unpack(e + "IIII", data[pos:pos + 16])
        pos += 16
        if cap > len(data) - pos:
            break  # the file itself is cut short
        yield link, sec * 1_000_000_000 + frac * unit, data[pos:pos + cap], orig
        pos += cap


def read_pcapng(data):
    e = "<"
    links = []  # per interface: (link, ns per tick, snaplen)
    pos = 0
    while pos + 12 <= len(data):
        btype = struct.unpack(e + "I", data[pos:pos + 4])[0]
        if btype == 0x0A0D0D0A:
            bom = data[pos + 8:pos + 12]
            e = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">" if bom == b"\x1a\x2b\x3c\x4d" else None
            if e is None:
                raise Unreadable("pcapng: bad byte-order magic")
            links = []
        blen = struct.unpack(e + "I", data[pos + 4:pos + 8])[0]
        if blen < 12 or blen % 4 or pos + blen > len(data):
            break
        body = data[pos + 8:pos + blen - 4]
        if btype == 1 and len(body) >= 8:  # Interface Description
            link, _, snap = struct.unpack(e + "HHI", body[:8])
            tick = 1000
            opt = 8
            while opt + 4 <= len(body):
                code, olen = struct.unpack(e + "HH", body[opt:opt + 4])
                if code == 0:
                    break
                if code == 9 and olen >= 1:  # if_tsresol
                    r = body[opt + 4]
                    tick = max(1, int(1e9 / (2 ** (r & 0x7f) if r & 0x80 else 10 ** r)))
                opt += 4 + (olen + 3) // 4 * 4
            links.append((link, tick, snap))
        elif btype in (6, 2) and len(body) >= 20:  # Enhanced / obsolete Packet
            if btype == 6:
                iface, hi, lo, cap, orig = struct.unpack(e + "IIIII", body[:20])
            else:
                iface, _, hi, lo, cap, orig = struct.unpack(e + "HHIIII", body[:20])
            if iface < len(links) and cap <= len(body) - 20:
                link, tick, _ = links[iface]
                yield link, ((hi << 32) | lo) * tick, body[20:20 + cap], orig
        elif btype == 3 and len(body) >= 4 and links:  # Simple Packet: interface 0
            orig = struct.unpack(e + "I", body[:4])[0]
            link, _, snap = links[0]
            cap = min(orig, len(body) - 4, snap or orig)
            yield link, 0, body[4:4 + cap], orig
        pos += blen


def read_capture(path):
    data = path.read_bytes()
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        return list(read_pcapng(data))
    return list(read_pcap(data))


def csum(b, acc=0):
    if len(b) % 2:
        b += b"\0"
    for (w,) in struct.iter_unpack("!H", b):
        acc += w
    while acc >> 16:
        acc = (acc & 0xffff) + (acc >> 16)
    return acc


def l3_offset(frame):
    """Offset and ethertype after Ethernet and any 802.1Q tags."""
    if len(frame) < 14:
        return None, None
    off, etype = 12, struct.unpack("!H", frame[12:14])[0]
    while etype in (0x8100, 0x88a8, 0x9100) and len(frame) >= off + 6:
        off += 4
        etype = struct.unpack("!H", frame[off:off + 2])[0]
    return off + 2, etype


def tcp_of(frame):
    """(ip offset, ihl, tcp offset) of an unfragmented IPv4/TCP frame, or None."""
    l3, etype = l3_offset(frame)
    if etype != 0x0800 or len(frame) < l3 + 20 or frame[l3] >> 4 != 4:
        return None
    ihl = (frame[l3] & 0xf) * 4
    if frame[l3 + 9] != 6 or len(frame) < l3 + ihl + 20:
        return None
    if struct.unpack("!H", frame[l3 + 6:l3 + 8])[0] & 0x3fff:
        return None
    return l3, ihl, l3 + ihl


def find_server(frames):
    """The server endpoint: the first SYN's destination, else the lower port."""
    fallback = None
    for _, _, f, _ in frames:
        t = tcp_of(f)
        if not t:
            continue
        l3, _, l4 = t
        src, dst = f[l3 + 12:l3 + 16], f[l3 + 16:l3 + 20]
        sport, dport = struct.unpack("!HH", f[l4:l4 + 4])
        flags = f[l4 + 13]
        if flags & 0x12 == 0x02:
            return dst, dport
        if fallback is None:
            fallback = (dst, dport) if dport < sport else (src, sport)
    return fallback


def move_server(frame, orig, server):
    """The frame with the server at 198.18.0.1:80, its checksums made right again."""
    sip, sport = server
    f = bytearray(frame)
    l3, etype = l3_offset(f)
    if etype == 0x0806 and len(f) >= l3 + 28:  # ARP: sender/target protocol addresses
        for off in (l3 + 14, l3 + 24):
            if f[off:off + 4] == sip:
                f[off:off + 4] = PRIMARY
        return bytes(f)
    if etype != 0x0800 or len(f) < l3 + 20 or f[l3] >> 4 != 4:
        return bytes(f)
    ihl = (f[l3] & 0xf) * 4
    if len(f) < l3 + ihl:
        return bytes(f)
    for off in (l3 + 12, l3 + 16):
        if f[off:off + 4] == sip:
            f[off:off + 4] = PRIMARY
    f[l3 + 10:l3 + 12] = b"\0\0"
    f[l3 + 10:l3 + 12] = struct.pack("!H", ~csum(bytes(f[l3:l3 + ihl])) & 0xffff)
    t = tcp_of(bytes(f))
    if not t:
        return bytes(f)
    _, _, l4 = t
    if f[l3 + 12:l3 + 16] == PRIMARY and struct.unpack("!H", f[l4:l4 + 2])[0] == sport:
        f[l4:l4 + 2] = struct.pack("!H", SERVICE)
    if f[l3 + 16:l3 + 20] == PRIMARY and struct.unpack("!H", f[l4 + 2:l4 + 4])[0] == sport:
        f[l4 + 2:l4 + 4] = struct.pack("!H", SERVICE)
    total = struct.unpack("!H", f[l3 + 2:l3 + 4])[0]
    if orig == len(frame) and l3 + ihl <= l3 + total <= len(f):  # whole segment captured
        seg = bytearray(f[l4:l3 + total])
        seg[16:18] = b"\0\0"
        pseudo = bytes(f[l3 + 12:l3 + 20]) + struct.pack("!HH", 6, len(seg))
        f[l4 + 16:l4 + 18] = struct.pack("!H", ~csum(bytes(seg), csum(pseudo)) & 0xffff)
    return bytes(f)


def record(op, dt_ns=0, payload=b""):
    step = min(31, int(round((max(0, dt_ns) / 1e6) ** 0.5)))
    return bytes([op | step << 3]) + struct.pack("!H", len(payload)) + payload


def engine_script(config, frames):
    out = [bytes([config])]
    size = 1
    half = len(frames) // 2
    last = frames[0][0]

    def add(r):
        nonlocal size
        if size + len(r) > MAX_SCRIPT_BYTES:
            return False
        out.append(r)
        size += len(r)
        return True

    for i, (ts, frame) in enumerate(frames):
        if i == half:
            add(record(3))  # primary_down: Recovery begins
            for k in range(8):
                add(record(6, 0, struct.pack("!I", 0x20000000 + k * 0x01000000)))
            add(record(2))
        if i > half and (i - half) % 8 == 0:
            add(record(6))
            add(record(2))
        if not add(record(0, ts - last, frame)):
            break
        last = ts
    for r in (record(2), record(6), record(2, 150_000_000), record(4), record(2), record(2, 600_000_000),
              record(5), record(7), record(2), record(2, 961_000_000), record(2)):
        add(r)
    return b"".join(out)


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    root = Path(__file__).resolve().parent.parent
    out = Path(sys.argv[1])
    args = [Path(a) for a in sys.argv[2:]] or [root / "pcaps", root.parent / "shared" / "corpus"]
    captures = []
    for a in args:
        if a.is_dir():
            captures += sorted(p for p in a.rglob("*") if p.is_file() and ".pcap" in p.name)
        elif a.is_file():
            captures.append(a)
        else:
            print(f"fuzz_seeds: {a}: no such file or folder", file=sys.stderr)
            return 1
    (out / "fuzz_parser").mkdir(parents=True, exist_ok=True)
    (out / "fuzz_engine").mkdir(parents=True, exist_ok=True)
    read = unreadable = no_link = frames_unknown_link = 0
    parser_seeds = engine_seeds = 0
    seen = set()
    for path in captures:
        try:
            frames = read_capture(path)
        except (Unreadable, struct.error, OSError):
            unreadable += 1
            continue
        read += 1
        known = [(LINKS[l], ts, f, o) for l, ts, f, o in frames if l in LINKS]
        frames_unknown_link += len(frames) - len(known)
        if frames and not known:
            no_link += 1
        kept = 0
        for link, _, f, orig in known:
            cut = min(15, -(-(orig - len(f)) // 64)) if orig > len(f) else 0
            seed = bytes([link | cut << 4]) + f
            digest = hashlib.sha1(seed).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            (out / "fuzz_parser" / digest).write_bytes(seed)
            parser_seeds += 1
            kept += 1
            if kept == MAX_PARSER_SEEDS_PER_CAPTURE:
                break
        # A record holds at most 65535 bytes: BIG TCP super-segments stay parser seeds.
        eth = [(ts, f, o) for link, ts, f, o in known if link == 0 and len(f) <= 0xffff]
        eth = eth[:MAX_ENGINE_FRAMES]
        server = find_server([(0, ts, f, o) for ts, f, o in eth])
        if server is None:
            continue
        moved = [(ts, move_server(f, o, server)) for ts, f, o in eth]
        for config in CONFIGS:
            script = engine_script(config, moved)
            (out / "fuzz_engine" / hashlib.sha1(script).hexdigest()).write_bytes(script)
            engine_seeds += 1
    print(f"fuzz_seeds: {len(captures)} captures: {read} read, {unreadable} unreadable, "
          f"{no_link} with no link type the parser knows ({frames_unknown_link} frames skipped)")
    print(f"fuzz_seeds: {parser_seeds} parser seeds, {engine_seeds} engine scripts in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
