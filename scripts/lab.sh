#!/usr/bin/env bash
# The migware hub lab (DESIGN.md sections 4 and 5), as a sourceable bash library and a small CLI.
#
#   source scripts/lab.sh; lab_init mwl$$-; lab_up; ...; lab_down
#   scripts/lab.sh up PREFIX       build the lab and leave it up (manual use)
#   scripts/lab.sh down PREFIX     remove it
#   scripts/lab.sh pull|plug PREFIX  pull / plug the primary's cable
#   LAB_TOPOLOGY=mirror scripts/lab.sh up PREFIX   the switch-with-SPAN-port topology
#   LAB_BACKUPS=3 LAB_WITNESS=1 scripts/lab.sh up PREFIX   extra hosts for the cluster lab
#
# Topologies (LAB_TOPOLOGY, default hub; DESIGN.md 4.1 and 4.7):
#   hub     br0 has ageing_time 0: it floods every frame to every port, like a hub.
#   mirror  br0 is a learning switch (default ageing, 300 s); the primary's port is mirrored,
#           ingress and egress, to the backup's port with tc mirred (u32 match-all; the
#           matchall classifier is not in this kernel).  The backup's port is also an ordinary
#           switch port.  Once the switch has learnt the primary's MAC, unicast to the primary
#           reaches the backup only through the mirror.
#
# Namespaces PREFIX-hub (bridge br0, stp off, mcast_snooping off),
# PREFIX-client 198.18.0.10/24, PREFIX-primary 198.18.0.1/24, PREFIX-backup 198.18.0.2/24.
# Hub ports p-client / p-primary / p-backup are veth peers of eth0 in each host namespace.
# Offloads (tx/tso/gso/gro) are off on every veth end, so the sniffer sees a real wire
# (DESIGN.md 4.2).  IPv6 is disabled everywhere (no RS/ND/MLD chatter).
# Lab rules: only 198.18.0.0/15, unique per-run prefix, the caller removes the lab on exit.
#
# Optional extra hosts (issue 12, the cluster lab; scripts/cluster.sh), additive: with both
# unset the lab is exactly the one above.
#   LAB_BACKUPS=1|2|3 (default 1)  adds PREFIX-backup2 198.18.0.3 (hub port p-backup2) and
#                                  PREFIX-backup3 198.18.0.4 (p-backup3), same settings.
#   LAB_WITNESS=1                  adds PREFIX-witness 198.18.0.9 (hub port p-witness).
# lab_backup_ns|lab_backup_ip|lab_backup_port I (I = 1..3; 1 is PREFIX-backup, 198.18.0.2,
# p-backup) print a backup's namespace, address and hub port.  lab_down removes them all.
#
# The library sets no traps and never exits the caller's shell: functions return non-zero.

LAB_IP_CLIENT=198.18.0.10
LAB_IP_PRIMARY=198.18.0.1
LAB_IP_BACKUP=198.18.0.2
LAB_IP_BACKUP2=198.18.0.3
LAB_IP_BACKUP3=198.18.0.4
LAB_IP_WITNESS=198.18.0.9
LAB_BACKUPS=${LAB_BACKUPS:-1}
LAB_WITNESS=${LAB_WITNESS:-0}
LAB_OFFLOADS=(tx off tso off gso off gro off)
LAB_PREFIX=${LAB_PREFIX:-}
LAB_TOPOLOGY=${LAB_TOPOLOGY:-hub}

lab_log() { printf 'lab: %s\n' "$*" >&2; }

# lab_init PREFIX : choose the namespace names (call before anything else)
lab_init() {
    local p=${1:?lab_init PREFIX}
    if [[ ! $p =~ ^[A-Za-z0-9_.-]{1,32}$ ]]; then
        lab_log "bad prefix '$p' (letters, digits, _ . - only)"; return 1
    fi
    [[ $p == *- ]] || p="$p-"
    LAB_PREFIX=$p
    LAB_NS_HUB="${p}hub"
    LAB_NS_CLIENT="${p}client"
    LAB_NS_PRIMARY="${p}primary"
    LAB_NS_BACKUP="${p}backup"
    LAB_NS_BACKUP2="${p}backup2"
    LAB_NS_BACKUP3="${p}backup3"
    LAB_NS_WITNESS="${p}witness"
}

