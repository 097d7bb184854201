#!/usr/bin/env bash
# One failover of stock nginx in the hub lab (issue 13: replay modes against a real service).
#
#   tests/lab/http_failover.sh --recovery-mode push|aligned|full [--file-size BYTES]
#       [--clients N] [--duration S] [--pull-at S] [--no-pull] [--samples N]
#       [--migware BIN] [--work DIR] [--keep] [--limit-rate R]
#
# nginx 1.22 (Debian) in the primary and the backup, each from its own config in the work
# directory (daemon off, master_process off, server_tokens off, every path in the work
# directory), serving one file of --file-size random bytes (default 2 MB) copied with `cp -p`,
# so size and mtime (ETag, Last-Modified) are the same on both; `limit_rate` (default 8m) so
# that migware's capture keeps up on a 2-core machine; the Date header is left as nginx writes
# it.  migware (--port 80 --capture.buffer-mb 128 --recovery.mode M) in the backup; N (default
# 10) keep-alive clients (tests/lab/http_client.py) download the file in a loop for --duration
# seconds (default 5) and check every body's sha256; the primary's cable is pulled at --pull-at
# (default 2.5 s after the client's start; a pull less than 1 s before the traffic's end makes
# the run fail as invalid).  --samples N: migware's counters and VmRSS once before the clients connect and N
# times before the pull (migware-samples.jsonl).
#
# Kept in the work directory: http-client.json, migware.log, migware-counters.json (before
# migware stops), migware-samples.jsonl, pull.txt, the nginx logs.  Last line:
#   http_failover: mode=M downloads=D corrupt=C client_errors=E replay_diverged=X ...
# Exit 0 when the run completed and no body was corrupt (a reset connection, which is what a
# diverged replay does, is counted, not failed); 1 otherwise.  Needs root; never skips.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ORIG_ARGS=("$@")
RMODE="" SIZE=$((2 * 1024 * 1024)) CLIENTS=10 DURATION=5 PULL_AT=2.5 NOPULL=0 SAMPLES=0
BIN="$ROOT/build/bin/migware" WORKDIR="" KEEP=0 LIMIT_RATE=8m PORT=80 CLIENT_TIMEOUT=5
usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --recovery-mode) RMODE=${2:-}; shift 2;;
        --file-size) SIZE=${2:-}; shift 2;;
        --clients) CLIENTS=${2:-}; shift 2;;
        --duration) DURATION=${2:-}; shift 2;;
        --pull-at) PULL_AT=${2:-}; shift 2;;
        --no-pull) NOPULL=1; shift;;
        --samples) SAMPLES=${2:-}; shift 2;;
        --migware) BIN=${2:-}; shift 2;;
        --work) WORKDIR=${2:-}; shift 2;;
        --keep) KEEP=1; shift;;
        --limit-rate) LIMIT_RATE=${2:-}; shift 2;;
        -h|--help) usage;;
        *) echo "http_failover: unknown argument '$1'" >&2; usage;;
    esac
done
[[ $RMODE == push || $RMODE == aligned || $RMODE == full ]] || { echo "http_failover: --recovery-mode push|aligned|full" >&2; exit 2; }
[[ $SIZE =~ ^[0-9]+$ && $SIZE -ge 1 && $SIZE -le $((64 << 20)) ]] || { echo "http_failover: --file-size 1..64 MiB" >&2; exit 2; }
[[ $CLIENTS =~ ^[0-9]+$ && $CLIENTS -ge 1 && $CLIENTS -le 100 ]] || { echo "http_failover: --clients 1..100" >&2; exit 2; }
[[ $SAMPLES =~ ^[0-9]+$ && $SAMPLES -le 50 ]] || { echo "http_failover: --samples 0..50" >&2; exit 2; }
[[ $LIMIT_RATE =~ ^[0-9]+[km]?$ ]] || { echo "http_failover: --limit-rate like 8m" >&2; exit 2; }
awk "BEGIN{exit !($DURATION > 0 && $DURATION <= 60 && $PULL_AT > 0 && $PULL_AT < $DURATION)}" 2>/dev/null \
    || { echo "http_failover: --duration 0..60 s, --pull-at below it" >&2; exit 2; }
if [[ -n $WORKDIR ]]; then
    [[ ! -e $WORKDIR || -z $(ls -A "$WORKDIR" 2>/dev/null) ]] || { echo "http_failover: --work $WORKDIR is not empty" >&2; exit 2; }
fi

