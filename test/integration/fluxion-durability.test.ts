/**
 * Durability and operations of a real `fluxiond`: kill -9 right after the last acknowledgement,
 * restart, nothing acknowledged is lost; snapshots; torn WAL tails; graceful SIGTERM; flags and
 * exit codes; the memory limit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, runDaemon, startDaemon } from './fluxion-harness.js';

function dataDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'fluxion-it-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function count(c: Client, col: string, docs: number): Promise<number> {
  let n = 0;
  for (let d = 0; d < docs; d++) n += ((await c.request('qdoc', { col, doc: `doc-${d}`, to: Number.MAX_SAFE_INTEGER })).records as unknown[]).length;
  return n;
}

test('100,000 records inserted in batches survive kill -9 right after the last ack', async (t) => {
  const dir = dataDir(t);
  const d = await startDaemon(['--secret-key', 'k', '--data', dir]);
  const c = await Client.connect(d.url('api-key=k'));
  await c.request('keys', { action: 'add', key: 'reader', scope: 'readonly' });
  await c.request('sval', { col: 'meta', key: 'k', value: 'v' });
  const total = 100_000;
  const batch = 1000;
  // Pipeline several batches at once so group commit is exercised; every one must be acknowledged.
  const inFlight: Array<Promise<unknown>> = [];
  for (let i = 0; i < total; i += batch) {
    const recs = Array.from({ length: batch }, (_, j) => ({ col: 'load', doc: `doc-${(i + j) % 50}`, ts: i + j + 1, data: `{"v":${i + j}}` }));
    inFlight.push(c.request('ins', recs).then((r) => assert.deepEqual(Object.keys(r), ['id'])));
    if (inFlight.length >= 8) await inFlight.shift();
  }
  await Promise.all(inFlight);
  assert.equal(await d.kill('SIGKILL'), 'SIGKILL');

  const d2 = await startDaemon(['--secret-key', 'k', '--data', dir]);
  t.after(() => d2.kill('SIGKILL'));
  const c2 = await Client.connect(d2.url('api-key=reader'));
  assert.equal(await count(c2, 'load', 50), total);
  const latest = (await c2.request('qry', { col: 'load', ts: Number.MAX_SAFE_INTEGER, doc: 'doc-49' })).records as Record<string, { ts: number; data: string }>;
  assert.deepEqual(latest, { 'doc-49': { ts: total, data: `{"v":${total - 1}}` } });
  assert.equal((await c2.request('gval', { col: 'meta', key: 'k' })).value, 'v');
  assert.deepEqual((await c2.request('sval', { col: 'meta', key: 'k', value: 'w' })).error, 'permission denied'); // the key and its scope persisted
});

test('deletes, key/values and key changes are durable; snapshots bound the WAL and restart from them', async (t) => {
  const dir = dataDir(t);
  const args = ['--secret-key', 'k', '--data', dir, '--snapshot-wal-bytes', '64Ki'];
  const d = await startDaemon(args);
  const c = await Client.connect(d.url('api-key=k'));
  for (let i = 0; i < 40; i++) {
    await c.request('ins', Array.from({ length: 100 }, (_, j) => ({ col: 'snap', doc: `doc-${j % 10}`, ts: i * 100 + j + 1, data: 'y'.repeat(40) })));
  }
  await c.request('drrng', { col: 'snap', doc: 'doc-0', fromTs: 1, toTs: 4000 });
  await c.request('ddoc', { doc: 'doc-1', col: 'snap' });
  await c.request('sval', { col: 'cfg', key: 'a', value: '1' });
  await c.request('sval', { col: 'cfg', key: 'b', value: '2' });
  await c.request('rval', { col: 'cfg', key: 'a' });
  await c.request('keys', { action: 'add', key: 'gone', scope: 'readonly' });
  await c.request('keys', { action: 'remove', key: 'gone' });
  await c.request('keys', { action: 'add', key: 'writer', scope: 'read_write' });
  const expected = await count(c, 'snap', 10);
  assert.equal(expected, 3200);
  assert.ok(d.logs.some((l) => l.includes('"msg":"snapshot_written"')), 'a snapshot was written');
  await d.kill('SIGKILL');
  const files = readdirSync(dir);
  assert.ok(files.some((f) => f.endsWith('.snap')));
  assert.ok(files.filter((f) => f.startsWith('wal-')).length <= 3, `WAL bounded: ${files.join(' ')}`);

  const d2 = await startDaemon(args);
  t.after(() => d2.kill('SIGKILL'));
  const recovered = JSON.parse(d2.logs.find((l) => l.includes('"msg":"recovered"'))!) as { snapshotRecords: number };
  assert.ok(recovered.snapshotRecords > 0);
  const c2 = await Client.connect(d2.url('api-key=writer'));
  assert.equal(await count(c2, 'snap', 10), expected);
  assert.deepEqual((await c2.request('gvals', { col: 'cfg' })).values, { b: '2' });
  assert.deepEqual(Object.keys(await c2.request('ins', [{ col: 'x', doc: 'd', ts: 1, data: '' }])), ['id']);
  await assert.rejects(Client.connect(d2.url('api-key=gone')), (e: { status?: number }) => e.status === 401);
});

test('a torn WAL tail is truncated at restart, never fatal', async (t) => {
  const dir = dataDir(t);
  const d = await startDaemon(['--secret-key', 'k', '--data', dir]);
  const c = await Client.connect(d.url('api-key=k'));
  await c.request('ins', [{ col: 'c', doc: 'doc-0', ts: 1, data: 'a' }]);
  await d.kill('SIGKILL');
  const wal = readdirSync(dir).filter((f) => f.startsWith('wal-')).sort().pop()!;
  appendFileSync(join(dir, wal), Buffer.from([0x30, 0, 0, 0, 1, 2, 3, 4, 5])); // a half-written record
  const d2 = await startDaemon(['--secret-key', 'k', '--data', dir]);
  t.after(() => d2.kill('SIGKILL'));
  const c2 = await Client.connect(d2.url('api-key=k'));
  assert.equal(await count(c2, 'c', 1), 1);
  await c2.request('ins', [{ col: 'c', doc: 'doc-0', ts: 2, data: 'b' }]);
  assert.equal(await count(c2, 'c', 1), 2);
});

test('SIGTERM shuts down gracefully: exit 0, data flushed, lock released', async (t) => {
  const dir = dataDir(t);
  const d = await startDaemon(['--secret-key', 'k', '--data', dir]);
  const c = await Client.connect(d.url('api-key=k'));
  const pending = c.request('ins', Array.from({ length: 5000 }, (_, i) => ({ col: 'g', doc: 'doc-0', ts: i + 1, data: 'z' })));
  await pending;
  assert.equal(await d.kill('SIGTERM'), 0);
  assert.equal(await c.closed(), 1001);
  assert.ok(d.logs.some((l) => l.includes('"msg":"closed"')));
  assert.ok(!readdirSync(dir).includes('LOCK'));
  const d2 = await startDaemon(['--secret-key', 'k', '--data', dir]);
  t.after(() => d2.kill('SIGKILL'));
  assert.equal(await count(await Client.connect(d2.url('api-key=k')), 'g', 1), 5000);
  // A second server on the same directory is refused while the first runs.
  const second = await runDaemon(['--secret-key', 'k', '--data', dir, '--port', '0', '--host', '127.0.0.1']);
  assert.equal(second.code, 1);
  assert.match(second.stderr, /in use by process/);
});

test('flags: secret key from env or file, exit codes, version, memory-only notice, memory limit', async (t) => {
  const dir = dataDir(t);
  const noKey = await runDaemon([], { FLUXION_SECRET_KEY: '' });
  assert.equal(noKey.code, 2);
  assert.match(noKey.stderr, /secret-key is not set/);
  const badPort = await runDaemon(['-s', 'k', '--port', 'abc']);
  assert.equal(badPort.code, 2);
  assert.match(badPort.stderr, /invalid numeric option/);
  const version = await runDaemon(['--version']);
  assert.equal(version.code, 0);
  assert.equal(version.stdout.trim(), 'FluxionDB 1.0');
  const keyFile = join(dir, 'secret');
  writeFileSync(keyFile, 'from-file\n');
  const d = await startDaemon(['--secret-key-file', keyFile, '--max-memory', '1Mi']);
  t.after(() => d.kill('SIGKILL'));
  assert.ok(d.logs.some((l) => l.includes('memory-only mode')));
  const c = await Client.connect(d.url('api-key=from-file'));
  const refused = await c.request('ins', [{ col: 'c', doc: 'd', ts: 1, data: 'x' }]);
  assert.match(String(refused.error), /^memory limit reached \(.* used of 1\.00 MiB\); insert refused/);
  assert.deepEqual((await c.request('qry', { col: 'c', ts: 5 })).records, {});
  const e = await startDaemon([], { FLUXION_SECRET_KEY: 'env-key', FLUXION_PORT: '0' });
  t.after(() => e.kill('SIGKILL'));
  await (await Client.connect(e.url('api-key=env-key'))).close();
});
