#!/usr/bin/env bash
# Installs migware's build and test dependencies from Debian packages
# (idempotent: apt-get update, then install what the list names) and builds
# the release tree into build/ (binaries in build/bin/).
#
#   scripts/setup.sh            install + build release
#   scripts/setup.sh --asan     also build the AddressSanitizer/UBSan tree (build-asan/)
#   MIGWARE_SKIP_APT=1 ...      skip the package step (offline rebuilds)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  g++ cmake make pkg-config           # toolchain
  libpcap-dev libnet1-dev             # capture / link-layer injection (design card)
  libboost-program-options-dev        # command line and config file
  googletest libgtest-dev libgmock-dev # unit tests
  libbenchmark-dev                    # bench/ micro-benchmarks
  tcpdump ethtool iproute2 procps     # lab: captures, offloads, namespaces, sysctl
  python3                             # lab traffic generators and test helpers
  clang libclang-rt-14-dev            # tc-BPF VLAN emulation (lab); libFuzzer + sanitizer runtimes (scripts/fuzz.sh)
  libncurses-dev                      # migctl top: the live dashboard (ncursesw)
  tmux                                # dashboard test: migctl top in a real terminal, capture-pane
  python3-prometheus-client           # tests/control: parse `metrics` with a real Prometheus text parser
  nlohmann-json3-dev                  # control/: the control protocol's JSON
  prometheus                          # promtool: tests/control check `metrics` with it (required)
  corosync corosync-qnetd corosync-qdevice # lab: the cluster lab (scripts/cluster.sh, tests/lab/cluster_smoke.sh)
  libcpg-dev libquorum-dev libvotequorum-dev  # membership/: the Corosync provider (CPG, quorum, votequorum)
  nginx libnginx-mod-http-headers-more-filter redis-server  # lab: replay tests (issue 13)
)

if [[ "${MIGWARE_SKIP_APT:-0}" != 1 ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    SUDO=sudo
  else
    SUDO=
  fi
  export DEBIAN_FRONTEND=noninteractive
  echo "setup: apt-get update" >&2
  $SUDO apt-get update -qq
  echo "setup: apt-get install ${PACKAGES[*]}" >&2
  $SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
fi

jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
if [[ "${1:-}" == "--asan" ]]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMIGWARE_SANITIZE=ON -DMIGWARE_BENCH=OFF >/dev/null
  cmake --build build-asan -j"$jobs"
fi
echo "setup: built build/bin/migware" >&2
