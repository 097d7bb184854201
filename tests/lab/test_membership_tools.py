#!/usr/bin/env python3
"""Self-tests of verify_chain.py and membership_invariants.py (issue 12), without root or a lab.

Each test builds its inputs in a temporary directory: server logs cut from traffic.stream and a
client report in traffic.py's format for verify_chain; pcaps written with struct (Ethernet,
IPv4, TCP, ARP, one 802.1Q tag) and logfmt logs for membership_invariants.  Each runs the tool's
main() in-process and asserts the exit status AND the specific verdict text or count, so a
checker that passes everything (or fails everything) fails these tests.

  python3 tests/lab/test_membership_tools.py        (a few seconds, stdlib only)
"""

import contextlib
import io
import json
import os
import shutil
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import membership_invariants  # noqa: E402
import verify_chain  # noqa: E402
from traffic import stream, RECLEN  # noqa: E402

BASE_PORT = 41000


def run(main, argv):
    """(exit status, stdout) of a tool's main(argv)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as e:       # argparse errors
            rc = e.code
    return rc, out.getvalue()


class TempDir(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mwtest.")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)


# ================================================================== verify_chain
class Chain(TempDir):
    """A run of N connections over the servers primary, b1, b2.  By default connection k's
    stream is cut at 300 and 700 bytes (primary [0,310), b1 [300,700), b2 [700,sent)), with
    10 bytes the primary got but never acknowledged also on b1."""

    N = 4
    SERVERS = ("primary", "b1", "b2")

    def setUp(self):
        super().setUp()
        for s in self.SERVERS:
            os.makedirs(self.path(s))
        self.conns = [{"k": k, "port": BASE_PORT + k, "sent": 1000 + 37 * k,
                       "records": 0, "requests": 0, "replies_ok": 0, "max_reply_ms": 0.0,
                       "error": None, "survived": True} for k in range(self.N)]
        for c in self.conns:
            k, sent = c["k"], c["sent"]
            self.log("primary", k, stream(k, 0, 310))
            self.log("b1", k, stream(k, 300, 700))
            self.log("b2", k, stream(k, 700, sent))

    def log(self, server, k, data, suffix=""):
        with open(self.path(server, "%d%s.bin" % (BASE_PORT + k, suffix)), "wb") as f:
            f.write(data)

    def unlog(self, server, k):
        os.remove(self.path(server, "%d.bin" % (BASE_PORT + k)))

    def verify(self, *extra, mode="push", servers=SERVERS):
        with open(self.path("client.json"), "w") as f:
            json.dump({"mode": mode, "t_start_wall": 1000.0, "reclen": RECLEN,
                       "conns": self.conns}, f)
        argv = ["--mode", mode, "--connections", str(self.N),
                "--client-json", self.path("client.json")]
        for s in servers:
            argv += ["--server", "%s=%s" % (s, self.path(s))]
        return run(verify_chain.main, argv + list(extra))

    def assertVerdict(self, out, passed):
        self.assertEqual(out.strip().splitlines()[-1],
                         "chain: %d passed, %d failed" % (passed, self.N - passed), out)

    def fail_line(self, out, k):
        lines = [ln for ln in out.splitlines() if ln.startswith("FAIL conn %d " % k)]
        self.assertEqual(len(lines), 1, out)
        return lines[0]

    # -- passing chains
    def test_good_chain_passes(self):
        rc, out = self.verify("--expect-servers", "primary,b1,b2")
        self.assertEqual(rc, 0, out)
        self.assertVerdict(out, self.N)
        self.assertIn("chain: path primary>b1>b2: %d connections" % self.N, out)
        self.assertIn("chain: server b1: %d connections (%d with bytes), %d bytes"
                      % (self.N, self.N, 400 * self.N), out)

    def test_unaligned_cuts_pass(self):
        for c in self.conns:
            k, sent = c["k"], c["sent"]
            self.log("primary", k, stream(k, 0, 333))
            self.log("b1", k, stream(k, 301, 705))     # mid-record start
            self.log("b2", k, stream(k, 705, sent))
        rc, out = self.verify()
        self.assertEqual(rc, 0, out)
        self.assertVerdict(out, self.N)

    def test_connection_opened_after_the_primary_died_may_start_on_a_backup(self):
        self.unlog("primary", 1)
        self.log("b1", 1, stream(1, 0, 700))
        rc, out = self.verify()
        self.assertEqual(rc, 0, out)
        self.assertIn("chain: path b1>b2: 1 connections", out)

    def test_empty_log_on_the_last_server_is_no_duplicate(self):
        self.log("b1", 2, stream(2, 300, self.conns[2]["sent"]))
        self.log("b2", 2, b"")
        rc, out = self.verify("--expect-servers", "primary,b1,b2")
        self.assertEqual(rc, 0, out)
        self.assertIn("chain: path primary>b1>b2: %d connections" % self.N, out)

    def test_short_slice_without_header_is_placed_by_the_chain(self):
        k, sent = 0, self.conns[0]["sent"]
        self.log("b1", k, stream(k, 300, 700))
        self.log("b2", k, stream(k, 700, 710))          # 10 bytes, no record header
        extra = stream(k, 710, sent)
        os.makedirs(self.path("b3"))
        with open(self.path("b3", "%d.bin" % BASE_PORT), "wb") as f:
            f.write(extra)
        rc, out = self.verify(servers=self.SERVERS + ("b3",))
        self.assertEqual(rc, 0, out)
        self.assertIn("chain: path primary>b1>b2>b3: 1 connections", out)

    def test_short_tail_inside_the_cover_is_placed_at_the_end(self):
        sent = self.conns[0]["sent"]
        self.log("b1", 0, stream(0, 300, sent))
        self.log("b2", 0, stream(0, sent - 4, sent))           # b"...\n": fits every record
        rc, out = self.verify("--expect-servers", "primary,b1,b2")
        self.assertEqual(rc, 0, out)
        self.assertIn("chain: path primary>b1>b2: %d connections" % self.N, out)

    def test_short_log_takes_the_placement_that_lets_the_chain_hold(self):
        # b"K00" is stream(0)[0:3] and stream(0)[32:35]: at 0 it would twin the primary's
        # start, at 32 it is a slice inside the primary's (a server that got 3 bytes)
        sent = self.conns[0]["sent"]
        self.log("primary", 0, stream(0, 0, sent))
        self.log("b1", 0, stream(0, 32, 35))
        self.log("b2", 0, stream(0, sent - 1, sent))
        rc, out = self.verify()
        self.assertEqual(rc, 0, out)
        self.log("b2", 0, stream(0, 32, 35))               # now b1 and b2 twin, wherever
        rc, out = self.verify()
        self.assertEqual(rc, 1, out)
        self.assertIn("DUPLICATE start: b1 [", self.fail_line(out, 0))

    def test_random_chains_pass_and_one_lost_byte_fails(self):
        """Seeded: 60 connections cut at random points into 2-4 slices with random overlaps,
        some only a few bytes long, all pass; then one byte dropped from one slice of every
        third connection (where a slice holds a record start) fails exactly those."""
        import random
        rnd = random.Random(12)
        self.N = 60
        servers = ("primary", "b1", "b2", "b3")
        os.makedirs(self.path("b3"))
        for s in servers:
            for fn in os.listdir(self.path(s)):
                os.remove(self.path(s, fn))
        self.conns = []
        cuts = {}
        for k in range(self.N):
            sent = rnd.choice((8, 40, 200, 1000, 3000)) + rnd.randrange(64)
            self.conns.append({"k": k, "port": BASE_PORT + k, "sent": sent, "requests": 0,
                               "replies_ok": 0, "error": None, "survived": True})
            pts = sorted(rnd.sample(range(1, sent - 4), rnd.randrange(1, 3)))
            if rnd.random() < 0.3:
                pts.append(sent - rnd.randrange(1, 5))                # a tiny tail
            bounds = [0] + pts + [sent]
            cuts[k] = []
            for i, srv in enumerate(servers[:len(bounds) - 1]):
                end = min(sent, bounds[i + 1] + rnd.randrange(0, 40))
                cuts[k].append((srv, bounds[i], end))
                self.log(srv, k, stream(k, bounds[i], end))
        rc, out = self.verify(servers=servers)
        self.assertEqual(rc, 0, out)
        self.assertVerdict(out, self.N)
        broken = set()
        for k in range(0, self.N, 3):
            # drop a record's leading "K" inside a slice: always detectable (a dot dropped
            # from a slice's final run of dots is not: what is left is a valid, shorter slice)
            places = [(srv, a, b, j) for srv, a, b in cuts[k] for j in range(1, b - a - 1)
                      if stream(k, a + j, a + j + 1) == b"K"]
            if not places:
                continue
            srv, a, b, j = rnd.choice(places)
            data = stream(k, a, b)
            self.log(srv, k, data[:j] + data[j + 1:])
            broken.add(k)
        self.assertGreater(len(broken), 10)
        rc, out = self.verify(servers=servers)
        self.assertEqual(rc, 1, out)
        self.assertVerdict(out, self.N - len(broken))
        failed = {int(ln.split()[2]) for ln in out.splitlines() if ln.startswith("FAIL conn")}
        self.assertEqual(failed, broken, out)

    # -- failing chains
    def test_gap_between_slices_fails(self):
        self.log("b2", 1, stream(1, 740, self.conns[1]["sent"]))
        rc, out = self.verify()
        self.assertEqual(rc, 1, out)
        self.assertVerdict(out, self.N - 1)
        self.assertIn("GAP of 40 bytes at stream offset 700: no server holds [700,740) "
                      "(b1 [300,700), then b2 [740,", self.fail_line(out, 1))

    def test_bytes_repeated_inside_a_slice_fail(self):
        data = stream(2, 300, 500) + stream(2, 460, 700)     # 40 bytes delivered twice
        self.log("b1", 2, data)
        rc, out = self.verify()
        self.assertEqual(rc, 1, out)
        self.assertVerdict(out, self.N - 1)
        self.assertIn("b1's log %d.bin (440 bytes) repeats 40 bytes (DUPLICATE) at stream "
                      "offset 500" % (BASE_PORT + 2), self.fail_line(out, 2))

    def test_bytes_skipped_inside_a_slice_fail(self):
        self.log("b1", 0, stream(0, 300, 500) + stream(0, 532, 700))
        rc, out = self.verify()
        self.assertEqual(rc, 1, out)
        self.assertIn("skips 32 bytes (GAP) at stream offset 500", self.fail_line(out, 0))

    def test_slice_not_matching_the_stream_fails(self):
        data = bytearray(stream(3, 300, 700))
        data[100:104] = b"XXXX"
        self.log("b1", 3, bytes(data))
        self.log("b2", 1, stream(2, 700, 1037))             # connection 2's bytes on port of 1
        rc, out = self.verify()
        self.assertEqual(rc, 1, out)
        self.assertVerdict(out, self.N - 3)
        self.assertIn("differs from the stream at offset 400 (got b'XXXX", self.fail_line(out, 3))
        # A log belongs to the connection its bytes name: connection 2 now has two on b2
        # from the same offset, and connection 1 lost its last slice.
        self.assertIn("DUPLICATE start: b2 [700,1037) and b2 [700,1074)", self.fail_line(out, 2))
        self.assertIn("bytes lost", self.fail_line(out, 1))

    def test_a_twin_on_another_port_is_attributed_by_its_bytes(self):
        # migware gave connection 1's twin on b2 the port of no client (its host still held
        # a socket on 41001): b2's server names the log by the twin's port.
        os.remove(self.path("b2", "%d.bin" % (BASE_PORT + 1)))
        with open(self.path("b2", "50001.bin"), "wb") as f:
            f.write(stream(1, 700, self.conns[1]["sent"]))
        rc, out = self.verify()
        self.assertEqual(rc, 0, out)
        self.assertIn("path primary>b1>b2: 4 connections", out)

    def test_last_slice_short_of_sent_fails(self):
        sent = self.conns[0]["sent"]
        self.log("b2", 0, stream(0, 700, sent - 64))
        rc, out = self.verify()
        self.assertEqual(rc, 1, out)
        self.assertIn("the last slice, b2 [700,%d), ends at %d, short of the %d bytes the "
                      "client sent: 64 bytes lost" % (sent - 64, sent - 64, sent),
                      self.fail_line(out, 0))

    def test_slice_beyond_sent_fails(self):
        self.conns[1]["sent"] -= 32
        rc, out = self.verify()
        self.assertEqual(rc, 1, out)
        self.assertIn("reaches 32 bytes beyond the", self.fail_line(out, 1))

    def test_client_error_fails(self):
        self.conns[2]["error"] = "ECONNRESET"
        self.conns[2]["survived"] = False
        self.conns[3]["survived"] = False
        rc, out = self.verify()
        self.assertEqual(rc, 1, out)
        self.assertVerdict(out, self.N - 2)
        self.assertIn("client: ECONNRESET", self.fail_line(out, 2))
        self.assertIn("client: connection did not complete an orderly close",
                      self.fail_line(out, 3))

    def test_reqresp_unverified_reply_fails(self):
        for c in self.conns:
            c["requests"] = c["replies_ok"] = c["sent"] // RECLEN
        self.conns[1]["replies_ok"] -= 1
        rc, out = self.verify(mode="reqresp")
        self.assertEqual(rc, 1, out)
        self.assertVerdict(out, self.N - 1)
        self.assertIn("client: %d of %d requests got their correct reply"
                      % (self.conns[1]["replies_ok"], self.conns[1]["requests"]),
                      self.fail_line(out, 1))

    def test_two_servers_starting_at_the_same_offset_fail(self):
        self.log("b2", 0, stream(0, 300, self.conns[0]["sent"]))   # a twin of b1's takeover
        rc, out = self.verify()
        self.assertEqual(rc, 1, out)
        self.assertIn("DUPLICATE start: b1 [300,700) and b2 [300,", self.fail_line(out, 0))

    def test_primary_slice_not_at_zero_fails(self):
        self.log("primary", 1, stream(1, 64, 310))
        rc, out = self.verify()
        self.assertEqual(rc, 1, out)
        self.assertIn("the primary's slice primary [64,310) starts at 64, not 0",
                      self.fail_line(out, 1))

    def test_missing_primary_log_fails_when_opened_before_the_pull(self):
        self.unlog("primary", 1)
        self.log("b1", 1, stream(1, 0, 700))
        rc, out = self.verify("--pull-wall", "1001.5")
        self.assertEqual(rc, 1, out)
        self.assertIn("the primary has no log for port %d, though the connection was opened "
                      "before the pull" % (BASE_PORT + 1), self.fail_line(out, 1))

    def test_missing_beginning_fails(self):
        self.unlog("primary", 2)
        rc, out = self.verify()
        self.assertEqual(rc, 1, out)
        line = self.fail_line(out, 2)
        self.assertIn("the primary has no log for port %d and no backup's slice starts at 0"
                      % (BASE_PORT + 2), line)
        self.assertIn("GAP of 300 bytes at stream offset 0", line)

    def test_a_server_that_took_over_twice_holds_two_slices(self):
        # b1 served [300,700), stood down, and took connection 3 over again later (a restarted
        # migware, whose twin got another port): two slices on b1, chained, pass.
        sent = self.conns[3]["sent"]
        self.unlog("b2", 3)
        self.log("b2", 3, stream(3, 700, 800))
        with open(self.path("b1", "50003.bin"), "wb") as f:
            f.write(stream(3, 800, sent))
        rc, out = self.verify()
        self.assertEqual(rc, 0, out)
        self.assertIn("path primary>b1>b2>b1: 1 connections", out)
        # The same server twice from one offset is still a duplicate.
        with open(self.path("b1", "50004.bin"), "wb") as f:
            f.write(stream(3, 800, sent))
        rc, out = self.verify()
        self.assertEqual(rc, 1, out)
        self.assertIn("DUPLICATE start", self.fail_line(out, 3))

    def test_expect_servers_wants_the_last_slice_on_the_last_server(self):
        self.log("b1", 0, stream(0, 300, self.conns[0]["sent"]))
        self.unlog("b2", 0)
        rc, out = self.verify("--expect-servers", "primary,b1,b2")
        self.assertEqual(rc, 1, out)
        self.assertIn("chain: path primary>b1: 1 connections", out)
        self.assertIn("the last slice is on b1, expected b2 (path primary>b1)",
                      self.fail_line(out, 0))
        rc, out = self.verify("--expect-servers", "primary,b1")
        self.assertEqual(rc, 1, out)
        self.assertIn("served by b2, not in --expect-servers", self.fail_line(out, 1))

    def test_missing_connection_and_bad_input(self):
        del self.conns[3]
        rc, out = self.verify()
        self.assertEqual(rc, 1, out)
        self.assertIn("missing from the client report", self.fail_line(out, 3))
        rc, out = run(verify_chain.main, ["--mode", "push", "--connections", "2",
                                          "--client-json", self.path("nope.json"),
                                          "--server", "primary=" + self.path("primary")])
        self.assertEqual(rc, 2, out)
        self.assertIn("chain: bad input: client report", out)
        self.assertEqual(out.strip().splitlines()[-1], "chain: 0 passed, 2 failed")
        rc, out = self.verify(servers=("primary", "nodir"))
        self.assertEqual(rc, 2, out)
        self.assertIn("does not exist", out)


# ================================================================== membership_invariants
PRIMARY_IP = "198.18.0.1"
MACS = {"client": "02:00:00:00:00:10", "primary": "02:00:00:00:00:01",
        "b1": "02:00:00:00:00:02", "b2": "02:00:00:00:00:03"}
T0 = 1700000000.0


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def ip(s):
    return bytes(int(x) for x in s.split("."))


def eth(dst, src, etype, payload, vlan=None):
    tag = struct.pack("!HH", 0x8100, vlan) if vlan is not None else b""
    return mac(dst) + mac(src) + tag + struct.pack("!H", etype) + payload


def tcp_frame(src_mac, dst_mac, src_ip, dst_ip, flags=0x18, vlan=None):
    tcp = struct.pack("!HHIIBBHHH", 7000, 40000, 1, 1, 5 << 4, flags, 65535, 0, 0)
    ip_hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0,
                         ip(src_ip), ip(dst_ip))
    return eth(dst_mac, src_mac, 0x0800, ip_hdr + tcp, vlan)


def arp_frame(src_mac, sender_mac, sender_ip, target_ip, op=1):
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, mac(sender_mac), ip(sender_ip),
                       b"\0" * 6, ip(target_ip))
    return eth("ff:ff:ff:ff:ff:ff", src_mac, 0x0806, body)


def write_pcap(path, frames):
    """Classic pcap, little-endian microseconds, Ethernet: frames = [(wall ts, bytes)]."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts, fr in frames:
            sec = int(ts)
            usec = int(round((ts - sec) * 1e6))
            f.write(struct.pack("<IIII", sec, usec, len(fr), len(fr)) + fr)


