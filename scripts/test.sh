#!/usr/bin/env bash
# Runs every test of the workspace: unit, integration (real sockets on 127.0.0.1, real
# processes), doc tests and the GUI's iced_test tests (headless, software rendering).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
export ICED_TEST_BACKEND=tiny-skia
# Cargo's default test targets: libraries, binaries, integration tests, doc tests, and the
# examples built as plain programs (the CLI tests run `target/debug/examples/chat`). Not the
# benchmarks: those are long measurements that scripts/bench.sh runs (CI's clippy still
# compiles them).
cargo test --workspace "$@"
