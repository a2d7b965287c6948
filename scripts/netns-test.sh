#!/usr/bin/env bash
# Several hosts: a tracker and three terminal peers, each in its own network namespace,
# joined through a bridge in a "switch" namespace. Checks that
#   1. the mesh forms and every message reaches the others;
#   2. when one host's link is cut, the others go on chatting, report it gone within the
#      keep-alive bound, and the tracker expires it; when the link comes back the host
#      rejoins and is heard again;
#   3. the same when a host is frozen with SIGSTOP and then resumed;
#   4. a sustained flood of bogus registrations from one namespace (source address) does
#      not push the other namespaces' peers out of the tracker, stays within the per-source
#      bound, and does not stop the honest peers from being served and chatting.
# and prints the figures it measured. It takes about 45 s once the binaries are built.
#
# Needs root and `ip netns` (iproute2: scripts/setup.sh test). Otherwise it prints
# "netns-test: skipped: REASON" and exits 0, as it does when NETNS_TEST_FORCE_SKIP is set.
# It touches nothing outside the namespaces it creates (named p2pt<pid>-*), and removes them
# and every process it started on exit, also on failure. NETNS_TEST_KEEP_LOGS=1 keeps the
# logs directory. CARGO_TARGET_DIR is honoured.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

skip() {
  echo "netns-test: skipped: $*"
  exit 0
}
[[ -z "${NETNS_TEST_FORCE_SKIP:-}" ]] || skip "NETNS_TEST_FORCE_SKIP is set"
[[ $(id -u) -eq 0 ]] || skip "not root (network namespaces need root)"
command -v ip >/dev/null 2>&1 || skip "ip (iproute2) is not installed (scripts/setup.sh test installs it)"
command -v mkfifo >/dev/null 2>&1 || skip "mkfifo is not available"

P="p2pt$$"
NET=10.123.0          # only ever configured inside the namespaces below
TRACKER_PORT=7000
PEER_PORT=7100
PROBE_PORT=7999
TTL=6                 # tracker --ttl: peers re-announce every 2 s
GONE_BOUND=15         # a vanished peer must be reported within this many seconds
PER_SOURCE=1000       # the tracker's default max_per_source

declare -A PID          # name -> process id
NSS=()                # namespaces made, deleted on exit
PIDS=()               # processes started, ended on exit
FDS=()                # FIFO descriptors held open
W=""
PASSED=0
ok() {
  PASSED=$((PASSED + 1))
  echo "netns-test: ok: $*"
}

# shellcheck source=scripts/netns-lib.sh
source scripts/netns-lib.sh
trap 'netns_cleanup netns-test 15' EXIT
trap 'echo "netns-test: interrupted" >&2; exit 130' INT TERM

forget_pid() { # a process waited for: not to be signalled at cleanup
  local keep=() pid
  for pid in "${PIDS[@]}"; do [[ $pid == "$1" ]] || keep+=("$pid"); done
  PIDS=("${keep[@]}")
}

exited() { ! kill -0 "$1" 2>/dev/null; }

fail() {
  echo "netns-test: FAIL: $*" >&2
  # Say which of our processes died, and how.
  local name code
  for name in "${!PID[@]}"; do
    kill -0 "${PID[$name]}" 2>/dev/null && continue
    code=0
    wait "${PID[$name]}" 2>/dev/null || code=$?
    forget_pid "${PID[$name]}"
    if ((code > 128)); then
      echo "netns-test: $name had died, killed by signal $((code - 128))" >&2
    else
      echo "netns-test: $name had exited with status $code" >&2
    fi
  done
  exit 1
}

# Can this machine make namespaces, veth pairs and bridges at all?
probe_ns="$P-probe"
if ! err=$(ip netns add "$probe_ns" 2>&1); then
  skip "ip netns add failed: ${err%%$'\n'*}"
