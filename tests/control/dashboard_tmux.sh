#!/usr/bin/env bash
# `migctl top` in a real terminal: tmux at 80x24 against the fake daemon,
# driven Normal -> Recovery (with progress) -> Proxy. capture-pane snapshots
# are asserted on: the banner word, the progress numbers, the proxied count,
# the events in order; then resize to 100x30 and back, the connection table
# (c), its filter (/ ... Enter, / ... Esc), the daemon going away and coming
# back, NO_COLOR, the ASCII fallback, and q.
# Snapshots are kept in $MIGWARE_ARTIFACTS (if set) for a failed CI run.
set -uo pipefail
build=${1:?usage: dashboard_tmux.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
bin=$build/bin/migctl
fake=$here/fake_daemon.py
command -v tmux >/dev/null || { echo "FAIL tmux is not installed (scripts/setup.sh installs it)"; exit 1; }
tmp=$(mktemp -d)
sock=$tmp/control.sock
art=${MIGWARE_ARTIFACTS:-$tmp/snapshots}
mkdir -p "$art"
tm() { tmux -L "migctl-test-$$" -f /dev/null "$@"; }  # a private tmux server
fake_pid=
start_fake() {
  python3 "$fake" "$sock" "$@" >>"$tmp/fake.log" 2>&1 &
  fake_pid=$!
  for _ in $(seq 50); do [[ -S $sock ]] && return 0; sleep 0.1; done
  echo "FAIL fake daemon did not start"; cat "$tmp/fake.log"; exit 1
}
stop_fake() { [[ -n $fake_pid ]] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null; fake_pid=; }
cleanup() { tm kill-server 2>/dev/null; stop_fake; [[ -z ${MIGWARE_ARTIFACTS:-} ]] && rm -rf "$tmp"; }
trap cleanup EXIT
passed=0 failed=0 shot=0
pass() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failed=$((failed + 1)); }
drive() { python3 "$fake" --send "$sock" "$1" >/dev/null || echo "drive failed: $1"; }

snap() {  # snap SESSION -> $tmp/screen (and a numbered copy in $art)
  tm capture-pane -p -t "$1" >"$tmp/screen" 2>/dev/null
  shot=$((shot + 1))
  cp "$tmp/screen" "$art/$(printf %02d "$shot")-$2.txt"
}
# wait_for NAME SESSION REGEX [SECONDS]: until the screen matches (grep -E)
wait_for() {
  local name=$1 s=$2 re=$3 secs=${4:-5} i
  for ((i = 0; i < secs * 10; i++)); do
    tm capture-pane -p -t "$s" >"$tmp/screen" 2>/dev/null
    if grep -Eq -- "$re" "$tmp/screen"; then snap "$s" "$name"; pass "$name"; return 0; fi
    sleep 0.1
  done
  snap "$s" "$name"
  fail "$name: screen never matched /$re/"; sed 's/^/    | /' "$tmp/screen"
  return 1
}
line_of() { grep -nE -- "$1" "$tmp/screen" | head -1 | cut -d: -f1; }
check() { if eval "$2"; then pass "$1"; else fail "$1"; sed 's/^/    | /' "$tmp/screen"; fi; }
fits() {  # every line within W columns, exactly H lines
  local w=$1 h=$2
  [[ $(wc -l <"$tmp/screen") -eq $h ]] &&
    python3 -c 'import sys; sys.exit(any(len(l.rstrip("\n")) > int(sys.argv[2]) for l in open(sys.argv[1], encoding="utf-8")))' "$tmp/screen" "$w"
}

start_fake
top="env LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=tmux-256color $bin --socket $sock top; echo \$? >$tmp/rc"
tm new-session -d -s keep "sleep 3600"  # keeps the server up between sessions
tm new-session -d -s top -x 80 -y 24 "$top"

# Normal.
wait_for normal-banner top '^ NORMAL for [0-9.]+s'
check normal-counts 'grep -Eq "^Conns +tracked 2000 +recovering 0 +proxied 0 +lost 0" "$tmp/screen"'
check normal-primary 'grep -Eq "^Primary +up " "$tmp/screen"'
check normal-events 'grep -Eq "#1 start state=normal" "$tmp/screen"'
check normal-drops 'grep -Eq "^Drops +kernel 0 +interface 0 +holes 7 +malformed 4" "$tmp/screen"'
check fits-80x24 'fits 80 24'

