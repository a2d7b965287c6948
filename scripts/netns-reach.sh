#!/usr/bin/env bash
# Reachability on real networks made of namespaces (issue 9). Checks that
#   1. three hosts on a LAN mesh through a tracker with no --ip anywhere: each prints the
#      address the tracker saw, one of them runs on the tracker's own host and announces
#      over loopback (the hosted tracker), and each hears every other once and in order;
#   2. the same three hosts mesh with --lan (mDNS) and nothing else, and a peer of another
#      room on the same LAN links with none of them;
#   3. two homes, each behind its own NAT router (nft masquerade), and a host on the open
#      network mesh through a tracker with nothing but --tracker given: each home peer
#      prints its router's address, the two homes punch through at the first try (one
#      connection), each hears every other once and in order; a home peer that restarts on
#      its port at once is heard again, also at the first try;
#   4. a home behind a router that gives each connection a random port cannot be punched
#      through: its peer and the other home's each print one "cannot reach" line, and it
#      still meshes with the open host;
#   5. the LAN's three hosts mesh through a private Mainline DHT, a `tracker --dht` node on
#      a fourth host, with nothing but --dht --dht-bootstrap given (no tracker session);
#   6. with nothing but --dht either, the two homes behind NAT routers each link with the
#      open host (duplex links), each says it is behind NAT, neither links with the other
#      (no rendezvous), and neither is announced: a newcomer's lookup finds the open host
#      alone.
# It prints the figures it measured. It takes about two minutes once the binaries are built.
#
# Needs root, `ip netns` (iproute2) and `nft` (nftables): scripts/setup.sh test installs
# them. Otherwise it prints "netns-reach: skipped: REASON" and exits 0, as it does when
# NETNS_TEST_FORCE_SKIP is set. It touches nothing outside the namespaces it creates (named
# p2pr<pid>-*) and removes them and every process it started on exit, also on failure.
# NETNS_TEST_KEEP_LOGS=1 keeps the logs directory. CARGO_TARGET_DIR is honoured;
# NETNS_REACH_BINARIES=DIR runs DIR/tracker and DIR/examples/chat instead of building.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

skip() {
  echo "netns-reach: skipped: $*"
  exit 0
}
[[ -z "${NETNS_TEST_FORCE_SKIP:-}" ]] || skip "NETNS_TEST_FORCE_SKIP is set"
[[ $(id -u) -eq 0 ]] || skip "not root (network namespaces need root)"
command -v ip >/dev/null 2>&1 || skip "ip (iproute2) is not installed (scripts/setup.sh test installs it)"
command -v nft >/dev/null 2>&1 || skip "nft (nftables) is not installed (scripts/setup.sh test installs it)"
command -v mkfifo >/dev/null 2>&1 || skip "mkfifo is not available"

P="p2pr$$"
PORT=7100        # every peer's port (each in its own namespace)
TPORT=7000       # the tracker's
TTL=6            # tracker --ttl: peers re-announce every 2 s
DPORT=7001       # the tracker that runs the DHT node (TCP)
DHTPORT=6881     # its DHT node (UDP)
LINES=5          # lines each peer says per round

declare -A PID FD
NSS=()
PIDS=()
FDS=()
W=""
PASSED=0
ok() {
  PASSED=$((PASSED + 1))
  echo "netns-reach: ok: $*"
}

# shellcheck source=scripts/netns-lib.sh
source scripts/netns-lib.sh
trap 'netns_cleanup netns-reach 20' EXIT
trap 'echo "netns-reach: interrupted" >&2; exit 130' INT TERM

fail() {
  echo "netns-reach: FAIL: $*" >&2
  exit 1
}

# Can this machine make namespaces, veth pairs, bridges and nft tables at all?
probe_ns="$P-probe"
if ! err=$(ip netns add "$probe_ns" 2>&1); then
  skip "ip netns add failed: ${err%%$'\n'*}"
fi
NSS+=("$probe_ns")
if ! err=$(ip -n "$probe_ns" link add br0 type bridge 2>&1 &&
  ip -n "$probe_ns" link add va type veth peer name vb 2>&1); then
  skip "no bridge or veth support: ${err%%$'\n'*}"
fi
if ! err=$(ip netns exec "$probe_ns" nft add table inet probe 2>&1); then
  skip "nft cannot make tables here: ${err%%$'\n'*}"