fi
NSS+=("$probe_ns")
if ! err=$(ip -n "$probe_ns" link add br0 type bridge 2>&1 &&
  ip -n "$probe_ns" link add va type veth peer name vb 2>&1); then
  skip "no bridge or veth support: ${err%%$'\n'*}"
fi
ip netns del "$probe_ns"
NSS=()

echo "netns-test: building the tracker and the chat example"
cargo build -q -p tracker -p p2p-core --bins --examples
BIN="${CARGO_TARGET_DIR:-target}/debug"
TRACKER="$BIN/tracker"
CHAT="$BIN/examples/chat"
FLOOD="$BIN/examples/flood"
for b in "$TRACKER" "$CHAT" "$FLOOD"; do [[ -x "$b" ]] || fail "missing $b after the build"; done

W=$(mktemp -d "${TMPDIR:-/tmp}/netns-test.XXXXXX")
# Run copies under names of their own, so that nothing that stops other `chat` or `tracker`
# processes by name on a shared machine hits this test's (and a rebuild cannot swap them).
mkdir "$W/bin"
cp "$TRACKER" "$W/bin/nst-track"
cp "$CHAT" "$W/bin/nst-peer"
cp "$FLOOD" "$W/bin/nst-flood"
TRACKER="$W/bin/nst-track" CHAT="$W/bin/nst-peer" FLOOD="$W/bin/nst-flood"

# ---- time helpers (milliseconds since the epoch, from bash itself)
now_ms() {
  local t=${EPOCHREALTIME/./}
  echo $((t / 1000))
}
secs_since() { # START_MS -> seconds, two decimals
  local d=$(($(now_ms) - $1))
  printf '%d.%02d' $((d / 1000)) $(((d % 1000) / 10))
}
# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.1 s.
wait_until() {
  local limit=$1 what=$2
  shift 2
  local end=$(($(now_ms) + limit * 1000))
  until "$@"; do
    (($(now_ms) < end)) || fail "$what: not within ${limit} s"
    sleep 0.1
  done
}

# ---- the network: a bridge in the switch namespace, one veth link per host
SW="$P-sw"
ip netns add "$SW"
NSS+=("$SW")
ip -n "$SW" link add br0 type bridge
ip -n "$SW" link set br0 up
declare -A IDX=([tracker]=1 [alice]=2 [bob]=3 [carol]=4 [probe]=5 [flooder]=6)
for host in tracker alice bob carol probe flooder; do
  ns="$P-$host"
  i=${IDX[$host]}
  ip netns add "$ns"
  NSS+=("$ns")
  ip -n "$SW" link add "v$i" type veth peer name eth0 netns "$ns"
  ip -n "$SW" link set "v$i" master br0 up
  ip -n "$ns" addr add "$NET.$i/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
done
TRACKER_ADDR="$NET.1:$TRACKER_PORT"
addr_of() { echo "$NET.${IDX[$1]}:$PEER_PORT"; }

# ---- processes
declare -A FD
has_line() { grep -qF -- "$2" "$W/$1.err" 2>/dev/null; }
count() { grep -cF -- "$2" "$W/$1.err" 2>/dev/null || true; }

ip netns exec "$P-tracker" env RUST_LOG=info "$TRACKER" --port "$TRACKER_PORT" --ttl "$TTL" \
  </dev/null >"$W/tracker.out" 2>"$W/tracker.err" &
PID[tracker]=$!
PIDS+=("$!")
wait_until 10 "tracker started" has_line tracker "listening on 0.0.0.0:$TRACKER_PORT"

