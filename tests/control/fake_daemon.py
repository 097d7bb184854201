#!/usr/bin/env python3
"""A stand-in for migware's control socket (CONTROL.md, protocol v1), for
developing and testing migctl without capture privileges or a lab.

    fake_daemon.py SOCKET [--connections N] [--phase-counts] [--no-latency]
    fake_daemon.py --send SOCKET JSON      # one request, print the reply line

It serves canned but self-consistent replies: counters grow with time, the
connection list and the counts by phase follow the state. A test drives the
story with test-only commands (names start with '_', never sent by migctl):

    {"v":1,"cmd":"_set","state":"recovery","resolved":123,"failed":0}
    {"v":1,"cmd":"_set","state":"proxy"}
    {"v":1,"cmd":"_event","event":"error","fields":{"what":"x"}}

Transitions append the events the real daemon logs (monitor, transition,
recovery_start, unrecoverable) and push them to `events --follow` clients.
--phase-counts adds status.connections (the counts by phase migctl asks the
daemon for); without it migctl must fall back on connections totals.
Standard library only.
"""

import argparse
import json
import math
import os
import queue
import select
import signal
import socket
import socketserver
import sys
import threading
import time

PHASES = ("tracked", "recovering", "proxied", "lost", "closed")
MAX_LINE = 64 * 1024


def wall_now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