DUR_INT=$(awk "BEGIN{printf \"%d\", $DURATION + 0.999}")
CLIENT_BOUND=$(( DUR_INT + 3 * CLIENT_TIMEOUT + 5 ))
RUN_BOUND=$(( CLIENT_BOUND + 60 ))
if [[ -z ${MWH_BOUNDED:-} ]]; then
    export MWH_BOUNDED=$RUN_BOUND
    exec timeout --foreground -k 10 "$RUN_BOUND" "$0" "${ORIG_ARGS[@]}"
fi

# shellcheck source=../../scripts/lab.sh
source "$ROOT/scripts/lab.sh"
PY=$(command -v python3) || { echo "http_failover: python3 missing" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
log() { printf 'http_failover: %s\n' "$*" >&2; }

WORK="" OWN_PIDS=() MIG_PID="" MIG_REAL_PID="" CLIENT_PID="" NGX_P_PID="" NGX_B_PID="" DONE=0
running() { local p; for p in $(jobs -rp); do [[ $p == "$1" ]] && return 0; done; return 1; }
stop_pid() {
    local pid=$1 secs=${2:-5} i
    [[ -n $pid ]] || return 0
    if running "$pid"; then
        kill -TERM "$pid" 2>/dev/null
        for (( i = 0; i < secs * 20; i++ )); do running "$pid" || break; sleep 0.05; done
        running "$pid" && kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    STOP_RC=$?
}
cleanup() {
    local rc=$? pid
    set +e
    trap - EXIT INT TERM
    for pid in "${OWN_PIDS[@]}"; do stop_pid "$pid" 3; done
    if [[ -n ${LAB_PREFIX:-} ]]; then
        lab_down
        if ip netns list 2>/dev/null | grep -q "^${LAB_PREFIX}"; then log "ERROR: namespaces ${LAB_PREFIX}* still present"; rc=1; fi
    fi
    [[ -n $WORK && -d $WORK && $KEEP -eq 0 ]] && rm -rf "$WORK"
    [[ $DONE -eq 1 ]] || echo "http_failover: mode=$RMODE FAILED (did not complete)"
    exit $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated (run bound ${MWH_BOUNDED}s?)"; exit 143' TERM
fail() { log "ERROR: $*"; [[ -s $WORK/migware.log ]] && tail -n 20 "$WORK/migware.log" >&2; exit 1; }
spawn() {
    local ns=$1 secs=$2 out=$3 err=$4; shift 4
    ip netns exec "$ns" timeout -k 3 "$secs" "$@" >"$out" 2>"$err" &
    LAST_PID=$!
    OWN_PIDS+=("$LAST_PID")
}
wait_for() {
    local secs=$1 pid=$2 what=$3 i; shift 3
    for (( i = 0; i < secs * 50; i++ )); do
        "$@" && return 0
        if [[ -n $pid ]] && ! running "$pid"; then log "$what: exited early"; return 1; fi
        sleep 0.02
    done
    log "$what: not within ${secs}s"; return 1
}
# real_pid PID EXE : the first process under PID's wrappers (ip netns exec -> timeout) running EXE
real_pid() {
    local want queue=("$1") p c exe i
    want=$(readlink -f "$2")
    for (( i = 0; i < ${#queue[@]} && i < 64; i++ )); do
        p=${queue[i]}
        exe=$(readlink -f "/proc/$p/exe" 2>/dev/null) || continue
        [[ $exe == "$want" ]] && { echo "$p"; return 0; }
        for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do queue+=("$c"); done
    done
    return 1
}
counters() { timeout 5 "$PY" "$HERE/migware_counters.py" "$WORK/control.sock"; }
sample() { # LABEL : counters and VmRSS (kB) as one JSON line
    local rss c
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$MIG_REAL_PID/status" 2>/dev/null)
    c=$(counters 2>/dev/null) || c=null
    printf '{"label": "%s", "mono_ns": %s, "vmrss_kb": %s, "counters": %s}\n' \
        "$1" "$(date +%s%N)" "${rss:-null}" "$c" >>"$WORK/migware-samples.jsonl"
}

[[ $(id -u) -eq 0 ]] || fail "needs root (network namespaces); not skipping"
lab_check_tools || fail "missing tools"
[[ -x $NGINX ]] || fail "no nginx ($NGINX)"
[[ -x $BIN ]] || fail "no migware binary at $BIN"
if [[ -n $WORKDIR ]]; then mkdir -p "$WORKDIR" && WORK=$(cd "$WORKDIR" && pwd) && KEEP=1 || fail "--work"
else WORK=$(mktemp -d /dev/shm/mwh$$.XXXXXX) || fail "mktemp"; fi
lab_init "mwh$$-" || fail "lab_init"
log "mode=$RMODE file=${SIZE}B clients=$CLIENTS duration=${DURATION}s pull=$([[ $NOPULL -eq 1 ]] && echo no || echo "at ${PULL_AT}s") limit_rate=$LIMIT_RATE prefix=$LAB_PREFIX work=$WORK"
lab_up || fail "lab_up"

# the file, once, copied with its mtime to both servers (same ETag and Last-Modified)
mkdir -p "$WORK/src" || fail "mkdir"
head -c "$SIZE" /dev/urandom >"$WORK/src/f.bin" || fail "cannot make the file"
touch -d '2026-01-01 00:00:00 UTC' "$WORK/src/f.bin"
SHA=$(sha256sum "$WORK/src/f.bin" | cut -d' ' -f1)
for role in primary backup; do
    d="$WORK/nginx-$role"
    mkdir -p "$d/www" "$d/tmp" "$d/logs" || fail "mkdir $d"
    cp -p "$WORK/src/f.bin" "$d/www/f.bin" || fail "cp -p"
    cat >"$d/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections 512; }
http {
    server_tokens off;
    access_log off;
    default_type application/octet-stream;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    keepalive_requests 100000;
    keepalive_timeout 60s;
    server {
        listen $PORT;
        root $d/www;
        limit_rate $LIMIT_RATE;
        location / { }
    }
}
EOF
    ns=$LAB_NS_PRIMARY; [[ $role == backup ]] && ns=$LAB_NS_BACKUP
    spawn "$ns" "$RUN_BOUND" "$d/logs/stdout" "$d/logs/stderr" "$NGINX" -p "$d" -c "$d/nginx.conf"
    [[ $role == primary ]] && NGX_P_PID=$LAST_PID || NGX_B_PID=$LAST_PID
    wait_for 5 "$LAST_PID" "nginx ($role)" test -s "$d/nginx.pid" || fail "nginx ($role) did not start: $(cat "$d/logs/stderr" "$d/logs/error.log" 2>/dev/null | tail -n 3)"
done
cmp -s "$WORK/nginx-primary/www/f.bin" "$WORK/nginx-backup/www/f.bin" || fail "the two files differ"

spawn "$LAB_NS_BACKUP" "$RUN_BOUND" "$WORK/migware.out" "$WORK/migware.log" \
    "$BIN" --interface eth0 --primary "$LAB_IP_PRIMARY" --backup "$LAB_IP_BACKUP" --port "$PORT" \
    --capture.buffer-mb 128 --recovery.mode "$RMODE" --control.socket "$WORK/control.sock" --state-file ""
MIG_PID=$LAST_PID
wait_for 5 "$MIG_PID" migware grep -qs 'state=normal' "$WORK/migware.log" "$WORK/migware.out" || fail "migware did not reach state=normal"
MIG_REAL_PID=$(real_pid "$MIG_PID" "$BIN") || fail "cannot find migware's own process"
[[ $SAMPLES -gt 0 ]] && sample base

spawn "$LAB_NS_CLIENT" "$CLIENT_BOUND" "$WORK/http-client.out" "$WORK/http-client.err" \
    "$PY" "$HERE/http_client.py" --url "http://$LAB_IP_PRIMARY:$PORT/f.bin" --sha256 "$SHA" --size "$SIZE" \
    --clients "$CLIENTS" --duration "$DURATION" --timeout "$CLIENT_TIMEOUT" --out "$WORK/http-client.json" \
    --start-file "$WORK/client.start"
CLIENT_PID=$LAST_PID
wait_for 10 "$CLIENT_PID" "http client" test -s "$WORK/client.start" || fail "the client did not start"
# the schedule counts from the client's own start (its wall clock in the start file), not from
# when this script noticed it: on a saturated machine that can be seconds later
read -r T_TRAFFIC _ <"$WORK/client.start"
for (( si = 1; si <= SAMPLES; si++ )); do
    at=$(awk -v sp="$PULL_AT" -v i="$si" -v n="$SAMPLES" 'BEGIN{printf "%.3f", sp * (0.5 + 0.45 * i / n)}')
    sleep "$(awk -v t0="$T_TRAFFIC" -v at="$at" -v now="$(date +%s.%N)" 'BEGIN{w = t0 + at - now; printf "%.3f", (w > 0) ? w : 0}')"
    sample "traffic$si"
done
if [[ $NOPULL -eq 0 ]]; then
    sleep "$(awk -v t0="$T_TRAFFIC" -v at="$PULL_AT" -v now="$(date +%s.%N)" 'BEGIN{w = t0 + at - now; printf "%.3f", (w > 0) ? w : 0}')"
    read -r MONO0 MONO1 WALL1 < <("$PY" - "$LAB_NS_HUB" <<'PYEOF'
import subprocess, sys, time
m0 = time.monotonic_ns()
rc = subprocess.run(["ip", "-n", sys.argv[1], "link", "set", "p-primary", "down"]).returncode
m1 = time.monotonic_ns(); w1 = time.time()
print(m0, m1, repr(w1) if rc == 0 else "FAILED")
PYEOF
)
    [[ ${WALL1:-FAILED} != FAILED ]] || fail "pulling the cable failed"
    echo "$MONO0 $MONO1 $WALL1" >"$WORK/pull.txt"
    PULL_LATE=$(awk -v t0="$T_TRAFFIC" -v w="$WALL1" -v at="$PULL_AT" 'BEGIN{printf "%.3f", w - t0 - at}')
    log "cable pulled (mono_ns=$MONO1), ${PULL_LATE}s after its planned moment"
    # a pull near or after the traffic's end measures nothing: the run is invalid
    awk -v t0="$T_TRAFFIC" -v w="$WALL1" -v d="$DURATION" 'BEGIN{exit !(w < t0 + d - 1)}' \
        || fail "the pull came ${PULL_LATE}s late, less than 1 s before the traffic's end (machine too busy): run invalid"
fi
wait "$CLIENT_PID"; client_rc=$?
log "client exited $client_rc: $(tail -n 1 "$WORK/http-client.err")"
counters >"$WORK/migware-counters.json" 2>"$WORK/migware-counters.err" || log "WARNING: no final counters"
stop_pid "$MIG_PID" 5; MIG_RC=$STOP_RC
stop_pid "$CLIENT_PID" 1; stop_pid "$NGX_P_PID" 5; stop_pid "$NGX_B_PID" 5
[[ -s $WORK/http-client.json ]] || fail "no client report"

LINE=$("$PY" - "$WORK" "$RMODE" "$MIG_RC" <<'PYEOF'
import json, re, sys
w, mode, mig_rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = json.load(open(w + "/http-client.json"))
try:
    m = json.load(open(w + "/migware-counters.json"))
except (OSError, ValueError):
    m = {}
tr = []
for line in open(w + "/migware.log", errors="replace"):
    if "event=transition" in line:
        kv = dict(re.findall(r"(\w+)=(\S+)", line))
        tr.append((kv.get("to"), int(kv.get("mono_ns", 0))))
rec = [t for to, t in tr if to == "recovery"]
prx = [t for to, t in tr if to == "proxy"]
keys = ["twins", "recovered", "replay_aligned", "replay_full", "replay_full_as_aligned", "replay_as_push",
        "replay_verified", "replay_diverged", "replay_absorbed_bytes", "replay_digest_gaps", "kernel_drops",
        "new_connections", "client_unrecovered"]
keys += sorted(k for k in m if k.startswith("replay_fallback") and m[k])
parts = ["mode=%s" % mode, "downloads=%d" % c["downloads"], "corrupt=%d" % c["corrupt"],
         "client_errors=%d" % c["errors"], "hung=%d" % c["hung_clients"], "migware_exit=%d" % mig_rc]
if rec and prx:
    parts.append("recovery_ms=%.1f" % ((prx[0] - rec[0]) / 1e6))
parts += ["%s=%s" % (k, m[k]) for k in keys if k in m]
print(" ".join(parts))
PYEOF
)
grep -m 5 'event=replay_diverged' "$WORK/migware.log" | cut -c1-400 >&2
grep -E 'error' "$WORK"/nginx-*/logs/error.log 2>/dev/null | head -n 3 >&2
DONE=1
echo "http_failover: $LINE"
ok=1
[[ $LINE == *" corrupt=0 "* && $LINE == *" hung=0 "* ]] || ok=0
# every client's connection was open at the pull: each must have had a twin
[[ $NOPULL -eq 1 || $LINE == *" twins=$CLIENTS "* ]] || { log "FAIL: not every client connection got a twin"; ok=0; }
[[ $MIG_RC -eq 0 ]] || { log "migware exited $MIG_RC"; ok=0; }
[[ $ok -eq 1 ]]
