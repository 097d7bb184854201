#!/usr/bin/env bash
# The cluster lab (issue 12): one Corosync per backup namespace of the hub lab, optionally a
# corosync-qnetd witness, and faults on the cluster traffic only.  A sourceable bash library on
# top of scripts/lab.sh; DESIGN.md section 6 gives the facts it relies on.
#
#   source scripts/lab.sh; source scripts/cluster.sh
#   LAB_BACKUPS=3 LAB_WITNESS=0; lab_init mwc$$-; lab_up
#   cluster_init /tmp/work; cluster_write_config
#   cluster_start_node 1; cluster_start_node 2; cluster_start_node 3
#   cluster_wait_quorate 1 10; cluster_wait_members 1 3 10
#   cluster_cut 3; ...; cluster_heal 3
#   cluster_down; lab_down
#
# Functions (all return non-zero with a `cluster: ...` line on stderr; none exits the caller,
# none sets a trap; every wait is bounded):
#   cluster_init WORKDIR                 state, directory, the shared authkey (WORKDIR/authkey)
#   cluster_write_config                 WORKDIR/corosync-I/corosync.conf for I = 1..LAB_BACKUPS
#   cluster_keygen FILE                  a new authkey (another key: a node that must not join)
#   cluster_start_node I [--authkey F]   corosync I in backup I's namespace (private /run),
#                                        then corosync-qdevice there if LAB_WITNESS=1
#   cluster_start_witness                corosync-qnetd in the witness namespace
#   cluster_stop_node I                  SIGTERM (bounded), then SIGKILL, qdevice first
#   cluster_state I                      prints "QUORATE MEMBERS RINGID", e.g. "yes 3 1.10"
#   cluster_wait_quorate I SECS [no]     until I is quorate (or, with `no`, inquorate)
#   cluster_wait_members I N SECS        until I's view has N members
#   cluster_wait_views T0 SECS I:Q:N...  round-robin polls until every I has quorate Q (yes|no)
#                                        and N members; CLUSTER_MS[I] = ms from T0 (date +%s%N)
#   cluster_cut I / cluster_heal I       drop / pass cluster traffic (knet UDP, qnetd TCP) at
#                                        backup I's hub port; TCP 7000, ARP, ICMP still pass
#   cluster_cut_witness / cluster_heal_witness   the same at p-witness
#   cluster_pause_node I / cluster_resume_node I SIGSTOP / SIGCONT corosync I (by PID)
#   cluster_kill_node I                  SIGKILL corosync I (and its qdevice)
#   cluster_link_down I / cluster_link_up I      backup I's whole hub port down / up
#   cluster_pid I                        corosync I's PID
#   cluster_log_grep I REGEX             matching lines of corosync I's log
#   cluster_down                         stop every process started here; safe twice
#
# Processes: corosync is started as
#   ip netns exec NS unshare -m --propagation private sh -c 'mount -t tmpfs ... /run && exec corosync -f -c CONF'
# ip netns exec, unshare (no --fork) and sh's exec all exec in place, so $! is corosync's PID.
# The clients (corosync-quorumtool, -cmapctl, libcpg) need no private /run: the IPC sockets are
# abstract (per network namespace) and /dev/shm stays shared.
#
# Order with a witness: nodes first (corosync, then each node's qdevice once corosync answers),
# then qnetd.  qdevice retries its connection (net_min_connect_timeout), so the other order works
# too; see tests/lab/README.md.

CLUSTER_KNET_PORT=${CLUSTER_KNET_PORT:-5405}
CLUSTER_QNETD_PORT=${CLUSTER_QNETD_PORT:-5403}
CLUSTER_TOKEN=${CLUSTER_TOKEN:-150}
CLUSTER_NAME=${CLUSTER_NAME:-mwlab}
CLUSTER_DROP_DEV=cldrop           # a veth left down in the hub namespace: redirected frames die
CLUSTER_TC_PREF=4100              # prefs 4100..4103 on the hub port's clsact ingress and egress
CLUSTER_DIR=${CLUSTER_DIR:-}
declare -a CLUSTER_PID_COROSYNC=() CLUSTER_PID_QDEVICE=()
declare -A CLUSTER_MS=()
CLUSTER_PID_QNETD=
CLUSTER_ALL_COROSYNC=()   # every corosync PID started here, restarts included (their IPC rings)