fi
ip netns del "$probe_ns"
NSS=()

if [[ -n "${NETNS_REACH_BINARIES:-}" ]]; then
  # Other builds' binaries (an older commit's, to see which checks it fails).
  BIN=$NETNS_REACH_BINARIES
else
  echo "netns-reach: building the tracker and the chat example"
  cargo build -q -p tracker -p p2p-core --bins --examples
  BIN="${CARGO_TARGET_DIR:-target}/debug"
fi
W=$(mktemp -d "${TMPDIR:-/tmp}/netns-reach.XXXXXX")
mkdir "$W/bin"
cp "$BIN/tracker" "$W/bin/nsr-track"
cp "$BIN/examples/chat" "$W/bin/nsr-peer"
TRACKER="$W/bin/nsr-track" CHAT="$W/bin/nsr-peer"

now_ms() {
  local t=${EPOCHREALTIME/./}
  echo $((t / 1000))
}
secs_since() {
  local d=$(($(now_ms) - $1))
  printf '%d.%02d' $((d / 1000)) $(((d % 1000) / 10))
}
wait_until() { # SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2
  shift 2
  local end=$(($(now_ms) + limit * 1000))
  until "$@"; do
    (($(now_ms) < end)) || fail "$what: not within ${limit} s"
    sleep 0.1
  done
}

# ---- topology helpers
# switch NAME: a namespace holding bridge br0
switch() {
  ip netns add "$P-$1"
  NSS+=("$P-$1")
  ip -n "$P-$1" link add br0 type bridge
  ip -n "$P-$1" link set br0 up
}
# host NAME: a namespace with lo up
host() {
  ip netns add "$P-$1"
  NSS+=("$P-$1")
  ip -n "$P-$1" link set lo up
}
# plug HOST IFNAME SWITCH ADDR/LEN: a veth from HOST into SWITCH's bridge
PLUGS=0
plug() {
  PLUGS=$((PLUGS + 1))
  local side="p$PLUGS"
  ip -n "$P-$3" link add "$side" type veth peer name "$2" netns "$P-$1"
  ip -n "$P-$3" link set "$side" master br0 up
  ip -n "$P-$1" addr add "$4" dev "$2"
  ip -n "$P-$1" link set "$2" up
}
# router NAME WAN_ADDR/LEN HOME LAN_NET [random]: NAME routes HOME's LAN (LAN_NET.0/24,
# itself LAN_NET.1, the home LAN_NET.2) to the WAN switch, masquerading; with `random`,
# each connection gets a random external port (no punching through it). Like a home
# router, it drops what comes unasked from the WAN, for itself too (a router that answers a
# punch's early SYN with a reset makes its own side's SYN leave from another port).
router() {
  local r=$1 wan=$2 home=$3 net=$4 mode=${5:-}
  host "$r"
  host "$home"
  plug "$r" wan0 wan "$wan"
  ip -n "$P-$r" link add lan0 type veth peer name eth0 netns "$P-$home"
  ip -n "$P-$r" addr add "$net.1/24" dev lan0
  ip -n "$P-$r" link set lan0 up
  ip -n "$P-$home" addr add "$net.2/24" dev eth0
  ip -n "$P-$home" link set eth0 up
  ip -n "$P-$home" route add default via "$net.1"
  ip netns exec "$P-$r" sysctl -qw net.ipv4.ip_forward=1
  local masq="masquerade"
  [[ $mode != random ]] || masq="masquerade fully-random"
  ip netns exec "$P-$r" nft -f - <<EOF
table inet filter {
  chain input {
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    iifname { "lo", "lan0" } accept
  }
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "lan0" oifname "wan0" accept
  }
}
table inet nat {
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    oifname "wan0" $masq
  }
}
EOF
}

