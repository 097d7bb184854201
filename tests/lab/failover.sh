#!/usr/bin/env bash
# One end-to-end failover scenario in the hub lab (issue 4).  See tests/lab/README.md.
#
#   tests/lab/failover.sh --mode push|reqresp --connections N [--no-options] [--no-pull]
#                         [--migware BIN] [--no-migware] [--duration S] [--rate R]
#                         [--seed N] [--keep] [--show N] [--topology hub|mirror]
#          measurement options (scripts/bench_failover.sh): [--work DIR] [--pull-at S]
#          [--migware-arg ARG]... [--direct-connections N] [--direct-rate R] [--backup-capture]
#          [--plug-after S]   plug the primary's cable back in S seconds after the pull
#          [--stop-primary-app S]  and stop the primary's server S seconds after that (its
#                             stale sockets close: FIN, or RST with unread data)
#   churn:  tests/lab/failover.sh --mode churn --connections W [--requests K] [--gap S]
#           [--lenient-close] [--replay-unanswered] [...]   W workers open, use (K request/reply pairs) and close
#           short connections in a loop for --duration; the verdict counts connection attempts
#   faults (issue 10): [--fault AT:KIND:DUR]...  AT s after the traffic starts, for DUR s; KIND =
#           backup-flap (p-backup down), pause (SIGSTOP migware), partition (every frame of
#           p-primary dropped by tc, carrier up), pull (p-primary down for good; once, last).
#           Any --fault replaces the default pull, turns on --hub-capture and runs
#           tests/lab/invariants.py on it.  [--hub-capture]  tcpdump on the hub's br0.
#           icmp-off (the primary's kernel ignores echo: net.ipv4.icmp_echo_ignore_all=1 in its
#           namespace; it still answers ARP).  [--primary-icmp-silent]  the same from the start.
#           [--expect-veto-or-rollback] [--expect-rollback] [--expect-no-transition]  checks of
#           migware's log (event=monitor_veto|takeover_rolled_back; no event=transition at all)
#   captures for replay (issue 11): [--capture-snaplen N]  snaplen of the hub and backup captures
#           (default 128; 0 = whole frames, for `migware replay --failover-at`)
#   replay modes (issue 13): [--recovery-mode push|aligned|full]  migware --recovery.mode M, and
#           verify.py --replay-mode M (aligned: the backup's bytes start at the client's current
#           request; full: at the stream's first byte); --replay-unanswered = --recovery-mode aligned.
#           [--sample-migware N]  N samples of migware's counters and VmRSS during the traffic
#           before the pull (and one before the client connects) into WORK/migware-samples.jsonl
#
# Ends with exactly one line `failover: N passed, M failed` (N/M = connections); exit 0 only
# if every connection passed.  Needs root; fails loudly (never skips) without it.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

ORIG_ARGS=("$@")
MODE="" CONNS="" NOOPTS=0 NOPULL=0 NOMIG=0 DURATION=5 RATE="" SEED="" KEEP=0 SHOW=40
PLUG_AFTER="" STOP_PRIMARY_APP="" WORKDIR="" PULL_AT_FIXED="" MIG_EXTRA=() DIRECT=0 DIRECT_RATE="" BACKUP_CAP=0
DIRECT_PORT_BASE=61000
CHURN_REQUESTS=4 CHURN_GAP=0 CHURN_LENIENT=0 RECOVERY_MODE="" SAMPLE_N=0
CAP_SNAPLEN=128          # hub (br0) and backup (eth0, TUN) captures; the client's stays at 128
FAULTS=() HUB_CAP=0 ICMP_SILENT=0 EXPECT_VETO_OR_RB=0 EXPECT_RB=0 EXPECT_NO_TRANSITION=0
# churn: a connect timeout that covers the SYN retransmissions after the pull (1 s, then 3 s)
CHURN_CONNECT_TIMEOUT=8 CHURN_REPLY_TIMEOUT=4 CHURN_CLOSE_TIMEOUT=4
BIN="$ROOT/build/bin/migware"
PORT=7000
CONNECT_TIMEOUT=20
CLOSE_TIMEOUT=6
REPLY_TIMEOUT=4
PARTITION_PREF=1          # tc pref of the partition's drop filters: before the mirror's (49152)

usage() { sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
set_recovery_mode() {
    [[ $1 == push || $1 == aligned || $1 == full ]] || { echo "failover: --recovery-mode push|aligned|full" >&2; exit 2; }
    [[ -z $RECOVERY_MODE || $RECOVERY_MODE == "$1" ]] \
        || { echo "failover: --recovery-mode $1 contradicts $RECOVERY_MODE (--replay-unanswered is aligned)" >&2; exit 2; }
    RECOVERY_MODE=$1
}
while [[ $# -gt 0 ]]; do
    case $1 in
        --mode) MODE=${2:-}; shift 2;;
        --connections) CONNS=${2:-}; shift 2;;
        --no-options) NOOPTS=1; shift;;
        --no-pull) NOPULL=1; shift;;
        --no-migware) NOMIG=1; shift;;
        --migware) BIN=${2:-}; shift 2;;
        --duration) DURATION=${2:-}; shift 2;;
        --rate) RATE=${2:-}; shift 2;;
        --seed) SEED=${2:-}; shift 2;;
        --keep) KEEP=1; shift;;
        --show) SHOW=${2:-}; shift 2;;
        --work) WORKDIR=${2:-}; shift 2;;
        --pull-at) PULL_AT_FIXED=${2:-}; shift 2;;
        --plug-after) PLUG_AFTER=${2:-}; shift 2;;
        --stop-primary-app) STOP_PRIMARY_APP=${2:-}; shift 2;;
        --migware-arg) MIG_EXTRA+=("${2:-}"); shift 2;;
        --direct-connections) DIRECT=${2:-}; shift 2;;
        --direct-rate) DIRECT_RATE=${2:-}; shift 2;;
        --backup-capture) BACKUP_CAP=1; shift;;
        --requests) CHURN_REQUESTS=${2:-}; shift 2;;
        --gap) CHURN_GAP=${2:-}; shift 2;;
        --lenient-close) CHURN_LENIENT=1; shift;;
        --replay-unanswered) set_recovery_mode aligned; shift;;     # the old name of aligned
        --recovery-mode) set_recovery_mode "${2:-}"; shift 2;;
        --sample-migware) SAMPLE_N=${2:-}; shift 2;;
        --topology) LAB_TOPOLOGY=${2:-}; shift 2;;
        --vlan) export LAB_VLAN=${2:-}; shift 2;;
        --fault) FAULTS+=("${2:-}"); shift 2;;
        --hub-capture) HUB_CAP=1; shift;;
        --primary-icmp-silent) ICMP_SILENT=1; shift;;
        --capture-snaplen) CAP_SNAPLEN=${2:-}; shift 2;;
        --expect-veto-or-rollback) EXPECT_VETO_OR_RB=1; shift;;
        --expect-rollback) EXPECT_RB=1; shift;;
        --expect-no-transition) EXPECT_NO_TRANSITION=1; shift;;
        -h|--help) usage;;
        *) echo "failover: unknown argument '$1'" >&2; usage;;
    esac
