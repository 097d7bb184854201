#!/usr/bin/env bash
# Membership benchmark (issue 12, "Benchmarks"): the cost of the group on the primary's failure
# against standalone, and the succession when the active backup fails, side by side.
#
#   scripts/bench_membership.sh [--runs N] [--connections C] [--out DIR] [--keep]
#                               [--max-time S] [--migware BIN]
#
# Runs, interleaved round by round (the order rotates each round, so that drift and bursts of
# load on the shared machine hit every variant alike), N runs each of
#   standalone   tests/lab/failover.sh --mode reqresp --connections C --duration 6 --pull-at 3
#                --hub-capture (one backup, no group; the pull at t+3 s as in membership.sh)
#   corosync2w   tests/lab/membership.sh --scenario succession  (2 backups + witness)
#   corosync3    tests/lab/membership.sh --scenario succession3 (3 backups)
# (membership.sh's traffic: reqresp, C connections, 400 requests/s in all; failover.sh's default
# rate for C = 40 is the same 400/s.)  Per run: the primary's failure (pull -> the taking-over
# backup's monitor verdict, Recovery and Proxy; the client-visible stall = the primary's last
# frame toward the client on the hub -> the backup's first), and for the two corosync variants
# the active backup's failure (b1's death -> b2's view without b1, its claim delivered, its
# Recovery and Proxy; the stall = b1's last frame -> b2's first).  See scripts/bench_membership.py.
#   --runs N         runs per variant (default 15)
#   --connections C  default 40 (membership.sh's default)
#   --out DIR        results: runs.csv (one row per run, failed ones included), logs/, table.md;
#                    default /dev/shm/mwmbench.<date>.XXXX
#   --keep           keep every run's work directory (pcaps, logs) under DIR/work
#   --max-time S     time budget in seconds (default 3600); rounds that no longer fit are
#                    skipped and reported, never dropped silently
#   --migware BIN    default build/bin/migware (copied once at the start)
# Each lab run is bounded (timeout 240 s on top of the scripts' own bounds).  A run whose script
# exits non-zero is counted as failed, kept in the CSV with its figures, and left out of the
# table's statistics.  Needs root.  Exit 0 only if every run passed and none was skipped.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ORIG_ARGS=("$@")
CMDLINE=$(printf '%q ' "$0" "$@")

