#!/usr/bin/env python3
"""Per-connection verdicts for a run with a chain of servers (issue 12: the primary dies,
backup A takes over, later A dies and backup B takes over the same connections).  Stdlib only.

  verify_chain.py --mode push|reqresp --connections N --client-json FILE
                  --server primary=DIR --server b1=DIR [--server b2=DIR ...]
                  [--expect-servers primary,b1,b2] [--pull-wall WALL] [--show N]

Inputs: the report of `traffic.py client` (per connection k: its client port, the bytes sent,
the error if any, whether it completed an orderly close, requests and verified replies) and,
per server (the first --server is the primary), the directory its `traffic.py server --log
DIR` wrote: <client port>.bin holds the bytes that server's stack received on that connection
(<port>.<n>.bin: a reused port).  Each server in a chain holds one contiguous slice of the
connection's stream.  A log is attributed to the connection its bytes belong to (the first
record header names k), and only by its file name when it holds no complete header: a
backup's twin may use another port than the client's (migware avoids ports its host still
holds toward the primary's IP), and its server names the log by that port.

Per connection k (client port p) it passes only if all of these hold:
  C1 client: no error and an orderly close ("survived"); reqresp: every request got its
     correct reply (replies_ok == requests), as verify.py requires.
  C2 slices: every server's log for port p (a server may have none) is exactly
     stream(k)[s:s+len] for one offset s.  s is located from the first complete record header
     in the log (`K<k>R<r>:`, at byte j: s = r*RECLEN - j); a log too short to hold a header
     (under 48 bytes) is searched for in the stream's first `sent` bytes, and if it fits
     several places, it passes if one of them lets the chain below hold (its bytes are
     stream bytes at each).  Then every byte must match; a mismatch is explained (bytes
     repeated = DUPLICATE, bytes skipped = GAP, other bytes) at the stream offset it occurs.
     No slice may reach beyond the bytes the client sent.  A server may hold several logs of
     one connection (it took over twice: after standing down, or in a restarted migware):
     each is its own slice, and C4/C5 judge them like any other.
  C3 the beginning: the primary's slice starts at 0.  A connection the primary never logged
     passes C3 only if a backup's slice starts at 0 (a connection opened after the primary's
     death); with --pull-wall, every connection was opened before the client's traffic began
     (traffic.py connects them all first), so if that was before the pull the primary must
     hold a log.
  C4 the chain: the non-empty slices, ordered by start, leave no gap: each next start is <=
     the furthest end so far (overlap is allowed: bytes a server got but never acknowledged
     also went to its successor), the first starts at 0, and the last ends exactly at the
     bytes the client sent (push) / the request bytes it sent (reqresp).  The client's
     orderly close means every byte it sent was delivered, so the last server got them all.
  C5 no twins: no two non-empty slices start at the same offset (two servers took over at the
     same point).  An empty log (a server that accepted or recovered the connection and got
     no byte) is never a duplicate.
  C6 with --expect-servers A,B,C: a connection that was still open at the end (the client
     closed it orderly) has its last slice on C, the last named server, and no slice on a
     server that is not named.  (The path of each connection, servers in order of their
     slices' starts, is counted and printed either way, e.g. primary>b1>b2.)

Checks C2-C6 are skipped for a connection once one of its slices is not its stream (they would
only repeat that failure).  Server-side errors in the .json sidecars are counted, as
information: a server that died mid-connection may log one.

Output: per server, how many connections it served and how many bytes; the paths; the failure
reasons counted; up to --show failing connections in full; the last line is exactly
`chain: N passed, M failed`.  Exit 0 only if every connection passed, 1 if some failed, 2 on
bad input (unreadable client report, a missing server directory, a bad --server).
"""

import argparse
import itertools
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from traffic import stream, RECLEN  # noqa: E402

HEADER = re.compile(rb"K(\d{5})R(\d{9}):")
LOG_NAME = re.compile(r"^(\d+)(?:\.(\d+))?$")
MAX_PLACEMENTS = 1000     # placements of short logs tried per connection


