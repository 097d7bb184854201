#!/usr/bin/env bash
# Capture benchmark: does the capture keep up with the HTTP download lab?  Side by side in one
# run, round-robin (each round runs every cell once, the order rotating round by round):
# build trees (--tree NAME=BUILD_DIR, e.g. the release and the sanitized tree) x capture
# settings (--setting NAME="DAEMON OPTIONS", e.g. the ring size and the read batch).  Each run
# is tests/lab/replay_http.sh BUILD_DIR --mode aligned (nginx, 10 keep-alive clients at 3 MB/s
# each, the cable pulled at 2 s) with the setting's options, on a quiet machine or, with
# --busy N, beside N CPU-bound processes for the run's length (a machine doing other work, as a
# CI machine or a busy backup is).  Per cell: the kernel's capture drops (median, max, runs
# with any), migware's CPU share before the pull (median of 0.5 s samples), and the test's
# verdict (runs passed).
#
# Options:
#   --tree NAME=DIR       a build tree with bin/migware (repeat; default release=build)
#   --setting NAME=OPTS   daemon options (repeat; default as-is="")
#   --runs N              runs per cell (default 3)
#   --busy N              N CPU-bound processes beside each run (bounded by the run's time)
#   --out DIR             results; default /dev/shm/mwcap.*
#   --max-time S          time budget (default 1800); runs that no longer fit are recorded as skipped
# Needs root (network namespaces).  The last thing printed is a markdown table for BENCHMARKS.md.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ORIG_ARGS=("$@")
CMDLINE=$(printf '%q ' "$0" "$@")

