#!/bin/sh
# Init container of chart conuredb: holds a FRESH pod until the cluster can take it.
#
# A pod whose data directory already holds data never waits: after a full-cluster restart the
# members must start together to regain quorum, and waiting for readiness would deadlock.
#
# WAIT_MODE:
#   join       (voters)  wait until $WAIT_URL answers /ready (the bootstrap pod)
#   any        (arbiter, or the bootstrap pod with recovery.bootstrapRejoin) wait until $WAIT_URL
#              answers /ready (the client service: a ready voter)
#              In both modes, a pod with an EMPTY data directory that the live raft
#              configuration still lists (its volume was lost, or it died before writing
#              anything) first removes that stale entry, so it rejoins as a fresh learner and
#              is promoted once caught up, instead of voting with an empty log.
#   bootstrap  (bootstrap pod) refuse to start when the data directory is empty but any other
#              member already answers /health at one of the space-separated $WAIT_URL, or at
#              the URL of a pod of $OTHER_STATEFULSETS (printf $MEMBER_URL_TEMPLATE <sts>-<i>,
#              i below $TOPOLOGY_DIR/<sts>.replicas: the ConfigMap, so that a scale does not
#              change, and so restart, the bootstrap pod): a live
#              member means the cluster exists, and bootstrapping again would split it in two.
#              Recover with `helm upgrade --set recovery.bootstrapRejoin=true` (docs/kubernetes.md,
#              "Replacing the bootstrap member").
#
# Environment: WAIT_MODE, POD_NAME, CONURE_ENDPOINTS (cluster endpoints for conurectl), WAIT_URL (base URL(s), e.g. http://conure-bootstrap-0.conure-hs:8081;
#   may be empty in mode bootstrap when there is no other member),
#   CONURE_DATA_DIR (default /var/lib/conure), WAIT_INTERVAL_SECONDS (default 2).
set -eu
log() { echo "wait-for: $*" >&2; }

mode=${WAIT_MODE:?WAIT_MODE is required}
url=${WAIT_URL:-}
data_dir=${CONURE_DATA_DIR:-/var/lib/conure}
interval=${WAIT_INTERVAL_SECONDS:-2}

# answers URL: exit 0 when URL answers 2xx within 3 s.
answers() {
  node -e 'fetch(process.argv[1], { signal: AbortSignal.timeout(3000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$1"
}

if [ -n "$(ls -A "$data_dir" 2>/dev/null | grep -v '^lost+found$' || true)" ]; then
  log "$data_dir holds data; starting without waiting"
  exit 0
fi

case "$mode" in
  bootstrap)
    if [ -n "${MEMBER_URL_TEMPLATE:-}" ]; then
      for sts in ${OTHER_STATEFULSETS:-}; do
        n=$(cat "${TOPOLOGY_DIR:-/etc/conure/topology}/$sts.replicas" 2>/dev/null || echo 0)
        i=0
        while [ "$i" -lt "$n" ]; do
          # shellcheck disable=SC2059
          url="$url $(printf "$MEMBER_URL_TEMPLATE" "$sts-$i")"
          i=$((i + 1))
        done
      done
    fi
    for u in $url; do
      if answers "$u/health"; then
        log "REFUSING to bootstrap: $data_dir is empty but member $u is alive, so the cluster exists."
        log "Its volume was lost. Recover with: helm upgrade <release> <chart> --reuse-values --set recovery.bootstrapRejoin=true"
        log "(docs/kubernetes.md, 'Replacing the bootstrap member')."
        exit 1
      fi
    done
    log "no other member answers; bootstrapping a new cluster"
    ;;
  join | any)
    [ -n "$url" ] || { log "WAIT_URL is required in mode $mode"; exit 2; }
    n=0
    until answers "$url/ready"; do
      n=$((n + 1))
      log "waiting for $url/ready (attempt $n)"
      sleep "$interval"
    done
    log "$url is ready"
    pod=${POD_NAME:-}
    if [ -n "$pod" ] && conurectl members | node -e '
      let s = ""; process.stdin.on("data", (d) => { s += d; }).on("end", () => {
        process.exit(JSON.parse(s).servers.some((m) => m.id === process.argv[1]) ? 0 : 1);
      });' "$pod"; then
      log "$pod is still a raft member but $data_dir is empty: removing the stale entry so it rejoins as a fresh learner"
      conurectl members remove "$pod" >/dev/null
    fi
    ;;
  *) log "unknown WAIT_MODE '$mode'"; exit 2 ;;
esac