class BadInput(Exception):
    pass


# ------------------------------------------------------------------ inputs
def parse_server_arg(text):
    """'NAME=DIR' -> (NAME, DIR)."""
    name, sep, d = text.partition("=")
    if not sep or not name or not d:
        raise BadInput("--server %r: expected NAME=DIR" % text)
    return name, d


def load_client(path):
    """The client's report: (report, {k: connection})."""
    try:
        with open(path) as f:
            rep = json.load(f)
        conns = {c["k"]: c for c in rep["conns"]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BadInput("client report %s: %s" % (path, e))
    return rep, conns


def read_logs(d):
    """port -> [(name, bytes, sidecar or None)] for one server's log directory, the logs of a
    port in the order the server opened them (<port>.bin, <port>.1.bin, ...)."""
    if not os.path.isdir(d):
        raise BadInput("server log directory %s does not exist" % d)
    out = {}
    for fn in sorted(os.listdir(d)):
        if not fn.endswith(".bin"):
            continue
        m = LOG_NAME.match(fn[:-4])
        if not m:
            continue
        with open(os.path.join(d, fn), "rb") as f:
            data = f.read()
        side = None
        try:
            with open(os.path.join(d, fn[:-4] + ".json")) as f:
                side = json.load(f)
        except (OSError, ValueError):
            pass
        out.setdefault(int(m.group(1)), []).append((int(m.group(2) or 0), fn[:-4], data, side))
    return {p: [(n, data, side) for _, n, data, side in sorted(lst)] for p, lst in out.items()}


# ------------------------------------------------------------------ locating a slice
def header_start(data):
    """(k, s) from the first complete record header in data: the stream offset s at which
    data would start if it is a slice of connection k's stream; None without a header."""
    m = HEADER.search(data)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)) * RECLEN - m.start()


def candidates(k, data, sent):
    """Every offset s at which stream(k)[0:sent] holds data (for logs too short to hold a
    complete header)."""
    hay = stream(k, 0, sent)
    out, pos = [], hay.find(data)
    while pos >= 0:
        out.append(pos)
        pos = hay.find(data, pos + 1)
    return out


def first_diff(a, b):
    """The first index at which two byte strings of equal length differ; -1 if none."""
    for i in range(len(a)):
        if a[i] != b[i]:
            return i
    return -1


def explain_mismatch(k, data, s):
    """Why data is not stream(k)[s:s+len(data)], in words; None if it is."""
    d = first_diff(data, stream(k, s, s + len(data)))
    if d < 0:
        return None
    at = s + d
    hs = header_start(data[d:])
    if hs is not None and hs[0] == k:
        resumed = hs[1]
        if resumed < at:
            return "repeats %d bytes (DUPLICATE) at stream offset %d" % (at - resumed, at)
        if resumed > at:
            return "skips %d bytes (GAP) at stream offset %d" % (resumed - at, at)
    return "differs from the stream at offset %d (got %r)" % (at, data[d:d + RECLEN])


def locate(k, data, sent):
    """Place one non-empty log in connection k's stream.  Returns (starts, reason): starts is
    the list of possible offsets (one, or several for a log too short to hold a header);
    reason is None, or why the log is not a slice of stream(k)."""
    hs = header_start(data)
    if hs is None:
        cands = candidates(k, data, sent)
        if not cands:
            return [], "%d bytes that are nowhere in the stream's first %d bytes" % (
                len(data), sent)
        return cands, None
    hk, s = hs
    if hk != k:
        return [], "holds connection %d's stream, not %d's" % (hk, k)
    if s < 0:
        return [], "would start at stream offset %d, before the stream's first byte" % s
    why = explain_mismatch(k, data, s)
    return ([], why) if why else ([s], None)


# ------------------------------------------------------------------ one connection
class Slice:
    __slots__ = ("server", "name", "size", "starts", "start")

    def __init__(self, server, name, size, starts):
        self.server, self.name, self.size, self.starts = server, name, size, starts
        self.start = starts[0] if len(starts) == 1 else None

    @property
    def end(self):
        return None if self.start is None else self.start + self.size

    def label(self):
        if self.start is None:
            return "%s (empty)" % self.server
        return "%s [%d,%d)" % (self.server, self.start, self.end)


