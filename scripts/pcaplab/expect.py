#!/usr/bin/env python3
"""Derive the expected `migware replay FILE --json` output for a capture from tcpdump's
own decode (`tcpdump -nn -S -e -tt -v -r FILE`).  This deliberately does NOT parse pcap
bytes itself: it reads tcpdump's text, so it is an independent oracle for migware's
parser and tracker.

  expect.py [--server IP:PORT] [--check] FILE.pcap > FILE.expected.jsonl

Output: one compact JSON object per connection, in order of the connection's first
packet in the file, then one summary line.  Semantics (pcaps/README.md has the full list):
  client  = sender of the SYN (no ACK).  No SYN seen: the --server endpoint decides if
            given, else the lower port is the server (tie: destination of first packet).
            A SYN-ACK seen without its SYN makes its sender the server.
  state   = handshake | established | closing | closed
  *_bytes_acked = highest ACK from the peer - (isn + 1), minus 1 if that ACK covers the
            side's FIN; all mod 2^32.
--check    exit non-zero (after printing) if a frame has a bad checksum, is truncated,
           is a super-segment (> 1514 bytes + 802.1Q tags), or is an exact duplicate.
"""
import argparse
import json
import re
import subprocess
import sys

M32 = 1 << 32

TS_LINE = re.compile(r"^\d+\.\d+ ")
TCP_LINE = re.compile(
    r"^\s+(\d+\.\d+\.\d+\.\d+)\.(\d+) > (\d+\.\d+\.\d+\.\d+)\.(\d+): Flags \[([^\]]*)\](.*)$")


def sdiff(a, b):
    """serial-number difference a - b as a signed 32-bit value"""
    d = (a - b) % M32
    return d - M32 if d >= 1 << 31 else d


def tcpdump_frames(path):
    out = subprocess.run(["tcpdump", "-nn", "-S", "-e", "-tt", "-v", "-r", path],
                         capture_output=True, text=True, errors="replace")
    if out.returncode != 0:
        sys.exit(f"tcpdump failed on {path}: {out.stderr.strip()}")
    frames = []
    for ln in out.stdout.splitlines():
        if TS_LINE.match(ln):
            frames.append([ln])
        elif frames:
            frames[-1].append(ln)
        else:
            sys.exit(f"unexpected tcpdump line: {ln!r}")
    return frames


def parse_frame(lines):
    """-> (kind, info) with kind in {'tcp', 'other', 'malformed'}"""
    head = lines[0]
    text = "\n".join(lines)
    problems = []
    m = re.search(r"ethertype [^,]*?, length (\d+):", head)
    flen = int(m.group(1)) if m else None
    ntags = head.count("ethertype 802.1Q")
    ethertypes = re.findall(r"ethertype (\S+) \(0x[0-9a-f]+\)", head)
    if not ethertypes or ethertypes[-1] != "IPv4" or "proto TCP (6)" not in head:
        return "other", {"flen": flen, "problems": problems}
    # truncation/invalid markers of the link, IP and TCP printers only (the HTTP printer
    # in -v mode prints "[|http]" when it stops printing a body, which is not truncation)
    iptcp = head + "\n" + (re.split(r", length \d+", lines[1], maxsplit=1)[0]
                           if len(lines) > 1 else "")
    if any(t in iptcp for t in ("[|", "truncated", "bad hdr", "bad-len", "bad opt")):
        return "malformed", {"flen": flen, "problems": ["truncated/invalid: " + head]}
    if not re.search(r"offset 0,", head):
        return "malformed", {"flen": flen, "problems": ["IP fragment: " + head]}
    m = TCP_LINE.match(lines[1]) if len(lines) > 1 else None
    if not m:
        return "malformed", {"flen": flen, "problems": ["unparsed TCP: " + text]}
    src = f"{m.group(1)}:{m.group(2)}"
    dst = f"{m.group(3)}:{m.group(4)}"
    flags = m.group(5)
    rest = m.group(6)
    if "incorrect" in rest or "bad cksum" in head:
        problems.append("bad checksum: " + lines[1].strip())
    if flen is not None and flen > 1514 + 4 * ntags:
        problems.append(f"super-segment {flen} bytes: " + lines[1].strip())
    seq = re.search(r", seq (\d+)", rest)
    ack = re.search(r", ack (\d+)", rest)
    length = re.search(r", length (\d+)", rest)
    opts = re.search(r", options \[([^\]]*)\]", rest)
    ipid = re.search(r"id (\d+),", head)
    info = {
        "src": src, "dst": dst,
        "syn": "S" in flags, "fin": "F" in flags, "rst": "R" in flags, "ackf": "." in flags,
        "seq": int(seq.group(1)) if seq else None,
        "ack": int(ack.group(1)) if ack and "." in flags else None,
        "len": int(length.group(1)) if length else 0,
        "opts": opts.group(1) if opts else "",
        "flen": flen, "problems": problems,
        "dupkey": (src, dst, flags, seq and seq.group(0), ack and ack.group(0),
                   length and length.group(1), ipid and ipid.group(1), rest),
    }
    if info["seq"] is None and (info["syn"] or info["fin"] or info["len"] or info["rst"]):
        # tcpdump omits "seq" only on pure ACKs; anything else is suspicious
        return "malformed", {"flen": flen, "problems": ["no seq: " + text]}
    return "tcp", info