cluster_log() { printf 'cluster: %s\n' "$*" >&2; }

_cluster_now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# _cluster_alive PID NAME : PID is alive and its comm is NAME (never signal a reused PID)
_cluster_alive() {
    local pid=$1 name=$2 comm
    [[ -n $pid && -r /proc/$pid/comm ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ $comm == "$name"* ]]
}

# _cluster_pstate PID : the process state letter (R, S, T, Z...)
_cluster_pstate() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; echo "${s%% *}"; }

_cluster_check_i() {
    local i=${1:-}
    if [[ ! $i =~ ^[1-3]$ ]] || (( i > ${LAB_BACKUPS:-1} )); then
        cluster_log "no backup '$i' (1..${LAB_BACKUPS:-1}; set LAB_BACKUPS)"; return 1
    fi
}

cluster_check_tools() {
    local t missing=0
    for t in corosync corosync-keygen corosync-quorumtool corosync-cmapctl unshare tc timeout; do
        command -v "$t" >/dev/null 2>&1 || { cluster_log "missing tool '$t'"; missing=1; }
    done
    if [[ ${LAB_WITNESS:-0} == 1 ]]; then
        for t in corosync-qnetd corosync-qdevice; do
            command -v "$t" >/dev/null 2>&1 || { cluster_log "missing tool '$t' (Debian package: $t)"; missing=1; }
        done
    fi
    return $missing
}

# cluster_keygen FILE : a fresh 256-byte authkey
cluster_keygen() {
    local f=${1:?cluster_keygen FILE}
    rm -f "$f"
    if ! corosync-keygen -k "$f" >/dev/null 2>&1; then
        dd if=/dev/urandom of="$f" bs=256 count=1 status=none || { cluster_log "cannot write key $f"; return 1; }
    fi
    chmod 0400 "$f"
}

# cluster_init WORKDIR : after lab_init; the lab itself is lab_up's (with LAB_BACKUPS/LAB_WITNESS)
cluster_init() {
    local d=${1:-}
    [[ -n $d ]] || { cluster_log "cluster_init WORKDIR"; return 1; }
    [[ -n ${LAB_PREFIX:-} ]] || { cluster_log "lab_init PREFIX first"; return 1; }
    mkdir -p "$d" || { cluster_log "cannot create $d"; return 1; }
    CLUSTER_DIR=$(cd "$d" && pwd)
    CLUSTER_PID_COROSYNC=(); CLUSTER_PID_QDEVICE=(); CLUSTER_PID_QNETD=; CLUSTER_MS=()
    if [[ ! -s $CLUSTER_DIR/authkey ]]; then cluster_keygen "$CLUSTER_DIR/authkey" || return 1; fi
}

# cluster_write_config : one corosync.conf per backup (DESIGN.md 6 timings, knet crypto, votequorum)
cluster_write_config() {
    [[ -n $CLUSTER_DIR ]] || { cluster_log "cluster_init WORKDIR first"; return 1; }
    local i j n=${LAB_BACKUPS:-1} d nodes="" quorum
    for ((j = 1; j <= n; j++)); do
        nodes+="    node {
        nodeid: $j
        name: backup$j
        ring0_addr: $(lab_backup_ip "$j")
    }