# lab_backup_ns I / lab_backup_ip I / lab_backup_port I : backup I's namespace, IPv4, hub port
lab_backup_ns() {
    case ${1:-} in 1) echo "$LAB_NS_BACKUP";; 2) echo "$LAB_NS_BACKUP2";; 3) echo "$LAB_NS_BACKUP3";;
        *) lab_log "no backup '${1:-}' (1..3)"; return 1;; esac
}
lab_backup_ip() {
    case ${1:-} in 1) echo "$LAB_IP_BACKUP";; 2) echo "$LAB_IP_BACKUP2";; 3) echo "$LAB_IP_BACKUP3";;
        *) lab_log "no backup '${1:-}' (1..3)"; return 1;; esac
}
lab_backup_port() {
    case ${1:-} in 1) echo p-backup;; 2) echo p-backup2;; 3) echo p-backup3;;
        *) lab_log "no backup '${1:-}' (1..3)"; return 1;; esac
}

# lab_extra_hosts : "ROLE:NS:IP" for each optional host asked for (none by default)
lab_extra_hosts() {
    if [[ $LAB_BACKUPS == [23] ]]; then echo "backup2:$LAB_NS_BACKUP2:$LAB_IP_BACKUP2"; fi
    if [[ $LAB_BACKUPS == 3 ]]; then echo "backup3:$LAB_NS_BACKUP3:$LAB_IP_BACKUP3"; fi
    if [[ $LAB_WITNESS == 1 ]]; then echo "witness:$LAB_NS_WITNESS:$LAB_IP_WITNESS"; fi
    return 0
}

lab_check_tools() {
    local t pkg missing=0
    for t in ip:iproute2 ethtool:ethtool tcpdump:tcpdump python3:python3 timeout:coreutils sysctl:procps; do
        pkg=${t#*:}; t=${t%%:*}
        command -v "$t" >/dev/null 2>&1 || { lab_log "missing tool '$t' (Debian package: $pkg)"; missing=1; }
    done
    if [[ $(id -u) -ne 0 ]]; then lab_log "needs root (network namespaces)"; missing=1; fi
    return $missing
}

# nsx NS CMD... : run CMD inside namespace NS
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# lab_sysctl NS key=value... : per-namespace sysctls
lab_sysctl() { local ns=$1; shift; ip netns exec "$ns" sysctl -qw "$@"; }

# lab_client_no_options : client without TCP timestamps and window scaling ("no options" runs)
lab_client_no_options() {
    lab_sysctl "$LAB_NS_CLIENT" net.ipv4.tcp_timestamps=0 net.ipv4.tcp_window_scaling=0
}

# lab_raise_limits : accept queues big enough for thousands of simultaneous connects
lab_raise_limits() {
    local ns h extra=()
    while IFS= read -r h; do
        if [[ $h == backup* ]]; then h=${h#*:}; extra+=("${h%%:*}"); fi
    done < <(lab_extra_hosts)
    for ns in "$LAB_NS_PRIMARY" "$LAB_NS_BACKUP" "${extra[@]}"; do
        lab_sysctl "$ns" net.core.somaxconn=16384 net.ipv4.tcp_max_syn_backlog=16384 || return 1
    done
    lab_sysctl "$LAB_NS_CLIENT" net.ipv4.ip_local_port_range="20000 60999" || return 1
}

lab_exists() { ip netns list 2>/dev/null | grep -q "^${LAB_NS_HUB}\b"; }

lab_up() {
    [[ -n $LAB_PREFIX ]] || { lab_log "lab_init PREFIX first"; return 1; }
    local ns role dev ageing h
    local -a extra=()
    case $LAB_BACKUPS in 1|2|3) ;; *) lab_log "LAB_BACKUPS must be 1, 2 or 3, not '$LAB_BACKUPS'"; return 1;; esac
    case $LAB_WITNESS in 0|1) ;; *) lab_log "LAB_WITNESS must be 0 or 1, not '$LAB_WITNESS'"; return 1;; esac
    mapfile -t extra < <(lab_extra_hosts)
    if [[ ${#extra[@]} -gt 0 && $LAB_TOPOLOGY != hub ]]; then
        lab_log "extra hosts (LAB_BACKUPS/LAB_WITNESS) need LAB_TOPOLOGY=hub"; return 1
    fi
    case $LAB_TOPOLOGY in
        hub) ageing=0 ;;
        mirror) ageing=30000 ;;          # the kernel's default (centiseconds): a learning switch
        *) lab_log "unknown LAB_TOPOLOGY '$LAB_TOPOLOGY' (hub|mirror)"; return 1 ;;
    esac
    if [[ $LAB_TOPOLOGY == mirror ]] && ! command -v tc >/dev/null 2>&1; then
        lab_log "missing tool 'tc' (Debian package: iproute2)"; return 1
    fi
    if lab_exists; then lab_log "lab $LAB_PREFIX already exists"; return 1; fi
    for ns in "$LAB_NS_HUB" "$LAB_NS_CLIENT" "$LAB_NS_PRIMARY" "$LAB_NS_BACKUP" "${extra[@]}"; do
        ns=${ns#*:}; ns=${ns%%:*}
        ip netns add "$ns" || return 1
        ip -n "$ns" link set lo up || return 1
        lab_sysctl "$ns" net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
            net.ipv6.conf.lo.disable_ipv6=1 || return 1
    done
    ip -n "$LAB_NS_HUB" link add br0 type bridge || return 1
    ip -n "$LAB_NS_HUB" link set br0 type bridge ageing_time "$ageing" stp_state 0 mcast_snooping 0 || return 1
    ip -n "$LAB_NS_HUB" link set br0 up || return 1
    for role in client primary backup "${extra[@]}"; do
        case $role in
            client) ns=$LAB_NS_CLIENT;; primary) ns=$LAB_NS_PRIMARY;; backup) ns=$LAB_NS_BACKUP;;
            *) ns=${role#*:}; ns=${ns%%:*}; role=${role%%:*};;
        esac
        dev="p-$role"
        ip -n "$LAB_NS_HUB" link add "$dev" type veth peer name eth0 netns "$ns" || return 1
        # veth ends created after disable_ipv6.default get no IPv6; set it explicitly anyway
        lab_sysctl "$ns" net.ipv6.conf.eth0.disable_ipv6=1 || return 1
        lab_sysctl "$LAB_NS_HUB" "net.ipv6.conf.$dev.disable_ipv6=1" || return 1
        ip -n "$LAB_NS_HUB" link set "$dev" master br0 || return 1
        nsx "$LAB_NS_HUB" ethtool -K "$dev" "${LAB_OFFLOADS[@]}" >/dev/null || return 1
        nsx "$ns" ethtool -K eth0 "${LAB_OFFLOADS[@]}" >/dev/null || return 1
        ip -n "$LAB_NS_HUB" link set "$dev" up || return 1
        ip -n "$ns" link set eth0 up || return 1
    done
    ip -n "$LAB_NS_CLIENT" addr add "$LAB_IP_CLIENT/24" dev eth0 || return 1
    ip -n "$LAB_NS_PRIMARY" addr add "$LAB_IP_PRIMARY/24" dev eth0 || return 1
    ip -n "$LAB_NS_BACKUP" addr add "$LAB_IP_BACKUP/24" dev eth0 || return 1
    for h in "${extra[@]}"; do
        ip -n "$(cut -d: -f2 <<<"$h")" addr add "${h##*:}/24" dev eth0 || return 1
    done
    lab_raise_limits || return 1
    lab_verify_offloads || return 1
    if [[ $LAB_TOPOLOGY == mirror ]]; then lab_mirror_up || return 1; fi
    if [[ -n ${LAB_VLAN:-} ]]; then lab_vlan_up "$LAB_VLAN" || return 1; fi
}

