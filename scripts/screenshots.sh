#!/usr/bin/env bash
# Starts a tracker, two GUIs and a terminal peer under Xvfb, has them chat, checks that the
# messages typed into the windows really crossed the network (the terminal peer prints
# what it hears), and saves screenshots of both screens into docs/screenshots/. Then a
# window that reads older messages while new ones come, after a message nobody received.
# Then the same people come back: a reopened room with its history, the unread count and
# the divider, the search, and the dark theme with a multi-line message. Each window (and
# each terminal peer) keeps its identity key, settings and history in a data directory of
# its own under the work directory. The pictures also show the masked passphrase field,
# the Internet (DHT) tab, the fingerprints in the title and the peers panel, and the
# warning when a known name comes back with another identity key.
#
#   scripts/screenshots.sh            (needs Xvfb, xdotool, ImageMagick: installed by setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run shots
# Two commands: with --example, cargo builds only examples, not the packages' binaries.
cargo build -q -p p2p-gui -p tracker --bins
cargo build -q -p p2p-core --example chat
bin=target/debug
out=docs/screenshots
mkdir -p "$out"
work=$(mktemp -d)
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A display of our own.
display=:$((90 + RANDOM % 9))
Xvfb "$display" -screen 0 1400x900x24 -nolisten tcp >/dev/null 2>&1 &
pids+=($!)
export DISPLAY=$display
for _ in $(seq 50); do xdpyinfo >/dev/null 2>&1 && break; sleep 0.1; done

# Waits until a window whose name matches $1 exists and prints its id.
window() {
  for _ in $(seq 100); do
    id=$(xdotool search --name "$1" 2>/dev/null | head -1 || true)
    [[ -n "$id" ]] && { echo "$id"; return 0; }
    sleep 0.1
  done
  echo "screenshots: no window named '$1'" >&2
  return 1
}

# Starts p2p-gui in the background with these arguments, again if it dies at once (on a
# loaded machine an X connection now and then fails with XOpenDisplayFailed); the process
# is $gui_pid.
launch() {
  for _ in 1 2 3; do
    $bin/p2p-gui "$@" &
    gui_pid=$!
    sleep 1
    kill -0 "$gui_pid" 2>/dev/null && { pids+=("$gui_pid"); return 0; }
    echo "screenshots: p2p-gui ended at start; starting it again" >&2
  done
  return 1
}

shot() { sleep 0.8; import -window "$1" "$out/$2"; echo "saved $out/$2"; }

# A shot with the window's title written over it, as xdotool reads it (with no window
# manager there is no title bar to capture).
titled_shot() { # window, file
  sleep 0.8
  local title
  title=$(xdotool getwindowname "$1")
  import -window "$1" "$work/titled.png"
  convert "$work/titled.png" -background '#2b2b2b' -fill white -font DejaVu-Sans -pointsize 15 \
    -gravity north -splice 0x30 -annotate +0+7 "window title: $title" "$out/$2"
  echo "saved $out/$2"
}

say() { # window, text
  xdotool windowactivate --sync "$1" 2>/dev/null || xdotool windowfocus --sync "$1"
  xdotool mousemove --window "$1" 200 660 click 1
  xdotool type --delay 25 "$2"
  xdotool key Return
  sleep 0.4
}

tracker_port=$(free_port)
$bin/tracker --port "$tracker_port" 2>"$work/tracker.log" &
pids+=($!)
for _ in $(seq 50); do grep -q "listening on" "$work/tracker.log" && break; sleep 0.1; done
grep -q "listening on" "$work/tracker.log" || { echo "screenshots: the tracker did not start" >&2; cat "$work/tracker.log" >&2; exit 1; }

