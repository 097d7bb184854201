#!/usr/bin/env python3
"""Redis clients for the full-replay lab test (issue 13), stdlib only (a small RESP client).

    redis_clients.py run --server 198.18.0.1:6379 --clients 10 --duration 8 --out FILE.json
                         [--interval 0.02] [--timeout 5] [--sample 2] [--check-every 50]
                         [--pull-file FILE] [--start-file FILE]
    redis_clients.py verify --server 127.0.0.1:6379 --report FILE.json [--out FILE.json]

run: each client is one thread with ONE connection for its whole life. Each round it SETs its
next key, `c<client>:k<n>`, to a value made from the client id and n (value_for below), reads
the newest key back, reads --sample random earlier keys back, and every --check-every rounds
reads back every key it has written so far in one MGET. It sends one command at a time and
waits for its reply (--timeout each: a stall is an error). After --duration it reads back all
its keys once more, then closes. A wrong value is counted and the client carries on; an
error (reset, EOF, timeout, a protocol or server error) ends that client (no reconnect: the
point is one connection carried across the failure).

The summary (JSON): per client the keys written, the reads done and how many were wrong
(with the first few: key, expected, got, when), errors, the worst reply latency, and the reads
before and after the pull (--pull-file: the pull's CLOCK_MONOTONIC ns, before and after).

verify: reads, on one connection, every key every client of the report wrote (MGET, in
batches) and counts the ones missing or wrong, plus DBSIZE; prints a JSON object. The test
runs it against the backup's redis directly, from the backup's namespace, after the run: the
keys written before the pull can only be there if migware replayed them.

Exit status 0 when the run or the check finished (the caller judges), 2 on bad arguments.
"""

import argparse
import hashlib
import json
import random
import socket
import sys
import threading
import time

from lab_clients import finish, now_ns, parse_server, read_pull, run_threads, since_pull


def key_for(client, n):
    return f"c{client}:k{n}"


def value_for(client, n):
    h = hashlib.sha256(f"{client}/{n}".encode()).hexdigest()[:24]
    return f"v{client}-{n}-{h}"