def merged_cover(slices):
    """The stream intervals [a, b] the placed non-empty slices cover, merged, in order."""
    out = []
    for x in sorted((x for x in slices if x.start is not None and x.size),
                    key=lambda x: x.start):
        if out and x.start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], x.end)
        else:
            out.append([x.start, x.end])
    return out


def pick_start(x, cover, sent):
    """The offset, among a short log's candidates, that continues the chain: the one reaching
    furthest into the first hole (before the first covered byte, between covered intervals,
    or up to `sent`) from a covered point (or 0); else the one ending exactly at `sent` (the
    last server got the last few bytes); else the first one inside what is covered; else the
    smallest (the chain check then reports the gap)."""
    def joined(c):
        return c == 0 or any(a <= c <= b for a, b in cover)
    holes = [0] if not cover or cover[0][0] > 0 else []
    holes += [b for a, b in cover if b < sent]
    for h in holes:
        fit = [c for c in x.starts if joined(c) and c <= h < c + x.size]
        if fit:
            return max(fit)
    if sent - x.size in x.starts and joined(sent - x.size):
        return sent - x.size
    inside = [c for c in x.starts if any(a <= c and c + x.size <= b for a, b in cover)]
    return min(inside or x.starts)


def resolve_ambiguous(slices, sent, chain_fails):
    """Give every short log that fits several places in the stream a place.  Its bytes are
    stream bytes at each of them, so the log is accepted if one placement lets the chain
    hold: the placements are tried, pick_start's first, until chain_fails() returns nothing
    (at most MAX_PLACEMENTS of them); if none does, pick_start's are kept and the chain check
    reports why."""
    amb = [x for x in slices if x.size and x.start is None]
    if not amb:
        return
    orders = []
    for x in amb:
        first = pick_start(x, merged_cover(slices), sent)
        orders.append([first] + [c for c in x.starts if c != first])
    for n, combo in enumerate(itertools.product(*orders)):
        if n >= MAX_PLACEMENTS:
            break
        for x, c in zip(amb, combo):
            x.start = c
        if not chain_fails():
            return
    for x, order in zip(amb, orders):
        x.start = order[0]


def check_client(c, mode):
    """C1: the client's own verdict, as reasons."""
    out = []
    if c.get("error"):
        out.append("client: " + str(c["error"]))
    elif not c.get("survived"):
        out.append("client: connection did not complete an orderly close")
    if mode == "reqresp" and c.get("replies_ok") != c.get("requests"):
        out.append("client: %s of %s requests got their correct reply"
                   % (c.get("replies_ok"), c.get("requests")))
    return out


def by_connection(port_logs, port_to_k):
    """One server's logs regrouped by connection: a log with a record header goes to the k
    the header names, one without (empty, or under 48 bytes) to the connection of its port."""
    out = {}
    for port, lst in port_logs.items():
        for entry in lst:
            hs = header_start(entry[1])
            k = hs[0] if hs else port_to_k.get(port)
            if k is not None:
                out.setdefault(k, []).append(entry)
    return out


def collect_slices(k, port, sent, servers, logs):
    """C2: one Slice per log of connection k on every server; the reasons against them; and
    whether some log is not a slice of stream(k) at all (then the chain is not judged)."""
    slices, reasons, broken = [], [], False
    for name in servers:
        lst = logs[name].get(k, [])
        for fn, data, _side in lst:
            if not data:
                slices.append(Slice(name, fn, 0, []))
                continue
            starts, why = locate(k, data, sent)
            if why:
                reasons.append("%s's log %s.bin (%d bytes) %s" % (name, fn, len(data), why))
                broken = True
            else:
                slices.append(Slice(name, fn, len(data), starts))
    return slices, reasons, broken


