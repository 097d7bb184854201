#!/usr/bin/env python3
"""End-to-end tests of the control protocol (CONTROL.md) against the real daemon.

Run by tests/control/protocol.sh, which builds the hub lab (scripts/lab.sh), starts the echo
services on the primary and the backup, creates the temporary group and users, and cleans
everything up.  This script starts migware itself (so it can read its exit status), the lab
clients, and checks the protocol case by case: one `ok - ...` or `FAIL - ...: detail` line per
case, then `protocol: N passed, M failed`; exit 1 on any failure.

Every wait is bounded; every process started here is recorded in WORK/pids (one `pid path`
line) so the shell can stop it if this script dies.
"""

import argparse
import errno
import json
import math
import os
import tempfile
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # reported as a failing case, not a crash
    text_string_to_metric_families = None

PASSED = 0
FAILED = 0
A = None  # parsed arguments
PROCS = []  # (Popen, description) started here


def check(name, cond, detail=""):
    global PASSED, FAILED
    if cond:
        PASSED += 1
        print(f"ok - {name}", flush=True)
    else:
        FAILED += 1
        d = str(detail)
        if len(d) > 600:
            d = d[:600] + "..."
        print(f"FAIL - {name}: {d}", flush=True)
    return bool(cond)


def note(text):
    print(f"# {text}", flush=True)


def is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