class RespError(Exception):
    def __init__(self, kind, detail):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind        # reset, eof, timeout, protocol, server_error, other
        self.detail = detail


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class Conn:
    def __init__(self, host, port, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = bytearray()

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise RespError("timeout", f"no reply within {self.timeout}s")
        self.sock.settimeout(left)
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            raise RespError("timeout", f"no reply within {self.timeout}s")
        except ConnectionResetError as e:
            raise RespError("reset", str(e))
        except OSError as e:
            raise RespError("other", str(e))
        if not d:
            raise RespError("eof", "the server closed the connection")
        self.buf += d

    def _line(self, deadline):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            self._fill(deadline)

    def _exact(self, n, deadline):
        while len(self.buf) < n + 2:
            self._fill(deadline)
        data = bytes(self.buf[:n])
        if self.buf[n:n + 2] != b"\r\n":
            raise RespError("protocol", "bulk string not followed by CRLF")
        del self.buf[:n + 2]
        return data

    def _reply(self, deadline):
        line = self._line(deadline)
        if not line:
            raise RespError("protocol", "empty line")
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RespError("server_error", rest.decode(errors="replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n, deadline).decode(errors="replace")
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply(deadline) for _ in range(n)]
        raise RespError("protocol", f"unexpected reply type {line[:40]!r}")

    def command(self, *args):
        try:
            self.sock.sendall(encode(*args))
        except ConnectionResetError as e:
            raise RespError("reset", f"send: {e}")
        except OSError as e:
            raise RespError("other", f"send: {e}")
        r = self._reply(time.monotonic() + self.timeout)
        if isinstance(r, RespError):
            raise r
        return r

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Client(threading.Thread):
    MAX_WRONG_KEPT = 10

    def __init__(self, idx, args, barrier):
        super().__init__(name=f"redis{idx}", daemon=True)
        self.idx = idx
        self.args = args
        self.barrier = barrier
        self.conn = None
        self.written = 0           # keys SET and acknowledged with +OK
        self.reads = []            # (t_ns, ok) per key read
        self.wrong = []            # the first few wrong reads
        self.n_wrong = 0
        self.errors = []
        self.worst_ns = 0
        self.worst_at = None
        self.commands = 0
        self.rng = random.Random(idx)
        self.final_check = None    # keys checked and wrong in the last MGET, after --duration

    def timed(self, *cmd):
        t = now_ns()
        r = self.conn.command(*cmd)
        d = now_ns() - t
        self.commands += 1
        if d > self.worst_ns:
            self.worst_ns, self.worst_at = d, t
        return r, t

    def check_read(self, n, got, t):
        want = value_for(self.idx, n)
        ok = got == want
        self.reads.append((t, ok))
        if not ok:
            self.n_wrong += 1
            if len(self.wrong) < self.MAX_WRONG_KEPT:
                self.wrong.append({"key": key_for(self.idx, n), "expected": want, "got": got, "t": t})
        return ok

    def check_all(self):
        if self.written == 0:
            return 0, 0
        keys = [key_for(self.idx, n) for n in range(self.written)]
        vals, t = self.timed("MGET", *keys)
        if not isinstance(vals, list) or len(vals) != len(keys):
            raise RespError("protocol", f"MGET of {len(keys)} keys answered {str(vals)[:80]}")
        bad = sum(0 if self.check_read(n, v, t) else 1 for n, v in enumerate(vals))
        return len(keys), bad

    def run(self):
        a = self.args
        try:
            self.barrier.wait(timeout=10)
        except threading.BrokenBarrierError:
            pass
        deadline = a.t0_ns + int(a.duration * 1e9)
        rounds = 0
        try:
            while now_ns() < deadline:
                n = self.written
                r, _ = self.timed("SET", key_for(self.idx, n), value_for(self.idx, n))
                if r != "OK":
                    raise RespError("protocol", f"SET answered {r!r}")
                self.written += 1
                got, t = self.timed("GET", key_for(self.idx, n))
                self.check_read(n, got, t)
                for _ in range(a.sample if n > 0 else 0):
                    m = self.rng.randrange(n)
                    got, t = self.timed("GET", key_for(self.idx, m))
                    self.check_read(m, got, t)
                rounds += 1
                if a.check_every and rounds % a.check_every == 0:
                    self.check_all()
                if a.interval:
                    time.sleep(a.interval)
            checked, bad = self.check_all()
            self.final_check = {"keys": checked, "wrong": bad}
        except RespError as e:
            self.errors.append({"kind": e.kind, "detail": e.detail, "t": now_ns(),
                                "written": self.written})
        finally:
            if self.conn:
                self.conn.close()


def run(args):
    host, port = parse_server(args.server)
    barrier = threading.Barrier(args.clients)
    clients = [Client(i, args, barrier) for i in range(args.clients)]
    for c in clients:
        try:
            c.conn = Conn(host, port, args.timeout)
        except OSError as e:
            print(f"redis_clients: client {c.idx} cannot connect: {e}", file=sys.stderr)
            return 1
    stuck = run_threads(clients, args, args.duration + 3 * args.timeout + 5,
                        f"redis_clients: {args.clients} clients on {args.server}, {args.duration}s, "
                        f"interval {args.interval}s, timeout {args.timeout}s")
    pull_ns, pull_end_ns = read_pull(args.pull_file)
    per = []
    tot = {"written": 0, "reads": 0, "reads_before_pull": 0, "reads_after_pull": 0,
           "wrong": 0, "wrong_before_pull": 0, "wrong_after_pull": 0, "errors": 0,
           "commands": 0, "worst_ms": 0.0, "final_checked": 0, "final_wrong": 0,
           "clients_without_final_check": 0}
    for c in clients:
        rb = ra = wb = wa = 0
        for t, ok in c.reads:
            if pull_ns is not None and t > pull_end_ns:
                ra += 1
                wa += 0 if ok else 1
            else:
                rb += 1
                wb += 0 if ok else 1
        errors = since_pull(c.errors, pull_ns)
        wrong = since_pull(c.wrong, pull_ns)
        per.append({"client": c.idx, "written": c.written, "reads": len(c.reads),
                    "reads_before_pull": rb, "reads_after_pull": ra, "wrong": c.n_wrong,
                    "wrong_before_pull": wb, "wrong_after_pull": wa, "wrong_first": wrong,
                    "errors": errors, "commands": c.commands,
                    "worst_ms": round(c.worst_ns / 1e6, 1),
                    "worst_since_pull_ms": (round((c.worst_at - pull_ns) / 1e6, 1)
                                            if pull_ns is not None and c.worst_at else None),
                    "final_check": c.final_check, "stuck": c.is_alive()})
        tot["written"] += c.written
        tot["reads"] += len(c.reads)
        tot["reads_before_pull"] += rb
        tot["reads_after_pull"] += ra
        tot["wrong"] += c.n_wrong
        tot["wrong_before_pull"] += wb
        tot["wrong_after_pull"] += wa
        tot["errors"] += len(c.errors)
        tot["commands"] += c.commands
        tot["worst_ms"] = max(tot["worst_ms"], round(c.worst_ns / 1e6, 1))
        if c.final_check:
            tot["final_checked"] += c.final_check["keys"]
            tot["final_wrong"] += c.final_check["wrong"]
        else:
            tot["clients_without_final_check"] += 1
    summary = {"pull_ns": pull_ns, "pull_end_ns": pull_end_ns, "t0_ns": args.t0_ns,
               "duration_s": args.duration, "clients": per, "total": tot,
               "stuck_threads": stuck}
    finish(args.out, summary,
           f"redis_clients: {tot['written']} keys written, {tot['reads']} reads "
           f"({tot['wrong']} wrong), {tot['errors']} errors, {tot['commands']} commands, "
           f"worst reply {tot['worst_ms']} ms")


def verify(args):
    host, port = parse_server(args.server)
    report = json.load(open(args.report))
    conn = Conn(host, port, args.timeout)
    out = {"clients": [], "keys": 0, "missing": 0, "wrong": 0}
    for c in report["clients"]:
        idx, n = c["client"], c["written"]
        missing = wrong = 0
        first = []
        for lo in range(0, n, 500):
            ns = range(lo, min(n, lo + 500))
            vals = conn.command("MGET", *[key_for(idx, i) for i in ns])
            for i, v in zip(ns, vals):
                if v is None:
                    missing += 1
                elif v != value_for(idx, i):
                    wrong += 1
                else:
                    continue
                if len(first) < 5:
                    first.append({"key": key_for(idx, i), "expected": value_for(idx, i), "got": v})
        out["clients"].append({"client": idx, "keys": n, "missing": missing, "wrong": wrong,
                               "first_bad": first})
        out["keys"] += n
        out["missing"] += missing
        out["wrong"] += wrong
    out["dbsize"] = conn.command("DBSIZE")
    conn.close()
    text = json.dumps(out)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(text)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--server", default="198.18.0.1:6379")
    r.add_argument("--clients", type=int, default=10)
    r.add_argument("--duration", type=float, default=8.0)
    r.add_argument("--interval", type=float, default=0.02)
    r.add_argument("--timeout", type=float, default=5.0)
    r.add_argument("--sample", type=int, default=2)
    r.add_argument("--check-every", type=int, default=50)
    r.add_argument("--pull-file")
    r.add_argument("--start-file")
    r.add_argument("--out", required=True)
    v = sub.add_parser("verify")
    v.add_argument("--server", default="127.0.0.1:6379")
    v.add_argument("--report", required=True)
    v.add_argument("--timeout", type=float, default=5.0)
    v.add_argument("--out")
    args = ap.parse_args()
    if args.cmd == "run":
        if not (1 <= args.clients <= 200 and 0 < args.duration <= 120 and 0 < args.timeout <= 60
                and 0 <= args.interval <= 1 and 0 <= args.sample <= 100):
            print("redis_clients: --clients 1..200, --duration 0..120, --timeout 0..60, "
                  "--interval 0..1, --sample 0..100", file=sys.stderr)
            return 2
        return run(args)
    return verify(args)


if __name__ == "__main__":
    sys.exit(main())