# Recovery, with progress.
drive '{"v":1,"cmd":"_set","state":"recovery","resolved":123,"failed":2}'
wait_for recovery-banner top '^ RECOVERY for .*normal->recovery \(primary_down\)'
wait_for recovery-progress top '^Recovery +\[.*\] 123/2000 +recovered 121 +failed 2'
check recovery-counts 'grep -Eq "recovering 1877 +proxied 121 +lost 2" "$tmp/screen"'
check recovery-event 'grep -Eq "transition normal->recovery cause=primary_down" "$tmp/screen"'
drive '{"v":1,"cmd":"_set","resolved":1500}'
wait_for recovery-progress-moves top '^Recovery +\[.*\] 1500/2000 '
check recovery-fits 'fits 80 24'

# Proxy.
drive '{"v":1,"cmd":"_set","state":"proxy"}'
wait_for proxy-banner top '^ PROXY for .*recovery->proxy \(twins_resolved\)'
wait_for proxy-counts top '^Conns .* proxied 1998 +lost 2'
check proxy-latency 'grep -Eq "^Latency +to backup p50 12us p99 81us +to client p50 9us p99 64us" "$tmp/screen"'
check proxy-recovery-done 'grep -Eq "^Recovery +done 2000/2000 +recovered 1998 +failed 2" "$tmp/screen"'
wait_for proxy-rates top '^Packets/s +capture [0-9.]+k +to backup [0-9.]+k +to client [0-9.]+k'
a=$(line_of '#1 start') b=$(line_of 'transition normal->recovery') c=$(line_of 'recovery_start') d=$(line_of 'transition recovery->proxy')
check events-in-order '[[ -n $a && -n $b && -n $c && -n $d && $a -lt $b && $b -lt $c && $c -lt $d ]]'
check events-newest-last '[[ $d -eq $(grep -nE "^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} #" "$tmp/screen" | tail -1 | cut -d: -f1) ]]'
check proxy-fits 'fits 80 24'

# Resize and back.
tm resize-window -t top -x 100 -y 30
wait_for resize-100x30 top '^ PROXY for .{80,}'
check resize-fits-100x30 'fits 100 30'
check resize-replay-line 'grep -Eq "^Recovery +done 2000/2000 .* in 51\.2 ms  replay 1500 \(3 diverged, 3 lost\)$" "$tmp/screen"'
tm resize-window -t top -x 80 -y 24
sleep 0.6
snap top resize-back
check resize-back-banner 'grep -Eq "^ PROXY for " "$tmp/screen"'
check resize-back-fits 'fits 80 24'
check group-row 'grep -Eq "^Group +" "$tmp/screen"'

# The connection table and its filter.
tm send-keys -t top c
wait_for table top '^── Connections 2000 +rows 1-12'
check table-header 'grep -Eq "^CLIENT +SERVER +PHASE +TWIN +TO_BACKUP +TO_CLIENT" "$tmp/screen"'
check table-lost-first 'grep -Eq "^198\.18\.0\.10:40000 .* lost .*lost: no_" "$tmp/screen"'
tm send-keys -t top j j Down
wait_for table-scroll top 'rows 4-15'
check table-scrolled-row 'grep -Eq "^198\.18\.0\.10:40003 +198\.18\.0\.1:7000 +proxied +40003" "$tmp/screen"'
tm send-keys -t top k
wait_for table-scroll-up top 'rows 3-14'
tm send-keys -t top / 4 0 0 0 5
wait_for filter-typing top '^filter connections \(client, server, phase\): /40005$'
tm send-keys -t top Enter
wait_for filter-applied top 'Connections: 1 match "40005"'
check filter-row 'grep -Eq "^198\.18\.0\.10:40005 " "$tmp/screen" && [[ $(grep -cE "^198\.18\.0\.10:" "$tmp/screen") -eq 1 ]]'
tm send-keys -t top / z z z Escape
sleep 0.6
snap top filter-cancelled
check filter-esc-keeps-old 'grep -q "1 match \"40005\"" "$tmp/screen" && grep -q "\[filter \"40005\"\]" "$tmp/screen"'
tm send-keys -t top / BSpace BSpace BSpace BSpace BSpace l o s t Enter
wait_for filter-phase top 'Connections: 2 match "lost"'
# The daemon filters ("match"), so a connection far past the first page is found too.
tm send-keys -t top / BSpace BSpace BSpace BSpace 4 1 5 0 0 Enter
wait_for filter-deep top 'Connections: 1 match "41500"  rows 1-1'
check filter-deep-row 'grep -Eq "^198\.18\.0\.10:41500 " "$tmp/screen" && ! grep -q "on this page" "$tmp/screen"'
tm send-keys -t top c
wait_for table-off top 'Events \(newest last\)'