start_peer() {
  local name=$1 fd
  mkfifo "$W/$name.in"
  exec {fd}<>"$W/$name.in" # held open, so the peer's stdin ends only when we say /quit
  FD[$name]=$fd
  FDS+=("$fd")
  # A data directory per peer: each host is an installation with an identity key of its own.
  ip netns exec "$P-$name" env RUST_LOG=info "$CHAT" --username "$name" --port "$PEER_PORT" \
    --ip "$NET.${IDX[$name]}" --tracker "$TRACKER_ADDR" --data-dir "$W/data-$name" \
    <"$W/$name.in" >"$W/$name.out" 2>"$W/$name.err" &
  PID[$name]=$!
  PIDS+=("$!")
  wait_until 10 "$name started" has_line "$name" "listening on $(addr_of "$name")"
}
say() { echo "$2" >&"${FD[$1]}"; }
heard() { grep -qxF -- "[$2]: $3" "$W/$1.out" 2>/dev/null; }
# every peer of "$@" hears TEXT from FROM
all_heard() {
  local from=$1 text=$2 p
  shift 2
  for p in "$@"; do heard "$p" "$from" "$text" || return 1; done
}
# "* NAME (ADDR, FINGERPRINT) listens to you" lines in P's log, and "* listening to NAME
# (ADDR, FINGERPRINT)": count_with P PREFIX PART counts the lines with both.
count_with() { grep -F -- "$2" "$W/$1.err" 2>/dev/null | grep -cF -- "$3" || true; }
listens_to_me() { count_with "$1" "* $2 ($(addr_of "$2"), " ") listens to you"; }
listening_to() { count "$1" "* listening to $2 ($(addr_of "$2"), "; }
stopped_listening() { count "$1" "* stopped listening to $2 ($(addr_of "$2"), "; }
unreachable_notices() { count "$1" "* tracker unreachable"; }

# probe_lists ADDR...: a fresh announcer in the probe namespace is told about every ADDR
probe_out() {
  ip netns exec "$P-probe" "$FLOOD" --tracker "$TRACKER_ADDR" --probe "$NET.5:$PROBE_PORT" \
    --rounds "${ROUNDS:-1}" 2>>"$W/probe.err"
}
probe_lists() {
  local listed a
  listed=$(probe_out) || return 1
  for a in "$@"; do grep -qxF -- "$a" <<<"$listed" || return 1; done
}
# probe_lacks ADDR...: the probe is told about none of them (and the tracker answered)
probe_lacks() {
  local listed a
  listed=$(probe_out) || return 1
  for a in "$@"; do ! grep -qxF -- "$a" <<<"$listed" || return 1; done
}
# probe_bogus: the tracker lists some of the flood's addresses
probe_bogus() {
  local listed
  listed=$(probe_out) || return 2
  grep -q '^10\.200\.' <<<"$listed"
}

# The links open now, from the notices: opened minus ended. linked_now P Q: P listens to Q
# and Q to P. mesh_now: every pair so.
no_longer_listens() { count_with "$1" "* $2 ($(addr_of "$2"), " ") no longer listens to you"; }
linked_now() {
  (($(listening_to "$1" "$2") - $(stopped_listening "$1" "$2") >= 1)) &&
    (($(listens_to_me "$1" "$2") - $(no_longer_listens "$1" "$2") >= 1)) &&
    (($(listening_to "$2" "$1") - $(stopped_listening "$2" "$1") >= 1)) &&
    (($(listens_to_me "$2" "$1") - $(no_longer_listens "$2" "$1") >= 1))
}
mesh_now() { linked_now alice bob && linked_now alice carol && linked_now bob carol; }
# heard_again X T0 LIMIT: X and each other peer say a numbered line every 0.25 s until each
# other hears X and X hears each other (lines sent before the links are back are lost, as
# they should be). Sets HEARD_AT, seconds since T0.
heard_again() {
  local x=$1 t0=$2 limit=$3 n=0 q all
  local end=$((t0 + limit * 1000))
  while :; do
    n=$((n + 1))
    say "$x" "$x again $n"
    for q in alice bob carol; do [[ $q == "$x" ]] || say "$q" "$q to $x $n"; done
    sleep 0.25
    all=1
    for q in alice bob carol; do
      [[ $q != "$x" ]] || continue
      grep -qF -- "[$x]: $x again " "$W/$q.out" || all=0
      grep -qF -- "[$q]: $q to $x " "$W/$x.out" || all=0
    done
    ((all == 0)) || break
    (($(now_ms) < end)) || fail "$x and the others did not hear each other again within $limit s"
  done
  HEARD_AT=$(secs_since "$t0")
}

