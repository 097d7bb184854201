#!/usr/bin/env python3
"""Safety invariants of a run with several backups (issue 12), from the hub capture and the
backups' migware logs.  Stdlib only; the pcap reader and frame classifier are invariants.py's.

  membership_invariants.py --pcap FILE [--pcap FILE ...] --primary-ip IP --primary-mac MAC
                           --backup-mac NAME=MAC [...] [--log NAME=FILE ...]
                           [--primary-dead-after WALL] [--client-mac MAC ...]

A frame "speaks for the primary's IP" if it is IPv4 with source = the primary's IP carrying TCP
or ICMP, or an ARP whose sender IP is the primary's IP.  Its speaker is its Ethernet source,
except for an ARP, whose speaker is the MAC it claims (the sender hardware address, normally
the Ethernet source too): migware pointing the clients back at the primary sends, from its own
port, ARPs that name the primary's MAC, and those do not compete with the primary (the same
rule as invariants.py I1).  With --client-mac, only frames toward those MACs or broadcast count
(as invariants.py does); without it, every frame on the hub counts.

  M1 one speaker: no two frames speaking for the primary's IP from two different speaker MACs
     less than 50 ms apart.  One exception, for the real primary's MAC only: with
     --primary-dead-after WALL (when the primary was pulled or partitioned), an overlap of the
     primary's MAC with a named backup's MAC whose later frame is at or after WALL is counted
     as information (the backup legitimately replaced the primary; a primary cut off by a
     partition may still talk, and is fenced, not prevented).  Between two backup MACs, or
     with a MAC that is neither the primary's nor a named backup's, there is no exception.
     Overlapping frames of one pair of MACs closer than 50 ms to each other form one
     violation (an episode); its frame pairs are counted.
  M2 epochs: from the `--log NAME=FILE` migware logs, every `event=membership_*` line with
     an `epoch=` but membership_stale_claim (its epoch is the refused claim's) (e.g. `event=membership_role node=<id> role=standby|active|observer
     epoch=<n>`):
       M2a in each log, ordered by ts, the epoch never decreases (a line whose epoch is below
           the highest one that log has shown is a violation; repeats of the same lower epoch
           right after it are not counted again);
       M2b across all logs, for each epoch at most one node logs role=active (the node is the
           line's node=, else the log's NAME; one node id active in two logs also counts as
           two).
     `ts=` is wall-clock seconds with a fraction, or migware's ISO 8601 UTC form
     (2024-05-01T12:00:00.123456Z); a line without a readable ts keeps its place in the file.
  M3 (information) the handover timeline: per speaker MAC, the intervals during which it spoke
     for the primary's IP (first to last frame of each burst; a gap over 200 ms starts a new
     burst), in time order.

The last line is `membership_invariants: ok` or `membership_invariants: N violations`;
exit 0 / 1, and 2 on bad input (an unreadable capture or log, a bad MAC or IP).  A capture
without a single frame is a violation: nothing was checked.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from invariants import (BROADCAST, classify, ip_bytes, logfmt, mac_bytes, mac_str,  # noqa: E402
                        parse_ts, read_pcap)

WINDOW_S = 0.050        # M1: two speakers closer than this
BURST_GAP_S = 0.200     # M3: a silence longer than this ends a burst
SHOW = 20               # violations printed per kind
TAG = "membership_invariants:"
# Events whose epoch= is another member's word, not the logging member's epoch: a refused
# claim names the epoch it asked for (migware logs membership_stale_claim node=<claimer>
# epoch=<claimed>), which may well be above the member's own.
FOREIGN_EPOCH_EVENTS = {"membership_stale_claim"}


# ------------------------------------------------------------------ inputs
def name_value(text, what):
    """'NAME=VALUE' -> (NAME, VALUE)."""
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise ValueError("%s %r: expected NAME=VALUE" % (what, text))
    return name, value


def parse_wall(s):
    """Wall-clock seconds from `ts=`: a number of seconds, or ISO 8601 UTC; None if neither."""
    try:
        return float(s)
    except ValueError:
        return parse_ts(s)


def speaking_frames(paths, pip, toward):
    """(all frames, [(ts, speaker MAC, description)] of the frames that speak for pip), both
    in time order; toward: destination MACs that count (None: all)."""
    frames = []
    for p in paths:
        frames += list(read_pcap(p))
    frames.sort(key=lambda x: x[0])
    out = []
    for ts, fr in frames:
        c = classify(fr)
        if c is None:
            continue
        dst, speaker, kind, speaks, _ipdst, _rst, desc = c
        if kind in ("tcp", "icmp", "arp") and speaks == pip and (toward is None or dst in toward):
            out.append((ts, speaker, desc))
    return frames, out


def read_membership_log(name, path):
    """[{t, epoch, node, role, event, line}] of one log's membership_* lines with an epoch,
    ordered by ts (a line without a readable ts takes the ts of the line before it)."""
    try:
        f = open(path, errors="replace")
    except OSError as e:
        raise ValueError("cannot read log %s=%s: %s" % (name, path, e))
    out, t_prev = [], float("-inf")
    with f:
        for n, line in enumerate(f, 1):
            if "event=membership_" not in line:
                continue
            kv = logfmt(line)
            if not kv.get("event", "").startswith("membership_") or "epoch" not in kv:
                continue
            if kv["event"] in FOREIGN_EPOCH_EVENTS:
                continue
            try:
                epoch = int(kv["epoch"])
            except ValueError:
                raise ValueError("log %s line %d: epoch=%r is not a number"
                                 % (name, n, kv["epoch"]))
            t = parse_wall(kv.get("ts", ""))
            t = t_prev if t is None else t
            t_prev = t
            out.append({"t": t, "epoch": epoch, "node": kv.get("node") or name,
                        "role": kv.get("role"), "event": kv["event"], "line": n, "log": name})
    out.sort(key=lambda e: (e["t"], e["line"]))
    return out


# ------------------------------------------------------------------ M1
def check_one_speaker(speaks, primary_mac, backups, dead_after):
    """M1.  Returns (violation episodes, info episodes); an episode is a dict: pair, first
    (t, who, desc), second (t, who, desc), gap (the closest two frames), pairs, t_last."""
    last = {}           # speaker -> (t, desc) of its last frame
    open_ep = {}        # frozenset pair -> the episode it is in
    bad, info = [], []
    for ts, mac, desc in speaks:
        for other, (t0, d0) in last.items():
            if other == mac or ts - t0 >= WINDOW_S:
                continue
            pair = frozenset((mac, other))
            ep = open_ep.get(pair)
            if ep is None or ts - ep["t_last"] >= WINDOW_S:
                ep = {"pair": pair, "first": (t0, other, d0), "second": (ts, mac, desc),
                      "gap": ts - t0, "pairs": 0, "t_last": ts}
                open_ep[pair] = ep
                excused = (dead_after is not None and ts >= dead_after and primary_mac in pair
                           and (pair - {primary_mac}) <= backups)
                (info if excused else bad).append(ep)
            ep["pairs"] += 1
            ep["gap"] = min(ep["gap"], ts - t0)
            ep["t_last"] = ts
        last[mac] = (ts, desc)
    return bad, info


# ------------------------------------------------------------------ M2
def check_epoch_order(events):
    """M2a for one log's events (ts order): lines whose epoch is below the log's highest."""
    out, top, top_ev, prev = [], None, None, None
    for e in events:
        if top is not None and e["epoch"] < top and e["epoch"] != prev:
            out.append("M2 epoch went backwards in log %s: %s epoch=%d at ts %.6f (line %d), "
                       "after %s epoch=%d at ts %.6f (line %d)"
                       % (e["log"], e["event"], e["epoch"], e["t"], e["line"], top_ev["event"],
                          top, top_ev["t"], top_ev["line"]))
        if top is None or e["epoch"] > top:
            top, top_ev = e["epoch"], e
        prev = e["epoch"]
    return out


def check_one_active(events):
    """M2b over every log's events: epochs for which more than one node (or one node in more
    than one log) logs role=active."""
    claims = {}          # epoch -> {(node, log): first event}
    for e in events:
        if e["role"] == "active":
            claims.setdefault(e["epoch"], {}).setdefault((e["node"], e["log"]), e)
    out = []
    for epoch in sorted(claims):
        c = claims[epoch]
        if len({n for n, _ in c}) > 1 or len({lg for _, lg in c}) > 1:
            out.append("M2 %d nodes active for epoch %d: %s" % (len(c), epoch, ", ".join(
                "node %s (log %s, ts %.6f line %d)" % (n, lg, e["t"], e["line"])
                for (n, lg), e in sorted(c.items(), key=lambda x: x[1]["t"]))))
    return out


# ------------------------------------------------------------------ M3
def bursts(speaks):
    """M3: [(t_first, t_last, speaker, frames)] in time order; a silence over 200 ms of one
    speaker ends its burst."""
    cur, done = {}, []
    for ts, mac, _ in speaks:
        b = cur.get(mac)
        if b is not None and ts - b[1] > BURST_GAP_S:
            done.append(tuple(b))
            b = None
        if b is None:
            b = cur[mac] = [ts, ts, mac, 0]
        b[1] = ts
        b[3] += 1
    done += [tuple(b) for b in cur.values()]
    return sorted(done)


# ------------------------------------------------------------------ report
def describe_episode(ep, who, ip):
    (t0, m0, d0), (t1, m1, d1) = ep["first"], ep["second"]
    return ("%.6f M1 two speakers for %s within %.1f ms: %s from %s, then %s from %s "
            "(%d frame pairs closer than %d ms until %.6f)"
            % (t1, ip, 1000 * (t1 - t0), d0, who(m0), d1, who(m1), ep["pairs"],
               WINDOW_S * 1000, ep["t_last"]))


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 epilog="See the module docstring for exactly what is checked.")
    ap.add_argument("--pcap", action="append", required=True, help="hub capture (repeatable)")
    ap.add_argument("--primary-ip", required=True)
    ap.add_argument("--primary-mac", required=True)
    ap.add_argument("--backup-mac", action="append", default=[], metavar="NAME=MAC")
    ap.add_argument("--log", action="append", default=[], metavar="NAME=FILE",
                    help="a backup's migware log (logfmt)")
    ap.add_argument("--primary-dead-after", type=float, metavar="WALL",
                    help="wall clock of the primary's pull/partition")
    ap.add_argument("--client-mac", action="append", default=[],
                    help="count only frames toward these MACs or broadcast")
    return ap.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    try:
        pip = ip_bytes(a.primary_ip)
        pmac = mac_bytes(a.primary_mac)
        names = {pmac: "primary"}
        for text in a.backup_mac:
            n, m = name_value(text, "--backup-mac")
            names[mac_bytes(m)] = n
        backups = set(names) - {pmac}
        toward = {mac_bytes(m) for m in a.client_mac} | {BROADCAST} if a.client_mac else None
        frames, speaks = speaking_frames(a.pcap, pip, toward)
        events = []
        for text in a.log:
            events += read_membership_log(*name_value(text, "--log"))
    except (OSError, ValueError) as e:
        print("%s input error: %s" % (TAG, e))
        print("%s 1 violations" % TAG)
        return 2

    def who(mac):
        n = names.get(mac)
        return "%s (%s)" % (n, mac_str(mac)) if n else mac_str(mac)

    bad, info = check_one_speaker(speaks, pmac, backups, a.primary_dead_after)
    violations = {"M1": [describe_episode(ep, who, a.primary_ip) for ep in bad], "M2": []}
    for lg in sorted({e["log"] for e in events}):
        violations["M2"] += check_epoch_order([e for e in events if e["log"] == lg])
    violations["M2"] += check_one_active(sorted(events, key=lambda e: e["t"]))
    if not frames:
        violations["M1"].append("the capture holds no frame: nothing was checked")

    print("%s %d frames in %d capture file(s); %d speak for %s; %d membership events with an "
          "epoch in %d log(s)" % (TAG, len(frames), len(a.pcap), len(speaks), a.primary_ip,
                                 len(events), len(a.log)))
    for t0, t1, mac, n in bursts(speaks):
        print("%s M3 %s spoke for %s from %.6f to %.6f (%.3f s, %d frames)"
              % (TAG, who(mac), a.primary_ip, t0, t1, t1 - t0, n))
    if info:
        print("%s (info) the primary's MAC beside a backup after --primary-dead-after: "
              "%d episodes, %d frame pairs (not violations)"
              % (TAG, len(info), sum(ep["pairs"] for ep in info)))
    epochs = sorted({e["epoch"] for e in events})
    if epochs:
        print("%s epochs seen: %s" % (TAG, ", ".join(map(str, epochs[:30]))))
    total = 0
    for kind in ("M1", "M2"):
        lst = violations[kind]
        total += len(lst)
        for line in lst[:SHOW]:
            print("%s VIOLATION %s" % (TAG, line))
        if len(lst) > SHOW:
            print("%s ... %d more %s violations" % (TAG, len(lst) - SHOW, kind))
    if total:
        print("%s by kind: %s" % (TAG, ", ".join("%s %d" % (k, len(v))
                                                 for k, v in violations.items() if v)))
        print("%s %d violations" % (TAG, total))
        return 1
    print("%s ok" % TAG)
    return 0


if __name__ == "__main__":
    sys.exit(main())