# The daemon goes away and comes back.
stop_fake
wait_for daemon-gone top '^ (lost the daemon, reconnecting|unreachable, retrying every 1 s): '
wait_for daemon-gone-stale top '^ PROXY \[stale: no contact for [0-9.]+s\]'
wait_for daemon-gone-says-why top '^ unreachable, retrying every 1 s: cannot connect to /'
check daemon-gone-errno 'grep -Eq "No such file or directory \(ENOENT\)|Connection refused \(ECONNREFUSED\)" "$tmp/screen" && fits 80 24'
start_fake --phase-counts
wait_for daemon-back top '^ NORMAL for ' 8
check daemon-back-footer 'grep -Eq "^ q quit .* /tmp/" "$tmp/screen" && ! grep -q unreachable "$tmp/screen"'
check daemon-back-rates-reset 'grep -Eq "to backup (-|0) " "$tmp/screen"'
check daemon-back-phase-counts 'grep -Eq "^Conns +tracked 2000 " "$tmp/screen"'

# q quits, exit 0, and the terminal is handed back.
tm send-keys -t top q
for _ in $(seq 30); do tm has-session -t top 2>/dev/null || break; sleep 0.1; done
check quit '! tm has-session -t top 2>/dev/null && [[ $(cat "$tmp/rc" 2>/dev/null) == 0 ]]'

# Colours: a coloured banner by default; none with NO_COLOR, attributes only.
tm new-session -d -s color -x 80 -y 24 "env TERM=tmux-256color $bin --socket $sock top"
wait_for color-start color '^ NORMAL '
tm capture-pane -e -p -t color >"$tmp/esc"
check color-banner "head -1 '$tmp/esc' | grep -q \$'\\e\\[[0-9;]*4[0-7]m'"
tm send-keys -t color q
tm new-session -d -s nocolor -x 80 -y 24 "env NO_COLOR=1 TERM=tmux-256color $bin --socket $sock top"
wait_for nocolor-start nocolor '^ NORMAL '
tm capture-pane -e -p -t nocolor >"$tmp/esc"
check nocolor-no-colours "! grep -q \$'\\e\\[[0-9;]*[34][0-7]m' '$tmp/esc' && head -1 '$tmp/esc' | grep -q \$'\\e\\[[0-9;]*7'"
tm send-keys -t nocolor q

# Not a UTF-8 locale: ASCII only.
drive '{"v":1,"cmd":"_set","state":"recovery","resolved":1000}'
tm new-session -d -s ascii -x 80 -y 24 "env LANG=C LC_ALL=C TERM=tmux-256color $bin --socket $sock top"
wait_for ascii-progress ascii '^Recovery +\[#{10,}\.{10,}\] 1000/2000'
check ascii-only 'LC_ALL=C grep -qP "^[\x00-\x7f]*$" "$tmp/screen" && ! LC_ALL=C grep -qP "[\x80-\xff]" "$tmp/screen"'
check ascii-heading 'grep -Eq "^-- Events \(newest last\) -+$" "$tmp/screen"'
tm send-keys -t ascii q

echo "dashboard_tmux: $passed passed, $failed failed (snapshots: $art)"
[[ $failed -eq 0 ]]
