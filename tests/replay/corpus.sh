#!/usr/bin/env bash
# Runs `migware replay` over every capture in ../shared/corpus (830 tcpdump
# test captures, many malformed on purpose, plus PcapPlusPlus streams).
# Each run must end in exit 0 with a summary line, or exit 1 with exactly one
# clear line on stderr (unsupported link type, unreadable file). A crash, a
# sanitizer report or any other exit fails the test.
set -uo pipefail
build=${1:?usage: corpus.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
corpus=$root/../shared/corpus
bin=$build/bin/migware
[[ -x $bin ]] || { echo "corpus: $bin not built" >&2; exit 1; }
[[ -d $corpus ]] || { echo "corpus: $corpus missing: this test needs shared/ beside the repo" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mapfile -t files < <(find "$corpus" -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' \) | sort)
[[ ${#files[@]} -ge 800 ]] || { echo "corpus: only ${#files[@]} captures found in $corpus" >&2; exit 1; }
passed=0 failed=0 decoded=0 refused=0
for f in "${files[@]}"; do
  "$bin" replay "$f" --json >"$tmp/out" 2>"$tmp/err"
  rc=$?
  errlines=$(wc -l <"$tmp/err")
  if [[ $rc -eq 0 && $errlines -eq 0 ]] && tail -n1 "$tmp/out" | grep -q '^{"summary":true,'; then
    passed=$((passed + 1)); decoded=$((decoded + 1))
  elif [[ $rc -eq 1 && $errlines -eq 1 ]] && grep -q '^migware: ' "$tmp/err"; then
    passed=$((passed + 1)); refused=$((refused + 1))
  else
    failed=$((failed + 1))
    echo "FAIL ${f#"$corpus"/} (exit $rc)"; head -n 20 "$tmp/err"
  fi
done
echo "corpus: ${#files[@]} captures: $decoded decoded, $refused refused with one line"
echo "corpus: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