def check_chain(port, sent, primary, slices, primary_lived):
    """C3-C5 on placed slices; returns (reasons, path)."""
    reasons = []
    full = sorted((x for x in slices if x.size), key=lambda x: (x.start, x.end))
    empty_p = [x for x in slices if not x.size and x.server == primary]
    empty_b = [x for x in slices if not x.size and x.server != primary]
    for x in empty_p:
        x.start = 0
    path = [x.server for x in empty_p + full + empty_b]
    if not slices:
        return ["no server logged port %d" % port], path
    # C3 the beginning
    p_full = [x for x in full if x.server == primary]
    if not p_full and not empty_p:
        if primary_lived:
            reasons.append("the primary has no log for port %d, though the connection was "
                           "opened before the pull" % port)
        elif not (full and full[0].start == 0):
            reasons.append("the primary has no log for port %d and no backup's slice starts "
                           "at 0" % port)
    for x in p_full:
        if x.start != 0:
            reasons.append("the primary's slice %s starts at %d, not 0" % (x.label(), x.start))
    # C2 (end): nothing beyond what the client sent
    beyond = [x for x in full if x.end > sent]
    for x in beyond:
        reasons.append("%s reaches %d bytes beyond the %d the client sent"
                       % (x.label(), x.end - sent, sent))
    # C5 no twins
    for a, b in zip(full, full[1:]):
        if a.start == b.start:
            reasons.append("DUPLICATE start: %s and %s both start at stream offset %d"
                           % (a.label(), b.label(), a.start))
    # C4 the chain
    cover, last = 0, None
    for x in full:
        if x.start > cover:
            reasons.append("GAP of %d bytes at stream offset %d: no server holds [%d,%d) "
                           "(%s, then %s)" % (x.start - cover, cover, cover, x.start,
                                              last.label() if last else "stream start",
                                              x.label()))
        cover = max(cover, x.end)
        last = x
    end = full[-1].end if full else 0
    if end != sent and not beyond:
        holder = full[-1].label() if full else (empty_p + empty_b)[0].label()
        reasons.append("the last slice, %s, ends at %d, short of the %d bytes the client "
                       "sent: %d bytes lost" % (holder, end, sent, sent - end))
    return reasons, path


def check_expected(path, expect):
    """C6: the last slice on the last named server, no slice on an unnamed one."""
    out = []
    stray = sorted(set(path) - set(expect))
    if stray:
        out.append("served by %s, not in --expect-servers" % ",".join(stray))
    if not path or path[-1] != expect[-1]:
        out.append("the last slice is on %s, expected %s (path %s)"
                   % (path[-1] if path else "no server", expect[-1], ">".join(path) or "-"))
    return out


def judge(k, c, a, servers, logs, primary_lived):
    """All reasons connection k fails (empty: it passed), and its path."""
    if c is None:
        return ["missing from the client report"], []
    reasons = check_client(c, a.mode)
    port, sent = c.get("port"), c.get("sent") or 0
    if port is None:
        return reasons or ["never connected"], []
    slices, bad, broken = collect_slices(k, port, sent, servers, logs)
    reasons += bad
    if broken:
        return reasons, [x.server for x in slices]
    resolve_ambiguous(slices, sent, lambda: check_chain(port, sent, servers[0], slices,
                                                        primary_lived)[0])
    chain, path = check_chain(port, sent, servers[0], slices, primary_lived)
    reasons += chain
    if a.expect_servers and c.get("survived") and not c.get("error"):
        reasons += check_expected(path, a.expect_servers)
    return reasons, path


# ------------------------------------------------------------------ report
def server_summary(servers, logs, ports):
    """Per server: connections served (logs of the client's ports), with bytes, bytes,
    logs of ports no client used, server-side errors in the sidecars."""
    lines = []
    for name in servers:
        mine = {p: lst for p, lst in logs[name].items() if p in ports}
        n = sum(len(lst) for lst in mine.values())
        nonempty = sum(1 for lst in mine.values() for _, d, _ in lst if d)
        nbytes = sum(len(d) for lst in mine.values() for _, d, _ in lst)
        errs = sum(1 for lst in logs[name].values() for _, _, s in lst if s and s.get("error"))
        stray = sorted(set(logs[name]) - ports)
        lines.append("chain: server %s: %d connections (%d with bytes), %d bytes; "
                     "server-side errors (info) %d%s" % (
                         name, n, nonempty, nbytes, errs,
                         "; logs for ports no client used: %d %s" % (len(stray), stray[:10])
                         if stray else ""))
    return lines


