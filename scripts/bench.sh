#!/usr/bin/env bash
# Runs every benchmark (docs/performance.md). As root it first raises the limits that a
# 100-peer mesh in one process needs: about 20,000 threads (each takes ~4 memory maps, past
# the default vm.max_map_count of 65,530) and 2P² ≈ 20,000 sockets (past a 20,000 file limit).
# Arguments pick workloads: w1 w2 w3 w4 w5 tracker (default: all), or one other bench target
# alone (abuse secure dht idle_flood conversation open_room), or `burst` alone for the big
# paste (tests/burst.rs). Without arguments: every bench target of the workspace, then the
# big paste.
# Everything is built with the `profiling` profile (release code with line tables,
# Cargo.toml), so `perf` can read any of them: target/profiling/deps/NAME-*.
set -euo pipefail
cd "$(dirname "$0")/.."
bench() { # PACKAGE TARGET [ARGS...]
  local package=$1 target=$2
  shift 2
  cargo bench --profile profiling -p "$package" --bench "$target" -- "$@"
}
gui_bench() { ICED_TEST_BACKEND=tiny-skia bench p2p-gui "$@"; }
burst() {
  # The big paste (docs/reliability.md): a million lines to seven terminal peers, 3 runs.
  cargo build --profile profiling -p p2p-core --examples
  cargo test --profile profiling -p p2p-core --test burst -- --ignored --nocapture
}
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
case "${1:-}" in
  burst) burst; exit 0 ;;
  abuse | secure | dht) bench p2p-core "$1"; exit 0 ;;
  idle_flood) bench tracker idle_flood; exit 0 ;;
  conversation | open_room) gui_bench "$1"; exit 0 ;;
esac
bench p2p-core workloads "$@"
if [[ $# -eq 0 ]]; then
  bench p2p-core abuse
  bench p2p-core secure
  bench p2p-core dht
  bench tracker idle_flood
  gui_bench conversation
  gui_bench open_room
  burst
fi
