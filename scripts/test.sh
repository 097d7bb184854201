#!/usr/bin/env bash
# Sets up (packages + builds) and runs every test:
#   1. release build: unit, replay (golden, CLI, corpus) tests;
#   2. release build: the end-to-end failover scenarios in the namespace lab
#      (root + network namespaces; one at a time);
#   3. the same unit/replay suite under AddressSanitizer + UndefinedBehaviorSanitizer,
#      plus seven lab runs with the sanitized daemon (a failover, the primary coming back, a
#      wrong takeover rolled back, two backups on Corosync with the active one cut off,
#      aligned replay of HTTP downloads in progress, the same with capture loss, full replay
#      of redis sessions);
#   4. the libFuzzer targets (tests/fuzz/, clang, build-fuzz/), 60 s each from the seed
#      corpora (scripts/fuzz.sh); a crash fails the run and leaves its input in
#      build-fuzz/crashes/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --asan
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
echo "== release build: unit and replay tests" >&2
ctest --test-dir build --output-on-failure -j2 -LE lab || status=1
echo "== release build: failover lab (root, namespaces)" >&2
ctest --test-dir build --output-on-failure -j1 -L lab || status=1
echo "== asan+ubsan build: unit and replay tests, one lab failover" >&2
ctest --test-dir build-asan --output-on-failure -j2 -LE lab || status=1
ctest --test-dir build-asan --output-on-failure -j1 \
    -R '^(failover_reqresp_200|failover_primary_returns_hub_push_200|safety_backup_flap_rollback_hub_push|membership_witness-partition|replay_http_downloads|replay_capture_loss|replay_redis_full)$' || status=1
echo "== fuzz: libFuzzer targets, 60 s each (build-fuzz/)" >&2
scripts/fuzz.sh --seconds 60 || status=1
exit $status
