#!/bin/sh
# `helm test` check of chart conuredb: a member knows a leader (`conurectl health`, the guide's
# health check), a put/get/del round trip through the client service, and the raft
# configuration holds exactly the planned voters and arbiters (no leftover learners).
# Environment: CONURE_ENDPOINTS, EXPECTED_VOTERS, EXPECTED_ARBITERS, TEST_KEY (default helm-test).
set -eu
fail() { echo "helm-test: FAIL: $*" >&2; exit 1; }
key=${TEST_KEY:-helm-test}
value="ok-$(date +%s)"

conurectl health >/dev/null || fail "health: no member knows a leader"
conurectl kv put "$key" "$value" >/dev/null || fail "put $key"
got=$(conurectl kv get "$key") || fail "get $key"
[ "$got" = "$value" ] || fail "get $key returned '$got', expected '$value'"
conurectl kv del "$key" >/dev/null || fail "del $key"

counts=$(conurectl members | node -e '
  let s = ""; process.stdin.on("data", (d) => { s += d; }).on("end", () => {
    const n = { voter: 0, arbiter: 0, learner: 0 };
    for (const m of JSON.parse(s).servers) n[m.suffrage] = (n[m.suffrage] ?? 0) + 1;
    console.log(`${n.voter} ${n.arbiter} ${n.learner}`);
  });') || fail "members"
[ "$counts" = "${EXPECTED_VOTERS:?} ${EXPECTED_ARBITERS:?} 0" ] \
  || fail "raft config has voters/arbiters/learners = $counts, expected ${EXPECTED_VOTERS} ${EXPECTED_ARBITERS} 0"
echo "helm-test: ok: round trip and ${EXPECTED_VOTERS} voter(s) + ${EXPECTED_ARBITERS} arbiter(s)"
