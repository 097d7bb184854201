#!/usr/bin/env bash
# A backup whose replies differ (issue 13, DESIGN.md 6b): the same downloads as
# replay_http.sh, but the backup's nginx serves other bytes (same sizes, same mtimes) at the
# same paths.  migware (--recovery.mode aligned) must reset each connection whose reply was
# in flight, count it in replay_diverged and never splice the backup's bytes after the
# primary's.  Reset clients reconnect and carry on.  The checks: replay_http.sh --diverge.
#
#   tests/lab/replay_diverge.sh BUILD_DIR [replay_http.sh options]
set -uo pipefail
build=${1:?usage: replay_diverge.sh BUILD_DIR [options]}
shift
exec "$(dirname "$0")/replay_http.sh" "$build" --diverge "$@"
