#!/usr/bin/env bash
# migware --membership corosync where no corosync runs: one line naming the cause, exit 1,
# and nothing left behind (issue 12: bad config / missing service gets a clear error).
#   tests/lab/membership_no_corosync.sh BUILD_DIR
set -uo pipefail
bin=${1:?BUILD_DIR}/bin/migware
[[ $(id -u) -eq 0 ]] || { echo "membership_no_corosync: needs root (a network namespace); not skipping"; exit 1; }
[[ -x $bin ]] || { echo "membership_no_corosync: no $bin"; exit 1; }
ns=mwq$$-solo
trap 'ip netns del "$ns" 2>/dev/null' EXIT
ip netns add "$ns" || exit 1
ip -n "$ns" link add eth0 type veth peer name eth1 && ip -n "$ns" link set eth0 up && ip -n "$ns" link set eth1 up &&
    ip -n "$ns" addr add 198.18.0.2/24 dev eth0 || exit 1
err=$(mktemp); trap 'ip netns del "$ns" 2>/dev/null; rm -f "$err"' EXIT
timeout 20 ip netns exec "$ns" "$bin" --interface eth0 --primary 198.18.0.1 --backup 198.18.0.2 --port 7000 \
    --membership corosync --control.socket "" --state-file "" >/dev/null 2>"$err"
rc=$?
lines=$(wc -l <"$err"); [[ -s $err && $(tail -c1 "$err" | od -An -c | tr -d ' ') != '\n' ]] && lines=$((lines + 1))
if [[ $rc -eq 1 && $lines -eq 1 ]] && grep -q '^migware: membership corosync: cpg_initialize: CS_ERR_LIBRARY (corosync not running in this network namespace?)' "$err"; then
    echo "membership_no_corosync: ok ($(cat "$err"))"; exit 0
fi
echo "membership_no_corosync: FAILED: exit $rc, stderr:"; cat "$err"; exit 1
