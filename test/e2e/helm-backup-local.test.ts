/**
 * The chart's scheduled backup and restore-from-backup, on REAL local processes: the scripts and
 * environment come from the rendered chart (`backup.enabled=true`, `restore.fromBackup=…`), the
 * cluster is a real conured, and conurectl is the real one.
 *
 * - backup.sh under write load, three times with RETENTION=2: each run names a verified snapshot
 *   with its time and revision, the oldest is pruned, last-good.json names the newest; a run
 *   without a leader fails, and writes and deletes nothing;
 * - restore.sh with `latest` into an empty data directory: conured started on it serves every
 *   key and revision of the snapshot (compared key by key with the source at that revision); a
 *   second run on the now full directory does nothing; a missing file is refused with the list.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { TestCluster, TestMember, freePort, startWriter } from '../support/cluster.js';
import { tempDir } from '../support/conured-process.js';
import { CONURECTL_JS, SKIP_NO_HELM, envOf, parseManifests, template, type K8sObject } from './helm-support.js';

interface Container { name: string; command: string[]; env: { name: string; value?: string }[] }

function run(script: string, env: Record<string, string>, PATH: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('sh', ['-c', script, 'script'], { env: { PATH, HOME: dirname(PATH), ...env }, timeout: 120_000, encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout, stderr }));
  });
}

/** The backup CronJob's container and the bootstrap StatefulSet's restore init container, as rendered. */
function rendered(): { backup: Container; restore: Container } {
  const objs = parseManifests(template(['--set', 'backup.enabled=true', '--set', 'backup.retention=2', '--set', 'restore.fromBackup=latest']).stdout) as K8sObject[];
  const cron = objs.find((o) => o.kind === 'CronJob')!;
  const backup = (cron.spec as { jobTemplate: { spec: { template: { spec: { containers: Container[] } } } } }).jobTemplate.spec.template.spec.containers[0]!;
  const boot = objs.find((o) => o.kind === 'StatefulSet' && o.metadata.name.endsWith('-bootstrap'))!;
  const inits = (boot.spec as { template: { spec: { initContainers: Container[] } } }).template.spec.initContainers;
  assert.deepEqual(inits.map((c) => c.name).slice(-2), ['restore-from-backup', 'wait-for-cluster'], 'restore runs before the wait');
  return { backup, restore: inits.find((c) => c.name === 'restore-from-backup')! };
}

interface GatewayKv { key: string; value: string; create_revision: string; mod_revision: string; version: string }

/**
 * Every key under `prefix` (at `revision`, or the latest) through the JSON gateway, as
 * `value@create/mod/version`: the value and the MVCC revisions a restore must keep.
 */
async function keysAt(url: string, prefix: string, revision?: number): Promise<{ revision: number; kvs: Record<string, string> }> {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  const body = { key: b64(prefix), range_end: b64(end), ...(revision !== undefined && { revision: String(revision) }) };
  const r = await (await fetch(`${url}/v3/kv/range`, { method: 'POST', body: JSON.stringify(body) })).json() as { header: { revision: string }; kvs?: GatewayKv[] };
  return {
    revision: Number(r.header.revision),
    kvs: Object.fromEntries((r.kvs ?? []).map((kv) => [Buffer.from(kv.key, 'base64').toString(), `${Buffer.from(kv.value, 'base64').toString()}@${kv.create_revision}/${kv.mod_revision}/${kv.version}`])),
  };
}