# ---- processes
start_tracker() { # NS
  ip netns exec "$P-$1" env RUST_LOG=info "$TRACKER" --port "$TPORT" --ttl "$TTL" \
    </dev/null >"$W/tracker-$1.out" 2>"$W/tracker-$1.err" &
  PID[tracker-$1]=$!
  PIDS+=("$!")
  wait_until 10 "tracker in $1 started" grep -qF "listening on 0.0.0.0:$TPORT" "$W/tracker-$1.err"
}
# start_dht_node NS: a tracker with a Mainline DHT node (tracker --dht), the private DHT's
# bootstrap node
start_dht_node() {
  ip netns exec "$P-$1" env RUST_LOG=info "$TRACKER" --port "$DPORT" --dht "$DHTPORT" \
    </dev/null >"$W/dht-$1.out" 2>"$W/dht-$1.err" &
  PID[dht-$1]=$!
  PIDS+=("$!")
  wait_until 10 "DHT node in $1 started" grep -qF "dht node on 0.0.0.0:$DHTPORT" "$W/dht-$1.err"
}
# start_peer NAME NS ARGS...: a terminal peer named NAME in namespace NS
start_peer() {
  local name=$1 ns=$2 fd
  shift 2
  rm -f "$W/$name.in"
  mkfifo "$W/$name.in"
  exec {fd}<>"$W/$name.in"
  FD[$name]=$fd
  FDS+=("$fd")
  # A data directory per peer: each host is an installation with an identity key of its own.
  ip netns exec "$P-$ns" env RUST_LOG=info "$CHAT" --username "$name" --port "$PORT" \
    --data-dir "$W/data-$name" "$@" \
    <"$W/$name.in" >"$W/$name.out" 2>"$W/$name.err" &
  PID[$name]=$!
  PIDS+=("$!")
  wait_until 10 "$name started" grep -q "^listening on " "$W/$name.err"
}
listening_line() { grep -m1 "^listening on " "$W/$1.err" | cut -d' ' -f3; }
say() { echo "$2" >&"${FD[$1]}"; }
# quit NAME...: /quit each, wait for a clean exit
quit() {
  local p code
  for p in "$@"; do say "$p" "/quit"; done
  for p in "$@"; do
    wait_until 10 "$p exited after /quit" eval '! kill -0 '"${PID[$p]}"' 2>/dev/null'
    code=0
    wait "${PID[$p]}" || code=$?
    ((code == 0)) || fail "$p exited with status $code after /quit"
    local keep=() q
    for q in "${PIDS[@]}"; do [[ $q == "${PID[$p]}" ]] || keep+=("$q"); done
    PIDS=("${keep[@]}")
  done
}
# linked P Q...: P listens to each Q and each Q listens to P (from P's notices)
linked() {
  local p=$1 q
  shift
  for q in "$@"; do
    grep -qE "^\* listening to $q \(" "$W/$p.err" || return 1
    grep -qE "^\* $q \(.*\) listens to you" "$W/$p.err" || return 1
  done
}
# mesh P...: every pair linked, from both sides' notices
mesh() {
  local p q others
  for p in "$@"; do
    others=()
    for q in "$@"; do [[ $q == "$p" ]] || others+=("$q"); done
    linked "$p" "${others[@]}" || return 1
  done
}
# round TAG P...: each says LINES numbered lines; then each must hear every other's lines
# once and in order (and nothing of its own)
round() {
  local tag=$1 p q i
  shift
  for p in "$@"; do
    for i in $(seq "$LINES"); do say "$p" "$tag $p $i"; done
  done
  local expect got
  for p in "$@"; do
    for q in "$@"; do
      [[ $q != "$p" ]] || continue
      expect=$(for i in $(seq "$LINES"); do echo "[$q]: $tag $q $i"; done)
      wait_until 15 "$p heard $q's $tag lines" \
        eval "[[ \$(grep -cF '[$q]: $tag $q ' '$W/$p.out') -ge $LINES ]]"
      got=$(grep -F "[$q]: $tag $q " "$W/$p.out")
      [[ "$got" == "$expect" ]] || fail "$p heard $q's $tag lines wrongly (lost, doubled or out of order): $got"
    done
    ! grep -qF "[$p]: " "$W/$p.out" || fail "$p heard itself"
  done
}
# connections NS PORT: established TCP connections in NS on local port PORT, but the
# tracker session's
connections() {
  ip netns exec "$P-$1" ss -Htn state established "( sport = :$2 and dport != :$TPORT )" | wc -l
}

# ======== 1 and 2: three hosts on a LAN, nothing typed
NET=10.124.0
switch lan
for i in 1 2 3 4; do
  host "l$i"
  plug "l$i" eth0 lan "$NET.$i/24"
