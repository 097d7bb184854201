#!/usr/bin/env bash
# Runs the libFuzzer targets (tests/fuzz/README.md) for a bounded time each.
#
#   scripts/fuzz.sh [--seconds N] [TARGET...]     default: 60 s, every target
#
# Builds build-fuzz/ (clang, -DMIGWARE_FUZZ=ON) if needed, writes seed corpora
# from the captures (scripts/fuzz_seeds.py) into build-fuzz/seeds/, and runs
# each target, one at a time, over build-fuzz/corpus/TARGET (kept between
# runs: new inputs land there), its seeds and tests/fuzz/regressions/TARGET.
# Prints execs/s and coverage per target. Exits non-zero if any target
# crashed, leaked, hit a sanitizer report or timed out; the input that did it
# is left under build-fuzz/crashes/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
targets=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "fuzz: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { echo "fuzz: --seconds wants a positive integer" >&2; exit 2; }
all=(fuzz_parser fuzz_engine)
[[ -f tests/fuzz/fuzz_control.cpp ]] && all+=(fuzz_control)
[[ -f tests/fuzz/fuzz_membership.cpp ]] && all+=(fuzz_membership)
[[ ${#targets[@]} -gt 0 ]] || targets=("${all[@]}")
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || { echo "fuzz: unknown target $t (known: ${all[*]})" >&2; exit 2; }
done

build=build-fuzz
started=$SECONDS
if [[ ! -f $build/CMakeCache.txt ]]; then
  echo "fuzz: configuring $build (clang, MIGWARE_FUZZ=ON)" >&2
  CC=clang CXX=clang++ cmake -S . -B "$build" -DMIGWARE_FUZZ=ON -DMIGWARE_BENCH=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j2 --target "${targets[@]}" >/dev/null
echo "fuzz: built ${targets[*]} in $((SECONDS - started)) s" >&2

rm -rf "$build/seeds"
python3 scripts/fuzz_seeds.py "$build/seeds" >&2
mkdir -p "$build/crashes"

# libFuzzer's own reports; leaks are errors too.
export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

status=0
summary=()
for t in "${targets[@]}"; do
  corpus=$build/corpus/$t
  mkdir -p "$corpus" "$build/seeds/$t"
  inputs=("$corpus" "$build/seeds/$t")
  [[ -d tests/fuzz/regressions/$t ]] && inputs+=("tests/fuzz/regressions/$t")
  case $t in
    fuzz_parser) max_len=65600 ;;  # a selector byte and a 64 KiB BIG TCP frame
    fuzz_engine) max_len=65536 ;;  # a capture's script (scripts/fuzz_seeds.py caps them at 60 KB)
    *) max_len=4096 ;;
  esac
  log=$build/$t.log
  echo "fuzz: $t for $seconds s (log: $log)" >&2
  rc=0
  "$build/bin/$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len="$max_len" \
    -print_final_stats=1 -artifact_prefix="$build/crashes/$t-" "${inputs[@]}" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*/[0-9a-zA-Z]*' "$log" | tail -n1)
  line="$t: ${runs:-?} runs, ${execs:-?} execs/s, ${cov:-no coverage line}"
  if [[ $rc -ne 0 ]]; then
    status=1
    line+=" -- FAILED (exit $rc)"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz_[a-z]+: invariant|fuzz_[a-z]+: sent)' "$log" | head -n 5 >&2 || true
    grep -E "^artifact_prefix=.*Test unit written to" "$log" >&2 || true
  fi
  summary+=("$line")
done
echo "== fuzz summary (${seconds} s each, $((SECONDS - started)) s in all)"
printf '%s\n' "${summary[@]}"
[[ $status -eq 0 ]] || echo "fuzz: crash inputs are in $build/crashes/ (minimise: $build/bin/TARGET -minimize_crash=1 -runs=10000 FILE)" >&2
exit $status