# ---- 1. the mesh forms and everyone hears everyone
t0=$(now_ms)
for p in alice bob carol; do start_peer "$p"; done
wait_until 20 "full mesh of alice, bob and carol" mesh_now
MESH_S=$(secs_since "$t0")
t0=$(now_ms)
for p in alice bob carol; do say "$p" "hello from $p"; done
wait_until 10 "alice's hello reached bob and carol" all_heard alice "hello from alice" bob carol
wait_until 10 "bob's hello reached alice and carol" all_heard bob "hello from bob" alice carol
wait_until 10 "carol's hello reached alice and bob" all_heard carol "hello from carol" alice bob
HELLO_S=$(secs_since "$t0")
ok "mesh of 3 peers formed ${MESH_S} s after the first started; every hello delivered in ${HELLO_S} s"

# Departures. before_departure GONE W...: counts W's "stopped listening to GONE" lines before
# a fault; watch_departure GONE T0 W...: polls, all at once, until every W has reported GONE
# gone and a fresh announcer is no longer told about GONE. Sets GONE_AT[W] and EXPIRED_AT,
# in seconds since T0, and fails past the bounds.
declare -A BEFORE GONE_AT
EXPIRED_AT=""
before_departure() {
  local gone=$1 w
  shift
  for w in "$@"; do BEFORE[$w.$gone]=$(stopped_listening "$w" "$gone"); done
}
# reported_gone W GONE...: W reported each GONE gone since before_departure
reported_gone() {
  local w=$1 g
  shift
  for g in "$@"; do (($(stopped_listening "$w" "$g") > ${BEFORE[$w.$g]})) || return 1; done
}
watch_departure() {
  local gone=$1 t0=$2 w pending
  shift 2
  local end=$((t0 + (GONE_BOUND + 10) * 1000))
  EXPIRED_AT=""
  for w in "$@"; do GONE_AT[$w]=""; done
  while :; do
    pending=0
    for w in "$@"; do
      [[ -z "${GONE_AT[$w]}" ]] || continue
      if (($(stopped_listening "$w" "$gone") > ${BEFORE[$w.$gone]})); then
        GONE_AT[$w]=$(secs_since "$t0")
      else
        pending=1
      fi
    done
    if [[ -z "$EXPIRED_AT" ]]; then
      if probe_lacks "$(addr_of "$gone")"; then EXPIRED_AT=$(secs_since "$t0"); else pending=1; fi
    fi
    ((pending)) || break
    if (($(now_ms) >= end)); then
      local seen=""
      for w in "$@"; do seen+=" $w: '${GONE_AT[$w]}' s,"; done
      fail "$gone gone: reported by$seen tracker expiry '${EXPIRED_AT}' s"
    fi
    sleep 0.1
  done
  for w in "$@"; do
    ((${GONE_AT[$w]%.*} < GONE_BOUND)) ||
      fail "$w reported $gone gone after ${GONE_AT[$w]} s, over the ${GONE_BOUND} s bound"
  done
  # The entry lives ttl after the last re-announce, which came before the fault.
  ((${EXPIRED_AT%.*} <= TTL + 1)) || fail "the tracker expired $gone after $EXPIRED_AT s (ttl $TTL s)"
}

# ---- 2. carol's link is cut
before_departure carol alice bob
before_departure alice carol
before_departure bob carol
ip -n "$SW" link set "v${IDX[carol]}" down
t_cut=$(now_ms)
say alice "alice while carol is away"
say bob "bob while carol is away"
wait_until 5 "alice and bob chat on while carol is cut off" \
  eval 'heard bob alice "alice while carol is away" && heard alice bob "bob while carol is away"'
