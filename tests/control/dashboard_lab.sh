#!/usr/bin/env bash
# The dashboard in a real terminal during a real failover (issue 6): the part-2
# lab failover runs (tests/lab/failover.sh, every byte still verified) while
# `migctl top` runs inside tmux against the daemon's control socket. Snapshots
# (tmux capture-pane) must show NORMAL, then RECOVERY with a progress bar part
# way, then PROXY with the proxied count, and the transitions in order in the
# event tail. Recovery is slowed to ~2 s with --recovery.max-syn-rate so a
# 4 Hz dashboard can be caught in the middle of it.
#
#   tests/control/dashboard_lab.sh BUILD_DIR
#
# scripts/demo.sh reuses it with: DASH_MODE=reqresp DASH_CONNS=500 DASH_SYN_RATE=0 (real
# recovery speed: too fast for a snapshot, so DASH_REQUIRE_RECOVERY=0).
set -uo pipefail
build=${1:?usage: dashboard_lab.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
command -v tmux >/dev/null || { echo "dashboard_lab: tmux missing (Debian package tmux)"; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "dashboard_lab: needs root (network namespaces)"; exit 1; }
conns=${DASH_CONNS:-600}
mode=${DASH_MODE:-push}
rate=${DASH_SYN_RATE:-300}  # twin SYNs per second: Recovery takes about conns/rate = 2 s
require_recovery=${DASH_REQUIRE_RECOVERY:-1}
rate_args=()
[[ $rate != 0 ]] && rate_args=(--migware-arg --recovery.max-syn-rate --migware-arg "$rate")
if [[ -n ${DASH_WORK:-} ]]; then
  mkdir -p "$DASH_WORK" && work=$DASH_WORK
else
  work=$(mktemp -d /dev/shm/mwdash.XXXXXX)
fi
session=mwdash$$
snaps=$work/snaps
mkdir -p "$snaps"
failover_pid=""
cleanup() {
  tmux kill-session -t "$session" 2>/dev/null
  [[ -n $failover_pid ]] && kill "$failover_pid" 2>/dev/null && wait "$failover_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

timeout 120 "$root/tests/lab/failover.sh" --mode "$mode" --connections "$conns" --duration 8 \
  --pull-at 3 --work "$work/run" --migware "$build/bin/migware" "${rate_args[@]}" \
  >"$work/failover.out" 2>&1 &
failover_pid=$!

sock=$work/run/control.sock
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.1; done
[[ -S $sock ]] || { echo "FAIL: no control socket at $sock"; cat "$work/failover.out"; exit 1; }
tmux new-session -d -s "$session" -x 80 -y 24 "TERM=xterm-256color $build/bin/migctl --socket $sock top"
# Snapshot the pane every 100 ms until the failover run ends (bounded: 1200 snapshots).
n=0
while kill -0 "$failover_pid" 2>/dev/null && (( n < 1200 )); do
  tmux capture-pane -p -t "$session" >"$snaps/$(printf %05d $n).txt" 2>/dev/null
  n=$((n + 1))
  sleep 0.1
done
wait "$failover_pid"; failover_rc=$?
failover_pid=""

passed=0 failed=0
check() {  # check NAME CONDITION-EXIT-CODE DETAIL
  if [[ $2 -eq 0 ]]; then echo "ok   $1"; passed=$((passed + 1)); else echo "FAIL $1: $3"; failed=$((failed + 1)); fi
}
if [[ ${DASH_SHOW_RUN:-0} == 1 ]]; then cat "$work/failover.out"; else tail -n 3 "$work/failover.out"; fi
check "the failover itself passes (every connection, every byte)" "$failover_rc" "failover.sh exit $failover_rc"

first() { grep -l -E "$1" "$snaps"/*.txt 2>/dev/null | head -n1; }
normal=$(first 'NORMAL')
recovering=""
for f in $(grep -l 'RECOVERY' "$snaps"/*.txt 2>/dev/null); do
  # a progress line part way: "Recovery ... N/600" with 0 < N < 600
  if grep -E "^ *Recovery .*[^0-9]([0-9]+)/$conns" "$f" | grep -Eqv "[^0-9]0/$conns|[^0-9]$conns/$conns"; then
    recovering=$f; break
  fi
done
proxy=""
for f in $(grep -l 'PROXY' "$snaps"/*.txt 2>/dev/null); do
  grep -q "proxied $conns" "$f" && { proxy=$f; break; }
done
check "a snapshot shows NORMAL" "$([[ -n $normal ]]; echo $?)" "none of $n snapshots"
if [[ $require_recovery == 1 ]]; then
  check "a snapshot shows RECOVERY with progress part way (k/$conns)" "$([[ -n $recovering ]]; echo $?)" \
    "none of $n snapshots; last RECOVERY one: $(grep -l RECOVERY "$snaps"/*.txt | tail -n1)"
fi
check "a snapshot shows PROXY with 'proxied $conns'" "$([[ -n $proxy ]]; echo $?)" "none of $n snapshots"
order=1
if [[ $require_recovery == 1 ]]; then
  [[ -n $normal && -n $recovering && -n $proxy && $normal < $recovering && $recovering < $proxy ]] && order=0
else
  [[ -n $normal && -n $proxy && $normal < $proxy ]] && order=0
fi
check "snapshots in order NORMAL < RECOVERY < PROXY" "$order" "$normal $recovering $proxy"
events=1
if [[ -n $proxy ]]; then
  tail_lines=$(sed -n '/Events/,$p' "$proxy")  # the event tail, not the banner
  a=$(grep -n 'transition normal->recovery' <<<"$tail_lines" | head -n1 | cut -d: -f1)
  b=$(grep -n 'transition recovery->proxy' <<<"$tail_lines" | head -n1 | cut -d: -f1)
  [[ -n $a && -n $b && $a -lt $b ]] && events=0
fi
check "the event tail lists normal->recovery before recovery->proxy" "$events" "$(cat "${proxy:-/dev/null}")"
if [[ $failed -gt 0 ]]; then
  for f in "$normal" "$recovering" "$proxy"; do [[ -n $f ]] && { echo "--- $f"; cat "$f"; }; done
  echo "--- last snapshot"; cat "$(ls "$snaps"/*.txt | tail -n1)"
else
  echo "--- migctl top just before the pull"; cat "$(grep -l 'NORMAL' "$snaps"/*.txt | tail -n1)"
  [[ -n $recovering ]] && { echo "--- migctl top during Recovery"; cat "$recovering"; }
  echo "--- migctl top after the failover"; cat "$proxy"
fi
echo "dashboard_lab: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