"
    done
    if [[ ${LAB_WITNESS:-0} == 1 ]]; then
        quorum="quorum {
    provider: corosync_votequorum
    device {
        model: net
        votes: 1
        timeout: 600
        sync_timeout: 2000
        net {
            host: $LAB_IP_WITNESS
            port: $CLUSTER_QNETD_PORT
            tls: off
            algorithm: ffsplit
        }
    }
}"
    else
        quorum="quorum {
    provider: corosync_votequorum
}"
    fi
    for ((i = 1; i <= n; i++)); do
        d=$CLUSTER_DIR/corosync-$i
        mkdir -p "$d/state" || { cluster_log "cannot create $d"; return 1; }
        cat >"$d/corosync.conf" <<EOF || { cluster_log "cannot write $d/corosync.conf"; return 1; }
# migware cluster lab, backup $i ($(lab_backup_ns "$i")); written by scripts/cluster.sh
totem {
    version: 2
    cluster_name: $CLUSTER_NAME
    transport: knet
    ip_version: ipv4
    crypto_cipher: aes256
    crypto_hash: sha256
    keyfile: $d/authkey
    token: $CLUSTER_TOKEN
    token_coefficient: 0
    interface {
        linknumber: 0
        knet_transport: udp
        mcastport: $CLUSTER_KNET_PORT
        knet_ping_interval: 200
        knet_ping_timeout: 1000
        knet_pong_count: 1
    }
}
nodelist {
$nodes}
$quorum
system {
    state_dir: $d/state
}
logging {
    to_logfile: yes
    logfile: $d/corosync.log
    to_stderr: no
    to_syslog: no
    timestamp: hires
    debug: off
}
EOF
    done
}

# cluster_pid I : corosync I's PID (empty if not running)
cluster_pid() { echo "${CLUSTER_PID_COROSYNC[$1]:-}"; }

# _cluster_wait_comm PID NAME MS : until PID's comm is NAME (the exec chain is done)
_cluster_wait_comm() {
    local pid=$1 name=$2 k
    for ((k = 0; k < $3 / 10; k++)); do
        _cluster_alive "$pid" "$name" && return 0
        [[ -d /proc/$pid ]] || return 1
        sleep 0.01
    done
    return 1
}

# cluster_start_node I [--authkey FILE]
cluster_start_node() {
    local i=${1:-} key ns d pid k
    _cluster_check_i "$i" || return 1
    [[ -n $CLUSTER_DIR && -f $CLUSTER_DIR/corosync-$i/corosync.conf ]] || { cluster_log "cluster_write_config first"; return 1; }
    key=$CLUSTER_DIR/authkey
    if [[ ${2:-} == --authkey ]]; then key=${3:?--authkey FILE}; fi
    if _cluster_alive "${CLUSTER_PID_COROSYNC[$i]:-}" corosync; then cluster_log "corosync $i already runs"; return 1; fi
    ns=$(lab_backup_ns "$i") || return 1
    d=$CLUSTER_DIR/corosync-$i
    rm -f "$d/authkey"
    if ! cp "$key" "$d/authkey" || ! chmod 0400 "$d/authkey"; then cluster_log "cannot copy $key"; return 1; fi
    # shellcheck disable=SC2016  # $1 is sh's, not ours
    ip netns exec "$ns" unshare -m --propagation private \
        sh -c 'mount -t tmpfs -o size=8m tmpfs /run && exec corosync -f -c "$1"' sh "$d/corosync.conf" \
        </dev/null >>"$d/corosync.out" 2>&1 &
    pid=$!
    CLUSTER_PID_COROSYNC[$i]=$pid
    CLUSTER_ALL_COROSYNC+=("$pid")
    echo "$pid" >"$d/corosync.pid"
    _cluster_wait_comm "$pid" corosync 3000 || { cluster_log "corosync $i (PID $pid) did not start; see $d/corosync.out"; return 1; }
    # until it answers its clients (cmap), at most 5 s
    for ((k = 0; k < 100; k++)); do
        timeout 2 ip netns exec "$ns" corosync-cmapctl -g totem.cluster_name >/dev/null 2>&1 && break
        _cluster_alive "$pid" corosync || { cluster_log "corosync $i died; see $d/corosync.log"; return 1; }
        sleep 0.05
    done
    ((k < 100)) || { cluster_log "corosync $i does not answer"; return 1; }
    if [[ ${LAB_WITNESS:-0} == 1 ]]; then _cluster_start_qdevice "$i" || return 1; fi
}