# lab_vlan_up VID : every host's eth0 speaks 802.1Q VLAN VID on the wire (issue 5).
# This kernel has no 8021q module (no `ip link add ... type vlan`), so a VLAN interface is
# emulated with two tc-BPF programs per eth0 (scripts/pcaplab/vlan_tag.c): egress tags
# untagged frames, ingress accepts only VID and pops the tag. Frames through the hub, and in
# the backup's capture, carry the tag; frames migware injects already tagged pass as they are.
lab_vlan_up() {
    local vid=$1 ns obj="/dev/shm/${LAB_PREFIX}vlan_tag.o" src
    src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/pcaplab/vlan_tag.c"
    command -v clang >/dev/null || { lab_log "missing tool 'clang' (Debian package: clang)"; return 1; }
    clang -O2 -target bpf -DVLAN_ID="$vid" -I"/usr/include/$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)" \
        -c "$src" -o "$obj" || { lab_log "cannot build $src"; return 1; }
    local h extra_ns=() extra_dev=()
    while IFS= read -r h; do
        [[ -n $h ]] || continue
        h=${h%:*}; extra_ns+=("${h#*:}"); extra_dev+=("p-${h%%:*}")
    done < <(lab_extra_hosts)
    for ns in "$LAB_NS_CLIENT" "$LAB_NS_PRIMARY" "$LAB_NS_BACKUP" "${extra_ns[@]}"; do
        nsx "$ns" ethtool -K eth0 txvlan off rxvlan off >/dev/null 2>&1
        nsx "$ns" tc qdisc add dev eth0 clsact || return 1
        nsx "$ns" tc filter add dev eth0 egress bpf direct-action obj "$obj" sec egress || return 1
        nsx "$ns" tc filter add dev eth0 ingress bpf direct-action obj "$obj" sec ingress || return 1
    done
    for dev in p-client p-primary p-backup "${extra_dev[@]}"; do
        nsx "$LAB_NS_HUB" ethtool -K "$dev" txvlan off rxvlan off >/dev/null 2>&1
    done
    rm -f "$obj"
}

