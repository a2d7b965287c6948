#!/usr/bin/env bash
# Starts the p2p-chat desktop app, installing what it needs first. Arguments go to p2p-gui
# (see `scripts/run.sh --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
exec cargo run --release --quiet -p p2p-gui -- "$@"