# 1. The connect screen, filled in (the passphrase masked), and the same form with mistakes.
launch --data-dir "$work/first" --lang en --username alice --port 7101 --room attic --tracker "127.0.0.1:$tracker_port"
gui=$gui_pid
w=$(window "^P2P Messenger$")
xdotool windowfocus --sync "$w" 2>/dev/null || true
xdotool mousemove --window "$w" 500 318 click 1
xdotool type --delay 20 "correct horse battery staple"
shot "$w" connect.png
retype() { # window, x, y, text: replaces what a field holds
  xdotool windowfocus --sync "$1" 2>/dev/null || true
  xdotool mousemove --window "$1" "$2" "$3" click 1
  xdotool key ctrl+a BackSpace
  [[ -z "$4" ]] || xdotool type --delay 20 "$4"
  sleep 0.2
}
# The port first: the username's error, once shown, moves the fields under it down.
retype "$w" 500 187 "99999"
retype "$w" 500 102 "a name that is far too long for this chat"
shot "$w" connect-errors.png
kill "$gui"; wait "$gui" 2>/dev/null || true

# The Internet (DHT) tab: the room's peers found through the Mainline DHT.
launch --data-dir "$work/first" --lang en --username alice --room attic --dht
gui=$gui_pid
w=$(window "^P2P Messenger$")
shot "$w" connect-dht.png
kill "$gui"; wait "$gui" 2>/dev/null || true

# 2. Two windows and a terminal peer meet through the tracker and chat.
mkfifo "$work/carol.in"
$bin/examples/chat --username carol --port 0 --data-dir "$work/carol" --tracker "127.0.0.1:$tracker_port" \
  <"$work/carol.in" >"$work/carol.out" 2>"$work/carol.err" &
pids+=($!)
exec 3>"$work/carol.in"
launch --data-dir "$work/alice" --lang en --username alice --tracker "127.0.0.1:$tracker_port" --connect
ga=$gui_pid
pids+=($ga)
a=$(window "Messenger.*alice")
launch --data-dir "$work/bob" --lang pt --username bob --tracker "127.0.0.1:$tracker_port" --connect
gb=$gui_pid
pids+=($gb)
b=$(window "Messenger.*bob")
xdotool windowmove "$a" 0 0
xdotool windowmove "$b" 480 240
sleep 1.5

say "$a" "Hi everyone! Shall we meet at 5?"
say "$b" "Olá! Sim, para mim está ótimo."
echo "5 works for me too" >&3
sleep 0.5
say "$a" "Great, see you then."

# The terminal peer heard both windows: the messages crossed the network.
for line in "[alice]: Hi everyone! Shall we meet at 5?" "[bob]: Olá! Sim, para mim está ótimo." "[alice]: Great, see you then."; do
  for _ in $(seq 300); do grep -qxF "$line" "$work/carol.out" && break; sleep 0.1; done
  grep -qxF "$line" "$work/carol.out" || { echo "screenshots: carol never heard: $line" >&2; cat "$work/carol.out" >&2; exit 1; }
done
echo "carol heard every message typed into the windows"

xdotool windowmove "$b" 0 0
xdotool windowraise "$b"
shot "$b" chat-bob.png

# Another "bob" (a terminal peer with an identity key of its own) joins: alice's window
# warns that a known name came with another key, and the peers panel tells the two bobs
# apart by their fingerprints.
mkfifo "$work/imposter.in"
$bin/examples/chat --username bob --port 0 --data-dir "$work/imposter" --tracker "127.0.0.1:$tracker_port" \
  <"$work/imposter.in" >"$work/imposter.out" 2>"$work/imposter.err" &
pids+=($!)
exec 6>"$work/imposter.in"
sleep 2.5
xdotool windowraise "$a"
titled_shot "$a" chat-alice.png
exec 6>&-
echo "/quit" >&3
exec 3>&-
# Both windows leave (SIGTERM leaves as closing the window does).
kill "$ga" "$gb"; wait "$ga" "$gb" 2>/dev/null || true

# 3. Reading older messages while new ones come, after a message that nobody received:
# alice listens to dave (a terminal peer) by hand, and nobody listens to her.
mkfifo "$work/dave.in"
$bin/examples/chat --username dave --port 0 --data-dir "$work/dave" --alone \
  <"$work/dave.in" >"$work/dave.out" 2>"$work/dave.err" &
