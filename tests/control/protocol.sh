#!/usr/bin/env bash
# End-to-end tests of the control protocol (CONTROL.md) against the real daemon (issue 6).
#
#   tests/control/protocol.sh BUILD_DIR
#
# Builds the hub lab (scripts/lab.sh), starts a line-echo service on port 7000 of the primary
# and the backup, creates a temporary system group and two users (removed at exit), then runs
# tests/control/protocol_test.py, which starts migware in the backup namespace with
# --control.socket WORK/control.sock, opens the lab's client connections and checks every
# request type, ids, pipelining, malformed and over-long requests, a slow reader, permission
# refusal, running with only CAP_NET_RAW + CAP_NET_ADMIN as a non-root user, a followed
# failover (pull_cable) and SIGTERM.  Ends with one line `protocol: N passed, M failed`;
# exit 0 only if every case passed.  Needs root; fails (never skips) without it.
# KEEP=1 keeps the work directory (daemon logs) for a look afterwards.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUN_BOUND=100

[[ $# -eq 1 ]] || { echo "usage: $0 BUILD_DIR" >&2; echo "protocol: 0 passed, 1 failed"; exit 2; }
BUILD=$(cd "$1" 2>/dev/null && pwd) || { echo "protocol: no build dir '$1'" >&2; echo "protocol: 0 passed, 1 failed"; exit 2; }

# the whole run is bounded: re-exec under timeout (TERM -> our trap cleans up)
if [[ -z ${MWC_BOUNDED:-} ]]; then
    export MWC_BOUNDED=1
    exec timeout -k 10 "$RUN_BOUND" "$0" "$@"
fi

log() { printf 'protocol.sh: %s\n' "$*" >&2; }
FINAL_PRINTED=0
fail_setup() {
    log "ERROR: $*"
    [[ $FINAL_PRINTED -eq 1 ]] || { echo "protocol: 0 passed, 1 failed"; FINAL_PRINTED=1; }
    exit 1
}

BIN=$BUILD/bin/migware
# Debian's python3 (with python3-prometheus-client), not whatever python3 is first on PATH
PY=/usr/bin/python3
[[ $(id -u) -eq 0 ]] || fail_setup "needs root (network namespaces, setpriv, useradd); not skipping"
[[ -x $BIN ]] || fail_setup "no migware binary at $BIN (cmake --build $BUILD --target migware)"
[[ -x $PY ]] || fail_setup "no $PY (Debian package python3)"
$PY -c 'import prometheus_client.parser' 2>/dev/null \
    || fail_setup "python3-prometheus-client is not installed (apt-get install python3-prometheus-client; scripts/setup.sh)"
for t in setpriv groupadd useradd userdel groupdel getent ip; do
    command -v "$t" >/dev/null || fail_setup "missing tool '$t'"
done

# shellcheck source=../../scripts/lab.sh
source "$ROOT/scripts/lab.sh"
lab_check_tools || fail_setup "missing lab tools"

WORK="" OWN_PIDS=() MADE_USERS=() MADE_GROUP=""
SUF="$$$(printf '%04x' $(( RANDOM % 65536 )))"
TGROUP="mwcg$SUF" TUSER="mwcu$SUF" TUSER2="mwcv$SUF"

running() { local p; for p in $(jobs -rp); do [[ $p == "$1" ]] && return 0; done; return 1; }

cleanup() {
    local rc=$? pid i path
    set +e
    trap - EXIT INT TERM
    # processes protocol_test.py started (it stops them itself; this is for when it died):
    # only if the pid still runs the program it was started as
    if [[ -n $WORK && -f $WORK/pids ]]; then
        while read -r pid path; do
            [[ $pid =~ ^[0-9]+$ ]] || continue
            if [[ -r /proc/$pid/cmdline ]] && tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF "$path"; then
                kill -TERM "$pid" 2>/dev/null
            fi
        done <"$WORK/pids"
    fi
    for pid in "${OWN_PIDS[@]}"; do running "$pid" && kill -TERM "$pid" 2>/dev/null; done
    for (( i = 0; i < 60; i++ )); do [[ -z $(jobs -rp) ]] && break; sleep 0.05; done
    for pid in "${OWN_PIDS[@]}"; do running "$pid" && kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    if [[ -n ${LAB_PREFIX:-} ]]; then
        lab_down
        if ip netns list 2>/dev/null | grep -q "^${LAB_PREFIX}"; then log "ERROR: namespaces ${LAB_PREFIX}* still present"; rc=1; fi
    fi
    for u in "${MADE_USERS[@]}"; do userdel "$u" 2>/dev/null || { log "ERROR: userdel $u failed"; rc=1; }; done
    if [[ -n $MADE_GROUP ]]; then groupdel "$MADE_GROUP" 2>/dev/null || { log "ERROR: groupdel $MADE_GROUP failed"; rc=1; }; fi
    [[ -n $WORK && -d $WORK && -z ${KEEP:-} ]] && rm -rf "$WORK"
    [[ -n $WORK && -n ${KEEP:-} ]] && log "kept $WORK"
    [[ $FINAL_PRINTED -eq 1 ]] || { echo "protocol: 0 passed, 1 failed"; rc=1; }
    exit $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated (run bound ${RUN_BOUND}s?)"; exit 143' TERM

# the directory must be searchable by others: the permission cases test the socket's mode,
# not a private directory's
WORK=$(mktemp -d "/tmp/mwctl$$.XXXXXX") || fail_setup "mktemp"
chmod 0755 "$WORK"

for n in "$TGROUP"; do getent group "$n" >/dev/null && fail_setup "group $n already exists"; done
for n in "$TUSER" "$TUSER2"; do getent passwd "$n" >/dev/null && fail_setup "user $n already exists"; done
groupadd --system "$TGROUP" || fail_setup "groupadd $TGROUP"
MADE_GROUP=$TGROUP
useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin -g "$TGROUP" "$TUSER" \
    || fail_setup "useradd $TUSER"
MADE_USERS+=("$TUSER")
# an operator as README.md makes one: `usermod -a -G migware <operator>` (supplementary group)
useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin -g nogroup -G "$TGROUP" "$TUSER2" \
    || fail_setup "useradd $TUSER2"
MADE_USERS+=("$TUSER2")
install -d -m 0770 -o "$TUSER" -g "$TGROUP" "$WORK/u" || fail_setup "mkdir $WORK/u"

ulimit -n 8192 2>/dev/null || true
lab_init "mwc$$-" || fail_setup "lab_init"
lab_up || fail_setup "lab_up failed"

for role in primary backup; do
    ns=$LAB_NS_PRIMARY; [[ $role == backup ]] && ns=$LAB_NS_BACKUP
    ip netns exec "$ns" timeout -k 3 $(( RUN_BOUND - 5 )) "$PY" "$HERE/lab_service.py" server --port 7000 \
        --ready-file "$WORK/server-$role.ready" --timeout $(( RUN_BOUND - 5 )) 2>"$WORK/server-$role.err" &
    OWN_PIDS+=($!)
done
for role in primary backup; do
    for (( i = 0; i < 100; i++ )); do [[ -s $WORK/server-$role.ready ]] && break; sleep 0.05; done
    [[ -s $WORK/server-$role.ready ]] || fail_setup "the $role service did not start: $(cat "$WORK/server-$role.err")"
done

"$PY" "$HERE/protocol_test.py" --bin "$BIN" --work "$WORK" --lab-sh "$ROOT/scripts/lab.sh" \
    --lab-prefix "$LAB_PREFIX" --ns-backup "$LAB_NS_BACKUP" --ns-client "$LAB_NS_CLIENT" \
    --user "$TUSER" --user2 "$TUSER2" --group "$TGROUP" --py "$PY" --pcap "$ROOT/pcaps/push.pcap" \
    --service "$HERE/lab_service.py" \
    --ip-primary "$LAB_IP_PRIMARY" --ip-backup "$LAB_IP_BACKUP"
rc=$?
FINAL_PRINTED=1
if [[ $rc -ne 0 && -n $WORK ]]; then
    for f in "$WORK"/migware-*.log; do
        [[ -s $f ]] || continue
        log "--- tail of ${f##*/}"; tail -n 8 "$f" >&2
    done
fi
exit $rc
