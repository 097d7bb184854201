#!/usr/bin/env bash
# Parse + track throughput benchmarks (issue 3). Not a test: numbers go to
# BENCHMARKS.md by hand, with the machine and the date.
#   scripts/bench.sh            Google Benchmark (wall clock, 5+ repetitions)
#                               and callgrind instructions per packet
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
[[ -f build/CMakeCache.txt ]] || MIGWARE_SKIP_APT=${MIGWARE_SKIP_APT:-0} scripts/setup.sh >/dev/null
cmake --build build -j"$(nproc)" --target bench_parse_track bench_replay_once >/dev/null

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
echo "== google benchmark (one core, capture held in memory)"
taskset -c 0 build/bin/bench_parse_track --benchmark_repetitions=9 \
  --benchmark_report_aggregates_only=true 2>/dev/null | grep -E 'Benchmark|mean|median|stddev|cv'

echo "== callgrind: instructions inside run_pass (parse + track), 200 copies, per replay mode"
for mode in push aligned full; do
  out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$out" \
    --toggle-collect='migware::bench::run_pass*' build/bin/bench_replay_once 200 "$mode" 2>/dev/null
  frames=$(build/bin/bench_replay_once 200 "$mode" | awk '{print $2}')
  ir=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  rm -f "$out"
  echo "mode=$mode frames=$frames instructions=$ir per_packet=$(awk -v i="$ir" -v f="$frames" 'BEGIN{printf "%.1f", i/f}')"
done