pids+=($!)
exec 4>"$work/dave.in"
for _ in $(seq 50); do grep -q "listening on" "$work/dave.err" && break; sleep 0.1; done
dave=$(sed -n 's/^listening on //p' "$work/dave.err" | head -1)
launch --data-dir "$work/reader" --lang en --username alice --peers "$dave" --connect
gr=$gui_pid
pids+=($gr)
r=$(window "Messenger.*alice")
xdotool windowmove "$r" 0 0
sleep 1.5
say "$r" "Is anyone there?"
for i in $(seq 1 40); do echo "Line $i of the minutes, read out by dave" >&4; done
sleep 1
# Scroll up to read, then more arrive: they are counted, not laid out.
xdotool mousemove --window "$r" 300 300
for _ in $(seq 12); do xdotool click 4; sleep 0.05; done
sleep 0.5
for i in $(seq 41 45); do echo "Line $i of the minutes, read out by dave" >&4; done
shot "$r" chat-reading.png
exec 4>&-
kill "$gr"; wait "$gr" 2>/dev/null || true

# 4. Alice comes back: `--data-dir DIR --connect` alone connects with the saved form, and
# the room opens with its history.
launch --data-dir "$work/alice" --connect
ga=$gui_pid
pids+=($ga)
a=$(window "Messenger.*alice")
xdotool windowmove "$a" 0 0
sleep 1.5
shot "$a" chat-reopened.png

# 5. Alice looks elsewhere (the focus goes to the root window): what erin says is counted
# in the title, and a divider marks where alice left off. The title is written over the
# picture as xdotool reads it (with no window manager there is no title bar to capture).
mkfifo "$work/erin.in"
$bin/examples/chat --username erin --port 0 --data-dir "$work/erin" --tracker "127.0.0.1:$tracker_port" \
  <"$work/erin.in" >"$work/erin.out" 2>"$work/erin.err" &
pids+=($!)
exec 5>"$work/erin.in"
sleep 2
xdotool mousemove 1390 890
xdotool windowfocus "$(xdotool search --maxdepth 0 --name '' 2>/dev/null | head -1)" 2>/dev/null || true
for line in "Hi alice, are you there?" "We moved the meeting to six." "Bring the minutes, please."; do
  echo "$line" >&5; sleep 0.3
done
sleep 1
title=$(xdotool getwindowname "$a")
[[ "$title" == "(3) "* ]] || { echo "screenshots: the title does not count 3 unread: $title" >&2; exit 1; }
sleep 0.8
import -window "$a" "$work/unread.png"
convert "$work/unread.png" -background '#2b2b2b' -fill white -font DejaVu-Sans -pointsize 15 \
  -gravity north -splice 0x30 -annotate +0+7 "window title: $title" "$out/chat-unread.png"
echo "saved $out/chat-unread.png"

# 6. The search box finds past messages of the room.
xdotool windowfocus --sync "$a" 2>/dev/null || true
xdotool mousemove --window "$a" 300 52 click 1
xdotool type --delay 25 "meet"
xdotool key Return
sleep 0.8
shot "$a" chat-search.png
exec 5>&-

# 7. Bob in the dark theme (remembered in his settings) writes a message of two lines:
# Shift+Enter breaks the line, Enter sends.
sed -i 's/^theme = .*/theme = "dark"/' "$work/bob/settings.toml"
launch --data-dir "$work/bob" --connect
gb=$gui_pid
pids+=($gb)
b=$(window "Messenger.*bob")
xdotool windowmove "$b" 0 0
sleep 1.5
xdotool windowactivate --sync "$b" 2>/dev/null || xdotool windowfocus --sync "$b"
xdotool mousemove --window "$b" 200 660 click 1
xdotool type --delay 25 "Shopping list for tonight:"
xdotool key shift+Return
xdotool type --delay 25 "bread, cheese and olives"
xdotool key Return
sleep 0.5
shot "$b" chat-dark.png
kill "$ga" "$gb"; wait "$ga" "$gb" 2>/dev/null || true
