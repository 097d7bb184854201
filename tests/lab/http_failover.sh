#!/usr/bin/env bash
# One failover of stock nginx in the hub lab (issue 13: replay modes against a real service;
# the nginx cells of scripts/bench_replay.sh).
#
#   tests/lab/http_failover.sh [BUILD_DIR] --mode push|aligned|full [--file-size BYTES]
#       [--clients N] [--duration S] [--pull-at S] [--no-pull] [--samples N]
#       [--migware BIN] [--work DIR] [--keep] [--limit-rate R]
#
# The lab, nginx, migware and the pull are tests/lab/replay_lib.sh's.  nginx 1.22 (Debian) in
# the primary and the backup serves one file, /f.bin, of --file-size random bytes (default
# 2 MiB), the same bytes and mtime on both (ETag, Last-Modified); the Date header is left as
# nginx writes it (rl_nginx --keep-date; no headers-more), no access log, no sendfile;
# `limit_rate` (default 8m) so that migware's capture keeps up on a 2-core machine.  migware
# (--port 80 --capture.buffer-mb 128 --recovery.mode M, no restart snapshot) in the backup;
# N (default 10) keep-alive clients (tests/lab/http_clients.py --reconnect) download the file in
# a loop for --duration seconds (default 5) and compare every body with the file byte for byte;
# the primary's cable is pulled at --pull-at (default 2.5 s after the clients' start; a pull
# less than 1 s before the traffic's end makes the run fail as invalid).  --samples N: migware's
# counters and VmRSS once before the clients connect and N times before the pull
# (migware-samples.jsonl).  --recovery-mode M is the old name of --mode M.  migware is
# --migware BIN, else BUILD_DIR/bin/migware, else build/bin/migware.
#
# Kept in the work directory (--work DIR, which must be empty; or with --keep): clients.json,
# migware.log, migware-counters.json (before migware stops), migware-samples.jsonl, pull, the
# nginx logs.  Last line:
#   http_failover: mode=M downloads=D corrupt=C client_errors=E replay_diverged=X ...
# or `http_failover: FAIL (reason)`.  Exit 0 when the run completed, no body was corrupt (a
# body of the right length with other bytes), no client thread hung, every client's connection
# got a twin and migware exited cleanly (a reset connection, which is what a diverged replay
# does, is counted, not failed); 1 otherwise.  Needs root; never skips.
set -uo pipefail
RL_NAME=http_failover RL_NAME_TAG=f
BUILD="" MODE="" SIZE=$((2 * 1024 * 1024)) CLIENTS=10 DURATION=5 PULL_AT=2.5 NOPULL=0 SAMPLES=0
BIN="" LIMIT_RATE=8m PORT=80 TIMEOUT=5
ARGS=("$@")
# shellcheck source=replay_lib.sh
source "$(dirname "$0")/replay_lib.sh"
while [[ $# -gt 0 ]]; do
    case $1 in
        --recovery-mode) shift; set -- --mode "$@";;
        --no-pull) NOPULL=1; shift;;
        --file-size|--samples|--migware|--work|--limit-rate)
            [[ $# -ge 2 ]] || { echo "http_failover: $1 needs a value" >&2; exit 2; }
            case $1 in
                --file-size) SIZE=$2;; --samples) SAMPLES=$2;; --migware) BIN=$2;;
                --work) RL_WORK_DIR=$2;; --limit-rate) LIMIT_RATE=$2;;
            esac
            shift 2;;
        *) rl_opt "$@"; shift "$RL_SHIFT";;
    esac
done
[[ -n $MODE ]] || { echo "http_failover: --mode push|aligned|full" >&2; exit 2; }
rl_check_opts 60
[[ $SIZE =~ ^[0-9]+$ && $SIZE -ge 1 && $SIZE -le $((64 << 20)) ]] || { echo "http_failover: --file-size 1..64 MiB" >&2; exit 2; }
[[ $SAMPLES =~ ^[0-9]+$ && $SAMPLES -le 50 ]] || { echo "http_failover: --samples 0..50" >&2; exit 2; }
[[ $LIMIT_RATE =~ ^[0-9]+[km]?$ ]] || { echo "http_failover: --limit-rate like 8m" >&2; exit 2; }
if [[ -n $RL_WORK_DIR ]]; then
    [[ ! -e $RL_WORK_DIR || -z $(ls -A "$RL_WORK_DIR" 2>/dev/null) ]] || { echo "http_failover: --work $RL_WORK_DIR is not empty" >&2; exit 2; }
fi
if [[ -z $BIN ]]; then
    [[ -n $BUILD ]] && BIN="$BUILD/bin/migware" || BIN="$RL_ROOT/build/bin/migware"
fi
BIN=$(realpath -e "$BIN" 2>/dev/null) || { echo "http_failover: no migware binary" >&2; exit 2; }
CLIENT_BOUND=$(( $(awk "BEGIN{printf \"%d\", $DURATION + 0.999}") + 3 * TIMEOUT + 5 ))
RL_BOUND=$(( CLIENT_BOUND + 60 ))
rl_bound "${ARGS[@]}"
rl_setup
rl_log "mode=$MODE file=${SIZE}B clients=$CLIENTS duration=${DURATION}s pull=$([[ $NOPULL -eq 1 ]] && echo no || echo "at ${PULL_AT}s") limit_rate=$LIMIT_RATE prefix=$LAB_PREFIX work=$RL_WORK"

