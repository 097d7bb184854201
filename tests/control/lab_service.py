#!/usr/bin/env python3
"""Tiny TCP service and client for the control-protocol lab (stdlib only, bounded).

  lab_service.py server --port 7000 --ready-file F --timeout S
      line echo server (every byte received is sent back)
  lab_service.py client --server IP:PORT --connections N --active K --ready-file F --timeout S
      opens N connections, writes F ("N\\n") once all are established, then every 0.2 s sends
      one line on each of the first K connections and reads the echoes, until --timeout

Both exit 0 on SIGTERM or when --timeout expires.
"""

import argparse
import errno
import os
import selectors
import signal
import socket
import sys
import time

STOP = False


def on_term(_sig, _frm):
    global STOP
    STOP = True


def write_ready(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def server(a):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", a.port))
    ls.listen(4096)
    ls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ, None)
    write_ready(a.ready_file, "listening\n")
    deadline = time.monotonic() + a.timeout
    while not STOP and time.monotonic() < deadline:
        for key, _ in sel.select(0.2):
            if key.data is None:
                for _ in range(256):
                    try:
                        c, _addr = ls.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    c.setblocking(False)
                    sel.register(c, selectors.EVENT_READ, "c")
                continue
            c = key.fileobj
            try:
                data = c.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(c)
                c.close()
                continue
            try:
                c.send(data)  # small lines: a short write is not worth handling here
            except OSError:
                pass
    return 0


def client(a):
    host, port = a.server.rsplit(":", 1)
    port = int(port)
    sel = selectors.DefaultSelector()
    pending, up = set(), []
    deadline = time.monotonic() + a.timeout
    connect_deadline = time.monotonic() + a.connect_timeout
    todo = a.connections
    while (todo or pending) and not STOP and time.monotonic() < connect_deadline:
        while todo and len(pending) < 128:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            rc = s.connect_ex((host, port))
            if rc not in (0, errno.EINPROGRESS):
                print(f"client: connect: {os.strerror(rc)}", file=sys.stderr)
                return 1
            sel.register(s, selectors.EVENT_WRITE, None)
            pending.add(s)
            todo -= 1
        for key, _ in sel.select(0.2):
            s = key.fileobj
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            sel.unregister(s)
            pending.discard(s)
            if err:
                print(f"client: connect: {os.strerror(err)}", file=sys.stderr)
                return 1
            up.append(s)
    if len(up) != a.connections:
        print(f"client: only {len(up)}/{a.connections} connections up", file=sys.stderr)
        return 1
    write_ready(a.ready_file, f"{len(up)}\n")
    active = up[: a.active]
    for s in active:
        sel.register(s, selectors.EVENT_READ, None)
    n = 0
    next_send = time.monotonic()
    while not STOP and time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_send:
            next_send = now + 0.2
            n += 1
            for s in active:
                try:
                    s.send(b"ping %d\n" % n)
                except OSError:
                    pass
        for key, _ in sel.select(0.05):
            try:
                if not key.fileobj.recv(65536):
                    sel.unregister(key.fileobj)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                sel.unregister(key.fileobj)
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server")
    s.add_argument("--port", type=int, default=7000)
    s.add_argument("--ready-file", required=True)
    s.add_argument("--timeout", type=float, default=120)
    c = sub.add_parser("client")
    c.add_argument("--server", required=True)
    c.add_argument("--connections", type=int, default=3)
    c.add_argument("--active", type=int, default=3)
    c.add_argument("--ready-file", required=True)
    c.add_argument("--timeout", type=float, default=120)
    c.add_argument("--connect-timeout", type=float, default=15)
    a = p.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    return server(a) if a.cmd == "server" else client(a)


if __name__ == "__main__":
    sys.exit(main())
