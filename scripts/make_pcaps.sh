#!/usr/bin/env bash
# Generate the lab captures in pcaps/ from real Linux TCP traffic between network
# namespaces on a hub (a bridge with ageing_time 0), recorded by tcpdump inside the
# backup namespace, and derive their expected `migware replay --json` tables from
# tcpdump's own decode (scripts/pcaplab/expect.py).
#
#   scripts/make_pcaps.sh            regenerate every capture + expected table + golden
#   scripts/make_pcaps.sh push rst   regenerate only those captures
#   scripts/make_pcaps.sh golden     only re-derive tests/golden/ for the corpus captures
#   scripts/make_pcaps.sh expected   only re-derive pcaps/*.expected.jsonl from existing pcaps
#
# Captures: push reqresp noopts rst midstream two_services vlan (see pcaps/README.md).
# Needs root.  Lab rules (docs: DESIGN.md section 5): only 198.18.0.0/15 addresses,
# namespaces named mwp<pid>-*, removed on exit (trap), every loop bounded by count and time,
# only our own PIDs are ever signalled.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/pcaps"
LAB="$ROOT/scripts/pcaplab"
GOLDEN="$ROOT/tests/golden"
CORPUS="$ROOT/../shared/corpus/pcapplusplus"
ALL_CAPTURES=(push reqresp noopts rst midstream two_services vlan)

PFX="mwp$$-"
NS_HUB="${PFX}hub"
NS_C="${PFX}client"
NS_P="${PFX}primary"
NS_B="${PFX}backup"
IP_C=198.18.0.10
IP_P=198.18.0.1
IP_B=198.18.0.2
VLAN_ID=42
VIP_C=198.18.42.10
VIP_P=198.18.42.1
OFFLOADS=(tx off tso off gso off gro off)

WORK=""
OWN_PIDS=()
TCPDUMP_PID=""
LAST_PID=""

log() { printf 'make_pcaps: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

check_tools() {
    local missing=0 t pkg
    for t in ip:iproute2 tcpdump:tcpdump ethtool:ethtool python3:python3 timeout:coreutils sysctl:procps; do
        pkg=${t#*:}; t=${t%%:*}
        if ! command -v "$t" >/dev/null 2>&1; then
            log "missing tool '$t' (Debian package: $pkg)"
            missing=1
        fi
    done
    [[ $missing -eq 0 ]] || die "install the missing packages (apt-get install ...)"
}

# ---------------------------------------------------------------- cleanup
cleanup() {
    local rc=$? pid ns
    set +e
    for pid in "${OWN_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${OWN_PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    OWN_PIDS=()
    for ns in "$NS_C" "$NS_P" "$NS_B" "$NS_HUB"; do
        ip netns del "$ns" 2>/dev/null
    done
    [[ -n "$WORK" && -d "$WORK" ]] && rm -rf "$WORK"
    return $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# ---------------------------------------------------------------- the hub lab
lab_up() {
    local ns role
    WORK=$(mktemp -d /tmp/mwp$$.XXXXXX)
    for ns in "$NS_HUB" "$NS_C" "$NS_P" "$NS_B"; do
        ip netns add "$ns"
        nsx "$ns" ip link set lo up
        # no IPv6 chatter (RS/MLD/ND) in the captures
        nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    ip -n "$NS_HUB" link add br0 type bridge
    ip -n "$NS_HUB" link set br0 type bridge ageing_time 0 stp_state 0 mcast_snooping 0
    ip -n "$NS_HUB" link set br0 up
    for role in client primary backup; do
        case $role in client) ns=$NS_C;; primary) ns=$NS_P;; backup) ns=$NS_B;; esac
        ip -n "$NS_HUB" link add "p-$role" type veth peer name eth0 netns "$ns"
        ip -n "$NS_HUB" link set "p-$role" master br0
        nsx "$NS_HUB" ethtool -K "p-$role" "${OFFLOADS[@]}" >/dev/null
        nsx "$ns" ethtool -K eth0 "${OFFLOADS[@]}" >/dev/null
        ip -n "$NS_HUB" link set "p-$role" up
        ip -n "$ns" link set eth0 up
    done
    ip -n "$NS_C" addr add "$IP_C/24" dev eth0
    ip -n "$NS_P" addr add "$IP_P/24" dev eth0
    ip -n "$NS_B" addr add "$IP_B/24" dev eth0
}

