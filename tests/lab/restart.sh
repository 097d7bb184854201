#!/usr/bin/env bash
# Restart without loss (issue 5): 200 live connections, migware restarted on
# the backup while the primary is healthy, then the primary's cable pulled.
# Every connection must survive, byte for byte (tests/lab/failover.sh checks).
#   tests/lab/restart.sh BUILD_DIR            the restarted migware loads its snapshot
#   tests/lab/restart.sh BUILD_DIR --truncate the snapshot is cut in half first: migware
#                                             refuses it with one clear line and picks the
#                                             connections up mid-stream
set -uo pipefail
build=${1:?usage: restart.sh BUILD_DIR [--truncate]}
truncate=0
[[ ${2:-} == --truncate ]] && truncate=1
here=$(cd "$(dirname "$0")" && pwd)
conns=200
work=$(mktemp -d /dev/shm/mwrst.XXXXXX)
trap 'rm -rf "$work"' EXIT
MW_REAL_BIN=$build/bin/migware MW_RESTART_AFTER=1.5 MW_TRUNCATE_SNAPSHOT=$truncate \
  "$here/failover.sh" --mode push --connections "$conns" --duration 7 --pull-at 4 \
  --migware "$here/restart_wrapper.sh" --work "$work/run" >"$work/out" 2>&1
rc=$?
cat "$work/out"
log=$work/run/migware.log
passed=0 failed=0
check() { if [[ $2 -eq 0 ]]; then echo "ok   $1"; passed=$((passed + 1)); else echo "FAIL $1"; failed=$((failed + 1)); fi; }
check "every connection survived (failover.sh exit $rc)" "$rc"
starts=$(grep -c 'event=start ' "$log")
check "migware started twice (saw $starts starts)" "$([[ $starts -eq 2 ]]; echo $?)"
if [[ $truncate -eq 1 ]]; then
  line=$(grep 'event=snapshot_refused' "$log" | head -n1)
  echo "   $line"
  check "the truncated snapshot was refused with one clear line" "$([[ -n $line ]]; echo $?)"
  check "... and the connections were picked up mid-stream (inferred=$conns)" \
    "$(grep -q "event=recovery_start .*inferred=$conns" "$log"; echo $?)"
else
  line=$(grep 'event=snapshot .*result=loaded' "$log" | head -n1)
  echo "   $line"
  check "the restarted migware loaded $conns connections from its snapshot" \
    "$(grep -q "result=loaded connections=$conns" <<<"$line"; echo $?)"
  check "... and recovered them with their handshake facts (restored=$conns)" \
    "$(grep -q "event=recovery_start .*restored=$conns" "$log"; echo $?)"
fi
grep -E 'event=(snapshot|recovery_start|transition)' "$log" | cut -c1-300
echo "restart: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
