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
if [[ -z ${MWM_BOUNDED:-} ]]; then
    export MWM_BOUNDED=$RUN_BOUND
    exec timeout --foreground -k 10 "$RUN_BOUND" "$0" "${ORIG_ARGS[@]}"
fi

export LAB_TOPOLOGY=hub LAB_BACKUPS=$BACKUPS LAB_WITNESS=$WITNESS
# shellcheck source=../../scripts/lab.sh
source "$ROOT/scripts/lab.sh"
# shellcheck source=../../scripts/cluster.sh
source "$ROOT/scripts/cluster.sh"
PY=$(command -v python3) || { echo "membership: python3 missing" >&2; exit 1; }

log() { printf 'membership: %s\n' "$*" >&2; }
T0=$(date +%s.%N)
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
WORK="" OWN_PIDS=() FINAL=0 FAILS=()
declare -A MIG_PID SRV_PID MIG_LOG

final_fail() {
    log "ERROR: $*"
    [[ $FINAL -eq 0 ]] && { echo "membership: 0 passed, $CONNS failed"; FINAL=1; }
    exit 1
}
running() { local p; for p in $(jobs -rp); do [[ $p == "$1" ]] && return 0; done; return 1; }
stop_pid() { # PID SECS [SIGNAL]
    local pid=$1 secs=${2:-5} sig=${3:-TERM} i
    [[ -n $pid ]] || return 0
    if running "$pid"; then
        kill "-$sig" "$pid" 2>/dev/null
        for (( i = 0; i < secs * 20; i++ )); do running "$pid" || break; sleep 0.05; done
        running "$pid" && kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null; STOP_RC=$?
    local keep=() p; for p in "${OWN_PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done; OWN_PIDS=("${keep[@]}")
}
cleanup() {
    local rc=$? pid
    set +e; trap - EXIT INT TERM
    for pid in "${OWN_PIDS[@]}"; do running "$pid" && kill -TERM "$pid" 2>/dev/null; done
    for pid in "${OWN_PIDS[@]}"; do stop_pid "$pid" 3; done
    cluster_down 2>/dev/null
    if [[ -n ${LAB_PREFIX:-} ]]; then
        lab_down
        if ip netns list 2>/dev/null | grep -q "^${LAB_PREFIX}"; then log "ERROR: namespaces ${LAB_PREFIX}* left"; rc=1; fi
    fi
    [[ -n $WORK && -d $WORK && $KEEP -eq 0 ]] && rm -rf "$WORK"
    [[ $FINAL -eq 0 ]] && { echo "membership: 0 passed, $CONNS failed"; rc=1; }
    exit $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated (run bound ${MWM_BOUNDED}s?)"; exit 143' TERM

spawn() { # NS SECS OUT ERR cmd...
    local ns=$1 secs=$2 out=$3 err=$4; shift 4
    ip netns exec "$ns" timeout -k 3 "$secs" "$@" >"$out" 2>"$err" &
    LAST_PID=$!; OWN_PIDS+=("$LAST_PID")
}
wait_for() { # SECS WHAT cmd... : poll every 20 ms
    local secs=$1 what=$2 i; shift 2
    for (( i = 0; i < secs * 50; i++ )); do "$@" && return 0; sleep 0.02; done
    log "$what: not within ${secs}s"; return 1
}
check() { # NAME cmd... : a scenario expectation
    local name=$1; shift
    if "$@"; then log "ok   $name"; else log "FAIL $name"; FAILS+=("$name"); fi
}
# the real migware process under `ip netns exec -> timeout -> migware`
real_pid() {
    local p=$1 c i
    for (( i = 0; i < 4; i++ )); do
        [[ $(readlink -f "/proc/$p/exe" 2>/dev/null) == "$(readlink -f "$BIN")" ]] && { echo "$p"; return 0; }
        c=$(cat /proc/"$p"/task/*/children 2>/dev/null | awk '{print $1}'); [[ -n $c ]] || return 1; p=$c
    done
    return 1
}
in_log() { grep -Eq "$2" "$1" 2>/dev/null; }
count_in_log() { grep -Ec "$2" "$1" 2>/dev/null || true; }

[[ $(id -u) -eq 0 ]] || final_fail "needs root (network namespaces, corosync); not skipping"
lab_check_tools || final_fail "missing tools"
cluster_check_tools || final_fail "missing corosync tools (scripts/setup.sh installs them)"
[[ -x $BIN ]] || final_fail "no migware binary at $BIN"
WORKBASE=/dev/shm; [[ -w $WORKBASE ]] || WORKBASE=/tmp
if [[ -n $WORKDIR ]]; then mkdir -p "$WORKDIR" && WORK=$(cd "$WORKDIR" && pwd) || final_fail "--work"; else WORK=$(mktemp -d "$WORKBASE/mwm$$.XXXXXX"); fi
lab_init "mwm$$-" || final_fail lab_init
log "scenario=$SCENARIO mode=$MODE connections=$CONNS backups=$BACKUPS witness=$WITNESS prefix=$LAB_PREFIX work=$WORK"
lab_up || final_fail "lab_up failed"

MAC_PRIMARY=$(lab_mac "$LAB_NS_PRIMARY") MAC_CLIENT=$(lab_mac "$LAB_NS_CLIENT")
declare -A MAC
for (( i = 1; i <= BACKUPS; i++ )); do MAC[$i]=$(lab_mac "$(lab_backup_ns $i)"); done
spawn "$LAB_NS_HUB" "$RUN_BOUND" /dev/null "$WORK/tcpdump-hub.log" \
    tcpdump -i br0 -nn -s 128 --immediate-mode -U -B 65536 -Z root -w "$WORK/hub.pcap" "not udp port 5405 and not tcp port 5403"
HUBCAP_PID=$LAST_PID
wait_for 5 "hub tcpdump" grep -qs 'listening on' "$WORK/tcpdump-hub.log" || final_fail "hub tcpdump"

# --- the cluster
declare -A PRIO
case $SCENARIO in
    succession|witness-partition) PRIO=([1]=0 [2]=1);;
    succession3|late-joiner) PRIO=([1]=0 [2]=1 [3]=2);;
    partition3|wrong-key) PRIO=([1]=1 [2]=2 [3]=0);;
esac
cluster_init "$WORK/cluster" || final_fail cluster_init
cluster_write_config || final_fail cluster_write_config
OTHER_KEY="$WORK/cluster/other.key"
for (( i = 1; i <= BACKUPS; i++ )); do
    if [[ $SCENARIO == wrong-key && $i -eq 3 ]]; then
        cluster_keygen "$OTHER_KEY" || final_fail keygen
        cluster_start_node 3 --authkey "$OTHER_KEY" || final_fail "corosync 3"
    else
        cluster_start_node "$i" || final_fail "corosync $i"
    fi
done
[[ $WITNESS -eq 1 ]] && { cluster_start_witness || final_fail "qnetd"; }
JOINED=$BACKUPS; [[ $SCENARIO == wrong-key ]] && JOINED=2
for (( i = 1; i <= JOINED; i++ )); do
    cluster_wait_quorate "$i" 15 || final_fail "backup $i never quorate: $(cluster_state $i)"
    cluster_wait_members "$i" "$JOINED" 15 || final_fail "backup $i never saw $JOINED members: $(cluster_state $i)"
done
log "cluster up after $(elapsed)s: $(for (( i = 1; i <= BACKUPS; i++ )); do printf 'b%d[%s] ' "$i" "$(cluster_state $i)"; done)"

# --- servers and migware
for name in primary $(seq -f 'b%g' 1 "$BACKUPS"); do
    if [[ $name == primary ]]; then ns=$LAB_NS_PRIMARY; else ns=$(lab_backup_ns "${name#b}"); fi
    mkdir -p "$WORK/$name"
    spawn "$ns" "$RUN_BOUND" "$WORK/server-$name.out" "$WORK/server-$name.err" \
        "$PY" "$HERE/traffic.py" server --mode "$MODE" --port "$PORT" --log "$WORK/$name" \
        --timeout "$RUN_BOUND" --ready-file "$WORK/server-$name.ready"
    SRV_PID[$name]=$LAST_PID
    wait_for 5 "$name server" test -s "$WORK/server-$name.ready" || final_fail "$name server: $(tail -n 3 "$WORK/server-$name.err")"
done
start_migware() { # I LOGNAME
    local i=$1 name=$2 ns
    ns=$(lab_backup_ns "$i")
    mkdir -p "$WORK/mig$i"
    MIG_LOG[$name]="$WORK/$name.log"
    spawn "$ns" "$RUN_BOUND" "$WORK/$name.out" "${MIG_LOG[$name]}" \
        "$BIN" --interface eth0 --primary "$LAB_IP_PRIMARY" --backup "$(lab_backup_ip "$i")" --port "$PORT" \
        --control.socket "$WORK/mig$i/control.sock" --state-file "" \
        --membership corosync --membership.priority "${PRIO[$i]}"
    MIG_PID[$name]=$LAST_PID
}
LATE=0; [[ $SCENARIO == late-joiner ]] && LATE=2    # b2 starts once the connections are open
for (( i = 1; i <= BACKUPS; i++ )); do [[ $i -eq $LATE ]] || start_migware "$i" "b$i"; done
for (( i = 1; i <= BACKUPS; i++ )); do
    [[ $i -eq $LATE ]] && continue
    wait_for 10 "b$i migware" in_log "${MIG_LOG[b$i]}" 'event=membership_role .*role=(standby|observer)' \
        || final_fail "b$i's migware never joined: $(tail -n 5 "${MIG_LOG[b$i]}")"
done
if [[ $SCENARIO != wrong-key ]]; then
    for (( i = 1; i <= BACKUPS; i++ )); do
        [[ $i -eq $LATE ]] && continue
        WANT=$BACKUPS; [[ $LATE -gt 0 ]] && WANT=$(( BACKUPS - 1 ))
        wait_for 10 "b$i standby with $WANT members" in_log "${MIG_LOG[b$i]}" "event=membership_role .*role=standby .*members=$WANT" \
            || final_fail "b$i never saw all $WANT members: $(grep membership_ "${MIG_LOG[b$i]}" | tail -n 3)"
    done
fi
log "every migware in the group after $(elapsed)s"

# --- traffic
spawn "$LAB_NS_CLIENT" 120 "$WORK/client.out" "$WORK/client.err" \
    "$PY" "$HERE/traffic.py" client --mode "$MODE" --server "$LAB_IP_PRIMARY:$PORT" \
    --connections "$CONNS" --duration "$DURATION" --rate "$RATE" --out "$WORK/client.json" \
    --connect-timeout 20 --close-timeout 6 --reply-timeout 6 --start-file "$WORK/client.start"
CLIENT_PID=$LAST_PID
wait_for 25 client test -s "$WORK/client.start" || final_fail "the client never started: $(tail -n 3 "$WORK/client.err")"
log "traffic started after $(elapsed)s"
TRAFFIC_T0=$(date +%s.%N)
sleep_until() { local d; d=$(awk -v a="$TRAFFIC_T0" -v b="$(date +%s.%N)" -v t="$1" 'BEGIN{d = a + t - b; print (d > 0 ? d : 0)}'); sleep "$d"; }
pull_primary() {
    ip -n "$LAB_NS_HUB" link set p-primary down || final_fail "pull"
    PULL_WALL=$(date +%s.%N)
    log "primary's cable pulled at t+$(awk -v a="$TRAFFIC_T0" -v b="$PULL_WALL" 'BEGIN{printf "%.2f", b-a}')s"
}
became() { # NAME STATE : NAME's engine reached STATE
    in_log "${MIG_LOG[$1]}" "event=transition .*to=$2"
}

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
        cluster_link_down 1
        B1_DEAD_WALL=$(date +%s.%N)
        B1_REAL=$(real_pid "${MIG_PID[b1]}") && kill -KILL "$B1_REAL"
        cluster_kill_node 1
        stop_pid "${SRV_PID[b1]}" 2 KILL
        stop_pid "${MIG_PID[b1]}" 2 KILL
        log "b1 died at t+6"
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
        cluster_link_down 1
        B1_DEAD_WALL=$(date +%s.%N)
        B1_REAL=$(real_pid "${MIG_PID[b1]}") && kill -KILL "$B1_REAL"
        cluster_kill_node 1
        stop_pid "${SRV_PID[b1]}" 2 KILL
        stop_pid "${MIG_PID[b1]}" 2 KILL
        log "b1 died (cable out, migware, corosync and server killed) at t+$(awk -v a="$TRAFFIC_T0" -v b="$B1_DEAD_WALL" 'BEGIN{printf "%.2f", b-a}')s"
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

wait "$CLIENT_PID" 2>/dev/null; client_rc=$?
log "client finished after $(elapsed)s (exit $client_rc): $(tail -n 1 "$WORK/client.err")"
sleep 0.3
for name in "${!MIG_PID[@]}"; do
    running "${MIG_PID[$name]}" || continue
    stop_pid "${MIG_PID[$name]}" 5
    [[ $STOP_RC -eq 0 ]] || { log "FAIL migware $name exited $STOP_RC"; FAILS+=("exit-$name"); }
done
for name in "${!SRV_PID[@]}"; do running "${SRV_PID[$name]}" && stop_pid "${SRV_PID[$name]}" 5; done
stop_pid "$HUBCAP_PID" 5

# --- verdicts
SERVERS=(--server "primary=$WORK/primary")
for (( i = 1; i <= BACKUPS; i++ )); do SERVERS+=(--server "b$i=$WORK/b$i"); done
case $SCENARIO in
    succession|succession3|witness-partition|late-joiner) EXPECT=primary,b1,b2;;
    *) EXPECT=primary,b1;;
esac
"$PY" "$HERE/verify_chain.py" --mode "$MODE" --connections "$CONNS" --client-json "$WORK/client.json" \
    "${SERVERS[@]}" --expect-servers "$EXPECT" --pull-wall "$PULL_WALL" >"$WORK/chain.out" 2>&1
chain_rc=$?
grep -v '^chain: ' "$WORK/chain.out" | tail -n 15 >&2
INV=(--pcap "$WORK/hub.pcap" --primary-ip "$LAB_IP_PRIMARY" --primary-mac "$MAC_PRIMARY" --client-mac "$MAC_CLIENT"
     --primary-dead-after "$PULL_WALL")
for (( i = 1; i <= BACKUPS; i++ )); do INV+=(--backup-mac "b$i=${MAC[$i]}"); done
for name in "${!MIG_LOG[@]}"; do INV+=(--log "$name=${MIG_LOG[$name]}"); done
"$PY" "$HERE/membership_invariants.py" "${INV[@]}" >"$WORK/invariants.out" 2>&1
inv_rc=$?
tail -n 12 "$WORK/invariants.out" >&2
check invariants test "$inv_rc" -eq 0

takeovers() { count_in_log "${MIG_LOG[$1]}" 'event=transition .*to=recovery'; }
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
for name in "${!MIG_LOG[@]}"; do
    grep -E 'event=(membership_[a-z_]+|transition|takeover_stood_down)' "${MIG_LOG[$name]}" | sed "s/^/  $name: /" | tail -n 14 >&2
done
if [[ -n $TIMINGS ]]; then
    {
        echo "scenario=$SCENARIO backups=$BACKUPS witness=$WITNESS"
        echo "pull_wall=${PULL_WALL:-}"
        echo "b1_dead_wall=${B1_DEAD_WALL:-}"
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
VERDICT=$(grep '^chain: [0-9]* passed, [0-9]* failed$' "$WORK/chain.out" | tail -n 1)
[[ -n $VERDICT ]] || { log "verify_chain gave no verdict: $(tail -n 3 "$WORK/chain.out")"; FAILS+=(chain); VERDICT="chain: 0 passed, $CONNS failed"; }
[[ $chain_rc -eq 0 ]] || FAILS+=(chain)
log "run took $(elapsed)s"
echo "membership: ${VERDICT#chain: }"; FINAL=1
if [[ ${#FAILS[@]} -gt 0 ]]; then log "FAILED: ${FAILS[*]}"; exit 1; fi
exit 0
