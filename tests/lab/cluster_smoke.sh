#!/usr/bin/env bash
# The cluster lab's smoke test (issue 12): Corosync alone, no migware.  Root; never skips.
#   a. 3 backups: cut backup 3's cluster traffic, heal (REPS times; medians printed)
#   d. 3 backups: SIGSTOP backup 1's corosync for 2 s, SIGCONT (REPS times)
#   c. 3 backups: backup 3 restarted with another authkey never joins ("Digest does not match")
#   b. 2 backups + qnetd witness: cut backup 1 from the other and the witness, heal (REPS
#      times); cut the witness alone (both stay quorate, without its vote)
# Each view change prints how long it took, from the fault to the new quorum state seen on each
# side (ms, date +%s%N around corosync-quorumtool polls of about 15 ms).
# Ends with `cluster_smoke: ok` (exit 0) or `cluster_smoke: FAILED (reason)` (exit 1).
#   REPS=N (default 3)   repetitions of each fault, for the medians
#   KEEP_LOGS=DIR        copy the corosync logs there before cleaning up
set -uo pipefail

say() { printf '%s\n' "$*"; }
die() { say "cluster_smoke: FAILED ($*)"; exit 1; }

if [[ -z ${CLUSTER_SMOKE_BOUNDED:-} ]]; then
    # the whole run is bounded; SIGTERM from timeout runs the cleanup trap below
    CLUSTER_SMOKE_BOUNDED=1 exec timeout -k 15 300 bash "$0" "$@"
fi

[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces)"
for t in ip tc ethtool unshare timeout python3 corosync corosync-keygen corosync-quorumtool \
         corosync-cmapctl corosync-qnetd corosync-qdevice; do
    command -v "$t" >/dev/null 2>&1 || die "missing tool '$t' (scripts/setup.sh installs corosync, corosync-qnetd, corosync-qdevice)"
done

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lab.sh
source "$HERE/../../scripts/lab.sh"
# shellcheck source=../../scripts/cluster.sh
source "$HERE/../../scripts/cluster.sh"

REPS=${REPS:-3}
[[ $REPS =~ ^[1-9][0-9]?$ ]] || die "REPS must be 1..99"
PREFIX="mwc$$-"
WORK=$(mktemp -d "/tmp/${PREFIX}XXXXXX") || die "mktemp"
PIDS_EXTRA=()

