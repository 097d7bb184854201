#!/usr/bin/env bash
# migctl's one-shot commands against the fake daemon (tests/control/fake_daemon.py):
# human output, --json validity (python3 -m json.tool), exit codes and the
# one-line errors (missing socket, stale socket, permission refusal, usage).
set -uo pipefail
build=${1:?usage: migctl_cli.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
bin=$build/bin/migctl
fake=$here/fake_daemon.py
tmp=$(mktemp -d)
chmod 755 "$tmp"  # so the permission test reaches the socket's own mode
sock=$tmp/control.sock
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
passed=0 failed=0
pass() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failed=$((failed + 1)); }

python3 "$fake" "$sock" >"$tmp/fake.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [[ -S $sock ]] && break; sleep 0.1; done
[[ -S $sock ]] || { echo "FAIL fake daemon did not start"; cat "$tmp/fake.log"; exit 1; }
drive() { python3 "$fake" --send "$sock" "$1" >/dev/null || echo "drive failed: $1"; }

# expect NAME EXIT STDERR_REGEX STDOUT_REGEX -- ARGS...   (empty regex: stderr must be empty)
expect() {
  local name=$1 want_rc=$2 want_err=$3 want_out=$4; shift 5
  "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$? lines
  lines=$(wc -l <"$tmp/err")
  if [[ $rc -eq $want_rc ]] &&
     { [[ -z $want_err && $lines -eq 0 ]] || { [[ -n $want_err && $lines -eq 1 ]] && grep -Eq "$want_err" "$tmp/err"; }; } &&
     { [[ -z $want_out ]] || grep -Eq "$want_out" "$tmp/out"; }; then
    pass "$name"
  else
    fail "$name: exit $rc (want $want_rc)"; echo "--- stderr:"; cat "$tmp/err"; echo "--- stdout:"; head -20 "$tmp/out"
  fi
}
# json_lines NAME N: $tmp/out is N lines, each one valid JSON object
json_lines() {
  local n
  n=$(wc -l <"$tmp/out")
  if [[ $n -eq $2 ]] && python3 -m json.tool --json-lines "$tmp/out" >/dev/null 2>&1 &&
     python3 -c 'import json,sys; assert all(isinstance(json.loads(l), dict) for l in open(sys.argv[1]))' "$tmp/out"; then
    pass "$1"
  else
    fail "$1: $n lines (want $2), or not JSON objects"; head -3 "$tmp/out"
  fi
}

S=(--socket "$sock")
expect status 0 '' '^state +NORMAL for ' -- "${S[@]}" status
grep -Eq '^primary +up, ' "$tmp/out" && pass status-primary || fail status-primary
expect status-json 0 '' '"state":"normal"' -- "${S[@]}" status --json
json_lines status-json-valid 1
MIGWARE_CONTROL_SOCKET=$sock expect status-env-socket 0 '' 'NORMAL' -- status
expect socket-option-after-command 0 '' 'NORMAL' -- status --socket "$sock"

expect conns 0 '' '^2000 of 2000 connections$' -- "${S[@]}" conns
head -1 "$tmp/out" | grep -Eq '^CLIENT +SERVER +PHASE +STATE' && pass conns-header || fail conns-header
[[ $(wc -l <"$tmp/out") -eq 2002 ]] && pass conns-all-pages || fail conns-all-pages
expect conns-json 0 '' '' -- "${S[@]}" conns --json
json_lines conns-json-one-per-line 2000

drive '{"v":1,"cmd":"_set","state":"recovery","resolved":123,"failed":2}'
expect conns-state-proxied 0 '' '^121 of 121 connections$' -- "${S[@]}" conns --state proxied
expect conns-state-lost 0 '' 'no_syn_ack' -- "${S[@]}" conns --state lost
expect conns-state-json 0 '' '"phase":"recovering"' -- "${S[@]}" conns --state recovering --json
json_lines conns-state-json-lines 1877
expect status-recovery 0 '' '^recovery +123/2000 resolved, 121 recovered, 2 failed' -- "${S[@]}" status
grep -Eq '^last change +normal->recovery \(primary_down\): 4 consecutive' "$tmp/out" &&
  pass status-last-change || fail status-last-change

