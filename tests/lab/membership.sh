#!/usr/bin/env bash
# Membership on Corosync in the hub lab (issue 12): several backups, each with its own Corosync
# and its own migware (--membership corosync), a client, a primary, and perhaps a witness.
#
#   tests/lab/membership.sh --scenario NAME [--mode push|reqresp] [--connections N]
#                           [--migware BIN] [--keep] [--work DIR] [--timings FILE]
#   --timings FILE   key=value lines for scripts/bench_membership.sh: wall-clock times of the
#                    faults and of each backup's transitions, and the speakers' bursts (M3)
#
# Scenarios (priorities: 0 is the most preferred):
#   succession3        the same with 3 backups and no witness (b1 p0, b2 p1, b3 p2).
#   succession         2 backups + witness (b1 p0, b2 p1).  The primary's cable is pulled: b1
#                      alone takes over.  Then b1 dies (cable out, its migware, Corosync and
#                      server killed): b2 takes over the same connections.  Then b1 comes back
#                      (cable in, Corosync and a fresh migware): it stays standby, and learns the
#                      open connections from the group's table.
#   late-joiner        3 backups (b1 p0, b2 p1, b3 p2); b2's migware starts only after every
#                      connection is open, so it never sees a handshake. The primary dies (b1
#                      takes over), then b1 dies: b2 recovers every connection from the handshake
#                      facts the group gave it (none inferred), byte-exact.
#   witness-partition  2 backups + witness.  The primary is pulled, b1 takes over; then b1 is cut
#                      off from b2 and the witness (cluster traffic only: its data path stays):
#                      b1 stops, b2 takes over; the cut heals: b1 stands down, stays standby.
#   partition3         3 backups; b3 is the most preferred (p0) but cut off from the other two
#                      before the primary dies: it sees the primary die, and never acts; b1 (p1)
#                      takes over.
#   wrong-key          3 backups; b3 (p0) has another authkey: it never joins, never acts, and
#                      its log says why; b1 takes over.
#
# Judged: every connection byte-exact across every server that carried it (verify_chain.py),
# the hub capture and the logs (membership_invariants.py: never two MACs for the primary's IP
# within 50 ms, epochs never backwards, one active node per epoch), and each scenario's own
# expectations from the logs.  Last line `membership: N passed, M failed` (connections); exit 0
# only if all passed and every check held.  Needs root; fails loudly (never skips) without it.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ORIG_ARGS=("$@")
SCENARIO="" MODE=reqresp CONNS=40 BIN="$ROOT/build/bin/migware" KEEP=0 WORKDIR="" TIMINGS=""
PORT=7000 DURATION=14 RATE=400
usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --scenario) SCENARIO=${2:-}; shift 2;;
        --mode) MODE=${2:-}; shift 2;;
        --connections) CONNS=${2:-}; shift 2;;
        --migware) BIN=${2:-}; shift 2;;
        --keep) KEEP=1; shift;;
        --work) WORKDIR=${2:-}; KEEP=1; shift 2;;
        --timings) TIMINGS=${2:-}; shift 2;;
        -h|--help) usage;;
        *) echo "membership: unknown argument '$1'" >&2; usage;;
    esac
done
case $SCENARIO in
    succession|witness-partition) BACKUPS=2 WITNESS=1;;
    partition3|wrong-key|succession3|late-joiner) BACKUPS=3 WITNESS=0;;
    *) echo "membership: --scenario succession|succession3|late-joiner|witness-partition|partition3|wrong-key" >&2; usage;;
esac
[[ $MODE == push || $MODE == reqresp ]] || { echo "membership: --mode push|reqresp" >&2; exit 2; }
[[ $CONNS =~ ^[0-9]+$ && $CONNS -ge 1 && $CONNS -le 500 ]] || { echo "membership: --connections 1..500" >&2; exit 2; }

RUN_BOUND=200
MW_TAG=membership MW_BOUND_VAR=MWM_BOUNDED
# shellcheck source=membership_lib.sh
source "$HERE/membership_lib.sh"
mw_bound "$0" "${ORIG_ARGS[@]}"
mw_traps

mw_preflight mwm
log "scenario=$SCENARIO mode=$MODE connections=$CONNS backups=$BACKUPS witness=$WITNESS prefix=$LAB_PREFIX work=$WORK"
mw_lab_up

