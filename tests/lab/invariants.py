#!/usr/bin/env python3
"""Safety invariants of one lab run, from the wire (issue 10: never take over from a living
primary).  Used by tests/lab/failover.sh whenever faults are injected; stdlib only.

Inputs: one or more captures of the hub (pcap, Ethernet, optionally 802.1Q; several files are
merged by timestamp), the primary's IP, the client/primary/backup MACs, the fault log
(faults.txt, written by failover.sh) and migware's log (logfmt lines).

  I1 one speaker: no two frames that speak for the primary's IP (IPv4 source = primary, TCP or
     ICMP; or ARP sender IP = primary) toward the clients (destination MAC = a client's or
     broadcast) from two different source MACs less than 50 ms apart.  Judged while the
     primary is alive and not legitimately replaced; once migware has legitimately taken over,
     a returning primary speaking beside it cannot be prevented by migware (it is fenced
     instead), so such overlaps are counted and printed as information.
  I3 no RST to a living primary: no TCP RST with IPv4 destination = primary while the primary
     is alive and not legitimately replaced.  Legitimately replaced: from a transition to
     recovery that happened while a `partition` or `pull` fault was active (or within 0.5 s
     after a partition ended: detection delay) on; after a pull the primary is dead anyway.
     Any other takeover is itself a violation ("took over from a living primary") unless
     migware later logged takeover_rolled_back and no RST reached the primary meanwhile.
  (I2, byte-exactness, is verify.py's.)

Times: the capture's timestamps are the host's CLOCK_REALTIME; migware's `ts=` and the fault
log's `wall=` are the same clock, so everything is compared in wall-clock seconds.
The last line is `invariants: ok` or `invariants: N violations`; exit 0 / 1 (2: bad input).
"""

import argparse
import calendar
import re
import struct
import sys

WINDOW_S = 0.050          # I1: two speakers closer than this
DETECT_GRACE_S = 0.5      # a takeover this soon after a partition ended still counts as during it
SHOW = 20                 # violations printed per kind
BROADCAST = b"\xff" * 6


def mac_bytes(s):
    b = bytes(int(x, 16) for x in s.split(":"))
    if len(b) != 6:
        raise ValueError("bad MAC %r" % s)
    return b


def mac_str(b):
    return ":".join("%02x" % x for x in b)


def ip_bytes(s):
    b = bytes(int(x) for x in s.split("."))
    if len(b) != 4:
        raise ValueError("bad IPv4 address %r" % s)
    return b


def read_pcap(path):
    """Yield (ts, frame) from a classic pcap file (micro- or nanosecond, either byte order)."""
    with open(path, "rb") as f:
        hdr = f.read(24)
        if len(hdr) < 24:
            raise ValueError("%s: not a pcap file (%d bytes)" % (path, len(hdr)))
        magic = hdr[:4]
        table = {b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
                 b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9)}
        if magic not in table:
            raise ValueError("%s: not a classic pcap file (magic %s; pcapng is not read)"
                             % (path, magic.hex()))
        endian, unit = table[magic]
        linktype = struct.unpack(endian + "I", hdr[20:24])[0] & 0x0FFFFFFF
        if linktype != 1:
            raise ValueError("%s: link type %d, expected Ethernet (1)" % (path, linktype))
        rec = struct.Struct(endian + "IIII")
        while True:
            h = f.read(16)
            if len(h) < 16:
                return      # end, or a record cut short by tcpdump's SIGTERM
            sec, frac, incl, _orig = rec.unpack(h)
            data = f.read(incl)
            if len(data) < incl:
                return
            yield sec + frac * unit, data


