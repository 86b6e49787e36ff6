/**
 * The `etcd3` npm client (unmodified) against ConureDB's etcd API: the presence-registry
 * scenario from issue 5 (users × devices under leases, a gateway watching the prefix, a device
 * whose keep-alives stop disappears and the watcher sees the delete), plus the client's
 * Election and STM helpers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3, type Lease } from 'etcd3';
import { startTestEtcdServer, type TestEtcdServer } from '../../src/api/etcd/test-server.js';

const USERS = 1000;
const DEVICES = 2;
const TTL_SECONDS = 4;

let server: TestEtcdServer;
let client: Etcd3;

before(async () => {
  server = await startTestEtcdServer({ minLeaseTtlSeconds: 1 });
  client = new Etcd3({ hosts: server.endpoint });
});

after(async () => {
  client?.close();
  await server?.close();
});

/** Polls `check` every 50 ms until it holds or `ms` pass; returns whether it held. */
async function eventually(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('presence registry: leased device keys, a prefix watcher, an expiring device', { timeout: 120_000 }, async () => {
  const leases = new Map<string, Lease>();
  const seen: { type: string; key: string }[] = [];
  const watcher = await client.watch().prefix('presence/').create();
  watcher.on('put', (kv) => seen.push({ type: 'put', key: kv.key.toString() }));
  watcher.on('delete', (kv) => seen.push({ type: 'delete', key: kv.key.toString() }));
  try {
    // Register users × devices, 100 at a time so fsyncs are shared.
    const keys: string[] = [];
    for (let u = 0; u < USERS; u++) for (let d = 0; d < DEVICES; d++) keys.push(`presence/user-${u}/device-${d}`);
    for (let i = 0; i < keys.length; i += 100) {
      await Promise.all(keys.slice(i, i + 100).map(async (key) => {
        const lease = client.lease(TTL_SECONDS);
        lease.on('lost', () => undefined);
        leases.set(key, lease);
        await lease.put(key).value(JSON.stringify({ gateway: 'gw-1', device: key.split('/')[2] }));
      }));
    }
    assert.equal(await client.getAll().prefix('presence/').count(), USERS * DEVICES);
    assert.ok(await eventually(() => seen.filter((e) => e.type === 'put').length === USERS * DEVICES, 20_000), 'the watcher saw every registration');

    // One device stops sending keep-alives: its key goes after the TTL, the others stay.
    const victim = 'presence/user-42/device-1';
    leases.get(victim)!.release();
    const gone = await eventually(async () => (await client.get(victim).string()) === null, (TTL_SECONDS + 6) * 1000);
    assert.ok(gone, 'the released device expired');
    assert.ok(await eventually(() => seen.some((e) => e.type === 'delete' && e.key === victim), 5000), 'the watcher saw the delete');
    assert.deepEqual(seen.filter((e) => e.type === 'delete').map((e) => e.key), [victim], 'no other device expired');
    assert.equal(await client.getAll().prefix('presence/').count(), USERS * DEVICES - 1);
    assert.notEqual(await client.get('presence/user-42/device-0').string(), null);
  } finally {
    await watcher.cancel();
    await Promise.all([...leases.values()].map((l) => l.revoke().catch(() => undefined)));
  }
  assert.equal(await client.getAll().prefix('presence/').count(), 0, 'revoking the leases removed every key');
});

test('etcd3 Election: one leader, hand-over on resign, observers follow', { timeout: 60_000 }, async () => {
  const election = client.election('gateway-leader', 2);
  const a = election.campaign('gw-a');
  await a.wait();
  assert.equal(await election.leader(), 'gw-a');
  const observer = await election.observe();
  const changes: string[] = [];
  observer.on('change', (v) => changes.push(String(v)));
  const b = election.campaign('gw-b');
  let bElected = false;
  b.on('elected', () => (bElected = true));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(bElected, false, 'a second candidate waits while the leader holds');
  await a.resign();
  await b.wait();
  assert.equal(await election.leader(), 'gw-b');
  assert.ok(await eventually(() => changes.includes('gw-b'), 5000), `observer saw the change (${changes.join(',')})`);
  await observer.cancel();
  await b.resign();
});

test('etcd3 STM: concurrent read-modify-write transactions serialise', { timeout: 60_000 }, async () => {
  await client.put('stm/counter').value('0');
  await Promise.all(Array.from({ length: 8 }, () =>
    client.stm({ retries: 50 }).transact(async (tx) => {
      const v = Number(await tx.get('stm/counter').string());
      await tx.put('stm/counter').value(String(v + 1));
    })));
  assert.equal(await client.get('stm/counter').string(), '8');
});
