#!/usr/bin/env bash
# Failover benchmark (issue 4, "Speed"): runs the hub lab (tests/lab/failover.sh) repeatedly and
# prints medians / p99 / min / max over runs for
#   --detection          cable pulled -> Recovery, at the defaults (push, 200 conns, 10 runs)
#   --recovery           Recovery -> Proxy for 200 / 2000 / 10000 connections (5 / 5 / 3 runs)
#   --stall              client-visible stall per connection: last ACK from the primary -> first
#                        ACK through the backup, from the client's capture (every run with a pull)
#   --latency            per-packet added latency in Proxy from the backup's eth0 + mw0 captures,
#                        and client request->reply time, proxied vs direct to the backup, same run
#   --concurrency-sweep  recovery of 2000 connections at --recovery.concurrency 16/64/256/1024
#   --detection-compare  issue 10, side by side in one run (round-robin): detection at the
#                        defaults vs the old 20/60/4 echo-only setting (push 200, 10 runs each);
#                        1 request/response connection; a quiet segment (1 connection, one
#                        request a second) with and without the ARP neighbour probe (5 each)
#   --arp-compare        side by side (round-robin): detection with the monitor's second level
#                        (ARP to the primary, the default) against echo alone
#                        (--monitor.arp-probe false), and with ARP alone (a primary that ignores
#                        echo); push 200, 10 runs each
# Default: all of them.  Other options:
#   --out DIR        results (per-run logs and JSON, the final table); default /dev/shm/mwbench.*
#   --keep           keep every run's artefacts (pcaps, logs) under DIR/work
#   --max-time S     time budget in seconds (default 900); runs that no longer fit are recorded
#                    as skipped, never dropped silently
#   --migware BIN    default build/bin/migware (copied once at the start, so a rebuild during
#                    the benchmark cannot swap binaries between runs)
# Needs root (network namespaces). The last thing printed is a markdown table for BENCHMARKS.md.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ORIG_ARGS=("$@")
CMDLINE=$(printf '%q ' "$0" "$@")

SEL=() OUT="" KEEP=0 MAX_TIME=900 BIN="$ROOT/build/bin/migware"
BENCH_NAME=bench_failover
# shellcheck source=bench_lib.sh
source "$HERE/bench_lib.sh"
while [[ $# -gt 0 ]]; do
    case $1 in
        --detection|--recovery|--stall|--latency|--concurrency-sweep|--detection-compare|--arp-compare) SEL+=("${1#--}"); shift;;
        *) bench_opt "$@"; shift "$BENCH_SHIFT";;
    esac