def classify(frame):
    """(dst_mac, speaker_mac, kind, speaks_ip, ip_dst, is_rst, desc) for one Ethernet frame;
    kind is 'tcp', 'icmp', 'arp', 'other' or None (truncated or not parsed).  The speaker of
    an IPv4 frame is its Ethernet source; of an ARP frame, the MAC it claims for its sender IP
    (sender hardware address): an ARP that migware sends from its own port but that names the
    primary's MAC points the clients back at the primary, it does not compete with it."""
    if len(frame) < 14:
        return None
    dst, src = frame[0:6], frame[6:12]
    off = 12
    etype = struct.unpack("!H", frame[off:off + 2])[0]
    off += 2
    while etype in (0x8100, 0x88A8) and len(frame) >= off + 4:   # 802.1Q / QinQ tags
        etype = struct.unpack("!H", frame[off + 2:off + 4])[0]
        off += 4
    if etype == 0x0806:
        if len(frame) < off + 28:
            return dst, src, None, None, None, False, "short ARP"
        op = struct.unpack("!H", frame[off + 6:off + 8])[0]
        sha = frame[off + 8:off + 14]
        spa = frame[off + 14:off + 18]
        tpa = frame[off + 24:off + 28]
        desc = "ARP %s %s is-at %s -> %s (sent by %s)" % (
            {1: "request", 2: "reply"}.get(op, "op%d" % op), ".".join(map(str, spa)),
            mac_str(sha), ".".join(map(str, tpa)), mac_str(src))
        return dst, sha, "arp", spa, None, False, desc
    if etype != 0x0800 or len(frame) < off + 20:
        return dst, src, "other", None, None, False, "ethertype 0x%04x" % etype
    ihl = (frame[off] & 0x0F) * 4
    proto = frame[off + 9]
    ipsrc = frame[off + 12:off + 16]
    ipdst = frame[off + 16:off + 20]
    l4 = off + ihl
    addr = "%s > %s" % (".".join(map(str, ipsrc)), ".".join(map(str, ipdst)))
    if proto == 6:
        if len(frame) < l4 + 14:
            return dst, src, "tcp", ipsrc, ipdst, False, "TCP (short) " + addr
        sport, dport = struct.unpack("!HH", frame[l4:l4 + 4])
        flags = frame[l4 + 13]
        names = "".join(n for bit, n in ((2, "S"), (16, "."), (1, "F"), (4, "R"), (8, "P"))
                        if flags & bit)
        desc = "TCP %s.%d > %s.%d [%s]" % (".".join(map(str, ipsrc)), sport,
                                           ".".join(map(str, ipdst)), dport, names)
        return dst, src, "tcp", ipsrc, ipdst, bool(flags & 4), desc
    if proto == 1:
        return dst, src, "icmp", ipsrc, ipdst, False, "ICMP " + addr
    return dst, src, "other", ipsrc, ipdst, False, "IP proto %d %s" % (proto, addr)


ISO = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?Z")


def parse_ts(s):
    m = ISO.fullmatch(s)
    if not m:
        return None
    y, mo, d, h, mi, se = (int(x) for x in m.groups()[:6])
    return calendar.timegm((y, mo, d, h, mi, se, 0, 0, 0)) + float(m.group(7) or 0)


KV = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def logfmt(line):
    return {k: v[1:-1] if v.startswith('"') else v for k, v in KV.findall(line)}


def read_migware_log(paths):
    """Events we judge, as dicts with a wall-clock 't', in time order."""
    out = []
    for path in paths:
        try:
            f = open(path, errors="replace")
        except OSError as e:
            raise ValueError("cannot read migware's log %s: %s" % (path, e))
        with f:
            for line in f:
                if "event=" not in line:
                    continue
                kv = logfmt(line)
                ev = kv.get("event")
                if ev not in ("transition", "takeover_rolled_back", "monitor_veto",
                              "fence_start", "fence_done"):
                    continue
                t = parse_ts(kv.get("ts", ""))
                if t is None:
                    continue
                kv["t"] = t
                out.append(kv)
    out.sort(key=lambda e: e["t"])
    return out


