#!/usr/bin/env bash
# False-failover soak (issue 10): a healthy primary, busy clients, both cores loaded, migware at
# its default detection settings, for --minutes M (default 10). Nothing fails; migware must
# never leave Normal. Reports false failovers (transitions out of Normal), vetoes by reason,
# and the echo RTT percentiles measured from a capture of migware's own probes.
#
#   scripts/soak.sh [--minutes M] [--connections N] [--rate R] [--burners B] [--migware BIN]
#                   [--migware-arg ARG]... [--out DIR]
#
# Needs root (network namespaces). Lab rules: 198.18.0.0/15 only, a unique namespace prefix,
# everything bounded in time and removed on exit (trap). The last line is
# `soak: N passed, M failed` (1 passed when there was no false failover and the clients saw
# no error).
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
MINUTES=10 CONNS=200 RATE=8000 BURNERS=2 BIN="$ROOT/build/bin/migware" OUT="" MIG_EXTRA=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --minutes) MINUTES=${2:-}; shift 2;;
        --connections) CONNS=${2:-}; shift 2;;
        --rate) RATE=${2:-}; shift 2;;
        --burners) BURNERS=${2:-}; shift 2;;
        --migware) BIN=${2:-}; shift 2;;
        --migware-arg) MIG_EXTRA+=("${2:-}"); shift 2;;
        --out) OUT=${2:-}; shift 2;;
        *) echo "soak: unknown argument '$1'" >&2; exit 2;;
    esac
