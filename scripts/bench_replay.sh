#!/usr/bin/env bash
# Replay-mode benchmark (issue 13): push, aligned and full side by side in one run, the modes in
# round-robin order (each round runs every cell once, the order rotating round by round, so that
# drift and bursts of load hit every mode alike).  Cells:
#   rr200_M, rr2000_M  tests/lab/failover.sh --mode reqresp --connections 200|2000
#                      --recovery-mode M --sample-migware 3 (memory before the pull; Recovery ->
#                      Proxy; the client-visible stall from tests/lab/latency.py)
#   h2m_M, h40k_M      tests/lab/http_failover.sh --mode M --file-size 2 MB | 40 kB
#                      --samples 3: stock nginx (Date header as it is), 10 keep-alive clients,
#                      the cable pulled mid-run; h2m_aligned also gives the fraction of runs
#                      with replay_diverged > 0
# Options:
#   --runs N           runs of each rr cell (default 5)
#   --http-runs N      runs of each nginx cell except h2m_aligned (default 3)
#   --diverge-runs N   runs of h2m_aligned (default 10)
#   --no-http          the rr cells only
#   --no-rr            the nginx cells only
#   --out DIR          results (per-run logs and JSON, the final table); default /dev/shm/mwrb.*
#   --keep             keep every run's artefacts under DIR/work
#   --max-time S       time budget in seconds (default 1500); runs that no longer fit are recorded
#                      as skipped, never dropped silently
#   --migware BIN      default build/bin/migware (copied once at the start)
# Needs root (network namespaces).  The last thing printed is a markdown table for BENCHMARKS.md.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ORIG_ARGS=("$@")
CMDLINE=$(printf '%q ' "$0" "$@")

RUNS=5 HTTP_RUNS=3 DIV_RUNS=10 HTTP=1 RR=1 OUT="" KEEP=0 MAX_TIME=1500 BIN="$ROOT/build/bin/migware"
BENCH_NAME=bench_replay
# shellcheck source=bench_lib.sh
source "$HERE/bench_lib.sh"
while [[ $# -gt 0 ]]; do
    case $1 in
        --runs|--http-runs|--diverge-runs)
            [[ $# -ge 2 ]] || { echo "bench_replay: $1 needs a value" >&2; exit 2; }
            case $1 in --runs) RUNS=$2;; --http-runs) HTTP_RUNS=$2;; --diverge-runs) DIV_RUNS=$2;; esac
            shift 2;;
        --no-http) HTTP=0; shift;;
        --no-rr) RR=0; shift;;
        *) bench_opt "$@"; shift "$BENCH_SHIFT";;
    esac
done
for v in RUNS HTTP_RUNS DIV_RUNS; do
    [[ ${!v} =~ ^[0-9]+$ && ${!v} -le 50 ]] || { echo "bench_replay: --runs/--http-runs/--diverge-runs 0..50" >&2; exit 2; }
done
bench_check_max_time 7200

# the whole benchmark is bounded: budget + the longest single run + margin
bench_bound MWRB_BOUNDED $(( MAX_TIME + 300 )) "${ORIG_ARGS[@]}"
bench_preflight "network namespaces"
FAILOVER="$ROOT/tests/lab/failover.sh"
HTTPFO="$ROOT/tests/lab/http_failover.sh"
BR="$ROOT/scripts/bench_replay.py"
bench_out mwrb runs logs work
bench_traps

# ---------------------------------------------------------------- machine
bench_copy_bin
bench_header "migware replay-mode benchmark (issue 13)"
echo "- migware: $(bench_migware_desc)"
echo "- nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //')"
echo "- time budget ${MAX_TIME}s; results in $OUT"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# ---------------------------------------------------------------- plan
MODES=(push aligned full)
declare -A CARGS CEST CKIND CCONNS CN
for m in "${MODES[@]}"; do
    CARGS[rr200_$m]="--mode reqresp --connections 200 --recovery-mode $m --sample-migware 3"
    CARGS[rr2000_$m]="--mode reqresp --connections 2000 --recovery-mode $m --sample-migware 3"
    CARGS[h2m_$m]="--mode $m --file-size 2097152 --samples 3"
    CARGS[h40k_$m]="--mode $m --file-size 40960 --samples 3"
    CEST[rr200_$m]=10 CEST[rr2000_$m]=16 CEST[h2m_$m]=11 CEST[h40k_$m]=11
    CKIND[rr200_$m]=rr CKIND[rr2000_$m]=rr CKIND[h2m_$m]=http CKIND[h40k_$m]=http
    CCONNS[rr200_$m]=200 CCONNS[rr2000_$m]=2000 CCONNS[h2m_$m]=10 CCONNS[h40k_$m]=10
    CN[rr200_$m]=$(( RR * RUNS )) CN[rr2000_$m]=$(( RR * RUNS ))
    CN[h2m_$m]=$(( HTTP * HTTP_RUNS )) CN[h40k_$m]=$(( HTTP * HTTP_RUNS ))
done
CN[h2m_aligned]=$(( HTTP * DIV_RUNS ))
# rounds: each round runs every cell that still needs runs once; the mode order rotates
QUEUE=()
MAXN=0; for c in "${!CN[@]}"; do (( CN[$c] > MAXN )) && MAXN=${CN[$c]}; done
for (( round = 0; round < MAXN; round++ )); do
    rot=()
    for (( j = 0; j < 3; j++ )); do rot+=("${MODES[$(( (round + j) % 3 ))]}"); done
    for w in rr200 rr2000 h2m h40k; do
        for m in "${rot[@]}"; do
            (( round < CN[${w}_$m] )) && QUEUE+=("${w}_$m")
        done
    done
