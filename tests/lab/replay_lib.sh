# Shared parts of the replay lab tests (issue 13): replay_http.sh, replay_diverge.sh,
# replay_redis.sh, and the benchmark's nginx scenario http_failover.sh.  Source it after
# setting RL_NAME and RL_NAME_TAG (a short tag: the namespace prefix is mwr<tag><pid>-, the
# work directory /dev/shm/mwr<tag>.XXXXXX, or RL_WORK_DIR if set, which is then kept); set
# RL_BOUND (seconds: the whole run re-executes itself under `timeout` with that bound) before
# rl_bound.
#
# What it gives the test: the hub lab up (scripts/lab.sh), a trap that stops every process
# the test started (their own PIDs only: TERM, then KILL) and removes the namespaces and the
# work directory on exit, INT and TERM; rl_spawn for bounded background processes; nginx and
# redis-server with their own files in the work directory; migware in the backup namespace;
# the pull with its CLOCK_MONOTONIC moment; migware's counters before it stops; check/verdict.
#
# Needs root: without it the test fails (exit 1) with a message.  It never skips.
# shellcheck shell=bash

RL_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RL_ROOT=$(cd "$RL_HERE/../.." && pwd)
RL_KEEP=${RL_KEEP:-0}
RL_WORK_DIR=${RL_WORK_DIR:-}
RL_PIDS=()
RL_WORK=""
RL_PASSED=0 RL_FAILED=0
RL_MIG_PID=""
RL_T0=$(date +%s.%N)

rl_log() { printf '%s: %s\n' "$RL_NAME" "$*" >&2; }
rl_elapsed() { awk -v a="$RL_T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
rl_fatal() {
    rl_log "FAIL: $*"
    if [[ -n $RL_WORK && -s $RL_WORK/migware.log ]]; then
        rl_log "--- tail of migware's log"; tail -n 20 "$RL_WORK/migware.log" | cut -c1-300 >&2
    fi
    echo "$RL_NAME: FAIL ($*)"
    exit 1
}

# rl_usage : the calling script's header comment (line 2 to the first line that is not one)
rl_usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; }

# rl_opt ARGS... : one of the options the replay scripts share (--mode, --clients, --duration,
# --pull-at, --keep, --help, the BUILD_DIR operand; anything else starting with - is refused);
# sets MODE CLIENTS DURATION PULL_AT RL_KEEP BUILD, and RL_SHIFT to the words it took
rl_opt() {
    RL_SHIFT=2
    case $1 in
        --mode|--clients|--duration|--pull-at)
            [[ $# -ge 2 ]] || { echo "$RL_NAME: $1 needs a value" >&2; exit 2; }
            case $1 in
                --mode) MODE=$2;; --clients) CLIENTS=$2;; --duration) DURATION=$2;; --pull-at) PULL_AT=$2;;
            esac;;
        --keep) RL_KEEP=1; RL_SHIFT=1;;
        -h|--help) rl_usage; exit 0;;
        -*) echo "$RL_NAME: unknown option '$1'" >&2; exit 2;;
        *) [[ -z ${BUILD:-} ]] || { echo "$RL_NAME: one BUILD_DIR" >&2; exit 2; }; BUILD=$1; RL_SHIFT=1;;
    esac
}

# rl_check_opts MAX_DURATION [int] : MODE, CLIENTS (1..100), DURATION (0..MAX; whole seconds
# with `int`) and PULL_AT (below it); exit 2 with a message otherwise
rl_check_opts() {
    [[ $MODE == aligned || $MODE == push || $MODE == full ]] || { echo "$RL_NAME: --mode aligned|push|full" >&2; exit 2; }
    [[ $CLIENTS =~ ^[0-9]+$ && $CLIENTS -ge 1 && $CLIENTS -le 100 ]] || { echo "$RL_NAME: --clients 1..100" >&2; exit 2; }
    local num='^[0-9]+(\.[0-9]+)?$'
    [[ ${2:-} == int ]] && num='^[0-9]+$'
    [[ $DURATION =~ $num && $PULL_AT =~ ^[0-9]+(\.[0-9]+)?$ ]] \
        && awk "BEGIN{exit !($DURATION > 0 && $DURATION <= $1 && $PULL_AT > 0 && $PULL_AT < $DURATION)}" \
        || { echo "$RL_NAME: --duration 0..$1${2:+ (whole seconds)}, --pull-at below it" >&2; exit 2; }
}

