#!/usr/bin/env bash
# Proxied / direct throughput of a bulk push, side by side in one run, round-robin (each round
# runs every cell once, the order rotating round by round).  Each run is
# tests/lab/bulk_proxy.sh: N connections push for S seconds through migware's Proxy after the
# pull (binaries from --tree NAME=BUILD_DIR, repeatable), or straight to the backup's address
# (`direct`, the reference, measured in the same rounds).  With --loss N, 1 in N client frames
# is dropped on the way to the backup (both paths alike).
#
# Options:
#   --tree NAME=DIR     a build tree with bin/migware (repeat; default current=build)
#   --connections LIST  comma-separated connection counts (default 1,4)
#   --seconds S         blast length (default 4)
#   --runs N            runs per cell (default 3)
#   --loss N            1 in N client frames dropped (default 0: none)
#   --out DIR           results; default /dev/shm/mwpx.*
#   --max-time S        time budget (default 1800); runs that no longer fit are recorded as skipped
# Needs root.  The last thing printed is a markdown table for BENCHMARKS.md: Mbit/s per cell
# (median, min-max), and the median proxied/direct ratio per connection count.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ORIG_ARGS=("$@")
CMDLINE=$(printf '%q ' "$0" "$@")
RUNS=3 SECS=4 LOSS=0 CONNLIST=1,4 OUT="" KEEP=0 MAX_TIME=1800 BIN="$ROOT/build/bin/migware"
TREES=()
BENCH_NAME=bench_proxy
# shellcheck source=bench_lib.sh
source "$HERE/bench_lib.sh"
while [[ $# -gt 0 ]]; do
    case $1 in
        --tree) [[ $# -ge 2 && $2 == *=* ]] || { echo "bench_proxy: --tree NAME=DIR" >&2; exit 2; }; TREES+=("$2"); shift 2;;
        --connections|--seconds|--runs|--loss)
            [[ $# -ge 2 ]] || { echo "bench_proxy: $1 needs a value" >&2; exit 2; }
            case $1 in --connections) CONNLIST=$2;; --seconds) SECS=$2;; --runs) RUNS=$2;; --loss) LOSS=$2;; esac
            shift 2;;
        *) bench_opt "$@"; shift "$BENCH_SHIFT";;
    esac
done
[[ $RUNS =~ ^[0-9]+$ && $RUNS -ge 1 && $RUNS -le 50 ]] || { echo "bench_proxy: --runs 1..50" >&2; exit 2; }
[[ $CONNLIST =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "bench_proxy: --connections 1,4,..." >&2; exit 2; }
bench_check_max_time 7200
bench_trees current
bench_bound MWPX_BOUNDED $(( MAX_TIME + 120 )) "${ORIG_ARGS[@]}"
bench_preflight "network namespaces"
bench_out mwpx runs logs
bench_traps
RUN_SECS=$(( SECS + 40 ))
IFS=, read -r -a CONNS <<<"$CONNLIST"

cells=()
for n in "${CONNS[@]}"; do
    cells+=("direct/$n")
    for t in "${TREES[@]}"; do cells+=("${t%%=*}/$n"); done
done
ncells=${#cells[@]}
for ((round = 0; round < RUNS; round++)); do
    for ((j = 0; j < ncells; j++)); do
        cell=${cells[$(( (j + round) % ncells ))]}
        name=${cell%/*} n=${cell#*/}
        tag="${name}_c${n}_r$round"
        if (( $(elapsed) + RUN_SECS > MAX_TIME )); then echo skipped >"$OUT/runs/$tag"; continue; fi
        args=(--connections "$n" --seconds "$SECS")
        [[ $LOSS -gt 0 ]] && args+=(--loss "$LOSS")
        if [[ $name == direct ]]; then dir=${TREES[0]#*=}; args+=(--direct)
        else for t in "${TREES[@]}"; do [[ ${t%%=*} == "$name" ]] && dir=${t#*=}; done; fi
        timeout "$RUN_SECS" "$ROOT/tests/lab/bulk_proxy.sh" "$dir" "${args[@]}" >"$OUT/logs/$tag.log" 2>&1 & CHILD=$!
        wait "$CHILD"; CHILD=""
        mbit=$(sed -n 's/.*blast: \([0-9]*\) Mbit\/s.*/\1/p' "$OUT/logs/$tag.log")
        tail -n 1 "$OUT/logs/$tag.log" | grep -q ' 0 failed$' && v=pass || v=fail
        echo "${mbit:--1} $v" >"$OUT/runs/$tag"
        echo "bench_proxy: $tag ${mbit:-?} Mbit/s $v ($(elapsed) s)" >&2
    done
done

bench_header "Proxied / direct throughput, bulk push"
for t in "${TREES[@]}"; do echo "- tree ${t%%=*}: ${t#*=}/bin/migware, built $(date -u -r "${t#*=}/bin/migware" '+%Y-%m-%d %H:%M UTC')"; done
echo "- blast ${SECS} s per run, ${RUNS} runs per cell, loss $([[ $LOSS -gt 0 ]] && echo "1 in $LOSS client frames" || echo none)"
echo
"$PY" - "$OUT" "$RUNS" "${cells[@]}" <<'PY'
import os, statistics, sys
out, runs, cells = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def figures(cell):
    name, n = cell.rsplit("/", 1)
    v = []
    for r in range(runs):
        f = f"{out}/runs/{name}_c{n}_r{r}"
        if os.path.exists(f):
            t = open(f).read().split()
            if t and t[0] != "skipped" and int(t[0]) >= 0:
                v.append((int(t[0]), t[1] == "pass"))
    return v
print("| connections | path | Mbit/s median (min-max) | runs passed | proxied / direct (median) |")
print("|---|---|---|---|---|")
direct = {}
for cell in cells:
    name, n = cell.rsplit("/", 1)
    v = figures(cell)
    mb = [x for x, _ in v]
    med = statistics.median(mb) if mb else None
    if name == "direct":
        direct[n] = med
    ratio = f"{med / direct[n]:.2f}" if name != "direct" and med is not None and direct.get(n) else "-"
    rng = f"{med:.0f} ({min(mb)}-{max(mb)})" if mb else "-"
    print(f"| {n} | {name} | {rng} | {sum(1 for _, ok in v if ok)} of {len(v)} | {ratio} |")
PY
