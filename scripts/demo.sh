#!/usr/bin/env bash
# The main job, end to end on this one machine (needs root: it builds a lab of
# network namespaces):
#   1. set up (Debian packages, build);
#   2. build the hub lab: client, primary and backup namespaces on a bridge
#      that floods like a hub (offloads off, addresses from 198.18.0.0/15);
#   3. start the same request/response service on the primary and the backup;
#   4. start migware on the backup, watching the hub, and `migctl top` (the
#      operator's dashboard) in a terminal (tmux) beside it;
#   5. open many client connections, each sending numbered requests and
#      checking every reply;
#   6. pull the primary's cable at a random moment;
#   7. the connections carry on with the backup. At the end every byte each
#      client sent is checked (primary's part + backup's part, no gap, no
#      duplicate), the detection and recovery times are printed, and the
#      dashboard is shown as it looked before and after the failover.
#
#   scripts/demo.sh [CONNECTIONS]     default 500
set -euo pipefail
cd "$(dirname "$0")/.."
connections=${1:-500}
scripts/setup.sh
echo
echo "== failover demo: $connections client connections, request/response, cable pulled mid-stream"
work=/dev/shm/migware-demo-$$
echo "   To watch it live from another terminal while it runs (about 10 s):"
echo "     $(pwd)/build/bin/migctl --socket $work/run/control.sock top"
echo
status=0
DASH_WORK=$work DASH_MODE=reqresp DASH_CONNS=$connections DASH_SYN_RATE=0 DASH_REQUIRE_RECOVERY=0 DASH_SHOW_RUN=1 \
  tests/control/dashboard_lab.sh build || status=$?
echo
if [[ $status -eq 0 ]]; then
  echo "demo: every connection survived the pulled cable (see the 'verify:' lines for bytes and times)"
else
  echo "demo: FAILED (exit $status), see above"
fi
exit $status
