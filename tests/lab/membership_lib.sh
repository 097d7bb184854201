#!/usr/bin/env bash
# The shared machinery of the multi-backup lab tests (issue 12): tests/lab/membership.sh (the
# scenarios) and tests/lab/membership_chaos.sh (seeded random fault schedules) source it.
#
# The caller sets, before sourcing:
#   HERE ROOT            tests/lab and the repository root
#   MW_TAG               the log/verdict tag ("membership", "membership_chaos")
#   MW_BOUND_VAR         the environment variable that marks the bounded re-exec (MWM_BOUNDED)
#   BACKUPS WITNESS      the topology (LAB_BACKUPS, LAB_WITNESS)
#   MODE CONNS PORT BIN KEEP WORKDIR RUN_BOUND
# and after sourcing: mw_bound "$0" "${ORIG_ARGS[@]}" (re-exec under timeout), mw_traps.
#
# It sources scripts/lab.sh and scripts/cluster.sh (hub topology, LAB_BACKUPS/LAB_WITNESS).
#
# Functions (a fatal problem calls final_fail, which prints `$MW_TAG: 0 passed, N failed`):
#   log MSG / elapsed / final_fail MSG / check NAME cmd...
#   spawn NS SECS OUT ERR cmd...   a bounded process in a namespace; LAST_PID, OWN_PIDS
#   stop_pid PID SECS [SIG]        TERM (or SIG), then KILL; reaps; STOP_RC
#   running PID / real_pid PID     one of our jobs / the migware under ip netns exec + timeout
#   wait_for SECS WHAT cmd...      poll every 20 ms
#   in_log FILE RE / count_in_log FILE RE
#   mw_preflight SHORT             root, tools, binary, work dir, lab_init SHORT$$-
#   mw_lab_up                      lab_up, the MACs, the hub capture (corosync traffic filtered)
#   mw_cluster_init / mw_cluster_start [JOINED]   one corosync per backup (MW_AUTHKEY[I]
#                                  overrides a node's key), the witness, until quorate
#   mw_servers_up                  traffic.py servers on the primary and every backup
#   start_migware I NAME           backup I's migware (priority PRIO[I]), log $WORK/NAME.log
#   mw_wait_joined [all]           every migware standby/observer (all: with every member)
#   mw_start_client DURATION RATE [REPLY_TIMEOUT]   traffic.py client; TRAFFIC_T0
#   sleep_until T / pull_primary / became NAME STATE / takeovers NAME
#   mw_stop_all                    wait for the client, stop migware (exit codes checked),
#                                  servers and the capture
#   mw_chain [EXPECT]              verify_chain.py over every server dir; chain_rc
#   mw_invariants                  membership_invariants.py over the capture and every log
#   mw_show_events / mw_finish     the event summary / the last line and the exit code
# shellcheck disable=SC2034  # several variables are the caller's

export LAB_TOPOLOGY=hub LAB_BACKUPS=$BACKUPS LAB_WITNESS=$WITNESS
# shellcheck source=../../scripts/lab.sh
source "$ROOT/scripts/lab.sh"
# shellcheck source=../../scripts/cluster.sh
source "$ROOT/scripts/cluster.sh"
PY=$(command -v python3) || { echo "$MW_TAG: python3 missing" >&2; exit 1; }

# mw_bound CMD... : re-exec the caller once under timeout (the whole run is bounded)
mw_bound() {
    if [[ -z ${!MW_BOUND_VAR:-} ]]; then
        export "$MW_BOUND_VAR=$RUN_BOUND"
        exec timeout --foreground -k 10 "$RUN_BOUND" "$@"
    fi
}

log() { printf '%s: %s\n' "$MW_TAG" "$*" >&2; }
T0=$(date +%s.%N)
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
WORK="" OWN_PIDS=() FINAL=0 FAILS=()
declare -A MIG_PID SRV_PID MIG_LOG MAC PRIO MW_AUTHKEY