def read_faults(path):
    """[(kind, start_wall, end_wall or None, start_mono_ns)] from faults.txt lines
    `mono_ns=... wall=... n=... fault=KIND phase=start|end|pull ...`."""
    starts, out = {}, []
    if not path:
        return out
    with open(path) as f:
        for line in f:
            kv = logfmt(line)
            kind, phase = kv.get("fault"), kv.get("phase")
            try:
                wall = float(kv.get("wall", ""))
                mono = int(kv.get("mono_ns", ""))
            except ValueError:
                continue
            idx = kv.get("n", kind)
            if phase == "start":
                starts[idx] = (kind, wall, mono)
            elif phase == "end" and idx in starts:
                k, w0, m0 = starts.pop(idx)
                out.append((k, w0, wall, m0))
            elif phase == "pull":
                out.append(("pull", wall, None, mono))
    for k, w0, m0 in starts.values():       # started, never logged as ended: open until the end
        out.append((k, w0, None, m0))
    out.sort(key=lambda x: x[1])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pcap", action="append", required=True, help="hub capture (repeatable)")
    ap.add_argument("--primary-ip", default="198.18.0.1")
    ap.add_argument("--client-mac", action="append", required=True)
    ap.add_argument("--primary-mac", required=True)
    ap.add_argument("--backup-mac", required=True)
    ap.add_argument("--faults", help="faults.txt from failover.sh")
    ap.add_argument("--migware-log", action="append", default=[])
    ap.add_argument("--reference-out", help="write what verify.py should judge the run as: "
                    "`partition WALL MONO_NS` or `pull WALL MONO_NS` (the fault the first standing "
                    "legitimate takeover answered), `rolled-back` or `none`")
    a = ap.parse_args()
    try:
        pip = ip_bytes(a.primary_ip)
        clients = {mac_bytes(m) for m in a.client_mac}
        names = {mac_bytes(a.primary_mac): "primary", mac_bytes(a.backup_mac): "backup"}
        for m in clients:
            names[m] = "client"
        faults = read_faults(a.faults)
        events = read_migware_log(a.migware_log)
        frames = []
        for p in a.pcap:
            frames += list(read_pcap(p))
    except (OSError, ValueError) as e:
        print("invariants: input error: %s" % e)
        print("invariants: 1 violations")
        return 2
    frames.sort(key=lambda x: x[0])
    toward_clients = clients | {BROADCAST}

    def who(mac):
        return names.get(mac, mac_str(mac))

    def fmt_t(t):
        return "%.6f" % t

    # ---- takeovers, each judged against the faults active at that moment
    partitions = [(s, e, m) for k, s, e, m in faults if k == "partition"]
    pulls = [(s, m) for k, s, e, m in faults if k == "pull"]
    rollbacks = [e["t"] for e in events if e.get("event") == "takeover_rolled_back"]
    vetoes = [e for e in events if e.get("event") == "monitor_veto"]
    takeovers = []           # dicts: t, legit, why, rolled_back_at
    for e in events:
        if e.get("event") != "transition" or e.get("to") != "recovery":
            continue
        t = e["t"]
        why = ref = None
        for s, en, m in partitions:
            if s <= t and (en is None or t <= en + DETECT_GRACE_S):
                why, ref = "during the partition at %s" % fmt_t(s), ("partition", s, m)
        for s, m in pulls:
            if s <= t:
                why, ref = "after the pull", ("pull", s, m)
        later = [r for r in rollbacks if r >= t]
        takeovers.append({"t": t, "legit": why is not None, "why": why, "ref": ref,
                          "rolled_back_at": later[0] if later else None,
                          "cause": e.get("cause", "?")})
    # epochs in which the primary is legitimately gone: from a legit takeover (until it is
    # rolled back, if it ever is) and from a pull on
    replaced = [(tk["t"], tk["rolled_back_at"]) for tk in takeovers if tk["legit"]]
    replaced += [(p, None) for p, _ in pulls]

    def primary_replaced(t):
        return any(s <= t and (e is None or t < e) for s, e in replaced)

    # wrongful takeovers: from the transition until its rollback (or the end)
    wrongful = [(tk["t"], tk["rolled_back_at"]) for tk in takeovers if not tk["legit"]]

    violations = {"I1": [], "I3": [], "takeover": []}
    info_overlap = 0
    rst_in_wrongful = [0] * len(wrongful)
    last = {}              # source MAC -> (t, desc) of its last speaking frame toward clients
    n_speak = 0
    n_rst_primary = 0
    for ts, fr in frames:
        c = classify(fr)
        if c is None:
            continue
        dst, src, kind, speaks, ipdst, is_rst, desc = c
        if kind in ("tcp", "icmp", "arp") and speaks == pip and dst in toward_clients:
            n_speak += 1
            for m, (t0, d0) in last.items():
                if m != src and ts - t0 < WINDOW_S:
                    line = ("%s I1 two speakers for %s within %.1f ms: %s from %s, then %s from %s"
                            % (fmt_t(ts), a.primary_ip, 1000 * (ts - t0), d0, who(m), desc,
                               who(src)))
                    if primary_replaced(ts):
                        info_overlap += 1
                    else:
                        violations["I1"].append(line)
            last[src] = (ts, desc)
        if kind == "tcp" and is_rst and ipdst == pip:
            n_rst_primary += 1
            for i, (s, e) in enumerate(wrongful):
                if s <= ts and (e is None or ts <= e):
                    rst_in_wrongful[i] += 1
            if not primary_replaced(ts):
                violations["I3"].append("%s I3 RST to the living primary: %s (from %s)"
                                        % (fmt_t(ts), desc, who(src)))
    wi = 0
    for tk in takeovers:
        if tk["legit"]:
            continue
        rb, nrst = tk["rolled_back_at"], rst_in_wrongful[wi]
        wi += 1
        if rb is not None and nrst == 0:
            continue     # a rolled-back takeover that reset nothing on the primary
        violations["takeover"].append(
            "%s took over from a living primary (cause=%s, no partition or pull active); %s"
            % (fmt_t(tk["t"]), tk["cause"],
               "rolled back at %s but %d RST reached the primary meanwhile" % (fmt_t(rb), nrst)
               if rb is not None else "never rolled back"))

    if a.reference_out:
        standing = [tk for tk in takeovers if tk["legit"] and tk["rolled_back_at"] is None]
        with open(a.reference_out, "w") as f:
            if standing:
                kind, s, m = standing[0]["ref"]
                f.write("%s %.6f %d\n" % (kind, s, m))
            else:
                f.write("rolled-back\n" if rollbacks else "none\n")

    # ---- report
    print("invariants: %d frames in %d capture file(s); %d speak for %s toward clients; "
          "%d TCP RST to %s" % (len(frames), len(a.pcap), n_speak, a.primary_ip, n_rst_primary,
                                a.primary_ip))
    print("invariants: faults: %s" % (", ".join(
        "%s@%s%s" % (k, fmt_t(s), "" if e is None else "+%.3fs" % (e - s))
        for k, s, e, _m in faults) or "none"))
    print("invariants: migware: %d takeover(s) (%d during a primary fault), %d veto(es)%s, "
          "%d rollback(s)" % (len(takeovers), sum(1 for t in takeovers if t["legit"]),
                              len(vetoes),
                              " [" + ", ".join(sorted({v.get("reason", "?") for v in vetoes})) + "]"
                              if vetoes else "", len(rollbacks)))
    for tk in takeovers:
        print("invariants: takeover at %s cause=%s: %s%s" % (
            fmt_t(tk["t"]), tk["cause"], tk["why"] or "NO primary fault active",
            "; rolled back at %s" % fmt_t(tk["rolled_back_at"]) if tk["rolled_back_at"] else ""))
    if info_overlap:
        print("invariants: (info) a returning primary and migware both spoke within %d ms "
              "after a legitimate takeover: %d times (fenced, not a violation)"
              % (WINDOW_S * 1000, info_overlap))
    if not frames:
        violations["takeover"].append("the hub capture holds no frame: nothing was checked")
    total = 0
    for kind in ("takeover", "I1", "I3"):
        lst = violations[kind]
        total += len(lst)
        for line in lst[:SHOW]:
            print("invariants: VIOLATION " + line)
        if len(lst) > SHOW:
            print("invariants: ... %d more %s violations" % (len(lst) - SHOW, kind))
    if total:
        print("invariants: by kind: %s" % ", ".join(
            "%s %d" % (k, len(v)) for k, v in violations.items() if v))
        print("invariants: %d violations" % total)
        return 1
    print("invariants: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
