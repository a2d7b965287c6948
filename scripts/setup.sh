#!/usr/bin/env bash
# Installs the system packages p2p-chat needs, on Debian or Ubuntu. Idempotent: it only
# calls apt-get when something is missing.
#
#   scripts/setup.sh run    what the GUI needs at run time (X11/Wayland client libraries, a font)
#   scripts/setup.sh test   what the tests need (procps for `kill`, iproute2 for namespaces,
#                           nftables for the NAT routers of scripts/netns-reach.sh,
#                           xdotool to read window titles, dbus and python3-dbusmock for a
#                           session bus with a mock notification daemon,
#                           Xvfb and the run set for the app's signal tests on a real window)
#   scripts/setup.sh shots  what scripts/screenshots.sh needs (Xvfb, xdotool, ImageMagick)
set -euo pipefail

declare -A sets=(
  [run]="libx11-6 libx11-xcb1 libxcursor1 libxi6 libxrandr2 libxkbcommon0 libxkbcommon-x11-0 libwayland-client0 fonts-dejavu-core"
  [shots]="xvfb xdotool imagemagick x11-utils"
)
sets[test]="procps iproute2 nftables xvfb xdotool dbus python3-dbusmock ${sets[run]}"

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is not installed; install Rust from https://rustup.rs first" >&2
  exit 1
fi

wanted=()
for set in "${@:-run}"; do
  [[ -n "${sets[$set]:-}" ]] || { echo "setup: unknown set '$set' (run, test, shots)" >&2; exit 2; }
  for pkg in ${sets[$set]}; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || wanted+=("$pkg")
  done
done
[[ ${#wanted[@]} -eq 0 ]] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: please install: ${wanted[*]}" >&2
  exit 0
fi
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
echo "setup: installing ${wanted[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