def parse_opts(s):
    o = {"mss": None, "wscale": None, "sack": False, "ts": False}
    m = re.search(r"\bmss (\d+)", s)
    if m:
        o["mss"] = int(m.group(1))
    m = re.search(r"\bwscale (\d+)", s)
    if m:
        o["wscale"] = int(m.group(1))
    o["sack"] = "sackOK" in s
    o["ts"] = bool(re.search(r"\bTS val ", s))
    return o


class Conn:
    def __init__(self, client, server, partial):
        self.client, self.server = client, server
        self.partial = partial
        self.state = "established" if partial else "handshake"
        self.syn = None      # client SYN options
        self.synack = None   # server SYN-ACK options
        self.cisn = None
        self.sisn = None
        self.max_ack = {}    # side -> highest ACK number sent by that side
        self.fin = {}        # side -> sequence number of that side's FIN
        self.rst = False

    def side(self, ep):
        return "c" if ep == self.client else "s"

    def fin_acked(self, side):
        other = "s" if side == "c" else "c"
        return side in self.fin and other in self.max_ack and \
            sdiff(self.max_ack[other], self.fin[side]) >= 1

    def update(self, p):
        side = self.side(p["src"])
        if p["syn"] and not p["ackf"] and side == "c":
            if self.syn is None:
                self.syn = parse_opts(p["opts"])
                self.cisn = p["seq"]
        elif p["syn"] and p["ackf"] and side == "s":
            if self.synack is None:
                self.synack = parse_opts(p["opts"])
                self.sisn = p["seq"]
        if p["ack"] is not None:
            prev = self.max_ack.get(side)
            if prev is None or sdiff(p["ack"], prev) > 0:
                self.max_ack[side] = p["ack"]
        if p["fin"]:
            fseq = (p["seq"] + p["len"] + (1 if p["syn"] else 0)) % M32
            self.fin.setdefault(side, fseq)
        if p["rst"]:
            self.rst = True
        # state
        if self.state == "handshake" and side == "c" and p["ackf"] and not p["syn"] \
                and self.sisn is not None and sdiff(p["ack"], self.sisn + 1) >= 0:
            self.state = "established"
        if self.rst or (self.fin_acked("c") and self.fin_acked("s")):
            self.state = "closed"
        elif self.fin:
            self.state = "closing"

    def bytes_acked(self, side):
        isn = self.cisn if side == "c" else self.sisn
        other = "s" if side == "c" else "c"
        if isn is None or other not in self.max_ack:
            return None
        n = (self.max_ack[other] - (isn + 1)) % M32
        if self.fin_acked(side):
            n = (n - 1) % M32
        return n

    def row(self):
        both = self.syn is not None and self.synack is not None
        ws = both and self.syn["wscale"] is not None and self.synack["wscale"] is not None
        return {
            "client": self.client, "server": self.server, "state": self.state,
            "client_isn": self.cisn, "server_isn": self.sisn,
            "mss": self.syn["mss"] if self.syn else None,
            "client_wscale": self.syn["wscale"] if ws else None,
            "server_wscale": self.synack["wscale"] if ws else None,
            "sack": (self.syn["sack"] and self.synack["sack"]) if both else None,
            "timestamps": (self.syn["ts"] and self.synack["ts"]) if both else None,
            "partial": self.syn is None,
            "client_bytes_acked": self.bytes_acked("c"),
            "server_bytes_acked": self.bytes_acked("s"),
        }


def port(ep):
    return int(ep.rsplit(":", 1)[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pcap")
    ap.add_argument("--server", help="IP:PORT; track only connections with this endpoint")
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()

    frames = tcpdump_frames(a.pcap)
    packets = len(frames)
    tcp = malformed = 0
    problems = []
    conns = {}
    order = []
    seen = set()
    for fr in frames:
        kind, p = parse_frame(fr)
        problems += p["problems"]
        if kind == "malformed":
            malformed += 1
            continue
        if kind != "tcp":
            continue
        tcp += 1
        if p["dupkey"] in seen:
            problems.append("duplicate frame: " + fr[1].strip())
        seen.add(p["dupkey"])
        if a.server and a.server not in (p["src"], p["dst"]):
            continue
        key = frozenset((p["src"], p["dst"]))
        c = conns.get(key)
        if c is not None and p["syn"] and not p["ackf"] and c.state == "closed" \
                and c.cisn is not None and p["seq"] != c.cisn:
            print(f"expect.py: new SYN on closed 4-tuple {p['src']}>{p['dst']}: new connection",
                  file=sys.stderr)
            c = None
        if c is None:
            if p["syn"] and not p["ackf"]:
                client, server, partial = p["src"], p["dst"], False
            elif p["syn"] and p["ackf"]:
                client, server, partial = p["dst"], p["src"], True
            elif a.server:
                server = a.server
                client = p["dst"] if p["src"] == server else p["src"]
                partial = True
            else:
                if port(p["src"]) < port(p["dst"]):
                    server, client = p["src"], p["dst"]
                else:  # lower dst port, or tie: destination of first packet
                    server, client = p["dst"], p["src"]
                partial = True
            c = Conn(client, server, partial)
            conns[key] = c
            order.append(c)
        c.update(p)

    for c in order:
        print(json.dumps(c.row(), separators=(",", ":")))
    print(json.dumps({"summary": True, "packets": packets, "tcp": tcp,
                      "malformed": malformed, "connections": len(order)},
                     separators=(",", ":")))
    for pr in problems:
        print("expect.py: " + pr, file=sys.stderr)
    if a.check and (problems or malformed):
        sys.exit(f"expect.py: {a.pcap}: {len(problems)} problem(s), {malformed} malformed")


if __name__ == "__main__":
    main()
