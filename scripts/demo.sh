#!/usr/bin/env bash
# The main job, end to end on this one machine (needs root: it builds a lab of
# network namespaces):
#   1. set up (Debian packages, build);
#   2. build the hub lab: client, primary and backup namespaces on a bridge
#      that floods like a hub (offloads off, addresses from 198.18.0.0/15);
#   3. start the same request/response service on the primary and the backup;
#   4. start migware on the backup, watching the hub;
#   5. open many client connections, each sending numbered requests and
#      checking every reply;
#   6. pull the primary's cable at a random moment;
#   7. the connections carry on with the backup; at the end every byte each
#      client sent is checked (primary's part + backup's part, no gap, no
#      duplicate) and the detection and recovery times are printed.
#
#   scripts/demo.sh [CONNECTIONS]     default 500
set -euo pipefail
cd "$(dirname "$0")/.."
connections=${1:-500}
scripts/setup.sh
echo
echo "== failover demo: $connections client connections, request/response, cable pulled mid-stream"
echo "   (migware's own log, including each state transition, is printed at the end)"
echo
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
tests/lab/failover.sh --mode reqresp --connections "$connections" --duration 6 --keep 2>&1 | tee "$out" || status=$?
work=$(sed -n 's/^failover: artefacts will be kept in //p' "$out" | head -n1)
if [[ -n $work && -f $work/migware.log ]]; then
  echo
  echo "== migware's events during the run (stderr of the daemon, logfmt)"
  grep -E 'event=(start|monitor|transition|recovery_start|unrecoverable|primary_answering|shutdown)' \
    "$work/migware.log" | cut -c1-400 | head -n 40
  rm -rf "$work"
fi
echo
if [[ $status -eq 0 ]]; then
  echo "demo: every connection survived the pulled cable (see 'verify:' lines above for bytes and times)"
else
  echo "demo: FAILED (exit $status), see above"
fi
exit $status
