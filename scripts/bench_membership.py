#!/usr/bin/env python3
"""Helper of scripts/bench_membership.sh (issue 12): per-run figures and the summary table.
Stdlib only; the pcap reader and the burst definition (M3) are tests/lab's.

  bench_membership.py run --variant V --run-id ID --rc RC --work DIR --csv FILE [--timings FILE]
      Appends one CSV row for the run (every metric it could read; empty where it could not,
      with a note saying why).
        standalone (tests/lab/failover.sh --hub-capture --work DIR): DIR/pull.txt (wall clock
          right after `ip link set p-primary down` returned), DIR/migware.log, DIR/hub.pcap.
        corosync2w / corosync3 (tests/lab/membership.sh --work DIR --timings FILE): the
          timings file (pull_wall, b1_dead_wall, <name>_<state>_wall, burst lines), and the
          logs b1.log / b2.log in DIR for the breakdown (monitor verdict, view, claim).
  bench_membership.py summary --csv FILE [--markdown FILE]
      The table: per variant and metric, n, median, p99 (nearest rank), min, max, over the
      runs that passed; failed runs are counted per variant and listed with their notes.
"""

import argparse
import csv
import os
import re
import statistics
import sys
import time

LAB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lab")
sys.path.insert(0, LAB)
from invariants import BROADCAST, classify, ip_bytes, read_pcap  # noqa: E402
from membership_invariants import bursts, speaking_frames  # noqa: E402
from latency import p99  # noqa: E402  (nearest rank, as bench_failover.sh and bench_replay.py)

PRIMARY_IP = "198.18.0.1"
BACKUP_IP = "198.18.0.2"      # the standalone lab's only backup
CLIENT_IP = "198.18.0.10"

# (column, label) in table order; ms, all from the fault's wall clock unless said otherwise
METRICS = [
    ("p_monitor_ms", "primary fails: pull → the taking-over backup's monitor says down"),
    ("p_recovery_ms", "primary fails: pull → Recovery (detection + agreement)"),
    ("p_proxy_ms", "primary fails: pull → Proxy"),
    ("p_peers_ms", "primary fails: pull → the last other backup's monitor says down (the verdicts b1 waits for)"),
    ("p_agree_ms", "primary fails: monitor down → Recovery (agreement; standalone: none)"),
    ("p_stall_ms", "primary fails: client-visible stall (primary's last frame → backup's first)"),
    ("p_lf_recovery_ms", "primary fails: primary's last frame on the hub → Recovery (same clock reference for all)"),
    ("p_pull_lag_ms", "primary fails: primary's last frame → the script's pull timestamp"),
    ("s_totem_ms", "active backup fails: b1 dies → b2's Corosync forms the new membership (token + consensus)"),
    ("s_quorum_ms", "active backup fails: b1 dies → b2's Corosync knows the new membership's quorum"),
    ("s_view_ms", "active backup fails: b1 dies → b2's migware gets the view without b1"),
    ("s_claim_ms", "active backup fails: b1 dies → b2's claim delivered (became_active)"),
    ("s_recovery_ms", "active backup fails: b1 dies → b2 Recovery"),
    ("s_proxy_ms", "active backup fails: b1 dies → b2 Proxy"),
    ("s_stall_ms", "active backup fails: client-visible stall (b1's last frame → b2's first)"),
    ("s_lf_recovery_ms", "active backup fails: b1's last frame on the hub → b2 Recovery"),
    ("s_dead_lag_ms", "active backup fails: b1's last frame → the script's b1_dead timestamp"),
]
COLUMNS = ["run_id", "variant", "rc", "status", "started_utc", "load1", "foreign_netns",
           "duration_s"] + [m for m, _ in METRICS] + ["notes"]
VARIANTS = [("standalone", "standalone, 1 backup"),
            ("corosync2w", "corosync, 2 backups + witness"),
            ("corosync3", "corosync, 3 backups")]

MONO_RE = re.compile(r" mono_ns=(\d+) ")
# wall clock - CLOCK_MONOTONIC of this host, read right after the run: turns the wall-clock
# fault times of membership.sh's --timings file into CLOCK_MONOTONIC (no time namespaces here)
WALL_MINUS_MONO = time.time() - time.monotonic()


def log_events(path, pattern):
    """[(mono seconds, line)] of the lines of a migware log matching pattern.  mono_ns is the
    event's time; the line's ts= is the wall clock when it was written, which can be a few ms
    later (three lines of one event, same mono_ns, carry ts= up to 2.3 ms apart), so ts= is
    not used."""
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if re.search(pattern, line):
                    m = MONO_RE.search(line)
                    if m:
                        out.append((int(m.group(1)) / 1e9, line))
    except OSError:
        pass
    return out


def first_after(events, t0):
    for t, _ in events:
        if t >= t0:
            return t
    return None