test('chart backup CronJob script and restore init container, on a real cluster', { skip: SKIP_NO_HELM, timeout: 240_000 }, async () => {
  const { backup, restore } = rendered();
  const tmp = tempDir('conure-chart-backup-');
  const bin = join(tmp.dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'conurectl'), `#!/bin/sh\nexec "${process.execPath}" "${CONURECTL_JS}" "$@"\n`);
  chmodSync(join(bin, 'conurectl'), 0o755);
  const PATH = `${bin}:${dirname(process.execPath)}:/usr/bin:/bin`;
  const backups = join(tmp.dir, 'backups');
  mkdirSync(backups);
  const c = new TestCluster();
  try {
    const a = await c.add({ id: 'conure-bootstrap-0', bootstrap: true });
    await a.start();
    await a.waitReady();
    const env: Record<string, string> = { ...envOf(backup), CONURE_ENDPOINTS: a.url, BACKUP_DIR: backups };
    assert.equal(env.RETENTION, '2');

    const writer = startWriter(() => [a.url], 'bk');
    const names: string[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, 1100)); // a new second: a new name
        const r = await run(backup.command[2]!, env, PATH);
        assert.equal(r.code, 0, r.stderr);
        const m = /^backup: ok: (conure-\d{8}T\d{6}Z-r(\d+)\.db) \(revision (\d+), (\d+) keys, \d+ bytes\); kept (\d), pruned (\d)$/m.exec(r.stdout);
        assert.ok(m, r.stdout);
        assert.equal(m[2], m[3], 'the name carries the revision');
        names.push(m[1]!);
        assert.deepEqual([m[5], m[6]], i < 2 ? [String(i + 1), '0'] : ['2', '1']);
      }
    } finally {
      await writer.stop();
    }
    assert.deepEqual(readdirSync(backups).sort(), [...names.slice(1), 'last-good.json'].sort(), 'the oldest was pruned; nothing half-written is left');
    const last = JSON.parse(readFileSync(join(backups, 'last-good.json'), 'utf8')) as { file: string; revision: number };
    assert.equal(last.file, names[2]);
    const revs = names.map((n) => Number(/-r(\d+)\.db$/.exec(n)![1]));
    assert.ok(revs[0]! < revs[1]! && revs[1]! < revs[2]!, `revisions grow under the write load: ${revs}`);

    // Restore `latest` into an empty data directory, start a member on it, compare with the source at that revision.
    const target = new TestMember({ id: 'conure-bootstrap-0' }, join(tmp.dir, 'restored'), await freePort(), await freePort());
    const renv: Record<string, string> = { ...envOf(restore), BACKUP_DIR: backups, CONURE_DATA_DIR: target.dataDir, POD_NAME: 'conure-bootstrap-0', ADVERTISE_RAFT: target.raftAddr, ADVERTISE_HTTP: `127.0.0.1:${target.httpPort}` };
    assert.equal(renv.RESTORE_FILE, 'latest');
    const r1 = await run(restore.command[2]!, renv, PATH);
    assert.equal(r1.code, 0, r1.stderr);
    assert.match(r1.stderr, new RegExp(`restored ${last.file.replace(/\./g, '\\.')} into`));
    const source = (await keysAt(a.url, 'bk', last.revision)).kvs;
    await target.start();
    try {
      await target.waitReady();
      const got = await keysAt(target.url, 'bk');
      assert.ok(Object.keys(source).length > 10, `the snapshot holds the writes (${Object.keys(source).length})`);
      assert.deepEqual(got.kvs, source, 'every key of the snapshot: its value and create/mod revisions and version at that revision');
      assert.equal(got.revision, last.revision, 'the restored cluster continues at the snapshot\'s revision');
      const again = await run(restore.command[2]!, renv, PATH);
      assert.equal(again.code, 0);
      assert.match(again.stderr, /holds data; not restoring/);
    } finally {
      await target.stop();
    }
    const missing = await run(restore.command[2]!, { ...renv, RESTORE_FILE: 'conure-nope.db', CONURE_DATA_DIR: join(tmp.dir, 'empty') }, PATH);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /conure-nope\.db does not exist; the volume holds: .*last-good\.json/);
    assert.ok(!existsSync(join(tmp.dir, 'empty', 'raft.mdb')));

    // No leader: the backup fails and changes nothing.
    const before = readdirSync(backups).sort();
    await a.stop();
    const down = await run(backup.command[2]!, env, PATH);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /backup: FAIL: no member knows a leader/);
    assert.deepEqual(readdirSync(backups).sort(), before);
  } finally {
    await c.stopAll();
    tmp.cleanup();
  }
});
