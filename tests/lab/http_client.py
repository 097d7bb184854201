#!/usr/bin/env python3
"""Keep-alive HTTP download clients for the nginx failover lab (tests/lab/http_failover.sh).

  http_client.py --url http://198.18.0.1/f.bin --sha256 HEX --clients 10 --duration S --out FILE
                 [--start-file FILE] [--timeout S]

Each client keeps one HTTP/1.1 connection open and downloads the URL again and again for
--duration seconds (stdlib http.client, one thread per client).  Every body is checked whole
against --sha256.  When a connection breaks (a reset, a timeout, a short body), the client
records it and opens a new one.  Bounded: no new download after --duration, each socket
operation by --timeout, the whole process by --duration + 3 * --timeout.

The report (JSON): per client, downloads completed and checked, corrupt bodies (a body whose
bytes differ: must never happen, migware never splices differing bytes), and every error with
its CLOCK_MONOTONIC and wall time.
"""

import argparse
import hashlib
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse


def client(i, a, host, port, path, t_end, rep):
    r = rep[i]
    conn = None
    while time.monotonic() < t_end:
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=a.timeout)
                r["connections"] += 1
            t0 = time.monotonic()
            conn.request("GET", path, headers={"Connection": "keep-alive"})
            resp = conn.getresponse()
            h = hashlib.sha256()
            n = 0
            while True:
                chunk = resp.read(262144)
                if not chunk:
                    break
                h.update(chunk)
                n += len(chunk)
            if resp.status != 200:
                raise RuntimeError("HTTP status %d" % resp.status)
            if n != a.size:
                raise RuntimeError("short body: %d of %d bytes" % (n, a.size))
            if h.hexdigest() != a.sha256:
                r["corrupt"] += 1
                r["errors"].append({"mono_ns": time.monotonic_ns(), "wall": time.time(),
                                    "error": "CORRUPT body (sha256 differs)"})
                conn.close()
                conn = None
                continue
            r["downloads"] += 1
            r["max_download_ms"] = max(r["max_download_ms"], 1000 * (time.monotonic() - t0))
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException, RuntimeError) as e:
            r["errors"].append({"mono_ns": time.monotonic_ns(), "wall": time.time(),
                                "error": "%s: %s" % (type(e).__name__, e)})
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.05)   # no tight reconnect loop
    if conn is not None:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--sha256", required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--start-file")
    a = ap.parse_args()
    if not 1 <= a.clients <= 100 or not 0 < a.duration <= 120:
        ap.error("--clients 1..100, --duration 0..120")
    u = urllib.parse.urlsplit(a.url)
    host, port, path = u.hostname, u.port or 80, u.path or "/"
    rep = [{"client": i, "connections": 0, "downloads": 0, "corrupt": 0, "max_download_ms": 0.0,
            "errors": []} for i in range(a.clients)]
    t0 = time.monotonic()
    if a.start_file:
        with open(a.start_file, "w") as f:
            f.write("%.6f %d\n" % (time.time(), time.monotonic_ns()))
    t_end = t0 + a.duration
    th = [threading.Thread(target=client, args=(i, a, host, port, path, t_end, rep), daemon=True)
          for i in range(a.clients)]
    for t in th:
        t.start()
    for t in th:
        t.join(max(0.0, t_end + 2 * a.timeout + 1 - time.monotonic()))
    hung = sum(1 for t in th if t.is_alive())
    out = {"clients": a.clients, "size": a.size, "duration": a.duration, "hung_clients": hung,
           "downloads": sum(r["downloads"] for r in rep), "corrupt": sum(r["corrupt"] for r in rep),
           "errors": sum(len(r["errors"]) for r in rep), "per_client": rep}
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
    os.replace(tmp, a.out)
    print("http_client: %d clients, %d downloads checked, %d corrupt, %d errors, %d hung"
          % (a.clients, out["downloads"], out["corrupt"], out["errors"], hung), file=sys.stderr)
    return 1 if out["corrupt"] or hung else 0


if __name__ == "__main__":
    sys.exit(main())
