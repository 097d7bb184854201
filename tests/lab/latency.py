#!/usr/bin/env python3
"""Failover measurements from one lab run's artefacts, and the summary over many runs
(used by scripts/bench_failover.sh; stdlib only).

  latency.py run --work DIR --out FILE.json [--category C] [--rc N] [--verdict LINE]
  latency.py summary --runs DIR [--markdown FILE]

`run` reads what `tests/lab/failover.sh --work DIR` keeps:
  pull.txt            CLOCK_MONOTONIC before/after the pull and the wall clock after it
  migware.log         event=transition ... mono_ns=N lines
  client.pcap         the client's capture (eth0 of the client namespace)
  backup-eth0.pcap, backup-mw0.pcap   with --backup-capture: the backup namespace's eth0 and TUN
  direct.json         with --direct-connections: the reference client straight to the backup

and computes
  detection_ms  cable pulled (monotonic, right after `ip link set down` returned) -> Recovery
  recovery_ms   Recovery entered -> Proxy entered (migware's own monotonic timestamps)
  stall_ms      per connection to the primary: the last segment carrying an ACK that the client
                captured from 198.18.0.1:7000 before the pull -> the first one captured after
                the pull (necessarily through the backup: the primary's cable is down)
  added_us      per packet, in Proxy (timestamp >= the Proxy transition): (a) client packet on the
                backup's eth0 -> the rewritten packet on mw0; (b) the backup's reply on mw0 ->
                the rewritten reply out on eth0.  Matched by direction + IP ID + TCP payload
                length, with the client port as a tiebreaker (migware keeps the client's port
                for the twin in this lab); keys seen more than once on either side are dropped
                as ambiguous and counted.
  rtt_us        client-observed request -> reply, from the client's capture: first transmission
                of a request segment -> the first reply segment whose ACK covers it, for
                requests sent after the Proxy transition, proxied (198.18.0.1) and direct
                (198.18.0.2) connections separately.

Wall clock (pcap) and monotonic clock (migware) are tied by the pair read together right after
the pull: wall = pull_wall + (mono - pull_mono) / 1e9.
"""

import argparse
import glob
import json
import math
import os
import re
import socket
import statistics
import struct
import sys

CLIENT = socket.inet_aton("198.18.0.10")
PRIMARY = socket.inet_aton("198.18.0.1")
BACKUP = socket.inet_aton("198.18.0.2")
PORT = 7000
M32 = 1 << 32

F_SYN, F_RST, F_ACK = 0x02, 0x04, 0x10


