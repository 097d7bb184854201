#!/usr/bin/env bash
# Replies in flight at the failure (issue 13, DESIGN.md 6b): keep-alive HTTP downloads from
# nginx, the primary's cable pulled mid-download, migware in --recovery.mode aligned.
#
#   tests/lab/replay_http.sh BUILD_DIR [--mode aligned|push|full] [--diverge] [--keep]
#                            [--clients N] [--duration S] [--pull-at S] [--rate BYTES_PER_S]
#                            [--capture]   (evidence: tcpdump headers on the client's and the
#                                          backup's eth0, kept with --keep)
#
# nginx on the primary and on the backup serves /2m.bin (2 MiB) and /40k.bin (40 KiB) of
# random bytes, with deterministic replies (no Date header, no version, equal mtimes).  N
# clients (default 10; tests/lab/http_clients.py), one keep-alive connection each, download
# the two files in turn for S seconds (default 8), paced at RATE bytes/s per client (default
# 3 MB/s, spread 0.6x to 1.4x over the clients; 32 KiB receive buffer) so that the replies
# are in flight on the wire, not parked in the client's socket buffer.  The cable is pulled --pull-at s (default 2) after the start.
#
# Same files on both servers (replay_http_downloads): PASS only if every request completed
# with the right body (byte for byte), no stall (10 s per request), no error, every client
# completed requests after the pull on its same connection, migware reached proxy, counted
# replay_aligned >= 1 (in aligned mode) and replay_diverged = 0.  `--mode push` must fail:
# the requests in flight at the pull stall (the backup never gets them).
#
# --diverge (replay_diverge.sh): the backup serves DIFFERENT files (same sizes, same mtimes,
# other random bytes) at the same paths.  A client whose reply was in flight keeps nothing but
# what migware can prove equal: PASS only if no body is ever mixed (part primary, part
# backup), every body completed before the pull is the primary's and every body requested
# after the pull is wholly the backup's, replay_diverged >= 1 and equals the number of
# connections reset at the pull, and no other error (no stall, no EOF).  A reset client
# reconnects (counted) and carries on until the end; its later bodies must be the backup's.
#
# --capture-loss N (replay_capture_loss): the hub drops one in N of the primary's TCP frames, at
# random, on their way to the backup's port only (tests/lab/capture_loss.c, tc-BPF on the hub's
# p-backup; the client gets them all), so migware sees the replies with holes, as a busy
# capture does.  A reply it did not see whole cannot be checked: PASS only if every client
# either got its whole body or was reset, never a stall (timeout) or an EOF; no mixed or wrong
# body; migware saw the holes; migware counted at least as many resets
# (unrecovered_reply_not_seen_whole and the other reset reasons) as the clients saw;
# replay_as_push is 0; every client completed requests after the pull (reset ones on a new
# connection).  Today's push fallback
# fails it: the clients whose replies had holes wait for bytes nobody sends.
#
# Ends with `replay_http: N passed, M failed` (checks); exit 0 only if none failed.  Needs root.
set -uo pipefail
RL_NAME=replay_http RL_NAME_TAG=h
BUILD="" MODE=aligned DIVERGE=0 LOSS=0 CAPTURE=0 CLIENTS=10 DURATION=8 PULL_AT=2 RATE=3000000 RCVBUF=32768 TIMEOUT=10
ARGS=("$@")
# shellcheck source=replay_lib.sh
source "$(dirname "$0")/replay_lib.sh"
while [[ $# -gt 0 ]]; do
    case $1 in
        --diverge) DIVERGE=1; shift;;
        --capture) CAPTURE=1; shift;;
        --capture-loss) [[ $# -ge 2 && $2 =~ ^[0-9]+$ && $2 -ge 2 ]] || { echo "replay_http: --capture-loss N (N >= 2)" >&2; exit 2; }
            LOSS=$2; shift 2;;
        --rate) [[ $# -ge 2 ]] || { echo "replay_http: --rate needs a value" >&2; exit 2; }; RATE=$2; shift 2;;
        *) rl_opt "$@"; shift "$RL_SHIFT";;
    esac
done
rl_build_dir
rl_check_opts 30
[[ $DIVERGE -eq 1 && $LOSS -gt 0 ]] && { echo "replay_http: --diverge or --capture-loss, not both" >&2; exit 2; }
[[ $DIVERGE -eq 1 ]] && RL_NAME=replay_diverge RL_NAME_TAG=d
[[ $LOSS -gt 0 ]] && RL_NAME=replay_capture_loss RL_NAME_TAG=l
RL_BOUND=$(awk "BEGIN{printf \"%d\", $DURATION + $TIMEOUT + 60}")
rl_bound "${ARGS[@]}"
rl_setup
rl_log "mode=$MODE diverge=$DIVERGE capture_loss=1/$LOSS clients=$CLIENTS duration=${DURATION}s pull at ${PULL_AT}s rate=${RATE}B/s per client prefix=$LAB_PREFIX"

# The files: created once, copied with their mtime; the divergent backup gets other bytes
# with the same sizes and the same mtime (so the same headers, ETag included).
rl_files "$RL_WORK/www-primary" primary
if [[ $DIVERGE -eq 1 ]]; then
    rl_files "$RL_WORK/www-backup" backup
else
    cp -rp "$RL_WORK/www-primary" "$RL_WORK/www-backup"
fi
rl_nginx primary "$LAB_NS_PRIMARY" "$RL_WORK/www-primary"
rl_nginx backup "$LAB_NS_BACKUP" "$RL_WORK/www-backup"
# The two servers' headers must be equal, or aligned replay could never match a digest.
hdr() { ip netns exec "$1" "$RL_PY" - "$2" <<'PY'
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=3)
s.sendall(b"HEAD /2m.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
d = b""
while True:
    c = s.recv(4096)
    if not c:
        break
    d += c
sys.stdout.write(d.decode("latin-1"))
PY
}
hp=$(hdr "$LAB_NS_PRIMARY" 127.0.0.1) hb=$(hdr "$LAB_NS_BACKUP" 127.0.0.1)
[[ -n $hp && $hp == "$hb" ]] || rl_fatal "the servers' headers differ: primary '$hp' backup '$hb'"
grep -qi '^Date:' <<<"$hp" && rl_fatal "nginx still sends a Date header"
rl_log "reply headers, equal on both servers: $(tr -d '\r' <<<"$hp" | paste -sd'|')"

if [[ $CAPTURE -eq 1 ]]; then
    for side in client backup; do
        ns=$LAB_NS_CLIENT; [[ $side == backup ]] && ns=$LAB_NS_BACKUP
        rl_spawn "$ns" "$RL_BOUND" /dev/null "$RL_WORK/tcpdump-$side.log" \
            tcpdump -i eth0 -nn -s 96 --immediate-mode -U -B 65536 -Z root -w "$RL_WORK/$side.pcap" tcp port 80
        rl_wait 5 "$RL_LAST" "tcpdump ($side)" grep -qs 'listening on' "$RL_WORK/tcpdump-$side.log" \
            || rl_fatal "tcpdump ($side) did not start"
    done
fi
MIG_ARGS=(--recovery.mode "$MODE")
[[ $MODE == push ]] && MIG_ARGS=()        # push is the default; the old binary knows no --recovery.mode
# benchmarks only (scripts/bench_capture.sh): extra daemon options, split on spaces
read -r -a extra <<<"${RL_MIGWARE_EXTRA:-}"
MIG_ARGS+=("${extra[@]}")
[[ $LOSS -gt 0 ]] && rl_drop_frames "$LAB_IP_PRIMARY" "$LOSS"
rl_migware "$BUILD/bin/migware" 80 "${MIG_ARGS[@]}"

CLIENT_ARGS=(--server "$LAB_IP_PRIMARY:80" --clients "$CLIENTS" --paths "/2m.bin,/40k.bin"
    --primary-dir "$RL_WORK/www-primary" --duration "$DURATION" --timeout "$TIMEOUT"
    --rate "$RATE" --rcvbuf "$RCVBUF")
[[ $DIVERGE -eq 1 ]] && CLIENT_ARGS+=(--backup-dir "$RL_WORK/www-backup" --reconnect)
[[ $LOSS -gt 0 ]] && CLIENT_ARGS+=(--reconnect)
rl_start_clients $(( ${DURATION%.*} + TIMEOUT + 20 )) "$RL_PY" "$RL_HERE/http_clients.py" "${CLIENT_ARGS[@]}"
rl_sleep_until_client_time "$PULL_AT"
rl_pull
rl_finish_clients
rl_counters
rl_stop_migware; mig_rc=$RL_RC
for r in primary backup; do
    a="$RL_WORK/nginx-$r/access.log"; [[ -f $a ]] && eval "served_$r=$(wc -l <"$a")"
done

# ---------------------------------------------------------------- verdict
tail -n 1 "$RL_WORK/clients.err" | sed 's/^/   /'
# the clients' figures, and the checks' inputs (shell variables)
rl_figures "$RL_WORK/clients.json" "$DIVERGE" "$RL_WORK/migware.log" <<'PY' || rl_fatal "cannot read the client report"
import json, re, sys
s = json.load(open(sys.argv[1]))
diverge = sys.argv[2] == "1"
pull = s["pull_ns"]
t = s["total"]
reset_at_pull = other_errors = clients_after = bad_order = resets = not_resets = 0
reset_ports = set()
in_flight = t["requests_spanning_pull"]      # completed across the pull, and the ones that died
for c in s["clients"]:
    for e in c["errors"]:
        at_pull = (e["kind"] == "reset" and e.get("sent_before_pull")
                   and 0 <= e.get("since_pull_ms", -1) <= 5000)
        if e.get("sent_before_pull"):
            in_flight += 1
        if e["kind"] == "reset":
            resets += 1
        else:
            not_resets += 1
        if diverge and at_pull:
            reset_at_pull += 1
            reset_ports.add(e.get("port"))
        else:
            other_errors += 1
        print(f"   client {c['client']} conn {e['conn']}: {e['kind']} {e.get('since_pull_ms')} ms "
              f"after the pull, {e['path']} sent {'before' if e.get('sent_before_pull') else 'after'} "
              f"it, {e['body_received']} body bytes received; {e['detail'][:100]}")
    for r in c["spanning"]:
        print(f"   client {c['client']} conn {r['conn']}: {r['path']} in flight at the pull, "
              f"completed {r['ms_after_pull']} ms after it, body {r['class']}")
    if c["after_pull"] > 0:
        clients_after += 1
    for m in c["mixed"]:
        print(f"   MIXED client {c['client']} conn {m['conn']} {m['path']}: {json.dumps(m['mixed'])}")
    if diverge and pull:
        # completed before the pull: the primary's; requested after it: wholly the backup's
        for path, conn, cls, sent, done, sent_after in c["log"]:
            want = "primary" if done < 0 else "backup" if sent_after else None
            if want and cls != want:
                bad_order += 1
                print(f"   client {c['client']} conn {conn}: {path} sent {sent} ms, done {done} ms "
                      f"from the pull: body {cls}, expected {want}")
# the connections migware says it reset (event=replay_diverged client=IP:PORT), against the
# ones the clients saw reset at the pull
logged = set()
for line in open(sys.argv[3], errors="replace"):
    m = re.search(r"event=replay_diverged client=198\.18\.0\.10:(\d+)", line)
    if m:
        logged.add(int(m.group(1)))
if diverge:
    for p in sorted(logged - reset_ports):
        print(f"   migware logged a divergence on client port {p}, but no client saw a reset there at the pull")
    for p in sorted(reset_ports - logged):
        print(f"   client port {p} was reset at the pull, but migware logged no divergence for it")
figures(dict(T_REQ=t["requests"], T_BEFORE=t["requests_before_pull"], T_AFTER=t["requests_after_pull"],
         T_SPAN=t["requests_spanning_pull"], T_BYTES=t["bytes"], T_PRIMARY=t["primary"],
         T_BACKUP=t["backup"], T_MIXED=t["mixed"], T_ERRORS=t["errors"],
         T_RECONNECTS=t["reconnects"], T_GAP=t["worst_gap_ms"], T_WORST_REQ=t["worst_request_ms"],
         STUCK=len(s["stuck_threads"]), RESET_AT_PULL=reset_at_pull, OTHER_ERRORS=other_errors,
         CLIENTS_AFTER=clients_after, NCLIENTS=len(s["clients"]), HAVE_PULL=1 if pull else 0,
         BAD_ORDER=bad_order, IN_FLIGHT=in_flight, RESETS=resets, NOT_RESETS=not_resets,
         PORTS_MATCH=1 if logged == reset_ports else 0, N_LOGGED=len(logged)))
PY
echo "   requests: $T_REQ completed ($T_BEFORE before the pull, $T_SPAN across it, $T_AFTER sent after it); $IN_FLIGHT in flight at the pull; $T_BYTES body bytes checked"
echo "   bodies: primary $T_PRIMARY, backup $T_BACKUP, mixed $T_MIXED; errors $T_ERRORS, reconnects $T_RECONNECTS"
echo "   worst gap between two reads ${T_GAP} ms, slowest request ${T_WORST_REQ} ms (timeout ${TIMEOUT} s)"
echo "   nginx requests served: primary ${served_primary:-?}, backup ${served_backup:-?}"
rl_transitions
rl_replay_figures

check "the pull happened during the downloads ($IN_FLIGHT replies in flight at it)" \
    "$([[ $HAVE_PULL -eq 1 && $IN_FLIGHT -ge 1 ]]; echo $?)"
check "every client thread finished (no thread stuck)" "$([[ $STUCK -eq 0 && $NCLIENTS -eq $CLIENTS ]]; echo $?)"
check "migware failed over (normal -> recovery -> proxy)" "$(rl_proxied; echo $?)"
check "no mixed body (a splice of differing bytes): $T_MIXED" "$([[ $T_MIXED -eq 0 ]]; echo $?)"
if [[ $LOSS -gt 0 ]]; then
    C_RESETS=0
    for r in reply_lost reply_not_seen_whole request_unanswered; do
        v=$(rl_counter "unrecovered_$r"); [[ $v -gt 0 ]] && C_RESETS=$((C_RESETS + v))
    done
    C_RESETS=$((C_RESETS + C_DIV))
    echo "   capture loss: migware reset $C_RESETS connections (unrecovered_reply_not_seen_whole=$(rl_counter unrecovered_reply_not_seen_whole)); clients saw $RESETS resets, $NOT_RESETS other errors"
    check "migware saw holes in the primary's replies (replay_digest_gaps $C_GAPS)" "$([[ $C_GAPS -gt 0 ]]; echo $?)"
    check "every error is a reset: no stall, no EOF, no bad reply ($NOT_RESETS)" "$([[ $NOT_RESETS -eq 0 ]]; echo $?)"
    check "every completed body byte-exact: $T_PRIMARY of $T_REQ" "$([[ $T_PRIMARY -eq $T_REQ && $T_REQ -gt 0 ]]; echo $?)"
    check "migware counted the resets the clients saw ($C_RESETS >= $RESETS, >= 1)" \
        "$([[ $C_RESETS -ge $RESETS && $C_RESETS -ge 1 ]]; echo $?)"
    check "never push for a reply not known complete (replay_as_push $C_PUSH)" "$([[ $C_PUSH -eq 0 ]]; echo $?)"
    C_RB=$(rl_counter rollbacks)
    check "capture loss and a real failure: no false rollback (rollbacks $C_RB)" "$([[ $C_RB -eq 0 ]]; echo $?)"
    check "every client completed requests after the pull, reset ones on a new connection ($CLIENTS_AFTER of $CLIENTS)" \
        "$([[ $CLIENTS_AFTER -eq $CLIENTS ]]; echo $?)"
elif [[ $DIVERGE -eq 0 ]]; then
    check "no error, no stall (reset, EOF, ${TIMEOUT} s timeout): $T_ERRORS" "$([[ $T_ERRORS -eq 0 ]]; echo $?)"
    check "every body byte-exact: $T_PRIMARY of $T_REQ" "$([[ $T_PRIMARY -eq $T_REQ && $T_REQ -gt 0 ]]; echo $?)"
    check "every client completed requests sent after the pull, on its first connection ($CLIENTS_AFTER of $CLIENTS)" \
        "$([[ $CLIENTS_AFTER -eq $CLIENTS ]]; echo $?)"
    check "replay_diverged is 0 ($C_DIV)" "$([[ $C_DIV -eq 0 ]]; echo $?)"
    if [[ $MODE == aligned ]]; then
        check "aligned replay was used (replay_aligned $C_AL >= 1), never push instead (replay_as_push $C_PUSH)" \
            "$([[ $C_AL -ge 1 && $C_PUSH -eq 0 ]]; echo $?)"
        # a reply cut mid-way: the client had [R0, K), the backup regenerated it, the digests matched
        check "replies cut mid-way were regenerated and verified (replay_verified $C_VER >= 1)" \
            "$([[ $C_VER -ge 1 ]]; echo $?)"
    fi
else
    check "no error but the resets at the pull (no stall, no EOF): $OTHER_ERRORS" "$([[ $OTHER_ERRORS -eq 0 ]]; echo $?)"
    check "bodies completed before the pull are the primary's, bodies requested after it the backup's" \
        "$([[ $BAD_ORDER -eq 0 ]]; echo $?)"
    check "migware counted divergence (replay_diverged $C_DIV >= 1)" "$([[ $C_DIV -ge 1 ]]; echo $?)"
    check "replay_diverged ($C_DIV) equals the connections reset at the pull ($RESET_AT_PULL)" \
        "$([[ $C_DIV -eq $RESET_AT_PULL ]]; echo $?)"
    check "the ports in migware's replay_diverged lines ($N_LOGGED) are those of the connections reset at the pull" \
        "$([[ $PORTS_MATCH -eq 1 ]]; echo $?)"
    check "every client completed requests after the pull, reset ones on a new connection ($CLIENTS_AFTER of $CLIENTS)" \
        "$([[ $CLIENTS_AFTER -eq $CLIENTS ]]; echo $?)"
fi
check "migware exited cleanly on SIGTERM (status $mig_rc)" "$mig_rc"
rl_verdict