done
[[ $MODE == push || $MODE == reqresp || $MODE == churn ]] || { echo "failover: --mode push|reqresp|churn" >&2; usage; }
SRV_MODE=$MODE; [[ $MODE == churn ]] && SRV_MODE=reqresp     # churn: the reqresp server
# aligned replays the client's current request: the push stream has no requests, so there is
# nothing its backup bytes could be checked against (full is defined: the whole stream)
[[ $RECOVERY_MODE == aligned && $MODE == push ]] \
    && { echo "failover: --recovery-mode aligned needs request/response traffic (--mode reqresp|churn)" >&2; exit 2; }
[[ -n $RECOVERY_MODE ]] && MIG_EXTRA+=(--recovery.mode "$RECOVERY_MODE")
[[ $SAMPLE_N =~ ^[0-9]+$ && $SAMPLE_N -le 50 ]] || { echo "failover: --sample-migware 0..50" >&2; exit 2; }
if [[ $MODE == churn ]]; then
    [[ $CHURN_REQUESTS =~ ^[0-9]+$ && $CHURN_REQUESTS -ge 1 && $CHURN_REQUESTS -le 1000 ]] \
        || { echo "failover: --requests 1..1000" >&2; exit 2; }
    [[ $CHURN_GAP =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk "BEGIN{exit !($CHURN_GAP <= 10)}" \
        || { echo "failover: --gap 0..10 s" >&2; exit 2; }
    [[ $CONNS -le 1000 ]] || { echo "failover: churn: --connections (workers) 1..1000" >&2; exit 2; }
fi
export LAB_TOPOLOGY=${LAB_TOPOLOGY:-hub}    # scripts/lab.sh: hub, or a learning switch with a mirror port
[[ $LAB_TOPOLOGY == hub || $LAB_TOPOLOGY == mirror ]] || { echo "failover: --topology hub|mirror" >&2; usage; }
[[ $CONNS =~ ^[0-9]+$ && $CONNS -ge 1 && $CONNS -le 20000 ]] || { echo "failover: --connections 1..20000" >&2; usage; }
[[ $DURATION =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk "BEGIN{exit !($DURATION > 0 && $DURATION <= 120)}" \
    || { echo "failover: --duration 0..120 s" >&2; usage; }
DUR_INT=$(awk "BEGIN{printf \"%d\", $DURATION + 0.999}")
# default total rate: lively for few connections, modest per connection for many
if [[ -z $RATE ]]; then
    RATE=$(( CONNS * 10 )); (( RATE < 50 )) && RATE=50; (( RATE > 6000 )) && RATE=6000
fi
[[ $RATE =~ ^[0-9]+$ && $RATE -ge 1 && $RATE -le 50000 ]] || { echo "failover: --rate 1..50000" >&2; exit 2; }
[[ $CAP_SNAPLEN =~ ^[0-9]+$ && $CAP_SNAPLEN -le 262144 ]] || { echo "failover: --capture-snaplen 0..262144" >&2; exit 2; }
[[ $DIRECT =~ ^[0-9]+$ && $DIRECT -le 4000 ]] || { echo "failover: --direct-connections 0..4000" >&2; exit 2; }
[[ -z $DIRECT_RATE ]] && DIRECT_RATE=$RATE
[[ $DIRECT_RATE =~ ^[0-9]+$ && $DIRECT_RATE -ge 1 && $DIRECT_RATE -le 50000 ]] || { echo "failover: --direct-rate 1..50000" >&2; exit 2; }
if [[ -n $PULL_AT_FIXED ]]; then
    [[ $PULL_AT_FIXED =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk "BEGIN{exit !($PULL_AT_FIXED < $DURATION)}" \
        || { echo "failover: --pull-at must be a number of seconds below --duration" >&2; exit 2; }
fi
# --fault AT:KIND:DUR: checked here, scheduled by the fault runner once the traffic starts
FAULT_PULL=0 FAULT_END=0
if [[ ${#FAULTS[@]} -gt 0 ]]; then
    [[ ${#FAULTS[@]} -le 100 ]] || { echo "failover: at most 100 --fault" >&2; exit 2; }
    [[ -z $PULL_AT_FIXED && -z $PLUG_AFTER && -z $STOP_PRIMARY_APP ]] \
        || { echo "failover: --fault replaces the default pull: no --pull-at/--plug-after/--stop-primary-app with it" >&2; exit 2; }
    PULL_FAULT_AT=""
    for f in "${FAULTS[@]}"; do
        [[ $f =~ ^([0-9]+(\.[0-9]+)?):(backup-flap|pause|partition|pull|icmp-off):([0-9]+(\.[0-9]+)?)$ ]] \
            || { echo "failover: --fault '$f': AT:KIND:DUR, KIND backup-flap|pause|partition|pull|icmp-off" >&2; exit 2; }
        f_at=${BASH_REMATCH[1]} f_kind=${BASH_REMATCH[3]} f_dur=${BASH_REMATCH[4]}
        awk "BEGIN{exit !($f_at < $DURATION && $f_dur <= 10 && $f_at + $f_dur <= $DURATION + 5)}" \
            || { echo "failover: --fault '$f': AT below --duration, DUR at most 10 s, ending by --duration + 5 s" >&2; exit 2; }
        if [[ $f_kind == pull ]]; then
            [[ -z $PULL_FAULT_AT ]] || { echo "failover: at most one pull fault" >&2; exit 2; }
            [[ $NOPULL -eq 0 ]] || { echo "failover: --no-pull contradicts a pull fault" >&2; exit 2; }
            PULL_FAULT_AT=$f_at; FAULT_PULL=1
        else
            awk "BEGIN{exit !($f_dur > 0)}" || { echo "failover: --fault '$f': DUR must be > 0" >&2; exit 2; }
            [[ $f_kind == pause && $NOMIG -eq 1 ]] && { echo "failover: a pause fault needs migware" >&2; exit 2; }
        fi
        FAULT_END=$(awk "BEGIN{e = $f_at + $f_dur; print (e > $FAULT_END) ? e : $FAULT_END}")
    done
    if [[ -n $PULL_FAULT_AT ]]; then
        for f in "${FAULTS[@]}"; do
            IFS=: read -r f_at f_kind f_dur <<<"$f"
            [[ $f_kind == pull ]] && continue
            awk "BEGIN{exit !($f_at + $f_dur <= $PULL_FAULT_AT)}" \
                || { echo "failover: the pull must be the last fault ('$f' ends after it)" >&2; exit 2; }
        done
    fi
    # faults of different kinds may overlap; two of one kind may not (one filter pref, one link)
    printf '%s\n' "${FAULTS[@]}" | awk -F: '{ at[NR] = $1; k[NR] = $2; e[NR] = $1 + $3 }
        END { for (i = 1; i <= NR; i++) for (j = i + 1; j <= NR; j++)
                  if (k[i] == k[j] && at[i] < e[j] && at[j] < e[i]) { print k[i]; exit 1 } }' >/dev/null \
        || { echo "failover: two $(printf '%s\n' "${FAULTS[@]}" | cut -d: -f2 | sort | uniq -d | head -n 1) faults overlap" >&2; exit 2; }
    NOPULL=1 HUB_CAP=1     # the default pull is replaced by the faults
fi
if [[ -n $WORKDIR ]]; then
    [[ ! -e $WORKDIR || -z $(ls -A "$WORKDIR" 2>/dev/null) ]] \
        || { echo "failover: --work $WORKDIR exists and is not empty" >&2; exit 2; }
fi

# The whole run is bounded: re-exec under timeout (TERM -> our trap cleans up).
CLIENT_BOUND=$(( CONNECT_TIMEOUT + DUR_INT + CLOSE_TIMEOUT + 15 ))
RUN_BOUND=$(( CLIENT_BOUND + 60 ))
[[ ${#FAULTS[@]} -gt 0 ]] && RUN_BOUND=$(( RUN_BOUND + 30 ))     # fault tails, invariants.py
if [[ -z ${MWL_BOUNDED:-} ]]; then
    export MWL_BOUNDED=$RUN_BOUND
    exec timeout --foreground -k 10 "$RUN_BOUND" "$0" "${ORIG_ARGS[@]}"
fi

# shellcheck source=../../scripts/lab.sh
source "$ROOT/scripts/lab.sh"
PY=$(python3 -c 'import sys; print(sys.executable)') || { echo "failover: python3 missing" >&2; exit 1; }
TRAFFIC="$HERE/traffic.py"

log() { printf 'failover: %s\n' "$*" >&2; }
T_START=$(date +%s.%N)
elapsed() { awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

WORK=""
OWN_PIDS=()
MIG_PID="" CLIENT_PID="" TCPDUMP_PID="" SRV_P_PID="" SRV_B_PID=""
DIRECT_PID="" BCAP_ETH_PID="" BCAP_TUN_PID=""
HUBCAP_PID="" FAULT_PID="" MIG_REAL_PID=""
FINAL_PRINTED=0

final_fail() { # reason : every connection fails, print the verdict line
    log "ERROR: $*"
    if [[ -n $WORK && -s $WORK/migware.log ]]; then
        log "--- tail of migware's log"; tail -n 30 "$WORK/migware.log" >&2
    fi
    if [[ $FINAL_PRINTED -eq 0 ]]; then echo "failover: 0 passed, $CONNS failed"; FINAL_PRINTED=1; fi
    exit 1
}

# running PID : is PID one of our background jobs that has not exited yet?
running() { local p; for p in $(jobs -rp); do [[ $p == "$1" ]] && return 0; done; return 1; }

# stop_pid PID SECS : TERM one of our own processes, KILL it after SECS, reap it, forget it
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
    forget_pid "$pid"
}
forget_pid() { local keep=() p; for p in "${OWN_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done; OWN_PIDS=("${keep[@]}"); }

# undo_faults : whatever a fault may have left behind, undone (idempotent): the backup's cable
# in, the primary's tc drop filters out, migware continued.  A pulled primary stays pulled.
undo_faults() {
    [[ ${#FAULTS[@]} -gt 0 && -n ${LAB_NS_HUB:-} ]] || return 0
    [[ -n $FAULT_PID ]] && stop_pid "$FAULT_PID" 5      # the runner undoes its active fault itself
    FAULT_PID=""
    ip -n "$LAB_NS_HUB" link set p-backup up 2>/dev/null
    local dir
    for dir in ingress egress; do
        nsx "$LAB_NS_HUB" tc filter del dev p-primary "$dir" pref "$PARTITION_PREF" 2>/dev/null
    done
    if [[ -n $MIG_REAL_PID && -n $MIG_PID ]] && running "$MIG_PID"; then
        kill -CONT "$MIG_REAL_PID" 2>/dev/null
    fi
    return 0
}

cleanup() {
    local rc=$? pid
    set +e
    trap - EXIT INT TERM
    undo_faults
    for pid in "${OWN_PIDS[@]}"; do running "$pid" && kill -TERM "$pid" 2>/dev/null; done
    for pid in "${OWN_PIDS[@]}"; do stop_pid "$pid" 3; done
    if [[ -n ${LAB_PREFIX:-} ]]; then
        lab_down
        if ip netns list 2>/dev/null | grep -q "^${LAB_PREFIX}"; then
            log "ERROR: namespaces ${LAB_PREFIX}* still present"; rc=1
        fi
    fi
    if [[ -n $WORK && -d $WORK ]]; then
        [[ $KEEP -eq 1 ]] || rm -rf "$WORK"
    fi
    if [[ $FINAL_PRINTED -eq 0 ]]; then echo "failover: 0 passed, $CONNS failed"; rc=1; fi
    exit $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated (run bound ${MWL_BOUNDED}s?)"; exit 143' TERM

# spawn NS SECS OUTFILE ERRFILE cmd... : bounded background process in NS; PID in LAST_PID
spawn() {
    local ns=$1 secs=$2 out=$3 err=$4; shift 4
    ip netns exec "$ns" timeout -k 3 "$secs" "$@" >"$out" 2>"$err" &
    LAST_PID=$!
    OWN_PIDS+=("$LAST_PID")
}

wait_for() { # SECS PID DESCRIPTION test-command... : poll until the test passes
    local secs=$1 pid=$2 what=$3 i; shift 3
    for (( i = 0; i < secs * 50; i++ )); do
        "$@" && return 0
        if [[ -n $pid ]] && ! running "$pid"; then
            log "$what: process exited early"; return 1
        fi
        sleep 0.02
    done
    log "$what: not within ${secs}s"; return 1
}

# ---------------------------------------------------------------- run
[[ $(id -u) -eq 0 ]] || final_fail "needs root (network namespaces); not skipping"
lab_check_tools || final_fail "missing tools"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(( $(ulimit -n) >= CONNS + 300 )) || final_fail "ulimit -n $(ulimit -n) too low for $CONNS connections"
if [[ $NOMIG -eq 0 && ! -x $BIN ]]; then final_fail "no migware binary at $BIN (build it, or --no-migware)"; fi

# tmpfs: creating thousands of per-connection log files on ext4 costs ~0.8 ms each, which
# showed up as 100+ ms reply latencies while the server accepted a burst of connections
WORKBASE=/dev/shm; [[ -d $WORKBASE && -w $WORKBASE ]] || WORKBASE=/tmp
if [[ -n $WORKDIR ]]; then
    mkdir -p "$WORKDIR" || final_fail "cannot create --work $WORKDIR"
    WORK=$(cd "$WORKDIR" && pwd); KEEP=1
else
    WORK=$(mktemp -d "$WORKBASE/mwl$$.XXXXXX")
fi
lab_init "mwl$$-" || final_fail "lab_init"
[[ $KEEP -eq 1 ]] && log "artefacts will be kept in $WORK"
[[ -z $SEED ]] && SEED=$(( (RANDOM << 15 | RANDOM) ))
PULL_AT=$("$PY" -c "import random; random.seed($SEED); print('%.3f' % (random.uniform(0.30, 0.60) * $DURATION))")
[[ -n $PULL_AT_FIXED ]] && PULL_AT=$PULL_AT_FIXED
log "mode=$MODE connections=$CONNS duration=${DURATION}s rate=${RATE}/s options=$([[ $NOOPTS -eq 1 ]] && echo off || echo default) migware=$([[ $NOMIG -eq 1 ]] && echo no || echo "$BIN") pull=$([[ $NOPULL -eq 1 ]] && echo no || echo "at ${PULL_AT}s") seed=$SEED prefix=$LAB_PREFIX"
[[ $MODE == churn ]] && log "churn: $CONNS workers, $CHURN_REQUESTS requests per connection, gap ${CHURN_GAP}s, timeouts connect ${CHURN_CONNECT_TIMEOUT}s reply ${CHURN_REPLY_TIMEOUT}s server-FIN ${CHURN_CLOSE_TIMEOUT}s, close $([[ $CHURN_LENIENT -eq 1 ]] && echo lenient || echo strict)"
[[ ${#MIG_EXTRA[@]} -gt 0 ]] && log "extra migware arguments: ${MIG_EXTRA[*]}"
[[ $DIRECT -gt 0 ]] && log "direct reference: $DIRECT connections to $LAB_IP_BACKUP:$PORT at ${DIRECT_RATE}/s"
[[ ${#FAULTS[@]} -gt 0 ]] && log "faults (s after the traffic starts): ${FAULTS[*]}"

log "topology=$LAB_TOPOLOGY"
lab_up || final_fail "lab_up failed"
if [[ $ICMP_SILENT -eq 1 ]]; then
    # a hardened primary: its kernel drops echo requests (ARP and TCP as usual)
    ip netns exec "$LAB_NS_PRIMARY" sysctl -qw net.ipv4.icmp_echo_ignore_all=1 || final_fail "cannot make the primary ignore echo"
    log "the primary ignores ICMP echo (net.ipv4.icmp_echo_ignore_all=1)"
fi
MAC_CLIENT=$(lab_mac "$LAB_NS_CLIENT") MAC_PRIMARY=$(lab_mac "$LAB_NS_PRIMARY") MAC_BACKUP=$(lab_mac "$LAB_NS_BACKUP")
[[ -n $MAC_CLIENT && -n $MAC_PRIMARY && -n $MAC_BACKUP ]] || final_fail "cannot read the hosts' MACs"
if [[ $HUB_CAP -eq 1 ]]; then
    # br0 in promiscuous mode gets every frame that enters the bridge from any port (the
    # bridge's local_rcv), learnt unicast included, once: what the segment carried.  Frames a
    # partition drops at p-primary never enter it; the mirror's copies bypass it.
    spawn "$LAB_NS_HUB" "$RUN_BOUND" /dev/null "$WORK/tcpdump-hub.log" \
        tcpdump -i br0 -nn -s "$CAP_SNAPLEN" --immediate-mode -U -B 65536 -Z root -w "$WORK/hub.pcap"
    HUBCAP_PID=$LAST_PID
    wait_for 5 "$HUBCAP_PID" "hub tcpdump" grep -qs 'listening on' "$WORK/tcpdump-hub.log" \
        || final_fail "tcpdump on the hub's br0 did not start: $(cat "$WORK/tcpdump-hub.log")"
fi
[[ $NOOPTS -eq 1 ]] && { lab_client_no_options || final_fail "client sysctls"; }

mkdir -p "$WORK/primary" "$WORK/backup"
for role in primary backup; do
    ns=$LAB_NS_PRIMARY; [[ $role == backup ]] && ns=$LAB_NS_BACKUP
    spawn "$ns" "$RUN_BOUND" "$WORK/server-$role.out" "$WORK/server-$role.err" \
        "$PY" "$TRAFFIC" server --mode "$SRV_MODE" --port "$PORT" --log "$WORK/$role" \
        --timeout "$RUN_BOUND" --ready-file "$WORK/server-$role.ready"
    [[ $role == primary ]] && SRV_P_PID=$LAST_PID || SRV_B_PID=$LAST_PID
    wait_for 5 "$LAST_PID" "$role server" test -s "$WORK/server-$role.ready" \
        || final_fail "the $role server did not start: $(tail -n 5 "$WORK/server-$role.err")"
done

spawn "$LAB_NS_CLIENT" "$RUN_BOUND" /dev/null "$WORK/tcpdump.log" \
    tcpdump -i eth0 -nn -s 128 --immediate-mode -U -B 65536 -Z root -w "$WORK/client.pcap" \
    "tcp port $PORT or (vlan and tcp port $PORT)"
TCPDUMP_PID=$LAST_PID
wait_for 5 "$TCPDUMP_PID" tcpdump grep -qs 'listening on' "$WORK/tcpdump.log" \
    || final_fail "tcpdump did not start: $(cat "$WORK/tcpdump.log")"

dev_exists() { ip -n "$1" link show "$2" >/dev/null 2>&1; }
# backup_capture DEV FILTER : tcpdump in the backup namespace (-Q inout, the default), nanosecond
# timestamps, the adapter's clock when the device offers a synced one, else the host's
backup_capture() {
    local dev=$1 filter=$2 tstype=host
    nsx "$LAB_NS_BACKUP" tcpdump -J -i "$dev" 2>/dev/null | grep -q '^ *adapter ' && tstype=adapter
    spawn "$LAB_NS_BACKUP" "$RUN_BOUND" /dev/null "$WORK/tcpdump-backup-$dev.log" \
        tcpdump -i "$dev" -nn -s "$CAP_SNAPLEN" --immediate-mode -U -B 65536 -j "$tstype" \
        --time-stamp-precision nano -Z root -w "$WORK/backup-$dev.pcap" "$filter"
    wait_for 5 "$LAST_PID" "tcpdump on backup $dev" grep -qs 'listening on' "$WORK/tcpdump-backup-$dev.log" \
        || final_fail "tcpdump on backup $dev did not start: $(cat "$WORK/tcpdump-backup-$dev.log")"
    echo "$dev $tstype" >>"$WORK/backup-capture.txt"
}
if [[ $BACKUP_CAP -eq 1 ]]; then
    backup_capture eth0 "tcp port $PORT and host $LAB_IP_PRIMARY"; BCAP_ETH_PID=$LAST_PID
fi

# shellcheck source=migware_sample.sh
source "$HERE/migware_sample.sh"
# sample_migware LABEL : one line of migware's counters and its VmRSS (kB) in
# migware-samples.jsonl, with CLOCK_MONOTONIC (--sample-migware)
sample_migware() {
    [[ -n $MIG_REAL_PID ]] || return 0
    migware_sample "$MIG_REAL_PID" "$WORK/control.sock" "$1" "$WORK/migware-samples.jsonl"
}

if [[ $NOMIG -eq 0 ]]; then
    spawn "$LAB_NS_BACKUP" "$RUN_BOUND" "$WORK/migware.out" "$WORK/migware.log" \
        "$BIN" --interface eth0 --primary "$LAB_IP_PRIMARY" --backup "$LAB_IP_BACKUP" --port "$PORT" \
        --control.socket "$WORK/control.sock" --state-file "$WORK/snapshot" "${MIG_EXTRA[@]}"
    MIG_PID=$LAST_PID
    wait_for 5 "$MIG_PID" migware grep -qs 'state=normal' "$WORK/migware.log" "$WORK/migware.out" \
        || final_fail "migware did not reach state=normal within 5 s"
    log "migware up (state=normal) after $(elapsed)s"
    if [[ $SAMPLE_N -gt 0 ]]; then
        MIG_REAL_PID=$(migware_real_pid "$MIG_PID" "$BIN") || final_fail "cannot find the migware process under PID $MIG_PID"
        sample_migware base      # before the client connects: the table is empty
    fi
    if [[ $BACKUP_CAP -eq 1 ]]; then     # migware creates its TUN device at start-up
        TUNDEV=mw0
        for (( i = 0; i < ${#MIG_EXTRA[@]}; i++ )); do
            [[ ${MIG_EXTRA[i]} == --tun ]] && TUNDEV=${MIG_EXTRA[i+1]:-mw0}
            [[ ${MIG_EXTRA[i]} == --tun=* ]] && TUNDEV=${MIG_EXTRA[i]#--tun=}
        done
        wait_for 5 "$MIG_PID" "migware's $TUNDEV" dev_exists "$LAB_NS_BACKUP" "$TUNDEV" \
            || final_fail "no $TUNDEV device in the backup namespace"
        backup_capture "$TUNDEV" "tcp port $PORT"; BCAP_TUN_PID=$LAST_PID
    fi
elif [[ $BACKUP_CAP -eq 1 ]]; then
    log "WARNING: --backup-capture without migware: no TUN device to capture"
fi

if [[ $MODE == churn ]]; then
    spawn "$LAB_NS_CLIENT" "$CLIENT_BOUND" "$WORK/client.out" "$WORK/client.err" \
        "$PY" "$TRAFFIC" churn --server "$LAB_IP_PRIMARY:$PORT" --workers "$CONNS" \
        --requests "$CHURN_REQUESTS" --gap "$CHURN_GAP" --duration "$DURATION" \
        --out "$WORK/client.json" --connect-timeout "$CHURN_CONNECT_TIMEOUT" \
        --reply-timeout "$CHURN_REPLY_TIMEOUT" --close-timeout "$CHURN_CLOSE_TIMEOUT" \
        --start-file "$WORK/client.start"
else
spawn "$LAB_NS_CLIENT" "$CLIENT_BOUND" "$WORK/client.out" "$WORK/client.err" \
    "$PY" "$TRAFFIC" client --mode "$MODE" --server "$LAB_IP_PRIMARY:$PORT" \
    --connections "$CONNS" --duration "$DURATION" --rate "$RATE" --out "$WORK/client.json" \
    --connect-timeout "$CONNECT_TIMEOUT" --close-timeout "$CLOSE_TIMEOUT" \
    --reply-timeout "$REPLY_TIMEOUT" --start-file "$WORK/client.start"
fi
CLIENT_PID=$LAST_PID
if [[ $DIRECT -gt 0 ]]; then
    # the reference: a second client straight to the backup's service, alongside the first, on
    # fixed local ports outside the ephemeral range (no clash with the twins' port numbers)
    spawn "$LAB_NS_CLIENT" "$CLIENT_BOUND" "$WORK/direct.out" "$WORK/direct.err" \
        "$PY" "$TRAFFIC" client --mode "$MODE" --server "$LAB_IP_BACKUP:$PORT" \
        --connections "$DIRECT" --duration "$DURATION" --rate "$DIRECT_RATE" --out "$WORK/direct.json" \
        --connect-timeout "$CONNECT_TIMEOUT" --close-timeout "$CLOSE_TIMEOUT" \
        --reply-timeout "$REPLY_TIMEOUT" --start-file "$WORK/direct.start" \
        --local-port-base "$DIRECT_PORT_BASE"
    DIRECT_PID=$LAST_PID
fi
wait_for $(( CONNECT_TIMEOUT + 5 )) "$CLIENT_PID" client test -s "$WORK/client.start" \
    || final_fail "the client never started its traffic: $(tail -n 5 "$WORK/client.err")"
log "client traffic started after $(elapsed)s: $(head -n 1 "$WORK/client.err")"
if [[ -n $DIRECT_PID ]]; then
    wait_for $(( CONNECT_TIMEOUT + 5 )) "$DIRECT_PID" "direct client" test -s "$WORK/direct.start" \
        || final_fail "the direct client never started its traffic: $(tail -n 5 "$WORK/direct.err")"
    log "direct client traffic started after $(elapsed)s: $(head -n 1 "$WORK/direct.err")"
fi

if [[ ${#FAULTS[@]} -gt 0 ]]; then
    if [[ -n $MIG_PID ]]; then
        MIG_REAL_PID=$(migware_real_pid "$MIG_PID" "$BIN") || final_fail "cannot find the migware process under PID $MIG_PID"
        log "migware's own process: PID $MIG_REAL_PID ($(readlink -f "/proc/$MIG_REAL_PID/exe"))"
    fi
    # The fault runner: one bounded process, each fault applied and undone on its own schedule
    # (CLOCK_MONOTONIC, from the client's start), every step logged with CLOCK_MONOTONIC and
    # wall clock into faults.txt; on SIGTERM it undoes the fault in progress.
    cat >"$WORK/faults.py" <<'PYEOF'
import os, signal, subprocess, sys, threading, time
hub, topology, mig_pid, start_file, out, pull_out, pref = sys.argv[1:8]
primary_ns = os.environ["MW_PRIMARY_NS"]
mig_pid, pref = int(mig_pid), int(pref)
faults = []
for n, spec in enumerate(sys.argv[8:]):
    at, kind, dur = spec.split(":")
    faults.append((float(at), kind, float(dur), n))
faults.sort()
t0 = int(open(start_file).read().split()[1])        # the client's monotonic_ns at its start
log = open(out, "a", buffering=1)
log_lock = threading.Lock()

def note(n, kind, phase, **kw):
    m, w = time.monotonic_ns(), time.time()
    with log_lock:
        log.write("mono_ns=%d wall=%.6f t=%.3f n=%d fault=%s phase=%s%s\n" % (
            m, w, (m - t0) / 1e9, n, kind, phase, "".join(" %s=%s" % x for x in kw.items())))

def run(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr.strip()))
    return r.stdout

def state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]

def wait_state(pid, want_stopped):
    for _ in range(100):                     # at most 1 s
        if (state(pid) == "T") == want_stopped:
            return
        time.sleep(0.01)
    raise RuntimeError("PID %d state %s, wanted %s" % (pid, state(pid), "stopped" if want_stopped else "running"))

def tc(*args):
    return run("ip", "netns", "exec", hub, "tc", *args)

def partition_on():
    # act_gact (`action drop`) is not in this kernel: mirred redirects every frame to a veth
    # that is down, which drops it.  Carrier stays up on every port.
    if "mwdrop" not in run("ip", "-n", hub, "-o", "link", "show"):
        run("ip", "-n", hub, "link", "add", "mwdrop", "type", "veth", "peer", "name", "mwdrop-peer")
    if "clsact" not in tc("qdisc", "show", "dev", "p-primary"):
        tc("qdisc", "add", "dev", "p-primary", "clsact")
    for d in ("ingress", "egress"):
        tc("filter", "add", "dev", "p-primary", d, "pref", str(pref), "protocol", "all", "u32",
           "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", "mwdrop")
    for d in ("ingress", "egress"):
        if "mwdrop" not in tc("filter", "show", "dev", "p-primary", d, "pref", str(pref)):
            raise RuntimeError("partition filter missing on p-primary " + d)

def partition_off():
    for d in ("ingress", "egress"):
        tc("filter", "del", "dev", "p-primary", d, "pref", str(pref))
    if topology == "mirror":                 # the mirror's own filters must still be there
        for d in ("ingress", "egress"):
            if "Egress Mirror to device p-backup" not in tc("filter", "show", "dev", "p-primary", d):
                raise RuntimeError("the mirror filter on p-primary %s is gone" % d)

def icmp(ignore):
    run("ip", "netns", "exec", primary_ns, "sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=%d" % ignore)

apply = {
    "icmp-off": (lambda: icmp(1), lambda: icmp(0)),
    "backup-flap": (lambda: run("ip", "-n", hub, "link", "set", "p-backup", "down"),
                    lambda: run("ip", "-n", hub, "link", "set", "p-backup", "up")),
    "pause": (lambda: (os.kill(mig_pid, signal.SIGSTOP), wait_state(mig_pid, True)),
              lambda: (os.kill(mig_pid, signal.SIGCONT), wait_state(mig_pid, False))),
    "partition": (partition_on, partition_off),
}
# One thread per fault, so that faults of different kinds may overlap; each waits on `stop`
# (set by SIGTERM or by another fault's error) and undoes its own fault however it ends.
stop = threading.Event()
errors = []

def one(at, kind, dur, n):
    try:
        if stop.wait(max(0.0, (t0 + int(at * 1e9) - time.monotonic_ns()) / 1e9)):
            return
        if kind == "pull":
            m0 = time.monotonic_ns()
            run("ip", "-n", hub, "link", "set", "p-primary", "down")
            m1, w1 = time.monotonic_ns(), time.time()
            with open(pull_out, "w") as f:
                f.write("%d %d %r\n" % (m0, m1, w1))
            note(n, kind, "pull", mono_ns_before=m0, at=at)
            return
        on, off = apply[kind]
        try:
            on()
            note(n, kind, "start", at=at, dur=dur)
            early = stop.wait(dur)
        finally:
            off()
        note(n, kind, "end", **({"undone": "early"} if early else {}))
    except Exception as e:                      # noqa: BLE001: logged, the run fails
        errors.append("%s: %s" % (kind, e))
        note(n, "runner", "error", error='"%s"' % str(e).replace('"', "'"))
        stop.set()

def on_term(signum, frame):
    stop.set()

signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, on_term)
threads = [threading.Thread(target=one, args=f) for f in faults]
for t in threads:
    t.start()
for t in threads:
    while t.is_alive():
        t.join(0.1)         # short joins: the signal handler runs in this thread
if stop.is_set() and not errors:
    note(-1, "runner", "stopped")
for e in errors:
    print("faults: ERROR: %s" % e, file=sys.stderr)
rc = 1 if errors else 0
sys.exit(rc)
PYEOF
    FAULT_BOUND=$(awk "BEGIN{printf \"%d\", $FAULT_END + 20}")
    export MW_PRIMARY_NS=$LAB_NS_PRIMARY
    spawn "$LAB_NS_HUB" "$FAULT_BOUND" "$WORK/faults.out" "$WORK/faults.err" \
        "$PY" "$WORK/faults.py" "$LAB_NS_HUB" "$LAB_TOPOLOGY" "${MIG_REAL_PID:-0}" "$WORK/client.start" \
        "$WORK/faults.txt" "$WORK/pull.txt" "$PARTITION_PREF" "${FAULTS[@]}"
    FAULT_PID=$LAST_PID
    log "fault runner started (PID $FAULT_PID, bounded to ${FAULT_BOUND}s)"
fi

PULL_ARGS=()
# --sample-migware N: N samples during the traffic, evenly over the second half of the time
# before the pull (or of the duration), each ~10 ms of work; the pull keeps its moment
SAMPLE_SPAN=$PULL_AT; [[ $NOPULL -eq 1 ]] && SAMPLE_SPAN=$DURATION
SAMPLED_UNTIL=0
if [[ $SAMPLE_N -gt 0 && -n $MIG_REAL_PID ]]; then
    T_TRAFFIC=$(date +%s.%N)
    for (( si = 1; si <= SAMPLE_N; si++ )); do
        at=$(awk -v sp="$SAMPLE_SPAN" -v i="$si" -v n="$SAMPLE_N" 'BEGIN{printf "%.3f", sp * (0.5 + 0.45 * i / n)}')
        wait_s=$(awk -v t0="$T_TRAFFIC" -v at="$at" -v now="$(date +%s.%N)" 'BEGIN{w = t0 + at - now; printf "%.3f", (w > 0) ? w : 0}')
        sleep "$wait_s"
        sample_migware "traffic$si"
    done
    SAMPLED_UNTIL=$(awk -v t0="$T_TRAFFIC" -v now="$(date +%s.%N)" 'BEGIN{printf "%.3f", now - t0}')
    log "migware sampled $SAMPLE_N times during the traffic (VmRSS, counters): $WORK/migware-samples.jsonl"
fi
if [[ $NOPULL -eq 0 ]]; then
    sleep "$(awk -v p="$PULL_AT" -v d="$SAMPLED_UNTIL" 'BEGIN{w = p - d; printf "%.3f", (w > 0) ? w : 0}')"
    # pull the cable, with CLOCK_MONOTONIC and wall clock read right before and right after
    read -r MONO0 MONO1 WALL1 < <("$PY" - "$LAB_NS_HUB" <<'PYEOF'
import subprocess, sys, time
m0 = time.monotonic_ns()
rc = subprocess.run(["ip", "-n", sys.argv[1], "link", "set", "p-primary", "down"]).returncode
m1 = time.monotonic_ns(); w1 = time.time()
print(m0, m1, repr(w1) if rc == 0 else "FAILED")
PYEOF
)
    [[ ${WALL1:-FAILED} != FAILED ]] || final_fail "pulling the cable failed"
    log "cable pulled at t+${PULL_AT}s (mono_ns=$MONO1 wall=$WALL1)"
    echo "$MONO0 $MONO1 $WALL1" >"$WORK/pull.txt"
    PULL_ARGS=(--pull-wall "$WALL1" --pull-mono-ns "$MONO1" --pull-mono-ns-before "$MONO0")
    if [[ -n $PLUG_AFTER ]]; then
        # The primary comes back (issue 5): its cable plugged in again while migware
        # proxies; the primary's stale sockets see the clients' segments again.
        sleep "$PLUG_AFTER"
        ip -n "$LAB_NS_HUB" link set p-primary up || final_fail "plugging the cable back failed"
        log "cable plugged back in at t+$(elapsed)s"
        if [[ -n $STOP_PRIMARY_APP ]]; then
            # The returning primary's application closes the connections it still holds (an
            # operator restarting it, an idle timeout): without a fence, their FINs reach the
            # clients at exactly the sequence numbers they expect next.
            sleep "$STOP_PRIMARY_APP"
            stop_pid "$SRV_P_PID" 5
            log "primary's server stopped at t+$(elapsed)s (exit $STOP_RC): its stale sockets closed"
            [[ $STOP_RC -eq 0 ]] || log "WARNING: the primary server exited $STOP_RC: $(tail -n 3 "$WORK/server-primary.err")"
            SRV_P_PID=""
        fi
    fi
fi

# the client ends by itself after duration + orderly close, each bounded inside the client and
# the whole client process bounded by its timeout wrapper (CLIENT_BOUND)
wait "$CLIENT_PID" 2>/dev/null; client_rc=$?
forget_pid "$CLIENT_PID"
[[ $client_rc -eq 124 || $client_rc -eq 137 ]] && log "the client overran its ${CLIENT_BOUND}s bound and was stopped"
log "client finished after $(elapsed)s (exit $client_rc); $(tail -n 1 "$WORK/client.err")"
if [[ -n $FAULT_PID ]]; then
    # the schedule may reach past the traffic; the runner is bounded (FAULT_BOUND)
    for (( i = 0; i < 40 * 20; i++ )); do running "$FAULT_PID" || break; sleep 0.05; done
    wait "$FAULT_PID" 2>/dev/null; fault_rc=$?
    forget_pid "$FAULT_PID"; FAULT_PID=""
    undo_faults
    log "fault runner exited $fault_rc; faults applied:"
    sed 's/^/  /' "$WORK/faults.txt" >&2 2>/dev/null
    [[ $fault_rc -eq 0 ]] || final_fail "the fault runner failed (exit $fault_rc): $(tail -n 3 "$WORK/faults.err")"
    if [[ $FAULT_PULL -eq 1 ]]; then
        read -r MONO0 MONO1 WALL1 <"$WORK/pull.txt" || final_fail "the pull fault left no pull.txt"
        PULL_ARGS=(--pull-wall "$WALL1" --pull-mono-ns "$MONO1" --pull-mono-ns-before "$MONO0")
        log "cable pulled by the fault runner (mono_ns=$MONO1 wall=$WALL1)"
    fi
fi
if [[ -n $DIRECT_PID ]]; then
    wait "$DIRECT_PID" 2>/dev/null; direct_rc=$?
    forget_pid "$DIRECT_PID"
    log "direct client finished after $(elapsed)s (exit $direct_rc); $(tail -n 1 "$WORK/direct.err")"
    [[ $direct_rc -eq 0 ]] || log "WARNING: the direct (reference) client reported errors: $(grep 'client: conn' "$WORK/direct.err" | head -n 3 | tr '\n' ' ')"
fi
sleep 0.3      # last FIN/ACKs onto the wire and into the capture

if [[ -n $MIG_PID && ( $MODE == churn || -n $RECOVERY_MODE || $SAMPLE_N -gt 0 ) ]]; then
    # churn: migware's counters (new_connections, client_unrecovered, unrecovered_*) before it
    # stops; replay modes: replay_* (verify.py prints them)
    timeout 5 "$PY" "$HERE/migware_counters.py" "$WORK/control.sock" >"$WORK/migware-counters.json" \
        2>"$WORK/migware-counters.err"
    [[ -s $WORK/migware-counters.json ]] || log "WARNING: no counters from migware: $(tail -n 2 "$WORK/migware-counters.err")"
fi
if [[ -n $MIG_PID ]]; then
    stop_pid "$MIG_PID" 5
    log "migware exited with status $STOP_RC on SIGTERM"
    MIG_RC=$STOP_RC
    if grep -q . "$WORK/migware.out" 2>/dev/null; then log "migware stdout:"; tail -n 20 "$WORK/migware.out" >&2; fi
fi
for role in primary backup; do
    [[ $role == primary && -z $SRV_P_PID ]] && continue  # stopped already (--stop-primary-app)
    [[ $role == primary ]] && stop_pid "$SRV_P_PID" 5 || stop_pid "$SRV_B_PID" 5
    [[ $STOP_RC -eq 0 ]] || log "WARNING: the $role server exited $STOP_RC on SIGTERM: $(tail -n 3 "$WORK/server-$role.err")"
done
stop_pid "$TCPDUMP_PID" 5
for pid in "$BCAP_ETH_PID" "$BCAP_TUN_PID" "$HUBCAP_PID"; do stop_pid "$pid" 5; done
if [[ -n $HUBCAP_PID ]]; then
    log "hub capture: $(grep -E 'captured|dropped' "$WORK/tcpdump-hub.log" | tr '\n' ' ')"
    # A hub capture with holes could hide the very frames the invariants look for: the run
    # cannot be judged, so it fails (the buffer, -B 64 MiB, is sized so that it does not).
    HUB_DROPS=0
    grep -Eq '^[1-9][0-9]* packets dropped by kernel' "$WORK/tcpdump-hub.log" && HUB_DROPS=1
fi
for f in "$WORK"/tcpdump-backup-*.log; do
    [[ -e $f ]] || continue
    log "backup capture ${f##*/tcpdump-backup-}: $(grep -E 'captured|dropped' "$f" | tr '\n' ' ')"
    grep -Eq '^[1-9][0-9]* packets dropped by kernel' "$f" && log "WARNING: the backup capture dropped packets"
done
log "tcpdump: $(grep -E 'captured|dropped' "$WORK/tcpdump.log" | tr '\n' ' ')"
if grep -Eq '^[1-9][0-9]* packets dropped by kernel' "$WORK/tcpdump.log"; then
    log "WARNING: the client capture dropped packets; ACK-derived byte counts may be wrong"
fi

# The client's tcpdump listens promiscuously, but the client's stack only takes frames sent to
# its MAC (or broadcast): a frame for another MAC (migware's probes to the primary, a fenced
# primary's answers, which its neighbour entries send to the backup) never reached it.
CLIENT_MAC=$(ip -n "$LAB_NS_CLIENT" -o link show eth0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
[[ -n $CLIENT_MAC ]] || final_fail "cannot read the client's MAC"
timeout 60 tcpdump -nn -S -tt -r "$WORK/client.pcap" "ether host $CLIENT_MAC or ether broadcast" \
    >"$WORK/capture.txt" 2>"$WORK/tcpdump-read.log" \
    || final_fail "cannot read the capture: $(cat "$WORK/tcpdump-read.log")"

# Issue 10: the safety invariants on the hub capture, and what the run must be judged as: a
# takeover that answered a partition is a failover from the partition's start (and the primary,
# back when the partition heals, is fenced); a rolled-back takeover leaves twins on the backup.
INV_RC=0 REF_KIND=none PRIMARY_FENCED=0 ROLLED_BACK_BEFORE=""
if [[ ${#FAULTS[@]} -gt 0 ]]; then
    INV_ARGS=(--pcap "$WORK/hub.pcap" --primary-ip "$LAB_IP_PRIMARY" --client-mac "$MAC_CLIENT"
        --primary-mac "$MAC_PRIMARY" --backup-mac "$MAC_BACKUP" --faults "$WORK/faults.txt"
        --reference-out "$WORK/reference.txt")
    [[ -n $MIG_PID ]] && INV_ARGS+=(--migware-log "$WORK/migware.log")
    timeout 120 "$PY" "$HERE/invariants.py" "${INV_ARGS[@]}" >"$WORK/invariants.out" 2>&1
    INV_RC=$?
    cat "$WORK/invariants.out"
    read -r REF_KIND REF_WALL REF_MONO <"$WORK/reference.txt" 2>/dev/null || REF_KIND=error
    HAS_PARTITION=0; [[ " ${FAULTS[*]}" == *:partition:* ]] && HAS_PARTITION=1
    case $REF_KIND in
        partition)
            PULL_ARGS=(--pull-wall "$REF_WALL" --pull-mono-ns "$REF_MONO")
            PRIMARY_FENCED=1
            log "partition case: migware took over during the partition that began at wall=$REF_WALL: every connection verified as a failover from the partition's start, the primary fenced when it healed";;
        pull)
            log "failover case: migware took over after the pull";;
        rolled-back)
            if [[ $FAULT_PULL -eq 1 ]]; then ROLLED_BACK_BEFORE=$WALL1; else ROLLED_BACK_BEFORE=inf; fi
            log "rollback case: migware took over and rolled back; its twins on the backup are reported, not judged";;
        none)
            [[ $HAS_PARTITION -eq 1 ]] && log "partition case: no takeover during a partition: every connection verified whole on the primary";;
        *) log "ERROR: invariants.py gave no reference"; INV_RC=1;;
    esac
fi

VERIFY_ARGS=(--mode "$MODE" --connections "$CONNS" --client-json "$WORK/client.json"
    --capture-txt "$WORK/capture.txt" --primary-dir "$WORK/primary" --backup-dir "$WORK/backup"
    --show "$SHOW" --failures-file "$WORK/failures.txt" "${PULL_ARGS[@]}")
[[ $DIRECT -gt 0 ]] && VERIFY_ARGS+=(--direct-ports "$DIRECT_PORT_BASE:$DIRECT")
[[ $NOMIG -eq 0 ]] && VERIFY_ARGS+=(--migware-log "$WORK/migware.log" --migware-log "$WORK/migware.out")
[[ -s $WORK/migware-counters.json ]] && VERIFY_ARGS+=(--migware-counters "$WORK/migware-counters.json")
FENCE_EXPECTED=0
if [[ -n $PLUG_AFTER && $NOMIG -eq 0 && $NOPULL -eq 0 ]]; then
    FENCE_EXPECTED=1
    for ((i = 0; i < ${#MIG_EXTRA[@]}; i++)); do
        [[ ${MIG_EXTRA[$i]} == --recovery.fence-returning-primary && ${MIG_EXTRA[$((i + 1))]:-} == false ]] \
            && FENCE_EXPECTED=0
    done
    [[ $FENCE_EXPECTED -eq 1 ]] && VERIFY_ARGS+=(--primary-fenced)
fi
for ((i = 0; i < ${#MIG_EXTRA[@]}; i++)); do
    [[ ${MIG_EXTRA[$i]} == --recovery.new-connections-when-primary-returns && ${MIG_EXTRA[$((i + 1))]:-} == primary ]] \
        && VERIFY_ARGS+=(--relayed-to-primary)
done
[[ $MODE == churn && $CHURN_LENIENT -eq 1 ]] && VERIFY_ARGS+=(--lenient-close)
[[ -n $RECOVERY_MODE ]] && VERIFY_ARGS+=(--replay-mode "$RECOVERY_MODE")
if [[ $PRIMARY_FENCED -eq 1 && $NOMIG -eq 0 ]]; then
    FENCE_EXPECTED=1; VERIFY_ARGS+=(--primary-fenced)
fi
[[ -n $ROLLED_BACK_BEFORE ]] && VERIFY_ARGS+=(--rolled-back-before "$ROLLED_BACK_BEFORE")
timeout 120 "$PY" "$HERE/verify.py" "${VERIFY_ARGS[@]}" >"$WORK/verify.out" 2>&1
vrc=$?
grep -v '^failover: ' "$WORK/verify.out"
if [[ $vrc -ne 0 && -n $MIG_PID && -s $WORK/migware.log ]]; then
    log "--- tail of migware's log ($WORK/migware.log)"; tail -n 40 "$WORK/migware.log" >&2
fi
if [[ $vrc -ne 0 ]]; then
    log "--- tail of the client's stderr"; tail -n 8 "$WORK/client.err" >&2
fi
log "run took $(elapsed)s"
VERDICT=$(grep '^failover: [0-9]* passed, [0-9]* failed$' "$WORK/verify.out" | tail -n 1)
if [[ -z $VERDICT ]]; then
    log "verify.py gave no verdict (rc=$vrc): $(tail -n 5 "$WORK/verify.out")"
    final_fail "no verdict"
fi
if [[ -n $MIG_PID && ${MIG_RC:-0} -ne 0 ]]; then
    # A clean SIGTERM exits 0; anything else is a crash or a sanitizer report (ASan/UBSan
    # builds abort on the first error and fail on leaks at exit).
    log "FAIL: migware exited with status $MIG_RC: $(grep -m1 -E 'ERROR: AddressSanitizer|runtime error|LeakSanitizer' "$WORK/migware.log" || tail -n 1 "$WORK/migware.log")"
    vrc=1
fi
if [[ $FENCE_EXPECTED -eq 1 ]]; then
    # The primary came back: every one of its stale sockets must be confirmed gone,
    # or a later FIN/RST from it could still reach a client.
    FENCE_LINE=$(grep 'event=fence_done' "$WORK/migware.log" | tail -n 1)
    log "fence: ${FENCE_LINE#*event=fence_done }"
    if [[ -z $FENCE_LINE ]]; then
        log "FAIL: the primary came back but migware never finished fencing it"; vrc=1
    elif [[ $FENCE_LINE != *" unfenced=0 "* ]]; then
        log "FAIL: stale sockets on the primary were not all confirmed gone"; vrc=1
    fi
    grep -E 'event=(arp_reasserted|primary_reset_client)' "$WORK/migware.log" | head -n 5 >&2
fi
if [[ ${HUB_DROPS:-0} -eq 1 ]]; then
    log "FAIL: the hub capture dropped frames: $(grep -m1 'dropped by kernel' "$WORK/tcpdump-hub.log"); the invariants cannot be judged"
    vrc=1
fi
if [[ ${#FAULTS[@]} -gt 0 && $INV_RC -ne 0 ]]; then
    log "FAIL: safety invariants violated: $(grep -m1 'VIOLATION' "$WORK/invariants.out" || tail -n 1 "$WORK/invariants.out")"
    vrc=1
fi
if [[ -n $MIG_PID ]]; then
    if [[ $EXPECT_VETO_OR_RB -eq 1 ]] && ! grep -Eq 'event=(monitor_veto|takeover_rolled_back)( |$)' "$WORK/migware.log"; then
        log "FAIL: expected event=monitor_veto or event=takeover_rolled_back in migware's log, found neither"; vrc=1
    fi
    if [[ $EXPECT_RB -eq 1 ]] && ! grep -Eq 'event=takeover_rolled_back( |$)' "$WORK/migware.log"; then
        log "FAIL: expected event=takeover_rolled_back in migware's log, found none"; vrc=1
    fi
    if [[ $EXPECT_NO_TRANSITION -eq 1 ]] && grep -q 'event=transition' "$WORK/migware.log"; then
        log "FAIL: expected no state transition, migware logged: $(grep -m1 'event=transition' "$WORK/migware.log")"; vrc=1
    fi
elif [[ $EXPECT_VETO_OR_RB -eq 1 || $EXPECT_RB -eq 1 || $EXPECT_NO_TRANSITION -eq 1 ]]; then
    log "FAIL: --expect-* checks migware's log, and there is no migware"; vrc=1
fi
echo "$VERDICT"; FINAL_PRINTED=1
[[ $vrc -eq 0 ]] || exit 1
exit 0
