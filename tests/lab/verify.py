#!/usr/bin/env python3
"""Per-connection verdicts for one failover run (used by tests/lab/failover.sh).

Inputs: the client's JSON report, the primary's and backup's server logs (<port>.bin/.json),
the client-side capture as `tcpdump -nn -S -tt -r` text, the pull time (wall clock and
CLOCK_MONOTONIC) and, optionally, migware's log.

Per connection k (client port p):
  (a) the client reports no error and a completed orderly close;
  (b) byte-exact.  acked = (highest ACK from 198.18.0.1:7000 seen by the client before the pull)
      - (client ISN + 1), mod 2^32.  The backup's log for port p must be exactly
      stream(k)[acked:sent]; the primary's log must be stream(k)[0:len] with len >= acked
      (len - acked = bytes the primary got but never acknowledged: reported, not an error).
      Without a pull: the primary holds exactly stream(k)[0:sent], the backup nothing, and the
      client's capture holds no RST from the server's address that the client could accept.
      With --rolled-back-before WALL (migware took over and rolled back, issue 10), the backup's
      connections opened before WALL are that takeover's twins: counted, not judged.
  (c) reqresp: every request got its correct reply (the client checked each one).
  Replay modes (--replay-mode, migware --recovery.mode; issue 13), with a pull:
    push (default): as in (b), the backup holds exactly stream(k)[acked:sent].
    aligned: the backup holds exactly stream(k)[s:sent] with s = sent - len(backup bytes),
      s a request boundary (a multiple of RECLEN), s <= acked, and s >= the start of the last
      request the client sent before the pull (from the client's capture; without one,
      acked - s <= RECLEN * OUTSTANDING, the requests traffic.py's client keeps in flight).
    full: s == 0: the backup holds the whole stream(k)[0:sent].
    --replay-unanswered is the old name of aligned.
Churn mode (--mode churn): every connection attempt of `traffic.py churn` is one verdict:
no client error, all replies verified, the server's FIN seen (unless --lenient-close), the
bytes as in (b) with acked taken per attempt, no RST; attempts are counted as done before,
open at, or opened after the pull, and by whether the backup served them.
The last line is exactly `failover: N passed, M failed`.
"""

import argparse
import glob
import json
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from traffic import stream, RECLEN  # noqa: E402

M32 = 1 << 32
LINE = re.compile(r"^(\d+\.\d+) IP (\d+\.\d+\.\d+\.\d+)\.(\d+) > (\d+\.\d+\.\d+\.\d+)\.(\d+): "
                  r"Flags \[([^\]]*)\](.*)$")
SEQ = re.compile(r"\bseq (\d+)")
ACK = re.compile(r"\back (\d+)")
SEQRANGE = re.compile(r"\bseq (\d+):(\d+)")
LENGTH = re.compile(r"\blength (\d+)")
RSTSEQ = re.compile(r"\bseq (\d+)")


def s32(x):
    x %= M32
    return x - M32 if x >= (1 << 31) else x


def classify_rst(c, rest):
    """A RST from the server's address, as the client's TCP takes it:
    'below': its seq is below what the client has already acknowledged, outside the client's
      window, so the client drops it (RFC 5961 §3.2); a fenced primary answers migware's
      probes with exactly these;
    'after_close': the client had sent its FIN and acknowledged the server's, so the
      connection was complete (TIME_WAIT) and its application long done;
    'counts': anything else (a RST the client may accept)."""
    sm = RSTSEQ.search(rest)
    if sm and c["client_ack"] is not None:
        if s32(int(sm.group(1)) - c["client_ack"]) < 0:
            return "below"
        if (c["client_fin"] and c["server_fin_end"] is not None
                and s32(c["client_ack"] - c["server_fin_end"]) >= 0):
            return "after_close"
    return "counts"


def count_server_rst(c, rest):
    key = {"below": "rst_below_window", "after_close": "rst_after_close"}.get(
        classify_rst(c, rest), "rst_from_server")
    c[key] += 1


def note_client_segment(c, flags, rest):
    """The client's highest ACK (its rcv_nxt as far as the capture shows) and its FIN."""
    if "R" in flags:
        return
    am = ACK.search(rest)
    if am and (c["client_ack"] is None or s32(int(am.group(1)) - c["client_ack"]) > 0):
        c["client_ack"] = int(am.group(1))
    if "F" in flags:
        note_fin(c, True, rest)


def note_fin(c, src_is_client, rest):
    if src_is_client:
        c["client_fin"] = True
        return
    sr = SEQRANGE.search(rest)
    sm = SEQ.search(rest)
    if sr:
        c["server_fin_end"] = (int(sr.group(2)) + 1) % M32
    elif sm:
        c["server_fin_end"] = (int(sm.group(1)) + 1) % M32


def capture_segments(path, count):
    """Each TCP line of a `tcpdump -nn -S -tt` text capture, as (ts, src, sport, dst, dport,
    flags, rest); count[0] counts them."""
    with open(path) as f:
        for line in f:
            m = LINE.match(line)
            if m:
                count[0] += 1
                yield (float(m.group(1)), m.group(2), int(m.group(3)), m.group(4),
                       int(m.group(5)), m.group(6), m.group(7))


def rst_fields():
    """What classify_rst needs of a connection, and its counts."""
    return {"rst_from_server": 0, "rst_below_window": 0, "rst_after_close": 0,
            "client_ack": None, "client_fin": False, "server_fin_end": None}


def new_conn():
    return {"isn": None, "ack": None, "last_before": None, "first_after": None,
            "last_req_start": None, **rst_fields()}