# shellcheck source=migware_sample.sh
source "$RL_HERE/migware_sample.sh"
sample() { migware_sample "$MIG_REAL_PID" "$RL_WORK/control.sock" "$1" "$RL_WORK/migware-samples.jsonl"; }

# the file, the same bytes and mtime on both servers
rl_files "$RL_WORK/www-primary" "$$" "f.bin:$SIZE"
cp -rp "$RL_WORK/www-primary" "$RL_WORK/www-backup" || rl_fatal "cp -rp"
for role in primary backup; do
    ns=$LAB_NS_PRIMARY; [[ $role == backup ]] && ns=$LAB_NS_BACKUP
    rl_nginx "$role" "$ns" "$RL_WORK/www-$role" --keep-date --limit-rate "$LIMIT_RATE" --no-access-log --no-sendfile
done

RL_STATE_FILE="" rl_migware "$BIN" "$PORT" --capture.buffer-mb 128 --recovery.mode "$MODE"
MIG_REAL_PID=$(migware_real_pid "$RL_MIG_PID" "$BIN") || rl_fatal "cannot find migware's own process"
[[ $SAMPLES -gt 0 ]] && sample base

rl_start_clients "$CLIENT_BOUND" "$RL_PY" "$RL_HERE/http_clients.py" --server "$LAB_IP_PRIMARY:$PORT" \
    --clients "$CLIENTS" --paths /f.bin --primary-dir "$RL_WORK/www-primary" --duration "$DURATION" \
    --timeout "$TIMEOUT" --reconnect
# the schedule counts from the clients' own start (their CLOCK_MONOTONIC in the start file),
# not from when this script noticed it: on a saturated machine that can be seconds later
for (( si = 1; si <= SAMPLES; si++ )); do
    rl_sleep_until_client_time "$(awk -v sp="$PULL_AT" -v i="$si" -v n="$SAMPLES" 'BEGIN{printf "%.3f", sp * (0.5 + 0.45 * i / n)}')"
    sample "traffic$si"
done
if [[ $NOPULL -eq 0 ]]; then
    rl_sleep_until_client_time "$PULL_AT"
    rl_pull
    read -r _ PULL_END <"$RL_WORK/pull"
    PULL_LATE=$(awk -v t0="$RL_CLIENTS_T0" -v p="$PULL_END" -v at="$PULL_AT" 'BEGIN{printf "%.3f", (p - t0) / 1e9 - at}')
    rl_log "${PULL_LATE}s after its planned moment"
    # a pull near or after the traffic's end measures nothing: the run is invalid
    awk -v t0="$RL_CLIENTS_T0" -v p="$PULL_END" -v d="$DURATION" 'BEGIN{exit !(p < t0 + (d - 1) * 1e9)}' \
        || rl_fatal "the pull came ${PULL_LATE}s late, less than 1 s before the traffic's end (machine too busy): run invalid"
fi
rl_finish_clients
rl_log "clients: $(tail -n 1 "$RL_WORK/clients.err")"
rl_counters
cp "$RL_WORK/counters.json" "$RL_WORK/migware-counters.json"
rl_stop_migware; MIG_RC=$RL_RC

LINE=$("$RL_PY" - "$RL_WORK" "$MODE" "$MIG_RC" <<'PYEOF'
import json, re, sys
w, mode, mig_rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = json.load(open(w + "/clients.json"))
t = c["total"]
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
# downloads: bodies equal to the file; corrupt: bodies of the right length with other bytes
# (http_clients.py's "mixed"; a short body is an error: the connection broke)
parts = ["mode=%s" % mode, "downloads=%d" % t["primary"], "corrupt=%d" % t["mixed"],
         "client_errors=%d" % t["errors"], "hung=%d" % len(c["stuck_threads"]), "migware_exit=%d" % mig_rc]
if rec and prx:
    parts.append("recovery_ms=%.1f" % ((prx[0] - rec[0]) / 1e6))
parts += ["%s=%s" % (k, m[k]) for k in keys if k in m]
print(" ".join(parts))
PYEOF
) || rl_fatal "cannot read the reports"
grep -m 5 'event=replay_diverged' "$RL_WORK/migware.log" | cut -c1-400 >&2
grep -E 'error' "$RL_WORK"/nginx-*/error.log 2>/dev/null | head -n 3 >&2
echo "http_failover: $LINE"
ok=1
[[ $LINE == *" corrupt=0 "* && $LINE == *" hung=0 "* ]] || ok=0
# every client's connection was open at the pull: each must have had a twin
[[ $NOPULL -eq 1 || $LINE == *" twins=$CLIENTS "* ]] || { rl_log "FAIL: not every client connection got a twin"; ok=0; }
[[ $MIG_RC -eq 0 ]] || { rl_log "migware exited $MIG_RC"; ok=0; }
[[ $ok -eq 1 ]]
