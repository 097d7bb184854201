# Shared parts of the lab benchmarks (scripts/bench_failover.sh, bench_membership.sh,
# bench_replay.sh): the common options, the run bound, the checks before the first run, the
# results directory, the traps, the copied migware binary, the header lines, one lab run.
# Source it after setting BENCH_NAME (the prefix of every message) and the defaults of OUT,
# KEEP, MAX_TIME and BIN.  It sets no trap until bench_traps, and never exits on its own
# except on a bad argument or a failed check (with a `BENCH_NAME: ...` line on stderr).
# shellcheck shell=bash

# bench_usage : the calling script's header comment, on stderr; exit 2
bench_usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0" >&2; exit 2; }

# bench_opt ARGS... : one of the options every benchmark takes (--out DIR, --keep,
# --max-time S, --migware BIN, --help); anything else is refused.  BENCH_SHIFT: words taken
bench_opt() {
    BENCH_SHIFT=2
    case $1 in
        --out|--max-time|--migware)
            [[ $# -ge 2 ]] || { echo "$BENCH_NAME: $1 needs a value" >&2; exit 2; }
            case $1 in --out) OUT=$2;; --max-time) MAX_TIME=$2;; --migware) BIN=$2;; esac;;
        --keep) KEEP=1; BENCH_SHIFT=1;;
        -h|--help) bench_usage;;
        *) echo "$BENCH_NAME: unknown argument '$1'" >&2; bench_usage;;
    esac
}

# bench_check_max_time MAX : MAX_TIME is 60..MAX seconds
bench_check_max_time() {
    [[ $MAX_TIME =~ ^[0-9]+$ && $MAX_TIME -ge 60 && $MAX_TIME -le $1 ]] \
        || { echo "$BENCH_NAME: --max-time 60..$1" >&2; exit 2; }
}

# bench_bound VAR SECS ARGS... : the whole benchmark is bounded: the first time (VAR unset), it
# re-executes itself with ARGS under `timeout SECS` (TERM: the traps clean up)
bench_bound() {
    local var=$1 secs=$2; shift 2
    if [[ -z ${!var:-} ]]; then
        export "$var=1"
        exec timeout --foreground -k 20 "$secs" "$0" "$@"
    fi
}