# rl_build_dir : BUILD (the operand) made absolute; exit 2 without one
rl_build_dir() {
    [[ -n ${BUILD:-} ]] || { echo "usage: $(basename "$0") BUILD_DIR [options]; --help for more" >&2; exit 2; }
    BUILD=$(cd "$BUILD" && pwd) || exit 2
}

# The whole run is bounded: re-exec under timeout (TERM -> the trap cleans up).
rl_bound() {
    if [[ -z ${MWR_BOUNDED:-} ]]; then
        export MWR_BOUNDED=$RL_BOUND
        exec timeout --foreground -k 10 "$RL_BOUND" "$0" "$@"
    fi
}

rl_running() { local p; for p in $(jobs -rp); do [[ $p == "$1" ]] && return 0; done; return 1; }

# rl_stop PID [SECS] : TERM one of our own processes, KILL it after SECS, reap it; status in RL_RC
rl_stop() {
    local pid=$1 secs=${2:-5} i keep=() p
    RL_RC=0
    [[ -n $pid ]] || return 0
    if rl_running "$pid"; then
        kill -TERM "$pid" 2>/dev/null
        for (( i = 0; i < secs * 20; i++ )); do rl_running "$pid" || break; sleep 0.05; done
        rl_running "$pid" && kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    RL_RC=$?
    for p in "${RL_PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    RL_PIDS=("${keep[@]}")
}

rl_cleanup() {
    local rc=$? pid
    set +e
    trap - EXIT INT TERM
    for pid in "${RL_PIDS[@]}"; do rl_running "$pid" && kill -TERM "$pid" 2>/dev/null; done
    for pid in "${RL_PIDS[@]}"; do rl_stop "$pid" 3; done
    if [[ -n ${LAB_PREFIX:-} ]]; then
        lab_down
        if ip netns list 2>/dev/null | grep -q "^${LAB_PREFIX}"; then
            rl_log "ERROR: namespaces ${LAB_PREFIX}* still present"; rc=1
        fi
    fi
    if [[ -n $RL_WORK && -d $RL_WORK ]]; then
        if [[ $RL_KEEP -eq 1 ]]; then rl_log "artefacts kept in $RL_WORK"; else rm -rf "$RL_WORK"; fi
    fi
    exit $rc
}

# rl_setup : root, tools, traps, work directory, the lab
rl_setup() {
    [[ $(id -u) -eq 0 ]] || { echo "$RL_NAME: FAIL: needs root (network namespaces); not skipping"; exit 1; }
    # shellcheck source=../../scripts/lab.sh
    source "$RL_ROOT/scripts/lab.sh"
    lab_check_tools || rl_fatal "missing tools"
    RL_PY=$(command -v python3)
    trap rl_cleanup EXIT
    trap 'rl_log "interrupted"; exit 130' INT
    trap 'rl_log "terminated (run bound ${MWR_BOUNDED}s?)"; exit 143' TERM
    if [[ -n $RL_WORK_DIR ]]; then
        mkdir -p "$RL_WORK_DIR" && RL_WORK=$(cd "$RL_WORK_DIR" && pwd) || rl_fatal "cannot make $RL_WORK_DIR"
        RL_KEEP=1
    else
        RL_WORK=$(mktemp -d "/dev/shm/mwr${RL_NAME_TAG}.XXXXXX") || rl_fatal "mktemp"
    fi
    chmod 755 "$RL_WORK"
    lab_init "mwr${RL_NAME_TAG}$$-" || rl_fatal "lab_init"
    lab_up >"$RL_WORK/lab.log" 2>&1 || rl_fatal "lab_up: $(tail -n 3 "$RL_WORK/lab.log")"
}

