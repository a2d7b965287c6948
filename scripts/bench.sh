#!/usr/bin/env bash
# Runs every benchmark (docs/performance.md). As root it first raises the limits that a
# 100-peer mesh in one process needs: about 20,000 threads (each takes ~4 memory maps, past
# the default vm.max_map_count of 65,530) and 2P² ≈ 20,000 sockets (past a 20,000 file limit).
# Arguments pick workloads: w1 w2 w3 w4 w5 tracker (default: all), or `burst` alone for the
# big paste (tests/burst.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -eq 0 ]]; then
  # The machine-wide limits go back to what they were when the benchmarks end.
  old_maps=$(sysctl -n vm.max_map_count)
  old_pids=$(sysctl -n kernel.pid_max)
  trap 'sysctl -qw vm.max_map_count="$old_maps" kernel.pid_max="$old_pids" || true' EXIT
  sysctl -qw vm.max_map_count=262144 || echo "bench: cannot raise vm.max_map_count" >&2
  sysctl -qw kernel.pid_max=131072 || echo "bench: cannot raise kernel.pid_max" >&2
  ulimit -Hn 65536 2>/dev/null || true
  ulimit -Sn 65536 2>/dev/null || echo "bench: cannot raise the open-file limit" >&2
else
  echo "bench: not root: the 100-peer mesh will be skipped unless the limits are already raised" >&2
fi
if [[ "${1:-}" == burst ]]; then
  # Only the big paste: a million lines piped into one terminal peer, seven listening.
  cargo build --release -p p2p-core --examples
  cargo test --release -p p2p-core --test burst -- --ignored --nocapture
  exit 0
fi
cargo bench -p p2p-core --bench workloads -- "$@"
if [[ $# -eq 0 ]]; then
  cargo bench -p p2p-core --bench abuse
  ICED_TEST_BACKEND=tiny-skia cargo bench -p p2p-gui --bench conversation
  # The big paste (docs/reliability.md): a million lines to seven terminal peers, 3 runs.
  cargo build --release -p p2p-core --examples
  cargo test --release -p p2p-core --test burst -- --ignored --nocapture
fi
