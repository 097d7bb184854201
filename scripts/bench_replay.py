#!/usr/bin/env python3
"""Per-run figures and the summary table of scripts/bench_replay.sh (issue 13; stdlib only).

  bench_replay.py run --work DIR --out FILE.json --category C --mode M --kind rr|http
                      --connections N --rc RC [--verdict LINE] [--latency FILE.json]
  bench_replay.py summary --runs DIR [--markdown FILE]

`run` reads what tests/lab/failover.sh --work DIR --sample-migware N or
tests/lab/http_failover.sh --work DIR --samples N keeps:
  migware-samples.jsonl   migware's counters and VmRSS: `base` (before the clients connect),
                          `trafficI` (during the traffic, before the pull)
  migware-counters.json   the counters just before migware stopped (after the failover)
  migware.log             event=transition (Recovery -> Proxy) and event=replay_diverged
  clients.json            (http) the download clients' report (tests/lab/http_clients.py)
and, for rr runs, latency.py's JSON of the same run (--latency: detection, recovery, stall).

Memory per connection = (median over the traffic samples) / connections: buffered_bytes (the
client bytes migware holds), and VmRSS - the base sample's VmRSS.  The statistics and the
transitions are tests/lab/latency.py's (the same nearest-rank p99 as bench_failover.sh).
"""

import argparse
import glob
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lab"))
from latency import stats, transitions  # noqa: E402

MODES = ("push", "aligned", "full")


def load_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def cmd_run(a):
    w = a.work
    r = {"category": a.category, "mode": a.mode, "kind": a.kind, "connections": a.connections,
         "rc": a.rc, "verdict": a.verdict, "notes": []}
    samples = []
    try:
        with open(os.path.join(w, "migware-samples.jsonl")) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        samples.append(json.loads(line))
                    except ValueError:
                        r["notes"].append("a bad sample line")
    except OSError:
        r["notes"].append("no samples")
    base = [s for s in samples if s.get("label") == "base"]
    traffic = [s for s in samples if str(s.get("label", "")).startswith("traffic")
               and s.get("counters")]
    if traffic:
        bb = [s["counters"].get("buffered_bytes", 0) for s in traffic]
        r["buffered_bytes"] = statistics.median(bb)
        r["buffered_per_conn"] = r["buffered_bytes"] / a.connections
        r["tracked"] = statistics.median(s["counters"].get("connections", 0) for s in traffic) \
            if "connections" in traffic[0]["counters"] else None
        r["drops_at_samples"] = max(s["counters"].get("kernel_drops", 0) for s in traffic)
        if base and base[0].get("vmrss_kb") and all(s.get("vmrss_kb") for s in traffic):
            rss = statistics.median(s["vmrss_kb"] for s in traffic)
            r["vmrss_base_kb"] = base[0]["vmrss_kb"]
            r["vmrss_traffic_kb"] = rss
            r["vmrss_delta_per_conn"] = (rss - base[0]["vmrss_kb"]) * 1024.0 / a.connections
    m = load_json(os.path.join(w, "migware-counters.json"), {}) or {}
    keep = ("recovered", "replay_aligned", "replay_full", "replay_full_as_aligned", "replay_as_push",
            "replay_verified", "replay_diverged", "replay_absorbed_bytes", "replay_digest_gaps",
            "replay_full_over_cap", "replay_request_over_cap", "kernel_drops", "buffered_bytes")
    r["counters"] = {k: m[k] for k in keep if k in m}
    r["counters"].update({k: v for k, v in m.items() if k.startswith("replay_fallback") and v})
    if not os.path.exists(os.path.join(w, "migware.log")):
        r["notes"].append("no migware.log")
    tr = transitions(os.path.join(w, "migware.log"))
    rec = [t for _, to, t, _ in tr if to == "recovery"]
    prx = [t for _, to, t, _ in tr if to == "proxy"]
    if rec and prx:
        later = [p for p in prx if p >= rec[0]]
        if later:
            r["recovery_ms"] = (later[0] - rec[0]) / 1e6
    if a.latency:
        lat = load_json(a.latency, {}) or {}
        for k in ("detection_ms", "recovery_ms", "stall_ms"):
            if k in lat:
                r[k] = lat[k]
    if a.kind == "http":
        # downloads: bodies equal to the file; corrupt: of the right length, other bytes
        t = (load_json(os.path.join(w, "clients.json"), {}) or {}).get("total", {})
        r["downloads"] = t.get("primary")
        r["corrupt"] = t.get("mixed")
        r["client_errors"] = t.get("errors")
    with open(a.out, "w") as f:
        json.dump(r, f, indent=1)
    return 0


def fmt(v, digits=1):
    if v is None:
        return "–"
    if abs(v) >= 100 or digits == 0:
        return "%.0f" % v
    return "%.*f" % (digits, v)


def cell(xs, unit_runs="runs"):
    """median / p99 (min–max, n)"""
    st = stats(xs)
    if not st:
        return "–"
    return "**%s** / %s (%s–%s, %d %s)" % (fmt(st["median"]), fmt(st["p99"]), fmt(st["min"]),
                                          fmt(st["max"]), st["n"], unit_runs)


