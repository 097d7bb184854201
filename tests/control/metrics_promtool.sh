#!/usr/bin/env bash
# `promtool check metrics` on the real control handler's Prometheus text in
# Normal, Recovery and Proxy (tests/control/metrics_states.cpp drives a real
# FailoverEngine over a lab capture). promtool (Debian prometheus) is
# required: without it this test fails, it never skips.
set -uo pipefail
build=${1:?usage: metrics_promtool.sh BUILD_DIR SOURCE_DIR}
src=${2:?usage: metrics_promtool.sh BUILD_DIR SOURCE_DIR}
if ! command -v promtool >/dev/null; then
  echo "FAIL promtool not installed (apt-get install prometheus; scripts/setup.sh)"
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$build/bin/metrics_states" "$src/pcaps/reqresp.pcap" "$tmp" || { echo "FAIL metrics_states"; exit 1; }
failed=0
for state in normal recovery proxy; do
  if [[ ! -s $tmp/$state.prom ]]; then
    echo "FAIL $state: no metrics text"; failed=1; continue
  fi
  if promtool check metrics <"$tmp/$state.prom" >"$tmp/$state.out" 2>&1; then
    echo "ok   promtool check metrics ($state, $(grep -c '^# TYPE' "$tmp/$state.prom") families)"
  else
    echo "FAIL promtool check metrics ($state):"; cat "$tmp/$state.out"; failed=1
  fi
done
grep -q '^migware_state{state="proxy"} 1$' "$tmp/proxy.prom" || { echo "FAIL proxy text not in Proxy"; failed=1; }
grep -q '^migware_proxy_latency_seconds_bucket{direction="to_backup",le="+Inf"} 5$' "$tmp/proxy.prom" ||
  { echo "FAIL proxy: histogram samples missing"; failed=1; }
# Membership (a standalone group of one): standby in Normal, active once it took over.
grep -q '^migware_membership_role{role="standby"} 1$' "$tmp/normal.prom" || { echo "FAIL normal: membership role not standby"; failed=1; }
grep -q '^migware_membership_role{role="active"} 1$' "$tmp/proxy.prom" || { echo "FAIL proxy: membership role not active"; failed=1; }
grep -q '^migware_membership_epoch 1$' "$tmp/proxy.prom" || { echo "FAIL proxy: membership epoch not 1"; failed=1; }
exit $failed