# lab_mirror_up : SPAN port, p-primary's ingress and egress copied out of p-backup (DESIGN.md 4.7)
lab_mirror_up() {
    local dir
    nsx "$LAB_NS_HUB" tc qdisc add dev p-primary clsact || return 1
    for dir in ingress egress; do
        nsx "$LAB_NS_HUB" tc filter add dev p-primary "$dir" protocol all \
            u32 match u32 0 0 action mirred egress mirror dev p-backup || return 1
    done
    lab_verify_mirror
}

# lab_mirror_down : remove the mirror (the switch stays a learning switch); for manual checks
lab_mirror_down() { nsx "$LAB_NS_HUB" tc qdisc del dev p-primary clsact; }

# lab_verify_mirror : both mirred filters are installed (a silently missing one fakes the SPAN)
lab_verify_mirror() {
    local dir out
    for dir in ingress egress; do
        # no `tc | grep -q`: under the caller's pipefail, grep's early exit gives tc SIGPIPE
        out=$(nsx "$LAB_NS_HUB" tc filter show dev p-primary "$dir") || return 1
        if ! grep -q 'mirred (Egress Mirror to device p-backup)' <<<"$out"; then
            lab_log "no mirred filter on p-primary $dir"; return 1
        fi
    done
}

# lab_fdb : the switch's learnt MACs per port (dynamic entries only), for evidence
lab_fdb() { nsx "$LAB_NS_HUB" bridge fdb show br br0 dynamic 2>/dev/null || nsx "$LAB_NS_HUB" bridge fdb show br br0; }

# lab_mac NS : eth0's MAC in a host namespace
lab_mac() { ip -n "$1" -o link show eth0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2; }

# every veth end must report the offloads off (a silently ignored ethtool -K would fake the wire)
lab_verify_offloads() {
    local ns dev bad=0 out h
    local -a extra=()
    while IFS= read -r h; do
        [[ -n $h ]] || continue
        h=${h%:*}; extra+=("$LAB_NS_HUB:p-${h%%:*}" "${h#*:}:eth0")
    done < <(lab_extra_hosts)
    for ns in "$LAB_NS_HUB:p-client" "$LAB_NS_HUB:p-primary" "$LAB_NS_HUB:p-backup" \
              "$LAB_NS_CLIENT:eth0" "$LAB_NS_PRIMARY:eth0" "$LAB_NS_BACKUP:eth0" "${extra[@]}"; do
        dev=${ns#*:}; ns=${ns%%:*}
        out=$(nsx "$ns" ethtool -k "$dev") || return 1
        if grep -Eq '^(tx-checksumming|tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload): on' <<<"$out"; then
            lab_log "offloads still on for $ns/$dev"; bad=1
        fi
    done
    return $bad
}

lab_down() {
    [[ -n $LAB_PREFIX ]] || return 0
    local ns
    for ns in "$LAB_NS_CLIENT" "$LAB_NS_PRIMARY" "$LAB_NS_BACKUP" \
              "$LAB_NS_BACKUP2" "$LAB_NS_BACKUP3" "$LAB_NS_WITNESS" "$LAB_NS_HUB"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    # deletion is asynchronous in the kernel, but the names are gone at once
    ! ip netns list 2>/dev/null | grep -q "^${LAB_PREFIX}"
}

# pull_cable / plug_cable : the thesis's experiment, the primary's hub port down / up
pull_cable() { ip -n "$LAB_NS_HUB" link set p-primary down; }
plug_cable() { ip -n "$LAB_NS_HUB" link set p-primary up; }

# ---------------------------------------------------------------- CLI
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -uo pipefail
    usage() { echo "usage: [LAB_TOPOLOGY=hub|mirror] $0 up|down|pull|plug|fdb PREFIX" >&2; exit 2; }
    [[ $# -eq 2 ]] || usage
    lab_init "$2" || exit 2
    case $1 in
        up)
            lab_check_tools || exit 1
            if ! lab_up; then lab_log "lab_up failed; removing"; lab_down; exit 1; fi
            lab_log "up ($LAB_TOPOLOGY): ${LAB_NS_CLIENT} ${LAB_IP_CLIENT}, ${LAB_NS_PRIMARY} ${LAB_IP_PRIMARY}, ${LAB_NS_BACKUP} ${LAB_IP_BACKUP}, hub ${LAB_NS_HUB}"
            while IFS= read -r h; do lab_log "  + ${h#*:}"; done < <(lab_extra_hosts)
            ;;
        down) lab_down ;;
        pull) pull_cable ;;
        plug) plug_cable ;;
        fdb) lab_fdb ;;
        *) usage ;;
    esac
fi