done
start_tracker l1
t0=$(now_ms)
# alice shares the tracker's host and reaches it over loopback: the hosted tracker.
start_peer alice l1 --tracker "127.0.0.1:$TPORT"
start_peer bob l2 --tracker "$NET.1:$TPORT"
start_peer carol l3 --tracker "$NET.1:$TPORT"
[[ $(listening_line bob) == "$NET.2:$PORT" ]] || fail "bob prints $(listening_line bob), not the address the tracker saw"
[[ $(listening_line carol) == "$NET.3:$PORT" ]] || fail "carol prints $(listening_line carol)"
wait_until 20 "mesh of alice (on the tracker's host), bob and carol" mesh alice bob carol
MESH_S=$(secs_since "$t0")
round lan alice bob carol
grep -qF "* listening to alice ($NET.1:$PORT, " "$W/bob.err" ||
  fail "bob does not reach alice at the tracker host's LAN address"
ok "LAN, tracker mode, no --ip: bob and carol print the address the tracker saw; alice, on the tracker's host, is listed to them at $NET.1:$PORT; meshed in ${MESH_S} s; everyone heard everyone once and in order"
quit alice bob carol

t0=$(now_ms)
start_peer alice l1 --lan
start_peer bob l2 --lan
start_peer carol l3 --lan
start_peer dave l4 --lan --room attic
wait_until 20 "LAN mesh of alice, bob and carol" mesh alice bob carol
LAN_S=$(secs_since "$t0")
round mdns alice bob carol
say dave "dave in the attic"
sleep 1 # nothing should arrive: give it a moment to prove it
for p in alice bob carol; do
  ! grep -q "dave" "$W/$p.err" "$W/$p.out" || fail "$p linked with dave, of another room"
done
[[ ! -s "$W/dave.out" ]] || fail "dave heard the lobby"
ok "LAN, --lan: alice, bob and carol found each other by mDNS and meshed in ${LAN_S} s; everyone heard everyone once and in order; dave (room attic) linked with nobody"
t_quit=$(now_ms)
quit bob
wait_until 10 "alice saw bob leave" grep -qF "* stopped listening to bob" "$W/alice.err"
ok "a peer that leaves the LAN mesh is seen gone after $(secs_since "$t_quit") s"
quit alice carol dave

# ======== 5: the same three hosts through a private DHT, nothing but --dht given
start_dht_node l4
t0=$(now_ms)
start_peer alice l1 --dht --dht-bootstrap "$NET.4:$DHTPORT"
start_peer bob l2 --dht --dht-bootstrap "$NET.4:$DHTPORT"
start_peer carol l3 --dht --dht-bootstrap "$NET.4:$DHTPORT"
wait_until 30 "DHT mesh of alice, bob and carol" mesh alice bob carol
DHT_S=$(secs_since "$t0")
round dht alice bob carol
# Each link was found through the DHT or through the hello of a peer that found it so.
FOUND_DHT=$(cat "$W"/{alice,bob,carol}.err | grep -cE "^\* found $NET\.[123]:$PORT through the DHT" || true)
((FOUND_DHT >= 2)) || fail "the DHT found $FOUND_DHT peers, not at least 2"
for p in alice bob carol; do
  ! grep -qE "^\* (DHT unreachable|behind a NAT router)" "$W/$p.err" ||
    fail "$p: $(grep -m1 -E '^\* (DHT unreachable|behind a NAT router)' "$W/$p.err")"
done
ok "LAN, --dht --dht-bootstrap only: alice, bob and carol found each other through the DHT node on a fourth host and meshed in ${DHT_S} s; everyone heard everyone once and in order"
quit alice bob carol

# ======== 3 and 4: two homes behind NAT routers, an open host, a tracker
WAN=10.125.0
switch wan
host wt
plug wt eth0 wan "$WAN.1/24"
host wo
plug wo eth0 wan "$WAN.2/24"
router r1 "$WAN.11/24" h1 192.168.11
router r2 "$WAN.12/24" h2 192.168.12
router r3 "$WAN.13/24" h3 192.168.13 random
start_tracker wt
t0=$(now_ms)
start_peer hana h1 --tracker "$WAN.1:$TPORT"
start_peer olga wo --tracker "$WAN.1:$TPORT"
start_peer hugo h2 --tracker "$WAN.1:$TPORT"
[[ $(listening_line hana) == "$WAN.11:$PORT" ]] || fail "hana prints $(listening_line hana), not her router's address"
[[ $(listening_line hugo) == "$WAN.12:$PORT" ]] || fail "hugo prints $(listening_line hugo)"
[[ $(listening_line olga) == "$WAN.2:$PORT" ]] || fail "olga prints $(listening_line olga)"
wait_until 30 "mesh of hana, hugo (behind NAT) and olga (open)" mesh hana hugo olga
NAT_S=$(secs_since "$t0")
round nat hana hugo olga
for p in hana hugo; do
  ! grep -qF "* cannot reach" "$W/$p.err" || fail "$p: a punch failed before it got through: $(grep -m1 -F '* cannot reach' "$W/$p.err")"
