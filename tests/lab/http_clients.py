#!/usr/bin/env python3
"""Keep-alive HTTP/1.1 download clients for the replay lab tests (issue 13).

    http_clients.py --server 198.18.0.1:80 --clients 10 --paths /2m.bin,/40k.bin
                    --primary-dir DIR [--backup-dir DIR] --duration S --out FILE.json
                    [--timeout 10] [--rate BYTES_PER_S] [--rcvbuf BYTES] [--reconnect]
                    [--pull-file FILE] [--start-file FILE]

Each client is one thread with one persistent connection. It sends `GET PATH` for the paths in
turn (client k starts at path k mod len(paths), so the long and the short downloads overlap),
reads the status line and headers, then exactly Content-Length body bytes, and compares the
body with the expected file (PRIMARY_DIR/PATH) byte for byte. A request that takes longer than
--timeout is a stall and an error. Clients send no new request after --duration seconds; a
request in progress then still has its --timeout to finish.

Every body is classified:
  primary   equal to PRIMARY_DIR/PATH;
  backup    equal to BACKUP_DIR/PATH as a whole (only with --backup-dir, whose files differ);
  mixed     anything else: a splice of the two, a corrupted or a short body. Never acceptable.
For a mixed body the first offset that differs from each version is recorded.

--rate paces each client's reads (token bucket, 64 KiB burst; client k of N at
(0.6 + 0.8 k/(N-1)) x RATE, so that they drift apart) and --rcvbuf fixes the socket's
receive buffer before connect (it turns autotuning off): together they keep the server's reply
in flight on the wire, paced by the client, instead of parked in the client's socket buffer.

Errors (reset, EOF, timeout, a bad reply) end the connection. Without --reconnect the client
stops there; with it, the client opens a new connection and carries on until --duration
(each reconnect is counted). Times are CLOCK_MONOTONIC nanoseconds (the same clock in every
network namespace). --pull-file, if it exists at the end, holds the monotonic_ns just before
and just after the pull's command: the summary then splits the requests into completed before
the pull, sent after it (after the command returned), and in flight across it.

The JSON summary: per client (requests completed, bodies by class, errors with their times,
reconnects, the worst gap between two reads) and totals. Exit status 0 if the run finished
(whatever the verdict: the calling script decides), 2 on bad arguments.
"""

import argparse
import errno
import os
import socket
import sys
import threading
import time

from lab_clients import finish, now_ns, parse_server, read_pull, run_threads, since_pull

REQUEST_TEMPLATE = ("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: migware-lab\r\n"
                    "Accept: */*\r\n\r\n")
MAX_HEADER = 16384
READ_CHUNK = 65536


class ReplyError(Exception):
    """The connection ended or misbehaved; kind is one of reset, eof, timeout, bad_reply, other."""

    def __init__(self, kind, detail):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def classify_oserror(e):
    if isinstance(e, socket.timeout):
        return "timeout"
    if isinstance(e, OSError) and e.errno in (errno.ECONNRESET, errno.EPIPE):
        return "reset"
    return "other"