done
[[ $MINUTES =~ ^[0-9]+$ && $MINUTES -ge 1 && $MINUTES -le 120 ]] || { echo "soak: --minutes 1..120" >&2; exit 2; }
[[ $BURNERS =~ ^[0-9]+$ && $BURNERS -le 8 ]] || { echo "soak: --burners 0..8" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "soak: needs root (network namespaces); not skipping" >&2; exit 1; }
[[ -x $BIN ]] || { echo "soak: no migware binary at $BIN" >&2; exit 1; }
source "$ROOT/scripts/lab.sh"
lab_check_tools || exit 1
PY=$(command -v python3)
SECS=$(( MINUTES * 60 ))
[[ -z $OUT ]] && OUT=$(mktemp -d "/dev/shm/mwsoak.$(date +%Y%m%d-%H%M%S).XXXX")
mkdir -p "$OUT/primary" "$OUT/backup"
lab_init "mws$$" || exit 1
PIDS=()
cleanup() {
    local p
    trap - EXIT INT TERM
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    sleep 0.5
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    lab_down
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# spawn NS BOUND OUT ERR CMD... : bounded background process in a namespace
spawn() {
    local ns=$1 bound=$2 out=$3 err=$4; shift 4
    ip netns exec "$ns" timeout -k 5 "$bound" "$@" >"$out" 2>"$err" &
    PIDS+=($!); LAST=$!
}

echo "soak: $MINUTES min, $CONNS push connections at $RATE records/s, $BURNERS busy loops, migware $BIN ${MIG_EXTRA[*]}" >&2
echo "soak: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r); results in $OUT" >&2
lab_up || { echo "soak: lab_up failed" >&2; exit 1; }
BOUND=$(( SECS + 60 ))
for role in primary backup; do
    ns=$LAB_NS_PRIMARY; [[ $role == backup ]] && ns=$LAB_NS_BACKUP
    spawn "$ns" "$BOUND" "$OUT/server-$role.out" "$OUT/server-$role.err" \
        "$PY" "$ROOT/tests/lab/traffic.py" server --mode push --port 7000 --log "$OUT/$role" \
        --timeout "$BOUND" --ready-file "$OUT/server-$role.ready"
done
for _ in $(seq 50); do [[ -s $OUT/server-primary.ready && -s $OUT/server-backup.ready ]] && break; sleep 0.1; done
# migware's own probes and their answers, for the RTT percentiles (small: ICMP only)
spawn "$LAB_NS_BACKUP" "$BOUND" /dev/null "$OUT/tcpdump.log" \
    tcpdump -i eth0 -nn -s 96 --immediate-mode -U -j host --time-stamp-precision nano -w "$OUT/icmp.pcap" \
    "icmp and host $LAB_IP_PRIMARY"
sleep 1
spawn "$LAB_NS_BACKUP" "$BOUND" "$OUT/migware.out" "$OUT/migware.log" \
    "$BIN" --interface eth0 --primary "$LAB_IP_PRIMARY" --backup "$LAB_IP_BACKUP" --port 7000 \
    --control.socket "$OUT/control.sock" --state-file "" "${MIG_EXTRA[@]}"
MIG_PID=$LAST
for _ in $(seq 50); do grep -qs 'state=normal' "$OUT/migware.log" && break; sleep 0.1; done
grep -qs 'state=normal' "$OUT/migware.log" || { echo "soak: migware did not start: $(tail -n 3 "$OUT/migware.log")" >&2; exit 1; }
spawn "$LAB_NS_CLIENT" "$BOUND" "$OUT/client.out" "$OUT/client.err" \
    "$PY" "$ROOT/tests/lab/traffic.py" client --mode push --server "$LAB_IP_PRIMARY:7000" \
    --connections "$CONNS" --duration "$SECS" --rate "$RATE" --out "$OUT/client.json"
CLIENT_PID=$LAST
for (( b = 0; b < BURNERS; b++ )); do   # CPU burners, bounded like everything else
    spawn "$LAB_NS_CLIENT" "$BOUND" /dev/null /dev/null timeout "$SECS" sh -c 'while :; do :; done'
done
wait "$CLIENT_PID"; client_rc=$?
sleep 1
# the counters before migware stops
timeout 5 "$PY" "$ROOT/tests/lab/migware_counters.py" "$OUT/control.sock" >"$OUT/counters.json" 2>/dev/null
for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
wait 2>/dev/null
PIDS=()
"$PY" - "$OUT" "$client_rc" <<'EOF'
import json, os, re, statistics, struct, sys
out, client_rc = sys.argv[1], int(sys.argv[2])
log = open(os.path.join(out, "migware.log")).read().splitlines()
transitions = [l for l in log if "event=transition" in l]
vetoes = {}
for l in log:
    m = re.search(r"event=monitor_veto reason=(\w+)", l)
    if m: vetoes[m.group(1)] = vetoes.get(m.group(1), 0) + 1
try:
    counters = json.load(open(os.path.join(out, "counters.json")))
except Exception:
    counters = {}
# RTTs: echo request id/seq -> reply, from the pcap (nanosecond timestamps, Ethernet)
rtts, sent = [], {}
with open(os.path.join(out, "icmp.pcap"), "rb") as f:
    hdr = f.read(24)
    magic = struct.unpack("<I", hdr[:4])[0]
    scale = 1 if magic == 0xa1b23c4d else 1000
    while True:
        h = f.read(16)
        if len(h) < 16: break
        ts, frac, incl, _ = struct.unpack("<IIII", h)
        data = f.read(incl)
        t = ts * 1_000_000_000 + frac * scale
        if len(data) < 14 + 20 + 8 or data[12:14] != b"\x08\x00": continue
        ihl = (data[14] & 0xf) * 4
        icmp = data[14 + ihl:]
        typ, ident, seq = icmp[0], icmp[4:6], icmp[6:8]
        if typ == 8: sent[(ident, seq)] = t
        elif typ == 0 and (ident, seq) in sent: rtts.append((t - sent.pop((ident, seq))) / 1000)
rtts.sort()
def pct(p): return rtts[min(len(rtts) - 1, int(round(p / 100 * (len(rtts) - 1))))] if rtts else float("nan")
client = {}
try: client = json.load(open(os.path.join(out, "client.json")))
except Exception: pass
errors = client.get("errors", -1) if isinstance(client, dict) else -1
print("soak: false failovers (transitions out of normal): %d" % len(transitions))
for l in transitions: print("  " + l)
print("soak: vetoes by reason (events): %s; counters: primary_tcp=%s carrier=%s no_segment_evidence=%s" % (
    vetoes or "none", counters.get("monitor_vetoes_primary_tcp"), counters.get("monitor_vetoes_carrier"),
    counters.get("monitor_vetoes_no_segment_evidence")))
print("soak: probes sent %s, replies %s, late %s, segment probes %s, capture kernel drops %s" % (
    counters.get("probes_sent"), counters.get("probe_replies"), counters.get("probe_late"),
    counters.get("segment_probes"), counters.get("kernel_drops")))
print("soak: echo RTT (us, from the backup's capture, n=%d, unanswered in the capture %d): p50 %.0f p90 %.0f p99 %.0f p99.9 %.0f max %.0f" % (
    len(rtts), len(sent), pct(50), pct(90), pct(99), pct(99.9), rtts[-1] if rtts else float("nan")))
print("soak: client exit %d, connections with an error: %d" % (client_rc, errors))
ok = not transitions and client_rc == 0
print("soak: %d passed, %d failed" % (1 if ok else 0, 0 if ok else 1))
EOF