done
HANA_CONNS=$(connections h1 "$PORT")
((HANA_CONNS == 2)) || fail "hana has $HANA_CONNS connections from her port, not 2 (one duplex link to each)"
ok "two homes behind NAT routers and an open host, only --tracker given: the homes print their routers' addresses; meshed in ${NAT_S} s (the homes punched through); hana holds one connection per peer; everyone heard everyone once and in order"

# hana restarts on her port at once: her new connections come from the same port as the
# old ones (still in TIME_WAIT on her side for those she closed first).
quit hana
t0=$(now_ms)
mv "$W/hana.out" "$W/hana-1.out"
mv "$W/hana.err" "$W/hana-1.err"
start_peer hana h1 --tracker "$WAN.1:$TPORT"
wait_until 30 "hana back in the mesh" linked hana hugo olga
round again hana hugo olga
! grep -qF "* cannot reach" "$W/hana.err" || fail "hana, restarted: $(grep -m1 -F '* cannot reach' "$W/hana.err")"
ok "hana restarted on her port and was heard again after $(secs_since "$t0") s"

# iris's router gives every connection a random port: no punching through it.
start_peer iris h3 --tracker "$WAN.1:$TPORT"
wait_until 30 "iris linked with olga" linked iris olga
wait_until 30 "iris told she cannot reach hana or hugo" grep -qF "* cannot reach" "$W/iris.err"
wait_until 30 "hana or hugo told they cannot reach iris" \
  eval "grep -qF '* cannot reach $WAN.13:$PORT' '$W/hana.err' '$W/hugo.err'"
say olga "olga to iris"
wait_until 10 "iris heard olga" grep -qxF "[olga]: olga to iris" "$W/iris.out"
ok "a router that gives each connection another port: iris and the other homes each got a 'cannot reach' line ($(grep -m1 -F '* cannot reach' "$W/iris.err" | cut -c1-90)...), and iris still chats with the open host"
quit hana hugo olga iris

# ======== 6: the homes behind NAT routers and the open host, nothing but --dht given
host wp
plug wp eth0 wan "$WAN.3/24"
start_dht_node wt
t0=$(now_ms)
for peer in olga:wo hana:h1 hugo:h2; do
  mv "$W/${peer%%:*}.err" "$W/${peer%%:*}-tracker.err"
  start_peer "${peer%%:*}" "${peer##*:}" --dht --dht-bootstrap "$WAN.1:$DHTPORT"
done
wait_until 30 "hana and hugo (behind NAT) linked with olga (open)" eval 'linked hana olga && linked hugo olga'
NATDHT_S=$(secs_since "$t0")
round natdht1 hana olga
round natdht2 hugo olga
for p in hana:11 hugo:12; do
  grep -qF "* behind a NAT router (the DHT sees this peer at $WAN.${p##*:})" "$W/${p%%:*}.err" ||
    fail "${p%%:*} did not say it is behind NAT"
done
! grep -qF "* behind a NAT router" "$W/olga.err" || fail "olga, on the open network, says she is behind NAT"
! grep -qE "^\* listening to (hana|hugo) " "$W/hugo.err" "$W/hana.err" || fail "the two homes linked with each other through the DHT alone"
# A newcomer's first lookup lists what was announced: olga, not the homes' routers.
start_peer otto wp --dht --dht-bootstrap "$WAN.1:$DHTPORT"
wait_until 30 "otto linked with olga" linked otto olga
! grep -qE "^\* found $WAN\.1[123]:" "$W/otto.err" ||
  fail "a peer behind NAT was announced: $(grep -m1 -E "^\* found $WAN\.1[123]:" "$W/otto.err")"
ok "NAT, --dht only: hana and hugo each said they are behind NAT and linked with olga (duplex) in ${NATDHT_S} s, not with each other (no rendezvous), and were not announced (a newcomer found olga alone)"
quit hana hugo olga otto
echo "netns-reach: $PASSED passed, 0 failed"
