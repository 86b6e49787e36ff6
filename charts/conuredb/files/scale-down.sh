#!/bin/sh
# Scale-down hook Job of chart conuredb (pre-upgrade, pre-rollback and post-upgrade).
#
# Removes from raft every member of this release whose ordinal is >= the desired replica count
# of its StatefulSet, one at a time: voters of "<fullname>" highest ordinal first, then arbiters
# of "<fullname>-arbiter" (an arbiter only once enough voters are members). The bootstrap member
# and ids that do not follow the release's naming are never touched. This is the rule of planScaleDown() in src/planner/topology.ts; the e2e
# test runs this script and compares.
#
# It works on the LIVE membership, so it is idempotent: a member already gone is skipped, and a
# second run (post-upgrade) removes nothing unless a member rejoined in between. Before removing
# a member it asks that member to hand leadership to the bootstrap member if it leads.
# Each step is retried with growing backoff; when the cluster cannot commit the change (no
# quorum, no leader) the script exits non-zero, the Job fails, and Helm aborts the upgrade
# BEFORE the StatefulSets shrink.
#
# Environment:
#   CONURE_ENDPOINTS         cluster HTTP endpoints (required; read by conurectl)
#   FULLNAME                 resource-name prefix of the release, e.g. conure (required)
#   DESIRED_VOTER_REPLICAS   desired replicas of StatefulSet <fullname> (voters - 1) (required)
#   DESIRED_ARBITER_REPLICAS desired replicas of StatefulSet <fullname>-arbiter (required)
#   MEMBER_URL_TEMPLATE      printf template from member id to its HTTP URL (required),
#                            e.g. http://%s.conure-hs.default.svc.cluster.local:8081
#   ATTEMPTS                 attempts per step (default 8); BACKOFF_SECONDS base backoff (default 2)
#   CONURE_PEER_SECRET_FILE  the cluster secret (peerAuth): conurectl sends its token on the
#                            member-only calls (leader transfer, members remove). When it is set
#                            but the file is absent (the upgrade that turns peerAuth on runs this
#                            hook before the chart creates the Secret, against members that have
#                            none yet), the calls go without it.
set -eu
log() { echo "scale-down: $*" >&2; }

: "${CONURE_ENDPOINTS:?CONURE_ENDPOINTS is required}"
fullname=${FULLNAME:?FULLNAME is required}
voters=${DESIRED_VOTER_REPLICAS:?DESIRED_VOTER_REPLICAS is required}
arbiters=${DESIRED_ARBITER_REPLICAS:?DESIRED_ARBITER_REPLICAS is required}
url_template=${MEMBER_URL_TEMPLATE:?MEMBER_URL_TEMPLATE is required}
ATTEMPTS=${ATTEMPTS:-8}
BACKOFF_SECONDS=${BACKOFF_SECONDS:-2}
for n in "$voters" "$arbiters" "$ATTEMPTS" "$BACKOFF_SECONDS"; do
  case "$n" in '' | *[!0-9]*) log "not a whole number: '$n'"; exit 2 ;; esac
done
if [ -n "${CONURE_PEER_SECRET_FILE:-}" ] && [ ! -e "$CONURE_PEER_SECRET_FILE" ]; then
  log "no cluster secret at $CONURE_PEER_SECRET_FILE yet (peer authentication being turned on): calling without it"
  unset CONURE_PEER_SECRET_FILE
fi

# retry CMD...: runs CMD up to $ATTEMPTS times, sleeping BACKOFF_SECONDS * attempt in between.
retry() {
  attempt=1
  until "$@"; do
    if [ "$attempt" -ge "$ATTEMPTS" ]; then log "giving up after $attempt attempts: $*"; return 1; fi
    sleep $((BACKOFF_SECONDS * attempt))
    attempt=$((attempt + 1))
  done
}

# Prints the live raft configuration as "<id> <suffrage>" lines.
member_rows() {
  conurectl members | node -e '
    let s = ""; process.stdin.on("data", (d) => { s += d; }).on("end", () => {
      const c = JSON.parse(s);
      if (!c || !Array.isArray(c.servers)) { console.error("unexpected members output"); process.exit(1); }
      for (const m of c.servers) console.log(`${m.id} ${m.suffrage}`);
    });'
}

# Prints "<kind> <ordinal> <id> <suffrage>" for every surplus member of $list_file, in removal
# order (kind 0 = voter StatefulSet, 1 = arbiter StatefulSet; highest ordinal first).
surplus_rows() {
  while read -r id suffrage; do
    case "$id" in
      "$fullname"-arbiter-*) kind=1; ordinal=${id#"$fullname"-arbiter-}; limit=$arbiters ;;
      "$fullname"-bootstrap-*) continue ;;
      "$fullname"-*) kind=0; ordinal=${id#"$fullname"-}; limit=$voters ;;
      *) continue ;;
    esac
    case "$ordinal" in '' | *[!0-9]* | 0?*) continue ;; esac
    if [ "$ordinal" -ge "$limit" ]; then echo "$kind $ordinal $id $suffrage"; fi
  done <"$list_file" | sort -k1,1n -k2,2nr
}

# Prints the ids to remove now, in order. A surplus arbiter waits (logged) until the voters that
# stay number at least the desired voter count (bootstrap included): on a scale-up that drops
# the arbiter it must not go before the new voters are promoted.
removal_plan() {
  rows=$(surplus_rows)
  live_voters=$(grep -c ' voter$' "$list_file" || true)
  surplus_voters=$(printf '%s\n' "$rows" | grep -c '^0 .* voter$' || true)
  kept_voters=$((live_voters - surplus_voters))
  desired_voters=$((voters + 1))
  printf '%s\n' "$rows" | while read -r kind _ordinal id _suffrage; do
    [ -n "$id" ] || continue
    if [ "$kind" = 1 ] && [ "$kept_voters" -lt "$desired_voters" ]; then
      log "keeping arbiter $id until $desired_voters voters are members ($kept_voters now); its preStop or the next hook run removes it"
      continue
    fi
    echo "$id"
  done
}

list_file=$(mktemp)
trap 'rm -f "$list_file"' EXIT
fetch_members() { member_rows >"$list_file"; }

retry fetch_members
plan=$(removal_plan)
if [ -z "$plan" ]; then
  log "nothing to remove (desired: $voters replica(s) of $fullname, $arbiters of $fullname-arbiter)"
  exit 0
fi
log "removing, in order: $(echo $plan)"
for id in $plan; do
  # shellcheck disable=SC2059 # the template is the format string by design
  url=$(printf "$url_template" "$id")
  if ! conurectl --endpoints "$url" leader transfer "$fullname-bootstrap-0" >/dev/null; then
    log "$id: leadership transfer failed; removing anyway (raft elects a new leader)"
  fi
  retry conurectl members remove "$id" >/dev/null
  log "$id removed"
done

retry fetch_members
left=$(removal_plan 2>/dev/null)
if [ -n "$left" ]; then
  log "members still beyond the desired count: $(echo $left)"
  exit 1
fi
log "done: $(wc -l <"$list_file" | tr -d ' ') member(s) remain"
