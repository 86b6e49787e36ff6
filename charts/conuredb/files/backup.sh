#!/bin/sh
# Scheduled backup of chart conuredb (the CronJob of backup.enabled).
#
#  1. a member must know a leader (conurectl health): a backup of a cluster without quorum could
#     be stale, so it fails loudly instead;
#  2. stream a consistent snapshot from the first healthy endpoint (conurectl snapshot save: the
#     file is written aside, checksum-verified and fsynced before it is renamed);
#  3. verify it again and read its revision (conurectl snapshot status), and name it
#     conure-<UTC time>-r<revision>.db;
#  4. keep the $RETENTION newest snapshots of that name pattern and delete the rest (nothing else
#     in the directory is touched);
#  5. record the last good backup in $BACKUP_DIR/last-good.json and print one status line.
#
# Exits non-zero (the Job fails, and is retried by its backoffLimit) when any step fails; a failed
# run leaves no half-written snapshot behind and deletes nothing.
#
# Environment: CONURE_ENDPOINTS (required), BACKUP_DIR (default /backups), RETENTION (default 7).
set -eu
log() { echo "backup: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

dir=${BACKUP_DIR:-/backups}
keep=${RETENTION:-7}
case "$keep" in '' | *[!0-9]* | 0) fail "RETENTION must be a whole number >= 1, not '$keep'" ;; esac
[ -d "$dir" ] && [ -w "$dir" ] || fail "$dir is not a writable directory (is the backup volume mounted?)"

rm -f "$dir"/.incoming.db "$dir"/.incoming.db.part
conurectl health >/dev/null || fail "no member knows a leader: not backing up a cluster without quorum"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
conurectl snapshot save "$dir/.incoming.db" >/dev/null || { rm -f "$dir/.incoming.db.part"; fail "snapshot save"; }
status=$(conurectl snapshot status "$dir/.incoming.db") || { rm -f "$dir/.incoming.db"; fail "the saved snapshot does not verify"; }
fields=$(printf '%s' "$status" | node -e '
  let s = ""; process.stdin.on("data", (d) => { s += d; }).on("end", () => {
    const j = JSON.parse(s);
    console.log(`${j.revision} ${j.keys} ${j.totalSize} ${j.sha256}`);
  });') || fail "cannot read the snapshot status"
set -- $fields
revision=$1 keys=$2 bytes=$3 sha=$4
name="conure-$stamp-r$revision.db"
mv "$dir/.incoming.db" "$dir/$name"

pruned=0
for f in $(ls "$dir" | grep -E '^conure-[0-9]{8}T[0-9]{6}Z-r[0-9]+\.db$' | sort -r | tail -n +"$((keep + 1))"); do
  rm -f "$dir/$f"
  pruned=$((pruned + 1))
done
kept=$(ls "$dir" | grep -cE '^conure-[0-9]{8}T[0-9]{6}Z-r[0-9]+\.db$' || true)

printf '{"file":"%s","revision":%s,"keys":%s,"bytes":%s,"sha256":"%s","at":"%s"}\n' "$name" "$revision" "$keys" "$bytes" "$sha" "$stamp" >"$dir/.last-good.json"
mv "$dir/.last-good.json" "$dir/last-good.json"
echo "backup: ok: $name (revision $revision, $keys keys, $bytes bytes); kept $kept, pruned $pruned"