def speak(who, t, vlan=None):
    """A data segment from the primary's IP to the client, sent by `who`'s MAC."""
    return (T0 + t, tcp_frame(MACS[who], MACS["client"], PRIMARY_IP, "198.18.0.10", vlan=vlan))


class Membership(TempDir):
    def check(self, frames, logs=None, extra=()):
        write_pcap(self.path("hub.pcap"), frames)
        argv = ["--pcap", self.path("hub.pcap"), "--primary-ip", PRIMARY_IP,
                "--primary-mac", MACS["primary"],
                "--backup-mac", "b1=" + MACS["b1"], "--backup-mac", "b2=" + MACS["b2"]]
        for name, lines in (logs or {}).items():
            with open(self.path(name + ".log"), "w") as f:
                f.write("\n".join(lines) + "\n")
            argv += ["--log", "%s=%s" % (name, self.path(name + ".log"))]
        return run(membership_invariants.main, argv + list(extra))

    def last(self, out):
        return out.strip().splitlines()[-1]

    def violations(self, out, kind):
        return [ln for ln in out.splitlines() if ln.startswith(
            "membership_invariants: VIOLATION ") and " %s " % kind in ln]

    # -- M1
    def test_two_backups_10ms_apart_is_a_violation(self):
        rc, out = self.check([speak("primary", 0.0), speak("b1", 1.0), speak("b2", 1.010)])
        self.assertEqual(rc, 1, out)
        self.assertEqual(self.last(out), "membership_invariants: 1 violations")
        v = self.violations(out, "M1")
        self.assertEqual(len(v), 1, out)
        self.assertIn("two speakers for 198.18.0.1 within 10.0 ms", v[0])
        self.assertIn("from b1 (%s), then" % MACS["b1"], v[0])
        self.assertIn("from b2 (%s)" % MACS["b2"], v[0])

    def test_two_backups_400ms_apart_is_fine(self):
        rc, out = self.check([speak("primary", 0.0), speak("b1", 1.0), speak("b1", 1.1),
                              speak("b2", 1.5), speak("b2", 1.6)])
        self.assertEqual(rc, 0, out)
        self.assertEqual(self.last(out), "membership_invariants: ok")

    def test_an_overlap_is_one_episode_and_backups_have_no_exception(self):
        frames = []
        for i in range(10):                      # b1 and b2 interleaved every 5 ms for 50 ms
            frames += [speak("b1", 2.0 + 0.01 * i), speak("b2", 2.005 + 0.01 * i, vlan=7)]
        rc, out = self.check(frames, extra=("--primary-dead-after", str(T0 + 1)))
        self.assertEqual(rc, 1, out)
        v = self.violations(out, "M1")
        self.assertEqual(len(v), 1, out)
        self.assertIn("(19 frame pairs closer than 50 ms", v[0])

    def test_primary_beside_a_backup_after_dead_after_is_information(self):
        frames = [speak("primary", 0.0), speak("b1", 3.0), speak("primary", 3.02)]
        rc, out = self.check(frames, extra=("--primary-dead-after", str(T0 + 2.5)))
        self.assertEqual(rc, 0, out)
        self.assertIn("(info) the primary's MAC beside a backup after --primary-dead-after: "
                      "1 episodes, 1 frame pairs", out)
        self.assertEqual(self.last(out), "membership_invariants: ok")
        rc, out = self.check(frames)                            # no exception without it
        self.assertEqual(rc, 1, out)
        self.assertEqual(len(self.violations(out, "M1")), 1, out)
        rc, out = self.check(frames, extra=("--primary-dead-after", str(T0 + 3.5)))
        self.assertEqual(rc, 1, out)                            # before the death: a violation
        self.assertEqual(self.last(out), "membership_invariants: 1 violations")
        stranger = (T0 + 3.03, tcp_frame("02:00:00:00:00:99", MACS["client"], PRIMARY_IP,
                                         "198.18.0.10"))
        rc, out = self.check(frames + [stranger], extra=("--primary-dead-after", str(T0 + 2.5)))
        self.assertEqual(rc, 1, out)                            # only a named backup is excused
        v = self.violations(out, "M1")
        self.assertEqual(len(v), 2, out)
        self.assertTrue(all("from 02:00:00:00:00:99" in x for x in v), out)

    def test_arp_speaks_for_the_mac_it_names(self):
        # b1, active, points the clients back at the primary: from b1's port, naming the
        # primary's MAC: not a second speaker.  b2's gratuitous ARP 20 ms after b1's frame is.
        frames = [speak("b1", 1.0),
                  (T0 + 1.01, arp_frame(MACS["b1"], MACS["primary"], PRIMARY_IP, PRIMARY_IP)),
                  (T0 + 1.03, arp_frame(MACS["b2"], MACS["b2"], PRIMARY_IP, PRIMARY_IP))]
        rc, out = self.check(frames)
        v = self.violations(out, "M1")
        # three pairs: b1 and the ARP it sent naming the primary (attributed to the primary,
        # not to b1), b1 and b2, the primary-named ARP and b2
        self.assertEqual(len(v), 3, out)
        self.assertIn("is-at %s -> 198.18.0.1 (sent by %s) from primary (%s)"
                      % (MACS["primary"], MACS["b1"], MACS["primary"]), v[0])
        self.assertTrue(any("is-at %s -> 198.18.0.1 (sent by %s) from b2"
                            % (MACS["b2"], MACS["b2"]) in x and "from b1" in x for x in v), out)
        frames = frames[:2]
        rc, out = self.check(frames, extra=("--primary-dead-after", str(T0)))
        self.assertEqual(rc, 0, out)

    def test_timeline_bursts(self):
        frames = [speak("primary", t / 10) for t in range(5)]
        frames += [speak("b1", 2 + t / 10) for t in range(5)] + [speak("b1", 3.0)]
        frames += [speak("b2", 5 + t / 10) for t in range(3)]
        rc, out = self.check(frames)
        self.assertEqual(rc, 0, out)
        m3 = [ln for ln in out.splitlines() if " M3 " in ln]
        self.assertEqual(len(m3), 4, out)
        self.assertIn("primary (%s) spoke for 198.18.0.1 from %.6f to %.6f (0.400 s, 5 frames)"
                      % (MACS["primary"], T0, T0 + 0.4), m3[0])
        self.assertIn("b1 (%s) spoke for 198.18.0.1 from %.6f to %.6f (0.400 s, 5 frames)"
                      % (MACS["b1"], T0 + 2, T0 + 2.4), m3[1])
        self.assertIn("1 frames", m3[2])
        self.assertIn("b2 (", m3[3])

    def test_empty_capture_and_bad_input(self):
        rc, out = self.check([])
        self.assertEqual(rc, 1, out)
        self.assertIn("the capture holds no frame", out)
        with open(self.path("bad.pcap"), "wb") as f:
            f.write(b"not a pcap at all, no")
        rc, out = run(membership_invariants.main, [
            "--pcap", self.path("bad.pcap"), "--primary-ip", PRIMARY_IP,
            "--primary-mac", MACS["primary"]])
        self.assertEqual(rc, 2, out)
        self.assertIn("input error", out)
        rc, out = self.check([speak("b1", 0)], extra=("--backup-mac", "b3=zz:00"))
        self.assertEqual(rc, 2, out)

    # -- M2
    def role(self, t, node, role, epoch, ts_iso=False):
        ts = "%.6f" % (T0 + t)
        if ts_iso:
            import time as _t
            w = T0 + t
            ts = _t.strftime("%Y-%m-%dT%H:%M:%S", _t.gmtime(w)) + ".%06dZ" % round((w % 1) * 1e6)
        return ('ts=%s mono_ns=1 event=membership_role node=%s role=%s epoch=%d '
                'reason="view change"' % (ts, node, role, epoch))

    def test_epochs_forward_and_one_active_per_epoch_pass(self):
        logs = {"b1": [self.role(1, 1, "standby", 1), self.role(2, 1, "active", 2),
                       "ts=%.6f event=transition from=normal to=recovery" % (T0 + 2)],
                "b2": [self.role(1, 2, "standby", 1), self.role(2.1, 2, "standby", 2),
                       self.role(5, 2, "active", 3, ts_iso=True)]}
        rc, out = self.check([speak("b1", 3)], logs)
        self.assertEqual(rc, 0, out)
        self.assertIn("5 membership events with an epoch in 2 log(s)", out)
        self.assertIn("epochs seen: 1, 2, 3", out)

    def test_epoch_going_backwards_is_a_violation(self):
        logs = {"b1": [self.role(1, 1, "standby", 2), self.role(2, 1, "standby", 4),
                       'ts=%.6f event=membership_view members=2 epoch=3' % (T0 + 3),
                       'ts=%.6f event=membership_view members=2 epoch=3' % (T0 + 3.5),
                       self.role(4, 1, "standby", 5)]}
        rc, out = self.check([speak("b1", 3)], logs)
        self.assertEqual(rc, 1, out)
        self.assertEqual(self.last(out), "membership_invariants: 1 violations")
        v = self.violations(out, "M2")
        self.assertEqual(len(v), 1, out)
        self.assertIn("epoch went backwards in log b1: membership_view epoch=3", v[0])
        self.assertIn("after membership_role epoch=4", v[0])

    def test_a_refused_claims_epoch_is_not_the_members_own(self):
        # seed three-7 of the chaos soak: role epoch 2, a stale claim for 3, role 2 again
        logs = {"b1": [self.role(1, 1, "standby", 2),
                       'ts=%.6f event=membership_stale_claim node=3 epoch=3' % (T0 + 2),
                       self.role(3, 1, "standby", 2), self.role(4, 1, "active", 3)]}
        rc, out = self.check([speak("b1", 3)], logs)
        self.assertEqual(rc, 0, out)
        logs["b1"][1] = 'ts=%.6f event=membership_superseded node=1 epoch=3' % (T0 + 2)
        rc, out = self.check([speak("b1", 3)], logs)
        self.assertEqual(len(self.violations(out, "M2")), 1, out)

    def test_backwards_is_judged_in_ts_order_not_file_order(self):
        logs = {"b1": [self.role(2, 1, "standby", 4), self.role(1, 1, "standby", 2)]}
        rc, out = self.check([speak("b1", 3)], logs)
        self.assertEqual(rc, 0, out)
        logs = {"b1": [self.role(1, 1, "standby", 4), self.role(2, 1, "standby", 2)]}
        rc, out = self.check([speak("b1", 3)], logs)
        self.assertEqual(len(self.violations(out, "M2")), 1, out)

    def test_two_nodes_active_for_one_epoch_is_a_violation(self):
        logs = {"b1": [self.role(1, 1, "active", 7)],
                "b2": [self.role(1.2, 2, "active", 7, ts_iso=True), self.role(2, 2, "active", 8)]}
        rc, out = self.check([speak("b1", 3)], logs)
        self.assertEqual(rc, 1, out)
        v = self.violations(out, "M2")
        self.assertEqual(len(v), 1, out)
        self.assertIn("M2 2 nodes active for epoch 7: node 1 (log b1,", v[0])
        self.assertIn("node 2 (log b2,", v[0])
        self.assertEqual(self.last(out), "membership_invariants: 1 violations")

    def test_bad_epoch_is_bad_input(self):
        rc, out = self.check([speak("b1", 3)], {"b1": ["ts=1 event=membership_role epoch=x"]})
        self.assertEqual(rc, 2, out)
        self.assertIn("is not a number", out)


if __name__ == "__main__":
    unittest.main(verbosity=1)