final_fail() {
    log "ERROR: $*"
    [[ $FINAL -eq 0 ]] && { echo "$MW_TAG: 0 passed, $CONNS failed"; FINAL=1; }
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
    local rc=$? pid rp
    set +e; trap - EXIT INT TERM
    # a migware left stopped (SIGSTOP) by a fault must see the TERM
    for pid in "${OWN_PIDS[@]}"; do
        running "$pid" || continue
        rp=$(real_pid "$pid") && kill -CONT "$rp" 2>/dev/null
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${OWN_PIDS[@]}"; do stop_pid "$pid" 3; done
    cluster_down 2>/dev/null
    if [[ -n ${LAB_PREFIX:-} ]]; then
        lab_down
        if ip netns list 2>/dev/null | grep -q "^${LAB_PREFIX}"; then log "ERROR: namespaces ${LAB_PREFIX}* left"; rc=1; fi
    fi
    [[ -n $WORK && -d $WORK && $KEEP -eq 0 ]] && rm -rf "$WORK"
    [[ $FINAL -eq 0 ]] && { echo "$MW_TAG: 0 passed, $CONNS failed"; rc=1; }
    exit $rc
}
mw_traps() {
    trap cleanup EXIT
    trap 'log "interrupted"; exit 130' INT
    trap 'log "terminated (run bound ${!MW_BOUND_VAR}s?)"; exit 143' TERM
}

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
check() { # NAME cmd... : an expectation
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

# mw_preflight SHORT : checks (never skips), the work dir, the lab's names (SHORT$$-)
mw_preflight() {
    local short=$1
    [[ $(id -u) -eq 0 ]] || final_fail "needs root (network namespaces, corosync); not skipping"
    lab_check_tools || final_fail "missing tools"
    cluster_check_tools || final_fail "missing corosync tools (scripts/setup.sh installs them)"
    [[ -x $BIN ]] || final_fail "no migware binary at $BIN"
    WORKBASE=/dev/shm; [[ -w $WORKBASE ]] || WORKBASE=/tmp
    if [[ -n $WORKDIR ]]; then mkdir -p "$WORKDIR" && WORK=$(cd "$WORKDIR" && pwd) || final_fail "--work"
    else WORK=$(mktemp -d "$WORKBASE/$short$$.XXXXXX"); fi
    lab_init "$short$$-" || final_fail lab_init
}

# mw_lab_up : the hub lab, every host's MAC, the hub capture
mw_lab_up() {
    local i
    lab_up || final_fail "lab_up failed"
    MAC_PRIMARY=$(lab_mac "$LAB_NS_PRIMARY") MAC_CLIENT=$(lab_mac "$LAB_NS_CLIENT")
    for (( i = 1; i <= BACKUPS; i++ )); do MAC[$i]=$(lab_mac "$(lab_backup_ns $i)"); done
    spawn "$LAB_NS_HUB" "$RUN_BOUND" /dev/null "$WORK/tcpdump-hub.log" \
        tcpdump -i br0 -nn -s 128 --immediate-mode -U -B 65536 -Z root -w "$WORK/hub.pcap" "not udp port 5405 and not tcp port 5403"
    HUBCAP_PID=$LAST_PID
    wait_for 5 "hub tcpdump" grep -qs 'listening on' "$WORK/tcpdump-hub.log" || final_fail "hub tcpdump"
}

mw_cluster_init() {
    cluster_init "$WORK/cluster" || final_fail cluster_init
    cluster_write_config || final_fail cluster_write_config
}
# mw_cluster_start [JOINED] : every corosync (MW_AUTHKEY[I]: another key), the witness; the
# first JOINED nodes (default all) quorate with JOINED members
mw_cluster_start() {
    local joined=${1:-$BACKUPS} i
    for (( i = 1; i <= BACKUPS; i++ )); do
        if [[ -n ${MW_AUTHKEY[$i]:-} ]]; then
            cluster_start_node "$i" --authkey "${MW_AUTHKEY[$i]}" || final_fail "corosync $i"
        else
            cluster_start_node "$i" || final_fail "corosync $i"
        fi
    done
    [[ $WITNESS -eq 1 ]] && { cluster_start_witness || final_fail "qnetd"; }
    for (( i = 1; i <= joined; i++ )); do
        cluster_wait_quorate "$i" 15 || final_fail "backup $i never quorate: $(cluster_state $i)"
        cluster_wait_members "$i" "$joined" 15 || final_fail "backup $i never saw $joined members: $(cluster_state $i)"
    done
    log "cluster up after $(elapsed)s: $(for (( i = 1; i <= BACKUPS; i++ )); do printf 'b%d[%s] ' "$i" "$(cluster_state $i)"; done)"
}

# mw_servers_up : traffic.py servers, primary and b1..bN, logs in $WORK/NAME
mw_servers_up() {
    local name ns
    for name in primary $(seq -f 'b%g' 1 "$BACKUPS"); do
        if [[ $name == primary ]]; then ns=$LAB_NS_PRIMARY; else ns=$(lab_backup_ns "${name#b}"); fi
        mkdir -p "$WORK/$name"
        spawn "$ns" "$RUN_BOUND" "$WORK/server-$name.out" "$WORK/server-$name.err" \
            "$PY" "$HERE/traffic.py" server --mode "$MODE" --port "$PORT" --log "$WORK/$name" \
            --timeout "$RUN_BOUND" --ready-file "$WORK/server-$name.ready"
        SRV_PID[$name]=$LAST_PID
        wait_for 5 "$name server" test -s "$WORK/server-$name.ready" || final_fail "$name server: $(tail -n 3 "$WORK/server-$name.err")"
    done
}

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

# mw_wait_joined [all] : every b1..bN migware in the group (all: standby with every member);
# MW_LATE=I leaves backup I out (its migware starts later)
mw_wait_joined() {
    local i want=$BACKUPS
    [[ ${MW_LATE:-0} -gt 0 ]] && want=$(( BACKUPS - 1 ))
    for (( i = 1; i <= BACKUPS; i++ )); do
        [[ $i -eq ${MW_LATE:-0} ]] && continue
        wait_for 10 "b$i migware" in_log "${MIG_LOG[b$i]}" 'event=membership_role .*role=(standby|observer)' \
            || final_fail "b$i's migware never joined: $(tail -n 5 "${MIG_LOG[b$i]}")"
    done
    if [[ ${1:-} == all ]]; then
        for (( i = 1; i <= BACKUPS; i++ )); do
            [[ $i -eq ${MW_LATE:-0} ]] && continue
            wait_for 10 "b$i standby with $want members" in_log "${MIG_LOG[b$i]}" "event=membership_role .*role=standby .*members=$want" \
                || final_fail "b$i never saw all $want members: $(grep membership_ "${MIG_LOG[b$i]}" | tail -n 3)"
        done
    fi
    log "every migware in the group after $(elapsed)s"
}

# kill_backup I : backup I dies: its cable out, then its migware (the real process), its
# corosync (and qdevice) and its server killed; B_DEAD_WALL[I] is when
kill_backup() {
    local i=$1 name=b$1 real
    cluster_link_down "$i"
    B_DEAD_WALL[$i]=$(date +%s.%N)
    real=$(real_pid "${MIG_PID[$name]}") && kill -KILL "$real"
    cluster_kill_node "$i"
    stop_pid "${SRV_PID[$name]}" 2 KILL
    stop_pid "${MIG_PID[$name]}" 2 KILL
    unset "MIG_PID[$name]"   # killed on purpose: not judged by its exit status
    log "b$i died (cable out, migware, corosync and server killed) at t+$(tplus "${B_DEAD_WALL[$i]}")s"
}
declare -A B_DEAD_WALL

# mw_start_client DURATION RATE [REPLY_TIMEOUT] : traffic starts; TRAFFIC_T0 (wall clock)
mw_start_client() {
    local duration=$1 rate=$2 reply=${3:-6}
    spawn "$LAB_NS_CLIENT" 120 "$WORK/client.out" "$WORK/client.err" \
        "$PY" "$HERE/traffic.py" client --mode "$MODE" --server "$LAB_IP_PRIMARY:$PORT" \
        --connections "$CONNS" --duration "$duration" --rate "$rate" --out "$WORK/client.json" \
        --connect-timeout 20 --close-timeout 6 --reply-timeout "$reply" --start-file "$WORK/client.start"
    CLIENT_PID=$LAST_PID
    wait_for 25 client test -s "$WORK/client.start" || final_fail "the client never started: $(tail -n 3 "$WORK/client.err")"
    log "traffic started after $(elapsed)s"
    TRAFFIC_T0=$(date +%s.%N)
}
sleep_until() { local d; d=$(awk -v a="$TRAFFIC_T0" -v b="$(date +%s.%N)" -v t="$1" 'BEGIN{d = a + t - b; print (d > 0 ? d : 0)}'); sleep "$d"; }
tplus() { awk -v a="$TRAFFIC_T0" -v b="${1:-$(date +%s.%N)}" 'BEGIN{printf "%.2f", b-a}'; }
pull_primary() {
    ip -n "$LAB_NS_HUB" link set p-primary down || final_fail "pull"
    PULL_WALL=$(date +%s.%N)
    log "primary's cable pulled at t+$(tplus "$PULL_WALL")s"
}
became() { # NAME STATE : NAME's engine reached STATE
    in_log "${MIG_LOG[$1]}" "event=transition .*to=$2"
}
takeovers() { count_in_log "${MIG_LOG[$1]}" 'event=transition .*to=recovery'; }

# mw_stop_all : the client's end, then every migware (it must exit 0 on SIGTERM), servers, capture
mw_stop_all() {
    local name
    wait "$CLIENT_PID" 2>/dev/null; client_rc=$?
    log "client finished after $(elapsed)s (exit $client_rc): $(tail -n 1 "$WORK/client.err")"
    sleep 0.3
    # Every migware the test started and did not kill on purpose is judged by its exit status,
    # including one that already ended by itself (a crash, a sanitizer abort): wait still has it.
    for name in "${!MIG_PID[@]}"; do
        running "${MIG_PID[$name]}" || log "migware $name had already exited"
        stop_pid "${MIG_PID[$name]}" 5
        [[ $STOP_RC -eq 0 ]] || { log "FAIL migware $name exited $STOP_RC"; FAILS+=("exit-$name"); }
    done
    for name in "${!SRV_PID[@]}"; do running "${SRV_PID[$name]}" && stop_pid "${SRV_PID[$name]}" 5; done
    stop_pid "$HUBCAP_PID" 5
}

# mw_chain [EXPECT] : verify_chain.py over the primary and every backup server (and the
# MW_EXTRA_SERVERS arguments); chain_rc
MW_EXTRA_SERVERS=()
mw_chain() {
    local expect=${1:-} i
    local servers=(--server "primary=$WORK/primary")
    for (( i = 1; i <= BACKUPS; i++ )); do servers+=(--server "b$i=$WORK/b$i"); done
    servers+=("${MW_EXTRA_SERVERS[@]}")
    [[ -n $expect ]] && servers+=(--expect-servers "$expect")
    "$PY" "$HERE/verify_chain.py" --mode "$MODE" --connections "$CONNS" --client-json "$WORK/client.json" \
        "${servers[@]}" --pull-wall "$PULL_WALL" >"$WORK/chain.out" 2>&1
    chain_rc=$?
    grep -v '^chain: ' "$WORK/chain.out" | tail -n 15 >&2
}

# mw_invariants : M1/M2 (membership_invariants.py) over the hub capture and every migware log
mw_invariants() {
    local i name
    local inv=(--pcap "$WORK/hub.pcap" --primary-ip "$LAB_IP_PRIMARY" --primary-mac "$MAC_PRIMARY" --client-mac "$MAC_CLIENT"
               --primary-dead-after "$PULL_WALL")
    for (( i = 1; i <= BACKUPS; i++ )); do inv+=(--backup-mac "b$i=${MAC[$i]}"); done
    for name in "${!MIG_LOG[@]}"; do inv+=(--log "$name=${MIG_LOG[$name]}"); done
    "$PY" "$HERE/membership_invariants.py" "${inv[@]}" >"$WORK/invariants.out" 2>&1
    inv_rc=$?
    tail -n 12 "$WORK/invariants.out" >&2
    check invariants test "$inv_rc" -eq 0
}

# mw_show_events [LINES] : each log's membership and transition events (the last LINES)
mw_show_events() {
    local name
    for name in "${!MIG_LOG[@]}"; do
        grep -E 'event=(membership_[a-z_]+|transition|takeover_stood_down)' "${MIG_LOG[$name]}" | sed "s/^/  $name: /" | tail -n "${1:-14}" >&2
    done
}

# mw_finish : the last line from verify_chain's verdict; exit 0 only if nothing failed
mw_finish() {
    VERDICT=$(grep '^chain: [0-9]* passed, [0-9]* failed$' "$WORK/chain.out" | tail -n 1)
    [[ -n $VERDICT ]] || { log "verify_chain gave no verdict: $(tail -n 3 "$WORK/chain.out")"; FAILS+=(chain); VERDICT="chain: 0 passed, $CONNS failed"; }
    [[ $chain_rc -eq 0 ]] || FAILS+=(chain)
    log "run took $(elapsed)s"
    echo "$MW_TAG: ${VERDICT#chain: }"; FINAL=1
    if [[ ${#FAILS[@]} -gt 0 ]]; then log "FAILED: ${FAILS[*]}"; exit 1; fi
    exit 0
}
