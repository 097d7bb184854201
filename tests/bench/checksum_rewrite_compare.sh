#!/usr/bin/env bash
# Side-by-side micro-benchmarks of checksum and rewrite work: one commit (the
# baseline) against the working tree, in one run, alternating the two
# binaries round by round on one core so that machine noise hits both alike.
# Prints the median real and CPU time of every benchmark for each side (on
# a machine shared with other work, CPU time is the steadier of the two).
#
#   tests/bench/checksum_rewrite_compare.sh BASE_REF [ROUNDS]
#
# Both sides build only migware_sniffer and migware_rewrite (RelWithDebInfo,
# as the daemon) in a temporary directory, and compile the same
# tests/bench/checksum_rewrite_bench.cpp against each. Needs Debian's
# libbenchmark-dev.
set -euo pipefail

base_ref=${1:?usage: $0 BASE_REF [ROUNDS]}
rounds=${2:-5}
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
bench_src=$repo/tests/bench/checksum_rewrite_bench.cpp
work=$(mktemp -d /tmp/migware-bench-cmp.XXXXXX)
trap 'rm -rf "$work"' EXIT

build_libs() {  # $1 = source tree, $2 = build dir
  cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMIGWARE_BENCH=OFF >/dev/null
  cmake --build "$2" -j2 --target migware_rewrite migware_sniffer >/dev/null
}

bench_binary() {  # $1 = source tree, $2 = build dir, $3 = output
  g++ -std=c++20 -O2 -g -DNDEBUG -I"$1" "$bench_src" \
    "$2/rewrite/libmigware_rewrite.a" "$2/sniffer/libmigware_sniffer.a" \
    -lbenchmark -lpthread -lpcap -o "$3"
}

mkdir -p "$work/base"
git -C "$repo" archive "$base_ref" | tar -x -C "$work/base"
build_libs "$work/base" "$work/base-build"
bench_binary "$work/base" "$work/base-build" "$work/bench-base"
build_libs "$repo" "$work/new-build"
bench_binary "$repo" "$work/new-build" "$work/bench-new"

for ((r = 1; r <= rounds; r++)); do
  for side in base new; do
    taskset -c 0 "$work/bench-$side" --benchmark_repetitions=3 --benchmark_format=csv \
      2>/dev/null | awk -F, -v side="$side" 'NR > 1 && $1 !~ /_(mean|median|stddev|cv)"?$/ {
        gsub(/"/, "", $1); print side, $1, $3, $4 }' >>"$work/times"
  done
done

echo "base = $(git -C "$repo" rev-parse --short "$base_ref"), new = working tree of" \
  "$(git -C "$repo" rev-parse --short HEAD); $rounds rounds x 3 repetitions, one core"
python3 - "$work/times" <<'EOF'
import statistics, sys
times = {}
order = []
for line in open(sys.argv[1]):
    side, name, real, cpu = line.split()
    if name not in order:
        order.append(name)
    times.setdefault((side, name), []).append((float(real), float(cpu)))

def med(side, name, k):
    v = times.get((side, name))
    return statistics.median(x[k] for x in v) if v else None

def cell(v):
    return f"{v:9.1f}" if v else f"{'-':>9}"

print(f"{'median ns':36} {'real base':>9} {'real new':>9} {'ratio':>6}"
      f" {'cpu base':>9} {'cpu new':>9} {'ratio':>6}")
for name in order:
    row = f"{name:36}"
    for k in (0, 1):
        b, n = med("base", name, k), med("new", name, k)
        ratio = f"{n / b:6.2f}" if b and n else f"{'-':>6}"
        row += f" {cell(b)} {cell(n)} {ratio}"
    print(row)
EOF
