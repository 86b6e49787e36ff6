#!/bin/sh
# preStop hook of every ConureDB pod (chart conuredb).
#
#  1. If this member is the leader, hand leadership to another voter, so the cluster does not
#     sit out an election timeout after the SIGTERM that follows (conurectl leader transfer is
#     a successful no-op on a follower).
#  2. Leave raft ONLY when this pod's ordinal is >= the desired replica count of its
#     StatefulSet, read from the topology ConfigMap mounted at $TOPOLOGY_DIR
#     (file "<statefulset>.replicas"). A restart, a rollout or a node drain leaves the desired
#     count unchanged, so none of them ever shrinks the cluster. When the count is missing or
#     unreadable the member stays: removal fails safe.
#
# The hook itself never fails: a failing preStop only delays termination. Every decision is
# logged to stderr. The pre-upgrade Job (scale-down.sh) is the primary scale-down path; this is
# the safety net for a pod that is deleted after the ConfigMap changed.
#
# Environment:
#   POD_NAME          this pod's name = raft member id (required)
#   TOPOLOGY_DIR      directory holding <statefulset>.replicas (default /etc/conure/topology)
#   LOCAL_ENDPOINT    this member's HTTP API (default http://127.0.0.1:8081)
#   CONURE_ENDPOINTS  cluster HTTP endpoints, used by conurectl for the removal
#   REMOVE_ATTEMPTS   removal attempts before giving up (default 3; keep the total well inside
#                     terminationGracePeriodSeconds: each attempt may take conurectl's 10 s timeout)
set -u
log() { echo "prestop: $*" >&2; }

pod=${POD_NAME:?POD_NAME is required}
TOPOLOGY_DIR=${TOPOLOGY_DIR:-/etc/conure/topology}
LOCAL_ENDPOINT=${LOCAL_ENDPOINT:-http://127.0.0.1:8081}
REMOVE_ATTEMPTS=${REMOVE_ATTEMPTS:-3}

if conurectl --endpoints "$LOCAL_ENDPOINT" leader transfer >/dev/null; then
  log "leadership handed off (no-op when $pod is not the leader)"
else
  log "leadership transfer failed; conured transfers again on SIGTERM"
fi

sts=${pod%-*}
ordinal=${pod##*-}
case "$ordinal" in
  '' | *[!0-9]*) log "no ordinal in pod name $pod; keeping membership"; exit 0 ;;
esac
desired=$(cat "$TOPOLOGY_DIR/$sts.replicas" 2>/dev/null || true)
case "$desired" in
  '' | *[!0-9]*) log "no desired replica count for $sts in $TOPOLOGY_DIR; keeping membership"; exit 0 ;;
esac
if [ "$ordinal" -lt "$desired" ]; then
  log "$pod is within the desired $desired replica(s) of $sts; keeping membership (restart, rollout or drain)"
  exit 0
fi

log "$pod is beyond the desired $desired replica(s) of $sts; leaving raft"
attempt=1
while :; do
  if conurectl members remove "$pod" >/dev/null; then
    log "$pod removed from raft"
    exit 0
  fi
  if [ "$attempt" -ge "$REMOVE_ATTEMPTS" ]; then
    log "could not remove $pod after $attempt attempts; the post-upgrade hook retries"
    exit 0
  fi
  attempt=$((attempt + 1))
  sleep 2
done