class World:
    """The daemon's state, shared by every connection."""

    def __init__(self, n_conns, phase_counts, latency):
        self.lock = threading.Lock()
        self.n = n_conns
        self.phase_counts = phase_counts
        self.latency = latency
        self.t0 = time.monotonic()
        self.state = "normal"
        self.since_mono = time.monotonic_ns()
        self.since_wall = wall_now()
        self.last_transition = None
        self.resolved = 0
        self.failed = 0
        self.proxy_since = None
        self.events = []
        self.seq = 0
        self.followers = []
        self.requests = 0
        self.emit("start", {"state": "normal", "interface": "eth0", "ports": "7000"})
        self.emit("monitor", {"health": "up", "rtt_us": 301})

    # -- events --
    def emit(self, name, fields):
        self.seq += 1
        ev = {"seq": self.seq, "mono_ns": time.monotonic_ns(), "wall": wall_now(),
              "event": name, "fields": fields}
        self.events.append(ev)
        del self.events[:-1024]
        line = json.dumps({"v": 1, "event": ev}, separators=(",", ":")) + "\n"
        for q in list(self.followers):
            q.put(line)

    def transition(self, to, cause, reason):
        frm = self.state
        self.emit("transition", {"from": frm, "to": to, "cause": cause, "reason": reason})
        self.last_transition = {"from": frm, "to": to, "cause": cause, "reason": reason}
        self.state = to
        self.since_mono = time.monotonic_ns()
        self.since_wall = wall_now()

    def set(self, req):
        to = req.get("state", self.state)
        if to not in ("normal", "recovery", "proxy"):
            raise ValueError("bad state")
        if "failed" in req:
            self.failed = int(req["failed"])
        if to == "recovery" and self.state == "normal":
            self.emit("monitor", {"health": "down", "consecutive_misses": 4})
            self.transition("recovery", "primary_down", "4 consecutive probes unanswered")
            self.emit("recovery_start", {"twins": self.n, "skipped": 0})
        if to == "proxy" and self.state != "proxy":
            self.resolved = self.n
            for i in range(self.failed):
                self.emit("unrecoverable", {"client": self.client(i), "server": self.server(),
                                            "reason": "no_syn_ack"})
            self.transition("proxy", "twins_resolved",
                            "%d twins resolved: %d recovered, %d failed"
                            % (self.n, self.n - self.failed, self.failed))
            self.proxy_since = time.monotonic()
        if to == "normal" and self.state != "normal":
            self.transition("normal", "primary_answering", "operator reset (fake)")
            self.resolved = 0
            self.proxy_since = None
        if "resolved" in req:
            self.resolved = max(0, min(self.n, int(req["resolved"])))

    # -- the model --
    def client(self, i):
        return "198.18.0.%d:%d" % (10 + i // 20000, 40000 + i % 20000)

    def server(self):
        return "198.18.0.1:7000"

    def phase(self, i):
        if self.state == "normal":
            return "tracked"
        if i < self.resolved:
            return "lost" if i < self.failed else "proxied"
        return "recovering"

    def conn(self, i):
        ph = self.phase(i)
        twin = ph in ("proxied", "recovering")
        up = ph == "proxied"
        k = 1 + i % 7
        return {
            "client": self.client(i), "server": self.server(), "state": "established",
            "client_isn": 1000000 + i, "server_isn": 2000000 + i, "mss": 1460, "partial": False,
            "phase": ph, "reason": "no_syn_ack" if ph == "lost" else None,
            "twin_port": (40000 + i % 20000) if twin else None,
            "to_backup_packets": 10 * k if up else None, "to_client_packets": 12 * k if up else None,
            "to_backup_bytes": 1000 * k if up else None, "to_client_bytes": 15000 * k if up else None,
        }

    def counts(self):
        c = dict.fromkeys(PHASES, 0)
        for i in range(self.n):
            c[self.phase(i)] += 1
        return c

    def counters(self):
        t = time.monotonic() - self.t0
        p = (time.monotonic() - self.proxy_since) if self.proxy_since else 0.0
        recovered = max(0, self.resolved - min(self.failed, self.resolved)) if self.state != "normal" else 0
        c = {
            "frames": int(t * 5200), "tcp": int(t * 5000), "pcap_received": int(t * 5200),
            "pcap_received_bytes": int(t * 5200 * 800),
            "kernel_drops": 0, "interface_drops": 0, "capture_gaps": 4, "replay_digest_gaps": 3,
            "malformed_bad_checksum": 3, "malformed_truncated": 1,
            "connections": self.n, "evicted_idle": 0, "evicted_closed": 0,
            "twins": self.n if self.state != "normal" else 0,
            "recovered": recovered, "unrecovered_no_syn_ack": min(self.failed, self.resolved)
            if self.state != "normal" else 0,
            "to_backup": int(p * 3000), "to_client": int(p * 3500),
            "to_backup_bytes": int(p * 3000 * 200), "to_client_bytes": int(p * 3500 * 1400),
            "control_connections": self.requests, "control_slow_disconnects": 0,
        }
        if self.state == "proxy":
            # Issue 13: aligned replays and their overlaps (the dashboard's Recovery line).
            c.update({"replay_aligned": 1500, "replay_full": 0, "replay_verified": 1490, "replay_diverged": 3,
                      "unrecovered_reply_lost": 2, "unrecovered_reply_not_seen_whole": 1})
        if self.state == "proxy" and self.latency:
            c.update({"proxy_latency_to_backup_p50_ns": 12000, "proxy_latency_to_backup_p99_ns": 81000,
                      "proxy_latency_to_client_p50_ns": 9000, "proxy_latency_to_client_p99_ns": 64000})
        return c

    def status(self):
        t = time.monotonic() - self.t0
        down = self.state != "normal"
        rtts = [int(300 + 80 * math.sin((t * 4 + k) / 3.0)) for k in range(64)]
        if down:
            rtts = rtts[:40]
        st = {
            "state": self.state, "since_mono_ns": self.since_mono, "since_wall": self.since_wall,
            "seconds_in_state": round((time.monotonic_ns() - self.since_mono) / 1e9, 1),
            "last_transition": self.last_transition,
            "primary": {"health": "down" if down else "up",
                        "consecutive_misses": int(t * 50) % 1000 if down else 0,
                        "probes_sent": int(t * 50), "replies": int(t * 50) - (12 if down else 0),
                        "rejected_replies": 0, "late_replies": 0, "rtt_us": rtts},
            "recovery": {"twins": self.n if down else 0, "resolved": self.resolved if down else 0,
                         "recovered": self.counters()["recovered"],
                         "failed": min(self.failed, self.resolved) if down else 0,
                         "duration_us": 51234 if self.state == "proxy" else None},
            "config": {"interface": "eth0", "primary": "198.18.0.1", "backup": "198.18.0.2",
                       "ports": [7000], "tun": "mw0", "monitor_interval_ms": 20,
                       "monitor_timeout_ms": 60, "monitor_misses": 4, "max_connections": 65536},
            "version": "0.1.0-fake",
        }
        if self.phase_counts:
            st["connections"] = self.counts()
        return st

    def metrics(self):
        out = []
        for k, v in self.counters().items():
            if k.startswith("proxy_latency_"):
                continue  # JSON-only percentiles: Prometheus gets the histogram below
            kind = "gauge" if k in ("connections",) else "counter"
            name = "migware_" + k + ("_total" if kind == "counter" else "")
            out += ["# HELP %s %s" % (name, k.replace("_", " ")), "# TYPE %s %s" % (name, kind),
                    "%s %d" % (name, v)]
        out += ["# HELP migware_state Current state (1 for the current one).",
                "# TYPE migware_state gauge"]
        out += ['migware_state{state="%s"} %d' % (s, int(s == self.state))
                for s in ("normal", "recovery", "proxy")]
        # As the daemon: a histogram in seconds with a direction label, fixed buckets.
        out += ["# HELP migware_proxy_latency_seconds time from a proxied packet's arrival to its copy leaving",
                "# TYPE migware_proxy_latency_seconds histogram"]
        proxying = self.state == "proxy" and self.latency
        for d, (n, total) in (("to_backup", (1000, 0.015)), ("to_client", (1200, 0.012))):
            n, total = (n, total) if proxying else (0, 0.0)
            for le in ("0.000005", "0.00001", "0.000025", "0.00005", "0.0001", "+Inf"):
                frac = {"0.000005": 0.1, "0.00001": 0.5, "0.000025": 0.9, "0.00005": 0.99}.get(le, 1.0)
                out.append('migware_proxy_latency_seconds_bucket{direction="%s",le="%s"} %d' % (d, le, int(n * frac)))
            out.append('migware_proxy_latency_seconds_sum{direction="%s"} %g' % (d, total))
            out.append('migware_proxy_latency_seconds_count{direction="%s"} %d' % (d, n))
        return "\n".join(out) + "\n"

    # -- requests --
    def handle(self, req):
        """Returns (result, follow)."""
        cmd = req["cmd"]
        if cmd == "status":
            return self.status(), False
        if cmd == "counters":
            return self.counters(), False
        if cmd == "metrics":
            return {"text": self.metrics()}, False
        if cmd == "events":
            last = req.get("last", 50)
            if not isinstance(last, int) or isinstance(last, bool) or last < 0:
                raise ValueError("'last' must be a non-negative integer")
            follow = req.get("follow", False)
            if not isinstance(follow, bool):
                raise ValueError("'follow' must be true or false")
            return {"events": self.events[-last:] if last else []}, follow
        if cmd == "connections":
            state = req.get("state")
            if state is not None and state not in PHASES:
                raise ValueError("unknown state '%s'" % state)
            offset = req.get("offset", 0)
            limit = req.get("limit", 100)
            for k, v in (("offset", offset), ("limit", limit)):
                if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                    raise ValueError("'%s' must be a non-negative integer" % k)
            limit = min(limit, 1000)
            match = req.get("match")
            if match is not None and (not isinstance(match, str) or len(match.encode()) > 256):
                raise ValueError("'match' must be a string of at most 256 bytes")
            needle = (match or "").lower()

            def matches(i):
                return not needle or any(needle in t.lower() for t in (self.client(i), self.server(), self.phase(i)))
            idx = [i for i in range(self.n) if (state is None or self.phase(i) == state) and matches(i)]
            result = {"total": len(idx), "offset": offset}
            if match:
                result["match"] = match
            result["items"] = [self.conn(i) for i in idx[offset:offset + limit]]
            return result, False
        if cmd == "_set":
            self.set(req)
            return {"state": self.state, "resolved": self.resolved}, False
        if cmd == "_event":
            self.emit(req.get("event", "test"), req.get("fields", {}))
            return {}, False
        raise ValueError("unknown command '%s'" % cmd)


class Handler(socketserver.StreamRequestHandler):
    def reply(self, obj):
        self.wfile.write((json.dumps(obj, separators=(",", ":")) + "\n").encode())
        self.wfile.flush()

    def handle(self):
        world = self.server.world
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            if not line:
                return
            if len(line) > MAX_LINE:
                self.reply({"v": 1, "id": None, "ok": False, "error": "request line over 64 KiB"})
                return
            try:
                req = json.loads(line)
            except ValueError as e:
                self.reply({"v": 1, "id": None, "ok": False, "error": "malformed request: %s" % e})
                continue
            rid = req.get("id") if isinstance(req, dict) else None
            if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
                self.reply({"v": 1, "id": rid, "ok": False, "error": "request needs a \"cmd\" string"})
                continue
            if req.get("v") != 1:
                self.reply({"v": 1, "id": rid, "ok": False,
                            "error": "unsupported protocol version %s (this daemon speaks 1)"
                            % json.dumps(req.get("v"))})
                continue
            q = None
            with world.lock:
                world.requests += 1
                try:
                    result, follow = world.handle(req)
                except (ValueError, TypeError) as e:
                    self.reply({"v": 1, "id": rid, "ok": False, "error": str(e)})
                    continue
                if follow:
                    q = queue.Queue()
                    world.followers.append(q)
                self.reply({"v": 1, "id": rid, "ok": True, "result": result})
            if q is not None:
                self.follow(q)
                return

    def follow(self, q):
        world = self.server.world
        try:
            while True:
                r, _, _ = select.select([self.connection], [], [], 0)
                if r and not self.connection.recv(4096):
                    return  # the client went away
                try:
                    line = q.get(timeout=0.2)
                except queue.Empty:
                    continue
                self.wfile.write(line.encode())
                self.wfile.flush()
        except OSError:
            return
        finally:
            with world.lock:
                world.followers.remove(q)


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def send(path, text):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(text.encode() + b"\n")
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    sys.stdout.write(buf.decode())
    return 0 if b'"ok":true' in buf else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("socket")
    ap.add_argument("request", nargs="?")
    ap.add_argument("--send", action="store_true", help="send REQUEST to SOCKET and print the reply")
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--phase-counts", action="store_true", help="add status.connections")
    ap.add_argument("--no-latency", action="store_true", help="omit the proxy latency counters")
    a = ap.parse_args()
    if a.send:
        return send(a.socket, a.request)

    if os.path.exists(a.socket):
        os.unlink(a.socket)
    srv = Server(a.socket, Handler)
    os.chmod(a.socket, 0o660)
    srv.world = World(a.connections, a.phase_counts, not a.no_latency)

    def stop(*_):
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        srv.serve_forever(poll_interval=0.1)
    finally:
        srv.server_close()
        if os.path.exists(a.socket):
            os.unlink(a.socket)
    return 0


if __name__ == "__main__":
    sys.exit(main())
