#!/usr/bin/env bash
# Sets up (packages + builds) and runs every test: the release tree, then the
# whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --asan
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
echo "== release build: ctest" >&2
ctest --test-dir build --output-on-failure -j2 || status=1
echo "== asan+ubsan build: ctest" >&2
ctest --test-dir build-asan --output-on-failure -j2 || status=1
exit $status
