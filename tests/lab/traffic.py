#!/usr/bin/env python3
"""Numbered TCP traffic for the migware failover lab (stdlib only, epoll, non-blocking).

  traffic.py server --mode push|reqresp --port 7000 --log DIR
  traffic.py client --mode push|reqresp --server 198.18.0.1:7000 --connections N \
                    --duration S --rate R --out FILE
  traffic.py churn --server 198.18.0.1:7000 --workers W --requests K --duration S --out FILE
                   (short connections, opened and closed in a loop; the server runs reqresp)

The stream.  Byte i of connection k is a pure function of (k, i): the stream is a sequence of
RECLEN-byte records; record r of connection k is

    K<k:05d>R<r:09d>:<crc32 of the 17 bytes before, 8 hex>......\\n      (32 bytes)

so every slice can be located and verified.  In reqresp mode each record is one request; the
reply to request r of connection k is

    A<k:05d>R<2r:010d>:<crc32 of the whole request line, 8 hex>.....\\n   (32 bytes)

The server writes every connection's received bytes, as they arrive, to DIR/<peer port>.bin
(unbuffered, one write per read) and a JSON sidecar DIR/<peer port>.json at close or exit.
A second connection from an already-used peer port gets DIR/<port>.<n>.bin.
"""

import argparse
import errno
import json
import os
import resource
import selectors
import signal
import socket
import sys
import time
import zlib

RECLEN = 32
REPLEN = 32


# ------------------------------------------------------------------ the stream
def record(k, r):
    head = b"K%05dR%09d:" % (k, r)
    return head + b"%08x" % zlib.crc32(head) + b"......\n"


def stream(k, start, end):
    """Bytes [start, end) of connection k's stream."""
    if end <= start:
        return b""
    r0, r1 = start // RECLEN, (end - 1) // RECLEN
    data = b"".join(record(k, r) for r in range(r0, r1 + 1))
    off = r0 * RECLEN
    return data[start - off:end - off]


def reply_for(line):
    """The server's reply to one request line (bytes ending in \\n), or None if malformed."""
    if len(line) != RECLEN or line[:1] != b"K" or line[6:7] != b"R" or line[16:17] != b":":
        return None
    try:
        k = int(line[1:6])
        r = int(line[7:16])
    except ValueError:
        return None
    return b"A%05dR%010d:%08x.....\n" % (k, 2 * r, zlib.crc32(line))


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def errname(e):
    if isinstance(e, OSError) and e.errno:
        return errno.errorcode.get(e.errno, str(e.errno))
    return type(e).__name__


