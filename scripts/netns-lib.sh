# What scripts/netns-test.sh and scripts/netns-reach.sh share; sourced by both, which keep
# the processes they start in PIDS, the descriptors they open in FDS, the namespaces they
# make in NSS and their logs in the directory W.

# netns_cleanup NAME LINES: for an EXIT trap (call it first, so that it sees the script's
# status). Ends every process in PIDS (SIGCONT first, for one left stopped; SIGTERM, then
# SIGKILL after 3 s), closes FDS, deletes the namespaces in NSS, shows the last LINES
# lines of each log in W if the script failed, removes W unless NETNS_TEST_KEEP_LOGS is
# set, and exits with the script's status.
netns_cleanup() {
  local status=$? name=$1 lines=$2
  set +e
  local pid fd ns f
  for pid in "${PIDS[@]}"; do
    kill -CONT "$pid" 2>/dev/null
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  for fd in "${FDS[@]}"; do exec {fd}>&-; done
  for ns in "${NSS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  if [[ $status -ne 0 && -n "$W" && -d "$W" ]]; then
    for f in "$W"/*.err "$W"/*.out; do
      [[ -s "$f" ]] || continue
      echo "---- ${f##*/} (last lines)" >&2
      tail -n "$lines" "$f" >&2
    done
  fi
  if [[ -n "$W" && -d "$W" ]]; then
    if [[ -n "${NETNS_TEST_KEEP_LOGS:-}" ]]; then
      echo "$name: logs kept in $W" >&2
    else
      rm -rf "$W"
    fi
  fi
  exit "$status"
}
