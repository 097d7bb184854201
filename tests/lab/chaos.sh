#!/usr/bin/env bash
# Chaos run (issue 10): a reproducible schedule of faults against a living primary, then perhaps
# a real failure, all in one failover.sh run.  See tests/lab/README.md "Faults".
#
#   tests/lab/chaos.sh --seed N [--duration 60] [--topology hub|mirror] [--connections 40]
#                      [--migware BIN] [--keep] [--print-only] [--kinds K,K...]
#
# From random.Random(N): 10-20 faults drawn from backup-flap (0.2-3 s), pause (0.2-1.5 s) and
# partition (0.3 s), non-overlapping with gaps of at least 1 s, and with probability 0.5 one
# pull at the end (at least 5 s before the traffic ends).  The schedule is printed in full
# first.  Push traffic, --connections connections.  Passes only if verify.py passes and
# invariants.py reports no violation (failover.sh exits 0).  --print-only prints the schedule
# and the failover.sh command and exits.  --kinds draws from a subset (default
# backup-flap,pause,partition): without partition, no fault legitimately hands the clients to
# the backup, so every fault before the pull meets a living primary.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KINDS=backup-flap,pause,partition SEED="" DURATION=60 TOPOLOGY=hub CONNS=40 BIN="$ROOT/build/bin/migware" KEEP=() PRINT_ONLY=0

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --seed) SEED=${2:-}; shift 2;;
        --duration) DURATION=${2:-}; shift 2;;
        --topology) TOPOLOGY=${2:-}; shift 2;;
        --connections) CONNS=${2:-}; shift 2;;
        --migware) BIN=${2:-}; shift 2;;
        --keep) KEEP=(--keep); shift;;
        --print-only) PRINT_ONLY=1; shift;;
        --kinds) KINDS=${2:-}; shift 2;;
        -h|--help) usage;;
        *) echo "chaos: unknown argument '$1'" >&2; usage;;
    esac
done
[[ $SEED =~ ^[0-9]{1,9}$ ]] || { echo "chaos: --seed N (0..999999999) is required" >&2; usage; }
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 30 && $DURATION -le 115 ]] \
    || { echo "chaos: --duration 30..115 s" >&2; exit 2; }
[[ $TOPOLOGY == hub || $TOPOLOGY == mirror ]] || { echo "chaos: --topology hub|mirror" >&2; exit 2; }
[[ $KINDS =~ ^(backup-flap|pause|partition)(,(backup-flap|pause|partition))*$ ]] \
    || { echo "chaos: --kinds: a comma-separated subset of backup-flap,pause,partition" >&2; exit 2; }
[[ $CONNS =~ ^[0-9]+$ && $CONNS -ge 1 && $CONNS -le 2000 ]] || { echo "chaos: --connections 1..2000" >&2; exit 2; }

# One fault per line, AT:KIND:DUR, in time order.
SCHEDULE=$(python3 - "$SEED" "$DURATION" "$KINDS" <<'PYEOF'
import random, sys
seed, duration = int(sys.argv[1]), float(sys.argv[2])
kinds = tuple(k for k in ("backup-flap", "pause", "partition") if k in sys.argv[3].split(","))
rng = random.Random(seed)
n = rng.randint(10, 20)
faults = []
for _ in range(n):
    kind = rng.choice(kinds)
    dur = {"backup-flap": lambda: rng.uniform(0.2, 3.0), "pause": lambda: rng.uniform(0.2, 1.5),
           "partition": lambda: 0.3}[kind]()
    faults.append([kind, round(dur, 3)])
pull = rng.random() < 0.5
first = 2.0                                    # the traffic settles first
last_end = duration - 5.0 - (1.5 if pull else 0.0)   # room for the pull, 5 s before the end
GAP = 1.0
def needed():
    return sum(d for _, d in faults) + GAP * (len(faults) - 1)
while needed() > last_end - first and len(faults) > 10:
    faults.pop()
while needed() > last_end - first:             # still too long: shorten the longest fault
    big = max(faults, key=lambda f: f[1])
    big[1] = round(max(0.2, big[1] * 0.8), 3)
slack = (last_end - first) - needed()
w = [rng.random() for _ in range(len(faults) + 1)]
t = first + slack * w[0] / sum(w)
for i, (kind, dur) in enumerate(faults):
    print("%.3f:%s:%.3f" % (t, kind, dur))
    t += dur + GAP + slack * w[i + 1] / sum(w)
if pull:
    at = max(t - GAP + 1.0, rng.uniform(t, duration - 5.0))
    print("%.3f:pull:0" % min(at, duration - 5.0))
PYEOF
) || { echo "chaos: cannot generate the schedule" >&2; exit 1; }

FAULT_ARGS=()
PULL=no
echo "chaos: seed=$SEED duration=${DURATION}s topology=$TOPOLOGY connections=$CONNS kinds=$KINDS faults=$(wc -l <<<"$SCHEDULE")"
while IFS= read -r f; do
    [[ -n $f ]] || continue
    FAULT_ARGS+=(--fault "$f")
    [[ $f == *:pull:* ]] && PULL=yes
    echo "chaos:   $f"
done <<<"$SCHEDULE"
echo "chaos: real failure (pull) at the end: $PULL"
CMD=("$HERE/failover.sh" --mode push --connections "$CONNS" --duration "$DURATION"
     --topology "$TOPOLOGY" --seed "$SEED" --migware "$BIN" "${KEEP[@]}" "${FAULT_ARGS[@]}")
[[ $PULL == no ]] && CMD+=(--no-pull)
echo "chaos: ${CMD[*]}"
[[ $PRINT_ONLY -eq 1 ]] && exit 0
"${CMD[@]}"
rc=$?
if [[ $rc -eq 0 ]]; then echo "chaos: seed $SEED passed"; else echo "chaos: seed $SEED FAILED (failover.sh exit $rc)"; fi
exit $rc