COROSYNC_RE = re.compile(r"^(\w{3} \d\d \d\d:\d\d:\d\d)(\.\d+) ")


def corosync_events(path, pattern):
    """[(mono seconds, line)] of a corosync.log (timestamp: hires, local time, ms, no year)."""
    out, year = [], time.localtime().tm_year
    try:
        with open(path, errors="replace") as f:
            for line in f:
                m = COROSYNC_RE.match(line)
                if m and re.search(pattern, line):
                    t = time.mktime(time.strptime("%d %s" % (year, m.group(1)), "%Y %b %d %H:%M:%S"))
                    out.append((t + float(m.group(2)) - WALL_MINUS_MONO, line))
    except OSError:
        pass
    return out


def ms(a, b):
    return None if a is None or b is None else 1000.0 * (b - a)


def stall(bs, before, after, t_fault):
    """End of `before`'s last burst that started before the fault → start of `after`'s first
    burst that started after it (bursts: [(t0, t1, name)])."""
    b_end = [t1 for t0, t1, n in bs if n == before and t0 <= t_fault]
    a_start = [t0 for t0, t1, n in bs if n == after and t0 >= t_fault - 0.2]
    if not b_end or not a_start:
        return None
    return ms(max(b_end), min(a_start))


def last_frame(bs, who, t_fault):
    ends = [t1 for t0, t1, n in bs if n == who and t0 <= t_fault]
    return max(ends) if ends else None


# ------------------------------------------------------------------ standalone
def standalone(work, row, notes):
    try:
        _m0, m1, wall = open(os.path.join(work, "pull.txt")).read().split()
        pull_mono, pull_wall = int(m1) / 1e9, float(wall)
    except (OSError, ValueError):
        notes.append("no pull.txt")
        return
    log = os.path.join(work, "migware.log")
    mon = first_after(log_events(log, r"event=monitor .*health=down"), pull_mono)
    rec = first_after(log_events(log, r"event=transition .*to=recovery"), pull_mono)
    row["p_monitor_ms"] = ms(pull_mono, mon)
    row["p_recovery_ms"] = ms(pull_mono, rec)
    row["p_proxy_ms"] = ms(pull_mono, first_after(log_events(log, r"event=transition .*to=proxy"), pull_mono))
    row["p_agree_ms"] = ms(mon, rec)
    for k in ("p_recovery_ms", "p_proxy_ms"):
        if row[k] is None:
            notes.append("%s: no transition in migware.log" % k)
    pull = pull_wall      # the capture's clock
    # the stall: M3 bursts of the hub capture, with the MACs read from the capture itself
    pcap = os.path.join(work, "hub.pcap")
    try:
        frames = list(read_pcap(pcap))
    except (OSError, ValueError) as e:
        notes.append("hub.pcap unreadable: %s" % e)
        return
    macs = {}
    want = {ip_bytes(PRIMARY_IP): "primary", ip_bytes(BACKUP_IP): "backup",
            ip_bytes(CLIENT_IP): "client"}
    for ts, fr in frames:
        c = classify(fr)
        if c is None or c[2] not in ("tcp", "icmp"):
            continue
        who = want.get(c[3])
        # the primary's MAC: its frames before the pull (after it, the backup speaks for it)
        if who and who not in macs and (who != "primary" or ts < pull):
            macs[who] = c[1]
    if len(macs) < 3:
        notes.append("hub.pcap: MACs not found: %s" % sorted(set(want.values()) - set(macs)))
        return
    names = {macs["primary"]: "primary", macs["backup"]: "b1"}
    del frames
    _frames, speaks = speaking_frames([pcap], ip_bytes(PRIMARY_IP), {macs["client"], BROADCAST})
    bs = [(t0, t1, names.get(mac, "other")) for t0, t1, mac, _n in bursts(speaks)]
    row["p_stall_ms"] = stall(bs, "primary", "b1", pull)
    if row["p_stall_ms"] is None:
        notes.append("no primary/backup bursts around the pull: %s" % bs)
    lf = last_frame(bs, "primary", pull)
    if lf is not None:
        row["p_lf_recovery_ms"] = ms(lf - WALL_MINUS_MONO, rec)
        row["p_pull_lag_ms"] = ms(lf, pull)
    # the wall -> mono offset read now against the one failover.sh read at the pull
    if abs((pull_wall - WALL_MINUS_MONO) - pull_mono) > 0.002:
        notes.append("wall/mono offset moved by %.1f ms since the pull"
                     % ms(pull_mono, pull_wall - WALL_MINUS_MONO))


