"""What the replay lab's client programs share (http_clients.py, redis_clients.py; stdlib).

Times are CLOCK_MONOTONIC nanoseconds, the same clock in every network namespace.  The start
file holds the clients' common start; the pull file (tests/lab/replay_lib.sh's rl_pull) the
monotonic ns just before and just after the pull's command.
"""

import json
import os
import sys
import time


def now_ns():
    return time.monotonic_ns()


def parse_server(s):
    """HOST:PORT -> (host, port)"""
    host, _, port = s.rpartition(":")
    return host, int(port)


def write_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def run_threads(clients, args, join_s, banner):
    """Starts the client threads, all connected already (args.t0_ns: their common start), writes
    --start-file, prints the banner, waits join_s at the most; returns the ids of the threads
    still running then (stuck: a bug, or a stall the client did not bound)."""
    args.t0_ns = now_ns()
    for c in clients:
        c.start()
    if args.start_file:
        write_atomic(args.start_file, f"{args.t0_ns}\n")
    print(banner, file=sys.stderr, flush=True)
    limit = time.monotonic() + join_s
    for c in clients:
        c.join(max(0.1, limit - time.monotonic()))
    return [c.idx for c in clients if c.is_alive()]


def read_pull(path):
    """(pull_ns, pull_end_ns) from the pull file, or (None, None) if there was no pull"""
    if not path or not os.path.exists(path):
        return None, None
    with open(path) as f:
        w = f.read().split()
    return int(w[0]), int(w[1]) if len(w) > 1 else int(w[0])


def since_pull(records, pull_ns):
    """copies of the records (dicts with a "t" in ns), each with since_pull_ms if there was a pull"""
    out = []
    for r in records:
        r = dict(r)
        if pull_ns is not None:
            r["since_pull_ms"] = round((r["t"] - pull_ns) / 1e6, 1)
        out.append(r)
    return out


def finish(out_path, summary, line):
    """Writes the JSON summary, prints its one line, and exits 0 at once: a stuck thread (a bug)
    must not keep the process alive."""
    write_atomic(out_path, json.dumps(summary, indent=1))
    print(line, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