def parse_capture(path, client_ip, server_ip, sport, pull_wall):
    """Per client port: isn, highest server ACK before the pull (absolute), timestamps."""
    conns = {}
    synopts = {}
    count = [0]
    for ts, src, spt, dst, dpt, flags, rest in capture_segments(path, count):
        if src == client_ip and dst == server_ip and dpt == sport:
            c = conns.get(spt) or conns.setdefault(spt, new_conn())
            note_client_segment(c, flags, rest)
            sr = SEQRANGE.search(rest)
            if (sr and c["isn"] is not None and int(sr.group(2)) != int(sr.group(1))
                    and (pull_wall is None or ts < pull_wall)):
                # a request on the wire before the pull (traffic.py sends each in one write);
                # the highest start, so a retransmission of an older one does not count
                st = (int(sr.group(1)) - (c["isn"] + 1)) % M32
                if c["last_req_start"] is None or st > c["last_req_start"]:
                    c["last_req_start"] = st
            if "S" in flags:
                sm = SEQ.search(rest)
                if sm:
                    c["isn"] = int(sm.group(1))
                om = re.search(r"options \[([^\]]*)\]", rest)
                key = re.sub(r"\d+", "#", om.group(1)) if om else "none"
                synopts[key] = synopts.get(key, 0) + 1
        elif src == server_ip and spt == sport and dst == client_ip:
            c = conns.get(dpt) or conns.setdefault(dpt, new_conn())
            if "R" in flags:
                count_server_rst(c, rest)
                continue
            if "F" in flags:
                note_fin(c, False, rest)
            am = ACK.search(rest)
            if not am:
                continue
            a = int(am.group(1))
            if pull_wall is None or ts < pull_wall:
                if c["ack"] is None or s32(a - c["ack"]) > 0:
                    c["ack"] = a
                c["last_before"] = ts
            elif c["first_after"] is None:
                c["first_after"] = ts
    return conns, count[0], synopts


def read_logs(d):
    """port -> list of (name, bytes, sidecar-or-None); extra entries = repeated peer ports."""
    out = {}
    if not d or not os.path.isdir(d):
        return out
    for path in sorted(glob.glob(os.path.join(d, "*.bin"))):
        name = os.path.basename(path)[:-4]
        port = int(name.split(".")[0])
        with open(path, "rb") as f:
            data = f.read()
        side = None
        try:
            with open(os.path.join(d, name + ".json")) as f:
                side = json.load(f)
        except (OSError, ValueError):
            pass
        out.setdefault(port, []).append((name, data, side))
    return out


def locate(k, data, sent):
    """Where in stream(k)[0:sent] does `data` start?  None if it is not a slice of it."""
    if not data:
        return None
    full = stream(k, 0, max(sent, len(data)) + RECLEN)
    probe = data[:64]
    pos = full.find(probe)
    while pos >= 0 and pos % RECLEN != 0 and len(probe) < RECLEN:
        pos = full.find(probe, pos + 1)
    return None if pos < 0 else pos


def first_diff(a, b):
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n if len(a) != len(b) else -1


def describe_slice(label, k, got, start, end):
    """Why `got` is not stream(k)[start:end], in words."""
    exp = stream(k, start, end)
    if got == exp:
        return None
    if not got:
        return "%s received nothing; expected stream bytes [%d, %d) (%d bytes)" % (
            label, start, end, end - start)
    at = locate(k, got, end)
    if at is None:
        d = first_diff(got, exp)
        return "%s bytes are not this connection's stream (first difference at offset %d: %r)" % (
            label, start + d, got[d:d + 32])
    if at < start:
        return "%s starts at stream offset %d, not %d: %d bytes DUPLICATED" % (
            label, at, start, start - at)
    if at > start:
        return "%s starts at stream offset %d, not %d: GAP of %d bytes" % (
            label, at, start, at - start)
    d = first_diff(got, exp)
    if d == len(got):
        return "%s stops at stream offset %d, expected %d: missing the last %d bytes" % (
            label, start + len(got), end, end - start - len(got))
    if d == len(exp):
        return "%s has %d bytes beyond the %d the client sent" % (label, len(got) - len(exp), end)
    at2 = locate(k, got[d:], end)
    if at2 is not None and at2 > start + d:
        return "%s has a GAP of %d bytes at stream offset %d" % (label, at2 - start - d, start + d)
    if at2 is not None and at2 < start + d:
        return "%s repeats %d bytes (DUPLICATE) at stream offset %d" % (
            label, start + d - at2, start + d)
    return "%s differs from the stream at offset %d (got %r, expected %r)" % (
        label, start + d, got[d:d + 32], exp[d:d + 32])


def migware_transitions(paths):
    out = []
    for path in paths:
        if os.path.exists(path):
            out += _transitions(path)
    return sorted(out, key=lambda t: t[2])


def _transitions(path):
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            if "event=transition" not in line:
                continue
            kv = dict(re.findall(r"(\w+)=(\S+)", line))
            if "to" in kv and "mono_ns" in kv:
                try:
                    out.append((kv.get("from", "?"), kv["to"], int(kv["mono_ns"])))
                except ValueError:
                    pass
    return out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


# ------------------------------------------------------------------ replay modes (issue 13)
# traffic.py's reqresp client sends its next request only once it has the reply to the last
# one: at most one request in flight per connection
OUTSTANDING = 1


def new_replay_stats():
    return {"conns": 0, "from_zero": 0, "replayed": {}, "vs_last": {"at": 0, "after": 0},
            "no_last": 0, "replayed_bytes": 0}


