#!/usr/bin/env bash
# Membership chaos soak (issue 12): tests/lab/membership_chaos.sh for N seeds, one after another.
#
#   scripts/membership_chaos_soak.sh [--seeds N] [--topology witness|three|both] [--first-seed S]
#                                    [--duration S] [--migware BIN] [--log-dir DIR]
#
# Defaults: 10 seeds, both topologies (each seed runs witness, then three), first seed 1.
# Prints one line per run (seed, topology, verdict, seconds, the first failure reason) and a
# summary; the last line is `membership_chaos_soak: N passed, M failed` (runs).  Each run's
# output goes to DIR/<topology>-<seed>.log (default: a new directory under /dev/shm, kept);
# the work dir (capture, logs, faults.log) of a failing run is kept as DIR/<topology>-<seed>/,
# a passing run's is removed.  Every run bounds itself; a 300 s timeout per run is the backstop.
# Exit 0 only if every run passed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SEEDS=10 FIRST=1 TOPO=both EXTRA=() LOGDIR=""
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --seeds) SEEDS=${2:-}; shift 2;;
        --first-seed) FIRST=${2:-}; shift 2;;
        --topology) TOPO=${2:-}; shift 2;;
        --duration|--migware) EXTRA+=("$1" "${2:-}"); shift 2;;
        --log-dir) LOGDIR=${2:-}; shift 2;;
        -h|--help) usage;;
        *) echo "membership_chaos_soak: unknown argument '$1'" >&2; usage;;
    esac
done
[[ $SEEDS =~ ^[0-9]+$ && $SEEDS -ge 1 && $SEEDS -le 1000 ]] || { echo "membership_chaos_soak: --seeds 1..1000" >&2; usage; }
[[ $FIRST =~ ^[0-9]{1,8}$ ]] || { echo "membership_chaos_soak: --first-seed S (a number)" >&2; usage; }
case $TOPO in witness) TOPOS=(witness);; three) TOPOS=(three);; both) TOPOS=(witness three);;
    *) echo "membership_chaos_soak: --topology witness|three|both" >&2; usage;; esac
[[ -n $LOGDIR ]] || LOGDIR=$(mktemp -d /dev/shm/membership_chaos_soak.XXXXXX)
mkdir -p "$LOGDIR" || { echo "membership_chaos_soak: cannot create $LOGDIR" >&2; exit 1; }
LOGDIR=$(cd "$LOGDIR" && pwd)
echo "membership_chaos_soak: seeds $FIRST..$(( FIRST + SEEDS - 1 )), topologies ${TOPOS[*]}, logs in $LOGDIR"

stopped=0
trap 'stopped=1' INT TERM
passed=0 failed=0 failed_runs=()
declare -A P F
for (( s = FIRST; s < FIRST + SEEDS && !stopped; s++ )); do
    for topo in "${TOPOS[@]}"; do
        (( stopped )) && break
        t0=$(date +%s)
        out=$LOGDIR/$topo-$s.log work=$LOGDIR/$topo-$s
        timeout -k 10 300 "$ROOT/tests/lab/membership_chaos.sh" --topology "$topo" --seed "$s" \
            --work "$work" "${EXTRA[@]}" >"$out" 2>&1
        rc=$?
        secs=$(( $(date +%s) - t0 ))
        verdict=$(grep -E '^membership_chaos: [0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
        verdict=${verdict#membership_chaos: }
        faults=$(sed -n 's/^membership_chaos: seed=.* faults=\([0-9]*\) .*/\1/p' "$out" | head -n 1)
        ret=$(grep -c '^membership_chaos: .* return  *dead' "$out")
        if [[ $rc -eq 0 ]]; then
            passed=$(( passed + 1 )); P[$topo]=$(( ${P[$topo]:-0} + 1 ))
            rm -rf "$work"
            printf 'membership_chaos_soak: seed %-4s %-7s passed  %3ss  faults=%s return=%s  %s\n' "$s" "$topo" "$secs" "$faults" "$ret" "$verdict"
        else
            failed=$(( failed + 1 )); F[$topo]=$(( ${F[$topo]:-0} + 1 )); failed_runs+=("$topo-$s")
            why=$(grep -m1 -E 'FAILED: |ERROR: |VIOLATION' "$out" | cut -c1-220)
            printf 'membership_chaos_soak: seed %-4s %-7s FAILED  %3ss  faults=%s return=%s  %s (exit %s): %s\n' "$s" "$topo" "$secs" "$faults" "$ret" "${verdict:-no verdict}" "$rc" "${why:-see $out}"
        fi
    done
done
for topo in "${TOPOS[@]}"; do
    echo "membership_chaos_soak: $topo: ${P[$topo]:-0} passed, ${F[$topo]:-0} failed"
done
[[ $failed -gt 0 ]] && echo "membership_chaos_soak: failed runs (work dirs kept in $LOGDIR): ${failed_runs[*]}"
leftover=$(ip netns list 2>/dev/null | grep -c '^mwx' || true)
[[ $leftover -eq 0 ]] || echo "membership_chaos_soak: WARNING: $leftover lab namespaces (mwx*) left behind"
echo "membership_chaos_soak: $passed passed, $failed failed"
[[ $failed -eq 0 && $stopped -eq 0 ]]
