import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CorruptionError, WalFailedError } from './errors.js';
import { segmentName, Wal } from './wal.js';

function tmp(): string { return mkdtempSync(join(tmpdir(), 'fluxion-wal-')); }

function collect(): { rows: Array<[number, number, string]>; fn: (l: number, t: number, p: string) => void } {
  const rows: Array<[number, number, string]> = [];
  return { rows, fn: (l, t, p) => rows.push([l, t, p]) };
}

function appendAll(wal: Wal, items: Array<[number, string]>): Promise<number[]> {
  return Promise.all(items.map(([t, p]) => new Promise<number>((resolve, reject) => {
    wal.append(t, p, (err, lsn) => (err ? reject(err) : resolve(lsn)));
  })));
}

test('records survive reopen; callbacks run in LSN order; many appends share one fsync', async (t) => {
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let fsyncs = 0;
  const wal = await Wal.open({ dir, onFsync: () => { fsyncs++; } }, 0, () => assert.fail('empty log replays nothing'));
  const order: number[] = [];
  const items: Array<[number, string]> = Array.from({ length: 500 }, (_, i) => [1 + (i % 3), `payload-${i}-é`]);
  await Promise.all(items.map(([ty, p]) => new Promise<void>((resolve) => wal.append(ty, p, (err, lsn) => {
    assert.equal(err, null);
    order.push(lsn);
    resolve();
  }))));
  assert.deepEqual(order, items.map((_, i) => i + 1));
  assert.ok(fsyncs < items.length / 10, `expected group commit, got ${fsyncs} fsyncs for ${items.length} records`);
  await wal.close();
  const c = collect();
  const again = await Wal.open({ dir }, 0, c.fn);
  assert.deepEqual(c.rows, items.map(([ty, p], i) => [i + 1, ty, p]));
  assert.equal(again.nextSequence, 501);
  await again.close();
});

test('replay skips records covered by a snapshot', async (t) => {
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const wal = await Wal.open({ dir }, 0, () => undefined);
  await appendAll(wal, [[1, 'a'], [1, 'b'], [1, 'c']]);
  await wal.close();
  const c = collect();
  (await Wal.open({ dir }, 2, c.fn)).close();
  assert.deepEqual(c.rows, [[3, 1, 'c']]);
});

test('a torn tail is truncated and new records follow the intact ones', async (t) => {
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const wal = await Wal.open({ dir }, 0, () => undefined);
  await appendAll(wal, [[1, 'one'], [1, 'two']]);
  await wal.close();
  const seg = join(dir, segmentName(1));
  const good = statSync(seg).size;
  const full = readFileSync(seg);
  // Simulate a crash mid-write: half of a copy of the last record, then zeros.
  appendFileSync(seg, Buffer.concat([full.subarray(full.length - 10), Buffer.alloc(7)]));
  const c = collect();
  const reopened = await Wal.open({ dir }, 0, c.fn);
  assert.deepEqual(c.rows.map((r) => r[2]), ['one', 'two']);
  assert.equal(statSync(seg).size, good);
  await appendAll(reopened, [[1, 'three']]);
  await reopened.close();
  const c2 = collect();
  (await Wal.open({ dir }, 0, c2.fn)).close();
  assert.deepEqual(c2.rows.map((r) => [r[0], r[2]]), [[1, 'one'], [2, 'two'], [3, 'three']]);
});

test('corruption before the newest segment is fatal, not silently dropped', async (t) => {
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const wal = await Wal.open({ dir, segmentBytesMax: 64 }, 0, () => undefined);
  for (let i = 0; i < 5; i++) await appendAll(wal, [[1, `record-number-${i}-with-some-padding`]]);
  await wal.close();
  const segs = readdirSync(dir).filter((f) => f.startsWith('wal-')).sort();
  assert.ok(segs.length >= 3, `rotation expected, got ${segs.join(',')}`);
  const first = join(dir, segs[0]!);
  const b = readFileSync(first);
  b.writeUInt8(b.readUInt8(b.length - 3) ^ 0xff, b.length - 3); // readUInt8 throws when out of range
  writeFileSync(first, b);
  await assert.rejects(Wal.open({ dir, segmentBytesMax: 64 }, 0, () => undefined), CorruptionError);
});