def write_atomic(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


# ------------------------------------------------------------------ server
class SConn:
    __slots__ = ("sock", "peer", "local", "name", "f", "nbytes", "inbuf", "outbuf", "requests",
                 "replies", "bad", "closed_by_peer", "error", "t_open", "t_first", "t_last",
                 "eof")


class Server:
    def __init__(self, a):
        self.a = a
        self.sel = selectors.DefaultSelector()
        self.conns = {}
        self.fd_holders = {}
        self.names = set()
        self.stop = False
        self.accepted = 0

    def log_name(self, port):
        name = "%d" % port
        n = 1
        while name in self.names or os.path.exists(os.path.join(self.a.log, name + ".bin")):
            name = "%d.%d" % (port, n)
            n += 1
        self.names.add(name)
        return name

    def sidecar(self, c):
        write_atomic(os.path.join(self.a.log, c.name + ".json"), {
            "peer": "%s:%d" % c.peer, "local": "%s:%d" % c.local, "bytes": c.nbytes,
            "closed_by_peer": c.closed_by_peer, "error": c.error, "requests": c.requests,
            "replies": c.replies, "bad_requests": c.bad, "t_open": c.t_open,
            "t_first": c.t_first, "t_last": c.t_last, "t_close": time.time(),
        })

    def close(self, c):
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
        if not isinstance(c.f, str):
            os.close(c.f)
            self.fd_holders.pop(id(c), None)
        self.sidecar(c)
        self.conns.pop(id(c), None)

    def accept(self, lsock):
        for _ in range(128):        # bounded, so accepted sockets' data is served in between
            try:
                s, peer = lsock.accept()
            except BlockingIOError:
                return
            except OSError as e:
                print("server: accept: %s" % errname(e), file=sys.stderr)
                return
            s.setblocking(False)
            c = SConn()
            c.sock, c.peer, c.local = s, peer, s.getsockname()
            c.name = self.log_name(peer[1])
            path = os.path.join(self.a.log, c.name + ".bin")
            try:
                # fd budget: sockets + open log files + margin <= RLIMIT_NOFILE; past it, log
                # files are reopened per write (cheap on tmpfs), oldest holders first
                while self.fd_holders and len(self.conns) + len(self.fd_holders) + 256 > self.nofile:
                    old = self.fd_holders.pop(next(iter(self.fd_holders)))
                    os.close(old.f)
                    old.f = os.path.join(self.a.log, old.name + ".bin")
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
                if len(self.conns) + len(self.fd_holders) + 256 > self.nofile:
                    os.close(fd)
                    c.f = path
                else:
                    c.f = fd
                    self.fd_holders[id(c)] = c
            except OSError as e:
                print("server: cannot open %s: %s" % (path, errname(e)), file=sys.stderr)
                s.close()
                continue
            c.nbytes = c.requests = c.replies = c.bad = 0
            c.inbuf = b""
            c.outbuf = bytearray()
            c.closed_by_peer = False
            c.eof = False
            c.error = None
            c.t_open = time.time()
            c.t_first = c.t_last = None
            self.conns[id(c)] = c
            self.sel.register(s, selectors.EVENT_READ, c)
            self.accepted += 1

    def flush(self, c):
        while c.outbuf:
            try:
                n = c.sock.send(c.outbuf)
            except BlockingIOError:
                break
            except OSError as e:
                c.error = errname(e)
                return False
            del c.outbuf[:n]
        ev = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.outbuf else 0)
        if c.eof:
            ev &= ~selectors.EVENT_READ
        if ev:
            self.sel.modify(c.sock, ev, c)
        return True

    def readable(self, c):
        for _ in range(16):
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as e:
                c.error = errname(e)
                self.close(c)
                return
            if not data:
                c.closed_by_peer = True
                c.eof = True
                if not c.outbuf or not self.flush(c) or not c.outbuf:
                    self.close(c)
                return
            now = time.time()
            if c.t_first is None:
                c.t_first = now
            c.t_last = now
            if isinstance(c.f, str):
                fd = os.open(c.f, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
                os.write(fd, data)
                os.close(fd)
            else:
                os.write(c.f, data)      # unbuffered: on disk as it arrives
            c.nbytes += len(data)
            if self.a.mode == "reqresp":
                buf = c.inbuf + data
                start = 0
                while True:
                    nl = buf.find(b"\n", start)
                    if nl < 0:
                        break
                    line = buf[start:nl + 1]
                    start = nl + 1
                    c.requests += 1
                    rep = reply_for(line)
                    if rep is None:
                        c.bad += 1
                        rep = b"E" + b"?" * (REPLEN - 2) + b"\n"
                    c.outbuf += rep
                    c.replies += 1
                c.inbuf = buf[start:]
                if len(c.inbuf) > 4096:      # no newline in sight: not our protocol
                    c.error = "request line too long"
                    self.close(c)
                    return
                if c.outbuf and not self.flush(c):
                    self.close(c)
                    return
            if len(data) < 65536:
                return

    def run(self):
        a = self.a
        os.makedirs(a.log, exist_ok=True)
        self.nofile = raise_nofile()
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind((a.bind, a.port))
        lsock.listen(a.backlog)
        lsock.setblocking(False)
        self.sel.register(lsock, selectors.EVENT_READ, None)

        def on_term(signum, frame):
            self.stop = True
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        if a.ready_file:
            with open(a.ready_file, "w") as f:
                f.write("%d\n" % os.getpid())
        deadline = time.monotonic() + a.timeout
        while not self.stop and time.monotonic() < deadline:
            for key, ev in self.sel.select(0.2):
                if key.data is None:
                    self.accept(lsock)
                    continue
                c = key.data
                if id(c) not in self.conns:
                    continue
                if ev & selectors.EVENT_WRITE:
                    if not self.flush(c) or (c.eof and not c.outbuf):
                        self.close(c)
                        continue
                if ev & selectors.EVENT_READ:
                    self.readable(c)
        # SIGTERM / timeout: everything received is already on disk; write the sidecars
        for c in list(self.conns.values()):
            self.close(c)
        lsock.close()
        print("server: %d connections accepted, exiting (%s)"
              % (self.accepted, "signal" if self.stop else "timeout"), file=sys.stderr)
        return 0


# ------------------------------------------------------------------ client
class CConn:
    __slots__ = ("k", "sock", "port", "state", "sent", "records", "outbuf", "inbuf", "waiting",
                 "t_req", "requests", "replies_ok", "max_lat", "error", "survived", "wr_shut",
                 "t_connect", "registered")


class Client:
    def __init__(self, a):
        self.a = a
        self.sel = selectors.DefaultSelector()
        host, port = a.server.rsplit(":", 1)
        self.addr = (host, int(port))
        self.conns = []

    # -- helpers
    def fail(self, c, err):
        if c.error is None:
            c.error = err
        c.state = "dead"
        if c.registered:
            self.sel.unregister(c.sock)
            c.registered = False
        c.sock.close()

    def want(self, c):
        if c.state == "dead":
            return
        ev = 0
        if c.state != "done_rd":
            ev |= selectors.EVENT_READ
        if c.outbuf:
            ev |= selectors.EVENT_WRITE
        if ev and not c.registered:
            self.sel.register(c.sock, ev, c)
            c.registered = True
        elif ev:
            self.sel.modify(c.sock, ev, c)
        elif c.registered:
            self.sel.unregister(c.sock)
            c.registered = False

    def flush(self, c):
        while c.outbuf:
            try:
                n = c.sock.send(c.outbuf)
            except BlockingIOError:
                break
            except OSError as e:
                self.fail(c, errname(e))
                return False
            c.sent += n
            del c.outbuf[:n]
        return True

    # -- phase 1: connect N, at most --batch connects in flight, bounded in time
    def connect_all(self):
        a = self.a
        deadline = time.monotonic() + a.connect_timeout
        pending = {}
        nxt = 0
        while (nxt < a.connections or pending) and time.monotonic() < deadline:
            while nxt < a.connections and len(pending) < a.batch:
                c = CConn()
                c.k = nxt
                nxt += 1
                c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                c.sock.setblocking(False)
                c.port = None
                c.state = "connecting"
                c.sent = c.records = c.requests = c.replies_ok = 0
                c.outbuf = bytearray()
                c.inbuf = b""
                c.waiting = False
                c.t_req = 0.0
                c.max_lat = 0.0
                c.error = None
                c.survived = False
                c.wr_shut = False
                c.registered = False
                c.t_connect = time.monotonic()
                self.conns.append(c)
                if a.local_port_base:
                    # fixed local ports keep a second client's connections apart from the
                    # first one's (the kernel may reuse an ephemeral port towards another host)
                    try:
                        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                        c.sock.bind(("0.0.0.0", a.local_port_base + c.k))
                    except OSError as e:
                        self.fail(c, "bind: " + errname(e))
                        continue
                rc = c.sock.connect_ex(self.addr)
                if rc not in (0, errno.EINPROGRESS):
                    self.fail(c, "connect: " + errno.errorcode.get(rc, str(rc)))
                    continue
                self.sel.register(c.sock, selectors.EVENT_WRITE, c)
                c.registered = True
                pending[id(c)] = c
            for key, ev in self.sel.select(0.1):
                c = key.data
                if id(c) not in pending:
                    continue
                del pending[id(c)]
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    self.fail(c, "connect: " + errno.errorcode.get(err, str(err)))
                    continue
                c.port = c.sock.getsockname()[1]
                c.state = "open"
                c.t_connect = time.monotonic() - c.t_connect
                self.sel.modify(c.sock, selectors.EVENT_READ, c)
        for c in pending.values():
            self.fail(c, "connect: timeout")
        while nxt < a.connections:       # never started: connect phase over its time bound
            c = CConn()
            c.k, c.sock, c.port, c.registered = nxt, socket.socket(), None, False
            c.sent = c.records = c.requests = c.replies_ok = 0
            c.max_lat, c.survived, c.error, c.outbuf = 0.0, False, None, bytearray()
            self.conns.append(c)
            self.fail(c, "connect: not attempted (connect phase timed out)")
            nxt += 1

    # -- reading
    def readable(self, c, now):
        try:
            data = c.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as e:
            self.fail(c, errname(e))
            return
        if not data:
            if c.wr_shut and not c.outbuf and not c.waiting:
                c.state = "done_rd"          # orderly close completed
                c.survived = True
                self.sel.unregister(c.sock)
                c.registered = False
                c.sock.close()
                c.state = "dead"
            else:
                self.fail(c, "server closed the connection early (FIN)")
            return
        if self.a.mode == "push":
            self.fail(c, "unexpected %d bytes from a push server" % len(data))
            return
        buf = c.inbuf + data
        while len(buf) >= REPLEN:
            line, buf = buf[:REPLEN], buf[REPLEN:]
            if not c.waiting:
                self.fail(c, "unsolicited reply %r" % line)
                return
            exp = reply_for(record(c.k, c.requests - 1))
            if line != exp:
                self.fail(c, "wrong reply to request %d: got %r expected %r"
                          % (c.requests - 1, line, exp))
                return
            c.replies_ok += 1
            c.waiting = False
            lat = now - c.t_req
            if lat > c.max_lat:
                c.max_lat = lat
        c.inbuf = buf

    def issue(self, c, now):
        rec = record(c.k, c.records)
        c.records += 1
        c.outbuf += rec
        if self.a.mode == "reqresp":
            c.requests += 1
            c.waiting = True
            c.t_req = now
        if self.flush(c):
            self.want(c)

    def poll(self, timeout, now_fn=time.monotonic):
        for key, ev in self.sel.select(timeout):
            c = key.data
            if c.state == "dead":
                continue
            if ev & selectors.EVENT_WRITE:
                if not self.flush(c):
                    continue
                self.maybe_shut(c)
                self.want(c)
            if ev & selectors.EVENT_READ and c.state != "dead":
                self.readable(c, now_fn())
                if c.state != "dead":
                    self.maybe_shut(c)

    def maybe_shut(self, c):
        if self.closing and not c.wr_shut and not c.outbuf and not c.waiting and c.state == "open":
            try:
                c.sock.shutdown(socket.SHUT_WR)
            except OSError as e:
                self.fail(c, "shutdown: " + errname(e))
                return
            c.wr_shut = True

    def run(self):
        a = self.a
        raise_nofile()
        self.closing = False
        t_c0 = time.monotonic()
        self.connect_all()
        t_conn = time.monotonic() - t_c0
        live = [c for c in self.conns if c.state == "open"]
        print("client: %d/%d connected in %.2fs" % (len(live), a.connections, t_conn),
              file=sys.stderr)
        t0 = time.monotonic()
        t0_wall = time.time()
        if a.start_file:
            with open(a.start_file, "w") as f:
                f.write("%.6f %d\n" % (t0_wall, time.monotonic_ns()))
        # -- phase 2: traffic at a bounded total rate, round-robin over the connections
        issued = 0
        rr = 0
        n = len(self.conns)
        next_check = t0 + 0.5
        end = t0 + a.duration
        while True:
            now = time.monotonic()
            if now >= end:
                break
            due = int(a.rate * (now - t0)) - issued
            if due > 0 and n:
                budget = min(due, a.rate)          # never burst more than one second's worth
                scanned = 0
                while budget > 0 and scanned < n:
                    c = self.conns[rr]
                    rr = (rr + 1) % n
                    scanned += 1
                    if c.state != "open" or c.waiting:
                        continue
                    if a.mode == "push" and len(c.outbuf) > a.max_backlog:
                        continue                 # socket buffer full: don't queue without bound
                    self.issue(c, now)
                    budget -= 1
                    issued += 1
                    scanned = 0
                if budget > 0:
                    issued += budget             # tokens nobody could use are dropped
            if now >= next_check:
                next_check = now + 0.5
                for c in self.conns:
                    if c.state == "open" and c.waiting and now - c.t_req > a.reply_timeout:
                        self.fail(c, "timeout: no reply to request %d after %.1fs"
                                  % (c.requests - 1, now - c.t_req))
            self.poll(min(0.01, max(0.0, end - now)))
        # -- phase 3: orderly close, bounded
        self.closing = True
        t_close = time.monotonic()
        deadline = t_close + a.close_timeout
        for c in self.conns:
            if c.state == "open":
                self.maybe_shut(c)
                self.want(c)
        while time.monotonic() < deadline:
            if not any(c.state != "dead" for c in self.conns):
                break
            self.poll(0.05)
        for c in self.conns:
            if c.state != "dead":
                if c.outbuf:
                    why = "%d bytes never accepted by the socket" % len(c.outbuf)
                elif c.waiting:
                    why = "no reply to request %d" % (c.requests - 1)
                else:
                    why = "no orderly close from the server (FIN never came)"
                self.fail(c, "timeout after %.1fs: %s" % (a.close_timeout, why))
        t_closed = time.monotonic() - t_close
        errs = [c for c in self.conns if c.error]
        out = {
            "mode": a.mode, "server": a.server, "connections": a.connections,
            "duration": a.duration, "rate": a.rate, "reclen": RECLEN,
            "t_start_wall": t0_wall, "connect_s": t_conn, "close_s": t_closed,
            "records": sum(c.records for c in self.conns), "errors": len(errs),
            "conns": [{
                "k": c.k, "port": c.port, "sent": c.sent, "records": c.records,
                "requests": c.requests, "replies_ok": c.replies_ok,
                "max_reply_ms": round(c.max_lat * 1000, 3), "error": c.error,
                "survived": bool(c.survived and c.error is None),
            } for c in self.conns],
        }
        write_atomic(a.out, out)
        print("client: %d connections, %d bytes sent, %d errors, close phase %.2fs"
              % (len(self.conns), sum(c.sent for c in self.conns), len(errs), t_closed),
              file=sys.stderr)
        for c in errs[:5]:
            print("client: conn %d port %s: %s" % (c.k, c.port, c.error), file=sys.stderr)
        return 1 if errs or not self.conns else 0


# ------------------------------------------------------------------ churn client
class Attempt:
    __slots__ = ("k", "w", "sock", "port", "state", "sent", "requests", "replies_ok", "inbuf",
                 "t_start", "t_start_mono", "t_connected", "t_end", "deadline", "t_req",
                 "max_lat", "error", "fin", "registered")


class Churn:
    """W workers, each in a loop for the duration: connect, K request/reply pairs (the reqresp
    protocol), shutdown(SHUT_WR), wait for the server's FIN, close; then the next connection.
    Every attempt is recorded with its outcome.  Attempt k sends stream(k), so every
    connection's bytes are distinct.  Bounded: no new attempt after --duration or
    --max-attempts; every phase has its own timeout."""

    def __init__(self, a):
        self.a = a
        self.sel = selectors.DefaultSelector()
        host, port = a.server.rsplit(":", 1)
        self.addr = (host, int(port))
        self.attempts = []
        self.live = {}
        self.next_start = {}      # worker -> monotonic time of its next connect

    def finish(self, at, err=None):
        if err and at.error is None:
            at.error = err
        at.state = "done"
        at.t_end = time.time()
        if at.registered:
            try:
                self.sel.unregister(at.sock)
            except (KeyError, ValueError):
                pass
            at.registered = False
        at.sock.close()
        self.live.pop(id(at), None)
        self.next_start[at.w] = time.monotonic() + self.a.gap

    def start(self, w):
        a = self.a
        at = Attempt()
        at.k, at.w = len(self.attempts), w
        at.port, at.state, at.error, at.fin, at.registered = None, "connecting", None, False, False
        at.sent = at.requests = at.replies_ok = 0
        at.inbuf = b""
        at.max_lat = 0.0
        at.t_connected = at.t_end = None
        at.t_start = time.time()
        at.t_start_mono = time.monotonic()
        at.deadline = at.t_start_mono + a.connect_timeout
        self.attempts.append(at)
        self.live[id(at)] = at
        at.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        at.sock.setblocking(False)
        rc = at.sock.connect_ex(self.addr)
        try:
            at.port = at.sock.getsockname()[1] or None   # bound by connect(), before the SYN-ACK
        except OSError:
            pass
        if rc not in (0, errno.EINPROGRESS):
            self.finish(at, "connect: " + errno.errorcode.get(rc, str(rc)))
            return
        self.sel.register(at.sock, selectors.EVENT_WRITE, at)
        at.registered = True

    def request(self, at, now):
        rec = record(at.k, at.requests)
        try:
            n = at.sock.send(rec)       # 32 bytes into an empty send buffer: all or error
        except OSError as e:
            self.finish(at, "send: " + errname(e))
            return
        if n != len(rec):
            self.finish(at, "send: short write %d/%d" % (n, len(rec)))
            return
        at.sent += n
        at.requests += 1
        at.t_req = now
        at.deadline = now + self.a.reply_timeout

    def event(self, at, ev, now):
        a = self.a
        if at.state == "connecting":
            err = at.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.finish(at, "connect: " + errno.errorcode.get(err, str(err)))
                return
            at.port = at.sock.getsockname()[1]
            at.t_connected = time.time()
            at.state = "open"
            self.sel.modify(at.sock, selectors.EVENT_READ, at)
            self.request(at, now)
            return
        try:
            data = at.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as e:
            self.finish(at, "%s (%s, %d/%d replies)" % (errname(e), at.state, at.replies_ok,
                                                        a.requests))
            return
        if not data:
            if at.state == "closing":
                at.fin = True
                self.finish(at)
            else:
                self.finish(at, "server closed the connection early (FIN) after %d/%d replies"
                            % (at.replies_ok, a.requests))
            return
        if at.state == "closing":
            self.finish(at, "unexpected %d bytes after the last reply" % len(data))
            return
        buf = at.inbuf + data
        while len(buf) >= REPLEN:
            line, buf = buf[:REPLEN], buf[REPLEN:]
            if at.replies_ok >= at.requests:
                self.finish(at, "unsolicited reply %r" % line)
                return
            exp = reply_for(record(at.k, at.requests - 1))
            if line != exp:
                self.finish(at, "wrong reply to request %d: got %r expected %r"
                            % (at.requests - 1, line, exp))
                return
            at.replies_ok += 1
            at.max_lat = max(at.max_lat, now - at.t_req)
            if at.requests < a.requests:
                self.request(at, now)
                if at.state == "done":
                    return
            else:
                try:
                    at.sock.shutdown(socket.SHUT_WR)
                except OSError as e:
                    self.finish(at, "shutdown: " + errname(e))
                    return
                at.state = "closing"
                at.deadline = now + a.close_timeout
        at.inbuf = buf

    def expire(self, now):
        a = self.a
        for at in list(self.live.values()):
            if now < at.deadline:
                continue
            if at.state == "connecting":
                self.finish(at, "connect: timeout after %.1fs" % a.connect_timeout)
            elif at.state == "open":
                self.finish(at, "timeout: no reply to request %d after %.1fs"
                            % (at.requests - 1, now - at.t_req))
            else:
                self.finish(at, "timeout after %.1fs: no orderly close from the server "
                                "(FIN never came; all %d replies verified)"
                            % (a.close_timeout, at.replies_ok))

    def run(self):
        a = self.a
        raise_nofile()
        t0 = time.monotonic()
        t0_wall = time.time()
        end = t0 + a.duration
        hard_end = end + a.connect_timeout + a.requests * a.reply_timeout + a.close_timeout + 5
        if a.start_file:
            with open(a.start_file, "w") as f:
                f.write("%.6f %d\n" % (t0_wall, time.monotonic_ns()))
        for w in range(a.workers):
            self.next_start[w] = t0 + w * a.stagger
        busy = set()
        next_check = t0
        while True:
            now = time.monotonic()
            if now >= hard_end:
                break
            if now < end:
                busy = {at.w for at in self.live.values()}
                for w in range(a.workers):
                    if (w not in busy and now >= self.next_start[w]
                            and len(self.attempts) < a.max_attempts):
                        self.start(w)
            elif not self.live:
                break
            for key, ev in self.sel.select(0.005 if now < end else 0.05):
                at = key.data
                if at.state != "done":
                    self.event(at, ev, time.monotonic())
            if now >= next_check:
                next_check = now + 0.05
                self.expire(time.monotonic())
        for at in list(self.live.values()):
            self.finish(at, "not finished when the client's own bound ran out")
        errs = [at for at in self.attempts if at.error]
        out = {
            "mode": "churn", "server": a.server, "workers": a.workers, "requests": a.requests,
            "duration": a.duration, "gap": a.gap, "reclen": RECLEN, "t_start_wall": t0_wall,
            "t_end_wall": time.time(), "attempts": len(self.attempts), "errors": len(errs),
            "connect_timeout": a.connect_timeout, "reply_timeout": a.reply_timeout,
            "close_timeout": a.close_timeout,
            "conns": [{
                "k": at.k, "worker": at.w, "port": at.port, "sent": at.sent,
                "requests": at.requests, "replies_ok": at.replies_ok,
                "max_reply_ms": round(at.max_lat * 1000, 3), "error": at.error,
                "t_start": at.t_start, "t_connected": at.t_connected, "t_end": at.t_end,
                "fin": at.fin,
                "survived": bool(at.error is None and at.fin and at.replies_ok == a.requests),
            } for at in self.attempts],
        }
        write_atomic(a.out, out)
        print("churn: %d connection attempts by %d workers in %.1fs, %d errors"
              % (len(self.attempts), a.workers, time.monotonic() - t0, len(errs)),
              file=sys.stderr)
        for at in errs[:5]:
            print("churn: conn %d port %s: %s" % (at.k, at.port, at.error), file=sys.stderr)
        return 1 if errs or not self.attempts else 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server")
    s.add_argument("--mode", choices=("push", "reqresp"), required=True)
    s.add_argument("--bind", default="0.0.0.0")
    s.add_argument("--port", type=int, default=7000)
    s.add_argument("--log", required=True, help="directory for <peer port>.bin/.json")
    s.add_argument("--backlog", type=int, default=16384)
    s.add_argument("--timeout", type=float, default=600, help="exit after this many seconds")
    s.add_argument("--ready-file")
    c = sub.add_parser("client")
    c.add_argument("--mode", choices=("push", "reqresp"), required=True)
    c.add_argument("--server", default="198.18.0.1:7000")
    c.add_argument("--connections", type=int, default=1)
    c.add_argument("--duration", type=float, default=5.0)
    c.add_argument("--rate", type=int, default=100, help="records/s across all connections")
    c.add_argument("--out", required=True)
    c.add_argument("--batch", type=int, default=256, help="connects in flight at once")
    c.add_argument("--connect-timeout", type=float, default=20.0)
    c.add_argument("--reply-timeout", type=float, default=5.0)
    c.add_argument("--close-timeout", type=float, default=6.0)
    c.add_argument("--max-backlog", type=int, default=1 << 20,
                   help="push: max bytes queued in user space per connection")
    c.add_argument("--start-file", help="written when all connections are up and traffic starts")
    c.add_argument("--local-port-base", type=int, default=0,
                   help="bind connection k to local port BASE+k (default: ephemeral ports)")
    h = sub.add_parser("churn", help="W workers opening, using and closing short connections")
    h.add_argument("--server", default="198.18.0.1:7000")
    h.add_argument("--workers", type=int, default=50)
    h.add_argument("--requests", type=int, default=4, help="request/reply pairs per connection")
    h.add_argument("--duration", type=float, default=8.0, help="no new connection after this")
    h.add_argument("--gap", type=float, default=0.0, help="a worker's pause between connections (s)")
    h.add_argument("--stagger", type=float, default=0.002, help="worker w starts at w*STAGGER s")
    h.add_argument("--max-attempts", type=int, default=30000)
    h.add_argument("--connect-timeout", type=float, default=8.0)
    h.add_argument("--reply-timeout", type=float, default=4.0)
    h.add_argument("--close-timeout", type=float, default=4.0,
                   help="after the last reply and shutdown(SHUT_WR): wait this long for the server's FIN")
    h.add_argument("--out", required=True)
    h.add_argument("--start-file")
    a = p.parse_args(argv)
    if a.cmd == "churn":
        if not (1 <= a.workers <= 1000 and 1 <= a.requests <= 1000 and 0 < a.duration <= 600
                and 1 <= a.max_attempts <= 99999 and a.gap >= 0):
            p.error("churn: bad --workers/--requests/--duration/--max-attempts/--gap")
        return Churn(a).run()
    if a.cmd == "server":
        return Server(a).run()
    if a.connections < 1 or a.connections > 60000 or a.rate < 1 or a.duration <= 0:
        p.error("bad --connections/--rate/--duration")
    if a.duration > 3600:
        p.error("--duration is bounded to 3600 s")
    if a.local_port_base and not (1024 <= a.local_port_base
                                  and a.local_port_base + a.connections <= 65536):
        p.error("--local-port-base: BASE..BASE+connections must lie in 1024..65535")
    return Client(a).run()


if __name__ == "__main__":
    sys.exit(main())