# ------------------------------------------------------------------ membership
def membership(work, timings, row, notes):
    kv, bs = {}, []
    try:
        for line in open(timings):
            if line.startswith("burst "):
                _b, name, t0, t1 = line.split()
                bs.append((float(t0), float(t1), name))
                continue
            for tok in line.split():
                k, _, v = tok.partition("=")
                if v:
                    kv.setdefault(k, []).append(float(v) if re.match(r"^[0-9.]+$", v) else v)
    except (OSError, ValueError) as e:
        notes.append("timings unreadable: %s" % e)
        return

    def one(key):
        v = kv.get(key)
        return v[0] if v and isinstance(v[0], float) else None

    def first(key, t0):
        vs = sorted(x for x in kv.get(key, []) if isinstance(x, float) and t0 is not None and x >= t0)
        return vs[0] if vs else None

    pull, dead = one("pull_wall"), one("b1_dead_wall")
    if pull is None:
        notes.append("no pull_wall")
        return
    # the transitions from the logs' mono_ns (the timings file's <name>_<state>_wall are the
    # lines' ts=, written up to a few ms after the event); the faults' wall clock -> mono
    b1log, b2log = os.path.join(work, "b1.log"), os.path.join(work, "b2.log")
    pm = pull - WALL_MINUS_MONO
    mon = first_after(log_events(b1log, r"event=monitor .*health=down"), pm)
    rec = first_after(log_events(b1log, r"event=transition .*to=recovery"), pm)
    row["p_monitor_ms"] = ms(pm, mon)
    row["p_recovery_ms"] = ms(pm, rec)
    row["p_proxy_ms"] = ms(pm, first_after(log_events(b1log, r"event=transition .*to=proxy"), pm))
    row["p_agree_ms"] = ms(mon, rec)
    peers = [first_after(log_events(os.path.join(work, "b%d.log" % i), r"event=monitor .*health=down"), pm)
             for i in (2, 3) if os.path.exists(os.path.join(work, "b%d.log" % i))]
    if peers and None not in peers:
        row["p_peers_ms"] = ms(pm, max(peers))
    row["p_stall_ms"] = stall(bs, "primary", "b1", pull)
    # cross-check against the timings file's ts=-based figure: more than 5 ms apart = a clock
    # or parsing problem, say so
    ts_rec = first("b1_recovery_wall", pull)
    if row["p_recovery_ms"] is not None and ts_rec is not None \
            and abs(ms(pull, ts_rec) - row["p_recovery_ms"]) > 5:
        notes.append("b1 recovery: ts= says %.1f ms, mono_ns says %.1f ms"
                     % (ms(pull, ts_rec), row["p_recovery_ms"]))
    if dead is None:
        notes.append("no b1_dead_wall")
        return
    dm = dead - WALL_MINUS_MONO
    clog = os.path.join(work, "cluster", "corosync-2", "corosync.log")
    row["s_totem_ms"] = ms(dm, first_after(corosync_events(clog, r"\[TOTEM \] A new membership"), dm))
    row["s_quorum_ms"] = ms(dm, first_after(corosync_events(clog, r"\[QUORUM\] Members\["), dm))
    row["s_view_ms"] = ms(dm, first_after(log_events(b2log, r"event=membership_view "), dm))
    row["s_claim_ms"] = ms(dm, first_after(log_events(b2log, r"event=membership_became_active "), dm))
    row["s_recovery_ms"] = ms(dm, first_after(log_events(b2log, r"event=transition .*to=recovery"), dm))
    row["s_proxy_ms"] = ms(dm, first_after(log_events(b2log, r"event=transition .*to=proxy"), dm))
    row["s_stall_ms"] = stall(bs, "b1", "b2", dead)
    lf = last_frame(bs, "primary", pull)
    if lf is not None:
        row["p_lf_recovery_ms"] = ms(lf - WALL_MINUS_MONO, rec)
        row["p_pull_lag_ms"] = ms(lf, pull)
    lf = last_frame(bs, "b1", dead)
    if lf is not None:
        row["s_lf_recovery_ms"] = ms(lf - WALL_MINUS_MONO, first_after(log_events(b2log, r"event=transition .*to=recovery"), dm))
        row["s_dead_lag_ms"] = ms(lf, dead)
    for k in ("p_recovery_ms", "p_proxy_ms", "p_stall_ms", "s_recovery_ms", "s_proxy_ms", "s_stall_ms"):
        if row[k] is None:
            notes.append("%s missing" % k)