lab_vlan() {
    # This lab kernel has no CONFIG_VLAN_8021Q (so no "ip link add ... type vlan"), no act_vlan
    # and no bridge vlan_filtering.  A VLAN-42 interface is emulated on the client's and the
    # primary's eth0 with two tc-BPF programs (scripts/pcaplab/vlan_tag.c): egress pushes the
    # 802.1Q tag, ingress checks and pops it.  Frames on the veths and through the hub carry
    # the tag; the backup only sniffs and has no VLAN interface.
    local ns ip role cc obj="$WORK/vlan_tag.o"
    command -v clang >/dev/null || die "missing tool 'clang' (Debian package: clang), needed for vlan"
    command -v tc >/dev/null || die "missing tool 'tc' (Debian package: iproute2)"
    cc=$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
    clang -O2 -target bpf -DVLAN_ID="$VLAN_ID" -I"/usr/include/$cc" \
        -c "$LAB/vlan_tag.c" -o "$obj" || die "cannot build $LAB/vlan_tag.c"
    # keep the tag in the frame data wherever a device would otherwise offload it
    for role in client primary backup; do
        nsx "$NS_HUB" ethtool -K "p-$role" txvlan off rxvlan off >/dev/null
    done
    for ns in "$NS_C" "$NS_P" "$NS_B"; do
        nsx "$ns" ethtool -K eth0 txvlan off rxvlan off >/dev/null
    done
    for ns in "$NS_C" "$NS_P"; do
        [[ $ns == "$NS_C" ]] && ip=$VIP_C || ip=$VIP_P
        ip -n "$ns" addr flush dev eth0
        ip -n "$ns" addr add "$ip/24" dev eth0
        nsx "$ns" tc qdisc add dev eth0 clsact
        nsx "$ns" tc filter add dev eth0 egress bpf direct-action obj "$obj" sec egress
        nsx "$ns" tc filter add dev eth0 ingress bpf direct-action obj "$obj" sec ingress
    done
}

lab_down() {
    local pid ns
    for pid in "${OWN_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${OWN_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    OWN_PIDS=()
    for ns in "$NS_C" "$NS_P" "$NS_B" "$NS_HUB"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$WORK"; WORK=""
}

# ---------------------------------------------------------------- processes
# spawn NS SECONDS cmd... : start a bounded background process in NS, remember its PID
spawn() {
    local ns=$1 secs=$2; shift 2
    ip netns exec "$ns" timeout "$secs" "$@" &
    LAST_PID=$!
    OWN_PIDS+=("$LAST_PID")
}

# wait_pid PID : wait for one of our own background processes, fail on error
wait_pid() {
    local pid=$1 rc=0 p
    wait "$pid" || rc=$?
    local keep=()
    for p in "${OWN_PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    OWN_PIDS=("${keep[@]}")
    return $rc
}

wait_for_file() { # path seconds
    local i n=$(( $2 * 20 ))
    for (( i = 0; i < n; i++ )); do [[ -e $1 ]] && return 0; sleep 0.05; done
    die "timed out waiting for $1"
}

server() { # ns seconds lab.py-server-args...
    local ns=$1 secs=$2 rf; shift 2
    rf="$WORK/ready.$RANDOM$RANDOM"
    spawn "$ns" "$secs" python3 "$LAB/lab.py" server --timeout "$secs" --ready-file "$rf" "$@"
    wait_for_file "$rf" 5
}

client() { # ns lab.py-client-args... (foreground, bounded)
    local ns=$1; shift
    ip netns exec "$ns" timeout 30 python3 "$LAB/lab.py" client --timeout 20 "$@"
}

capture_start() { # file
    local f=$1 i
    rm -f "$f"
    spawn "$NS_B" 60 tcpdump -Z root --immediate-mode -i eth0 -U -w "$f" 2>"$WORK/tcpdump.log"
    TCPDUMP_PID=$LAST_PID
    for (( i = 0; i < 100; i++ )); do
        grep -q 'listening on' "$WORK/tcpdump.log" 2>/dev/null && break
        sleep 0.05
    done
    grep -q 'listening on' "$WORK/tcpdump.log" || die "tcpdump did not start: $(cat "$WORK/tcpdump.log")"
    sleep 0.3
}

