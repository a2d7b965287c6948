#!/usr/bin/env bash
# Runs every test of the workspace: unit, integration (real sockets on 127.0.0.1, real
# processes), doc tests and the GUI's iced_test tests (headless, software rendering).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
export ICED_TEST_BACKEND=tiny-skia
# Every target but the benchmarks (those are long measurements: scripts/bench.sh runs them;
# CI's clippy still compiles them).
cargo test --workspace --lib --bins --tests --examples "$@"
cargo test --workspace --doc
