#!/usr/bin/env bash
# The main job, as far as it is built: set up, then run migware's pipeline
# (parser + connection tracker) over recorded lab captures and print the
# connection table and counters. Part 2 (issue 4) turns this into the live
# failover demo in a lab of network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
for capture in pcaps/reqresp.pcap pcaps/two_services.pcap; do
  echo
  echo "== migware replay $capture --server 198.18.0.1:7000 --server 198.18.0.1:7001 --counters"
  build/bin/migware replay "$capture" --server 198.18.0.1:7000 --server 198.18.0.1:7001 --counters
done
echo
echo "== the same table as JSON lines (migware replay pcaps/reqresp.pcap --json)"
build/bin/migware replay pcaps/reqresp.pcap --json