cleanup() {
    local rc=$? p
    for p in "${PIDS_EXTRA[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    cluster_down
    if [[ -n ${KEEP_LOGS:-} ]]; then mkdir -p "$KEEP_LOGS" && cp -r "$WORK"/. "$KEEP_LOGS"/ 2>/dev/null; fi
    lab_down || say "cluster_smoke: warning: namespaces ${PREFIX}* still listed"
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# dump the logs of the current cluster on a failure, then fail
fail() {
    local f
    for f in "$CLUSTER_DIR"/corosync-*/corosync.log "$CLUSTER_DIR"/corosync-*/qdevice.out "$CLUSTER_DIR"/qnetd/qnetd.out; do
        [[ -f $f ]] || continue
        say "---- tail ${f#"$WORK"/}"; tail -n 12 "$f"
    done
    die "$*"
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}'; }

# record NAME VALUE : collect a figure for the summary
declare -A FIG=()
record() { FIG[$1]+="$2 "; }

now() { date +%s%N; }

# views T0 SECS LABEL I:Q:N... : wait, print one line with each side's time, record the figures
views() {
    local t0=$1 secs=$2 label=$3 spec i line=""
    shift 3
    cluster_wait_views "$t0" "$secs" "$@" || fail "$label: the view did not come"
    for spec in "$@"; do
        i=${spec%%:*}
        line+=" backup$i ${spec#*:} ${CLUSTER_MS[$i]} ms;"
        record "$label backup$i ${spec#*:}" "${CLUSTER_MS[$i]}"
    done
    say "  $label:${line%;}"
}

# steady SECS I:Q:N... : the views stay as they are for SECS seconds (polls every ~100 ms)
steady() {
    local secs=$1 spec i st deadline k
    shift
    deadline=$(( $(date +%s) + secs ))
    for ((k = 0; k < 1000; k++)); do
        for spec in "$@"; do
            i=${spec%%:*}
            st=$(cluster_state "$i") || st="(no answer)"
            [[ ${st% *} == "$(tr : ' ' <<<"${spec#*:}")" ]] || fail "backup $i left '${spec#*:}': now '$st'"
        done
        (( $(date +%s) >= deadline )) && return 0
        sleep 0.1
    done
}

new_cluster() {     # new_cluster BACKUPS WITNESS NAME
    cluster_down; lab_down
    # shellcheck disable=SC2034  # read by lab.sh and cluster.sh
    LAB_BACKUPS=$1 LAB_WITNESS=$2
    lab_init "$PREFIX" || die "lab_init"
    lab_up || die "lab_up (LAB_BACKUPS=$1 LAB_WITNESS=$2)"
    cluster_init "$WORK/$3" || die "cluster_init"
    cluster_write_config || die "cluster_write_config"
}

# ---------------------------------------------------------------- a. 3 backups, cut / heal
say "cluster_smoke: a. 3 backups (198.18.0.2-4), token $CLUSTER_TOKEN ms, $REPS repetitions"
new_cluster 3 0 three
t0=$(now)
for i in 1 2 3; do cluster_start_node "$i" || fail "start corosync $i"; done
views "$t0" 20 "a start" 1:yes:3 2:yes:3 3:yes:3

# the data path is not cut: a TCP connect to port 7000 on backup 3 while it is cut off
ns3=$(lab_backup_ns 3)
for ((r = 1; r <= REPS; r++)); do
    t0=$(now); cluster_cut 3 || fail "cluster_cut 3"
    views "$t0" 10 "a cut 3" 1:yes:2 2:yes:2 3:no:1
    if ((r == 1)); then
        ip netns exec "$ns3" timeout 8 python3 -c '
import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.0.4", 7000)); s.listen(1); s.settimeout(7); c, _ = s.accept(); c.sendall(b"data-ok")' &
        PIDS_EXTRA+=($!)
        sleep 0.3
        got=$(ip netns exec "$LAB_NS_CLIENT" timeout 5 python3 -c '
import socket, time
for k in range(20):
    try:
        s = socket.create_connection(("198.18.0.4", 7000), 2); print(s.recv(16).decode()); break
    except ConnectionRefusedError: time.sleep(0.1)') || true
        [[ $got == data-ok ]] || fail "TCP 7000 to backup 3 broken while its cluster traffic is cut (got '$got')"
        say "  a: TCP 7000 client -> backup 3 still works while it is cut off (ARP and IP pass)"
    fi
    sleep 1.5                                  # longer than knet_ping_timeout: the links go down
    t0=$(now); cluster_heal 3 || fail "cluster_heal 3"
    views "$t0" 10 "a heal 3" 1:yes:3 2:yes:3 3:yes:3
    sleep 1
done

# ---------------------------------------------------------------- d. pause corosync 1 for 2 s
say "cluster_smoke: d. SIGSTOP corosync 1 for 2 s"
for ((r = 1; r <= REPS; r++)); do
    t0=$(now); cluster_pause_node 1 || fail "pause 1"
    views "$t0" 2 "d pause 1" 2:yes:2 3:yes:2
    rest=$(( 2000 - ($(now) - t0) / 1000000 ))
    if ((rest > 0)); then sleep "$(awk -v m="$rest" 'BEGIN { printf "%.3f", m / 1000 }')"; fi
    t0=$(now); cluster_resume_node 1 || fail "resume 1"
    views "$t0" 10 "d resume 1" 1:yes:3 2:yes:3 3:yes:3
    sleep 1
done

# ---------------------------------------------------------------- c. another authkey
say "cluster_smoke: c. backup 3 restarted with another authkey"
cluster_stop_node 3 || fail "stop 3"
t0=$(now)
views "$t0" 10 "c stop 3" 1:yes:2 2:yes:2
cluster_keygen "$WORK/other.key" || fail "keygen"
cmp -s "$WORK/other.key" "$CLUSTER_DIR/authkey" && fail "the two keys are equal"
cluster_start_node 3 --authkey "$WORK/other.key" || fail "start corosync 3 with the other key"
steady 4 1:yes:2 2:yes:2 3:no:1
say "  c: for 4 s backup 3 stays inquorate and alone, backups 1 and 2 keep 2 members"
for i in 3 1; do
    line=$(cluster_log_grep "$i" 'Digest does not match' | head -n 1)
    [[ -n $line ]] || fail "no 'Digest does not match' in corosync $i's log"
    say "  c: corosync $i log: $line"
done

# ---------------------------------------------------------------- b. 2 backups + witness
say "cluster_smoke: b. 2 backups + qnetd witness (198.18.0.9)"
new_cluster 2 1 witness
t0=$(now)
for i in 1 2; do cluster_start_node "$i" || fail "start corosync $i (+qdevice)"; done
cluster_start_witness || fail "start qnetd"
views "$t0" 30 "b start" 1:yes:2 2:yes:2
votes() { timeout 2 ip netns exec "$(lab_backup_ns "$1")" corosync-quorumtool -s 2>/dev/null | sed -n 's/^Total votes: *//p'; }
for ((k = 0; k < 100; k++)); do [[ $(votes 1) == 3 && $(votes 2) == 3 ]] && break; sleep 0.1; done
[[ $(votes 1) == 3 && $(votes 2) == 3 ]] || fail "the witness's vote is not counted (votes: $(votes 1), $(votes 2))"
say "  b: total votes 3 on both (the witness's vote counted)"
for ((r = 1; r <= REPS; r++)); do
    t0=$(now); cluster_cut 1 || fail "cluster_cut 1"
    views "$t0" 10 "b cut 1" 1:no:1 2:yes:1
    sleep 1.5
    t0=$(now); cluster_heal 1 || fail "cluster_heal 1"
    views "$t0" 15 "b heal 1" 1:yes:2 2:yes:2
    for ((k = 0; k < 100; k++)); do [[ $(votes 1) == 3 && $(votes 2) == 3 ]] && break; sleep 0.05; done
    ms=$(( ($(now) - t0) / 1000000 ))
    [[ $(votes 1) == 3 ]] || fail "backup 1 did not get the witness's vote back"
    say "  b heal 1: witness vote back on both after $ms ms"; record "b heal 1 witness vote back" "$ms"
    sleep 1
done
t0=$(now); cluster_cut_witness || fail "cluster_cut_witness"
for ((k = 0; k < 100; k++)); do [[ $(votes 1) == 2 && $(votes 2) == 2 ]] && break; sleep 0.05; done
[[ $(votes 1) == 2 && $(votes 2) == 2 ]] || fail "the witness's vote still counted while it is cut off"
ms=$(( ($(now) - t0) / 1000000 ))
steady 1 1:yes:2 2:yes:2
say "  b cut witness: both lose its vote after $ms ms and stay quorate (2 of 3 votes)"
cluster_heal_witness || fail "cluster_heal_witness"

# ---------------------------------------------------------------- summary
say "cluster_smoke: medians over $REPS (ms): "
while IFS= read -r k; do
    # shellcheck disable=SC2086
    say "  $k: $(median ${FIG[$k]})   (${FIG[$k]% })"
done < <(printf '%s\n' "${!FIG[@]}" | sort)
cluster_down
say "cluster_smoke: ok"
