#!/usr/bin/env bash
# The IM chat guide's etcd cluster checks, against any etcd v3 endpoint list (etcd or ConureDB).
#
#   ENDPOINTS=127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379 scripts/test-etcd-cluster.sh
#   KUBECTL_POD=conuredb-0 NAMESPACE=chat ENDPOINTS=localhost:2379 scripts/test-etcd-cluster.sh
#
# With KUBECTL_POD set, every etcdctl runs as `kubectl exec -n $NAMESPACE $KUBECTL_POD -- etcdctl`.
# Prints one PASS/FAIL line per check; exits 0 only when all nine pass.
set -u
ENDPOINTS="${ENDPOINTS:-127.0.0.1:2379}"
NAMESPACE="${NAMESPACE:-default}"
ETCDCTL="${ETCDCTL:-etcdctl}"
TIMEOUT="${COMMAND_TIMEOUT:-10s}"
DIAL="${DIAL_TIMEOUT:-5s}"
export ETCDCTL_API=3
KEY="/registry/cluster-test/$$-$(date +%s)"
passed=0; failed=0

ctl() {
  if [ -n "${KUBECTL_POD:-}" ]; then
    kubectl exec -n "$NAMESPACE" "$KUBECTL_POD" -- env ETCDCTL_API=3 "$ETCDCTL" --endpoints="$ENDPOINTS" --dial-timeout="$DIAL" --command-timeout="$TIMEOUT" "$@"
  else
    "$ETCDCTL" --endpoints="$ENDPOINTS" --dial-timeout="$DIAL" --command-timeout="$TIMEOUT" "$@"
  fi
}
# The same as ctl, but the etcdctl (or kubectl) process replaces the calling (sub)shell: run in the
# background, `$!` is then its pid and killing it stops the watcher instead of orphaning it.
ctl_exec() {
  if [ -n "${KUBECTL_POD:-}" ]; then
    exec kubectl exec -n "$NAMESPACE" "$KUBECTL_POD" -- env ETCDCTL_API=3 "$ETCDCTL" --endpoints="$ENDPOINTS" --dial-timeout="$DIAL" --command-timeout="$TIMEOUT" "$@"
  else
    exec "$ETCDCTL" --endpoints="$ENDPOINTS" --dial-timeout="$DIAL" --command-timeout="$TIMEOUT" "$@"
  fi
}
ctl_at() { local ep="$1"; shift; ENDPOINTS="$ep" ctl "$@"; }
check() { # check <n> <name> <command…>
  local n="$1" name="$2"; shift 2
  local out
  if out="$("$@" 2>&1)"; then echo "PASS $n $name"; passed=$((passed+1));
  else echo "FAIL $n $name: $(echo "$out" | tail -n 3 | tr '\n' ' ')"; failed=$((failed+1)); fi
}

IFS=',' read -r -a EPS <<< "$ENDPOINTS"

c_health() {
  local ep
  for ep in "${EPS[@]}"; do ctl_at "$ep" endpoint health 2>&1 | grep -q 'is healthy' || { echo "$ep unhealthy"; return 1; }; done
}
c_members() {
  local n; n="$(ctl member list | grep -c .)"
  [ "$n" -ge "${#EPS[@]}" ] || { echo "member list has $n members, want >= ${#EPS[@]}"; return 1; }
}
c_leader() {
  local out leaders
  out="$(ctl endpoint status -w table --cluster 2>/dev/null || ctl endpoint status -w table)"
  leaders="$(echo "$out" | awk -F'|' 'NR>3 && NF>6 {gsub(/ /,"",$6); print $6}' | grep -c '^true$')"
  [ "$leaders" -eq 1 ] || { echo "$out"; echo "want exactly one leader, got $leaders"; return 1; }
}
c_write() { [ "$(ctl put "$KEY/write" "hello")" = "OK" ]; }
c_read() { [ "$(ctl get "$KEY/write" --print-value-only)" = "hello" ]; }
c_lease() {
  local lease
  lease="$(ctl lease grant 2 | sed -n 's/^lease \([0-9a-f]*\) granted.*/\1/p')"
  [ -n "$lease" ] || return 1
  ctl put --lease="$lease" "$KEY/ttl" "expiring" >/dev/null || return 1
  [ "$(ctl get "$KEY/ttl" --print-value-only)" = "expiring" ] || { echo "leased key not readable"; return 1; }
  local i
  for i in $(seq 1 40); do
    [ -z "$(ctl get "$KEY/ttl" --print-value-only)" ] && return 0
    sleep 0.25
  done
  echo "leased key still present after its TTL"; return 1
}
c_watch() {
  local out pid f
  f="$(mktemp)"
  ctl_exec watch "$KEY/watch" >"$f" 2>&1 &
  pid=$!
  local i
  for i in $(seq 1 40); do
    ctl put "$KEY/watch" "event-$i" >/dev/null || break
    grep -q "event-" "$f" && break
    sleep 0.25
  done
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  out="$(cat "$f")"; rm -f "$f"
  echo "$out" | grep -q '^PUT$' && echo "$out" | grep -q 'event-' || { echo "watch saw: $out"; return 1; }
}
c_consistency() {
  ctl put "$KEY/consistency" "same-everywhere" >/dev/null || return 1
  local ep v
  for ep in "${EPS[@]}"; do
    v="$(ctl_at "$ep" get "$KEY/consistency" --print-value-only)"
    [ "$v" = "same-everywhere" ] || { echo "$ep read '$v'"; return 1; }
  done
}
c_cleanup() {
  ctl del --prefix "$KEY" >/dev/null || return 1
  [ "$(ctl get --prefix "$KEY" --count-only -w json | sed -n 's/.*"count":\([0-9]*\).*/\1/p')" = "" ] || \
    [ "$(ctl get --prefix "$KEY" --keys-only | grep -c .)" -eq 0 ]
}

echo "etcd cluster test: endpoints=$ENDPOINTS${KUBECTL_POD:+ pod=$NAMESPACE/$KUBECTL_POD}"
check 1 "cluster health" c_health
check 2 "member list" c_members
check 3 "leader election" c_leader
check 4 "write" c_write
check 5 "read" c_read
check 6 "TTL/lease" c_lease
check 7 "watch" c_watch
check 8 "consistency across members" c_consistency
check 9 "cleanup" c_cleanup
echo "RESULT: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -eq 9 ]