_cluster_start_qdevice() {
    local i=$1 ns d pid
    ns=$(lab_backup_ns "$i"); d=$CLUSTER_DIR/corosync-$i
    rm -f "$d/qdevice.sock" "$d/qdevice.lock"
    ip netns exec "$ns" corosync-qdevice -f \
        -S "lock_file=$d/qdevice.lock,local_socket_file=$d/qdevice.sock,net_heartbeat_interval_min=200,net_min_connect_timeout=200" \
        </dev/null >>"$d/qdevice.out" 2>&1 &
    pid=$!
    CLUSTER_PID_QDEVICE[$i]=$pid
    echo "$pid" >"$d/qdevice.pid"
    _cluster_wait_comm "$pid" corosync-qdevi 3000 || { cluster_log "qdevice $i (PID $pid) did not start; see $d/qdevice.out"; return 1; }
}

# cluster_start_witness : corosync-qnetd on the witness (heartbeats down to 200 ms)
cluster_start_witness() {
    [[ ${LAB_WITNESS:-0} == 1 ]] || { cluster_log "LAB_WITNESS=1 needed"; return 1; }
    [[ -n $CLUSTER_DIR ]] || { cluster_log "cluster_init WORKDIR first"; return 1; }
    local d=$CLUSTER_DIR/qnetd pid k
    if _cluster_alive "$CLUSTER_PID_QNETD" corosync-qnet; then cluster_log "qnetd already runs"; return 1; fi
    mkdir -p "$d" || return 1
    rm -f "$d/qnetd.sock" "$d/qnetd.lock"
    ip netns exec "$LAB_NS_WITNESS" corosync-qnetd -f -s off -4 -l "$LAB_IP_WITNESS" -p "$CLUSTER_QNETD_PORT" \
        -S "lock_file=$d/qnetd.lock,local_socket_file=$d/qnetd.sock,heartbeat_interval_min=200" \
        </dev/null >>"$d/qnetd.out" 2>&1 &
    pid=$!
    CLUSTER_PID_QNETD=$pid
    echo "$pid" >"$d/qnetd.pid"
    _cluster_wait_comm "$pid" corosync-qnet 3000 || { cluster_log "qnetd (PID $pid) did not start; see $d/qnetd.out"; return 1; }
    for ((k = 0; k < 100; k++)); do       # listening, at most 5 s
        [[ -S $d/qnetd.sock ]] && return 0
        _cluster_alive "$pid" corosync-qnet || break
        sleep 0.05
    done
    cluster_log "qnetd is not up; see $d/qnetd.out"; return 1
}

# _cluster_stop PID NAME : SIGTERM (+SIGCONT for a stopped one), 3 s, then SIGKILL; reaps it
_cluster_stop() {
    local pid=$1 name=$2 k
    _cluster_alive "$pid" "$name" || { wait "$pid" 2>/dev/null; return 0; }
    kill -TERM "$pid" 2>/dev/null; kill -CONT "$pid" 2>/dev/null
    for ((k = 0; k < 300; k++)); do
        _cluster_alive "$pid" "$name" || break
        [[ $(_cluster_pstate "$pid") == Z ]] && break
        sleep 0.01
    done
    if _cluster_alive "$pid" "$name" && [[ $(_cluster_pstate "$pid") != Z ]]; then
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    return 0
}

cluster_stop_node() {
    local i=${1:-}
    _cluster_check_i "$i" || return 1
    _cluster_stop "${CLUSTER_PID_QDEVICE[$i]:-}" corosync-qdevi; CLUSTER_PID_QDEVICE[$i]=
    _cluster_stop "${CLUSTER_PID_COROSYNC[$i]:-}" corosync; CLUSTER_PID_COROSYNC[$i]=
}