RUNS=3 BUSY=0 OUT="" KEEP=0 MAX_TIME=1800 BIN="$ROOT/build/bin/migware"
TREES=() SETTINGS=()
BENCH_NAME=bench_capture
# shellcheck source=bench_lib.sh
source "$HERE/bench_lib.sh"
while [[ $# -gt 0 ]]; do
    case $1 in
        --tree|--setting)
            [[ $# -ge 2 && $2 == *=* ]] || { echo "bench_capture: $1 NAME=VALUE" >&2; exit 2; }
            [[ $1 == --tree ]] && TREES+=("$2") || SETTINGS+=("$2")
            shift 2;;
        --runs) [[ $# -ge 2 ]] || { echo "bench_capture: --runs needs a value" >&2; exit 2; }; RUNS=$2; shift 2;;
        --busy) [[ $# -ge 2 && $2 =~ ^[0-9]$ ]] || { echo "bench_capture: --busy 0..9" >&2; exit 2; }; BUSY=$2; shift 2;;
        *) bench_opt "$@"; shift "$BENCH_SHIFT";;
    esac
done
[[ $RUNS =~ ^[0-9]+$ && $RUNS -ge 1 && $RUNS -le 50 ]] || { echo "bench_capture: --runs 1..50" >&2; exit 2; }
bench_check_max_time 7200
bench_trees release
[[ ${#SETTINGS[@]} -gt 0 ]] || SETTINGS=("as-is=")
bench_bound MWCAP_BOUNDED $(( MAX_TIME + 120 )) "${ORIG_ARGS[@]}"
bench_preflight "network namespaces"
bench_out mwcap runs logs
bench_traps

RUN_SECS=45   # one replay_http.sh run at most (it takes ~12 s)
echo "bench_capture: $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(uname -r); $CMDLINE" >&2

# sample_cpu PIDFILE OUT : migware's CPU share (%) every 0.5 s while it runs, one per line
sample_cpu() {
    local pid="" i prev cur tck
    tck=$(getconf CLK_TCK)
    for i in $(seq 1 200); do pid=$(pgrep -n -x migware) && break; sleep 0.05; done
    [[ -n $pid ]] || return 0
    prev=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || return 0
    while [[ -d /proc/$pid ]]; do
        sleep 0.5
        cur=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || break
        [[ -n $cur ]] || break
        echo $(( (cur - prev) * 200 / tck ))
        prev=$cur
    done >"$1"
}

cells=()
for t in "${TREES[@]}"; do for s in "${SETTINGS[@]}"; do cells+=("${t%%=*}/${s%%=*}"); done; done
n=${#cells[@]}
for ((round = 0; round < RUNS; round++)); do
    for ((j = 0; j < n; j++)); do
        cell=${cells[$(( (j + round) % n ))]}
        tree=${cell%%/*} setting=${cell#*/}
        dir="" opts=""
        for t in "${TREES[@]}"; do [[ ${t%%=*} == "$tree" ]] && dir=${t#*=}; done
        for s in "${SETTINGS[@]}"; do [[ ${s%%=*} == "$setting" ]] && opts=${s#*=}; done
        tag="${tree}_${setting}_r$round"
        if (( $(elapsed) + RUN_SECS > MAX_TIME )); then
            echo "skipped" >"$OUT/runs/$tag.verdict"; continue
        fi
        burners=()
        for ((b = 0; b < BUSY; b++)); do
            timeout "$RUN_SECS" "$PY" -c 'while True: pass' & burners+=($!)
        done
        sample_cpu "$OUT/runs/$tag.cpu" & sampler=$!
        RL_MIGWARE_EXTRA="$opts" timeout "$RUN_SECS" "$ROOT/tests/lab/replay_http.sh" "$dir" --mode aligned \
            >"$OUT/logs/$tag.log" 2>&1 & CHILD=$!
        wait "$CHILD"; CHILD=""
        for b in "${burners[@]}"; do kill "$b" 2>/dev/null; wait "$b" 2>/dev/null; done
        wait "$sampler" 2>/dev/null
        tail -n 1 "$OUT/logs/$tag.log" | grep -q ' 0 failed$' && v=pass || v=fail
        drops=$(grep -o 'kernel_drops=[0-9]*' "$OUT/logs/$tag.log" | head -n 1 | cut -d= -f2)
        echo "$v" >"$OUT/runs/$tag.verdict"
        echo "${drops:--1}" >"$OUT/runs/$tag.drops"
        echo "bench_capture: $tag $v kernel_drops=${drops:-?} ($(elapsed) s)" >&2
    done
done

bench_header "Capture: kernel drops on the HTTP download lab"
for t in "${TREES[@]}"; do echo "- tree ${t%%=*}: ${t#*=}/bin/migware, built $(date -u -r "${t#*=}/bin/migware" '+%Y-%m-%d %H:%M UTC')"; done
for s in "${SETTINGS[@]}"; do echo "- setting ${s%%=*}: '${s#*=}'"; done
echo
"$PY" - "$OUT" "$RUNS" "$BUSY" "${cells[@]}" <<'PY'
import glob, os, statistics, sys
out, runs, busy, cells = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
print(f"| tree / capture setting | runs passed | kernel drops: median, max | runs with drops | migware CPU before the pull, median |")
print("|---|---|---|---|---|")
for cell in cells:
    tree, setting = cell.split("/", 1)
    verdicts, drops, cpu = [], [], []
    for r in range(runs):
        tag = f"{out}/runs/{tree}_{setting}_r{r}"
        v = open(tag + ".verdict").read().strip() if os.path.exists(tag + ".verdict") else "missing"
        verdicts.append(v)
        if os.path.exists(tag + ".drops"):
            d = int(open(tag + ".drops").read().strip())
            if d >= 0:
                drops.append(d)
        if os.path.exists(tag + ".cpu"):
            s = [int(x) for x in open(tag + ".cpu").read().split()]
            cpu.extend(s[:4])   # the first 2 s: before the pull (at 2 s)
    passed = verdicts.count("pass")
    ran = len([v for v in verdicts if v in ("pass", "fail")])
    d = f"{statistics.median(drops):.0f}, {max(drops)}" if drops else "-"
    c = f"{statistics.median(cpu):.0f}%" if cpu else "-"
    print(f"| {tree} / {setting}{f' ({busy} busy)' if busy else ''} | {passed} of {ran}"
          f"{'' if ran == runs else f' ({runs - ran} skipped)'} | {d} | {sum(1 for x in drops if x > 0)} | {c} |")
PY
