/**
 * The presence registry on a real 3-member ConureDB: TTL expiry seen by watchers, a kill -9 of
 * the leader loses no acknowledged registration and caches converge, and every gateway cache sees
 * every change exactly once, in revision order. Also the id validation.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EtcdClient } from '../../src/client/etcd-client.js';
import { freePort, TestCluster } from '../../test/support/cluster.js';
import { until } from '../../test/support/until.js';
import { deviceKey, InvalidPresenceIdError, PresenceCache, PresenceRegistry, validateId, type PresenceChange } from './registry.js';

/** SIGTERM every member, then SIGKILL any that has not exited within 15 s (a member that cannot hand over must not outlive the test). */
async function stopCluster(c: TestCluster): Promise<void> {
  await Promise.race([c.stopAll(), new Promise((r) => setTimeout(r, 15_000))]);
  await Promise.all(c.members.map((m) => (m.running ? m.kill9() : undefined)));
}

describe('presence ids', () => {
  it('rejects slashes, empty, control characters and oversized ids', () => {
    for (const bad of ['', 'a/b', '/', 'x'.repeat(129), 'a\nb', '..', 5]) assert.throws(() => validateId('user', bad), InvalidPresenceIdError);
    assert.equal(validateId('device', 'phone-1'), 'phone-1');
    assert.equal(deviceKey('alice', 'phone'), '/registry/users/alice/phone');
  });
});