cluster_kill_node() {
    local i=${1:-} pid
    _cluster_check_i "$i" || return 1
    pid=${CLUSTER_PID_COROSYNC[$i]:-}
    _cluster_alive "$pid" corosync || { cluster_log "corosync $i is not running"; return 1; }
    kill -KILL "$pid"; wait "$pid" 2>/dev/null
    CLUSTER_PID_COROSYNC[$i]=
    pid=${CLUSTER_PID_QDEVICE[$i]:-}
    if _cluster_alive "$pid" corosync-qdevi; then kill -KILL "$pid"; wait "$pid" 2>/dev/null; fi
    CLUSTER_PID_QDEVICE[$i]=
    return 0
}

# _cluster_signal I SIG STATE : signal corosync I, wait (1 s) until its state is / is not T
_cluster_signal() {
    local i=$1 sig=$2 want=$3 pid k s
    _cluster_check_i "$i" || return 1
    pid=${CLUSTER_PID_COROSYNC[$i]:-}
    _cluster_alive "$pid" corosync || { cluster_log "corosync $i is not running"; return 1; }
    kill "-$sig" "$pid" || return 1
    for ((k = 0; k < 100; k++)); do
        s=$(_cluster_pstate "$pid")
        if [[ $want == T ]]; then [[ $s == T ]] && return 0; else [[ $s != T ]] && return 0; fi
        sleep 0.01
    done
    cluster_log "corosync $i state '$s' after SIG$sig"; return 1
}
cluster_pause_node() { _cluster_signal "${1:-}" STOP T; }
cluster_resume_node() { _cluster_signal "${1:-}" CONT run; }

cluster_link_down() { local p; _cluster_check_i "${1:-}" && p=$(lab_backup_port "$1") && ip -n "$LAB_NS_HUB" link set "$p" down; }
cluster_link_up() { local p; _cluster_check_i "${1:-}" && p=$(lab_backup_port "$1") && ip -n "$LAB_NS_HUB" link set "$p" up; }

# ---------------------------------------------------------------- cluster-traffic faults
_cluster_tc() { ip netns exec "$LAB_NS_HUB" tc "$@"; }

# _cluster_drop_on PORT : knet UDP and qnetd TCP, either direction, to the down veth
_cluster_drop_on() {
    local port=$1 dir out k m
    local -a matches=(
        "match ip protocol 17 0xff match ip dport $CLUSTER_KNET_PORT 0xffff"
        "match ip protocol 17 0xff match ip sport $CLUSTER_KNET_PORT 0xffff"
        "match ip protocol 6 0xff match ip dport $CLUSTER_QNETD_PORT 0xffff"
        "match ip protocol 6 0xff match ip sport $CLUSTER_QNETD_PORT 0xffff"
    )
    if ! ip -n "$LAB_NS_HUB" link show "$CLUSTER_DROP_DEV" >/dev/null 2>&1; then
        ip -n "$LAB_NS_HUB" link add "$CLUSTER_DROP_DEV" type veth peer name "$CLUSTER_DROP_DEV-peer" ||
            { cluster_log "cannot add $CLUSTER_DROP_DEV"; return 1; }
    fi
    out=$(_cluster_tc qdisc show dev "$port") || return 1
    if [[ $out != *clsact* ]]; then _cluster_tc qdisc add dev "$port" clsact || { cluster_log "no clsact on $port"; return 1; }; fi
    for dir in ingress egress; do
        for k in 0 1 2 3; do
            m=${matches[$k]}
            # shellcheck disable=SC2086
            _cluster_tc filter replace dev "$port" "$dir" pref $((CLUSTER_TC_PREF + k)) protocol ip \
                u32 $m action mirred egress redirect dev "$CLUSTER_DROP_DEV" ||
                { cluster_log "cannot add the drop filter on $port $dir"; return 1; }
        done
        # (u32 lists the hash tables of both clsact directions together: check each pref)
        for k in 0 1 2 3; do
            out=$(_cluster_tc filter show dev "$port" "$dir" pref $((CLUSTER_TC_PREF + k))) || return 1
            if [[ $out != *"Egress Redirect to device $CLUSTER_DROP_DEV"* ]]; then
                cluster_log "drop filter pref $((CLUSTER_TC_PREF + k)) missing on $port $dir"; return 1
            fi
        done
    done
}