# rl_spawn NS SECS OUT ERR cmd... : a bounded background process in NS; its PID in RL_LAST
rl_spawn() {
    local ns=$1 secs=$2 out=$3 err=$4; shift 4
    ip netns exec "$ns" timeout -k 3 "$secs" "$@" >"$out" 2>"$err" &
    RL_LAST=$!
    RL_PIDS+=("$RL_LAST")
}

# rl_wait SECS PID WHAT test-command... : poll until the test passes (fails if PID exits first)
rl_wait() {
    local secs=$1 pid=$2 what=$3 i; shift 3
    for (( i = 0; i < secs * 50; i++ )); do
        "$@" && return 0
        if [[ -n $pid ]] && ! rl_running "$pid"; then rl_log "$what: exited early"; return 1; fi
        sleep 0.02
    done
    rl_log "$what: not within ${secs}s"; return 1
}

# rl_port_open NS IP PORT : a TCP connect succeeds
rl_port_open() {
    ip netns exec "$1" "$RL_PY" -c 'import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.5).close()' "$2" "$3" 2>/dev/null
}

# rl_nginx ROLE NS WWW [--keep-date] [--limit-rate R] [--no-access-log] [--no-sendfile] :
# nginx 1.22 in NS serving WWW on port 80, with its own config, pid, temp and log files in
# $RL_WORK/nginx-ROLE.  By default the replies are deterministic: no Date header
# (headers-more), no version in Server; ETag and Last-Modified come from the files' mtimes,
# which the caller makes equal on both servers.  --keep-date leaves the Date header as stock
# nginx writes it (the benchmark's divergence cell); --limit-rate paces each reply (nginx's
# limit_rate); --no-access-log and --no-sendfile turn those off.  Keep-alive for the whole run.
rl_nginx() {
    local role=$1 ns=$2 www=$3 d="$RL_WORK/nginx-$1" date=0 rate="" alog=1 sendfile=on
    shift 3
    while [[ $# -gt 0 ]]; do
        case $1 in
            --keep-date) date=1; shift;;
            --limit-rate) [[ ${2:-} =~ ^[0-9]+[km]?$ ]] || rl_fatal "rl_nginx: --limit-rate like 8m"; rate=$2; shift 2;;
            --no-access-log) alog=0; shift;;
            --no-sendfile) sendfile=off; shift;;
            *) rl_fatal "rl_nginx: unknown option '$1'";;
        esac
    done
    mkdir -p "$d/tmp"
    {
        [[ $date -eq 1 ]] || echo "load_module /usr/share/nginx/modules/ngx_http_headers_more_filter_module.so;"
        cat <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 1024; }
http {
    default_type application/octet-stream;
EOF
        if [[ $alog -eq 1 ]]; then
            echo "    log_format lab '\$connection \$remote_addr:\$remote_port \"\$request\" \$status \$bytes_sent \$request_time';"
            echo "    access_log $d/access.log lab;"
        else
            echo "    access_log off;"
        fi
        [[ $date -eq 1 ]] || echo "    more_clear_headers Date;"
        [[ -z $rate ]] || echo "    limit_rate $rate;"
        cat <<EOF
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    server_tokens off;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    sendfile $sendfile;
    server {
        listen 80;
        root $www;
        location / { }
    }
}
EOF
    } >"$d/nginx.conf"
    rl_spawn "$ns" "$RL_BOUND" "$d/stdout" "$d/stderr" nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf"
    rl_wait 5 "$RL_LAST" "nginx ($role)" test -s "$d/nginx.pid" \
        || rl_fatal "nginx ($role) did not start: $(tail -n 3 "$d/stderr" "$d/error.log" 2>/dev/null)"
}

# rl_redis ROLE NS : redis-server 7 in NS on port 6379, empty, no persistence
rl_redis() {
    local role=$1 ns=$2 d="$RL_WORK/redis-$1"
    mkdir -p "$d"
    rl_spawn "$ns" "$RL_BOUND" "$d/stdout" "$d/stderr" redis-server --port 6379 --save '' \
        --appendonly no --protected-mode no --bind 0.0.0.0 --daemonize no --dir "$d" \
        --logfile "$d/redis.log"
    rl_wait 5 "$RL_LAST" "redis ($role)" rl_port_open "$ns" 127.0.0.1 6379 \
        || rl_fatal "redis ($role) did not start: $(tail -n 3 "$d/redis.log" "$d/stderr" 2>/dev/null)"
}

