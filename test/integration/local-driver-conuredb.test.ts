/**
 * The local driver with real conured processes on 127.0.0.1: 2 voters + auto arbiter → Ready →
 * writes through the seed API → scale to 3 voters (the arbiter leaves after the new voter is
 * promoted) → scale to 1 (members leave raft first, then their processes and data go) → writes
 * kept → backup → restore. Prints the figures it measures.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyConureDbPatch, validateConureDbCreate } from '../../src/platform/engines/index.js';
import { LocalDriver, MemoryPortAllocator, type LocalInstanceFile } from '../../src/platform/drivers/local/index.js';
import type { BackupRecord, DatabaseRecord } from '../../src/platform/types.js';
import { killAllUnder, processesUnder, record } from '../support/local-driver.js';

const dataDir = mkdtempSync(join(tmpdir(), 'local-driver-cd-'));
const ports = new MemoryPortAllocator();
const driver = new LocalDriver({ dataDir, ports, stopGraceMs: 15_000 });
const figures: Record<string, number> = {};

after(async () => {
  await driver.close();
  killAllUnder(dataDir);
  rmSync(dataDir, { recursive: true, force: true });
  console.log(`# figures ${JSON.stringify(figures)}`);
});

const instanceFile = (id: string) => JSON.parse(readFileSync(join(dataDir, 'instances', id, 'instance.json'), 'utf8')) as LocalInstanceFile;

/** PUT /kv through whichever member leads (followers answer 409 with the leader's address). */
async function put(db: Record<string, string>, key: string, value: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  let last = '';
  while (Date.now() < deadline) {
    for (const url of db.http!.split(',')) {
      try {
        const res = await fetch(`${url}/kv?key=${encodeURIComponent(key)}&value=${encodeURIComponent(value)}`, { method: 'PUT', signal: AbortSignal.timeout(5000) });
        const body = await res.text();
        if (res.ok) return;
        last = `${url}: ${res.status} ${body}`;
      } catch (err) { last = `${url}: ${(err as Error).message}`; }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`PUT ${key} failed: ${last}`);
}

async function get(url: string, key: string): Promise<string> {
  const res = await fetch(`${url}/kv?key=${encodeURIComponent(key)}&consistency=serializable`, { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200);
  return res.text();
}

async function raftIds(url: string): Promise<string[]> {
  const cfg = await (await fetch(`${url}/raft/config`)).json() as { servers: Array<{ id: string; suffrage: string }> };
  return cfg.servers.map((s) => `${s.id}:${s.suffrage}`).sort();
}

test('ConureDB: create 2 voters + auto arbiter, write, scale to 3 and to 1, writes kept, backup and restore', async () => {
  const spec = validateConureDbCreate({ voters: 2, arbiter: 'auto', storage: '1Gi' });
  let db: DatabaseRecord = record('cd1', spec);

  let t0 = performance.now();
  let endpoints = await driver.apply(db, {});
  await driver.waitReady(db, 60_000);
  figures.createToReadyMs = Math.round(performance.now() - t0);
  assert.equal(endpoints.http!.split(',').length, 2);
  assert.match(endpoints.etcd!, /^127\.0\.0\.1:\d+,127\.0\.0\.1:\d+$/);
  const boot = endpoints.http!.split(',')[0]!;
  assert.deepEqual(await raftIds(boot), ['conure-0:voter', 'conure-arbiter-0:arbiter', 'conure-bootstrap-0:voter']);
  const obs = await driver.observe(db);
  assert.deepEqual([obs.running, obs.expected], [3, 3]);
  assert.deepEqual(obs.members.map((m) => `${m.id}:${m.role}`), ['conure-bootstrap-0:voter', 'conure-0:voter', 'conure-arbiter-0:arbiter']);
  const pids = instanceFile(db.id).members.map((m) => m.pid);
  assert.deepEqual(await driver.apply(db, {}), endpoints, 'a repeated apply changes nothing');
  assert.deepEqual(instanceFile(db.id).members.map((m) => m.pid), pids);

  await put(endpoints, 'a', '1');

  // a new driver with a fresh allocator re-adopts every member: same pids, same ports
  const again = new LocalDriver({ dataDir, ports: new MemoryPortAllocator(), stopGraceMs: 15_000 });
  assert.deepEqual(await again.apply(db, {}), endpoints);
  await again.waitReady(db, 10_000);
  assert.deepEqual(instanceFile(db.id).members.map((m) => m.pid), pids);
  await again.close();

  // scale to 3 voters: auto mode drops the arbiter, only once the new voter is a voter
  db = { ...db, spec: applyConureDbPatch(spec, { voters: 3 }), generation: 2 };
  t0 = performance.now();
  endpoints = await driver.apply(db, {});
  await driver.waitReady(db, 60_000);
  figures.scaleTo3ReadyMs = Math.round(performance.now() - t0);
  assert.deepEqual(await raftIds(boot), ['conure-0:voter', 'conure-1:voter', 'conure-bootstrap-0:voter']);
  assert.equal(endpoints.http!.split(',').length, 3);
  assert.equal(existsSync(join(dataDir, 'instances', 'cd1', 'conure-arbiter-0')), false, 'the arbiter data is deleted');
  assert.deepEqual(processesUnder(join(dataDir, 'instances', 'cd1', 'conure-arbiter-0')), []);
  await put(endpoints, 'b', '2');
  for (const url of endpoints.http!.split(',')) {
    const deadline = Date.now() + 10_000;
    while ((await get(url, 'b')) !== '2' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await get(url, 'a'), '1', url);
    assert.equal(await get(url, 'b'), '2', url);
  }

  // scale to 1: conure-1 then conure-0 leave raft, then stop; the data stays on the bootstrap
  db = { ...db, spec: applyConureDbPatch(db.spec as typeof spec, { voters: 1 }), generation: 3 };
  t0 = performance.now();
  endpoints = await driver.apply(db, {});
  await driver.waitReady(db, 60_000);
  figures.scaleTo1ReadyMs = Math.round(performance.now() - t0);
  assert.deepEqual(await raftIds(boot), ['conure-bootstrap-0:voter']);
  assert.equal(endpoints.http, boot);
  assert.deepEqual(instanceFile(db.id).members.map((m) => m.id), ['conure-bootstrap-0']);
  assert.deepEqual(processesUnder(join(dataDir, 'instances', 'cd1', 'conure-0')), []);
  assert.equal(await get(boot, 'a'), '1');
  assert.equal(await get(boot, 'b'), '2');
  await put(endpoints, 'c', '3');

  // backup, a later write, restore: the backup's data, not the later write
  t0 = performance.now();
  const b = await driver.backup(db, {}, 'snap1');
  figures.backupMs = Math.round(performance.now() - t0);
  assert.ok(b.sizeBytes > 0 && existsSync(join(b.location, 'snapshot.db')));
  await put(endpoints, 'd', '4');
  const backup: BackupRecord = { id: 'snap1', databaseId: 'cd1', tenant: 't1', engine: 'conuredb', location: b.location, sizeBytes: b.sizeBytes, createdAt: new Date().toISOString() };
  db = { ...db, spec: applyConureDbPatch(db.spec as typeof spec, { voters: 2 }), generation: 4 }; // restore into a 2+arbiter cluster
  t0 = performance.now();
  endpoints = await driver.restore(db, {}, backup);
  await driver.waitReady(db, 60_000);
  figures.restoreToReadyMs = Math.round(performance.now() - t0);
  for (const url of endpoints.http!.split(',')) {
    const deadline = Date.now() + 10_000;
    while ((await get(url, 'c')) !== '3' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual([await get(url, 'a'), await get(url, 'b'), await get(url, 'c'), await get(url, 'd')], ['1', '2', '3', ''], url);
  }

  // halt stops every member and keeps the data; apply resumes
  t0 = performance.now();
  await driver.halt(db);
  figures.haltMs = Math.round(performance.now() - t0);
  assert.deepEqual([(await driver.observe(db)).running, (await driver.observe(db)).expected], [0, 0]);
  assert.deepEqual(processesUnder(dataDir), []);
  t0 = performance.now();
  endpoints = await driver.apply(db, {});
  await driver.waitReady(db, 60_000);
  figures.resumeToReadyMs = Math.round(performance.now() - t0);
  assert.equal(await get(endpoints.http!.split(',')[0]!, 'c'), '3');

  await driver.remove(db, 'WipeOut');
  assert.deepEqual(processesUnder(dataDir), []);
  assert.equal(existsSync(join(dataDir, 'backups', 'cd1')), false);
});