def print_failures(failures, show):
    counts = {}
    for _, _, rs in failures:
        key = re.sub(r"\d+", "#", rs[0])[:100]
        counts[key] = counts.get(key, 0) + 1
    print("chain: failure reasons (first reason per connection, numbers as #):")
    for key, n in sorted(counts.items(), key=lambda x: -x[1]):
        print("  %6d x %s" % (n, key))
    for k, p, rs in failures[:show]:
        print("FAIL conn %d port %s: %s" % (k, p, "; ".join(rs)))
    if len(failures) > show:
        print("... %d more failing connections" % (len(failures) - show))


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 epilog="See the module docstring for exactly what is checked.")
    ap.add_argument("--mode", choices=("push", "reqresp"), required=True)
    ap.add_argument("--connections", type=int, required=True)
    ap.add_argument("--client-json", required=True)
    ap.add_argument("--server", action="append", required=True, metavar="NAME=DIR",
                    help="a server's log directory; the first is the primary")
    ap.add_argument("--expect-servers", metavar="A,B,C",
                    help="connections open at the end must end on C, the last named")
    ap.add_argument("--pull-wall", type=float, metavar="WALL",
                    help="wall clock of the primary's pull: connections opened before it "
                         "must have a log on the primary")
    ap.add_argument("--show", type=int, default=40)
    return ap.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    try:
        pairs = [parse_server_arg(s) for s in a.server]
        servers = [n for n, _ in pairs]
        if len(set(servers)) != len(servers):
            raise BadInput("a --server name is given twice")
        if a.connections < 0:
            raise BadInput("--connections must be >= 0")
        a.expect_servers = a.expect_servers.split(",") if a.expect_servers else None
        if a.expect_servers and set(a.expect_servers) - set(servers):
            raise BadInput("--expect-servers names %s, not given by --server"
                           % sorted(set(a.expect_servers) - set(servers)))
        rep, conns = load_client(a.client_json)
        port_to_k = {c.get("port"): k for k, c in conns.items() if c.get("port") is not None}
        port_logs = {n: read_logs(d) for n, d in pairs}
        logs = {n: by_connection(pl, port_to_k) for n, pl in port_logs.items()}
    except BadInput as e:
        print("chain: bad input: %s" % e)
        print("chain: 0 passed, %d failed" % max(a.connections, 1))
        return 2
    t0 = rep.get("t_start_wall")
    primary_lived = a.pull_wall is not None and t0 is not None and t0 < a.pull_wall
    failures, paths, passed = [], {}, 0
    for k in range(a.connections):
        c = conns.get(k)
        reasons, path = judge(k, c, a, servers, logs, primary_lived)
        key = ">".join(path) or "-"
        paths[key] = paths.get(key, 0) + 1
        if reasons:
            failures.append((k, c.get("port") if c else None, reasons))
        else:
            passed += 1
    ports = {c.get("port") for c in conns.values() if c.get("port") is not None}
    print("chain: mode=%s connections=%d servers=%s, %d bytes sent by the client" % (
        a.mode, a.connections, ",".join(servers),
        sum(c.get("sent") or 0 for c in conns.values())))
    for line in server_summary(servers, port_logs, ports):
        print(line)
    for key, n in sorted(paths.items(), key=lambda x: (-x[1], x[0])):
        print("chain: path %s: %d connections" % (key, n))
    if failures:
        print_failures(failures, a.show)
    print("chain: %d passed, %d failed" % (passed, a.connections - passed))
    return 0 if passed == a.connections else 1


if __name__ == "__main__":
    sys.exit(main())