CHAT_CUT_S=$(secs_since "$t_cut")
watch_departure carol "$t_cut" alice bob
CUT_GONE="${GONE_AT[alice]} s (alice), ${GONE_AT[bob]} s (bob)"
CUT_EXPIRED=$EXPIRED_AT
wait_until 5 "alice and bob still registered" probe_lists "$(addr_of alice)" "$(addr_of bob)"
# carol, cut off, notices the same from her side
wait_until $((GONE_BOUND + 5)) "carol reported alice and bob gone" \
  reported_gone carol alice bob
CUT_S=$(secs_since "$t_cut")
ok "link cut: alice and bob chatted on (delivered in ${CHAT_CUT_S} s), reported carol gone after ${CUT_GONE} (bound ${GONE_BOUND} s); the tracker (ttl ${TTL} s) expired her after ${CUT_EXPIRED} s"

# ---- 3. the link comes back: carol rejoins and is heard again
ip -n "$SW" link set "v${IDX[carol]}" up
t_up=$(now_ms)
heard_again carol "$t_up" 30
REJOIN_S=$HEARD_AT
wait_until 10 "full mesh again" mesh_now
wait_until 10 "carol registered again" probe_lists "$(addr_of carol)"
ok "link back after a ${CUT_S} s cut: carol and the others heard each other again after ${REJOIN_S} s"

# ---- 4. bob is frozen with SIGSTOP, then resumed
before_departure bob alice carol
kill -STOP "${PID[bob]}"
t_stop=$(now_ms)
say alice "alice while bob is frozen"
say carol "carol while bob is frozen"
wait_until 5 "alice and carol chat on while bob is frozen" \
  eval 'heard carol alice "alice while bob is frozen" && heard alice carol "carol while bob is frozen"'
watch_departure bob "$t_stop" alice carol
STOP_GONE="${GONE_AT[alice]} s (alice), ${GONE_AT[carol]} s (carol)"
STOP_EXPIRED=$EXPIRED_AT
STOP_S=$(secs_since "$t_stop")
kill -CONT "${PID[bob]}"
t_cont=$(now_ms)
heard_again bob "$t_cont" 30
BOB_REJOIN_S=$HEARD_AT
wait_until 10 "full mesh again" mesh_now
wait_until 10 "bob registered again" probe_lists "$(addr_of bob)"
ok "SIGSTOP: alice and carol chatted on, reported bob gone after ${STOP_GONE}; the tracker expired him after ${STOP_EXPIRED} s; after SIGCONT (${STOP_S} s frozen) bob and the others heard each other again after ${BOB_REJOIN_S} s"

# ---- 5. a sustained flood of bogus registrations from the flooder's namespace
TRACKER_PID=${PID[tracker]}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
threads_of() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }
RSS_BEFORE=$(rss_kib "$TRACKER_PID")
ALICE_THREADS_BEFORE=$(threads_of "${PID[alice]}")
ALICE_THREADS_MAX=$ALICE_THREADS_BEFORE
unreachable_before=$(($(unreachable_notices alice) + $(unreachable_notices bob) + $(unreachable_notices carol)))
FLOOD_SECS=8
ip netns exec "$P-flooder" "$FLOOD" --tracker "$TRACKER_ADDR" --count 3000 --threads 4 \
  --for-secs "$FLOOD_SECS" >"$W/flood.out" 2>"$W/flood.err" &
FLOOD_PID=$!
PIDS+=("$FLOOD_PID")
# Wait until the flood has registered its share: the tracker lists bogus addresses.
wait_until 5 "the flood registering" probe_bogus
# Answers are a window of at most 256 of the ~1000 entries: several probes see them all.
HONEST=("$(addr_of alice)" "$(addr_of bob)" "$(addr_of carol)")
ROUNDS=12 wait_until 5 "honest peers still registered under the flood" probe_lists "${HONEST[@]}"
t_chat=$(now_ms)
for p in alice bob carol; do say "$p" "$p under the flood"; done
wait_until 10 "chat under the flood" eval 'all_heard alice "alice under the flood" bob carol &&
  all_heard bob "bob under the flood" alice carol && all_heard carol "carol under the flood" alice bob'