def first_difference(a, b):
    """The first offset where a and b differ, or None if a is a prefix of b or equal to it."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return None if len(a) <= len(b) else n
    lo, hi = 0, n                      # binary search on equal prefixes: memcmp speed
    while hi - lo > 4096:
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    for i in range(lo, hi):
        if a[i] != b[i]:
            return i
    return hi


def classify(body, expected_primary, expected_backup):
    if body == expected_primary:
        return "primary", None
    if expected_backup is not None and body == expected_backup:
        return "backup", None
    info = {"length": len(body), "expected_length": len(expected_primary),
            "first_diff_vs_primary": first_difference(body, expected_primary)}
    if expected_backup is not None:
        info["first_diff_vs_backup"] = first_difference(body, expected_backup)
        # a splice: a primary prefix, then the backup's bytes from there on
        p = info["first_diff_vs_primary"]
        if p is not None and p < len(body) and body[p:] == expected_backup[p:len(body)]:
            info["splice_at"] = p
    return "mixed", info


class Pacer:
    """Token bucket: at most rate bytes/s on average, bursts of at most `burst` bytes."""

    def __init__(self, rate, burst=65536):
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.last = time.monotonic()

    def take(self, n):
        if not self.rate:
            return
        t = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (t - self.last) * self.rate)
        self.last = t
        self.tokens -= n
        if self.tokens < 0:
            time.sleep(-self.tokens / self.rate)


class Client(threading.Thread):
    def __init__(self, idx, args, files_p, files_b, start_barrier):
        super().__init__(name=f"client{idx}", daemon=True)
        self.idx = idx
        self.args = args
        self.files_p = files_p
        self.files_b = files_b
        self.barrier = start_barrier
        self.requests = []           # one dict per completed request
        self.errors = []             # one dict per error
        self.connections = 0
        self.reconnects = 0
        self.worst_gap_ns = 0
        self.worst_gap_at_ns = None
        self.bytes = 0
        self.sock = None
        self.last_read_ns = None
        # rates spread over [0.6, 1.4] x --rate: the clients drift apart, so that the pull finds
        # them at different points of their replies (in lockstep, all could be between two)
        spread = 0.6 + 0.8 * idx / (args.clients - 1) if args.clients > 1 else 1.0
        self.pacer = Pacer(args.rate * spread)
        self.deadline_ns = None
        self.cur = None

    def connect(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.args.rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.args.rcvbuf)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(self.args.timeout)
        s.connect((self.args.host, self.args.port))
        self.sock = s
        self.port = s.getsockname()[1]
        self.connections += 1
        self.last_read_ns = now_ns()

    def recv(self, buf, view, request_deadline_ns):
        left = (request_deadline_ns - now_ns()) / 1e9
        if left <= 0:
            raise ReplyError("timeout", f"no complete reply within {self.args.timeout}s")
        self.sock.settimeout(left)
        try:
            n = self.sock.recv_into(view)
        except OSError as e:
            kind = classify_oserror(e)
            if kind == "timeout":
                raise ReplyError("timeout", f"no complete reply within {self.args.timeout}s")
            raise ReplyError(kind, f"{type(e).__name__}: {e}")
        t = now_ns()
        gap = t - self.last_read_ns
        if gap > self.worst_gap_ns:
            self.worst_gap_ns, self.worst_gap_at_ns = gap, t
        self.last_read_ns = t
        if n == 0:
            raise ReplyError("eof", "the server closed the connection")
        self.pacer.take(n)
        return n

    def one_request(self, path):
        """Sends one request, reads its whole reply. Returns the request record."""
        rec = {"path": path, "conn": self.connections, "t_send": now_ns()}
        req = REQUEST_TEMPLATE.format(path=path, host=self.args.host).encode()
        request_deadline = rec["t_send"] + int(self.args.timeout * 1e9)
        self.cur = rec
        rec["body_received"] = 0
        try:
            self.sock.sendall(req)
        except OSError as e:
            raise ReplyError(classify_oserror(e), f"send: {e}")
        self.last_read_ns = now_ns()      # gaps count from the request, not from idle time
        buf = bytearray(READ_CHUNK)
        view = memoryview(buf)
        head = bytearray()
        while True:
            n = self.recv(buf, view, request_deadline)
            if "t_first" not in rec:
                rec["t_first"] = now_ns()
            head += view[:n]
            end = head.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(head) > MAX_HEADER:
                raise ReplyError("bad_reply", "no end of headers in 16 KiB")
        header_bytes = bytes(head[:end])
        body = bytearray(head[end + 4:])
        lines = header_bytes.split(b"\r\n")
        status = lines[0].decode("latin-1")
        parts = status.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or parts[1] != "200":
            raise ReplyError("bad_reply", f"status line {status!r}")
        length = None
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length is None:
            raise ReplyError("bad_reply", "no Content-Length")
        rec["headers"] = len(header_bytes) + 4
        if len(body) > length:
            raise ReplyError("bad_reply", f"{len(body) - length} bytes after the body")
        rec["body_received"] = len(body)
        while len(body) < length:
            want = min(READ_CHUNK, length - len(body))
            n = self.recv(buf, view[:want], request_deadline)
            body += view[:n]
            rec["body_received"] = len(body)
        rec["t_done"] = now_ns()
        rec["length"] = length
        expected_p = self.files_p[path]
        expected_b = self.files_b.get(path) if self.files_b else None
        cls, info = classify(bytes(body), expected_p, expected_b)
        rec["class"] = cls
        if info:
            rec["mixed"] = info
        self.bytes += len(body)
        self.cur = None
        return rec, close

    def run(self):
        try:
            self.barrier.wait(timeout=self.args.timeout * 3)
        except threading.BrokenBarrierError:
            pass
        paths = self.args.paths
        i = self.idx % len(paths)
        self.deadline_ns = self.args.t0_ns + int(self.args.duration * 1e9)
        while now_ns() < self.deadline_ns:
            if self.sock is None:
                try:
                    self.connect()
                except OSError as e:
                    self.errors.append({"kind": classify_oserror(e), "detail": f"connect: {e}",
                                        "t": now_ns(), "conn": self.connections + 1,
                                        "path": None, "t_send": None, "body_received": 0})
                    if not self.args.reconnect:
                        return
                    time.sleep(0.2)
                    continue
            path = paths[i]
            try:
                rec, close = self.one_request(path)
                self.requests.append(rec)
                i = (i + 1) % len(paths)
                if close:
                    self.sock.close()
                    self.sock = None
                    self.errors.append({"kind": "eof", "detail": "Connection: close from the server",
                                        "t": now_ns(), "conn": self.connections, "path": path,
                                        "t_send": rec["t_send"], "body_received": rec["length"]})
                    if not self.args.reconnect:
                        return
                    self.reconnects += 1
            except ReplyError as e:
                cur = self.cur or {}
                self.errors.append({"kind": e.kind, "detail": e.detail, "t": now_ns(),
                                    "conn": self.connections, "port": self.port, "path": path,
                                    "t_send": cur.get("t_send"), "t_first": cur.get("t_first"),
                                    "body_received": cur.get("body_received", 0)})
                self.cur = None
                try:
                    self.sock.close()
                except OSError:
                    pass
                self.sock = None
                if not self.args.reconnect:
                    return
                self.reconnects += 1
        if self.sock is not None:
            self.sock.close()


def load_files(d, paths):
    out = {}
    for p in paths:
        with open(os.path.join(d, p.lstrip("/")), "rb") as f:
            out[p] = f.read()
    return out


def summarise(clients, pull_ns, pull_end_ns, args):
    per = []
    tot = {"requests": 0, "requests_before_pull": 0, "requests_after_pull": 0,
           "requests_spanning_pull": 0, "bytes": 0, "primary": 0, "backup": 0, "mixed": 0,
           "errors": 0, "reconnects": 0, "worst_gap_ms": 0.0, "worst_request_ms": 0.0}
    for c in clients:
        classes = {"primary": 0, "backup": 0, "mixed": 0}
        before = after = spanning = 0
        worst_req = 0
        mixed = []
        for r in c.requests:
            classes[r["class"]] += 1
            worst_req = max(worst_req, r["t_done"] - r["t_send"])
            if pull_ns is not None:
                if r["t_done"] < pull_ns:
                    before += 1
                elif r["t_send"] > pull_end_ns:
                    after += 1
                else:
                    spanning += 1
            if r["class"] == "mixed":
                mixed.append({k: r[k] for k in ("path", "conn", "t_send", "t_done", "mixed")})
        errors = since_pull(c.errors, pull_ns)
        if pull_ns is not None:
            for e in errors:
                e["sent_before_pull"] = e["t_send"] is not None and e["t_send"] <= pull_end_ns
        spanning_recs = []
        if pull_ns is not None:
            for r in c.requests:
                if r["t_send"] <= pull_end_ns and r["t_done"] >= pull_ns:
                    spanning_recs.append({"path": r["path"], "conn": r["conn"], "class": r["class"],
                                          "ms_after_pull": round((r["t_done"] - pull_ns) / 1e6, 1)})
        per.append({
            "client": c.idx, "requests": len(c.requests), "connections": c.connections,
            "reconnects": c.reconnects, "bytes": c.bytes, "classes": classes,
            "before_pull": before, "after_pull": after, "spanning_pull": spanning,
            "spanning": spanning_recs,
            "worst_gap_ms": round(c.worst_gap_ns / 1e6, 1),
            "worst_gap_since_pull_ms": (round((c.worst_gap_at_ns - pull_ns) / 1e6, 1)
                                        if pull_ns is not None and c.worst_gap_at_ns else None),
            "worst_request_ms": round(worst_req / 1e6, 1),
            "errors": errors, "mixed": mixed,
            # every request: path, connection, class, sent and completed (ms from the pull,
            # or from the start without a pull), and whether it was sent after the pull's end
            "log": [[r["path"], r["conn"], r["class"],
                     round((r["t_send"] - (pull_ns or args.t0_ns)) / 1e6, 1),
                     round((r["t_done"] - (pull_ns or args.t0_ns)) / 1e6, 1),
                     pull_end_ns is not None and r["t_send"] > pull_end_ns] for r in c.requests],
        })
        tot["requests"] += len(c.requests)
        tot["requests_before_pull"] += before
        tot["requests_after_pull"] += after
        tot["requests_spanning_pull"] += spanning
        tot["bytes"] += c.bytes
        for k in classes:
            tot[k] += classes[k]
        tot["errors"] += len(c.errors)
        tot["reconnects"] += c.reconnects
        tot["worst_gap_ms"] = max(tot["worst_gap_ms"], round(c.worst_gap_ns / 1e6, 1))
        tot["worst_request_ms"] = max(tot["worst_request_ms"], round(worst_req / 1e6, 1))
    return {"pull_ns": pull_ns, "pull_end_ns": pull_end_ns, "t0_ns": args.t0_ns, "duration_s": args.duration,
            "timeout_s": args.timeout, "clients": per, "total": tot}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", default="198.18.0.1:80")
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--paths", default="/2m.bin,/40k.bin")
    ap.add_argument("--primary-dir", required=True)
    ap.add_argument("--backup-dir")
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=0, help="bytes/s per client (0: unpaced)")
    ap.add_argument("--rcvbuf", type=int, default=0)
    ap.add_argument("--reconnect", action="store_true")
    ap.add_argument("--pull-file")
    ap.add_argument("--start-file")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    args.host, args.port = parse_server(args.server)
    args.paths = [p for p in args.paths.split(",") if p]
    if not (1 <= args.clients <= 200) or not args.paths or not (0 < args.duration <= 120) \
            or not (0 < args.timeout <= 60):
        print("http_clients: --clients 1..200, --duration 0..120, --timeout 0..60", file=sys.stderr)
        return 2
    files_p = load_files(args.primary_dir, args.paths)
    files_b = load_files(args.backup_dir, args.paths) if args.backup_dir else None
    if files_b:
        for p in args.paths:
            if files_b[p] == files_p[p]:
                print(f"http_clients: {p} is the same on both sides; --backup-dir is for different "
                      "files", file=sys.stderr)
                return 2
    barrier = threading.Barrier(args.clients)
    clients = [Client(i, args, files_p, files_b, barrier) for i in range(args.clients)]
    # connect everyone first, then start: the start file means "all connected, traffic flowing"
    for c in clients:
        try:
            c.connect()
        except OSError as e:
            print(f"http_clients: client {c.idx} cannot connect: {e}", file=sys.stderr)
            return 1
    stuck = run_threads(clients, args, args.duration + args.timeout + 5,
                        f"http_clients: {args.clients} clients on {args.server}, paths "
                        f"{','.join(args.paths)}, {args.duration}s, timeout {args.timeout}s, "
                        f"rate {args.rate or 'unpaced'}")
    pull_ns, pull_end_ns = read_pull(args.pull_file)
    summary = summarise(clients, pull_ns, pull_end_ns, args)
    summary["stuck_threads"] = stuck
    t = summary["total"]
    finish(args.out, summary,
           f"http_clients: {t['requests']} requests, {t['bytes']} body bytes, "
           f"primary {t['primary']} backup {t['backup']} mixed {t['mixed']}, errors {t['errors']}, "
           f"reconnects {t['reconnects']}, worst gap {t['worst_gap_ms']} ms")


if __name__ == "__main__":
    sys.exit(main())
