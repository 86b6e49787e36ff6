import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CorruptionError } from './errors.js';
import { listSnapshots, readSnapshot, writeSnapshot } from './snapshot.js';
import { FluxionStore } from './store.js';

function load(path: string): { store: FluxionStore; lsn: number; records: number } {
  const store = new FluxionStore();
  const r = readSnapshot(path, {
    apiKey: (k, s) => store.putApiKey(k, s),
    collection: () => undefined,
    value: (c, k, v) => store.setValue(c, k, v),
    run: (c, d, n, tsAt, lenAt, src, start) => store.restoreRun(c, d, n, tsAt, lenAt, src, start),
  });
  store.restoreDone();
  return { store, ...r };
}

function contents(s: FluxionStore): unknown {
  return {
    keys: s.listApiKeys().sort(),
    cols: s.collectionNames().sort().map((c) => ({
      c,
      kv: Object.entries(s.getAllValues(c)).sort(),
      latest: Object.entries(s.latest({ col: c, ts: Number.MAX_SAFE_INTEGER, doc: '', from: 0, where: '', filter: '' })).sort(),
    })),
    stats: s.stats(),
  };
}

test('round trip, and the picture is the state at pin time even if the store changes meanwhile', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fluxion-snap-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = new FluxionStore();
  store.putApiKey('reader', 'readonly');
  store.setValue('cfg', 'k', 'v\u00e9\u{1F600}');
  for (let d = 0; d < 50; d++) {
    const recs = Array.from({ length: 3000 }, (_, i) => ({ col: `c${d % 3}`, doc: `d${d}`, ts: i * 2, data: `v${d}-${i}` }));
    store.insert(recs);
  }
  const expected = contents(store);
  const picture = store.pin();
  // Mutate while the snapshot is written: overwrite, insert in the middle, delete, drop.
  const writing = writeSnapshot(dir, 42, picture, 0);
  store.insert([{ col: 'c0', doc: 'd0', ts: 2, data: 'changed' }, { col: 'c0', doc: 'd0', ts: 3, data: 'new' }]);
  store.deleteRange({ col: 'c1', doc: 'd1', fromTs: 0, toTs: 1000 });
  store.deleteCollection('c2');
  store.removeValue('cfg', 'k');
  const res = await writing;
  store.release(picture);
  assert.equal(res.records, 150_000);
  assert.deepEqual(listSnapshots(dir).map((s) => s.lsn), [42]);
  const loaded = load(res.path);
  assert.equal(loaded.lsn, 42);
  assert.deepEqual(contents(loaded.store), expected);
});

test('a damaged or truncated snapshot is rejected', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fluxion-snap-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = new FluxionStore();
  store.insert(Array.from({ length: 1000 }, (_, i) => ({ col: 'c', doc: 'd', ts: i, data: 'x'.repeat(20) })));
  const { path } = await writeSnapshot(dir, 7, store.pin(), 0);
  const good = readFileSync(path);
  const flipped = Buffer.from(good);
  const middle = Math.floor(good.length / 2);
  flipped.writeUInt8(flipped.readUInt8(middle) ^ 0x01, middle); // readUInt8 throws when out of range
  writeFileSync(path, flipped);
  assert.throws(() => load(path), CorruptionError);
  writeFileSync(path, good.subarray(0, good.length - 5));
  assert.throws(() => load(path), CorruptionError);
  writeFileSync(path, good);
  assert.equal(load(path).records, 1000);
});

test('records larger than the write chunk round-trip', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fluxion-snap-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = new FluxionStore();
  const big = 'b'.repeat(9 * 1024 * 1024);
  store.insert([{ col: 'c', doc: 'd', ts: 1, data: 'small' }, { col: 'c', doc: 'd', ts: 2, data: big }, { col: 'c', doc: 'e', ts: 1, data: 'x' }]);
  const picture = store.pin();
  const { path } = await writeSnapshot(dir, 1, picture, 0);
  store.release(picture);
  const loaded = load(path).store;
  assert.deepEqual(loaded.history({ col: 'c', doc: 'd', from: 0, to: 5, limit: 0, reverse: false, where: '', filter: '' }).map((r) => r.data.length), [5, big.length]);
  assert.equal(loaded.stats().records, 3);
});
