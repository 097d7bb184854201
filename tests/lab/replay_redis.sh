#!/usr/bin/env bash
# Full replay of a stateful service (issue 13, DESIGN.md 6b): redis-server on the primary and
# on the backup, started empty; migware with --recovery.mode full; M clients
# (tests/lab/redis_clients.py, default 10), ONE connection each for their whole life, SET
# their own keys and read them back (the newest, a random sample, and every few rounds all of
# them in one MGET) for S seconds (default 8); the primary's cable is pulled --pull-at s
# (default 3) after the start.
#
#   tests/lab/replay_redis.sh BUILD_DIR [--mode full|aligned|push] [--keep] [--clients M]
#                             [--duration S] [--pull-at S]
#
# PASS only if every read returned what that client wrote, before and after the pull, with no
# error and no stall (5 s per reply), every client read after the pull on its one connection
# and read back all its keys at the end, migware reached proxy, counted replay_full >= 1 and
# replay_diverged = 0 (and replay_full_over_cap = 0), and the backup's redis, read directly
# from the backup's namespace afterwards, holds every key each client wrote (the keys written
# before the pull reach it only by replay) and nothing else.  `--mode aligned` must fail: the
# backup never gets the earlier SETs, so reads of keys written before the pull come back wrong.
#
# Ends with `replay_redis: N passed, M failed` (checks); exit 0 only if none failed.  Needs root.
set -uo pipefail
RL_NAME=replay_redis RL_NAME_TAG=r
BUILD="" MODE=full CLIENTS=10 DURATION=8 PULL_AT=3 TIMEOUT=5
ARGS=("$@")
# shellcheck source=replay_lib.sh
source "$(dirname "$0")/replay_lib.sh"
while [[ $# -gt 0 ]]; do rl_opt "$@"; shift "$RL_SHIFT"; done
rl_build_dir
rl_check_opts 30 int
RL_BOUND=$(( DURATION + 3 * TIMEOUT + 60 ))
rl_bound "${ARGS[@]}"
rl_setup
rl_log "mode=$MODE clients=$CLIENTS duration=${DURATION}s pull at ${PULL_AT}s prefix=$LAB_PREFIX"

rl_redis primary "$LAB_NS_PRIMARY"
rl_redis backup "$LAB_NS_BACKUP"
MIG_ARGS=(--recovery.mode "$MODE")
[[ $MODE == push ]] && MIG_ARGS=()        # push is the default; the old binary knows no --recovery.mode
# migware first: full replay needs every client byte since the handshake
rl_migware "$BUILD/bin/migware" 6379 "${MIG_ARGS[@]}"

rl_start_clients $(( DURATION + 3 * TIMEOUT + 20 )) "$RL_PY" "$RL_HERE/redis_clients.py" run \
    --server "$LAB_IP_PRIMARY:6379" --clients "$CLIENTS" --duration "$DURATION" --timeout "$TIMEOUT"
rl_sleep_until_client_time "$PULL_AT"
rl_pull
rl_finish_clients
rl_counters
rl_stop_migware; mig_rc=$RL_RC
# The backup's redis, read directly in its own namespace (not through migware)
nsx "$LAB_NS_BACKUP" timeout 20 "$RL_PY" "$RL_HERE/redis_clients.py" verify --server 127.0.0.1:6379 \
    --report "$RL_WORK/clients.json" --out "$RL_WORK/backup-check.json" >/dev/null 2>"$RL_WORK/backup-check.err" \
    || echo '{"keys": -1, "missing": -1, "wrong": -1, "dbsize": -1, "clients": []}' >"$RL_WORK/backup-check.json"

# ---------------------------------------------------------------- verdict
tail -n 1 "$RL_WORK/clients.err" | sed 's/^/   /'
rl_figures "$RL_WORK/clients.json" "$RL_WORK/backup-check.json" <<'PY' || rl_fatal "cannot read the reports"
import json, sys
s = json.load(open(sys.argv[1]))
b = json.load(open(sys.argv[2]))
t = s["total"]
clients_after = final_ok = 0
for c in s["clients"]:
    if c["reads_after_pull"] > 0 and not c["errors"]:
        clients_after += 1
    fc = c["final_check"]
    if fc and fc["keys"] == c["written"] and fc["wrong"] == 0:
        final_ok += 1
    for e in c["errors"]:
        print(f"   client {c['client']}: {e['kind']} {e.get('since_pull_ms')} ms after the pull, "
              f"after {e['written']} keys; {e['detail'][:100]}")
    for w in c["wrong_first"][:1]:
        print(f"   client {c['client']}: WRONG read {w['key']} {w.get('since_pull_ms')} ms after the "
              f"pull: expected {w['expected']!r}, got {w['got']!r}")
    if c["wrong"] > 1:
        print(f"   client {c['client']}: ... {c['wrong']} wrong reads in all "
              f"({c['wrong_before_pull']} before the pull, {c['wrong_after_pull']} after)")
for c in b.get("clients", []):
    if c["missing"] or c["wrong"]:
        print(f"   backup's redis: client {c['client']}: {c['missing']} of {c['keys']} keys missing, "
              f"{c['wrong']} wrong; first: {json.dumps(c['first_bad'][:1])}")
figures(dict(T_WRITTEN=t["written"], T_READS=t["reads"], T_RB=t["reads_before_pull"],
         T_RA=t["reads_after_pull"], T_WRONG=t["wrong"], T_WB=t["wrong_before_pull"],
         T_WA=t["wrong_after_pull"], T_ERRORS=t["errors"], T_CMDS=t["commands"],
         T_WORST=t["worst_ms"], T_FINAL=t["final_checked"], STUCK=len(s["stuck_threads"]),
         NCLIENTS=len(s["clients"]), CLIENTS_AFTER=clients_after, FINAL_OK=final_ok,
         HAVE_PULL=1 if s["pull_ns"] else 0, B_KEYS=b["keys"], B_MISSING=b["missing"],
         B_WRONG=b["wrong"], B_DBSIZE=b["dbsize"]))
PY
echo "   clients: $T_WRITTEN keys written, $T_READS key reads ($T_RB before the pull, $T_RA after it), $T_WRONG wrong ($T_WB before, $T_WA after), $T_ERRORS errors, $T_CMDS commands, worst reply ${T_WORST} ms (timeout ${TIMEOUT} s)"
echo "   final read-back on each client's one connection: $T_FINAL keys; $FINAL_OK of $NCLIENTS clients all right"
echo "   backup's redis read directly: $B_KEYS keys expected, $B_MISSING missing, $B_WRONG wrong, DBSIZE $B_DBSIZE"
rl_transitions
rl_replay_figures

check "the pull happened while the clients ran" "$([[ $HAVE_PULL -eq 1 && $T_RB -gt 0 ]]; echo $?)"
check "every client thread finished (no thread stuck)" "$([[ $STUCK -eq 0 && $NCLIENTS -eq $CLIENTS ]]; echo $?)"
check "migware failed over (normal -> recovery -> proxy)" "$(rl_proxied; echo $?)"
check "no error, no stall (reset, EOF, ${TIMEOUT} s timeout): $T_ERRORS" "$([[ $T_ERRORS -eq 0 ]]; echo $?)"
check "every read returned what the client wrote: $T_WRONG wrong of $T_READS ($T_WB before the pull, $T_WA after)" \
    "$([[ $T_WRONG -eq 0 && $T_READS -gt 0 ]]; echo $?)"
check "every client read after the pull on its one connection ($CLIENTS_AFTER of $CLIENTS)" "$([[ $CLIENTS_AFTER -eq $CLIENTS ]]; echo $?)"
check "every client read all its keys back at the end ($FINAL_OK of $CLIENTS)" "$([[ $FINAL_OK -eq $CLIENTS ]]; echo $?)"
check "the backup's redis holds every key written ($B_KEYS; $B_MISSING missing, $B_WRONG wrong) and no other (DBSIZE $B_DBSIZE)" \
    "$([[ $B_KEYS -eq $T_WRITTEN && $B_MISSING -eq 0 && $B_WRONG -eq 0 && $B_DBSIZE -eq $T_WRITTEN ]]; echo $?)"
check "replay_diverged is 0 ($C_DIV)" "$([[ $C_DIV -eq 0 ]]; echo $?)"
if [[ $MODE == full ]]; then
    check "full replay was used (replay_full $C_FULL >= 1), never over its cap (replay_full_over_cap $C_FOC), never aligned or push instead ($C_F2A, $C_PUSH)" \
        "$([[ $C_FULL -ge 1 && $C_FOC -eq 0 && $C_F2A -eq 0 && $C_PUSH -eq 0 ]]; echo $?)"
fi
check "migware exited cleanly on SIGTERM (status $mig_rc)" "$mig_rc"
rl_verdict