# bench_trees DEFAULT_NAME : TREES (NAME=BUILD_DIR entries, from --tree) defaults to
# DEFAULT_NAME=build/; each must hold bin/migware; BIN becomes the first one's
bench_trees() {
    local t
    [[ ${#TREES[@]} -gt 0 ]] || TREES=("$1=$ROOT/build")
    for t in "${TREES[@]}"; do
        [[ -x ${t#*=}/bin/migware ]] || { echo "$BENCH_NAME: no migware in ${t#*=}/bin" >&2; exit 1; }
    done
    BIN=${TREES[0]#*=}/bin/migware
}

# bench_preflight WHY : root (WHY: what needs it), an executable $BIN, python3 (PY)
bench_preflight() {
    [[ $(id -u) -eq 0 ]] || { echo "$BENCH_NAME: needs root ($1); not skipping" >&2; exit 1; }
    [[ -x $BIN ]] || { echo "$BENCH_NAME: no migware binary at $BIN (build it first)" >&2; exit 1; }
    PY=$(command -v python3) || { echo "$BENCH_NAME: python3 missing" >&2; exit 1; }
}

# bench_out PREFIX SUBDIR... : OUT (default /dev/shm/PREFIX.<date>.XXXX) with its
# subdirectories; the clock of elapsed starts
bench_out() {
    local prefix=$1 d
    shift
    [[ -n $OUT ]] || OUT=$(mktemp -d "/dev/shm/$prefix.$(date +%Y%m%d-%H%M%S).XXXX") || exit 1
    for d in "$@"; do mkdir -p "$OUT/$d" || exit 1; done
    BENCH_T0=$(date +%s)
}
elapsed() { echo $(( $(date +%s) - BENCH_T0 )); }

# bench_traps : on exit, TERM the lab script that is running (CHILD; its own trap removes its
# lab) and wait for it, then remove OUT/work unless KEEP
bench_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $CHILD ]] && kill -0 "$CHILD" 2>/dev/null; then
        kill -TERM "$CHILD" 2>/dev/null
        wait "$CHILD" 2>/dev/null
    fi
    [[ $KEEP -eq 1 ]] || rm -rf "$OUT/work"
    exit $rc
}
bench_traps() {
    CHILD=""
    trap bench_cleanup EXIT
    trap 'echo "$BENCH_NAME: interrupted" >&2; exit 130' INT
    trap 'echo "$BENCH_NAME: terminated (time bound)" >&2; exit 143' TERM
}

# bench_copy_bin : $BIN copied once to $OUT/migware.bin, so that a rebuild during the
# benchmark cannot swap binaries between runs; SRC_BIN is the original
bench_copy_bin() {
    SRC_BIN=$BIN
    BIN="$OUT/migware.bin"
    cp "$SRC_BIN" "$BIN" || { echo "$BENCH_NAME: cannot copy $SRC_BIN" >&2; exit 1; }
}

# bench_header TITLE : the first lines of the report: title, date, machine, command (CMDLINE)
bench_header() {
    echo "# $1"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
    echo "- command: \`$CMDLINE\`"
}

# bench_migware_desc : which migware: SRC_BIN, sha256 of the copy, build time, git commit
bench_migware_desc() {
    printf '%s, sha256 %s, built %s (git %s%s)' "$SRC_BIN" "$(sha256sum "$BIN" | cut -c1-12)" \
        "$(date -u -r "$SRC_BIN" '+%Y-%m-%d %H:%M UTC')" "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)" \
        "$([[ -n $(git -C "$ROOT" status --porcelain -- . 2>/dev/null) ]] && echo ', worktree modified')"
}

# bench_run LOG CMD... : one lab run in the background (CHILD, so the traps can stop it), its
# output in LOG; its status in RC
bench_run() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    CHILD=$!
    wait "$CHILD"
    RC=$?
    CHILD=""
}

# bench_failover_run NAME CATEGORY LATENCY_JSON ARGS... : one tests/lab/failover.sh run (ARGS,
# --migware BIN, --work OUT/work/NAME, --show 5; its output in OUT/logs/NAME.log), then
# tests/lab/latency.py's figures of it in LATENCY_JSON.  Sets RC (failover.sh's status) and
# VERDICT (its last line); returns latency.py's status
bench_failover_run() {
    local name=$1 cat=$2 lat=$3
    shift 3
    bench_run "$OUT/logs/$name.log" "$ROOT/tests/lab/failover.sh" "$@" --migware "$BIN" --work "$OUT/work/$name" --show 5
    VERDICT=$(grep -E '^failover: [0-9]+ passed, [0-9]+ failed$' "$OUT/logs/$name.log" | tail -n 1)
    "$PY" "$ROOT/tests/lab/latency.py" run --work "$OUT/work/$name" --out "$lat" --category "$cat" \
        --rc "$RC" --verdict "$VERDICT" 2>>"$OUT/logs/$name.log"
}

# bench_status RC VERDICT : STATUS, `ok` or `FAILED (exit RC: VERDICT)`; a failure is counted in NFAIL
bench_status() {
    STATUS=ok
    if [[ $1 -ne 0 ]]; then STATUS="FAILED (exit $1: ${2:-no verdict})"; NFAIL=$(( NFAIL + 1 )); fi
}

# bench_failure_lines RC LOG REGEX : after a failed run (RC not 0), LOG's first 6 lines that
# match REGEX (extended), indented
bench_failure_lines() {
    [[ $1 -eq 0 ]] || grep -E "$3" "$2" | head -n 6 | sed 's/^/        /'
}