def check_replay_start(mode, k, bdata, acked, sent, last_req_start, st):
    """Where the backup's bytes start (s = sent - len) under aligned or full replay, and why
    that is wrong (None if right).  Counts where connections started in `st`."""
    s = sent - len(bdata)
    if s < 0:
        return "backup holds %d bytes, more than the %d the client sent (%d DUPLICATED)" % (
            len(bdata), sent, -s)
    r = describe_slice("backup", k, bdata, s, sent)
    if r:
        return r + " (%s replay: the backup's bytes must be stream[s:sent])" % mode
    if mode == "full":
        if s != 0:
            return ("full replay: backup starts at stream offset %d, not 0: the first %d bytes "
                    "were not replayed" % (s, s))
    else:
        if s % RECLEN:
            return ("aligned replay: backup starts at stream offset %d, inside request #%d "
                    "(not a request boundary)" % (s, s // RECLEN))
        if s > acked:
            return ("aligned replay: backup starts at stream offset %d, after what the primary "
                    "acknowledged (%d): GAP of %d bytes" % (s, acked, s - acked))
        if last_req_start is not None:
            lo = last_req_start - last_req_start % RECLEN
            if s < lo:
                return ("aligned replay: backup starts at stream offset %d, before the last "
                        "request the client sent before the pull (at %d): %d bytes of answered "
                        "requests replayed" % (s, lo, lo - s))
        elif acked - s > RECLEN * OUTSTANDING:
            return ("aligned replay: backup starts %d bytes before what the primary acknowledged; "
                    "the client keeps at most %d request(s) of %d bytes in flight"
                    % (acked - s, OUTSTANDING, RECLEN))
    st["conns"] += 1
    if s == 0:
        st["from_zero"] += 1
    st["replayed"][acked - s] = st["replayed"].get(acked - s, 0) + 1
    st["replayed_bytes"] += acked - s
    if last_req_start is None:
        st["no_last"] += 1
    elif s == last_req_start - last_req_start % RECLEN:
        st["vs_last"]["at"] += 1
    else:
        st["vs_last"]["after"] += 1
    return None


def report_replay(mode, st):
    if len(st["replayed"]) <= 6:
        hist = ", ".join("%d B x %d" % (b, n) for b, n in sorted(st["replayed"].items()))
    else:
        xs = sorted(b for b, n in st["replayed"].items() for _ in range(n))
        hist = "min %d B, median %d B, max %d B over %d connections" % (
            xs[0], xs[len(xs) // 2], xs[-1], len(xs))
    print("verify: %s replay: connections whose backup bytes start before the primary's "
          "acknowledgement point, by how far (acked - s): %s; %d bytes the primary had "
          "acknowledged were replayed (info)" % (mode, hist or "none", st["replayed_bytes"]))
    if mode == "aligned":
        print("verify: aligned replay: backup starts at the last request the client sent before the "
              "pull: %d, after it (at acked: a request sent after the pull, or none outstanding): %d, "
              "no request before the pull: %d; at stream offset 0: %d (of %d verified)" % (
                  st["vs_last"]["at"], st["vs_last"]["after"], st["no_last"], st["from_zero"],
                  st["conns"]))
    else:
        print("verify: full replay: backup starts at stream offset 0: %d (of %d verified)"
              % (st["from_zero"], st["conns"]))


def report_replay_counters(path):
    try:
        with open(path) as f:
            mc = json.load(f)
    except (OSError, ValueError) as e:
        print("verify: migware counters unreadable: %s" % e)
        return
    keys = ["recovered", "replay_aligned", "replay_full", "replay_full_as_aligned",
            "replay_as_push", "replay_verified", "replay_diverged", "replay_absorbed_bytes",
            "replayed_bytes", "replay_turns", "replay_digest_gaps", "replay_full_over_cap",
            "replay_request_over_cap", "buffered_bytes", "kernel_drops"]
    keys += sorted(x for x in mc if x.startswith("replay_fallback") and mc[x])
    print("verify: migware counters: " + " ".join("%s=%s" % (x, mc[x]) for x in keys if x in mc))


# ------------------------------------------------------------------ churn mode
def parse_capture_churn(path, client_ip, server_ip, sport, pull_wall):
    """Per client port, a list of connections (a client SYN with a new ISN starts the next one):
    isn, first SYN time, SYNs sent, highest server ACK before the pull, FIN times, RSTs."""
    conns = {}
    count = [0]
    for ts, src, spt, dst, dpt, flags, rest in capture_segments(path, count):
        if src == client_ip and dst == server_ip and dpt == sport:
            lst = conns.setdefault(spt, [])
            if "S" in flags:
                sm = SEQ.search(rest)
                isn = int(sm.group(1)) if sm else None
                if not lst or lst[-1]["isn"] != isn:
                    lst.append({"isn": isn, "t_syn": ts, "syns": 0, "ack": None,
                                "synack": None, "fin_client": None, "fin_server": None,
                                "rst_client": 0, "client_end": None, "answered": None,
                                "last_req_start": None,
                                **rst_fields()})
                lst[-1]["syns"] += 1
                continue
            if not lst:
                continue
            c = lst[-1]
            sr = SEQRANGE.search(rest)
            if sr and c["isn"] is not None and (pull_wall is None or ts < pull_wall):
                end = (int(sr.group(2)) - (c["isn"] + 1)) % M32
                if c["client_end"] is None or end > c["client_end"]:
                    c["client_end"] = end
                st = (int(sr.group(1)) - (c["isn"] + 1)) % M32
                if st != end and (c["last_req_start"] is None or st > c["last_req_start"]):
                    c["last_req_start"] = st
            if "F" in flags and c["fin_client"] is None:
                c["fin_client"] = ts
            if "R" in flags:
                c["rst_client"] += 1
            note_client_segment(c, flags, rest)
        elif src == server_ip and spt == sport and dst == client_ip:
            lst = conns.get(dpt)
            if not lst:
                continue
            c = lst[-1]
            if "R" in flags:
                count_server_rst(c, rest)
                continue
            if "F" in flags:
                note_fin(c, False, rest)
            if "S" in flags and c["synack"] is None:
                c["synack"] = ts
            if "F" in flags and c["fin_server"] is None:
                c["fin_server"] = ts
            ln = LENGTH.search(rest)
            if ln and int(ln.group(1)) > 0 and (pull_wall is None or ts < pull_wall):
                # The primary answered: every client byte sent so far was consumed
                # (migware's B, DESIGN-NOTES.md "unanswered requests").
                c["answered"] = c["client_end"] or 0
            am = ACK.search(rest)
            if am and (pull_wall is None or ts < pull_wall):
                a = int(am.group(1))
                if c["ack"] is None or s32(a - c["ack"]) > 0:
                    c["ack"] = a
    return conns, count[0]


def migware_unrecoverable(paths):
    """client port -> reason, from migware's event=unrecoverable lines (it logs the first 50)."""
    out = {}
    for path in paths:
        if not os.path.exists(path):
            continue
        with open(path, errors="replace") as f:
            for line in f:
                if "event=unrecoverable " not in line:
                    continue
                kv = dict(re.findall(r"(\w+)=(\S+)", line))
                cl = kv.get("client", "")
                if ":" in cl:
                    try:
                        out[int(cl.rsplit(":", 1)[1])] = kv.get("reason", "?")
                    except ValueError:
                        pass
    return out


def main_churn(a):
    stats = {"unanswered_redelivered": 0, "primary_fenced": 0, "via_primary_after": 0,
             "full_replayed_acked": 0, "answered_replayed": 0}
    pulled = a.pull_wall is not None
    try:
        with open(a.client_json) as f:
            rep = json.load(f)
        atts = rep["conns"]
        K = rep["requests"]
    except (OSError, ValueError, KeyError) as e:
        print("verify: no usable churn report (%s)" % e)
        print("failover: 0 passed, %d failed" % a.connections)
        return 1
    cap, npkts = parse_capture_churn(a.capture_txt, a.client_ip, a.server_ip, a.port,
                                     a.pull_wall if pulled else None)
    plogs, blogs = read_logs(a.primary_dir), read_logs(a.backup_dir)
    by_port = {}
    for at in atts:
        if at["port"] is not None:
            by_port.setdefault(at["port"], []).append(at)
    for lst in by_port.values():
        lst.sort(key=lambda x: x["t_start"])

    def owner(port, side):
        """The attempt a server-side connection belongs to (same port, by time)."""
        lst = by_port.get(port, [])
        if len(lst) <= 1 or not side:
            return lst[0] if lst else None
        t = side.get("t_open") or 0
        best = None
        for at in lst:
            if at["t_start"] - 0.5 <= t:
                best = at
        return best

    srv = {}                       # k -> {"primary": [...], "backup": [...]}
    orphans = []
    for who, logs in (("primary", plogs), ("backup", blogs)):
        for port, entries in logs.items():
            for name, data, side in entries:
                at = owner(port, side)
                if at is None:
                    orphans.append("%s/%s.bin (%d bytes, peer %s)" % (
                        who, name, len(data), side.get("peer") if side else "?"))
                    continue
                srv.setdefault(at["k"], {"primary": [], "backup": []})[who].append((name, data, side))
    capocc = {}
    for port, lst in by_port.items():
        occ = cap.get(port, [])
        for i, at in enumerate(lst):
            if len(occ) == len(lst):
                capocc[at["k"]] = occ[i]
            else:      # by time: the first capture connection whose SYN is not before the attempt
                for c in occ:
                    if c["t_syn"] >= at["t_start"] - 0.01:
                        capocc[at["k"]] = c
                        break
    lost = migware_unrecoverable(a.migware_log)
    fail_lines, reasons_count = [], {}
    cat = {"before": [0, 0], "at": [0, 0], "after": [0, 0]}     # [attempts, passed]
    via_backup = via_backup_after = synretx_after = 0
    no_fin_only = 0
    lat = []
    for at in sorted(atts, key=lambda x: x["k"]):
        k, port, sent = at["k"], at["port"], at["sent"]
        if not pulled or (at["t_end"] or 0) < a.pull_wall:
            where = "before"
        elif at["t_start"] < a.pull_wall:
            where = "at"
        else:
            where = "after"
        reasons = []
        err = at.get("error")
        if err:
            if (a.lenient_close and "FIN never came" in err and at["replies_ok"] == K):
                no_fin_only += 1
            else:
                reasons.append("client: " + err)
        elif at["replies_ok"] != K or not at.get("fin"):
            reasons.append("client: %d/%d replies verified, server FIN %s"
                           % (at["replies_ok"], K, "seen" if at.get("fin") else "not seen"))
        s = srv.get(k, {"primary": [], "backup": []})
        pl, bl = s["primary"], s["backup"]
        for who, lst, ip in (("primary", pl, a.client_ip), ("backup", bl, a.server_ip)):
            if len(lst) > 1:
                reasons.append("%s saw %d connections for this attempt (port %s)" % (who, len(lst), port))
            side = lst[0][2] if lst else None
            if side and side.get("peer") != "%s:%d" % (ip, port):
                reasons.append("%s's connection came from %s, expected %s:%d"
                               % (who, side.get("peer"), ip, port))
            if side and side.get("error"):
                if who == "primary" and a.primary_fenced and "ECONNRESET" in side["error"]:
                    stats["primary_fenced"] += 1  # the stale socket, reset by the fence
                else:
                    reasons.append("%s server: %s" % (who, side["error"]))
        pdata = pl[0][1] if pl else b""
        bdata = bl[0][1] if bl else b""
        cc = capocc.get(k)
        if port is not None and cc is None:
            reasons.append("no SYN from port %d in the client capture" % port)
        elif cc is not None:
            acked = 0
            if cc["ack"] is not None and cc["isn"] is not None:
                acked = (cc["ack"] - (cc["isn"] + 1)) % M32
                if acked == sent + 1 and cc["fin_client"] is not None:
                    acked = sent                       # the client's FIN was acknowledged
            if acked > sent:
                reasons.append("capture: the primary acked %d bytes, the client sent %d" % (acked, sent))
            else:
                r = describe_slice("primary", k, pdata, 0, len(pdata))
                if r:
                    reasons.append(r)
                elif not (acked <= len(pdata) <= sent):
                    reasons.append("primary holds %d bytes; acked %d, sent %d" % (len(pdata), acked, sent))
                start = acked
                if a.replay_mode == "full" and bdata:
                    # full replay: every client byte since the handshake went to the backup
                    # (an attempt closed before the pull has no twin: judged as before)
                    start = 0
                    stats["full_replayed_acked"] += acked
                elif a.replay_unanswered:
                    # migware --recovery.replay-unanswered: the twin starts where the
                    # primary last answered (B), re-delivering a request the primary
                    # acknowledged but never answered. Exactly that, no more, no less.
                    b = cc["answered"] if cc["answered"] is not None else 0
                    if b < acked and len(bdata) == sent - b:
                        start = b
                        stats["unanswered_redelivered"] += acked - b
                    elif len(bdata) > sent - acked and cc["last_req_start"] is not None:
                        # aligned (issue 13): the twin starts at the client's current request,
                        # which the primary may have answered in full (the backup's reply is
                        # then absorbed, checked by digest): a request boundary, at or after
                        # the last request the client sent before the pull, not after acked
                        s0 = sent - len(bdata)
                        lo = cc["last_req_start"] - cc["last_req_start"] % RECLEN
                        if s0 % RECLEN == 0 and lo <= s0 <= acked:
                            start = s0
                            stats["answered_replayed"] += 1
                if a.relayed_to_primary and where == "after" and pdata and not bdata:
                    # --recovery.new-connections-when-primary-returns primary: opened once
                    # the primary was back, relayed to it by migware; the primary must hold
                    # the whole stream.
                    r = describe_slice("primary", k, pdata, 0, sent)
                    if r:
                        reasons.append(r + " [relayed to the returning primary]")
                    else:
                        stats["via_primary_after"] += 1
                    r = None
                else:
                    r = describe_slice("backup", k, bdata, start, sent)
                if r:
                    reasons.append(r + " [primary acked %d, holds %d, client sent %d]"
                                   % (acked, len(pdata), sent))
            if cc["rst_from_server"]:
                reasons.append("client capture: %d RST from %s:%d" % (cc["rst_from_server"],
                                                                      a.server_ip, a.port))
            if where == "after" and cc["syns"] > 1:
                synretx_after += 1
        if reasons and port in lost:
            reasons.append("migware: unrecoverable, reason=%s" % lost[port])
        if reasons and cc is not None and pulled:
            def rel(t):
                return "-" if t is None else "%+.1fms" % (1000 * (t - a.pull_wall))
            reasons.append("capture (relative to the pull): SYN %s x%d, SYN-ACK %s, client FIN %s, "
                           "server FIN %s" % (rel(cc["t_syn"]), cc["syns"], rel(cc["synack"]),
                                              rel(cc["fin_client"]), rel(cc["fin_server"])))
        cat[where][0] += 1
        if at["replies_ok"]:
            lat.append(at["max_reply_ms"])
        if reasons:
            fail_lines.append("FAIL conn %d port %s (%s the pull, worker %d): %s"
                              % (k, port, {"before": "done before", "at": "open at",
                                           "after": "opened after"}[where] if pulled else "no",
                                 at["worker"], "; ".join(reasons)))
            key = re.sub(r"\d+", "#", reasons[0])[:100]
            reasons_count[key] = reasons_count.get(key, 0) + 1
        else:
            cat[where][1] += 1
            if bdata:
                via_backup += 1
                if where == "after":
                    via_backup_after += 1
    total = len(atts)
    passed = sum(v[1] for v in cat.values())
    print("verify: mode=churn workers=%s requests/conn=%d attempts=%d pulled=%s capture_packets=%d"
          % (rep.get("workers"), K, total, "yes" if pulled else "no", npkts))
    print("verify: timeouts: connect %.1fs, reply %.1fs, server FIN %.1fs; close: %s"
          % (rep.get("connect_timeout", 0), rep.get("reply_timeout", 0), rep.get("close_timeout", 0),
             "server FIN not required (lenient)" if a.lenient_close else "server FIN required"))
    if pulled:
        print("verify: attempts done before the pull %d (passed %d), open at the pull %d "
              "(passed %d), opened after the pull %d (passed %d)"
              % (cat["before"][0], cat["before"][1], cat["at"][0], cat["at"][1],
                 cat["after"][0], cat["after"][1]))
        print("verify: completed via the backup %d (of them opened after the pull %d); "
              "opened after the pull with a retransmitted SYN %d"
              % (via_backup, via_backup_after, synretx_after))
    if lat:
        print("verify: worst reply latency per connection: median %.1f ms, p99 %.1f ms, max %.1f ms"
              % (statistics.median(lat), pct(lat, 99), max(lat)))
    if a.lenient_close:
        print("verify: all replies verified but the server's FIN never came (lenient: passed): %d"
              % no_fin_only)
    if orphans:
        print("verify: server connections that match no client attempt: %d, e.g. %s"
              % (len(orphans), "; ".join(orphans[:3])))
    tr = migware_transitions(a.migware_log)
    if tr:
        print("verify: migware transitions: " + ", ".join("%s->%s@%d" % t for t in tr))
        if pulled and a.pull_mono_ns:
            rec = [t[2] for t in tr if t[1] == "recovery"]
            if rec:
                print("verify: detection time (cable pulled -> recovery): %.1f ms"
                      % ((rec[0] - a.pull_mono_ns) / 1e6))
    if a.migware_counters and os.path.exists(a.migware_counters):
        try:
            with open(a.migware_counters) as f:
                mc = json.load(f)
            keys = ["twins", "recovered", "new_connections", "new_connections_unserved",
                    "client_unrecovered", "backup_unknown", "queue_overflow", "send_errors",
                    "rewrite_errors", "kernel_drops"]
            keys += sorted(x for x in mc if x.startswith("unrecovered_"))
            print("verify: migware counters: " + " ".join(
                "%s=%s" % (x, mc[x]) for x in keys if x in mc))
        except (OSError, ValueError) as e:
            print("verify: migware counters unreadable: %s" % e)
    if a.replay_unanswered:
        print("verify: bytes of requests the primary acknowledged but never answered, replayed "
              "into the backup (info): %d" % stats["unanswered_redelivered"])
        print("verify: aligned replay of the client's last request, answered by the primary "
              "(the backup's reply absorbed by migware), attempts (info): %d" % stats["answered_replayed"])
    if a.replay_mode == "full":
        print("verify: full replay: bytes the primary had acknowledged, replayed into the backup "
              "(info): %d" % stats["full_replayed_acked"])
    if a.relayed_to_primary:
        print("verify: opened after the pull and served by the returning primary (relayed by "
              "migware, whole stream checked there): %d" % stats["via_primary_after"])
    if a.primary_fenced:
        below = sum(c["rst_below_window"] for lst in cap.values() for c in lst)
        after = sum(c["rst_after_close"] for lst in cap.values() for c in lst)
        print("verify: RSTs from the server's address below the client's window, dropped by the "
              "client (a fenced primary answering probes): %d" % below)
        print("verify: RSTs from the server's address after the connection had completed "
              "(client in TIME_WAIT; its application done): %d" % after)
        print("verify: primary server connections ended by ECONNRESET (its stale sockets, "
              "fenced): %d" % stats["primary_fenced"])
    print("verify: connection attempts %d, passed %d" % (total, passed))
    if fail_lines:
        print("verify: failure reasons (first reason per connection, numbers as #):")
        for key, n in sorted(reasons_count.items(), key=lambda x: -x[1]):
            print("  %6d x %s" % (n, key))
        for line in fail_lines[:a.show]:
            print(line)
        if len(fail_lines) > a.show:
            print("... %d more failing connections" % (len(fail_lines) - a.show))
        if a.failures_file:
            with open(a.failures_file, "w") as f:
                f.write("\n".join(fail_lines) + "\n")
    ok = total > 0 and passed == total
    if pulled and cat["after"][0] == 0:
        print("verify: FAIL: no connection was opened after the pull")
        ok = False
    if a.relayed_to_primary and stats["via_primary_after"] == 0:
        print("verify: FAIL: no connection was relayed to the returning primary")
        ok = False
    print("failover: %d passed, %d failed" % (passed, total - passed if total else 1))
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("push", "reqresp", "churn"), required=True)
    ap.add_argument("--client-json", required=True)
    ap.add_argument("--capture-txt", required=True)
    ap.add_argument("--primary-dir", required=True)
    ap.add_argument("--backup-dir", required=True)
    ap.add_argument("--connections", type=int, required=True)
    ap.add_argument("--pull-wall", type=float, help="wall clock right after the pull")
    ap.add_argument("--pull-mono-ns", type=int, help="CLOCK_MONOTONIC right after the pull")
    ap.add_argument("--pull-mono-ns-before", type=int)
    ap.add_argument("--migware-log", action="append", default=[],
                    help="migware's stderr/stdout; event=transition lines are read from them")
    ap.add_argument("--client-ip", default="198.18.0.10")
    ap.add_argument("--server-ip", default="198.18.0.1")
    ap.add_argument("--port", type=int, default=7000)
    ap.add_argument("--show", type=int, default=40, help="failing connections printed in full")
    ap.add_argument("--failures-file", help="write every failing connection's reasons here")
    ap.add_argument("--direct-ports", metavar="BASE:N",
                    help="ports BASE..BASE+N-1 are a reference client's own connections to the "
                         "backup, not twins: not reported as unexpected")
    ap.add_argument("--migware-counters", help="churn: migware's `counters` reply (JSON)")
    ap.add_argument("--relayed-to-primary", action="store_true",
                    help="churn: connections opened after the pull may be served by the returning "
                         "primary (migware relays them); each must then hold the whole stream there")
    ap.add_argument("--primary-fenced", action="store_true",
                    help="the primary came back and migware fenced it: its server's connections "
                         "ending in ECONNRESET is the fence working, not a client error")
    ap.add_argument("--replay-mode", choices=("push", "aligned", "full"), default="push",
                    help="migware's --recovery.mode: where the backup's bytes must start (issue 13)")
    ap.add_argument("--replay-unanswered", action="store_true",
                    help="the old name of --replay-mode aligned")
    ap.add_argument("--lenient-close", action="store_true",
                    help="churn: all replies verified but no server FIN is a pass (counted)")
    ap.add_argument("--rolled-back-before", type=float, metavar="WALL",
                    help="backup connections opened before WALL (inf: all) are twins of a "
                         "takeover migware rolled back: reported, not judged")
    a = ap.parse_args()
    if a.replay_unanswered:
        if a.replay_mode not in ("push", "aligned"):
            ap.error("--replay-unanswered is --replay-mode aligned, not %s" % a.replay_mode)
        a.replay_mode = "aligned"
    a.replay_unanswered = a.replay_mode == "aligned"
    if a.mode == "push" and a.replay_mode == "aligned":
        ap.error("--replay-mode aligned needs request/response traffic: a push stream has no requests")
    if a.mode == "churn":
        return main_churn(a)
    pulled = a.pull_wall is not None

    try:
        with open(a.client_json) as f:
            rep = json.load(f)
        cconns = rep["conns"]
    except (OSError, ValueError, KeyError) as e:
        print("verify: no usable client report (%s): every connection fails" % e)
        rep, cconns = None, []

    cap, npkts, synopts = parse_capture(a.capture_txt, a.client_ip, a.server_ip, a.port,
                               a.pull_wall if pulled else None)
    plogs = read_logs(a.primary_dir)
    blogs = read_logs(a.backup_dir)
    rolled_back = [0, 0]   # twins of a rolled-back takeover: connections, bytes
    if a.rolled_back_before is not None:
        for port in list(blogs):
            keep = []
            for name, data, side in blogs[port]:
                if side and side.get("t_open") is not None and side["t_open"] < a.rolled_back_before:
                    rolled_back[0] += 1
                    rolled_back[1] += len(data)
                else:
                    keep.append((name, data, side))
            if keep:
                blogs[port] = keep
            else:
                del blogs[port]

    failures = []          # (k, port, [reasons])
    replay_stats = new_replay_stats()
    passed = 0
    checked = 0
    overlap_total = overlap_conns = 0
    primary_reset = 0
    stalls = []
    seen_ports = set()
    by_k = {c["k"]: c for c in cconns}
    for k in range(a.connections):
        c = by_k.get(k)
        reasons = []
        if c is None:
            failures.append((k, None, ["missing from the client report"]))
            continue
        port, sent = c["port"], c["sent"]
        seen_ports.add(port)
        # (a) + (c): the client's own verdict
        if c.get("error"):
            reasons.append("client: " + c["error"])
        elif not c.get("survived"):
            reasons.append("client: connection did not complete an orderly close")
        if a.mode == "reqresp" and c.get("replies_ok") != c.get("requests"):
            reasons.append("client: %s of %s requests got their correct reply"
                           % (c.get("replies_ok"), c.get("requests")))
        if port is None:
            failures.append((k, port, reasons or ["never connected"]))
            continue
        pl = plogs.get(port, [])
        bl = blogs.get(port, [])
        if len(pl) > 1:
            reasons.append("primary saw %d connections from port %d" % (len(pl), port))
        if len(bl) > 1:
            reasons.append("backup saw %d connections from port %d (twin opened twice?)"
                           % (len(bl), port))
        for who, lst, ip in (("primary", pl, a.client_ip), ("backup", bl, a.server_ip)):
            side = lst[0][2] if lst else None
            if side and side.get("peer") != "%s:%d" % (ip, port):
                reasons.append("%s's connection came from %s, expected %s:%d"
                               % (who, side.get("peer"), ip, port))
            if side and side.get("error"):
                if who == "primary" and a.primary_fenced and "ECONNRESET" in side["error"]:
                    primary_reset += 1  # the stale socket, reset by the fence
                else:
                    reasons.append("%s server: %s" % (who, side["error"]))
        pdata = pl[0][1] if pl else b""
        bdata = bl[0][1] if bl else b""
        # (b) byte-exact
        if not pulled:
            r = describe_slice("primary", k, pdata, 0, sent)
            if r:
                reasons.append(r)
            if bl:
                reasons.append("backup received a connection (%d bytes) without a pull" % len(bdata))
            cc = cap.get(port)
            if cc and cc["rst_from_server"]:
                reasons.append("client capture: %d RST from %s:%d without a pull"
                               % (cc["rst_from_server"], a.server_ip, a.port))
        else:
            cc = cap.get(port)
            if cc is None or cc["isn"] is None:
                reasons.append("no SYN from port %d in the client capture: cannot tell what "
                               "the primary acknowledged" % port)
            else:
                acked = 0 if cc["ack"] is None else (cc["ack"] - (cc["isn"] + 1)) % M32
                if acked > sent:
                    reasons.append("capture says the primary acked %d bytes but the client "
                                   "sent only %d" % (acked, sent))
                else:
                    r = describe_slice("primary", k, pdata, 0, len(pdata))
                    if r:
                        reasons.append(r)
                    elif len(pdata) < acked:
                        reasons.append("primary holds %d bytes but acknowledged %d"
                                       % (len(pdata), acked))
                    elif len(pdata) > sent:
                        reasons.append("primary holds %d bytes, more than the %d sent"
                                       % (len(pdata), sent))
                    else:
                        ov = len(pdata) - acked
                        if ov:
                            overlap_total += ov
                            overlap_conns += 1
                    if a.replay_mode == "push":
                        r = describe_slice("backup", k, bdata, acked, sent)
                    else:
                        r = check_replay_start(a.replay_mode, k, bdata, acked, sent,
                                               cc["last_req_start"], replay_stats)
                    if r:
                        reasons.append(r + " [primary acked %d, primary holds %d, client sent %d]"
                                       % (acked, len(pdata), sent))
                if cc["last_before"] is not None and cc["first_after"] is not None:
                    stalls.append(cc["first_after"] - cc["last_before"])
                if cc["rst_from_server"]:
                    reasons.append("client capture: %d RST from %s:%d"
                                   % (cc["rst_from_server"], a.server_ip, a.port))
        if reasons:
            failures.append((k, port, reasons))
        else:
            passed += 1
            checked += len(pdata) + len(bdata)

    if a.direct_ports:
        base, n = (int(x) for x in a.direct_ports.split(":"))
        seen_ports |= set(range(base, base + n))
    unexpected = sorted(set(blogs) - seen_ports)
    if unexpected:
        print("verify: WARNING: backup got connections from ports no client used: %s"
              % unexpected[:20])

    # ---- report
    print("verify: mode=%s connections=%d pulled=%s capture_packets=%d" % (
        a.mode, a.connections, "yes" if pulled else "no", npkts))
    for key, cnt in sorted(synopts.items(), key=lambda x: -x[1]):
        print("verify: client SYN options [%s] x %d" % (key, cnt))
    if rep:
        print("verify: client connect %.2fs, close phase %.2fs, %d records, %d bytes sent" % (
            rep.get("connect_s", 0), rep.get("close_s", 0), rep.get("records", 0),
            sum(c["sent"] for c in cconns)))
        if a.mode == "reqresp":
            lat = [c["max_reply_ms"] for c in cconns if c.get("requests")]
            if lat:
                print("verify: worst reply latency per connection: median %.1f ms, max %.1f ms"
                      % (statistics.median(lat), max(lat)))
    if a.rolled_back_before is not None:
        print("verify: twins of a takeover migware rolled back, on the backup (info, not judged): "
              "%d connections, %d bytes" % tuple(rolled_back))
    if pulled:
        print("verify: primary's unacknowledged bytes that also went to the backup "
              "(info): %d bytes on %d connections" % (overlap_total, overlap_conns))
        below = sum(c["rst_below_window"] for c in cap.values())
        after = sum(c["rst_after_close"] for c in cap.values())
        if below or after or a.primary_fenced:
            print("verify: RSTs from the server's address below the client's window, dropped by "
                  "the client (a fenced primary answering probes): %d" % below)
            print("verify: RSTs from the server's address after the connection had completed "
                  "(client in TIME_WAIT; its application done): %d" % after)
        if a.primary_fenced:
            print("verify: primary server connections ended by ECONNRESET (its stale sockets, "
                  "fenced): %d" % primary_reset)
        if stalls:
            print("verify: client-visible stall (last ACK from the primary before the pull -> "
                  "first ACK after it, through the backup): median %.1f ms, p99 %.1f ms, max %.1f ms (%d conns)" % (
                      1000 * statistics.median(stalls), 1000 * pct(stalls, 99),
                      1000 * max(stalls), len(stalls)))
    if pulled and a.replay_mode != "push":
        report_replay(a.replay_mode, replay_stats)
    if a.migware_counters:
        report_replay_counters(a.migware_counters)
    tr = migware_transitions(a.migware_log)
    if tr:
        print("verify: migware transitions: " + ", ".join(
            "%s->%s@%d" % t for t in tr))
        if pulled and a.pull_mono_ns:
            rec = [t[2] for t in tr if t[1] == "recovery"]
            prx = [t[2] for t in tr if t[1] == "proxy"]
            if rec:
                det = (rec[0] - a.pull_mono_ns) / 1e6
                extra = ""
                if a.pull_mono_ns_before:
                    extra = " (pull command took %.1f ms)" % (
                        (a.pull_mono_ns - a.pull_mono_ns_before) / 1e6)
                print("verify: detection time (cable pulled -> recovery): %.1f ms%s" % (det, extra))
            if rec and prx:
                later = [p for p in prx if p >= rec[0]]
                if later:
                    print("verify: recovery time (recovery -> proxy): %.1f ms"
                          % ((later[0] - rec[0]) / 1e6))
    print("verify: connections %d, survived %d, bytes checked %d" % (
        a.connections, sum(1 for c in cconns if c.get("survived")), checked))
    if failures:
        counts = {}
        for _, _, rs in failures:
            key = re.sub(r"\d+", "#", rs[0])[:90]
            counts[key] = counts.get(key, 0) + 1
        print("verify: failure reasons (first reason per connection, numbers as #):")
        for key, n in sorted(counts.items(), key=lambda x: -x[1]):
            print("  %6d x %s" % (n, key))
        lines = ["FAIL conn %d port %s: %s" % (k, p, "; ".join(rs)) for k, p, rs in failures]
        for line in lines[:a.show]:
            print(line)
        if len(lines) > a.show:
            print("... %d more failing connections%s" % (
                len(lines) - a.show,
                " (all in %s)" % a.failures_file if a.failures_file else ""))
        if a.failures_file:
            with open(a.failures_file, "w") as f:
                f.write("\n".join(lines) + "\n")
    print("failover: %d passed, %d failed" % (passed, a.connections - passed))
    return 0 if passed == a.connections else 1


if __name__ == "__main__":
    sys.exit(main())