_cluster_drop_off() {
    local port=$1 dir k out
    for dir in ingress egress; do
        for k in 0 1 2 3; do
            _cluster_tc filter del dev "$port" "$dir" pref $((CLUSTER_TC_PREF + k)) 2>/dev/null
        done
    done
    for dir in ingress egress; do
        out=$(_cluster_tc filter show dev "$port" "$dir" 2>/dev/null)
        if [[ $out == *"Egress Redirect to device $CLUSTER_DROP_DEV"* ]]; then
            cluster_log "drop filters still on $port $dir"; return 1
        fi
    done
}

cluster_cut() { local p; _cluster_check_i "${1:-}" && p=$(lab_backup_port "$1") && _cluster_drop_on "$p"; }
cluster_heal() { local p; _cluster_check_i "${1:-}" && p=$(lab_backup_port "$1") && _cluster_drop_off "$p"; }
cluster_cut_witness() { _cluster_drop_on p-witness; }
cluster_heal_witness() { _cluster_drop_off p-witness; }

# ---------------------------------------------------------------- views
# cluster_state I : "yes|no MEMBERS RINGID" from corosync-quorumtool -s in backup I's namespace
# (about 15 ms a call; RINGID is quorumtool's "nodeid.seq", seq in hex)
cluster_state() {
    local i=${1:-} ns out q n r
    _cluster_check_i "$i" || return 1
    ns=$(lab_backup_ns "$i") || return 1
    out=$(timeout 1 ip netns exec "$ns" corosync-quorumtool -s -i 2>/dev/null)
    [[ $out =~ Quorate:\ *(Yes|No) ]] || return 1
    q=${BASH_REMATCH[1]}
    [[ $out =~ Nodes:\ *([0-9]+) ]] && n=${BASH_REMATCH[1]}
    [[ $out =~ Ring\ ID:\ *([0-9a-fA-F.]+) ]] && r=${BASH_REMATCH[1]}
    [[ $q == Yes ]] && q=yes || q=no
    echo "$q ${n:-?} ${r:-?}"
}

# _cluster_poll I WANT T0 DEADLINE_MS FILE : poll I until its "Q N" matches WANT (a pattern);
# writes "ms_since_T0 state" to FILE, or "timeout last_state"; one poller per node, in parallel
_cluster_poll() {
    local i=$1 want=$2 t0=$3 deadline=$4 f=$5 st="(no answer)" now k
    for ((k = 0; k < 100000; k++)); do
        st=$(cluster_state "$i") || st="(no answer)"
        now=$(_cluster_now_ms)
        # shellcheck disable=SC2053
        if [[ "${st% *}" == $want ]]; then echo "$(( now - t0 / 1000000 )) $st" >"$f"; return 0; fi
        (( now > deadline )) && break
        sleep 0.005
    done
    echo "timeout $st" >"$f"; return 1
}

