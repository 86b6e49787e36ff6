/**
 * The local driver with real fluxiond processes on 127.0.0.1: create → /health → write and read
 * over WebSocket → re-adoption by a new driver (same pid) → resize 512Mi → 1Gi keeps data →
 * backup → remove → restore → the backed-up data is back. Prints the figures it measures.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deriveFluxionSpec } from '../../src/platform/engines/index.js';
import { LocalDriver, MemoryPortAllocator, type LocalInstanceFile } from '../../src/platform/drivers/local/index.js';
import type { BackupRecord } from '../../src/platform/types.js';
import { Client } from './fluxion-harness.js';
import { killAllUnder, processesUnder, record } from '../support/local-driver.js';

const dataDir = mkdtempSync(join(tmpdir(), 'local-driver-fx-'));
const ports = new MemoryPortAllocator();
const drivers: LocalDriver[] = [];
const newDriver = () => { const d = new LocalDriver({ dataDir, ports, stopGraceMs: 10_000 }); drivers.push(d); return d; };
const KEY = 'fluxion-test-key-0123456789';
const secret = { apiKey: KEY };
const figures: Record<string, number> = {};

after(async () => {
  for (const d of drivers) await d.close();
  killAllUnder(dataDir);
  rmSync(dataDir, { recursive: true, force: true });
  console.log(`# figures ${JSON.stringify(figures)}`);
});

const instanceFile = (id: string) => JSON.parse(readFileSync(join(dataDir, 'instances', id, 'instance.json'), 'utf8')) as LocalInstanceFile;
const pidOf = (id: string) => instanceFile(id).members[0]!.pid!;
const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');

async function connect(endpoints: Record<string, string>): Promise<Client> {
  return Client.connect(`${endpoints.ws}/?api-key=${encodeURIComponent(KEY)}`);
}

test('Fluxion lifecycle on real processes', async () => {
  const driver = newDriver();
  const db = record('fx1', deriveFluxionSpec('512Mi', '1.0'));

  // create → Ready
  let t0 = performance.now();
  const endpoints = await driver.apply(db, secret);
  await driver.waitReady(db, 15_000);
  figures.applyToReadyMs = Math.round(performance.now() - t0);
  assert.match(endpoints.ws!, /^ws:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(endpoints.http, endpoints.ws!.replace('ws:', 'http:'));
  const health = await fetch(`${endpoints.http}/health`);
  assert.equal(health.status, 200);
  const pid1 = pidOf(db.id);
  assert.ok(cmdline(pid1).includes('--max-memory') && cmdline(pid1).includes('512Mi'));
  assert.ok(!cmdline(pid1).join(' ').includes(KEY), 'the key is not on the command line');
  assert.ok(!readFileSync(join(dataDir, 'instances', db.id, 'instance.json'), 'utf8').includes(KEY), 'nor in instance.json');

  // write and read over WebSocket
  let c = await connect(endpoints);
  assert.deepEqual(Object.keys(await c.request('ins', [{ col: 'm', doc: 'd1', ts: 1, data: '{"v":1}' }])), ['id']);
  await c.request('sval', { col: 'cfg', key: 'k', value: 'before-backup' });
  assert.equal(((await c.request('qdoc', { col: 'm', doc: 'd1', to: Number.MAX_SAFE_INTEGER })).records as unknown[]).length, 1);
  await c.close();

  // repeat apply: no restart; observe
  assert.deepEqual(await driver.apply(db, secret), endpoints);
  assert.equal(pidOf(db.id), pid1);
  const obs = await driver.observe(db);
  assert.deepEqual([obs.exists, obs.running, obs.expected, obs.members[0]!.running], [true, 1, 1, true]);
  assert.deepEqual(await driver.list(), ['fx1']);

  // a new driver on the same dataDir re-adopts the running process, without restarting it
  await driver.close();
  await assert.rejects(driver.observe(db), (e: Error & { code?: string }) => e.code === 'closed');
  const driver2 = newDriver();
  assert.equal((await driver2.observe(db)).running, 1);
  assert.deepEqual(await driver2.apply(db, secret), endpoints);
  await driver2.waitReady(db, 5000);
  assert.equal(pidOf(db.id), pid1, 'same pid: re-adopted, not restarted');

  // resize 512Mi → 1Gi: restart with the new --max-memory, data kept
  const resized = { ...db, spec: deriveFluxionSpec('1Gi', '1.0'), generation: 2 };
  t0 = performance.now();
  await driver2.apply(resized, secret);
  await driver2.waitReady(resized, 15_000);
  figures.resizeToReadyMs = Math.round(performance.now() - t0);
  const pid2 = pidOf(db.id);
  assert.notEqual(pid2, pid1);
  assert.ok(cmdline(pid2).includes('1Gi'));
  assert.equal(existsSync(`/proc/${pid1}`), false, 'the old process is gone');
  c = await connect(endpoints);
  assert.equal((await c.request('gval', { col: 'cfg', key: 'k' })).value, 'before-backup');
  await c.close();

  // backup (stop–copy–start), then a write that the backup does not hold
  t0 = performance.now();
  const b = await driver2.backup(resized, secret, 'b1');
  figures.backupMs = Math.round(performance.now() - t0);
  assert.ok(b.sizeBytes > 0);
  assert.equal(b.location, join(dataDir, 'backups', 'fx1', 'b1'));
  await driver2.waitReady(resized, 15_000);
  figures.backupUntilReadyAgainMs = Math.round(performance.now() - t0); // the downtime's upper bound
  const pidAfterBackup = pidOf(db.id);
  assert.deepEqual(await driver2.backup(resized, secret, 'b1'), b, 'a repeated backup returns the same result');
  assert.equal(pidOf(db.id), pidAfterBackup, 'and does not stop the instance again');
  c = await connect(endpoints);
  await c.request('sval', { col: 'cfg', key: 'k', value: 'after-backup' });
  await c.close();

  // remove (Delete keeps the backup); twice is fine
  const pid3 = pidOf(db.id);
  await driver2.remove(resized, 'Delete');
  await driver2.remove(resized, 'Delete');
  assert.equal(existsSync(`/proc/${pid3}`) && readFileSync(`/proc/${pid3}/cmdline`, 'utf8').includes(dataDir), false);
  assert.equal(existsSync(join(dataDir, 'instances', 'fx1')), false);
  assert.ok(existsSync(join(b.location, 'backup.json')));
  assert.deepEqual(await driver2.list(), []);
  assert.equal((await driver2.observe(resized)).exists, false);

  // restore → the backed-up data, not the later write
  const backupRecord: BackupRecord = { id: 'b1', databaseId: 'fx1', tenant: 't1', engine: 'fluxion', location: b.location, sizeBytes: b.sizeBytes, createdAt: new Date().toISOString() };
  t0 = performance.now();
  const ep2 = await driver2.restore(resized, secret, backupRecord);
  await driver2.waitReady(resized, 15_000);
  figures.restoreToReadyMs = Math.round(performance.now() - t0);
  c = await connect(ep2);
  assert.equal((await c.request('gval', { col: 'cfg', key: 'k' })).value, 'before-backup');
  assert.equal(((await c.request('qdoc', { col: 'm', doc: 'd1', to: Number.MAX_SAFE_INTEGER })).records as unknown[]).length, 1);
  await c.close();

  // halt keeps data; apply resumes
  await driver2.halt(resized);
  await driver2.halt(resized);
  assert.deepEqual([(await driver2.observe(resized)).running, (await driver2.observe(resized)).expected], [0, 0]);
  await assert.rejects(driver2.waitReady(resized, 1000), /halted/);
  await driver2.apply(resized, secret);
  await driver2.waitReady(resized, 15_000);
  c = await connect(ep2);
  assert.equal((await c.request('gval', { col: 'cfg', key: 'k' })).value, 'before-backup');
  await c.close();

  // WipeOut removes the backups too
  await driver2.remove(resized, 'WipeOut');
  assert.equal(existsSync(join(dataDir, 'backups', 'fx1')), false);
  assert.deepEqual(processesUnder(join(dataDir, 'instances', 'fx1')), []);
});

test('a recorded pid reused by an unrelated process is never signalled', async () => {
  const driver = newDriver();
  const db = record('fx2', deriveFluxionSpec('256Mi', '1.0'));
  await driver.apply(db, secret);
  await driver.waitReady(db, 15_000);
  const real = pidOf(db.id);
  await driver.halt(db);
  // An unrelated process now holds the recorded pid (we fake the reuse by recording its pid).
  const stranger = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    const file = join(dataDir, 'instances', db.id, 'instance.json');
    const inst = JSON.parse(readFileSync(file, 'utf8')) as LocalInstanceFile;
    inst.members[0]!.pid = stranger.pid!;
    inst.halted = false;
    writeFileSync(file, JSON.stringify(inst));
    assert.equal((await driver.observe(db)).running, 0, 'not ours: not counted as running');
    await driver.halt(db);
    await driver.remove(db, 'WipeOut');
    assert.equal(stranger.exitCode, null);
    assert.equal(stranger.signalCode, null, 'the stranger was not signalled');
    assert.ok(existsSync(`/proc/${stranger.pid}`));
    assert.notEqual(real, stranger.pid);
  } finally {
    stranger.kill('SIGKILL');
  }
});

test('refusals: a missing key, a bad id, a backup of the other engine', async () => {
  const driver = newDriver();
  const db = record('fx3', deriveFluxionSpec('256Mi', '1.0'));
  await assert.rejects(driver.apply(db, {}), /apiKey is required/);
  await assert.rejects(driver.apply(record('../evil', db.spec), secret), /must be 1 to 128 letters/);
  await assert.rejects(driver.restore(db, secret, { id: 'x', databaseId: 'y', tenant: 't1', engine: 'conuredb', location: '/nowhere', sizeBytes: 0, createdAt: '' }), /is of a conuredb database/);
  await assert.rejects(driver.waitReady(db, 100), (e: Error & { code?: string }) => e.code === 'not_found');
  await driver.remove(db, 'WipeOut');
});

test('an instance outlives the process that started it; a new driver with a fresh allocator adopts it, same pid and port', async () => {
  // A separate "platform" process creates the instance and exits.
  const driverModule = pathToFileURL(join(import.meta.dirname, '..', '..', 'src', 'platform', 'drivers', 'local', 'index.js')).href;
  const enginesModule = pathToFileURL(join(import.meta.dirname, '..', '..', 'src', 'platform', 'engines', 'index.js')).href;
  const script = `
    const { LocalDriver, MemoryPortAllocator } = await import(${JSON.stringify(driverModule)});
    const { deriveFluxionSpec } = await import(${JSON.stringify(enginesModule)});
    const d = new LocalDriver({ dataDir: ${JSON.stringify(dataDir)}, ports: new MemoryPortAllocator() });
    const db = ${JSON.stringify(record('fx5', deriveFluxionSpec('256Mi', '1.0')))};
    const ep = await d.apply(db, { apiKey: ${JSON.stringify(KEY)} });
    await d.waitReady(db, 15000);
    await d.close();
    process.stdout.write(JSON.stringify(ep));`;
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
  });
  const endpoints = JSON.parse(out) as Record<string, string>;
  const pid = pidOf('fx5');
  assert.ok(existsSync(`/proc/${pid}`), 'still running after its parent exited');
  assert.equal((await fetch(`${endpoints.http}/health`)).status, 200);

  const driver = new LocalDriver({ dataDir, ports: new MemoryPortAllocator(), stopGraceMs: 10_000 });
  drivers.push(driver);
  const db = record('fx5', deriveFluxionSpec('256Mi', '1.0'));
  assert.deepEqual(await driver.apply(db, secret), endpoints, 'same port');
  assert.equal(pidOf('fx5'), pid, 'same pid');

  // A crash between spawn and the pid write: the process is found by its data dir, not doubled.
  const file = join(dataDir, 'instances', 'fx5', 'instance.json');
  const inst = JSON.parse(readFileSync(file, 'utf8')) as LocalInstanceFile;
  delete inst.members[0]!.pid;
  writeFileSync(file, JSON.stringify(inst));
  assert.equal((await driver.observe(db)).running, 1);
  await driver.apply(db, secret);
  assert.equal(pidOf('fx5'), pid);
  assert.equal(processesUnder(join(dataDir, 'instances', 'fx5')).length, 1);

  // A rotated key restarts it (rotate-key is apply with the new secret).
  await driver.apply(db, { apiKey: `${KEY}-rotated` });
  await driver.waitReady(db, 15_000);
  assert.notEqual(pidOf('fx5'), pid);
  await assert.rejects(Client.connect(`${endpoints.ws}/?api-key=${encodeURIComponent(KEY)}`), /HTTP 401|HTTP 403/);
  (await Client.connect(`${endpoints.ws}/?api-key=${encodeURIComponent(`${KEY}-rotated`)}`)).ws.terminate();
  await driver.remove(db, 'WipeOut');
});