capture_stop() {
    sleep 1     # let delayed ACKs and last FIN/ACKs reach the wire
    kill -INT "$TCPDUMP_PID"
    wait_pid "$TCPDUMP_PID" || true
    TCPDUMP_PID=""
    local cap rcv
    cap=$(sed -n 's/^\([0-9]*\) packets\{0,1\} captured.*/\1/p' "$WORK/tcpdump.log")
    rcv=$(sed -n 's/^\([0-9]*\) packets\{0,1\} received by filter.*/\1/p' "$WORK/tcpdump.log")
    log "tcpdump: $cap captured, $rcv received by filter"
    [[ -n $cap && $cap == "$rcv" ]] || die "tcpdump lost frames (captured $cap, received $rcv)"
}

# ---------------------------------------------------------------- captures
cap_push() {
    local f=$OUT/push.pcap p1 p2 p3 s
    server "$NS_P" 30 --bind "$IP_P" --port 7000 --mode sink --conns 3; s=$LAST_PID
    capture_start "$f"
    spawn "$NS_C" 30 python3 "$LAB/lab.py" client --connect "$IP_P:7000" --mode push --tag A --lines 20 --size 100 --gap 0.03; p1=$LAST_PID
    sleep 0.2
    spawn "$NS_C" 30 python3 "$LAB/lab.py" client --connect "$IP_P:7000" --mode push --tag B --lines 20 --size 100 --gap 0.03; p2=$LAST_PID
    sleep 0.2
    spawn "$NS_C" 30 python3 "$LAB/lab.py" client --connect "$IP_P:7000" --mode push --tag C --lines 20 --size 100 --gap 0.03; p3=$LAST_PID
    wait_pid "$p1"; wait_pid "$p2"; wait_pid "$p3"; wait_pid "$s"
    capture_stop
}

cap_reqresp() {
    local f=$OUT/reqresp.pcap p2 s hold
    hold="$WORK/hold"
    server "$NS_P" 30 --bind "$IP_P" --port 7000 --mode reqresp --conns 2; s=$LAST_PID
    capture_start "$f"
    client "$NS_C" --connect "$IP_P:7000" --mode reqresp --tag REQA --lines 10 --size 60 --gap 0.02
    spawn "$NS_C" 30 python3 "$LAB/lab.py" client --connect "$IP_P:7000" --mode reqresp --tag REQB --lines 10 --size 60 --gap 0.02 --hold-file "$hold" --timeout 20; p2=$LAST_PID
    sleep 1.5
    capture_stop              # connection B is still open here
    touch "$hold"
    wait_pid "$p2"; wait_pid "$s"
}

cap_noopts() {
    local f=$OUT/noopts.pcap s
    nsx "$NS_C" sysctl -qw net.ipv4.tcp_timestamps=0 net.ipv4.tcp_window_scaling=0 net.ipv4.tcp_sack=0
    server "$NS_P" 30 --bind "$IP_P" --port 7000 --mode sink --conns 1; s=$LAST_PID
    capture_start "$f"
    client "$NS_C" --connect "$IP_P:7000" --mode push --tag N --lines 20 --size 100 --gap 0.01
    wait_pid "$s"
    capture_stop
}

cap_rst() {
    local f=$OUT/rst.pcap s
    server "$NS_P" 30 --bind "$IP_P" --port 7000 --mode sink --conns 1; s=$LAST_PID
    capture_start "$f"
    client "$NS_C" --connect "$IP_P:7000" --mode rst --tag R --lines 5 --size 100 --gap 0.02
    wait_pid "$s"
    capture_stop
}