describe('presence registry on a 3-member ConureDB', { timeout: 150_000 }, () => {
  const c = new TestCluster();
  let endpoints: string[] = [];
  before(async () => {
    const boot = await c.add({ id: 'p0', bootstrap: true });
    const v1 = await c.add({ id: 'p1' });
    const v2 = await c.add({ id: 'p2' });
    v1.spec.join = [boot.url]; v2.spec.join = [boot.url, v1.url];
    await boot.start(); await v1.start(); await v2.start();
    await c.waitConfig((s) => s.filter((x) => x.suffrage === 'voter').length === 3, '3 voters');
    await Promise.all(c.members.map((m) => m.waitReady()));
    endpoints = c.members.map((m) => `127.0.0.1:${m.clientPort}`);
  });
  after(async () => { await stopCluster(c); });

  it('registers multi-device users; a device that stops keeping alive disappears after its TTL and watchers see the delete', async () => {
    const client = new EtcdClient({ endpoints });
    const reg = new PresenceRegistry(client, { ttlSeconds: 3, keepAliveIntervalMs: 500 });
    const cache = new PresenceCache(client);
    const changes: PresenceChange[] = [];
    try {
      await cache.start();
      cache.on('change', (ch: PresenceChange) => changes.push(ch));
      await reg.register('ttl-alice', 'phone', 'gw-a');
      await reg.register('ttl-alice', 'laptop', 'gw-b');
      assert.deepEqual((await reg.lookup('ttl-alice')).map((d) => `${d.deviceId}@${d.gateway}`).sort(), ['laptop@gw-b', 'phone@gw-a']);
      await until('cache sees both devices', () => cache.lookup('ttl-alice').length === 2);
      await reg.abandon('ttl-alice', 'phone'); // the phone's gateway stops keeping its lease alive
      await until('the phone expires', async () => (await reg.lookup('ttl-alice')).length === 1, 15_000);
      await until('the cache drops the phone', () => cache.lookup('ttl-alice').length === 1);
      assert.deepEqual(cache.lookup('ttl-alice').map((d) => d.deviceId), ['laptop']);
      assert.ok(changes.some((ch) => ch.type === 'delete' && ch.deviceId === 'phone'), 'watchers saw the delete');
      // The laptop is kept alive well past its 3 s TTL (keep-alives every 500 ms).
      await new Promise((r) => setTimeout(r, 4500));
      assert.deepEqual((await reg.lookup('ttl-alice')).map((d) => d.deviceId), ['laptop']);
      assert.equal(await reg.unregister('ttl-alice', 'laptop'), true);
      await until('unregister deletes at once; the cache follows', () => cache.lookup('ttl-alice').length === 0);
    } finally { cache.close(); await reg.close(true); client.close(); }
  });

  it('kill -9 of the leader loses no acknowledged registration; caches see every change once, in order, and converge', async () => {
    const writer = new EtcdClient({ endpoints });
    const reg = new PresenceRegistry(writer, { ttlSeconds: 30 });
    const caches = [0, 1, 2].map((i) => new PresenceCache(new EtcdClient({ endpoints: [...endpoints.slice(i), ...endpoints.slice(0, i)] })));
    const seen: PresenceChange[][] = caches.map(() => []);
    try {
      await Promise.all(caches.map((cache) => cache.start()));
      caches.forEach((cache, i) => cache.on('change', (ch: PresenceChange) => seen[i]!.push(ch)));
      const acked: Array<{ user: string; device: string; revision: number }> = [];
      let stop = false;
      const load = (async () => {
        for (let n = 0; !stop && n < 400; n++) {
          const user = `kill-u${n % 20}`; const device = `d${n}`;
          try { const r = await reg.register(user, device, `gw-${n % 3}`); acked.push({ user, device, revision: r.revision }); } catch { /* not acknowledged */ }
        }
      })();
      await until('some registrations before the kill', () => acked.length >= 30);
      const leader = await c.leader();
      await leader.kill9();
      await until('registrations after the kill', () => acked.length >= 80, 60_000);
      stop = true; await load;
      await leader.start(); await leader.waitReady();

      // No acknowledged registration is lost.
      for (const a of acked) {
        const devices = await reg.lookup(a.user);
        assert.ok(devices.some((d) => d.deviceId === a.device), `acknowledged ${a.user}/${a.device} missing`);
      }
      // Every cache converges to the store's contents.
      const truth = async (): Promise<string> => JSON.stringify((await writer.range('/registry/users/kill-', { prefix: true })).kvs.map((kv) => `${kv.key}=${kv.value.toString()}`).sort());
      const want = await truth();
      const mine = (cache: PresenceCache): string => JSON.stringify(cache.snapshot().filter((d) => d.userId.startsWith('kill-')).map((d) => `/registry/users/${d.userId}/${d.deviceId}=${d.gateway}`).sort());
      for (const cache of caches) await until('cache converges', () => mine(cache) === want, 30_000);
      // Exactly once and in order: strictly increasing revisions, each acknowledged put seen once.
      for (const [i, s] of seen.entries()) {
        const revs = s.filter((ch) => ch.type !== 'reset').map((ch) => ch.revision);
        for (let k = 1; k < revs.length; k++) assert.ok(revs[k]! > revs[k - 1]!, `cache ${i}: revision ${revs[k]} after ${revs[k - 1]}`);
        const puts = s.filter((ch) => ch.type === 'put' && ch.userId.startsWith('kill-'));
        const keys = puts.map((ch) => ch.type === 'put' ? `${ch.userId}/${ch.deviceId}` : '');
        assert.equal(new Set(keys).size, keys.length, `cache ${i} saw a put twice`);
        for (const a of acked) assert.ok(puts.some((ch) => ch.revision === a.revision), `cache ${i} never saw ${a.user}/${a.device}@${a.revision}`);
      }
    } finally { for (const cache of caches) cache.close(); await reg.close(true); writer.close(); }
  });

  it('resumes from the last seen revision after its member restarts, and re-lists when that revision was compacted', async () => {
    const leader = await c.leader();
    const follower = c.members.find((m) => m !== leader && m.running)!;
    // Members bind their client port at random on each start: pin this one so a client that
    // knows only it can reconnect after its restarts.
    const pinned = ['--client-addr', `127.0.0.1:${await freePort()}`];
    await follower.kill9(); await follower.start(pinned); await follower.waitReady();
    const writer = new EtcdClient({ endpoints: c.members.filter((m) => m !== follower).map((m) => `127.0.0.1:${m.clientPort}`) });
    const reg = new PresenceRegistry(writer, { ttlSeconds: 30 });
    const watchClient = new EtcdClient({ endpoints: [`127.0.0.1:${follower.clientPort}`] }); // only the follower
    const cache = new PresenceCache(watchClient);
    const seen: PresenceChange[] = [];
    const truth = async (): Promise<string> => JSON.stringify((await writer.range('/registry/users/res-', { prefix: true })).kvs.map((kv) => `${kv.key}=${kv.value.toString()}`).sort());
    const mine = (): string => JSON.stringify(cache.snapshot().filter((d) => d.userId.startsWith('res-')).map((d) => `/registry/users/${d.userId}/${d.deviceId}=${d.gateway}`).sort());
    try {
      await reg.register('res-carol', 'phone', 'gw-1');
      await cache.start();
      cache.on('change', (ch: PresenceChange) => seen.push(ch));
      // 1. The watched member restarts; changes made meanwhile arrive after the resume, no re-list.
      await follower.kill9();
      await reg.register('res-carol', 'tablet', 'gw-2');
      await reg.unregister('res-carol', 'phone');
      await follower.start(pinned); await follower.waitReady();
      const want1 = await truth();
      await until('the resumed cache catches up', () => mine() === want1, 30_000);
      assert.equal(cache.relists, 0, 'a resume within history needs no re-list');
      assert.deepEqual(seen.filter((ch) => ch.type !== 'reset').map((ch) => `${ch.type}:${ch.userId}/${ch.deviceId}`), ['put:res-carol/tablet', 'delete:res-carol/phone']);
      // 2. Down again; this time the history it needs is compacted away: it must re-list.
      await follower.kill9();
      await reg.register('res-dave', 'watch', 'gw-3');
      const r = await reg.register('res-dave', 'laptop', 'gw-1');
      await writer.compact(r.revision);
      // Let the member apply the compaction before the cache can reach it (else, still holding
      // the history, it would rightly serve a plain resume): up on a scratch port first until its
      // own (serializable) reads show the compaction, then back on the port the cache knows.
      await follower.start(); await follower.waitReady();
      const direct = new EtcdClient({ endpoints: [`127.0.0.1:${follower.clientPort}`] });
      try {
        await until('the member applied the compaction', () => direct.range('/registry/users/', { prefix: true, revision: r.revision - 1, serializable: true }).then(() => false, () => true), 30_000);
      } finally { direct.close(); }
      await follower.kill9();
      await follower.start(pinned); await follower.waitReady();
      const want2 = await truth();
      await until('the cache re-lists after compaction', () => cache.relists >= 1 && mine() === want2, 30_000);
      assert.ok(seen.some((ch) => ch.type === 'reset'), 'subscribers are told to reset');
      // And it keeps watching after the re-list.
      await reg.register('res-dave', 'phone', 'gw-2');
      await until('live again after the re-list', () => cache.lookup('res-dave').length === 3, 30_000);
    } finally { cache.close(); await reg.close(true); watchClient.close(); writer.close(); }
  });
});