expect events 0 '' 'transition normal->recovery cause=primary_down' -- "${S[@]}" events
head -1 "$tmp/out" | grep -q '#1 start' && pass events-oldest-first || fail events-oldest-first
expect events-last 0 '' 'recovery_start' -- "${S[@]}" events --last 1
[[ $(wc -l <"$tmp/out") -eq 1 ]] && pass events-last-count || fail events-last-count
expect events-json 0 '' '"event":"transition"' -- "${S[@]}" events --json --last 3
json_lines events-json-lines 3

# --follow: the backlog, then new events as they come, until the daemon closes.
"$bin" "${S[@]}" events --follow --last 1 >"$tmp/follow" 2>"$tmp/follow.err" &
fpid=$!
pids+=($fpid)
sleep 0.5
drive '{"v":1,"cmd":"_set","state":"proxy"}'
for _ in $(seq 30); do grep -q 'recovery->proxy' "$tmp/follow" && break; sleep 0.1; done
if head -1 "$tmp/follow" | grep -q recovery_start && grep -q 'transition recovery->proxy cause=twins_resolved' "$tmp/follow"; then
  pass events-follow
else
  fail events-follow; cat "$tmp/follow" "$tmp/follow.err"
fi
kill "$fpid" 2>/dev/null; wait "$fpid" 2>/dev/null
"$bin" "${S[@]}" events --follow --json --last 0 >"$tmp/out" 2>"$tmp/follow.err" &
fpid=$!
pids+=($fpid)
sleep 0.5
drive '{"v":1,"cmd":"_event","event":"error","fields":{"what":"test \"quoted\""}}'
sleep 0.5
kill "$fpid" 2>/dev/null; wait "$fpid" 2>/dev/null
json_lines events-follow-json 1

expect metrics 0 '' '^# TYPE migware_frames_total counter$' -- "${S[@]}" metrics
# promtool (Debian prometheus, scripts/setup.sh) is required: a missing one is a failure, not a skip.
# The fake daemon is in Proxy here; tests/control/metrics_promtool.sh checks the real handler's
# text in Normal, Recovery and Proxy.
if ! command -v promtool >/dev/null; then
  fail "metrics-promtool: promtool not installed (apt-get install prometheus; scripts/setup.sh)"
else
  if promtool check metrics <"$tmp/out" >"$tmp/promtool" 2>&1; then
    pass metrics-promtool
  else
    fail metrics-promtool; cat "$tmp/promtool"
  fi
fi
expect metrics-json 0 '' '^\{"text":"# HELP' -- "${S[@]}" metrics --json
json_lines metrics-json-valid 1

# Errors: one line on stderr, non-zero exit.
expect missing-socket 1 "^migctl: cannot connect to $tmp/nope.sock: No such file or directory \(ENOENT\)" '' \
  -- --socket "$tmp/nope.sock" status
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$tmp/stale.sock"
expect stale-socket 1 'cannot connect to .*stale.sock: Connection refused \(ECONNREFUSED\)' '' \
  -- --socket "$tmp/stale.sock" events
expect top-needs-terminal 1 '^migctl: top needs a terminal' '' -- "${S[@]}" top
expect unknown-command 2 "^migctl: unknown command 'frob'" '' -- "${S[@]}" frob
expect no-command 2 '^migctl: missing COMMAND' '' -- "${S[@]}"
expect bad-state 2 "^migctl: --state 'up' is not one of tracked" '' -- "${S[@]}" conns --state up
expect bad-last 2 "^migctl: --last 'x' is not a count" '' -- "${S[@]}" events --last x
expect follow-on-status 2 '^migctl: --follow only applies to events' '' -- "${S[@]}" status --follow
expect socket-without-path 2 '^migctl: --socket needs a value' '' -- status --socket
expect help 0 '' '^usage: migctl' -- --help

# Permission refusal: an unprivileged user outside the socket's group.
if [[ $(id -u) -eq 0 ]] && command -v setpriv >/dev/null; then
  setpriv --reuid=nobody --regid=nogroup --clear-groups "$bin" "${S[@]}" status >"$tmp/out" 2>"$tmp/err"
  rc=$?
  if [[ $rc -eq 1 && $(wc -l <"$tmp/err") -eq 1 ]] &&
     grep -Eq "Permission denied \(EACCES\); your user must be in the control group '[^']+'" "$tmp/err"; then
    pass permission-denied
  else
    fail "permission-denied: exit $rc"; cat "$tmp/err"
  fi
else
  echo "skip permission-denied (needs root and setpriv)"
fi

echo "migctl_cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
