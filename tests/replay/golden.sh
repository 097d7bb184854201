#!/usr/bin/env bash
# Golden replay tests: each line of pcaps/manifest.txt is
#   name  input.pcap  expected.jsonl  [replay options...]
# and `migware replay input --json options` must print expected.jsonl exactly.
# Paths are relative to the repository root.
#
#   tests/replay/golden.sh BUILD_DIR            run every case
#   tests/replay/golden.sh BUILD_DIR --update N rewrite case N's expected file
#                                               (on purpose only: review the diff)
set -uo pipefail
build=${1:?usage: golden.sh BUILD_DIR [--update NAME]}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$build/bin/migware
[[ -x $bin ]] || { echo "golden: $bin not built" >&2; exit 1; }
cd "$root"
update=${3:-}
passed=0 failed=0
while read -r name input expected opts; do
  [[ -z $name || $name == \#* ]] && continue
  if [[ ! -f $input ]]; then
    echo "FAIL $name: input $input missing"; failed=$((failed + 1)); continue
  fi
  # shellcheck disable=SC2086  # options are words on purpose
  actual=$("$bin" replay "$input" --json $opts 2>&1)
  rc=$?
  if [[ $update == "$name" ]]; then
    printf '%s\n' "$actual" >"$expected"; echo "updated $expected"; continue
  fi
  if [[ $rc -eq 0 ]] && diff -u "$expected" <(printf '%s\n' "$actual") >/tmp/golden.$$.diff; then
    echo "ok   $name"; passed=$((passed + 1))
  else
    echo "FAIL $name (exit $rc)"; cat /tmp/golden.$$.diff; failed=$((failed + 1))
  fi
done <pcaps/manifest.txt
rm -f /tmp/golden.$$.diff
echo "golden: $passed passed, $failed failed"
[[ $failed -eq 0 && $passed -gt 0 ]]