RUNS=15 CONNS=40 OUT="" KEEP=0 MAX_TIME=3600 BIN="$ROOT/build/bin/migware"
RUN_BOUND=240
BENCH_NAME=bench_membership
# shellcheck source=bench_lib.sh
source "$HERE/bench_lib.sh"
while [[ $# -gt 0 ]]; do
    case $1 in
        --runs|--connections)
            [[ $# -ge 2 ]] || { echo "bench_membership: $1 needs a value" >&2; exit 2; }
            [[ $1 == --runs ]] && RUNS=$2 || CONNS=$2
            shift 2;;
        *) bench_opt "$@"; shift "$BENCH_SHIFT";;
    esac
done
[[ $RUNS =~ ^[0-9]+$ && $RUNS -ge 1 && $RUNS -le 500 ]] || { echo "bench_membership: --runs 1..500" >&2; exit 2; }
[[ $CONNS =~ ^[0-9]+$ && $CONNS -ge 1 && $CONNS -le 500 ]] || { echo "bench_membership: --connections 1..500" >&2; exit 2; }
bench_check_max_time 14400

# the whole benchmark is bounded: budget + the longest single run + margin
bench_bound MWMB_BOUNDED $(( MAX_TIME + RUN_BOUND + 60 )) "${ORIG_ARGS[@]}"
bench_preflight "network namespaces, corosync"
FAILOVER="$ROOT/tests/lab/failover.sh"
MEMBERSHIP="$ROOT/tests/lab/membership.sh"
HELPER="$HERE/bench_membership.py"
bench_out mwmbench logs work
CSV="$OUT/runs.csv"
: >"$CSV"
bench_traps

bench_copy_bin
bench_header "migware membership benchmark (issue 12)"
echo "- migware: $SRC_BIN, sha256 $(sha256sum "$BIN" | cut -c1-12), git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$([[ -n $(git -C "$ROOT" status --porcelain -- migware membership monitor tracker rewrite sniffer control 2>/dev/null) ]] && echo ', C++ sources modified')"
echo "- corosync $(corosync -v 2>/dev/null | grep -o 'version .[0-9.]*.' | head -n 1 | tr -d "'"); token ${CLUSTER_TOKEN:-150} ms (scripts/cluster.sh)"
echo "- runs: $RUNS per variant, $CONNS connections (reqresp), time budget ${MAX_TIME}s; results in $OUT"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

VARIANTS=(standalone corosync2w corosync3)
declare -A EST=([standalone]=16 [corosync2w]=22 [corosync3]=24)
ROUND_EST=0; for v in "${VARIANTS[@]}"; do ROUND_EST=$(( ROUND_EST + EST[$v] )); done
echo "plan: $RUNS rounds x ${#VARIANTS[@]} variants = $(( RUNS * ${#VARIANTS[@]} )) lab runs, estimated $(( RUNS * ROUND_EST ))s"
echo

# network namespaces at a run's start: ours are all gone by then (each lab script removes its
# own), so these are another helper's labs running at the same time
foreign_netns() { ip netns list 2>/dev/null | wc -l; }

NFAIL=0 NSKIP=0 n=0
for (( r = 1; r <= RUNS; r++ )); do
    for (( k = 0; k < ${#VARIANTS[@]}; k++ )); do
        v=${VARIANTS[$(( (k + r - 1) % ${#VARIANTS[@]} ))]}
        n=$(( n + 1 ))
        id=$(printf 'r%02d-%s' "$r" "$v")
        left=$(( MAX_TIME - $(elapsed) ))
        if (( left < 2 * EST[$v] )); then
            printf '[%4ds] %-16s SKIPPED: %ds left in the time budget\n' "$(elapsed)" "$id" "$left"
            "$PY" "$HELPER" run --variant "$v" --run-id "$id" --rc -1 --work /nonexistent --timings /nonexistent \
                --csv "$CSV" --started "$(date -u +%H:%M:%S)" --note "skipped: time budget" >/dev/null
            NSKIP=$(( NSKIP + 1 )); continue
        fi
        work="$OUT/work/$id"
        started=$(date -u +%H:%M:%S) load1=$(cut -d' ' -f1 /proc/loadavg) foreign=$(foreign_netns)
        t_run=$(date +%s.%N)
        case $v in
            standalone)
                bench_run "$OUT/logs/$id.log" timeout -k 10 "$RUN_BOUND" "$FAILOVER" --mode reqresp \
                    --connections "$CONNS" --duration 6 --pull-at 3 --hub-capture --migware "$BIN" \
                    --work "$work" --show 5
                ;;
            corosync2w|corosync3)
                sc=succession; [[ $v == corosync3 ]] && sc=succession3
                bench_run "$OUT/logs/$id.log" timeout -k 10 "$RUN_BOUND" "$MEMBERSHIP" --scenario "$sc" \
                    --connections "$CONNS" --migware "$BIN" --work "$work" --timings "$work.timings"
                ;;
        esac
        rc=$RC
        dur=$(awk -v a="$t_run" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
        notes=()
        [[ $rc -eq 124 || $rc -eq 137 ]] && notes+=(--note "run bound ${RUN_BOUND}s hit")
        if [[ $rc -ne 0 ]]; then
            notes+=(--note "$(grep -E '^(failover|membership): ([0-9]+ passed|ERROR|FAILED)' "$OUT/logs/$id.log" | tr '\n' ' ' | cut -c1-200)")
        fi
        summary=$("$PY" "$HELPER" run --variant "$v" --run-id "$id" --rc "$rc" --work "$work" \
            --timings "$work.timings" --csv "$CSV" --started "$started" --load1 "$load1" \
            --foreign-netns "$foreign" --duration "$dur" "${notes[@]}" 2>>"$OUT/logs/$id.log") \
            || summary="(bench_membership.py failed: see logs/$id.log)"
        status=ok
        if [[ $rc -ne 0 ]]; then status="FAILED (exit $rc)"; NFAIL=$(( NFAIL + 1 )); fi
        printf '[%4ds] %-16s %s %ss load=%s foreign_ns=%s %s\n' "$(elapsed)" "$id" "$status" "$dur" "$load1" "$foreign" "$summary"
        [[ $KEEP -eq 1 ]] || rm -rf "$work" "$work.timings"
    done
done

echo
echo "## Results ($(( n - NFAIL - NSKIP )) runs passed, $NFAIL failed, $NSKIP skipped; $(elapsed)s)"
echo
echo "Times in ms, from the fault: the pull = \`ip link set p-primary down\` returned (failover.sh:"
echo "CLOCK_MONOTONIC read right after; membership.sh: \`date\` right after); b1's death = b1's cable"
echo "out (its migware, Corosync and server are killed right after).  Transitions: migware's"
echo "\`mono_ns\`.  Stalls: hub capture (br0), frames speaking for 198.18.0.1 toward the client or"
echo "broadcast, M3 bursts (a silence over 200 ms ends a burst).  p99 is nearest-rank (the maximum"
echo "when n < 100).  Statistics over passed runs; failed runs are counted and listed.  The"
echo "\"last frame\" rows take the old speaker's last frame on the hub as the fault's time instead"
echo "of the scripts' stamps (membership.sh's are \`date\` forks after the action: a few ms late)."
echo
"$PY" "$HELPER" summary --csv "$CSV" --markdown "$OUT/table.md"
echo
echo "raw per-run figures: $CSV"
[[ $NFAIL -eq 0 && $NSKIP -eq 0 ]]
