#!/usr/bin/env python3
"""Tiny deterministic TCP client/server programs for the pcap lab (scripts/make_pcaps.sh).

Every loop is bounded in count and in time.  Payloads are deterministic so that the
captures are reproducible apart from ISNs, ports, timestamps and IP ids.

  lab.py server --bind IP --port P --mode sink|reqresp --conns N [--timeout S]
  lab.py client --connect IP:P --mode push|reqresp|rst|midstream [options]

Server modes:
  sink     read until EOF (never send data), then close.  ECONNRESET is tolerated.
  reqresp  read newline-terminated requests; answer each with a reply derived from it
           ("RSP <n> <reversed request body>\n"); close when the client closes.
Client modes:
  push      send --lines numbered lines of --size bytes, then close (FIN).
  reqresp   send --lines numbered requests, wait for each reply; then close, or with
            --hold-file wait (bounded) until that file exists, leaving the connection open.
  rst       send --lines lines, wait a moment, then abort with SO_LINGER {1,0} -> RST.
  midstream send --lines lines, create --ready-file, wait (bounded) for --go-file, send
            --lines2 more lines, close.
"""
import argparse
import os
import socket
import struct
import sys
import threading
import time


def line(tag, i, size):
    head = f"{tag} {i:04d} "
    body = head + "x" * max(0, size - len(head) - 1)
    return (body[: size - 1] + "\n").encode()


def wait_file(path, limit):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if os.path.exists(path):
            return True
        time.sleep(0.05)
    return False


def recv_line(sock, buf):
    while b"\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            return None, buf
        buf += chunk
    ln, _, rest = buf.partition(b"\n")
    return ln, rest


def serve_conn(conn, mode):
    try:
        if mode == "sink":
            while True:
                if not conn.recv(65536):
                    break
        else:
            buf = b""
            n = 0
            while n < 100000:
                ln, buf = recv_line(conn, buf)
                if ln is None:
                    break
                n += 1
                reply = b"RSP %d " % n + ln[::-1] + b"\n"
                conn.sendall(reply)
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        conn.close()


def server(a):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.bind, a.port))
    ls.listen(16)
    ls.settimeout(a.timeout)
    if a.ready_file:
        open(a.ready_file, "w").close()
    threads = []
    try:
        for _ in range(a.conns):
            conn, _peer = ls.accept()
            conn.settimeout(a.timeout)
            t = threading.Thread(target=serve_conn, args=(conn, a.mode), daemon=True)
            t.start()
            threads.append(t)
    except socket.timeout:
        print("server: accept timed out", file=sys.stderr)
    for t in threads:
        t.join(a.timeout)
    ls.close()


def client(a):
    host, port = a.connect.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=a.timeout)
    tag = a.tag
    if a.mode == "push":
        for i in range(a.lines):
            s.sendall(line(tag, i, a.size))
            time.sleep(a.gap)
        time.sleep(0.1)
        s.close()
    elif a.mode == "reqresp":
        buf = b""
        for i in range(a.lines):
            s.sendall(line(tag, i, a.size))
            ln, buf = recv_line(s, buf)
            if ln is None:
                sys.exit("client: server closed early")
            time.sleep(a.gap)
        if a.hold_file:
            wait_file(a.hold_file, a.timeout)
        else:
            time.sleep(0.1)
        s.close()
    elif a.mode == "rst":
        for i in range(a.lines):
            s.sendall(line(tag, i, a.size))
            time.sleep(a.gap)
        time.sleep(0.3)  # let the server ACK everything first
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    elif a.mode == "midstream":
        for i in range(a.lines):
            s.sendall(line(tag, i, a.size))
            time.sleep(a.gap)
        open(a.ready_file, "w").close()
        if not wait_file(a.go_file, a.timeout):
            sys.exit("client: go file never appeared")
        for i in range(a.lines, a.lines + a.lines2):
            s.sendall(line(tag, i, a.size))
            time.sleep(a.gap)
        time.sleep(0.1)
        s.close()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    ps = sub.add_parser("server")
    ps.add_argument("--bind", required=True)
    ps.add_argument("--port", type=int, required=True)
    ps.add_argument("--mode", choices=["sink", "reqresp"], default="sink")
    ps.add_argument("--conns", type=int, default=1)
    ps.add_argument("--timeout", type=float, default=20.0)
    ps.add_argument("--ready-file")
    pc = sub.add_parser("client")
    pc.add_argument("--connect", required=True)
    pc.add_argument("--mode", choices=["push", "reqresp", "rst", "midstream"], default="push")
    pc.add_argument("--tag", default="LINE")
    pc.add_argument("--lines", type=int, default=20)
    pc.add_argument("--lines2", type=int, default=10)
    pc.add_argument("--size", type=int, default=100)
    pc.add_argument("--gap", type=float, default=0.01)
    pc.add_argument("--timeout", type=float, default=20.0)
    pc.add_argument("--hold-file")
    pc.add_argument("--ready-file")
    pc.add_argument("--go-file")
    a = p.parse_args()
    if a.cmd == "server":
        server(a)
    else:
        client(a)


if __name__ == "__main__":
    main()
