#!/usr/bin/env python3
"""Prints migware's `counters` reply (CONTROL.md) as one JSON object: migware_counters.py SOCKET.

Used by the lab scripts to read the daemon's counters before they stop it."""

import json
import socket
import sys


def main():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(3)
    s.connect(sys.argv[1])
    s.sendall(b'{"v":1,"cmd":"counters"}\n')
    buf = b""
    while not buf.endswith(b"\n"):
        d = s.recv(65536)
        if not d:
            break
        buf += d
    print(json.dumps(json.loads(buf)["result"]))


if __name__ == "__main__":
    main()
