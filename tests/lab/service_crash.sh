#!/usr/bin/env bash
# Service crash with the host alive (issue 5): the primary's service process
# dies while its host keeps answering ICMP. migware's TCP probe must tell this
# apart ("host up, service down"), log it plainly, and take the service over
# for NEW connections. The connections that were open die with the process:
# the primary's own kernel closes them toward the clients, which no
# packet-level tool can hide; this test reports them, it does not pretend.
#   tests/lab/service_crash.sh BUILD_DIR
set -uo pipefail
build=${1:?usage: service_crash.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
[[ $(id -u) -eq 0 ]] || { echo "service_crash: needs root (network namespaces)"; exit 1; }
# shellcheck source=../../scripts/lab.sh
source "$root/scripts/lab.sh"
lab_init "mwsc$$-"
work=$(mktemp -d /dev/shm/mwsc.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  lab_down >/dev/null 2>&1
  sleep 0.2
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
lab_up >/dev/null 2>&1 || { echo "FAIL: lab_up"; exit 1; }
lab_raise_limits >/dev/null 2>&1
py=$(command -v python3)
mkdir -p "$work/p" "$work/b"
ip netns exec "$LAB_NS_PRIMARY" timeout 60 "$py" "$root/tests/lab/traffic.py" server --mode reqresp --port 7000 --log "$work/p" >"$work/p.out" 2>&1 &
primary_server=$!; pids+=($primary_server)
ip netns exec "$LAB_NS_BACKUP" timeout 60 "$py" "$root/tests/lab/traffic.py" server --mode reqresp --port 7000 --log "$work/b" >"$work/b.out" 2>&1 &
pids+=($!)
sleep 0.5
ip netns exec "$LAB_NS_BACKUP" timeout 60 "$build/bin/migware" --interface eth0 --primary "$LAB_IP_PRIMARY" \
  --backup "$LAB_IP_BACKUP" --port 7000 --control.socket "$work/control.sock" \
  --state-file "$work/snapshot" --monitor.service-probe true >"$work/migware.out" 2>"$work/migware.log" &
mig_pid=$!; pids+=($mig_pid)
for _ in $(seq 50); do grep -q 'state=normal' "$work/migware.log" && break; sleep 0.1; done

# One request/reply on a fresh connection; prints ok or the error.
probe_client() {
  nsx "$LAB_NS_CLIENT" timeout 10 "$py" - "$@" <<'PY'
import socket, sys
ok = 0
n = int(sys.argv[1])
for i in range(n):
    try:
        s = socket.create_connection(("198.18.0.1", 7000), timeout=4)
        s.sendall(b"%031d\n" % i)
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                raise OSError("closed before the reply")
            data += chunk
        s.close()
        ok += 1
    except OSError as e:
        print("error:", e)
print("ok", ok, "of", n)
PY
}
before=$(probe_client 20 | tail -n1)
# A long-lived connection open across the crash.
nsx "$LAB_NS_CLIENT" timeout 20 "$py" -c '
import socket, time
s = socket.create_connection(("198.18.0.1", 7000), timeout=4)
s.sendall(b"%031d\n" % 1); s.recv(4096)
time.sleep(2.5)
try:
    s.sendall(b"%031d\n" % 2); r = s.recv(4096)
    print("long-lived:", "reply" if r else "closed by the server (EOF)")
except OSError as e:
    print("long-lived:", e)
' >"$work/long.out" 2>&1 &
long_pid=$!; pids+=($long_pid)
sleep 0.5
# The service dies; the host stays up. ($primary_server is `timeout`; the server is its child.)
pkill -KILL -P "$primary_server"
crash_mono=$("$py" -c 'import time; print(time.monotonic_ns())')
sleep 1.5
after=$(probe_client 20 | tail -n1)
wait "$long_pid"
passed=0 failed=0
check() { if [[ $2 -eq 0 ]]; then echo "ok   $1"; passed=$((passed + 1)); else echo "FAIL $1"; failed=$((failed + 1)); fi; }
echo "   new connections before the crash: $before; after it: $after"
echo "   $(cat "$work/long.out")"
down=$(grep 'event=service_down' "$work/migware.log" | head -n1)
echo "   ${down:0:260}"
check "the TCP probe reported the service down with the host up" \
  "$(grep -q 'event=service_down .*host=up' <<<"$down"; echo $?)"
down_mono=$(sed -n 's/.*mono_ns=\([0-9]*\) event=service_down.*/\1/p' "$work/migware.log" | head -n1)
[[ -n $down_mono ]] && echo "   detected $(( (down_mono - crash_mono) / 1000000 )) ms after the kill"
check "migware took over (normal->recovery, reason names the service)" \
  "$(grep -q 'event=transition from=normal to=recovery .*service down while the host answers' "$work/migware.log"; echo $?)"
check "... and reached proxy" "$(grep -q 'event=transition from=recovery to=proxy' "$work/migware.log"; echo $?)"
check "no false alarm before the crash (20 of 20 new connections served)" "$([[ $before == 'ok 20 of 20' ]]; echo $?)"
# The clients address the primary's IP to the backup's MAC since the takeover's gratuitous
# ARP, so the live primary's kernel never sees their SYNs (it would refuse them with a RST).
check "new connections after the takeover are served by the backup (20 of 20)" "$([[ $after == 'ok 20 of 20' ]]; echo $?)"
check "the open connection saw the crash (the primary's kernel closed it; reported, not masked)" \
  "$(grep -qE 'closed by the server|reset|Connection' "$work/long.out"; echo $?)"
kill -TERM "$mig_pid" 2>/dev/null; wait "$mig_pid" 2>/dev/null; mig_rc=$?
check "migware exited cleanly on SIGTERM (status $mig_rc)" "$mig_rc"
grep -E 'event=(service_down|service_up|transition|shutdown)' "$work/migware.log" | cut -c1-220
echo "service_crash: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