# ------------------------------------------------------------------ the socket client
class Client:
    def __init__(self, path, timeout=3.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""
        self.eof = False

    def send_raw(self, data):
        self.s.sendall(data)

    def send(self, obj):
        self.send_raw((json.dumps(obj) + "\n").encode())

    def read_line(self, timeout=3.0):
        """One line (bytes, without \\n); None at EOF; raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply line within %.1fs" % timeout)
            self.s.settimeout(left)
            try:
                data = self.s.recv(1 << 20)
            except socket.timeout:
                raise TimeoutError("no reply line within %.1fs" % timeout)
            except ConnectionResetError:
                data = b""
            if not data:
                self.eof = True
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def reply(self, timeout=3.0):
        line = self.read_line(timeout)
        if line is None:
            raise EOFError("connection closed by the daemon")
        return json.loads(line)

    def req(self, obj, timeout=3.0):
        self.send(obj)
        return self.reply(timeout)

    def wait_eof(self, timeout=3.0):
        """Drains until EOF; returns (True, lines read) or (False, lines) on timeout."""
        lines = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.read_line(max(0.05, deadline - time.monotonic()))
            except TimeoutError:
                return False, lines
            if line is None:
                return True, lines
            lines += 1
        return False, lines

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def rpc(obj, path=None, timeout=3.0):
    c = Client(path or A.sock, timeout)
    try:
        return c.req(obj, timeout)
    finally:
        c.close()


def safe(fn, *args, **kw):
    """(result, None) or (None, exception text)."""
    try:
        return fn(*args, **kw), None
    except Exception as e:  # noqa: BLE001 - any failure is a test failure, reported
        return None, f"{type(e).__name__}: {e}"


# ------------------------------------------------------------------ processes
def record_pid(p, what):
    PROCS.append((p, what))
    with open(os.path.join(A.work, "pids"), "a") as f:
        f.write(f"{p.pid} {what}\n")


def nsx(ns, *cmd):
    return ["ip", "netns", "exec", ns, *cmd]


def start_daemon(tag, extra, user=None, caps=True, sock=None):
    """migware in the backup namespace (ip netns exec and setpriv exec: Popen's pid is migware)."""
    args = [A.bin, "--interface", "eth0", "--primary", A.ip_primary, "--backup", A.ip_backup,
            "--port", "7000", *extra]
    if sock:
        args += ["--control.socket", sock]
    # Each instance keeps its restart snapshot in its own temporary directory.
    args += ["--state-file", os.path.join(tempfile.mkdtemp(prefix="snap", dir=A.work), "snapshot")]
    if user:
        pre = ["setpriv", f"--reuid={A.user}", f"--regid={A.group}", "--init-groups"]
        if caps is True:
            caps = "+net_raw,+net_admin"
        if caps:
            pre += [f"--inh-caps={caps}", f"--ambient-caps={caps}",
                    f"--bounding-set=-all,{caps}"]
        else:
            pre += ["--inh-caps=-all", "--bounding-set=-all"]
        args = pre + args
        if tun_needs_private_node():
            # Debian's udev makes /dev/net/tun 0666; where it is 0600 (containers), a non-root
            # daemon could not open it whatever its capabilities.  Give it a 0666 node in a
            # private mount namespace (the host's /dev is untouched).
            args = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                    'mount -t tmpfs -o mode=0755,size=64k mwtun /dev/net && '
                    'mknod -m 0666 /dev/net/tun c 10 200 && exec "$@"', "sh", *args]
    log = os.path.join(A.work, f"migware-{tag}.log")
    out = open(log, "w")
    p = subprocess.Popen(nsx(A.ns_backup, *args), stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    out.close()
    record_pid(p, A.bin)
    p.log = log
    return p


def tun_needs_private_node():
    try:
        return stat.S_IMODE(os.stat("/dev/net/tun").st_mode) & 0o006 != 0o006
    except OSError:
        return False


def log_text(p):
    try:
        with open(p.log, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def wait_ready(p, sock, secs=6.0):
    """Waits for the socket to answer status; returns (status result, error)."""
    deadline = time.monotonic() + secs
    err = "not ready"
    while time.monotonic() < deadline:
        if p.poll() is not None:
            return None, f"exited {p.returncode}: {log_text(p)[-400:]}"
        if os.path.exists(sock):
            r, e = safe(rpc, {"v": 1, "cmd": "status"}, sock, 1.0)
            if r and r.get("ok"):
                return r["result"], None
            err = e or r
        time.sleep(0.05)
    return None, f"not answering within {secs}s ({err}); log: {log_text(p)[-400:]}"


def wait_exit(p, secs):
    try:
        return p.wait(timeout=secs)
    except subprocess.TimeoutExpired:
        return None


def stop_daemon_checks(p, sock, tun, label):
    """SIGTERM: exit 0, the socket file removed, an event=shutdown line, the TUN device gone."""
    p.send_signal(signal.SIGTERM)
    rc = wait_exit(p, 6)
    check(f"{label}: SIGTERM -> exit status 0", rc == 0, f"exit status {rc}; log tail: {log_text(p)[-300:]}")
    if rc is None:
        p.kill()
        wait_exit(p, 3)
    check(f"{label}: SIGTERM removes the socket file", not os.path.lexists(sock), f"{sock} still exists")
    lines = [l for l in log_text(p).splitlines() if re.search(r"(^| )event=shutdown( |$)", l)]
    check(f"{label}: SIGTERM prints one event=shutdown line", len(lines) == 1,
          f"{len(lines)} shutdown lines; log tail: {log_text(p)[-300:]}")
    if lines:
        check(f"{label}: shutdown line carries counters", "kernel_drops=" in lines[0] and "recovered=" in lines[0],
              lines[0])
    gone = subprocess.run(["ip", "-n", A.ns_backup, "link", "show", tun], capture_output=True).returncode != 0
    check(f"{label}: SIGTERM removes the TUN device {tun}", gone, "still present")


# ------------------------------------------------------------------ lab helpers
def lab_call(fn):
    r = subprocess.run(["bash", "-c", 'source "$1" && lab_init "$2" && ' + fn, "_", A.lab_sh, A.lab_prefix],
                       capture_output=True, text=True, timeout=10)
    return r.returncode == 0, r.stderr


def poll_until(fn, secs, step=0.05):
    deadline = time.monotonic() + secs
    last = None
    while time.monotonic() < deadline:
        ok, last = fn()
        if ok:
            return True, last
        time.sleep(step)
    return False, last


# ------------------------------------------------------------------ cases
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
PHASES = ["tracked", "recovering", "proxied", "lost", "closed"]
TWIN_KEYS = ["twin_port", "to_backup_packets", "to_client_packets", "to_backup_bytes", "to_client_bytes",
             "replay", "overlap"]
REPLAY_MODES = ["push", "aligned", "full"]


def check_status(st, label, expect_state, cfg_expect):
    top = {"state": str, "since_mono_ns": "int", "since_wall": "iso", "seconds_in_state": "num",
           "last_transition": "obj?", "primary": dict, "recovery": dict, "config": dict, "version": str}
    bad = []
    for k, t in top.items():
        if k not in st:
            bad.append(f"{k} missing")
            continue
        v = st[k]
        ok = {"int": is_int(v), "num": is_num(v), "iso": isinstance(v, str) and bool(ISO.match(v)),
              "obj?": v is None or isinstance(v, dict)}.get(t) if isinstance(t, str) else isinstance(v, t)
        if not ok:
            bad.append(f"{k}={v!r} (want {t if isinstance(t, str) else t.__name__})")
    check(f"{label}: status has every documented key, typed", not bad, "; ".join(bad))
    check(f"{label}: status state is {expect_state}", st.get("state") == expect_state, st.get("state"))
    pr = st.get("primary") or {}
    bad = [k for k in ("consecutive_misses", "probes_sent", "replies", "rejected_replies", "late_replies")
           if not is_int(pr.get(k))]
    if not isinstance(pr.get("health"), str):
        bad.append("health")
    rtt = pr.get("rtt_us")
    if not (isinstance(rtt, list) and len(rtt) <= 64 and all(is_int(x) for x in rtt)):
        bad.append(f"rtt_us={rtt!r}")
    check(f"{label}: status.primary keys typed (rtt_us: <=64 integers)", not bad, bad)
    rc = st.get("recovery") or {}
    bad = [k for k in ("twins", "resolved", "recovered", "failed") if not is_int(rc.get(k))]
    # CONTROL.md: duration_us is null until a Recovery has completed, then an integer.
    if expect_state == "proxy":
        if not is_int(rc.get("duration_us")):
            bad.append("duration_us (want an integer after Recovery)")
    elif expect_state == "normal" and rc.get("duration_us") is not None:
        bad.append("duration_us (want null before any Recovery)")
    check(f"{label}: status.recovery keys typed", not bad, bad)
    cfg = st.get("config") or {}
    diff = {k: (cfg.get(k), v) for k, v in cfg_expect.items() if cfg.get(k) != v}
    check(f"{label}: status.config matches the command line", not diff, f"(got, want): {diff}")
    lt = st.get("last_transition")
    if isinstance(lt, dict):
        check(f"{label}: last_transition has from/to/cause/reason",
              all(isinstance(lt.get(k), str) for k in ("from", "to", "cause", "reason")), lt)


def test_status(cfg_expect):
    r, e = safe(rpc, {"v": 1, "cmd": "status", "id": 1})
    if not check("status: ok reply", r and r.get("ok") is True and isinstance(r.get("result"), dict), e or r):
        return
    check("status: reply envelope v=1, id echoed", r.get("v") == 1 and r.get("id") == 1, r)
    check_status(r["result"], "status (normal)", "normal", cfg_expect)
    # the monitor answers: health up, with RTT samples
    ok, st = poll_until(lambda: ((lambda s: (s["primary"]["health"] == "up" and len(s["primary"]["rtt_us"]) > 0, s))
                                 (rpc({"v": 1, "cmd": "status"})["result"])), 3.0, 0.1)
    check("status: primary health up with recent rtt_us", ok, st and st.get("primary"))


def test_counters():
    r, e = safe(rpc, {"v": 1, "cmd": "counters", "id": "c"})
    if not check("counters: ok reply", r and r.get("ok") and isinstance(r.get("result"), dict), e or r):
        return {}
    c = r["result"]
    nonint = {k: v for k, v in c.items() if not is_int(v)}
    check("counters: flat object of integers", not nonint and c, nonint)
    neg = {k: v for k, v in c.items() if is_int(v) and v < 0}
    check("counters: no negative values", not neg, neg)
    need = ["kernel_drops", "interface_drops", "pcap_received", "recovered", "evicted_closed", "evicted_idle",
            "to_backup_packets", "to_backup_bytes", "to_client_packets", "to_client_bytes",
            "control_slow_disconnects", "control_accepted", "control_refused", "control_requests",
            "control_oversize_requests"] + [f"phase_{p}" for p in PHASES]
    missing = [k for k in need if k not in c]
    check("counters: documented keys present (drops, recovered, evicted_*, phase_*, in/out by direction, control_*)",
          not missing, f"missing {missing}")
    mal = [k for k in c if k.startswith("malformed_")]
    unrec = [k for k in c if k.startswith("unrecovered_")]
    check("counters: malformed_<reason> keys", len(mal) >= 5, mal)
    check("counters: unrecovered_<reason> keys", len(unrec) >= 3, unrec)
    check("counters: phase_tracked counts the lab's client connections",
          c.get("phase_tracked", 0) >= A.connections, c.get("phase_tracked"))
    return c


def test_connections(label, phase_expect, min_total):
    keys = replay_keys()
    r, e = safe(rpc, {"v": 1, "cmd": "connections", "id": 7})
    if not check(f"{label}: connections ok reply", r and r.get("ok"), e or r):
        return
    res = r["result"]
    check(f"{label}: connections result has total/offset/items",
          is_int(res.get("total")) and res.get("offset") == 0 and isinstance(res.get("items"), list), list(res))
    items = res.get("items") or []
    check(f"{label}: default limit is 100", len(items) == min(100, res.get("total", 0)) and res.get("total", 0) >= min_total,
          f"{len(items)} items, total {res.get('total')}")
    if items:
        missing = sorted({k for it in items for k in keys + ["phase", "reason"] + TWIN_KEYS if k not in it})
        check(f"{label}: every item has every replay --json key plus phase/reason/twin fields",
              not missing, f"missing {missing}; replay keys {keys}")
        badmode = [it for it in items if it.get("replay_mode") not in REPLAY_MODES or not is_int(it.get("held_bytes"))
                   or it["held_bytes"] < 0]
        check(f"{label}: every item has replay_mode (push/aligned/full) and held_bytes >= 0", not badmode, badmode[:1])
        badphase = [it.get("phase") for it in items if it.get("phase") not in PHASES]
        check(f"{label}: item phase is one of the five", not badphase, badphase[:5])
        if phase_expect == "tracked":
            bad = [it for it in items if it.get("phase") == "tracked"
                   and (it.get("reason") is not None or any(it.get(k) is not None for k in TWIN_KEYS))]
            check(f"{label}: tracked items: reason and twin fields are null", not bad, bad[:1])
            check(f"{label}: items are the lab's connections (server 198.18.0.1:7000)",
                  all(it.get("server") == f"{A.ip_primary}:7000" for it in items), items[:1])
    # state filter
    for ph in PHASES:
        r, e = safe(rpc, {"v": 1, "cmd": "connections", "state": ph, "limit": 1000})
        ok = r and r.get("ok") and all(it.get("phase") == ph for it in r["result"]["items"])
        check(f"{label}: state filter '{ph}' returns only {ph} items", ok, e or (r and r.get("error")))
    r, e = safe(rpc, {"v": 1, "cmd": "connections", "state": phase_expect, "limit": 1})
    check(f"{label}: state '{phase_expect}' total >= {min_total}",
          r and r.get("ok") and r["result"]["total"] >= min_total, e or (r and r.get("result", {}).get("total")))
    # paging: the pages, concatenated, are the whole list, in the same order
    whole, e = safe(rpc, {"v": 1, "cmd": "connections", "state": phase_expect, "limit": 1000})
    if whole and whole.get("ok"):
        full = [it["client"] for it in whole["result"]["items"]]
        total = whole["result"]["total"]
        pages, off = [], 0
        for _ in range(100):  # bounded: 100 pages of 97 > any lab here
            pr, e2 = safe(rpc, {"v": 1, "cmd": "connections", "state": phase_expect, "offset": off, "limit": 97})
            if not (pr and pr.get("ok")) or pr["result"]["offset"] != off or len(pr["result"]["items"]) > 97:
                break
            its = pr["result"]["items"]
            pages += [it["client"] for it in its]
            off += 97
            if not its or off >= total:
                break
        check(f"{label}: offset/limit paging covers every connection once, in the listing's order",
              len(pages) == total and len(set(pages)) == total and pages[: len(full)] == full,
              f"{len(pages)} paged ({len(set(pages))} distinct) vs total {total}; first 1000 same order: "
              f"{pages[: len(full)] == full}")
        check(f"{label}: limit capped at 1000", len(full) == min(total, 1000) and total > 1000,
              f"limit 1000 gave {len(full)} of total {total} (the lab needs > 1000 connections)")
    r, e = safe(rpc, {"v": 1, "cmd": "connections", "limit": 5000})
    check(f"{label}: limit 5000 is capped at 1000 items",
          r and r.get("ok") and len(r["result"]["items"]) == min(1000, r["result"]["total"]),
          e or (r and (len(r["result"]["items"]), r["result"]["total"])))
    r, e = safe(rpc, {"v": 1, "cmd": "connections", "offset": 10**9})
    check(f"{label}: offset past the end: no items, total kept",
          r and r.get("ok") and r["result"]["items"] == [] and r["result"]["total"] >= min_total, e or r)
    r, e = safe(rpc, {"v": 1, "cmd": "connections", "limit": 0})
    check(f"{label}: limit 0: no items", r and r.get("ok") and r["result"]["items"] == [], e or r)
    r, e = safe(rpc, {"v": 1, "cmd": "connections", "state": "bogus", "id": 8})
    check(f"{label}: bad state value -> ok:false with id", r and r.get("ok") is False and r.get("id") == 8
          and isinstance(r.get("error"), str), e or r)


_REPLAY_KEYS = None


def replay_keys():
    global _REPLAY_KEYS
    if _REPLAY_KEYS is None:
        out = subprocess.run([A.bin, "replay", "--json", A.pcap], capture_output=True, text=True, timeout=30).stdout
        first = json.loads(out.splitlines()[0])
        _REPLAY_KEYS = [k for k in first if k != "summary"]
    return _REPLAY_KEYS


def test_proxied_items():
    r, e = safe(rpc, {"v": 1, "cmd": "connections", "state": "proxied", "limit": 1000})
    if not check("proxy: connections state=proxied ok", r and r.get("ok"), e or r):
        return
    items = r["result"]["items"]
    bad = [it for it in items if not all(is_int(it.get(k)) for k in TWIN_KEYS if k not in ("replay", "overlap"))
           or it.get("replay") not in REPLAY_MODES or it.get("overlap") not in ("none", "absorbing", "verified", "diverged")
           or it.get("reason") is not None]
    check("proxy: proxied items carry integer twin fields and reason null", items and not bad,
          bad[:1] if items else "no proxied items")
    # the lab client keeps writing on its first connections: some proxied item counts traffic
    ok, _ = poll_until(lambda: (any(it.get("to_backup_packets", 0) > 0 and it.get("to_client_packets", 0) > 0
                                    for it in rpc({"v": 1, "cmd": "connections", "state": "proxied",
                                                   "limit": 1000})["result"]["items"]), None), 3.0, 0.2)
    check("proxy: active twins count packets both ways", ok, "no proxied item with to_backup/to_client packets > 0")


def check_event(ev):
    return (isinstance(ev, dict) and is_int(ev.get("seq")) and is_int(ev.get("mono_ns"))
            and isinstance(ev.get("wall"), str) and ISO.match(ev["wall"]) and isinstance(ev.get("event"), str)
            and isinstance(ev.get("fields"), dict) and all(typed_field(v) for v in ev["fields"].values()))


INTEGER_TEXT = re.compile(r"^(0|-?[1-9][0-9]*)$")


def typed_field(v):
    """Event fields are typed JSON scalars (CONTROL.md): a string never holds an exact integer's text."""
    if isinstance(v, str):
        return not INTEGER_TEXT.match(v)
    return isinstance(v, (bool, int, float))


def test_events():
    r, e = safe(rpc, {"v": 1, "cmd": "events", "last": 50})
    if not check("events: ok reply", r and r.get("ok") and isinstance(r["result"].get("events"), list), e or r):
        return
    evs = r["result"]["events"]
    check("events: every event has seq/mono_ns/wall/event/fields, typed", evs and all(check_event(x) for x in evs),
          [x for x in evs if not check_event(x)][:2] or "no events")
    seqs = [x.get("seq") for x in evs]
    check("events: oldest first, seq strictly increasing", all(a < b for a, b in zip(seqs, seqs[1:])), seqs)
    check("events: the start event is there (state=normal)",
          any(x.get("event") == "start" and x["fields"].get("state") == "normal" for x in evs), evs[:2])
    starts = [x for x in evs if x.get("event") == "start"]
    mc = starts[0]["fields"].get("max_connections") if starts else None
    check("events: numbers are JSON integers (start: max_connections)",
          isinstance(mc, int) and not isinstance(mc, bool) and mc > 0, starts[:1])
    r2, e = safe(rpc, {"v": 1, "cmd": "events", "last": 1})
    ok = r2 and r2.get("ok") and len(r2["result"]["events"]) == 1 and r2["result"]["events"][0]["seq"] >= seqs[-1]
    check("events: last=1 gives the newest event", ok, e or r2)
    r3, e = safe(rpc, {"v": 1, "cmd": "events", "last": 0})
    check("events: last=0 gives none", r3 and r3.get("ok") and r3["result"]["events"] == [], e or r3)
    r4, e = safe(rpc, {"v": 1, "cmd": "events", "last": 10**6})
    check("events: a huge last is bounded by the ring (<= 1024)",
          r4 and r4.get("ok") and 0 < len(r4["result"]["events"]) <= 1024, e or (r4 and len(r4["result"]["events"])))
    r5, e = safe(rpc, {"v": 1, "cmd": "events"})
    check("events: last defaults to at most 50", r5 and r5.get("ok") and len(r5["result"]["events"]) <= 50, e or r5)


def metric_base(name, fam_types):
    for suf in ("_sum", "_count", "_bucket", "_created"):
        if name.endswith(suf) and name[: -len(suf)] in fam_types:
            return name[: -len(suf)]
    return name


def test_metrics(expect_state, counters):
    label = f"metrics ({expect_state})"
    r, e = safe(rpc, {"v": 1, "cmd": "metrics", "id": "m"})
    if not check(f"{label}: ok reply with result.text", r and r.get("ok") and isinstance(r["result"].get("text"), str),
                 e or r):
        return
    text = r["result"]["text"]
    check(f"{label}: text ends with a newline", text.endswith("\n"), repr(text[-40:]))
    # promtool (Debian prometheus) is required: its absence fails the check.
    promtool = shutil.which("promtool")
    if check(f"{label}: promtool is installed (prometheus)", promtool is not None, "not on PATH"):
        pr = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
        check(f"{label}: promtool check metrics", pr.returncode == 0,
              (pr.stdout + pr.stderr).decode(errors="replace")[:400])
    if not check(f"{label}: prometheus_client is installed (python3-prometheus-client)",
                 text_string_to_metric_families is not None, "import failed"):
        return
    fams, err = safe(lambda: list(text_string_to_metric_families(text)))
    if not check(f"{label}: parses with prometheus_client.parser", fams is not None, err):
        return
    names = [f.name for f in fams]
    dup = sorted({n for n in names if names.count(n) > 1})
    check(f"{label}: no duplicate families (parser)", not dup, dup)
    nodoc = [f.name for f in fams if not f.documentation]
    untyped = [f.name for f in fams if f.type in ("unknown", "untyped")]
    check(f"{label}: every parsed family has HELP text and a TYPE", not nodoc and not untyped,
          f"no HELP: {nodoc}; no TYPE: {untyped}")
    # the raw text: HELP and TYPE once per family, before its samples, families contiguous
    helps, types, order, problems = {}, {}, [], []
    for ln in text.splitlines():
        if not ln:
            problems.append("empty line")
            continue
        m = re.match(r"^# (HELP|TYPE) (\S+)(?: (.*))?$", ln)
        if m:
            d = helps if m.group(1) == "HELP" else types
            if m.group(2) in d:
                problems.append(f"second # {m.group(1)} for {m.group(2)}")
            d[m.group(2)] = m.group(3)
            continue
        if ln.startswith("#"):
            continue
        name = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", ln).group(1)
        base = metric_base(name, types)
        if base not in types or base not in helps:
            problems.append(f"sample {name} before/without its HELP and TYPE")
        if order and order[-1] != base and base in order:
            problems.append(f"family {base} split in two blocks")
        if not order or order[-1] != base:
            order.append(base)
    check(f"{label}: raw text: HELP and TYPE exactly once per family, before its samples, no split families",
          not problems, problems[:5])
    check(f"{label}: every family has samples", set(types) <= set(order), sorted(set(types) - set(order)))
    check(f"{label}: names prefixed migware_", all(n.startswith("migware_") for n in list(types) + order),
          [n for n in list(types) + order if not n.startswith("migware_")])
    bad_values = [(s.name, s.value) for f in fams for s in f.samples if not math.isfinite(s.value)]
    check(f"{label}: sample values finite", not bad_values, bad_values[:5])
    st = [f for f in fams if f.name == "migware_state"]
    if check(f"{label}: migware_state family present (gauge)", len(st) == 1 and st[0].type == "gauge", names):
        ss = st[0].samples
        ones = [s.labels.get("state") for s in ss if s.value == 1]
        check(f"{label}: migware_state has exactly one 1, for the current state",
              ones == [expect_state] and all(s.value in (0, 1) for s in ss), [(s.labels, s.value) for s in ss])
        check(f"{label}: migware_state labels normal/recovery/proxy",
              sorted(s.labels.get("state") for s in ss) == ["normal", "proxy", "recovery"], [s.labels for s in ss])
    conn = {s.labels.get("phase"): s.value for f in fams if f.name == "migware_connections" for s in f.samples}
    check(f"{label}: migware_connections{{phase}} for the five phases", sorted(conn) == sorted(PHASES), conn)
    # counters and metrics agree on the names (CONTROL.md: the metric names without migware_)
    if counters:
        samples = {s.name for f in fams for s in f.samples}
        lab = {(s.name, k, v) for f in fams for s in f.samples for k, v in s.labels.items()}
        missing = []
        for k in counters:
            if k.startswith("malformed_"):
                ok = ("migware_malformed_packets_total", "reason", k[len("malformed_"):]) in lab
            elif k.startswith("unrecovered_"):
                ok = ("migware_unrecovered_connections_total", "reason", k[len("unrecovered_"):]) in lab
            elif k.startswith("replay_fallback_"):
                ok = ("migware_replay_fallback_total", "reason", k[len("replay_fallback_"):]) in lab
            elif k.startswith("phase_"):
                ok = ("migware_connections", "phase", k[len("phase_"):]) in lab
            elif k.startswith("proxy_latency_") or k in ("malformed", "connections"):
                continue
            else:
                ok = f"migware_{k}" in samples or f"migware_{k}_total" in samples
            if not ok:
                missing.append(k)
        check(f"{label}: every counters key has its metric", not missing, missing)


def test_ids_and_pipelining():
    c = Client(A.sock)
    try:
        ids = [42, "abc", -7, 3.5, 0, "", "é \"q\" \\ \n\t☃", 18446744073709551615, -9223372036854775808, 1e300]
        bad = []
        for i in ids:
            r = c.req({"v": 1, "cmd": "status", "id": i})
            if r.get("id") != i or type(r.get("id")) is not type(i):
                bad.append((i, r.get("id")))
        check("ids: numbers and strings echoed exactly", not bad, bad)
        r = c.req({"v": 1, "cmd": "status"})
        check("ids: no id -> reply without an id (null)", r.get("ok") and r.get("id") is None, r.get("id"))
        r = c.req({"v": 1, "cmd": "frobnicate", "id": "err-1"})
        check("ids: echoed on error replies", r.get("ok") is False and r.get("id") == "err-1", r)
        # pipelined: 30 requests in one write, replies in order
        cmds = ["status", "counters", "events", "metrics", "connections", "nope"]
        batch = b"".join((json.dumps({"v": 1, "cmd": cmds[i % len(cmds)], "id": i}) + "\n").encode()
                         for i in range(30))
        c.send_raw(batch)
        got = [c.reply(5.0) for _ in range(30)]
        check("pipelined: 30 requests in one write answered in order", [g.get("id") for g in got] == list(range(30)),
              [g.get("id") for g in got])
        check("pipelined: each reply is for its command",
              all((g.get("ok") is (cmds[g["id"] % len(cmds)] != "nope")) for g in got), [g.get("ok") for g in got])
        # a request split over several writes
        raw = json.dumps({"v": 1, "cmd": "status", "id": "split"}).encode() + b"\n"
        for i in range(0, len(raw), 7):
            c.send_raw(raw[i:i + 7])
            time.sleep(0.01)
        r = c.reply()
        check("framing: a request split over many writes", r.get("id") == "split" and r.get("ok"), r)
        c.send_raw(b'{"v":1,"cmd":"status","id":"crlf"}\r\n')
        r = c.reply()
        check("framing: CRLF line ending accepted", r.get("id") == "crlf" and r.get("ok"), r)
    except Exception as e:  # noqa: BLE001
        check("ids/pipelining: no exception", False, f"{type(e).__name__}: {e}")
    finally:
        c.close()


MALFORMED = [
    ("not JSON", b"hello world\n"),
    ("truncated JSON", b'{"v":1,"cmd":"status",\n'),
    ("JSON array", b'[{"v":1,"cmd":"status"}]\n'),
    ("JSON string", b'"status"\n'),
    ("JSON null", b"null\n"),
    ("missing cmd", b'{"v":1}\n'),
    ("cmd not a string", b'{"v":1,"cmd":5}\n'),
    ("unknown cmd", b'{"v":1,"cmd":"frobnicate"}\n'),
    ("v missing", b'{"cmd":"status"}\n'),
    ("v=2", b'{"v":2,"cmd":"status"}\n'),
    ("v=0", b'{"v":0,"cmd":"status"}\n'),
    ("v as string", b'{"v":"1","cmd":"status"}\n'),
    ("duplicate key", b'{"v":1,"cmd":"status","cmd":"metrics"}\n'),
    ("trailing garbage", b'{"v":1,"cmd":"status"} x\n'),
    ("invalid UTF-8", b'{"v":1,"cmd":"\xff\xfe"}\n'),
    ("NUL byte", b'{"v":1,"cmd":"sta\x00tus"}\n'),
    ("whitespace only", b"   \t \n"),
    ("deep nesting", b"[" * 20000 + b"]" * 20000 + b"\n"),
    ("connections limit as string", b'{"v":1,"cmd":"connections","limit":"10"}\n'),
    ("connections limit negative", b'{"v":1,"cmd":"connections","limit":-1}\n'),
    ("connections limit fraction", b'{"v":1,"cmd":"connections","limit":1.5}\n'),
    ("connections offset as bool", b'{"v":1,"cmd":"connections","offset":true}\n'),
    ("connections state as number", b'{"v":1,"cmd":"connections","state":3}\n'),
    ("connections state null", b'{"v":1,"cmd":"connections","state":null}\n'),
    ("events last as string", b'{"v":1,"cmd":"events","last":"5"}\n'),
    ("events last negative", b'{"v":1,"cmd":"events","last":-5}\n'),
    ("events follow as string", b'{"v":1,"cmd":"events","follow":"yes"}\n'),
    ("events follow as number", b'{"v":1,"cmd":"events","follow":1}\n'),
]


def test_malformed(daemon):
    c = Client(A.sock)
    try:
        for name, raw in MALFORMED:
            c.send_raw(raw)
            r, e = safe(c.reply)
            good = (r is not None and r.get("v") == 1 and r.get("ok") is False and isinstance(r.get("error"), str)
                    and r["error"] and "\n" not in r["error"] and "result" not in r)
            check(f"malformed: {name} -> ok:false, one-line error", good, e or r)
            r2, e2 = safe(c.req, {"v": 1, "cmd": "status", "id": "after"})
            check(f"malformed: {name}: same connection still answers", r2 and r2.get("ok") and r2.get("id") == "after",
                  e2 or r2)
            if e2:
                c.close()
                c = Client(A.sock)
        r, _ = safe(c.req, {"v": 2, "cmd": "status", "id": 9})
        want = "unsupported protocol version 2 (this daemon speaks 1)"
        check("malformed: v=2 error text as documented, id echoed", r and r.get("error") == want and r.get("id") == 9, r)
        # empty lines are skipped (no reply): the next reply is for the next request
        c.send_raw(b"\n\n\r\n\n" + b'{"v":1,"cmd":"status","id":"post-empty"}\n')
        r, e = safe(c.reply)
        check("malformed: empty lines are ignored, the connection keeps working",
              r and r.get("id") == "post-empty" and r.get("ok"), e or r)
        check("malformed: the daemon is still running", daemon.poll() is None, f"exited {daemon.returncode}")
    finally:
        c.close()


def test_long_lines():
    before = rpc({"v": 1, "cmd": "counters"})["result"].get("control_oversize_requests", 0)
    # a legal request padded to 60000 bytes is fine
    pad = "x" * (60000 - 60)
    c = Client(A.sock)
    r, e = safe(c.req, {"v": 1, "cmd": "status", "id": "long-ok", "pad": pad})
    check("long line: a 60000-byte request is answered", r and r.get("ok") and r.get("id") == "long-ok", e or r)
    c.close()
    cases = [("70000 bytes without a newline", b"x" * 70000),
             ("1 MiB line with a newline", b"y" * (1 << 20) + b"\n")]
    # a valid request just over the limit, newline included, in one write
    for size in (65537 + 100, 66000, 69000):
        prefix = '{"v":1,"cmd":"status","id":"over-%d","pad":"' % size
        raw = prefix + "z" * (size - len(prefix) - 2) + '"}'
        cases.append((f"valid JSON request of {len(raw)} bytes (> 64 KiB) with its newline", raw.encode() + b"\n"))
    n = 0
    for name, raw in cases:
        c = Client(A.sock)
        try:
            try:
                c.send_raw(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass
            r, e = safe(c.reply, 3.0)
            check(f"long line: {name} -> ok:false error", r and r.get("ok") is False
                  and "longer" in r.get("error", ""), e or {k: (v if k != "result" else "...") for k, v in r.items()})
            closed, _ = c.wait_eof(2.0)
            check(f"long line: {name} -> connection closed", closed, "still open after 2 s")
            n += 1
        finally:
            c.close()
    after = rpc({"v": 1, "cmd": "counters"})["result"].get("control_oversize_requests", 0)
    check("long line: counters.control_oversize_requests counts them", after - before == n,
          f"{before} -> {after}, {n} over-long lines sent")


def test_slow_reader(daemon):
    before = rpc({"v": 1, "cmd": "counters"})["result"]["control_slow_disconnects"]
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(A.sock)
    slow.setblocking(False)
    req = b'{"v":1,"cmd":"metrics"}\n'
    sent = {"n": 0, "err": None}
    stop = threading.Event()

    def flood():
        # bounded: at most 4 s and 40000 requests, in bursts of 100
        end = time.monotonic() + 4.0
        chunk = req * 100
        while not stop.is_set() and time.monotonic() < end and sent["n"] < 40000:
            try:
                k = slow.send(chunk)
                sent["n"] += k // len(req)
            except BlockingIOError:
                time.sleep(0.005)
            except OSError as ex:
                sent["err"] = ex.errno
                return
            time.sleep(0.002)

    good = Client(A.sock)
    lat = []
    errs = []
    th = threading.Thread(target=flood, daemon=True)
    t_end = time.monotonic() + 5.0
    th.start()
    try:
        while time.monotonic() < t_end and (th.is_alive() or len(lat) < 20):
            t0 = time.monotonic()
            try:
                r = good.req({"v": 1, "cmd": "metrics", "id": len(lat)}, timeout=2.0)
                if not r.get("ok") or r.get("id") != len(lat):
                    errs.append(r)
            except Exception as ex:  # noqa: BLE001
                errs.append(f"{type(ex).__name__}: {ex}")
                break
            lat.append(time.monotonic() - t0)
            time.sleep(0.03)
    finally:
        stop.set()
        th.join(5)
    good.close()
    # drain the slow client: it must end at EOF (cut off), not with all replies
    slow.setblocking(True)
    slow.settimeout(3.0)
    got, eof = 0, False
    deadline = time.monotonic() + 4.0
    try:
        while time.monotonic() < deadline:
            d = slow.recv(1 << 20)
            if not d:
                eof = True
                break
            got += d.count(b"\n")
    except (socket.timeout, ConnectionResetError) as ex:
        eof = isinstance(ex, ConnectionResetError)
    slow.close()
    note(f"slow reader: sent {sent['n']} metrics requests (send error: {sent['err'] and errno.errorcode.get(sent['err'])}), "
         f"read back {got} replies; good client: {len(lat)} replies, max {max(lat or [0]) * 1000:.0f} ms")
    check("slow reader: cut off (EOF after fewer replies than requests)", eof and got < sent["n"],
          f"eof={eof} replies={got} requests={sent['n']}")
    check("slow reader: the good client got every reply", not errs and len(lat) >= 20, errs[:2] or len(lat))
    check("slow reader: each good-client reply within 1 s", lat and max(lat) < 1.0,
          f"max {max(lat or [0]):.3f} s")
    after = rpc({"v": 1, "cmd": "counters"})["result"]["control_slow_disconnects"]
    check("slow reader: counters.control_slow_disconnects incremented by 1", after - before == 1, f"{before} -> {after}")
    check("slow reader: the daemon is still running", daemon.poll() is None, f"exited {daemon.returncode}")
    # a follower that never reads is cut off too, while events keep flowing (not triggered here)


PEER = r"""
import errno, json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(3)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print(json.dumps({"connect": errno.errorcode.get(e.errno, str(e.errno))})); sys.exit(0)
out = {"connect": "ok"}
try:
    s.sendall(b'{"v":1,"cmd":"status","id":"peer"}\n')
except OSError as e:
    out["send"] = errno.errorcode.get(e.errno, str(e.errno))
buf = b""
try:
    while b"\n" not in buf:
        d = s.recv(65536)
        if not d: break
        buf += d
except OSError as e:
    out["recv"] = errno.errorcode.get(e.errno, str(e.errno))
line = buf.split(b"\n")[0]
out["reply"] = json.loads(line) if line else None
if isinstance(out["reply"], dict) and "result" in out["reply"]:
    out["reply"]["result"] = {"state": out["reply"]["result"].get("state")}
print(json.dumps(out))
"""


def as_peer(setpriv_args, path):
    r = subprocess.run(["setpriv", *setpriv_args, A.py, "-c", PEER, path], capture_output=True, text=True,
                       timeout=10, cwd="/")
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"connect": "?", "stdout": r.stdout, "stderr": r.stderr[-300:]}


def test_permissions():
    import grp
    import pwd
    st = os.lstat(A.sock)
    gid = grp.getgrnam(A.group).gr_gid
    check("permissions: the control socket is a socket, mode 0660", stat.S_ISSOCK(st.st_mode)
          and stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode))
    check("permissions: socket group is --control.group", st.st_gid == gid, f"gid {st.st_gid}, want {gid}")
    d = os.stat(os.path.dirname(A.sock))
    check("permissions: (test set-up) the directory is searchable by others",
          stat.S_IMODE(d.st_mode) & 0o001, oct(d.st_mode))
    before = rpc({"v": 1, "cmd": "counters"})["result"]["control_refused"]
    r = as_peer(["--reuid=nobody", "--regid=nogroup", "--clear-groups"], A.sock)
    check("permissions: user nobody cannot connect (EACCES)", r.get("connect") == "EACCES", r)
    r = as_peer([f"--reuid={A.user}", f"--regid={A.group}", "--init-groups"], A.sock)
    check(f"permissions: a user whose primary group is --control.group connects and gets status",
          r.get("connect") == "ok" and (r.get("reply") or {}).get("ok") is True, r)
    # README: `usermod -a -G migware <operator>` is how operators get migctl access
    sup = pwd.getpwnam(A.user2)
    r = as_peer([f"--reuid={A.user2}", f"--regid={sup.pw_gid}", "--init-groups"], A.sock)
    check(f"permissions: a user in --control.group as a supplementary group (usermod -a -G) connects and gets status",
          r.get("connect") == "ok" and (r.get("reply") or {}).get("ok") is True, r)
    after = rpc({"v": 1, "cmd": "counters"})["result"]["control_refused"]
    note(f"control_refused {before} -> {after}")


def test_capabilities():
    sock = os.path.join(A.work, "u", "control.sock")
    p = start_daemon("caps", ["--tun", "mwu0"], user=True, caps=True, sock=sock)
    st, err = wait_ready(p, sock)
    if check("caps: as a non-root user with only CAP_NET_RAW+CAP_NET_ADMIN, it answers status", st, err):
        check("caps: ... and is in state normal", st.get("state") == "normal", st.get("state"))
        ok, s = poll_until(lambda: ((lambda x: (x["primary"]["health"] == "up", x["primary"]))
                                    (rpc({"v": 1, "cmd": "status"}, sock)["result"])), 3.0, 0.1)
        check("caps: ... and its ICMP monitor sees the primary up", ok, s)
        try:
            with open(f"/proc/{p.pid}/status") as f:
                proc = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
            uid = int(proc["Uid"].split()[1])
            eff = int(proc["CapEff"].strip(), 16)
            bnd = int(proc["CapBnd"].strip(), 16)
            import pwd
            want_uid = pwd.getpwnam(A.user).pw_uid
            check("caps: (test set-up) the daemon runs as the test user with CapEff = net_raw+net_admin only",
                  uid == want_uid and eff == (1 << 12 | 1 << 13) and bnd == (1 << 12 | 1 << 13),
                  f"uid {uid} CapEff {eff:#x} CapBnd {bnd:#x}")
        except (OSError, KeyError, ValueError) as e:
            check("caps: (test set-up) /proc status readable", False, e)
        sst = os.lstat(sock)
        import pwd
        import grp
        check("caps: its socket: mode 0660, owned by the user, group = its own group (default --control.group)",
              stat.S_IMODE(sst.st_mode) == 0o660 and sst.st_uid == pwd.getpwnam(A.user).pw_uid
              and sst.st_gid == grp.getgrnam(A.group).gr_gid, f"{oct(sst.st_mode)} {sst.st_uid}:{sst.st_gid}")
        r = as_peer(["--reuid=nobody", "--regid=nogroup", "--clear-groups"], sock)
        check("caps: nobody cannot connect to its socket", r.get("connect") in ("EACCES",), r)
    stop_daemon_checks(p, sock, "mwu0", "caps daemon")
    # without the capabilities: one line naming what is missing, exit non-zero
    for caps, missing, present in ((None, ["CAP_NET_RAW", "CAP_NET_ADMIN"], []),
                                   ("+net_raw", ["CAP_NET_ADMIN"], ["CAP_NET_RAW"]),
                                   ("+net_admin", ["CAP_NET_RAW"], ["CAP_NET_ADMIN"])):
        sock2 = os.path.join(A.work, "u", "nocaps.sock")
        p = start_daemon("nocaps", ["--tun", "mwu1"], user=True, caps=caps, sock=sock2)
        rc = wait_exit(p, 10)
        if rc is None:
            p.kill()
            wait_exit(p, 3)
        out = [l for l in log_text(p).splitlines() if l.strip()]
        desc = "no capabilities" if caps is None else f"only {caps[1:]}"
        check(f"no caps ({desc}): exits non-zero", rc not in (None, 0), f"exit status {rc}")
        check(f"no caps ({desc}): one line naming {' and '.join(missing)}",
              len(out) == 1 and all(m in out[0] for m in missing) and not any(pp in out[0] for pp in present),
              out)
        check(f"no caps ({desc}): no socket left behind", not os.path.lexists(sock2), sock2)


def test_follow_and_failover():
    f = Client(A.sock, 5.0)
    try:
        r = f.req({"v": 1, "cmd": "events", "follow": True, "last": 3, "id": "follow"})
    except Exception as e:  # noqa: BLE001
        check("follow: subscription reply", False, e)
        return
    check("follow: first the events reply (last=3)", r.get("ok") and r.get("id") == "follow"
          and len(r["result"]["events"]) <= 3, r)
    last_seq = r["result"]["events"][-1]["seq"] if r.get("ok") and r["result"]["events"] else -1
    t_pull = time.monotonic()
    ok, err = lab_call("pull_cable")
    if not check("follow: pull_cable (lab.sh)", ok, err):
        return
    lines, bad_shape, transitions, events = [], [], [], []
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        try:
            line = f.read_line(max(0.05, deadline - time.monotonic()))
        except TimeoutError:
            break
        if line is None:
            break
        lines.append(line)
        try:
            o = json.loads(line)
        except ValueError:
            bad_shape.append(line[:200])
            continue
        if set(o) != {"v", "event"} or o.get("v") != 1 or not check_event(o.get("event")):
            bad_shape.append(o)
            continue
        ev = o["event"]
        events.append(ev)
        if ev["event"] == "transition":
            transitions.append((ev["fields"].get("from"), ev["fields"].get("to")))
            if ev["fields"].get("to") == "proxy":
                break
    t_proxy = time.monotonic() - t_pull
    note(f"follower got {len(events)} events in {t_proxy:.2f}s: {[e['event'] for e in events][:20]}")
    check("follow: every line is {\"v\":1,\"event\":{...}}", events and not bad_shape, bad_shape[:2] or "no events")
    check("follow: transitions normal->recovery->proxy in order",
          transitions == [("normal", "recovery"), ("recovery", "proxy")], transitions)
    seqs = [e["seq"] for e in events]
    check("follow: seq continues after the subscription, increasing by 1 (nothing missed)",
          seqs and seqs[0] == last_seq + 1 and all(b == a + 1 for a, b in zip(seqs, seqs[1:])),
          f"last in reply {last_seq}, streamed {seqs[:30]}")
    mon = [i for i, e in enumerate(events) if e["event"] == "monitor" and e["fields"].get("health") == "down"]
    first_tr = next((i for i, e in enumerate(events) if e["event"] == "transition"), None)
    check("follow: a monitor health=down event precedes the first transition",
          mon and first_tr is not None and mon[0] < first_tr, [(e["event"], e["fields"]) for e in events[:6]])
    # the ring agrees with what was streamed
    r, e = safe(rpc, {"v": 1, "cmd": "events", "last": 1024})
    if r and r.get("ok") and events:
        ring = {x["seq"]: x for x in r["result"]["events"]}
        same = all(ring.get(x["seq"]) == x for x in events)
        check("follow: streamed events equal the ring's copies", same, "differ")
    f.close()


def test_after_failover(cfg_expect, counters_before):
    ok, st = poll_until(lambda: ((lambda s: (s["state"] == "proxy", s))(rpc({"v": 1, "cmd": "status"})["result"])),
                        5.0, 0.1)
    if not check("proxy: status state proxy", ok, st and st.get("state")):
        return
    check_status(st, "status (proxy)", "proxy", cfg_expect)
    lt = st.get("last_transition") or {}
    check("proxy: last_transition recovery->proxy", lt.get("from") == "recovery" and lt.get("to") == "proxy", lt)
    rec = st.get("recovery") or {}
    check("proxy: status.recovery: every twin resolved and recovered",
          rec.get("twins", 0) >= A.connections and rec.get("resolved") == rec.get("twins")
          and rec.get("recovered") == rec.get("twins") and rec.get("failed") == 0, rec)
    check("proxy: primary health down", (st.get("primary") or {}).get("health") == "down", st.get("primary"))
    c = rpc({"v": 1, "cmd": "counters"})["result"]
    check("proxy: counters.recovered and phase_proxied count the connections",
          c.get("recovered", 0) >= A.connections and c.get("phase_proxied", 0) >= A.connections,
          {k: c.get(k) for k in ("recovered", "phase_proxied", "phase_tracked", "phase_lost")})
    test_connections("connections (proxy)", "proxied", A.connections)
    test_proxied_items()
    test_metrics("proxy", c)


# ------------------------------------------------------------------ main
def main():
    global A
    p = argparse.ArgumentParser()
    for k in ("bin", "work", "lab-sh", "lab-prefix", "ns-backup", "ns-client", "user", "user2", "group", "py",
              "pcap", "service"):
        p.add_argument("--" + k, required=True)
    p.add_argument("--ip-primary", default="198.18.0.1")
    p.add_argument("--ip-backup", default="198.18.0.2")
    p.add_argument("--connections", type=int, default=1100)
    A = p.parse_args()
    A.sock = os.path.join(A.work, "control.sock")
    t0 = time.monotonic()
    extra = ["--port", "7001", "--tun", "mwp0", "--monitor.interval-ms", "25", "--monitor.timeout-ms", "75",
             "--monitor.misses", "4", "--tracker.max-connections", "40000", "--control.group", A.group]
    cfg_expect = {"interface": "eth0", "primary": A.ip_primary, "backup": A.ip_backup, "ports": [7000, 7001],
                  "tun": "mwp0", "monitor_interval_ms": 25, "monitor_timeout_ms": 75, "monitor_misses": 4,
                  "max_connections": 40000}
    daemon = start_daemon("main", extra, sock=A.sock)
    try:
        st, err = wait_ready(daemon, A.sock)
        if not check("start: migware answers status on --control.socket", st, err):
            return
        ready = os.path.join(A.work, "client.ready")
        cl = subprocess.Popen(nsx(A.ns_client, A.py, A.service, "client", "--server", f"{A.ip_primary}:7000",
                                  "--connections", str(A.connections), "--active", "5", "--ready-file", ready,
                                  "--timeout", "90"),
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(A.work, "client.err"), "w"))
        record_pid(cl, A.py)
        ok, _ = poll_until(lambda: (os.path.exists(ready) or cl.poll() is not None, None), 20.0, 0.05)
        if not check(f"start: {A.connections} lab client connections up", os.path.exists(ready),
                     open(os.path.join(A.work, "client.err")).read()[-300:]):
            return
        ok, n = poll_until(lambda: ((lambda c: (c["phase_tracked"] >= A.connections, c["phase_tracked"]))
                                    (rpc({"v": 1, "cmd": "counters"})["result"])), 5.0, 0.1)
        check(f"start: migware tracks the {A.connections} connections", ok, n)
        note(f"set-up done after {time.monotonic() - t0:.1f}s")

        test_status(cfg_expect)
        counters = test_counters()
        test_connections("connections (normal)", "tracked", A.connections)
        test_events()
        test_metrics("normal", counters)
        test_ids_and_pipelining()
        test_malformed(daemon)
        test_long_lines()
        test_slow_reader(daemon)
        test_permissions()
        test_capabilities()
        note(f"normal-state cases done after {time.monotonic() - t0:.1f}s")
        test_follow_and_failover()
        test_after_failover(cfg_expect, counters)
        check("end: the daemon is still running before SIGTERM", daemon.poll() is None, f"exited {daemon.returncode}")
        stop_daemon_checks(daemon, A.sock, "mwp0", "main daemon")
    finally:
        for proc, _what in PROCS:
            if proc.poll() is None:
                proc.terminate()
        for proc, _what in PROCS:
            if wait_exit(proc, 3) is None:
                proc.kill()
                wait_exit(proc, 2)
        note(f"total {time.monotonic() - t0:.1f}s")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - a crash of the test is a failure, not a silent pass
        import traceback
        traceback.print_exc()
        check("test script ran to the end", False, f"{type(e).__name__}: {e}")
    print(f"protocol: {PASSED} passed, {FAILED} failed", flush=True)
    sys.exit(1 if FAILED or not PASSED else 0)
