import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { MemoryPortAllocator } from './memory-ports.js';

test('an owner gets its own ports back; owners never share; release frees', async () => {
  const ports = new MemoryPortAllocator({ low: 21000, high: 21999, start: 21000 });
  const a = await ports.allocate('a', 2);
  assert.equal(a.length, 2);
  assert.deepEqual(await ports.allocate('a', 2), a);
  assert.deepEqual(await ports.allocate('a', 1), [a[0]]);
  const a3 = await ports.allocate('a', 3);
  assert.deepEqual(a3.slice(0, 2), a);
  const [b, c] = await Promise.all([ports.allocate('b', 5), ports.allocate('c', 5)]);
  const all = [...a3, ...b, ...c];
  assert.equal(new Set(all).size, all.length, 'no port handed out twice, even concurrently');
  await ports.release('a');
  assert.deepEqual(ports.held('a'), []);
  await assert.rejects(ports.allocate('x', -1), /port count/);
});

test('a port something already listens on is skipped', async () => {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(21500, '127.0.0.1', () => r()));
  try {
    const ports = new MemoryPortAllocator({ low: 21500, high: 21502, start: 21500 });
    assert.deepEqual(await ports.allocate('a', 2), [21501, 21502]);
    await assert.rejects(ports.allocate('b', 1), (e: Error & { code?: string }) => e.code === 'unavailable');
  } finally {
    srv.close();
  }
});

test('adopt: a fresh allocator takes back the ports a re-adopted process listens on', async () => {
  const ports = new MemoryPortAllocator({ low: 22000, high: 22099, start: 22000 });
  assert.equal(await ports.adopt('a', [22050, 22051]), true);
  assert.deepEqual(await ports.allocate('a', 2), [22050, 22051]);
  assert.equal(await ports.adopt('b', [22051]), false, 'held by another owner');
  assert.equal(await ports.adopt('a', [22060, 22061]), false, 'an owner keeps the ports it has');
  assert.equal(await ports.adopt('a', [22050, 22051]), true, 'idempotent');
  const b = await ports.allocate('b', 3);
  assert.ok(b.every((p) => p !== 22050 && p !== 22051));
});