test('rotate + purgeThrough delete only fully covered segments', async (t) => {
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const wal = await Wal.open({ dir }, 0, () => undefined);
  await appendAll(wal, [[1, 'a'], [1, 'b']]);
  await wal.rotate();
  await appendAll(wal, [[1, 'c']]);
  assert.equal(await wal.purgeThrough(1), 0); // segment 1 holds LSN 2 too
  assert.equal(await wal.purgeThrough(2), 1);
  await wal.close();
  const c = collect();
  (await Wal.open({ dir }, 2, c.fn)).close();
  assert.deepEqual(c.rows, [[3, 1, 'c']]);
  await assert.rejects(Wal.open({ dir }, 0, () => undefined), CorruptionError); // LSN 1-2 are gone
});

test('oversized records are refused before they are queued', async (t) => {
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const wal = await Wal.open({ dir, recordBytesMax: 10 }, 0, () => undefined);
  assert.throws(() => wal.append(1, 'x'.repeat(11), () => undefined), /exceeds the WAL limit/);
  await wal.close();
  assert.throws(() => wal.append(1, 'x', () => undefined), /closed/);
});

test('a failed write poisons the log: that record and every later one fail, nothing is acknowledged', async (t) => {
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const wal = await Wal.open({ dir }, 0, () => undefined);
  await appendAll(wal, [[1, 'ok']]);
  // Pull the file out from under the log to make the next write fail (EBADF).
  await (wal as unknown as { fh: { close(): Promise<void> } }).fh.close();
  await assert.rejects(appendAll(wal, [[1, 'lost']]), /write-ahead log failed/);
  assert.ok(wal.failure);
  await assert.rejects(appendAll(wal, [[1, 'later']]), /write-ahead log failed/);
  await wal.close();
  const c = collect();
  await (await Wal.open({ dir }, 0, c.fn)).close();
  assert.deepEqual(c.rows.map((r) => r[2]), ['ok']);
});

test('a poisoned log reports its failure once, never spins, and rotate/close return promptly', async (t) => {
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const failures: Error[] = [];
  const wal = await Wal.open({ dir, onFailure: (e) => failures.push(e) }, 0, () => undefined);
  await appendAll(wal, [[1, 'ok']]);
  await (wal as unknown as { fh: { close(): Promise<void> } }).fh.close();
  await assert.rejects(appendAll(wal, [[1, 'lost']]), (e: unknown) => e instanceof WalFailedError && /EBADF/.test(e.message));
  // A snapshot asks the log to rotate: on a poisoned log that must not wait (or loop) forever.
  const rotated = await Promise.race([wal.rotate().then(() => 'rotated'), new Promise((r) => setTimeout(() => r('hung'), 2000))]);
  assert.equal(rotated, 'rotated');
  const pending = wal.rotate(); // queued behind nothing: resolves as well
  await pending;
  // The writer loop is idle: it does not keep rescheduling itself.
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  assert.equal((wal as unknown as { running: unknown }).running, undefined, 'writer loop still running on a poisoned log');
  await assert.rejects(appendAll(wal, [[1, 'later']]), /write-ahead log failed/);
  assert.equal(failures.length, 1);
  const closed = await Promise.race([wal.close().then(() => 'closed'), new Promise((r) => setTimeout(() => r('hung'), 2000))]);
  assert.equal(closed, 'closed');
});

test('WalFailedError names the errno of its cause (ENOSPC)', () => {
  const e = new WalFailedError(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
  assert.match(e.message, /^write-ahead log failed \(ENOSPC: no space left on device\); writes are refused/);
  assert.equal(e.causeCode, 'ENOSPC');
});