# cluster_wait_views T0 SECS I:Q:N... : until each I reports quorate Q (yes|no, or *) and N
# members (or *); CLUSTER_MS[I] = ms from T0 (date +%s%N) to the first poll that saw it
cluster_wait_views() {
    local t0=${1:?T0} secs=${2:?SECS} spec i q n deadline rc=0 res
    shift 2
    local -A pids=()
    [[ -n $CLUSTER_DIR ]] || { cluster_log "cluster_init WORKDIR first"; return 1; }
    deadline=$(( $(_cluster_now_ms) + secs * 1000 ))
    for spec in "$@"; do
        IFS=: read -r i q n <<<"$spec"
        _cluster_check_i "$i" || return 1
        unset "CLUSTER_MS[$i]"
        rm -f "$CLUSTER_DIR/poll.$i"
        _cluster_poll "$i" "$q $n" "$t0" "$deadline" "$CLUSTER_DIR/poll.$i" &
        pids[$i]=$!
    done
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}"
        res=$(cat "$CLUSTER_DIR/poll.$i" 2>/dev/null)
        if [[ $res == timeout* || -z $res ]]; then
            cluster_log "backup $i: not in the wanted view within $secs s (last: ${res#timeout })"; rc=1
        else
            # shellcheck disable=SC2034  # the caller reads CLUSTER_MS
            CLUSTER_MS[$i]=${res%% *}
        fi
        rm -f "$CLUSTER_DIR/poll.$i"
    done
    return $rc
}

cluster_wait_quorate() {
    local i=${1:-} secs=${2:-10} q=${3:-yes}
    cluster_wait_views "$(date +%s%N)" "$secs" "$i:$q:*" 2>/dev/null && return 0
    cluster_log "backup $i not ${q/yes/quorate} within $secs s (now: $(cluster_state "$i" || echo 'no answer'))"; return 1
}

cluster_wait_members() {
    local i=${1:-} n=${2:-} secs=${3:-10} st k deadline
    _cluster_check_i "$i" || return 1
    deadline=$(( $(_cluster_now_ms) + secs * 1000 ))
    for ((k = 0; k < 100000; k++)); do
        st=$(cluster_state "$i") && [[ $(cut -d' ' -f2 <<<"$st") == "$n" ]] && return 0
        (( $(_cluster_now_ms) > deadline )) && break
        sleep 0.02
    done
    cluster_log "backup $i: not $n members within $secs s (now: ${st:-no answer})"; return 1
}

# cluster_log_grep I REGEX : lines of corosync I's log (and qdevice output) matching REGEX
cluster_log_grep() {
    local d=$CLUSTER_DIR/corosync-${1:?I}
    local f files=()
    for f in "$d/corosync.log" "$d/qdevice.out"; do [[ -e $f ]] && files+=("$f"); done
    [[ ${#files[@]} -gt 0 ]] || return 1
    grep -h -E -- "${2:?REGEX}" "${files[@]}"
}

# cluster_down : every process started here, by PID; nothing left; safe to call twice
cluster_down() {
    local i
    for i in "${!CLUSTER_PID_QDEVICE[@]}"; do _cluster_stop "${CLUSTER_PID_QDEVICE[$i]}" corosync-qdevi; done
    CLUSTER_PID_QDEVICE=()
    _cluster_stop "$CLUSTER_PID_QNETD" corosync-qnet; CLUSTER_PID_QNETD=
    for i in "${!CLUSTER_PID_COROSYNC[@]}"; do _cluster_stop "${CLUSTER_PID_COROSYNC[$i]}" corosync; done
    CLUSTER_PID_COROSYNC=()
    # libqb's IPC rings live in /dev/shm as qb-<server pid>-<client pid>-... (directories),
    # beside corosync's qb-corosync-<pid>-blackbox-* (8 MiB each); a corosync or client that
    # was killed (SIGKILL faults) leaves them behind. Ours go, by PID, once every corosync
    # started here is gone.
    local pid
    for pid in "${CLUSTER_ALL_COROSYNC[@]}"; do
        if _cluster_alive "$pid" corosync && [[ $(_cluster_pstate "$pid") != Z ]]; then continue; fi
        rm -rf /dev/shm/qb-"$pid"-* /dev/shm/qb-corosync-"$pid"-* 2>/dev/null
    done
    CLUSTER_ALL_COROSYNC=()
    return 0
}
