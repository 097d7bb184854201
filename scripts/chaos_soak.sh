#!/usr/bin/env bash
# Chaos soak (issue 10): tests/lab/chaos.sh for N seeds, one after another.
#
#   scripts/chaos_soak.sh --seeds N [--first S] [--topology hub|mirror] [--duration 60]
#                         [--migware BIN] [--kinds K,K...] [--log-dir DIR]
#
# Prints one line per seed (result, wall time, the failing reason) and ends with
# `chaos: N passed, M failed` (for BENCHMARKS.md).  Each seed's full output goes to
# DIR/seed-<S>.log (default: a new directory under /dev/shm, kept).  Exit 0 only if all passed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SEEDS="" FIRST=1 EXTRA=() LOGDIR=""
usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --seeds) SEEDS=${2:-}; shift 2;;
        --first) FIRST=${2:-}; shift 2;;
        --topology|--duration|--migware|--kinds) EXTRA+=("$1" "${2:-}"); shift 2;;
        --log-dir) LOGDIR=${2:-}; shift 2;;
        -h|--help) usage;;
        *) echo "chaos_soak: unknown argument '$1'" >&2; usage;;
    esac
done
[[ $SEEDS =~ ^[0-9]+$ && $SEEDS -ge 1 && $SEEDS -le 1000 ]] || { echo "chaos_soak: --seeds 1..1000" >&2; usage; }
[[ $FIRST =~ ^[0-9]{1,8}$ ]] || { echo "chaos_soak: --first S (a number)" >&2; usage; }
[[ -n $LOGDIR ]] || LOGDIR=$(mktemp -d /dev/shm/chaos_soak.XXXXXX)
mkdir -p "$LOGDIR" || { echo "chaos_soak: cannot create $LOGDIR" >&2; exit 1; }
echo "chaos_soak: seeds $FIRST..$(( FIRST + SEEDS - 1 )), logs in $LOGDIR"

passed=0 failed=0 failed_seeds=()
for (( s = FIRST; s < FIRST + SEEDS; s++ )); do
    t0=$(date +%s)
    # failover.sh bounds itself (about 3 minutes for 60 s of traffic); this is the backstop
    timeout -k 10 600 "$ROOT/tests/lab/chaos.sh" --seed "$s" "${EXTRA[@]}" >"$LOGDIR/seed-$s.log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - t0 ))
    verdict=$(grep '^failover: [0-9]* passed, [0-9]* failed$' "$LOGDIR/seed-$s.log" | tail -n 1)
    faults=$(grep -c '^chaos:   ' "$LOGDIR/seed-$s.log")
    pull=$(grep -o 'real failure (pull) at the end: [a-z]*' "$LOGDIR/seed-$s.log" | awk '{print $NF}')
    if [[ $rc -eq 0 ]]; then
        passed=$(( passed + 1 ))
        echo "chaos_soak: seed $s passed (${secs}s, $faults faults, pull=$pull; ${verdict#failover: })"
    else
        failed=$(( failed + 1 )); failed_seeds+=("$s")
        why=$(grep -m1 -E 'FAIL: |ERROR: ' "$LOGDIR/seed-$s.log" | cut -c1-200)
        echo "chaos_soak: seed $s FAILED (${secs}s, exit $rc, $faults faults, pull=$pull; ${verdict#failover: }): ${why:-see $LOGDIR/seed-$s.log}"
    fi
done
[[ $failed -gt 0 ]] && echo "chaos_soak: failed seeds: ${failed_seeds[*]}"
leftover=$(ip netns list 2>/dev/null | grep -c '^mwl' || true)
[[ $leftover -eq 0 ]] || echo "chaos_soak: WARNING: $leftover lab namespaces (mwl*) left behind"
echo "chaos: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
