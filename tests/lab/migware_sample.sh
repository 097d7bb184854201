# Sampling a running migware: its own process under the lab's wrappers, its VmRSS and its
# counters.  Sourced by tests/lab/failover.sh (--sample-migware) and tests/lab/http_failover.sh
# (--samples); scripts/bench_replay.sh reads the samples (migware-samples.jsonl).
# shellcheck shell=bash

MS_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# migware_real_pid PID BIN : the migware process under PID's wrappers (ip netns exec -> timeout
# -> migware, perhaps a wrapper script): the first descendant whose executable is BIN's, or is
# called migware.  Prints its PID; fails if there is none.
migware_real_pid() {
    local want queue=("$1") p c exe i
    want=$(readlink -f "$2")
    for (( i = 0; i < ${#queue[@]} && i < 64; i++ )); do
        p=${queue[i]}
        exe=$(readlink -f "/proc/$p/exe" 2>/dev/null) || continue
        if [[ $exe == "$want" || ${exe##*/} == migware ]]; then echo "$p"; return 0; fi
        for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do queue+=("$c"); done
    done
    return 1
}

# migware_sample PID SOCKET LABEL FILE : one JSON line appended to FILE: LABEL, CLOCK_MONOTONIC
# ns, PID's VmRSS (kB) and migware's counters from the control SOCKET (tests/lab/
# migware_counters.py; null if they cannot be read, why in FILE.err).  One python3 start
# (about 10 ms of work).
migware_sample() {
    local rss out mono c
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null)
    out=$(timeout 5 "${PY:-python3}" -c 'import runpy, sys, time
print(time.monotonic_ns(), flush=True)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")' "$MS_HERE/migware_counters.py" "$2" 2>>"$4.err")
    { read -r mono; read -r c; } <<<"$out"
    [[ $mono =~ ^[0-9]+$ ]] || return 0
    printf '{"label": "%s", "mono_ns": %s, "vmrss_kb": %s, "counters": %s}\n' \
        "$3" "$mono" "${rss:-null}" "${c:-null}" >>"$4"
}