done
EST=0; for c in "${QUEUE[@]}"; do EST=$(( EST + CEST[$c] )); done
echo "plan: ${#QUEUE[@]} lab runs, estimated ${EST}s"
for c in "${!CN[@]}"; do
    (( CN[$c] > 0 )) || continue
    s=$FAILOVER; [[ ${CKIND[$c]} == http ]] && s=$HTTPFO
    echo "  $c x ${CN[$c]}: ${s#"$ROOT"/} ${CARGS[$c]}"
done | sort
echo

# ---------------------------------------------------------------- runs
ulimit -n 20000 2>/dev/null || true
NFAIL=0 NSKIP=0 i=0
for c in "${QUEUE[@]}"; do
    i=$(( i + 1 ))
    name=$(printf '%03d-%s' "$i" "$c")
    m=${c#*_}
    left=$(( MAX_TIME - $(elapsed) ))
    if (( left < 2 * CEST[$c] )); then
        printf '[%4ds] run %d/%d %-13s SKIPPED: %ds left in the time budget\n' "$(elapsed)" "$i" "${#QUEUE[@]}" "$c" "$left"
        printf '{"category": "%s", "mode": "%s", "rc": -1, "skipped": true, "notes": ["time budget"]}\n' "$c" "$m" >"$OUT/runs/$name.json"
        NSKIP=$(( NSKIP + 1 )); continue
    fi
    load=$(cut -d' ' -f1 /proc/loadavg)
    others=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -c -- '-hub$')
    if [[ ${CKIND[$c]} == rr ]]; then
        # shellcheck disable=SC2086
        bench_failover_run "$name" "$c" "$OUT/work/$name/latency.json" ${CARGS[$c]}
        rc=$RC verdict=$VERDICT
        LAT=(--latency "$OUT/work/$name/latency.json")
    else
        # shellcheck disable=SC2086
        bench_run "$OUT/logs/$name.log" "$HTTPFO" ${CARGS[$c]} --migware "$BIN" --work "$OUT/work/$name"
        rc=$RC
        verdict=$(grep -E '^http_failover: (mode=[a-z]+ downloads=|FAIL)' "$OUT/logs/$name.log" | tail -n 1)
        LAT=()
    fi
    "$PY" "$BR" run --work "$OUT/work/$name" --out "$OUT/runs/$name.json" --category "$c" --mode "$m" \
        --kind "${CKIND[$c]}" --connections "${CCONNS[$c]}" --rc "$rc" --verdict "$verdict" "${LAT[@]}" \
        2>>"$OUT/logs/$name.log" \
        || printf '{"category": "%s", "mode": "%s", "rc": %d, "verdict": "%s", "notes": ["bench_replay.py failed"]}\n' \
               "$c" "$m" "$rc" "$verdict" >"$OUT/runs/$name.json"
    # the machine's state at the run's start, for the noise note
    "$PY" - "$OUT/runs/$name.json" "$load" "$others" <<'EOF'
import json, sys
p, load, others = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
r = json.load(open(p)); r["load_at_start"] = load; r["other_labs_at_start"] = others
json.dump(r, open(p, "w"), indent=1)
EOF
    summary=$("$PY" - "$OUT/runs/$name.json" <<'EOF'
import json, statistics, sys
r = json.load(open(sys.argv[1]))
p = []
if "recovery_ms" in r: p.append("recovery=%.1fms" % r["recovery_ms"])
if r.get("stall_ms"): p.append("stall_med=%.0fms" % statistics.median(r["stall_ms"]))
if "buffered_per_conn" in r: p.append("held/conn=%.0fB" % r["buffered_per_conn"])
if "vmrss_delta_per_conn" in r: p.append("rss/conn=%.0fB" % r["vmrss_delta_per_conn"])
c = r.get("counters", {})
p.append("verified=%s diverged=%s drops=%s" % (c.get("replay_verified"), c.get("replay_diverged"), c.get("kernel_drops")))
print(" ".join(p))
EOF
)
    bench_status "$rc" "$verdict"
    printf '[%4ds] run %d/%d %-13s %s %s load=%s labs=%s\n' "$(elapsed)" "$i" "${#QUEUE[@]}" "$c" "$STATUS" "$summary" "$load" "$others"
    bench_failure_lines "$rc" "$OUT/logs/$name.log" '^(verify: failure|  +[0-9]+ x|FAIL conn|failover: ERROR|http_failover: (FAIL|ERROR))'
    [[ $KEEP -eq 1 ]] || rm -rf "$OUT/work/$name"
done

echo
echo "## Results ($(( ${#QUEUE[@]} - NFAIL - NSKIP )) runs passed, $NFAIL failed, $NSKIP skipped; $(elapsed)s)"
echo
echo "Definitions: memory is sampled 3 times during steady traffic before the pull (at 65, 80 and"
echo "95 % of the time before it), median over the samples: buffered_bytes (client bytes migware"
echo "holds for replay) / connections, and (VmRSS - VmRSS before the clients connected) /"
echo "connections. recovery = migware's \`to=recovery\` -> \`to=proxy\` mono_ns. stall = per"
echo "connection, the client's last ACK-carrying segment from 198.18.0.1 before the pull -> the"
echo "first after it (tests/lab/latency.py; includes the client's idle time before its next"
echo "request). p99 is nearest-rank (the maximum when n < 100). Stats over passed runs only."
echo
"$PY" "$BR" summary --runs "$OUT/runs" --markdown "$OUT/table.md"
[[ $NFAIL -eq 0 && $NSKIP -eq 0 ]]