# --- the cluster
case $SCENARIO in
    succession|witness-partition) PRIO=([1]=0 [2]=1);;
    succession3|late-joiner) PRIO=([1]=0 [2]=1 [3]=2);;
    partition3|wrong-key) PRIO=([1]=1 [2]=2 [3]=0);;
esac
mw_cluster_init
OTHER_KEY="$WORK/cluster/other.key"
if [[ $SCENARIO == wrong-key ]]; then
    cluster_keygen "$OTHER_KEY" || final_fail keygen
    MW_AUTHKEY[3]=$OTHER_KEY
fi
JOINED=$BACKUPS; [[ $SCENARIO == wrong-key ]] && JOINED=2
mw_cluster_start "$JOINED"

# --- servers and migware
mw_servers_up
MW_LATE=0; [[ $SCENARIO == late-joiner ]] && MW_LATE=2    # b2 starts once the connections are open
for (( i = 1; i <= BACKUPS; i++ )); do [[ $i -eq $MW_LATE ]] || start_migware "$i" "b$i"; done
if [[ $SCENARIO != wrong-key ]]; then mw_wait_joined all; else mw_wait_joined; fi

# --- traffic
mw_start_client "$DURATION" "$RATE"

case $SCENARIO in
    late-joiner)
        sleep_until 1      # every connection is open (the client connects them all before its traffic)
        start_migware 2 b2
        wait_for 10 "b2 joined" in_log "${MIG_LOG[b2]}" 'event=membership_role .*role=standby .*members=3' \
            || final_fail "the late b2 never joined: $(grep membership_ "${MIG_LOG[b2]}" | tail -n 3)"
        log "b2 joined late (t+1 s), after every handshake"
        sleep_until 3; pull_primary
        wait_for 8 "b1 proxy" became b1 proxy || final_fail "b1 never reached proxy"
        sleep_until 6
        kill_backup 1
        wait_for 8 "b2 proxy" became b2 proxy || final_fail "b2 never reached proxy after b1 died"
        ;;
    partition3)
        sleep_until 1
        cluster_cut 3 || final_fail "cut b3"
        wait_for 5 "b3 observer" in_log "${MIG_LOG[b3]}" 'event=membership_role .*role=observer .*quorate=no' \
            || final_fail "b3 never became an observer after the cut"
        log "b3 cut off from the cluster (data path intact): observer"
        sleep_until 3; pull_primary
        wait_for 8 "b1 proxy" became b1 proxy || final_fail "b1 never reached proxy"
        ;;
    wrong-key)
        sleep_until 3; pull_primary
        wait_for 8 "b1 proxy" became b1 proxy || final_fail "b1 never reached proxy"
        ;;
    succession|succession3)
        sleep_until 3; pull_primary
        wait_for 8 "b1 proxy" became b1 proxy || final_fail "b1 never reached proxy"
        sleep_until 6
        kill_backup 1
        wait_for 8 "b2 proxy" became b2 proxy || final_fail "b2 never reached proxy after b1 died"
        sleep_until 9
        cluster_link_up 1
        cluster_start_node 1 || final_fail "corosync 1 restart"
        start_migware 1 b1again
        wait_for 10 "b1 back in the group" in_log "${MIG_LOG[b1again]}" "event=membership_role .*role=standby .*members=$BACKUPS" \
            || final_fail "the returning b1 never joined as standby: $(grep membership_ "${MIG_LOG[b1again]}" | tail -n 3)"
        log "b1 back after $(elapsed)s: standby"
        ;;
    witness-partition)
        sleep_until 3; pull_primary
        wait_for 8 "b1 proxy" became b1 proxy || final_fail "b1 never reached proxy"
        sleep_until 6
        cluster_cut 1 || final_fail "cut b1"
        CUT_WALL=$(date +%s.%N)
        log "b1 (active) cut off from b2 and the witness at t+6 (its data path intact)"
        wait_for 8 "b2 proxy" became b2 proxy || final_fail "b2 never reached proxy after the cut"
        sleep_until 9
        cluster_heal 1 || final_fail "heal b1"
        wait_for 10 "b1 stood down" in_log "${MIG_LOG[b1]}" 'event=takeover_stood_down' \
            || final_fail "b1 never stood down after the heal: $(grep membership_ "${MIG_LOG[b1]}" | tail -n 4)"
        log "cut healed; b1 stood down"
        ;;
esac

mw_stop_all

# --- verdicts
case $SCENARIO in
    succession|succession3|witness-partition|late-joiner) EXPECT=primary,b1,b2;;
    *) EXPECT=primary,b1;;
