#!/usr/bin/env bash
# Command-line contract of `migware replay`: exit codes and one-line errors.
set -uo pipefail
build=${1:?usage: cli.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$build/bin/migware
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

# expect NAME EXIT STDERR_REGEX -- ARGS...
expect() {
  local name=$1 want_rc=$2 want_err=$3; shift 4
  "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$? lines
  lines=$(wc -l <"$tmp/err")
  if [[ $rc -eq $want_rc ]] && { [[ -z $want_err && $lines -eq 0 ]] ||
       { [[ -n $want_err && $lines -eq 1 ]] && grep -Eq "$want_err" "$tmp/err"; }; }; then
    echo "ok   $name"; passed=$((passed + 1))
  else
    echo "FAIL $name: exit $rc (want $want_rc), stderr:"; cat "$tmp/err"; failed=$((failed + 1))
  fi
}

printf 'not a capture\n' >"$tmp/text.pcap"
: >"$tmp/empty.pcap"
head -c 100 "$root/pcaps/push.pcap" >"$tmp/cut.pcap"  # a record cut mid-way
head -c 24 "$root/pcaps/push.pcap" >"$tmp/header-only.pcap"  # a file header, no records

expect missing-file 1 '^migware: .*/nope.pcap: cannot read capture' -- replay "$tmp/nope.pcap"
expect not-a-capture 1 '^migware: .*text.pcap: cannot read capture' -- replay "$tmp/text.pcap"
expect empty-file 1 '^migware: .*empty.pcap: cannot read capture' -- replay "$tmp/empty.pcap"
expect cut-record 1 '^migware: .*cut.pcap: read error after 1 packets' -- replay "$tmp/cut.pcap"
expect unsupported-link 1 'unsupported link type 195 \(IEEE802_15_4\); supported: EN10MB' -- \
  replay "$root/../shared/corpus/tcpdump-tests/802_15_4_beacon.pcap"
expect bad-server 2 "^migware: replay: --server '1.2.3:80' is not IP:PORT" -- \
  replay "$root/pcaps/push.pcap" --server 1.2.3:80
expect bad-port 2 "is not IP:PORT" -- replay "$root/pcaps/push.pcap" --server 198.18.0.1:70000
expect no-file 2 '^migware: replay: missing capture FILE' -- replay
expect unknown-command 2 "^migware: unknown command 'frobnicate'" -- frobnicate
expect unknown-option 2 '^migware: replay: unrecognised option' -- replay "$root/pcaps/push.pcap" --frob
expect text-table 0 '' -- replay "$root/pcaps/push.pcap"
grep -q '^CLIENT .*SERVER .*STATE' "$tmp/out" && grep -q '^malformed 0' "$tmp/out" ||
  { echo "FAIL text-table content"; cat "$tmp/out"; failed=$((failed + 1)); }
expect help 0 '' -- replay --help
grep -q -- '--server' "$tmp/out" || { echo "FAIL help lists --server"; failed=$((failed + 1)); }


# The engine replay (--failover-at): its own usage errors, the daemon's options parsed by the
# daemon's parser, and its outputs.
E=(--primary 198.18.0.1 --backup 198.18.0.2 --port 7000)
expect engine-bad-at 2 "^migware: replay: --failover-at '1,5' is not seconds" -- \
  replay "$root/pcaps/push.pcap" --failover-at 1,5 "${E[@]}"
expect engine-file-first 2 '^migware: replay --failover-at: the capture FILE comes first' -- \
  replay --failover-at 1 "$root/pcaps/push.pcap" "${E[@]}"
expect engine-daemon-option 2 '^migware: replay: --backup is required' -- \
  replay "$root/pcaps/push.pcap" --failover-at 1 --primary 198.18.0.1 --port 7000
expect engine-daemon-check 2 '^migware: replay: --primary and --backup are the same address' -- \
  replay "$root/pcaps/push.pcap" --failover-at 1 --primary 198.18.0.1 --backup 198.18.0.1 --port 7000
expect engine-bad-mac 2 "^migware: replay: --backup-mac '02:00' is not" -- \
  replay "$root/pcaps/push.pcap" --failover-at 1 --backup-mac 02:00 "${E[@]}"
expect engine-unknown-option 2 '^migware: replay: unrecognised option' -- \
  replay "$root/pcaps/push.pcap" --failover-at 1 --frob "${E[@]}"
expect engine-missing-file 1 '^migware: .*/nope.pcap: cannot read capture' -- \
  replay "$tmp/nope.pcap" --failover-at 1 "${E[@]}"
expect engine-missing-backup-capture 1 '^migware: .*/nope2.pcap: cannot read capture' -- \
  replay "$root/pcaps/push.pcap" --failover-at 1 --backup-capture "$tmp/nope2.pcap" "${E[@]}"
expect engine-cut-record 1 '^migware: .*cut.pcap: read error after 1 packets: ' -- \
  replay "$tmp/cut.pcap" --failover-at 0 "${E[@]}"
expect engine-no-frames 1 '^migware: .*header-only.pcap: the capture holds no frames' -- \
  replay "$tmp/header-only.pcap" --failover-at 0 "${E[@]}"
expect engine-run 0 '' -- replay "$root/pcaps/push.pcap" --failover-at=0.5 "${E[@]}" \
  --recovery.syn-tries 2 --out-client "$tmp/c.pcap" --out-backup "$tmp/b.pcap"
# two twin SYN tries each for 3 connections (a daemon option), written as pcap
grep -qx 'counter syn_sent=6' "$tmp/out" && grep -q '^transition t=+0.500000000 from=normal to=recovery' "$tmp/out" &&
  [[ $(head -c 4 "$tmp/b.pcap" | od -An -tx1 | tr -d ' ') == 4d3cb2a1 ]] && [[ -s $tmp/c.pcap ]] ||
  { echo "FAIL engine-run content"; cat "$tmp/out"; failed=$((failed + 1)); }
expect engine-help 0 '' -- replay --failover-at 1 --help
grep -q -- '--backup-capture' "$tmp/out" || { echo "FAIL engine help lists --backup-capture"; failed=$((failed + 1)); }
# The daemon's membership keys (issue 12): bad values are one line and exit 2.
D=(--interface lo --primary 198.18.0.1 --backup 198.18.0.2 --port 7000 --check-config)
expect membership-bad 2 "^migware: membership must be 'standalone' or 'corosync', not 'frob'\$" -- "${D[@]}" --membership frob
expect membership-priority-negative 2 '^migware: membership.priority must be between 0 and 1000000$' -- "${D[@]}" --membership.priority -1
expect membership-priority-text 2 "^migware: .*membership.priority" -- "${D[@]}" --membership.priority first
expect membership-group-long 2 '^migware: membership.group must be 1 to 127 characters$' -- "${D[@]}" --membership.group "$(printf 'g%.0s' $(seq 130))"
expect membership-lease 2 '^migware: membership.lease-ms must be between 200 \(four heartbeats of 50 ms\) and 10000$' -- "${D[@]}" --membership.lease-ms 10
expect membership-lease-near-heartbeat 2 '^migware: membership.lease-ms must be between 200 ' -- "${D[@]}" --membership.lease-ms 150
expect membership-corosync-ok 0 '' -- "${D[@]}" --membership corosync --membership.priority 2 --membership.group web
grep -q 'membership=corosync membership_priority=2 membership_group=web' "$tmp/out" && { echo "ok   membership-summary"; passed=$((passed + 1)); } ||
  { echo "FAIL membership-summary"; cat "$tmp/out"; failed=$((failed + 1)); }
# Replay modes (issue 13): bad values are one line and exit 2; a mode that does not fit the
# buffer caps is a warning (exit 0); the summary says each port's mode.
expect capture-buffer-bad 2 '^migware: capture.buffer-mb must be between 1 and 4096$' -- "${D[@]}" --capture.buffer-mb 0
expect capture-batch-bad 2 '^migware: capture.batch must be between 1 and 65536$' -- "${D[@]}" --capture.batch 0
expect replay-mode-bad 2 "^migware: recovery.mode must be 'push', 'aligned' or 'full', not 'fast'\$" -- "${D[@]}" --recovery.mode fast
expect replay-port-mode-bad 2 "^migware: recovery.port-mode '7000:full' is not PORT=push\|aligned\|full\$" -- "${D[@]}" --recovery.port-mode 7000:full
expect replay-port-mode-port 2 "^migware: recovery.port-mode '80=full' names a port that is not a --port\$" -- "${D[@]}" --recovery.port-mode 80=full
expect replay-stall-bad 2 '^migware: recovery.replay-stall-ms must be between 10 and 600000$' -- "${D[@]}" --recovery.replay-stall-ms 0
expect replay-aligned-ok 0 '' -- "${D[@]}" --recovery.mode aligned --port 6379 --recovery.port-mode 6379=push
grep -q 'replay="7000=aligned,6379=push"' "$tmp/out" && { echo "ok   replay-summary"; passed=$((passed + 1)); } ||
  { echo "FAIL replay-summary"; cat "$tmp/out"; failed=$((failed + 1)); }
expect replay-full-warns 0 '^migware: warning: port 7000: full replay: tracker.max-connections x tracker.buffer-cap \(65536 x 1048576\) exceeds tracker.global-buffer-cap' -- "${D[@]}" --recovery.mode full
expect replay-aligned-small-cap 0 '^migware: warning: port 7000: aligned replay holds the current request, but tracker.buffer-cap is 4096 bytes' -- "${D[@]}" --recovery.mode aligned --tracker.buffer-cap 4096
expect replay-unanswered-deprecated 0 '^migware: warning: recovery.replay-unanswered is deprecated: it now means recovery.mode aligned$' -- "${D[@]}" --recovery.replay-unanswered true
grep -q 'replay="7000=aligned"' "$tmp/out" && { echo "ok   replay-unanswered-is-aligned"; passed=$((passed + 1)); } ||
  { echo "FAIL replay-unanswered-is-aligned"; cat "$tmp/out"; failed=$((failed + 1)); }
expect membership-default 0 '' -- "${D[@]}"
grep -q 'membership=standalone' "$tmp/out" && { echo "ok   membership-default-summary"; passed=$((passed + 1)); } ||
  { echo "FAIL membership-default-summary"; cat "$tmp/out"; failed=$((failed + 1)); }
printf 'membership = corosync\nmembership.priority = 4\n' >"$tmp/m.conf"
expect membership-config-file 0 '' -- "${D[@]}" --config "$tmp/m.conf"
grep -q 'membership=corosync membership_priority=4' "$tmp/out" && { echo "ok   membership-config-file-keys"; passed=$((passed + 1)); } ||
  { echo "FAIL membership-config-file-keys"; cat "$tmp/out"; failed=$((failed + 1)); }

echo "cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