done
bench_check_max_time 7200
[[ ${#SEL[@]} -eq 0 ]] && SEL=(detection recovery stall latency concurrency-sweep)
want() { local s; for s in "${SEL[@]}"; do [[ $s == "$1" ]] && return 0; done; return 1; }

# the whole benchmark is bounded: budget + the longest single run + margin
bench_bound MWB_BOUNDED $(( MAX_TIME + 300 )) "${ORIG_ARGS[@]}"
bench_preflight "network namespaces"
LATENCY="$ROOT/tests/lab/latency.py"
bench_out mwbench runs logs work
bench_traps

# ---------------------------------------------------------------- machine
bench_copy_bin
DEF_CONC=$("$BIN" --help 2>&1 | sed -n 's/.*--recovery.concurrency arg (=\([0-9]*\)).*/\1/p')
[[ -n $DEF_CONC ]] || DEF_CONC="?"
bench_header "migware failover benchmark"
echo "- migware: $(bench_migware_desc), default --recovery.concurrency $DEF_CONC"
echo "- modes: ${SEL[*]}; time budget ${MAX_TIME}s; results in $OUT"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# ---------------------------------------------------------------- plan
# category -> failover.sh arguments
declare -A CARGS=(
    [push200]="--mode push --connections 200"
    [push2000]="--mode push --connections 2000"
    [push10000]="--mode push --connections 10000 --rate 2000"
    [reqresp200]="--mode reqresp --connections 200"
    [latency]="--mode reqresp --connections 200 --rate 1000 --direct-connections 200 --direct-rate 1000 --backup-capture --duration 8 --pull-at 2"
    [push2000_c16]="--mode push --connections 2000 --migware-arg --recovery.concurrency --migware-arg 16"
    [push2000_c256]="--mode push --connections 2000 --migware-arg --recovery.concurrency --migware-arg 256"
    [push2000_c1024]="--mode push --connections 2000 --migware-arg --recovery.concurrency --migware-arg 1024"
    [push200_old]="--mode push --connections 200 --migware-arg --monitor.interval-ms --migware-arg 20 --migware-arg --monitor.timeout-ms --migware-arg 60 --migware-arg --monitor.segment-evidence --migware-arg false"
    [reqresp1]="--mode reqresp --connections 1"
    [idle1]="--mode reqresp --connections 1 --rate 1 --duration 8"
    [idle1_noprobe]="--mode reqresp --connections 1 --rate 1 --duration 8 --migware-arg --monitor.neighbour-probe --migware-arg false"
    [push200_echo_only]="--mode push --connections 200 --migware-arg --monitor.arp-probe --migware-arg false"
    [push200_icmp_silent]="--mode push --connections 200 --primary-icmp-silent"
)
declare -A CEST=([push200]=10 [push2000]=15 [push10000]=45 [reqresp200]=10 [latency]=15
                 [push2000_c16]=15 [push2000_c256]=15 [push2000_c1024]=15
                 [push200_old]=10 [reqresp1]=10 [idle1]=16 [idle1_noprobe]=16
                 [push200_echo_only]=10 [push200_icmp_silent]=10)
declare -A NEED=()
QUEUE=()
# need CAT N : make sure the queue holds at least N runs of CAT
need() {
    local c=$1 n=$2 have=${NEED[$1]:-0}
    while (( have < n )); do QUEUE+=("$c"); have=$(( have + 1 )); done
    NEED[$c]=$have
}
PLAN=()
plan() { PLAN+=("$(printf '["%s", "%s", "%s"]' "$1" "$2" "$3")"); }

if want detection; then
    need push200 10
    plan detection push200 "detection: cable pulled -> Recovery (ms), push, 200 conns, defaults"
fi
if want recovery; then
    need push200 5; need push2000 5; need push10000 3
    plan recovery push200 "recovery: Recovery -> Proxy (ms), 200 conns"
    plan recovery push2000 "recovery: Recovery -> Proxy (ms), 2000 conns"
    plan recovery push10000 "recovery: Recovery -> Proxy (ms), 10000 conns (2000 records/s total)"
fi
if want stall; then
    need push200 5; need reqresp200 5
    plan stall push200 "client-visible stall (ms), push, 200 conns, 10 records/s each"
    plan stall reqresp200 "client-visible stall (ms), reqresp, 200 conns, 10 requests/s each"
    want recovery && plan stall push2000 "client-visible stall (ms), push, 2000 conns, 3 records/s each"
    want recovery && plan stall push10000 "client-visible stall (ms), push, 10000 conns, 0.2 records/s each"
fi
if want latency; then
    need latency 3
    plan added_a latency "added latency (us), client -> backup: eth0 in -> mw0 (reqresp 200 conns)"
    plan added_b latency "added latency (us), backup -> client: mw0 -> eth0 out (reqresp 200 conns)"
    plan rtt_proxied latency "client request -> reply (us), 200 proxied conns, in Proxy"
    plan rtt_direct latency "client request -> reply (us), 200 direct conns to the backup, same runs"
fi
if want concurrency-sweep; then
    # round-robin, so that slow drift of the machine does not favour one setting
    for i in 1 2 3; do
        for c in push2000_c16 push2000 push2000_c256 push2000_c1024; do
            need "$c" "$i"
        done
    done
    plan recovery push2000_c16 "concurrency sweep: recovery (ms), 2000 conns, --recovery.concurrency 16"
    plan recovery push2000 "concurrency sweep: recovery (ms), 2000 conns, --recovery.concurrency $DEF_CONC (default)"
    plan recovery push2000_c256 "concurrency sweep: recovery (ms), 2000 conns, --recovery.concurrency 256"
    plan recovery push2000_c1024 "concurrency sweep: recovery (ms), 2000 conns, --recovery.concurrency 1024"
fi
if want detection-compare; then
    for i in 1 2 3 4 5 6 7 8 9 10; do
        need push200 "$i"; need push200_old "$i"; need reqresp1 "$i"
        (( i <= 5 )) && { need idle1 "$i"; need idle1_noprobe "$i"; }
    done
    plan detection push200 "detection (ms), push 200 conns, defaults (10 ms / 40 ms / 4, segment evidence)"
    plan detection push200_old "detection (ms), push 200 conns, the old default (20 ms / 60 ms / 4, echo only)"
    plan detection reqresp1 "detection (ms), 1 request/response conn, 10 requests/s, defaults"
    plan detection idle1 "detection (ms), quiet segment: 1 conn, a request a second, defaults (ARP neighbour probe)"
    plan detection idle1_noprobe "detection (ms), quiet segment, --monitor.neighbour-probe false"
fi
if want arp-compare; then
    for i in 1 2 3 4 5 6 7 8 9 10; do need push200 "$i"; need push200_echo_only "$i"; need push200_icmp_silent "$i"; done
    plan detection push200 "detection (ms), push 200 conns, defaults (echo + ARP to the primary)"
    plan detection push200_echo_only "detection (ms), push 200 conns, echo alone (--monitor.arp-probe false)"
    plan detection push200_icmp_silent "detection (ms), push 200 conns, the primary ignores echo: ARP alone"
fi
( IFS=,; echo "[${PLAN[*]}]" ) >"$OUT/runs/plan.json"

EST=0; for c in "${QUEUE[@]}"; do EST=$(( EST + CEST[$c] )); done
echo "plan: ${#QUEUE[@]} lab runs, estimated ${EST}s"
for c in "${!NEED[@]}"; do echo "  $c x ${NEED[$c]}: failover.sh ${CARGS[$c]}"; done | sort
echo

# ---------------------------------------------------------------- runs
ulimit -n 20000 2>/dev/null || true
NFAIL=0 NSKIP=0 i=0
for c in "${QUEUE[@]}"; do
    i=$(( i + 1 ))
    name=$(printf '%03d-%s' "$i" "$c")
    left=$(( MAX_TIME - $(elapsed) ))
    if (( left < 3 * CEST[$c] )); then
        printf '[%3ds] run %d/%d %-16s SKIPPED: %ds left in the time budget\n' "$(elapsed)" "$i" "${#QUEUE[@]}" "$c" "$left"
        printf '{"category": "%s", "rc": -1, "skipped": true, "notes": ["time budget"]}\n' "$c" >"$OUT/runs/$name.json"
        NSKIP=$(( NSKIP + 1 )); continue
    fi
    # shellcheck disable=SC2086
    bench_failover_run "$name" "$c" "$OUT/runs/$name.json" ${CARGS[$c]} \
        || printf '{"category": "%s", "rc": %d, "verdict": "%s", "notes": ["latency.py failed"]}\n' \
               "$c" "$RC" "$VERDICT" >"$OUT/runs/$name.json"
    rc=$RC
    summary=$("$PY" - "$OUT/runs/$name.json" <<'EOF'
import json, statistics, sys
r = json.load(open(sys.argv[1]))
p = []
for k in ("detection_ms", "recovery_ms"):
    if k in r: p.append("%s=%.1f" % (k[:-3], r[k]))
if r.get("stall_ms"): p.append("stall_med=%.0fms" % statistics.median(r["stall_ms"]))
for k in ("a_us", "b_us", "rtt_proxied_us", "rtt_direct_us"):
    if r.get(k): p.append("%s_med=%.0fus(n=%d)" % (k[:-3], statistics.median(r[k]), len(r[k])))
print(" ".join(p))
EOF
)
    bench_status "$rc" "$VERDICT"
    printf '[%3ds] run %d/%d %-16s %s %s load=%s\n' "$(elapsed)" "$i" "${#QUEUE[@]}" "$c" "$STATUS" "$summary" "$(cut -d' ' -f1 /proc/loadavg)"
    bench_failure_lines "$rc" "$OUT/logs/$name.log" '^(verify: failure|  +[0-9]+ x|FAIL conn|failover: ERROR)'
    [[ $KEEP -eq 1 ]] || rm -rf "$OUT/work/$name"
done

echo
echo "## Results ($(( ${#QUEUE[@]} - NFAIL - NSKIP )) runs passed, $NFAIL failed, $NSKIP skipped; $(elapsed)s)"
echo
echo "Definitions: detection = the pull (\`ip link set p-primary down\` returned, CLOCK_MONOTONIC) ->"
echo "migware's \`to=recovery\` mono_ns; recovery = \`to=recovery\` -> \`to=proxy\`; stall = per connection,"
echo "the last segment with ACK from 198.18.0.1:7000 captured by the client before the pull -> the"
echo "first after it (so it includes the client's own idle gap before its next send: it grows as the"
echo "per-connection rate falls); added latency = per packet after the Proxy transition, backup eth0 <-> mw0"
echo "pcap timestamps matched by direction + IP ID + payload length (+ client port); request -> reply"
echo "= client capture, request segment out -> first reply segment acknowledging it, requests sent"
echo "after the Proxy transition. p99 is nearest-rank (the maximum when n < 100). Stats over passed"
echo "runs only; failed runs are listed."
echo
"$PY" "$LATENCY" summary --runs "$OUT/runs" --markdown "$OUT/table.md"
[[ $NFAIL -eq 0 && $NSKIP -eq 0 ]]