esac
mw_chain "$EXPECT"
mw_invariants

case $SCENARIO in
    partition3)
        check "b1-took-over-once" test "$(takeovers b1)" -eq 1
        check "b2-never" test "$(takeovers b2)" -eq 0
        check "b3-never-though-best-ranked" test "$(takeovers b3)" -eq 0
        check "b3-saw-the-primary-die" in_log "${MIG_LOG[b3]}" 'event=monitor .*health=down'
        ;;
    late-joiner)
        check "b1-took-over-once" test "$(takeovers b1)" -eq 1
        check "b2-took-over-once" test "$(takeovers b2)" -eq 1
        check "b3-never" test "$(takeovers b3)" -eq 0
        check "b2-saw-no-handshake" in_log "${MIG_LOG[b2]}" 'event=membership_facts .*connections_learnt=[1-9]'
        check "b2-recovered-from-facts" in_log "${MIG_LOG[b2]}" "event=recovery_start .* restored=$CONNS inferred=0"
        ;;
    wrong-key)
        check "b1-took-over-once" test "$(takeovers b1)" -eq 1
        check "b2-never" test "$(takeovers b2)" -eq 0
        check "b3-never" test "$(takeovers b3)" -eq 0
        check "b3-never-joined" bash -c "! grep -Eq 'event=membership_view .*nodes=\\[[0-9]+,' '${MIG_LOG[b3]}'"
        check "b3-says-why" in_log "${MIG_LOG[b3]}" 'event=membership_alone reason="alone and inquorate: 1 of 3 votes'
        if cluster_log_grep 3 'Digest does not match' >/dev/null 2>&1; then log "ok   corosync-3-log: $(cluster_log_grep 3 'Digest does not match' | head -n 1)"; else log "FAIL corosync-3-log"; FAILS+=(corosync-3-log); fi
        ;;
    succession|succession3)
        check "b1-took-over-once" test "$(takeovers b1)" -eq 1
        [[ $BACKUPS -eq 3 ]] && check "b3-never" test "$(takeovers b3)" -eq 0
        check "b2-took-over-once" test "$(takeovers b2)" -eq 1
        check "b2-succession" in_log "${MIG_LOG[b2]}" 'event=transition .*to=recovery .*succession'
        check "b1-returned-standby" in_log "${MIG_LOG[b1again]}" 'event=membership_role .*role=standby .*epoch=2 .*active=2'
        check "b1-returned-never-acted" test "$(takeovers b1again)" -eq 0
        check "b1-returned-learnt-the-table" in_log "${MIG_LOG[b1again]}" 'event=membership_facts .*connections_learnt=[1-9]'
        ;;
    witness-partition)
        check "b1-took-over-once" test "$(takeovers b1)" -eq 1
        check "b2-took-over-once" test "$(takeovers b2)" -eq 1
        check "b1-stopped-on-the-cut" in_log "${MIG_LOG[b1]}" 'event=membership_(suspended|lost_quorum)'
        check "b1-stood-down" in_log "${MIG_LOG[b1]}" 'event=takeover_stood_down'
        check "b1-standby-after-heal" in_log "${MIG_LOG[b1]}" 'event=membership_role .*role=standby .*epoch=2 .*active=2'
        ;;
esac
mw_show_events
if [[ -n $TIMINGS ]]; then
    {
        echo "scenario=$SCENARIO backups=$BACKUPS witness=$WITNESS"
        echo "pull_wall=${PULL_WALL:-}"
        echo "b1_dead_wall=${B_DEAD_WALL[1]:-}"
        echo "cut_wall=${CUT_WALL:-}"
        for name in "${!MIG_LOG[@]}"; do
            "$PY" - "$name" "${MIG_LOG[$name]}" <<'PYEOF'
import calendar, re, sys
name, path = sys.argv[1:3]
for line in open(path, errors="replace"):
    m = re.match(r"ts=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z .*event=transition .*to=(recovery|proxy)", line)
    if m:
        t = calendar.timegm(__import__("time").strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) + float(m.group(2) or 0)
        print("%s_%s_wall=%.6f" % (name, m.group(3), t))
PYEOF
        done
        sed -n 's/^membership_invariants: M3 \([a-z0-9]*\) ([^)]*) spoke for [0-9.]* from \([0-9.]*\) to \([0-9.]*\) .*/burst \1 \2 \3/p' "$WORK/invariants.out"
    } >"$TIMINGS"
fi
mw_finish
