#!/usr/bin/env python3
"""Bulk push through the proxy (tests/lab/bulk_proxy.sh): a sink and a client.

  bulk.py sink --port P --out FILE [--seconds S]
      Accepts connections on P (every address) and reads them to EOF.  Each connection's
      bytes must continue the client's pattern (byte k of the stream is k % 251, from
      whatever offset the connection starts at: a twin starts where the primary left off);
      a byte that breaks it is a gap or a duplicate.  On SIGTERM (or after S seconds) writes
      FILE: one JSON object per connection (peer, bytes, first/last byte times in
      CLOCK_MONOTONIC ns, pattern breaks).

  bulk.py client --server IP:P --connections N --blast-file F --seconds S --out FILE
      Opens N connections, sends 100 bytes on each every 20 ms (a stream that keeps flowing,
      so the failover happens mid-stream) until F exists, then sends as fast as the socket
      takes for S seconds, shuts each connection down for writing and waits for the sink's
      EOF.  FILE: bytes sent per connection, the blast's start/end, errors.
The pattern is deterministic; the client's and the sink's counts are compared by the script.
Every loop is bounded by its time; stdlib only.
"""

import argparse
import json
import os
import selectors
import signal
import socket
import sys
import time

PATTERN = bytes(k % 251 for k in range(251 * 256))  # whole periods: any slice continues


def now_ns():
    return time.monotonic_ns()


def sink(args):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", args.port))
    ls.listen(128)
    ls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ)
    conns = {}
    done = []
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    deadline = time.monotonic() + args.seconds
    while not stop[0] and time.monotonic() < deadline:
        for key, _ in sel.select(0.2):
            if key.fileobj is ls:
                try:
                    c, peer = ls.accept()
                except BlockingIOError:
                    continue
                c.setblocking(False)
                conns[c] = {"peer": "%s:%d" % peer, "bytes": 0, "first_ns": None, "last_ns": None,
                            "next": None, "breaks": 0}
                sel.register(c, selectors.EVENT_READ)
                continue
            c = key.fileobj
            st = conns[c]
            try:
                data = c.recv(1 << 20)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(c)
                c.close()
                done.append(conns.pop(c))
                continue
            t = now_ns()
            if st["first_ns"] is None:
                st["first_ns"] = t
                st["next"] = data[0]
            st["last_ns"] = t
            # continuity: the expected run from st["next"], compared in one slice
            n = len(data)
            off = st["next"]
            pos = 0
            while pos < n:
                take = min(n - pos, len(PATTERN) - 251)
                if data[pos:pos + take] == PATTERN[off:off + take]:
                    pos += take
                    off = (off + take) % 251
                    continue
                # a break: count it, resynchronise on the byte that broke the run
                st["breaks"] += 1
                i = next(i for i in range(take) if data[pos + i] != PATTERN[off + i])
                pos += i
                off = data[pos]
            st["next"] = off
            st["bytes"] += n
    for c, st in list(conns.items()):
        done.append(st)
        c.close()
    with open(args.out + ".tmp", "w") as f:
        json.dump(done, f)
    os.rename(args.out + ".tmp", args.out)
    return 0


def client(args):
    host, port = args.server.rsplit(":", 1)
    socks = []
    for _ in range(args.connections):
        s = socket.create_connection((host, int(port)), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(s)
    sent = [0] * len(socks)
    errors = []
    end_trickle = time.monotonic() + args.max_wait
    # the trickle: 100 bytes per connection every 20 ms until the blast file appears
    while not os.path.exists(args.blast_file):
        if time.monotonic() > end_trickle:
            errors.append("the blast file never appeared")
            break
        for i, s in enumerate(socks):
            chunk = PATTERN[sent[i] % 251:sent[i] % 251 + 100]
            try:
                s.sendall(chunk)
                sent[i] += len(chunk)
            except OSError as e:
                errors.append("trickle conn %d: %s" % (i, e))
        time.sleep(0.02)
    blast_start = now_ns()
    before_blast = sum(sent)
    for s in socks:
        s.setblocking(False)
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        sel.register(s, selectors.EVENT_WRITE, i)
    stop_at = time.monotonic() + args.seconds
    while time.monotonic() < stop_at and not errors:
        for key, _ in sel.select(0.2):
            i = key.data
            off = sent[i] % 251
            try:
                n = key.fileobj.send(PATTERN[off:off + 65536])
                sent[i] += n
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as e:
                errors.append("blast conn %d: %s" % (i, e))
                sel.unregister(key.fileobj)
    blast_end = now_ns()
    for s in socks:
        s.setblocking(True)
        s.settimeout(args.drain_timeout)
        try:
            s.shutdown(socket.SHUT_WR)
            while s.recv(4096):
                pass
        except OSError as e:
            errors.append("drain: %s" % e)
        s.close()
    drained = now_ns()
    with open(args.out + ".tmp", "w") as f:
        json.dump({"sent": sent, "sent_before_blast": before_blast, "blast_start_ns": blast_start, "blast_end_ns": blast_end,
                   "drained_ns": drained, "errors": errors}, f)
    os.rename(args.out + ".tmp", args.out)
    return 1 if errors else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sink")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--seconds", type=float, default=120)
    c = sub.add_parser("client")
    c.add_argument("--server", required=True)
    c.add_argument("--connections", type=int, default=1)
    c.add_argument("--blast-file", required=True)
    c.add_argument("--seconds", type=float, default=3)
    c.add_argument("--max-wait", type=float, default=30)
    c.add_argument("--drain-timeout", type=float, default=20)
    c.add_argument("--out", required=True)
    a = ap.parse_args()
    if not 1 <= getattr(a, "connections", 1) <= 64:
        print("bulk: --connections 1..64", file=sys.stderr)
        return 2
    return sink(a) if a.cmd == "sink" else client(a)


if __name__ == "__main__":
    sys.exit(main())