# ------------------------------------------------------------------ pcap
def read_pcap(path):
    """Yield (ts_ns, src, dst, sport, dport, ipid, flags, seq, ack, paylen) for IPv4/TCP."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise ValueError("%s: not a pcap file (pcapng is not supported)" % path)
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(e + "I", data[20:24])[0] & 0x0FFFFFFF
    if linktype == 1:
        l2 = 14
    elif linktype in (12, 101, 228):
        l2 = 0
    elif linktype == 113:
        l2 = 16
    elif linktype == 276:
        l2 = 20
    else:
        raise ValueError("%s: unsupported link type %d" % (path, linktype))
    rec = struct.Struct(e + "IIII")
    mult = 1 if nano else 1000
    off = 24
    n = len(data)
    while off + 16 <= n:
        sec, frac, incl, _orig = rec.unpack_from(data, off)
        off += 16
        pkt = data[off:off + incl]
        off += incl
        if l2 == 14:
            if pkt[12:14] != b"\x08\x00":
                continue
        elif l2 == 16:
            if pkt[14:16] != b"\x08\x00":
                continue
        elif l2 == 20:
            if pkt[0:2] != b"\x08\x00":
                continue
        ip = pkt[l2:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        ihl = (ip[0] & 0x0F) * 4
        tot = (ip[2] << 8) | ip[3]
        ipid = (ip[4] << 8) | ip[5]
        tcp = ip[ihl:]
        if len(tcp) < 14:
            continue
        sport, dport, seq, ack = struct.unpack_from("!HHII", tcp, 0)
        doff = (tcp[12] >> 4) * 4
        flags = tcp[13]
        yield (sec * 1_000_000_000 + frac * mult, ip[12:16], ip[16:20], sport, dport, ipid,
               flags, seq, ack, tot - ihl - doff)


# ------------------------------------------------------------------ one run
def transitions(path):
    out = []
    if not os.path.exists(path):
        return out
    with open(path, errors="replace") as f:
        for line in f:
            if "event=transition" not in line:
                continue
            kv = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
            try:
                out.append((kv.get("from"), kv.get("to"), int(kv["mono_ns"]),
                            kv.get("reason", "").strip('"')))
            except (KeyError, ValueError):
                pass
    return out


def stalls(pkts, pull_wall_ns):
    per = {}
    for ts, src, dst, sp, dp, _id, fl, _s, _a, _n in pkts:
        if src == PRIMARY and sp == PORT and dst == CLIENT and fl & F_ACK:
            c = per.setdefault(dp, [None, None])
            if ts < pull_wall_ns:
                if c[0] is None or ts > c[0]:
                    c[0] = ts
            elif c[1] is None or ts < c[1]:
                c[1] = ts
    out, missing = [], 0
    for last, first in per.values():
        if last is None or first is None:
            missing += 1
        else:
            out.append((first - last) / 1e6)
    return out, missing


def req_reply(pkts, t0_ns):
    """Client request -> reply times (us) for requests first sent at or after t0_ns."""
    reqs = {}      # (server ip, port) -> {seq_end: [ts, answered]}
    res = {PRIMARY: [], BACKUP: []}
    for ts, src, dst, sp, dp, _id, fl, seq, ack, n in pkts:
        if src == CLIENT and dp == PORT and dst in res and n > 0:
            d = reqs.setdefault((dst, sp), {})
            end = (seq + n) % M32
            if end not in d:                       # first transmission only
                d[end] = [ts, False]
        elif dst == CLIENT and sp == PORT and src in res and n > 0 and fl & F_ACK:
            d = reqs.get((src, dp))
            if not d:
                continue
            r = d.get(ack)
            if r is None or r[1]:
                continue
            r[1] = True
            if r[0] >= t0_ns:
                res[src].append((ts - r[0]) / 1e3)
    return res[PRIMARY], res[BACKUP]


def added_latency(eth, tun, t0_ns):
    """(a) eth0 client->primary -> mw0 twin->backup; (b) mw0 backup->twin -> eth0 primary->client."""
    def index(pkts, pick):
        d, dup = {}, set()
        for p in pkts:
            k = pick(p)
            if k is None:
                continue
            if k in d:
                dup.add(k)
            else:
                d[k] = p[0]
        return d, dup

    # keys: (ipid, payload length, client port)
    a_in, a_dup1 = index(eth, lambda p: (p[5], p[9], p[3]) if (
        p[1] == CLIENT and p[2] == PRIMARY and p[4] == PORT and p[0] >= t0_ns) else None)
    a_out, a_dup2 = index(tun, lambda p: (p[5], p[9], p[3]) if (
        p[1] == PRIMARY and p[2] == BACKUP and p[4] == PORT) else None)
    b_in, b_dup1 = index(tun, lambda p: (p[5], p[9], p[4]) if (
        p[1] == BACKUP and p[3] == PORT and p[2] == PRIMARY and p[0] >= t0_ns) else None)
    b_out, b_dup2 = index(eth, lambda p: (p[5], p[9], p[4]) if (
        p[1] == PRIMARY and p[3] == PORT and p[2] == CLIENT) else None)

    def match(src, dst, dups):
        out, unmatched, neg = [], 0, 0
        for k, t in src.items():
            if k in dups:
                continue
            u = dst.get(k)
            if u is None:
                unmatched += 1
                continue
            if u < t:
                neg += 1
                continue
            out.append((u - t) / 1e3)
        return out, unmatched, neg

    a, a_un, a_neg = match(a_in, a_out, a_dup1 | a_dup2)
    b, b_un, b_neg = match(b_in, b_out, b_dup1 | b_dup2)
    return {
        "a_us": a, "a_candidates": len(a_in), "a_unmatched": a_un, "a_negative": a_neg,
        "a_ambiguous": len(a_dup1 | a_dup2),
        "b_us": b, "b_candidates": len(b_in), "b_unmatched": b_un, "b_negative": b_neg,
        "b_ambiguous": len(b_dup1 | b_dup2),
    }


def cmd_run(a):
    w = a.work
    r = {"category": a.category, "rc": a.rc, "verdict": a.verdict, "work": w, "notes": []}
    try:
        mono0, mono1, wall1 = open(os.path.join(w, "pull.txt")).read().split()
        mono0, mono1 = int(mono0), int(mono1)
        wall1_ns = int(round(float(wall1) * 1e9))
    except (OSError, ValueError):
        r["notes"].append("no pull.txt (the run stopped before the pull)")
        json.dump(r, open(a.out, "w"))
        return 0
    r["pull_cmd_ms"] = (mono1 - mono0) / 1e6
    tr = transitions(os.path.join(w, "migware.log"))
    rec = [t for t in tr if t[1] == "recovery" and t[2] >= mono0]
    proxy_wall_ns = None
    if rec:
        r["detection_ms"] = (rec[0][2] - mono1) / 1e6
        prx = [t for t in tr if t[1] == "proxy" and t[2] >= rec[0][2]]
        if prx:
            r["recovery_ms"] = (prx[0][2] - rec[0][2]) / 1e6
            r["recovery_reason"] = prx[0][3]
            proxy_wall_ns = wall1_ns + (prx[0][2] - mono1)
        else:
            r["notes"].append("migware never reached proxy")
    else:
        r["notes"].append("migware never entered recovery after the pull")
    others = [t for t in tr if t[1] not in ("recovery", "proxy")]
    if others:
        r["notes"].append("other transitions: " + ", ".join("%s->%s" % t[:2] for t in others))

    cp = os.path.join(w, "client.pcap")
    if os.path.exists(cp):
        pk = list(read_pcap(cp))
        s, miss = stalls(pk, wall1_ns)
        r["stall_ms"] = s
        r["stall_missing"] = miss
        if proxy_wall_ns is not None and os.path.exists(os.path.join(w, "direct.json")):
            prox, direct = req_reply(pk, proxy_wall_ns)
            r["rtt_proxied_us"], r["rtt_direct_us"] = prox, direct
            try:
                dj = json.load(open(os.path.join(w, "direct.json")))
                r["direct_errors"] = dj.get("errors")
            except (OSError, ValueError):
                r["notes"].append("no direct.json report")
        del pk
    else:
        r["notes"].append("no client capture")

    ep, tp = os.path.join(w, "backup-eth0.pcap"), os.path.join(w, "backup-mw0.pcap")
    if os.path.exists(ep) and os.path.exists(tp):
        if proxy_wall_ns is None:
            r["notes"].append("no proxy transition: added latency not measured")
        else:
            r.update(added_latency(list(read_pcap(ep)), list(read_pcap(tp)), proxy_wall_ns))
            try:
                r["backup_tstamp"] = open(os.path.join(w, "backup-capture.txt")).read().split("\n")[:2]
            except OSError:
                pass
    for f in glob.glob(os.path.join(w, "tcpdump*.log")):
        txt = open(f, errors="replace").read()
        m = re.search(r"^(\d+) packets dropped by kernel", txt, re.M)
        if m and int(m.group(1)):
            r["notes"].append("%s: %s packets dropped by kernel" % (os.path.basename(f), m.group(1)))
    with open(a.out, "w") as f:
        json.dump(r, f)
    return 0


# ------------------------------------------------------------------ summary
def p99(xs):
    xs = sorted(xs)
    return xs[max(0, math.ceil(0.99 * len(xs)) - 1)]       # nearest rank


def stats(xs):
    if not xs:
        return None
    return {"n": len(xs), "median": statistics.median(xs), "p99": p99(xs), "min": min(xs),
            "max": max(xs)}


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "us":
        return "%.0f" % v if abs(v) >= 100 else "%.1f" % v
    return "%.1f" % v if abs(v) >= 10 else "%.2f" % v


def cmd_summary(a):
    runs = []
    for p in sorted(glob.glob(os.path.join(a.runs, "*.json"))):
        if os.path.basename(p) == "plan.json":
            continue
        try:
            r = json.load(open(p))
        except (OSError, ValueError) as e:
            print("summary: cannot read %s: %s" % (p, e), file=sys.stderr)
            continue
        r["_name"] = os.path.basename(p)[:-5]
        runs.append(r)
    spec = json.load(open(os.path.join(a.runs, "plan.json")))     # [[measure, category, label, n_units]]
    rows = []

    def ok(r):
        return r.get("rc") == 0

    for measure, cat, label in spec:
        rs = [r for r in runs if r.get("category") == cat]
        good = [r for r in rs if ok(r)]
        failed = len(rs) - len(good)
        skipped = sum(1 for r in rs if r.get("skipped"))
        failed -= skipped
        if measure in ("detection", "recovery"):
            key = measure + "_ms"
            xs = [r[key] for r in good if key in r]
            miss = len(good) - len(xs)
            st = stats(xs)
            nlab = "%d runs" % len(xs)
            unit = "ms"
        elif measure == "stall":
            xs = [x for r in good for x in r.get("stall_ms", [])]
            miss = sum(r.get("stall_missing", 0) for r in good)
            st = stats(xs)
            nlab = "%d conns / %d runs" % (len(xs), sum(1 for r in good if r.get("stall_ms")))
            unit = "ms"
        elif measure in ("added_a", "added_b"):
            k = "a_us" if measure == "added_a" else "b_us"
            xs = [x for r in good for x in r.get(k, [])]
            miss = 0
            st = stats(xs)
            nlab = "%d pkts / %d runs" % (len(xs), sum(1 for r in good if k in r))
            unit = "us"
        elif measure in ("rtt_proxied", "rtt_direct"):
            k = measure + "_us"
            xs = [x for r in good for x in r.get(k, [])]
            miss = 0
            st = stats(xs)
            nlab = "%d replies / %d runs" % (len(xs), sum(1 for r in good if k in r))
            unit = "us"
        else:
            continue
        rows.append((label, unit, nlab, st, failed, skipped, miss))
        if measure == "rtt_direct":
            px = [x for r in good for x in r.get("rtt_proxied_us", [])]
            sp, sd = stats(px), st
            if sp and sd:
                diff = {"median": sp["median"] - sd["median"], "p99": sp["p99"] - sd["p99"],
                        "min": sp["min"] - sd["min"], "max": sp["max"] - sd["max"], "n": None}
                rows.append(("difference, proxied - direct (us)", "us", "same runs", diff,
                             failed, skipped, 0))

    lines = ["| measure | n | median | p99 | min | max | failed runs |",
             "|---|---|---|---|---|---|---|"]
    for label, unit, nlab, st, failed, skipped, miss in rows:
        extra = "%d" % failed
        if skipped:
            extra += " (+%d skipped: time budget)" % skipped
        if miss:
            nlab += " (%d without a value)" % miss
        if st is None:
            lines.append("| %s | %s | - | - | - | - | %s |" % (label, nlab, extra))
        else:
            lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                label, nlab, fmt(st["median"], unit), fmt(st["p99"], unit),
                fmt(st["min"], unit), fmt(st["max"], unit), extra))
    table = "\n".join(lines)

    # failed runs, in full
    bad = [r for r in runs if not ok(r)]
    out = []
    if bad:
        out.append("Failed or skipped runs (excluded from the table; their values, where measured):")
        for r in bad:
            vals = []
            for k in ("detection_ms", "recovery_ms"):
                if k in r:
                    vals.append("%s=%.1f" % (k, r[k]))
            if r.get("stall_ms"):
                vals.append("stall median=%.1f ms" % statistics.median(r["stall_ms"]))
            out.append("- %s [%s] rc=%s: %s %s %s" % (
                r["_name"], r.get("category"), r.get("rc"),
                "skipped (time budget)" if r.get("skipped") else (r.get("verdict") or "no verdict"),
                " ".join(vals), "; ".join(r.get("notes", []))))
    notes = [(r["_name"], n) for r in runs for n in r.get("notes", []) if ok(r)]
    for name, n in notes:
        out.append("- note %s: %s" % (name, n))
    for r in runs:
        for k in ("a", "b"):
            if k + "_candidates" in r:
                out.append("- %s added latency (%s): %d packets after Proxy, %d matched, %d unmatched, "
                           "%d ambiguous keys, %d negative; timestamps: %s" % (
                               r["_name"], k, r[k + "_candidates"], len(r[k + "_us"]),
                               r[k + "_unmatched"], r[k + "_ambiguous"], r[k + "_negative"],
                               ", ".join(r.get("backup_tstamp", []))))
        if r.get("direct_errors"):
            out.append("- %s: the direct reference client reported %s errors"
                       % (r["_name"], r["direct_errors"]))
    print("\n".join(out))
    print()
    print(table)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(table + "\n")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--work", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--category", default="")
    r.add_argument("--rc", type=int, default=0)
    r.add_argument("--verdict", default="")
    s = sub.add_parser("summary")
    s.add_argument("--runs", required=True, help="directory of run JSON files and plan.json")
    s.add_argument("--markdown")
    a = ap.parse_args()
    return cmd_run(a) if a.cmd == "run" else cmd_summary(a)


if __name__ == "__main__":
    sys.exit(main())
