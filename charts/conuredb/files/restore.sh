#!/bin/sh
# Init container of the bootstrap pod when restore.fromBackup is set: a NEW release starts from
# a backup. Only an EMPTY data directory is restored into, so this runs once per volume: after
# that the member holds data and starts as usual (the value may stay set).
#
#   RESTORE_FILE   a file name in the backup volume, or "latest" (last-good.json's file)
#   the snapshot is verified (conurectl snapshot status), then `conurectl snapshot restore` makes
#   the data directory of a new single-member cluster holding every key and revision; the other
#   members join it with empty volumes.
#
# Environment: RESTORE_FILE, BACKUP_DIR (default /backups), CONURE_DATA_DIR (default
# /var/lib/conure), POD_NAME, ADVERTISE_RAFT, ADVERTISE_HTTP.
set -eu
log() { echo "restore: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

dir=${BACKUP_DIR:-/backups}
data_dir=${CONURE_DATA_DIR:-/var/lib/conure}
file=${RESTORE_FILE:?RESTORE_FILE is required}

if [ -n "$(ls -A "$data_dir" 2>/dev/null | grep -v '^lost+found$' || true)" ]; then
  log "$data_dir holds data; not restoring (restore.fromBackup acts on an empty volume only)"
  exit 0
fi
if [ "$file" = latest ]; then
  file=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).file)' "$dir/last-good.json") \
    || fail "restore.fromBackup=latest, but $dir/last-good.json cannot be read (no good backup yet?)"
fi
case "$file" in */* | .*) fail "restore.fromBackup must be a file name in the backup volume, not '$file'" ;; esac
[ -f "$dir/$file" ] || fail "$dir/$file does not exist; the volume holds: $(ls "$dir" | tr '\n' ' ')"
status=$(conurectl snapshot status "$dir/$file") || fail "$file does not verify"
log "restoring $file: $status"
conurectl snapshot restore "$dir/$file" --data-dir "$data_dir" --node-id "${POD_NAME:?}" \
  --advertise-raft "${ADVERTISE_RAFT:?}" --advertise-http "${ADVERTISE_HTTP:?}" >/dev/null || fail "conurectl snapshot restore"
log "restored $file into $data_dir as the first member of a new cluster"