FLOOD_CHAT_S=$(secs_since "$t_chat")
# Every answer an honest peer gets now lists up to 256 bogus addresses, which it tries to
# connect to (here they fail at once: no route). Watch alice's threads while the flood runs.
flood_end=$(($(now_ms) + (FLOOD_SECS + 20) * 1000))
while ! exited "$FLOOD_PID" && (($(now_ms) < flood_end)); do
  n=$(threads_of "${PID[alice]}")
  ((n <= ALICE_THREADS_MAX)) || ALICE_THREADS_MAX=$n
  sleep 0.05
done
RSS_PEAK=$(rss_kib "$TRACKER_PID")
wait_until 1 "the flood finished" exited "$FLOOD_PID"
wait "$FLOOD_PID" || fail "the flood tool failed"
forget_pid "$FLOOD_PID"
read -r FLOOD_LINE <"$W/flood.out" || true
declare -A F=()
for kv in $FLOOD_LINE; do F[${kv%%=*}]=${kv#*=}; done
[[ -n "${F[registered]:-}" ]] || fail "no figures from the flood tool: $FLOOD_LINE"
((F[registered] <= PER_SOURCE)) || fail "one source registered ${F[registered]} addresses, over its bound of $PER_SOURCE"
((F[registered] > 0 && F[refused] > 0)) || fail "the flood was neither accepted nor refused: $FLOOD_LINE"
((F[failed] == 0)) || fail "the tracker dropped ${F[failed]} flood requests: $(cat "$W/flood.err")"
REFUSALS_LOGGED=$(count tracker "too many peers registered from $NET.${IDX[flooder]}")
unreachable_after=$(($(unreachable_notices alice) + $(unreachable_notices bob) + $(unreachable_notices carol)))
((unreachable_after == unreachable_before)) || fail "honest peers lost the tracker during the flood"
RSS_AFTER=$(rss_kib "$TRACKER_PID")
((RSS_AFTER - RSS_BEFORE < 64 * 1024)) || fail "tracker RSS grew from $RSS_BEFORE to $RSS_AFTER KiB"
# The flood stopped: its entries expire and the honest peers stay.
t_end=$(now_ms)
flood_gone() {
  local r=0
  ROUNDS=8 probe_bogus || r=$?
  ((r == 1))
}
wait_until $((TTL + 5)) "the flood's entries expired" flood_gone
FLOOD_EXPIRED_S=$(secs_since "$t_end")
ROUNDS=2 wait_until 5 "honest peers registered after the flood" probe_lists "${HONEST[@]}"
ok "flood from one namespace: ${F[requests]} announces of 3000 bogus addresses in ${F[secs]} s (${F[rate]}/s): ${F[registered]} registered (bound ${PER_SOURCE}), ${F[refused]} refused (${REFUSALS_LOGGED} refusals logged), ${F[failed]} dropped; honest peers stayed listed and served, and chatted (all delivered in ${FLOOD_CHAT_S} s); tracker RSS ${RSS_BEFORE} -> ${RSS_PEAK} -> ${RSS_AFTER} KiB; alice's threads ${ALICE_THREADS_BEFORE} -> at most ${ALICE_THREADS_MAX}; the flood's entries expired ${FLOOD_EXPIRED_S} s after it stopped"

# ---- 6. everyone leaves cleanly
for p in alice bob carol; do say "$p" "/quit"; done
for p in alice bob carol; do
  wait_until 10 "$p exited after /quit" exited "${PID[$p]}"
  code=0
  wait "${PID[$p]}" || code=$?
  forget_pid "${PID[$p]}"
  ((code == 0)) || fail "$p exited with status $code after /quit"
done
ok "alice, bob and carol left with status 0"
wait_until 5 "the tracker forgot the peers that left" \
  probe_lacks "$(addr_of alice)" "$(addr_of bob)" "$(addr_of carol)"
ok "their entries were removed at once"
echo "netns-test: $PASSED passed, 0 failed"