cap_midstream() {
    local f=$OUT/midstream.pcap s c
    server "$NS_P" 30 --bind "$IP_P" --port 7000 --mode sink --conns 1; s=$LAST_PID
    spawn "$NS_C" 30 python3 "$LAB/lab.py" client --connect "$IP_P:7000" --mode midstream --tag M --lines 5 --lines2 10 --size 100 --gap 0.02 --ready-file "$WORK/mready" --go-file "$WORK/mgo"; c=$LAST_PID
    wait_for_file "$WORK/mready" 10
    sleep 0.3    # handshake and first data fully ACKed before the capture starts
    capture_start "$f"
    touch "$WORK/mgo"
    wait_pid "$c"; wait_pid "$s"
    capture_stop
}

cap_two_services() {
    local f=$OUT/two_services.pcap s1 s2 s3
    server "$NS_P" 30 --bind "$IP_P" --port 7000 --mode sink --conns 1; s1=$LAST_PID
    server "$NS_P" 30 --bind "$IP_P" --port 7001 --mode sink --conns 1; s2=$LAST_PID
    server "$NS_B" 30 --bind "$IP_B" --port 7000 --mode sink --conns 1; s3=$LAST_PID
    capture_start "$f"
    client "$NS_C" --connect "$IP_P:7000" --mode push --tag S7000 --lines 10 --size 100 --gap 0.01
    # bulk: 10 x 2000-byte writes back to back, so MSS-sized (1514-byte) frames appear
    client "$NS_C" --connect "$IP_P:7001" --mode push --tag S7001 --lines 10 --size 2000 --gap 0
    client "$NS_C" --connect "$IP_B:7000" --mode push --tag B7000 --lines 10 --size 100 --gap 0.01
    wait_pid "$s1"; wait_pid "$s2"; wait_pid "$s3"
    capture_stop
}

cap_vlan() {
    local f=$OUT/vlan.pcap s
    lab_vlan
    server "$NS_P" 30 --bind "$VIP_P" --port 7000 --mode sink --conns 1; s=$LAST_PID
    capture_start "$f"
    client "$NS_C" --connect "$VIP_P:7000" --mode push --tag V --lines 20 --size 100 --gap 0.01
    wait_pid "$s"
    capture_stop
    local total tagged
    total=$(tcpdump -nn -e -r "$f" 2>/dev/null | wc -l)
    tagged=$(tcpdump -nn -e -r "$f" 2>/dev/null | grep -c "ethertype 802.1Q (0x8100), length [0-9]*: vlan $VLAN_ID," || true)
    log "vlan: $tagged of $total frames carry an 802.1Q tag with VLAN $VLAN_ID"
    [[ $total -gt 0 && $tagged == "$total" ]] || die "vlan.pcap: not every frame is tagged"
}

# ---------------------------------------------------------------- expected tables
expect_one() { # name
    local n=$1
    python3 "$LAB/expect.py" --check "$OUT/$n.pcap" > "$OUT/$n.expected.jsonl"
    if [[ $n == two_services ]]; then
        python3 "$LAB/expect.py" --server "$IP_P:7000" "$OUT/$n.pcap" > "$OUT/$n.server7000.expected.jsonl"
    fi
}

expect_golden() {
    mkdir -p "$GOLDEN"
    local n
    for n in one_tcp_stream_max_seq three_http_streams; do
        python3 "$LAB/expect.py" "$CORPUS/$n.pcap" > "$GOLDEN/$n.expected.jsonl"
    done
}

run_capture() {
    local n=$1
    log "== $n"
    lab_up
    "cap_$n"
    lab_down
    expect_one "$n"
    log "$n: $(wc -c < "$OUT/$n.pcap") bytes, $(($(wc -l < "$OUT/$n.expected.jsonl") - 1)) connection(s)"
}

main() {
    local targets=("$@") n
    [[ ${#targets[@]} -gt 0 ]] || targets=("${ALL_CAPTURES[@]}" golden)
    check_tools
    mkdir -p "$OUT"
    for n in "${targets[@]}"; do
        case $n in
            golden) expect_golden ;;
            expected) for c in "${ALL_CAPTURES[@]}"; do expect_one "$c"; done ;;
            push|reqresp|noopts|rst|midstream|two_services|vlan)
                [[ $(id -u) -eq 0 ]] || die "must run as root (network namespaces)"
                run_capture "$n" ;;
            *) die "unknown capture '$n' (known: ${ALL_CAPTURES[*]} golden expected)" ;;
        esac
    done
}

main "$@"
