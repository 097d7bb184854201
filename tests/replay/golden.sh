#!/usr/bin/env bash
# Golden replay tests: each line of pcaps/manifest.txt is
#   name  input.pcap  expected.jsonl  [replay options...]
# and `migware replay input --json options` must print expected.jsonl exactly.
# Engine cases (issue 11) are the lines whose options hold --failover-at:
#   name  input.pcap  expected.engine.txt  --failover-at T [engine replay and daemon options...]
# and `migware replay input options --list-frames --out-client C --out-backup B` must print
# expected.engine.txt exactly, followed by the sha256 of both output pcaps (two lines
# `sha256 out-client H` / `sha256 out-backup H`): transitions, every frame sent (decoded),
# connections, counters and the exact output bytes. A mismatch prints the unified diff.
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
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
while read -r name input expected opts; do
  [[ -z $name || $name == \#* ]] && continue
  if [[ ! -f $input ]]; then
    echo "FAIL $name: input $input missing"; failed=$((failed + 1)); continue
  fi
  if [[ " $opts " == *" --failover-at "* ]]; then
    # shellcheck disable=SC2086  # options are words on purpose
    actual=$("$bin" replay "$input" $opts --list-frames --out-client "$tmp/client.pcap" \
               --out-backup "$tmp/backup.pcap" 2>&1)
    rc=$?
    for side in client backup; do
      if [[ -f $tmp/$side.pcap ]]; then
        actual+=$'\n'"sha256 out-$side $(sha256sum <"$tmp/$side.pcap" | cut -d' ' -f1)"
      else
        actual+=$'\n'"sha256 out-$side (not written)"
      fi
    done
    rm -f "$tmp/client.pcap" "$tmp/backup.pcap"
  else
    # shellcheck disable=SC2086  # options are words on purpose
    actual=$("$bin" replay "$input" --json $opts 2>&1)
    rc=$?
  fi
  if [[ $update == "$name" ]]; then
    if [[ $rc -ne 0 ]]; then
      echo "FAIL $name: not updated, replay exited $rc:"; printf '%s\n' "$actual" | tail -n 5
      failed=$((failed + 1)); continue
    fi
    printf '%s\n' "$actual" >"$expected"; echo "updated $expected"; continue
  fi
  if [[ $rc -eq 0 ]] && diff -u "$expected" <(printf '%s\n' "$actual") >"$tmp/diff"; then
    echo "ok   $name"; passed=$((passed + 1))
  else
    echo "FAIL $name (exit $rc)"; head -n 200 "$tmp/diff"; failed=$((failed + 1))
  fi
done <pcaps/manifest.txt
echo "golden: $passed passed, $failed failed"
[[ $failed -eq 0 && $passed -gt 0 ]]