# rl_migware BIN PORT ARGS... : migware in the backup namespace; waits for state=normal.  Its
# restart snapshot goes to $RL_WORK/snapshot, or to RL_STATE_FILE if that is set ("" for none)
rl_migware() {
    local bin=$1 port=$2; shift 2
    [[ -x $bin ]] || rl_fatal "no migware binary at $bin"
    rl_spawn "$LAB_NS_BACKUP" "$RL_BOUND" "$RL_WORK/migware.out" "$RL_WORK/migware.log" \
        "$bin" --interface eth0 --primary "$LAB_IP_PRIMARY" --backup "$LAB_IP_BACKUP" \
        --port "$port" --control.socket "$RL_WORK/control.sock" --state-file "${RL_STATE_FILE-$RL_WORK/snapshot}" "$@"
    RL_MIG_PID=$RL_LAST
    rl_wait 5 "$RL_MIG_PID" migware grep -qs 'state=normal' "$RL_WORK/migware.log" "$RL_WORK/migware.out" \
        || rl_fatal "migware did not reach state=normal within 5 s"
    rl_log "migware up (state=normal): $* (after $(rl_elapsed)s)"
}

# rl_drop_frames SRC_IP N : from now on the hub drops 1 in N of SRC_IP's TCP frames, at random,
# on the hub's port toward the backup only (tests/lab/capture_loss.c, clsact egress on
# p-backup: this kernel has neither netem nor act_gact)
rl_drop_frames() {
    local obj="$RL_WORK/capture_loss.o" hex
    hex=$(printf '0x%02x%02x%02x%02x' ${1//./ })
    clang -O2 -target bpf -DSRC_IP="${hex}u" -DEVERY="$2" \
        -I"/usr/include/$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)" \
        -c "$RL_HERE/capture_loss.c" -o "$obj" || rl_fatal "cannot build tests/lab/capture_loss.c"
    ip netns exec "$LAB_NS_HUB" tc qdisc add dev p-backup clsact \
        && ip netns exec "$LAB_NS_HUB" tc filter add dev p-backup egress bpf direct-action obj "$obj" sec egress \
        || rl_fatal "cannot install the frame-dropping filter on the hub's p-backup"
    rl_log "the hub drops 1 in $2 of $1's TCP frames toward the backup"
}

# rl_pull : the primary's cable out; CLOCK_MONOTONIC ns just before and just after the command
# in $RL_WORK/pull (a request sent between the two may still have reached the primary)
rl_pull() {
    "$RL_PY" - "$LAB_NS_HUB" "$RL_WORK/pull" <<'PY' || rl_fatal "the pull failed"
import os, subprocess, sys, time
t = time.monotonic_ns()
subprocess.run(["ip", "-n", sys.argv[1], "link", "set", "p-primary", "down"], check=True)
t_end = time.monotonic_ns()
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(f"{t} {t_end}\n")
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
PY
    rl_log "primary's cable pulled (after $(rl_elapsed)s)"
}

# rl_sleep_until_mono NS : sleep until CLOCK_MONOTONIC reaches NS
rl_sleep_until_mono() {
    "$RL_PY" -c 'import sys, time; d = (int(sys.argv[1]) - time.monotonic_ns()) / 1e9; time.sleep(max(0.0, d))' "$1"
}

# rl_start_clients SECS CMD... : the clients (http_clients.py, redis_clients.py) in the
# client namespace, bounded by SECS, with --pull-file, --start-file and --out in $RL_WORK
# (pull, clients.start, clients.json) added; waits until they have started.  Sets
# RL_CLIENTS_PID and RL_CLIENTS_T0 (their CLOCK_MONOTONIC start, ns)
rl_start_clients() {
    RL_CLIENTS_BOUND=$1; shift
    rl_spawn "$LAB_NS_CLIENT" "$RL_CLIENTS_BOUND" "$RL_WORK/clients.out" "$RL_WORK/clients.err" "$@" \
        --pull-file "$RL_WORK/pull" --start-file "$RL_WORK/clients.start" --out "$RL_WORK/clients.json"
    RL_CLIENTS_PID=$RL_LAST
    rl_wait 10 "$RL_CLIENTS_PID" clients test -s "$RL_WORK/clients.start" \
        || rl_fatal "the clients did not start: $(tail -n 3 "$RL_WORK/clients.err")"
    RL_CLIENTS_T0=$(cat "$RL_WORK/clients.start")
}

# rl_sleep_until_client_time S : sleep until S seconds (fractions allowed) after the clients' start
rl_sleep_until_client_time() {
    rl_sleep_until_mono "$(awk -v t="$RL_CLIENTS_T0" -v s="$1" 'BEGIN{printf "%.0f", t + s * 1e9}')"
}

# rl_finish_clients : wait (within their bound) until the clients exit; their report must exist
rl_finish_clients() {
    local crc
    rl_wait "$RL_CLIENTS_BOUND" "" clients bash -c "! kill -0 $RL_CLIENTS_PID 2>/dev/null"
    wait "$RL_CLIENTS_PID"; crc=$?
    [[ -s $RL_WORK/clients.json ]] || rl_fatal "no client report (status $crc): $(tail -n 5 "$RL_WORK/clients.err")"
}

# rl_counters : migware's counters (control socket) into $RL_WORK/counters.json, while it runs
rl_counters() {
    timeout 5 "$RL_PY" "$RL_HERE/migware_counters.py" "$RL_WORK/control.sock" >"$RL_WORK/counters.json" 2>"$RL_WORK/counters.err" \
        || { rl_log "cannot read migware's counters: $(cat "$RL_WORK/counters.err")"; echo '{}' >"$RL_WORK/counters.json"; }
}

# rl_counter NAME : one counter from counters.json; a name missing there is tried with any
# prefix (the issue said names may gain one); prints -1 if there is no such counter
rl_counter() {
    "$RL_PY" - "$RL_WORK/counters.json" "$1" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
name = sys.argv[2]
if name in c:
    print(c[name])
else:
    hits = [v for k, v in c.items() if k.endswith("_" + name)]
    print(hits[0] if len(hits) == 1 else -1)
PY
}

# rl_counter_family PREFIX : the sum of a labelled family (PREFIX_<label> keys), and its
# non-zero members, e.g. `3 (no_turn=2 pipelined=1)`
rl_counter_family() {
    "$RL_PY" - "$RL_WORK/counters.json" "$1" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
m = {k[len(sys.argv[2]) + 1:]: v for k, v in c.items() if k.startswith(sys.argv[2] + "_")}
nz = " ".join(f"{k}={v}" for k, v in sorted(m.items()) if v)
print(sum(m.values()), f"({nz})" if nz else "")
PY
}

# rl_replay_figures : migware's counters of interest, one line; sets C_DIV C_AL C_FULL C_VER
# C_PUSH C_F2A C_FOC C_ROC C_GAPS C_REC (-1 where there is no such counter)
rl_replay_figures() {
    C_DIV=$(rl_counter replay_diverged) C_AL=$(rl_counter replay_aligned) C_FULL=$(rl_counter replay_full)
    C_VER=$(rl_counter replay_verified) C_PUSH=$(rl_counter replay_as_push) C_F2A=$(rl_counter replay_full_as_aligned)
    C_FOC=$(rl_counter replay_full_over_cap) C_ROC=$(rl_counter replay_request_over_cap)
    C_GAPS=$(rl_counter replay_digest_gaps) C_REC=$(rl_counter recovered)
    echo "   migware: recovered=$C_REC replay_aligned=$C_AL replay_full=$C_FULL replay_verified=$C_VER replay_diverged=$C_DIV"
    echo "            replay_as_push=$C_PUSH replay_full_as_aligned=$C_F2A replay_fallback=$(rl_counter_family replay_fallback)"
    echo "            replay_full_over_cap=$C_FOC replay_request_over_cap=$C_ROC replay_digest_gaps=$C_GAPS absorbed_bytes=$(rl_counter replay_absorbed_bytes) kernel_drops=$(rl_counter kernel_drops) (-1: no such counter)"
    "$RL_PY" -c 'import json,sys; c=json.load(open(sys.argv[1])); print("   migware counters (non-zero):", " ".join(f"{k}={v}" for k, v in sorted(c.items()) if v and any(w in k for w in ("replay", "recover", "drop", "rst", "reset", "gap", "refused"))))' "$RL_WORK/counters.json"
    local n
    n=$(grep -c 'event=replay_diverged' "$RL_WORK/migware.log")
    echo "   migware log: $n event=replay_diverged lines"
    grep 'event=replay_diverged' "$RL_WORK/migware.log" | head -n 4 | cut -c1-300 | sed 's/^/     /'
}

# rl_stop_migware : SIGTERM; the shutdown line must come; status checked by the caller (RL_RC)
rl_stop_migware() { rl_stop "$RL_MIG_PID" 5; }

rl_proxied() { grep -q 'event=transition from=recovery to=proxy' "$RL_WORK/migware.log"; }

# rl_transitions : migware's detection and recovery times, measured from the pull
rl_transitions() {
    local pull rec prox
    pull=$(cut -d' ' -f1 "$RL_WORK/pull" 2>/dev/null)
    rec=$(sed -n 's/.*mono_ns=\([0-9]*\) event=transition from=normal to=recovery.*/\1/p' "$RL_WORK/migware.log" | head -n1)
    prox=$(sed -n 's/.*mono_ns=\([0-9]*\) event=transition from=recovery to=proxy.*/\1/p' "$RL_WORK/migware.log" | head -n1)
    if [[ -n $pull && -n $rec ]]; then
        echo "   detection $(( (rec - pull) / 1000000 )) ms after the pull$([[ -n $prox ]] && echo ", proxy $(( (prox - rec) / 1000000 )) ms later")"
    fi
}

# rl_figures ARGS... <<'PY' : runs the Python program on stdin with ARGS (sys.argv[1:]); the
# program calls figures(dict) once, and each key becomes a shell variable here (through
# $RL_WORK/verdict.env).  What it prints goes to stdout as it is.  Fails if the program does
rl_figures() {
    local prog
    prog=$(cat)
    RL_FIGURES="$RL_WORK/verdict.env" "$RL_PY" -c "import os, shlex
def figures(v):
    with open(os.environ['RL_FIGURES'], 'w') as f:
        f.write(''.join(f'{k}={shlex.quote(str(x))}\\n' for k, x in v.items()))
$prog" "$@" || return 1
    # shellcheck disable=SC1091
    source "$RL_WORK/verdict.env"
}

# check DESCRIPTION STATUS : one line of the verdict
check() {
    if [[ $2 -eq 0 ]]; then echo "ok   $1"; RL_PASSED=$((RL_PASSED + 1))
    else echo "FAIL $1"; RL_FAILED=$((RL_FAILED + 1)); fi
}

# rl_verdict : the last line, `NAME: N passed, M failed`; status 0 only if none failed
rl_verdict() {
    echo "$RL_NAME: $RL_PASSED passed, $RL_FAILED failed"
    [[ $RL_FAILED -eq 0 ]]
}

# rl_files DIR SEED [NAME:BYTES...] : the served files, by default 2m.bin (2 MiB) and 40k.bin
# (40 KiB), random bytes from SEED, mtime fixed (ETag and Last-Modified are made from it, so
# both servers' headers match)
rl_files() {
    local d=$1 seed=$2; shift 2
    [[ $# -gt 0 ]] || set -- "2m.bin:$((2 * 1024 * 1024))" "40k.bin:$((40 * 1024))"
    mkdir -p "$d"
    "$RL_PY" - "$d" "$seed" "$@" <<'PY' || rl_fatal "cannot make the files in $d"
import os, random, sys
d, seed = sys.argv[1], sys.argv[2]
rng = random.Random(seed)
for spec in sys.argv[3:]:
    name, size = spec.rsplit(":", 1)
    p = os.path.join(d, name)
    with open(p, "wb") as f:
        f.write(rng.randbytes(int(size)))
    os.utime(p, (1700000000, 1700000000))
PY
    chmod -R a+rX "$d"
}