def cmd_summary(a):
    runs = []
    for p in sorted(glob.glob(os.path.join(a.runs, "[0-9][0-9][0-9]-*.json"))):
        r = load_json(p)
        if isinstance(r, dict) and "category" in r:
            r["_name"] = os.path.basename(p)[:-5]
            runs.append(r)
    ok = [r for r in runs if r.get("rc") == 0 and not r.get("skipped")]
    failed = [r for r in runs if r.get("rc") not in (0, None) and not r.get("skipped")]
    skipped = [r for r in runs if r.get("skipped")]

    def sel(prefix, mode, rs=ok):
        return [r for r in rs if r["category"] == "%s_%s" % (prefix, mode)]

    lines = []
    out = lines.append
    out("| measure: median / p99 (min–max, n) | push | aligned | full |")
    out("|---|---|---|---|")
    workloads = (("rr200", "reqresp, 200 conns"), ("rr2000", "reqresp, 2000 conns"),
                 ("h2m", "nginx 2 MB downloads, 10 keep-alive conns"),
                 ("h40k", "nginx 40 kB downloads, 10 keep-alive conns"))
    for pre, label in workloads:
        if not any(sel(pre, m, runs) for m in MODES):
            continue
        row = ["client bytes held per connection (buffered_bytes / conns, B), %s" % label]
        for m in MODES:
            row.append(cell([r["buffered_per_conn"] for r in sel(pre, m) if "buffered_per_conn" in r]))
        out("| " + " | ".join(row) + " |")
        row = ["migware VmRSS delta per connection (B), %s" % label]
        for m in MODES:
            row.append(cell([r["vmrss_delta_per_conn"] for r in sel(pre, m) if "vmrss_delta_per_conn" in r]))
        out("| " + " | ".join(row) + " |")
    for pre, label in workloads[:2]:
        if not any(sel(pre, m, runs) for m in MODES):
            continue
        out("| recovery: Recovery → Proxy (ms), %s | %s |" % (label, " | ".join(
            cell([r["recovery_ms"] for r in sel(pre, m) if "recovery_ms" in r]) for m in MODES)))
        out("| client-visible stall per connection (ms), %s | %s |" % (label, " | ".join(
            cell([s for r in sel(pre, m) for s in r.get("stall_ms", [])], "conns") for m in MODES)))
    for pre, label in workloads[2:]:
        if not any(sel(pre, m, runs) for m in MODES):
            continue
        out("| recovery: Recovery → Proxy (ms), %s | %s |" % (label, " | ".join(
            cell([r["recovery_ms"] for r in sel(pre, m) if "recovery_ms" in r]) for m in MODES)))
    # what the replays did, summed over the passed runs of each cell
    for pre, label in workloads:
        if not any(sel(pre, m, runs) for m in MODES):
            continue
        row = ["replays: verified / diverged / as push, summed (absorbed MB), %s" % label]
        for m in MODES:
            rs = sel(pre, m)
            if not rs:
                row.append("–")
                continue
            s = lambda k: sum(r.get("counters", {}).get(k, 0) for r in rs)
            row.append("%d / %d / %d (%.2f MB), %d runs" % (
                s("replay_verified"), s("replay_diverged"), s("replay_as_push"),
                s("replay_absorbed_bytes") / 1e6, len(rs)))
        out("| " + " | ".join(row) + " |")
        row = ["kernel_drops (max over runs), %s" % label]
        for m in MODES:
            rs = sel(pre, m)
            row.append(str(max((r.get("counters", {}).get("kernel_drops", 0) for r in rs), default=0))
                       if rs else "–")
        out("| " + " | ".join(row) + " |")
    div = sel("h2m", "aligned", runs)
    div_ok = [r for r in div if r.get("rc") == 0]
    if div:
        per = [r.get("counters", {}).get("replay_diverged", 0) for r in div_ok]
        anyd = sum(1 for x in per if x > 0)
        out("")
        out("nginx with its Date header, aligned, 10 keep-alive clients downloading 2 MB, cable pulled "
            "mid-run: diverged connections per run (of 10) = %s; runs with any divergence: **%d of %d** "
            "(%.0f %%); corrupt bodies: %d; kernel_drops max %d; runs failed: %d." % (
                ", ".join(str(x) for x in per), anyd, len(per), 100.0 * anyd / max(1, len(per)),
                sum(r.get("corrupt") or 0 for r in div_ok),
                max((r.get("counters", {}).get("kernel_drops", 0) for r in div_ok), default=0),
                len(div) - len(div_ok)))
    out("")
    out("Runs: %d passed, %d failed, %d skipped (time budget)." % (len(ok), len(failed), len(skipped)))
    for r in failed:
        out("- failed: %s (exit %s): %s" % (r["_name"], r.get("rc"), r.get("verdict") or "no verdict"))
    text = "\n".join(lines)
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text + "\n")
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--work", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--category", required=True)
    r.add_argument("--mode", choices=MODES, required=True)
    r.add_argument("--kind", choices=("rr", "http"), required=True)
    r.add_argument("--connections", type=int, required=True)
    r.add_argument("--rc", type=int, default=0)
    r.add_argument("--verdict", default="")
    r.add_argument("--latency")
    s = sub.add_parser("summary")
    s.add_argument("--runs", required=True)
    s.add_argument("--markdown")
    a = ap.parse_args()
    return cmd_run(a) if a.cmd == "run" else cmd_summary(a)


if __name__ == "__main__":
    sys.exit(main())