def cmd_run(a):
    row = {c: None for c in COLUMNS}
    row.update(run_id=a.run_id, variant=a.variant, rc=a.rc, started_utc=a.started,
               load1=a.load1, foreign_netns=a.foreign_netns, duration_s=a.duration)
    notes = list(a.note or [])
    try:
        if a.rc == -1:
            pass                                  # skipped: nothing ran
        elif a.variant == "standalone":
            standalone(a.work, row, notes)
        else:
            membership(a.work, a.timings, row, notes)
    except Exception as e:  # a broken artefact: reported in the row, never a lost run
        notes.append("extract error: %r" % e)
    row["status"] = "ok" if a.rc == 0 else ("skipped" if a.rc == -1 else "failed")
    row["notes"] = "; ".join(notes)
    new = not os.path.exists(a.csv) or os.path.getsize(a.csv) == 0
    with open(a.csv, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            w.writeheader()
        w.writerow({k: ("%.3f" % v if isinstance(v, float) else ("" if v is None else v))
                    for k, v in row.items()})
    shown = " ".join("%s=%.1f" % (k[:-3], row[k]) for k, _ in METRICS if row[k] is not None)
    print("%s %s" % (shown, ("[" + row["notes"] + "]") if row["notes"] else ""))
    return 0


def cmd_summary(a):
    rows = list(csv.DictReader(open(a.csv)))
    out = []

    def values(v, m):
        return [float(r[m]) for r in rows if r["variant"] == v and r["status"] == "ok" and r.get(m)]

    # side by side: one row per measure, one column per variant
    present = [(v, vl) for v, vl in VARIANTS if any(r["variant"] == v for r in rows)]
    out.append("| measure (ms): median / p99 (min–max, n) | " + " | ".join(vl for _, vl in present) + " |")
    out.append("|---" * (len(present) + 1) + "|")
    for m, label in METRICS:
        cells = []
        for v, _ in present:
            xs = values(v, m)
            cells.append("**%.1f** / %.1f (%.1f–%.1f, %d)" % (
                statistics.median(xs), p99(xs), min(xs), max(xs), len(xs)) if xs else "–")
        if any(c != "–" for c in cells):
            out.append("| %s | %s |" % (label, " | ".join(cells)))
    out.append("")
    out.append("| variant | measure | n | median | p99 | min | max |")
    out.append("|---|---|---|---|---|---|---|")
    for m, label in METRICS:
        for v, vlabel in VARIANTS:
            xs = [float(r[m]) for r in rows if r["variant"] == v and r["status"] == "ok" and r.get(m)]
            ok = [r for r in rows if r["variant"] == v and r["status"] == "ok"]
            if not ok or (not xs and v == "standalone" and m.startswith("s_")):
                continue
            if not xs:
                out.append("| %s | %s | 0 | – | – | – | – |" % (vlabel, label))
                continue
            miss = len(ok) - len(xs)
            out.append("| %s | %s | %d%s | %.1f | %.1f | %.1f | %.1f |" % (
                vlabel, label, len(xs), (" (%d runs without it)" % miss) if miss else "",
                statistics.median(xs), p99(xs), min(xs), max(xs)))
    out.append("")
    out.append("| variant | runs | passed | failed | skipped |")
    out.append("|---|---|---|---|---|")
    for v, vlabel in VARIANTS:
        rs = [r for r in rows if r["variant"] == v]
        if rs:
            out.append("| %s | %d | %d | %d | %d |" % (
                vlabel, len(rs), sum(r["status"] == "ok" for r in rs),
                sum(r["status"] == "failed" for r in rs), sum(r["status"] == "skipped" for r in rs)))
    bad = [r for r in rows if r["status"] != "ok" or r["notes"]]
    if bad:
        out.append("")
        out.append("Runs failed or with notes:")
        for r in bad:
            out.append("- %s (%s): rc=%s, %s; %s" % (r["run_id"], r["variant"], r["rc"], r["status"],
                                                   r["notes"] or "no note"))
    loads = [float(r["load1"]) for r in rows if r["load1"]]
    foreign = [int(r["foreign_netns"]) for r in rows if r["foreign_netns"]]
    if loads:
        out.append("")
        out.append("Load average (1 min) at the runs' starts: median %.2f, min %.2f, max %.2f; "
                   "runs started while other network namespaces (another helper's labs) existed: %d of %d"
                   % (statistics.median(loads), min(loads), max(loads),
                      sum(1 for x in foreign if x > 0), len(foreign)))
    text = "\n".join(out)
    print(text)
    if a.markdown:
        open(a.markdown, "w").write(text + "\n")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--variant", required=True, choices=[v for v, _ in VARIANTS])
    r.add_argument("--run-id", required=True)
    r.add_argument("--rc", type=int, required=True)
    r.add_argument("--work", required=True)
    r.add_argument("--timings")
    r.add_argument("--csv", required=True)
    r.add_argument("--started", default="")
    r.add_argument("--load1", default="")
    r.add_argument("--foreign-netns", default="")
    r.add_argument("--duration", default="")
    r.add_argument("--note", action="append")
    s = sub.add_parser("summary")
    s.add_argument("--csv", required=True)
    s.add_argument("--markdown")
    a = ap.parse_args()
    return cmd_run(a) if a.cmd == "run" else cmd_summary(a)


if __name__ == "__main__":
    sys.exit(main())
