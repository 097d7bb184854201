#!/usr/bin/env bash
# Stands in for the migware binary in tests/lab/failover.sh (--migware) to
# test a restart while the primary is healthy (issue 5): runs migware, stops it
# with SIGTERM after MW_RESTART_AFTER seconds, optionally truncates its
# snapshot (MW_TRUNCATE_SNAPSHOT=1: a crash-damaged file), starts it again
# with the same arguments, and runs it until it is told to stop itself.
set -u
real=${MW_REAL_BIN:?MW_REAL_BIN must name the migware binary}
after=${MW_RESTART_AFTER:-1.5}
state=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [[ ${args[i]} == --state-file ]] && state=${args[i + 1]:-}
done
pid=""
stop() { [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null && wait "$pid"; exit $?; }
trap stop TERM INT
"$real" "$@" &
pid=$!
sleep "$after" &
wait $!
kill -TERM "$pid"
wait "$pid"
echo "restart_wrapper: first migware exited with $?; restarting" >&2
if [[ ${MW_TRUNCATE_SNAPSHOT:-0} == 1 && -n $state && -f $state ]]; then
  size=$(stat -c %s "$state")
  truncate -s $((size / 2)) "$state"
  echo "restart_wrapper: truncated $state from $size to $((size / 2)) bytes" >&2
fi
"$real" "$@" &
pid=$!
wait "$pid"
