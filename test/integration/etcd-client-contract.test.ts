/**
 * Contract suite of src/client/etcd: the same tests against a real single-member conured and a
 * real etcd 3.4, so the client only relies on behaviour both servers share. Without `etcd` on
 * PATH the etcd half fails in CI and is skipped locally.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdClient, compare, op, type WatchEvent } from '../../src/client/etcd-client.js';
import { ConureError } from '../../src/util/errors.js';
import { HAVE_ETCD, startConuredEndpoint, startEtcd, type EtcdEndpoint } from '../support/etcd-process.js';
import { freePort } from '../support/cluster.js';
import { sleep, until } from '../support/until.js';



async function codeOf(p: Promise<unknown>): Promise<string> {
  try { await p; return 'ok'; } catch (err) { return err instanceof ConureError ? err.code : `non-conure: ${String(err)}`; }
}

const IMPLS: Array<{ name: string; start: () => Promise<EtcdEndpoint>; skip: string | false }> = [
  { name: 'conured', start: startConuredEndpoint, skip: false },
  { name: 'etcd 3.4', start: startEtcd, skip: !HAVE_ETCD && !process.env.CI ? 'etcd not installed (Debian etcd-server)' : false },
];

for (const impl of IMPLS) {
  describe(`etcd client contract: ${impl.name}`, { skip: impl.skip }, () => {
    let server: EtcdEndpoint;
    let c: EtcdClient;
    before(async () => {
      server = await impl.start();
      c = new EtcdClient({ endpoints: [server.endpoint], callTimeoutMs: 3000 });
    });
    after(async () => { c?.close(); await server?.close(); });

    test('put/get/range: prefix, limit, count, keysOnly, revision', async () => {
      const r1 = await c.put('/t/kv/a', '1');
      await c.put('/t/kv/b', '2');
      await c.put('/t/kv/c', '3');
      await c.put('/t/kw', 'outside');
      const a = await c.get('/t/kv/a');
      assert.equal(a?.value.toString(), '1');
      assert.equal(a?.version, 1);
      assert.equal(a?.createRevision, r1.revision);
      assert.equal(await c.get('/t/kv/none'), undefined);
      const all = await c.range('/t/kv/', { prefix: true });
      assert.deepEqual(all.kvs.map((k) => k.key), ['/t/kv/a', '/t/kv/b', '/t/kv/c']);
      assert.equal(all.count, 3);
      const lim = await c.range('/t/kv/', { prefix: true, limit: 2 });
      assert.equal(lim.kvs.length, 2);
      assert.equal(lim.more, true);
      assert.equal(lim.count, 3);
      const keys = await c.range('/t/kv/', { prefix: true, keysOnly: true });
      assert.deepEqual(keys.kvs.map((k) => k.value.length), [0, 0, 0]);
      const cnt = await c.range('/t/kv/', { prefix: true, countOnly: true });
      assert.equal(cnt.count, 3);
      assert.equal(cnt.kvs.length, 0);
      await c.put('/t/kv/a', '1b');
      const old = await c.get('/t/kv/a', { revision: r1.revision });
      assert.equal(old?.value.toString(), '1');
      assert.equal((await c.get('/t/kv/a'))?.version, 2);
      assert.equal(await codeOf(c.get('/t/kv/a', { revision: 1_000_000 })), 'invalid_argument');
    });

    test('put with prevKv and JSON helpers', async () => {
      await c.putJson('/t/json', { a: 1 });
      const r = await c.put('/t/json', JSON.stringify({ a: 2 }), { prevKv: true });
      assert.equal(r.prevKv?.value.toString(), '{"a":1}');
      assert.deepEqual((await c.getJson<{ a: number }>('/t/json'))?.value, { a: 2 });
      const fresh = await c.put('/t/json-new', 'x', { prevKv: true });
      assert.equal(fresh.prevKv, undefined);
    });

    test('delete: one key, prefix, prevKv', async () => {
      await c.put('/t/del/1', 'a');
      await c.put('/t/del/2', 'b');
      await c.put('/t/del-other', 'c');
      const one = await c.delete('/t/del/1', { prevKv: true });
      assert.equal(one.deleted, 1);
      assert.equal(one.prevKvs[0]?.value.toString(), 'a');
      await c.put('/t/del/3', 'c');
      const many = await c.delete('/t/del/', { prefix: true });
      assert.equal(many.deleted, 2);
      assert.ok(await c.get('/t/del-other'));
      assert.equal((await c.delete('/t/del/none')).deleted, 0);
    });

    test('txn: compares on value, version, create/mod revision, lease; both branches', async () => {
      const p = await c.put('/t/txn/k', 'v1');
      const lease = await c.leaseGrant(30);
      await c.put('/t/txn/leased', 'x', { lease: lease.id });
      const ok = await c.txn()
        .if(compare.value('/t/txn/k', '==', 'v1'), compare.version('/t/txn/k', '==', 1), compare.modRevision('/t/txn/k', '==', p.revision),
          compare.createRevision('/t/txn/k', '==', p.revision), compare.absent('/t/txn/none'), compare.lease('/t/txn/leased', '==', lease.id))
        .then(op.put('/t/txn/k', 'v2'), op.get('/t/txn/k'), op.put('/t/txn/new', 'n'), op.delete('/t/txn/leased', { prevKv: true }))
        .else(op.get('/t/txn/k'))
        .commit();
      assert.equal(ok.succeeded, true);
      assert.equal(ok.responses.length, 4);
      const rr = ok.responses[1];
      assert.ok(rr?.type === 'range' && rr.kvs[0]?.value.toString() === 'v2');
      const dr = ok.responses[3];
      assert.ok(dr?.type === 'delete' && dr.deleted === 1 && dr.prevKvs[0]?.lease === lease.id);
      const fail = await c.txn().if(compare.value('/t/txn/k', '==', 'v1')).then(op.put('/t/txn/k', 'never')).else(op.get('/t/txn/k'), op.get('/t/txn/', { prefix: true, countOnly: true })).commit();
      assert.equal(fail.succeeded, false);
      const f0 = fail.responses[0];
      assert.ok(f0?.type === 'range' && f0.kvs[0]?.value.toString() === 'v2');
      const f1 = fail.responses[1];
      assert.ok(f1?.type === 'range' && f1.count === 2);
      const gt = await c.runTxn({ compare: [compare.modRevision('/t/txn/k', '>', p.revision), compare.version('/t/txn/k', '<', 3), compare.value('/t/txn/k', '!=', 'zzz')] });
      assert.equal(gt.succeeded, true);
      assert.ok(gt.revision >= ok.revision);
      await c.leaseRevoke(lease.id);
    });

    test('leases: grant, attach, revoke deletes keys; unknown lease is not_found', async () => {
      const l = await c.leaseGrant(20);
      assert.match(l.id, /^\d+$/);
      assert.ok(l.ttlSeconds >= 20);
      await c.put('/t/lease/a', 'x', { lease: l.id });
      assert.equal((await c.get('/t/lease/a'))?.lease, l.id);
      const ttl = await c.leaseTimeToLive(l.id);
      assert.ok(ttl.ttlSeconds > 0 && ttl.ttlSeconds <= 20);
      await c.leaseRevoke(l.id);
      assert.equal(await c.get('/t/lease/a'), undefined);
      assert.equal(await codeOf(c.leaseRevoke(l.id)), 'not_found');
      assert.equal(await codeOf(c.put('/t/lease/b', 'x', { lease: l.id })), 'not_found');
    });

    test('migration calls: a chosen etcd-sized lease id, LeaseLeases, TimeToLive with keys, one keep-alive, binary keys, a watch of every key with a progress request', async () => {
      const id = (0x2040a233b0ff0000n + BigInt(Math.floor(Math.random() * 0xffff))).toString(); // above 2^53, as etcd's ids
      const g = await c.leaseGrant(30, { id });
      assert.deepEqual(g, { id, ttlSeconds: 30 });
      assert.equal(await codeOf(c.leaseGrant(30, { id })), 'conflict', 'lease already exists');
      await assert.rejects(c.leaseGrant(30, { id: '-1' }), /positive int64/);
      const bin = Buffer.from([0x2f, 0x74, 0x2f, 0x62, 0xff, 0x00, 0x80]);
      await c.put(bin, Buffer.from([0, 1, 2, 255]), { lease: id });
      const kv = (await c.range(bin)).kvs[0]!;
      assert.deepEqual([kv.keyBytes, kv.value, kv.lease], [bin, Buffer.from([0, 1, 2, 255]), id]);
      assert.ok((await c.leaseLeases()).includes(id));
      const ttl = await c.leaseTimeToLive(id, { keys: true });
      assert.equal(ttl.grantedTtlSeconds, 30);
      assert.ok(ttl.ttlSeconds > 0 && ttl.ttlSeconds <= 30);
      assert.deepEqual(ttl.keys, [bin]);
      assert.deepEqual((await c.leaseTimeToLive(id)).keys, [], 'keys only when asked');
      assert.equal(await c.leaseKeepAliveOnce(id), 30);

      const seen: WatchEvent[] = [];
      const all = c.watch(Buffer.from([0]), { rangeEnd: Buffer.from([0]) }, (evs) => { seen.push(...evs); });
      try {
        await all.ready;
        const r = await c.put('/t/every', 'x');
        await c.delete(bin);
        await until('both events', () => seen.length >= 2 || undefined);
        assert.deepEqual(seen.map((e) => [e.type, e.kv.keyBytes]), [['put', Buffer.from('/t/every')], ['delete', bin]]);
        assert.ok((await all.requestProgress(5000)) >= r.revision + 1, 'progress at or past the last write');
      } finally { all.close(); }
      await c.leaseRevoke(id);
      assert.equal(await c.leaseKeepAliveOnce(id), 0, 'a gone lease renews to TTL 0');
      assert.equal((await c.leaseTimeToLive(id)).ttlSeconds, -1);
      assert.ok(!(await c.leaseLeases()).includes(id));
    });

    test('LeaseKeeper keeps a short lease past its TTL, then reports lost when the lease is revoked', async () => {
      const keeper = await c.grantAndKeep(2);
      try {
        await c.put('/t/keeper', 'alive', { lease: keeper.id });
        await sleep(3500);
        assert.ok(keeper.isAlive());
        assert.ok(await c.get('/t/keeper'), 'the key outlived the TTL thanks to keep-alives');
        const lost = new Promise<string>((r) => keeper.once('lost', r));
        await c.leaseRevoke(keeper.id);
        const reason = await Promise.race([lost, sleep(8000).then(() => 'not lost')]);
        assert.notEqual(reason, 'not lost');
        assert.equal(keeper.isAlive(), false);
      } finally { await keeper.stop(); }
    });

    test('watch: prefix events in order, from a past revision, with prevKv; compaction is reported', async () => {
      const start = (await c.put('/t/w/a', '1')).revision;
      await c.put('/t/w/b', '2');
      await c.delete('/t/w/a');
      const seen: WatchEvent[] = [];
      const w = c.watch('/t/w/', { prefix: true, fromRevision: start, prevKv: true }, (evs) => { seen.push(...evs); });
      try {
        await until('3 past events', () => seen.length >= 3 || undefined);
        await c.put('/t/w/c', '3');
        await c.put('/t/outside', 'no');
        await until('4 events', () => seen.length >= 4 || undefined);
        assert.deepEqual(seen.map((e) => `${e.type} ${e.kv.key}`), ['put /t/w/a', 'put /t/w/b', 'delete /t/w/a', 'put /t/w/c']);
        assert.equal(seen[2]?.prevKv?.value.toString(), '1');
        const revs = seen.map((e) => e.kv.modRevision);
        assert.deepEqual([...revs].sort((x, y) => x - y), revs);
      } finally { w.close(); }

      // Compaction past a watcher's start revision.
      const cur = (await c.put('/t/w/d', '4')).revision;
      await c.compact(cur);
      assert.equal(await codeOf(c.get('/t/w/a', { revision: start })), 'compacted');
      let compactedAt = 0;
      const after: WatchEvent[] = [];
      const w2 = c.watch('/t/w/', { prefix: true, fromRevision: start }, { onEvents: (evs) => { after.push(...evs); }, onCompacted: (r) => { compactedAt = r; } });
      try {
        await until('compaction reported', () => compactedAt || undefined);
        assert.equal(compactedAt, cur);
        await c.put('/t/w/e', '5');
        await until('events after compaction', () => after.some((e) => e.kv.key === '/t/w/e') || undefined);
      } finally { w2.close(); }
    });

    test('failover: a dead first endpoint is skipped', async () => {
      const dead = `127.0.0.1:${await freePort()}`;
      const c2 = new EtcdClient({ endpoints: [dead, server.endpoint], callTimeoutMs: 2000 });
      try {
        await c2.put('/t/fo', 'x');
        assert.equal((await c2.get('/t/fo'))?.value.toString(), 'x');
        assert.equal(c2.currentEndpoint(), server.endpoint);
      } finally { c2.close(); }
      const c3 = new EtcdClient({ endpoints: [dead], callTimeoutMs: 2000 });
      try { assert.equal(await codeOf(c3.get('/t/fo')), 'unavailable'); } finally { c3.close(); }
    });

    test('a hung endpoint: the per-call deadline answers timeout', async () => {
      await c.put('/t/hang', 'x');
      server.pause();
      try {
        const t0 = Date.now();
        assert.equal(await codeOf(c.get('/t/hang', { timeoutMs: 500 })), 'timeout');
        assert.ok(Date.now() - t0 < 5000, 'the deadline bounded the call');
      } finally { server.resume(); }
      await until('the endpoint answers again', async () => (await codeOf(c.get('/t/hang'))) === 'ok' || undefined);
    });

    test('endpoint killed: calls fail with unavailable, succeed when it is back; a watch resumes without loss; a kept lease is reported lost', async () => {
      const events: WatchEvent[] = [];
      const w = c.watch('/t/k/', { prefix: true }, (evs) => { events.push(...evs); });
      const keeper = await c.grantAndKeep(2);
      const lost = new Promise<string>((r) => keeper.once('lost', r));
      try {
        await w.ready;
        await c.put('/t/k/1', 'before');
        await until('event before the kill', () => events.length >= 1 || undefined);
        await server.kill9();
        const reason = await Promise.race([lost, sleep(10_000).then(() => 'not lost')]);
        assert.match(reason, /within the TTL/, 'no keep-alive within the TTL while the store is down');
        assert.equal(await codeOf(c.put('/t/k/x', 'while down')), 'unavailable');
        assert.equal(await codeOf(c.get('/t/k/1')), 'unavailable');
        await server.restart();
        await until('calls succeed again', async () => (await codeOf(c.put('/t/k/2', 'after'))) === 'ok' || undefined, 20_000);
        assert.equal((await c.get('/t/k/1'))?.value.toString(), 'before');
        await until('the watch sees the write after the restart', () => events.some((e) => e.kv.key === '/t/k/2') || undefined, 20_000);
        const keys = events.map((e) => `${e.kv.key}@${e.kv.modRevision}`);
        assert.equal(new Set(keys).size, keys.length, `no duplicate events: ${keys.join(',')}`);
        assert.ok(!events.some((e) => e.kv.key === '/t/k/x'));
      } finally { w.close(); await keeper.stop(); }
    });
  });
}
