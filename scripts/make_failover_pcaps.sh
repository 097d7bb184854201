#!/usr/bin/env bash
# Record the lab failover captures that `migware replay --failover-at` is pinned on
# (pcaps/failover_*.{hub,tun}.pcap, issue 11 item 6), update their manifest lines, and
# re-derive their expected engine records (tests/replay/golden.sh --update NAME).
#
#   sudo scripts/make_failover_pcaps.sh [BUILD_DIR] [push|reqresp ...]   default: build, both
#
# Each case is one tests/lab/failover.sh run in the hub lab (namespaces mwl<pid>-*, removed by
# failover.sh on exit), 10 connections for 3 s, the primary's cable pulled at 1.5 s, with
#   --hub-capture      tcpdump on the hub's br0: every frame the segment carried (the client side)
#   --backup-capture   tcpdump on migware's TUN device mw0 in the backup namespace (and on its eth0,
#                      not kept): what migware wrote into the backup's stack and what that stack sent
#                      toward the primary's IP (LINKTYPE_RAW)
#   --capture-snaplen 0  whole frames (the lab's default is 128 bytes)
# The failover instant T of the manifest line is the wall time of the live migware's own
# `event=transition ... to=recovery` (its log's ts=, microseconds), so that the replayed engine
# fails over when the live one did and the backup's recorded answers arrive after its SYNs.
# The backup's MAC (--backup-mac) is read from the capture: the source of the backup's echo probes.
# Needs root, tcpdump, python3 (the lab's tools) and a built migware. About 30 s per case.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
[[ $# -gt 0 ]] && shift
CASES=("$@")
[[ ${#CASES[@]} -gt 0 ]] || CASES=(push reqresp)
BIN=$BUILD/bin/migware
[[ -x $BIN ]] || { echo "make_failover_pcaps: $BIN not built" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "make_failover_pcaps: needs root (network namespaces)" >&2; exit 1; }
MAX_BYTES=$((300 * 1024))
PRIMARY=198.18.0.1 BACKUP=198.18.0.2 PORT=7000

WORKS=()
cleanup() { local w; for w in "${WORKS[@]}"; do rm -rf "$w"; done; }
trap cleanup EXIT

for mode in "${CASES[@]}"; do
    [[ $mode == push || $mode == reqresp ]] || { echo "make_failover_pcaps: case push|reqresp" >&2; exit 2; }
    name=failover_$mode
    work=$(mktemp -d "/dev/shm/mwfp$$.$mode.XXXXXX")
    WORKS+=("$work")
    echo "make_failover_pcaps: $name: lab run (artefacts in $work)" >&2
    "$ROOT/tests/lab/failover.sh" --mode "$mode" --connections 10 --duration 3 --pull-at 1.5 \
        --hub-capture --backup-capture --capture-snaplen 0 --work "$work/lab" --migware "$BIN" \
        >"$work/failover.out" 2>"$work/failover.err" || true
    verdict=$(tail -n 1 "$work/failover.out")
    echo "make_failover_pcaps: $name: $verdict" >&2
    [[ $verdict == "failover: 10 passed, 0 failed" ]] \
        || { tail -n 30 "$work/failover.err" >&2; echo "make_failover_pcaps: $name: the lab run failed" >&2; exit 1; }
    lab=$work/lab
    ts=$(grep -m1 'event=transition .*to=recovery' "$lab/migware.log" | sed -n 's/^ts=\([^ ]*\) .*/\1/p')
    [[ -n $ts ]] || { echo "make_failover_pcaps: $name: no takeover in migware's log" >&2; exit 1; }
    at=@$(date -u -d "$ts" +%s.%N)
    mac=$(tcpdump -nn -e -r "$lab/hub.pcap" -c 1 "icmp and src host $BACKUP" 2>/dev/null | awk '{print $2}')
    [[ $mac =~ ^[0-9a-f]{2}(:[0-9a-f]{2}){5}$ ]] || { echo "make_failover_pcaps: $name: backup MAC not found" >&2; exit 1; }
    for f in hub.pcap backup-mw0.pcap; do
        size=$(stat -c %s "$lab/$f")
        (( size <= MAX_BYTES )) || { echo "make_failover_pcaps: $name: $f is $size bytes (> $MAX_BYTES)" >&2; exit 1; }
    done
    cp "$lab/hub.pcap" "$ROOT/pcaps/$name.hub.pcap"
    cp "$lab/backup-mw0.pcap" "$ROOT/pcaps/$name.tun.pcap"
    grep -m1 'event=transition .*to=recovery' "$lab/migware.log" >"$work/transition.txt"
    line="$name pcaps/$name.hub.pcap pcaps/$name.engine.txt --failover-at $at --backup-capture pcaps/$name.tun.pcap --backup-mac $mac --primary $PRIMARY --backup $BACKUP --port $PORT"
    manifest=$ROOT/pcaps/manifest.txt
    if grep -q "^$name " "$manifest"; then
        grep -v "^$name " "$manifest" >"$work/manifest.new"
        printf '%s\n' "$line" >>"$work/manifest.new"
        cp "$work/manifest.new" "$manifest"
    else
        printf '%s\n' "$line" >>"$manifest"
    fi
    echo "make_failover_pcaps: $name: live takeover: $(cat "$work/transition.txt")" >&2
    "$ROOT/tests/replay/golden.sh" "$BUILD" --update "$name"
done
