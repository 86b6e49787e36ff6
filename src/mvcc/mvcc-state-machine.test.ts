import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MvccError } from './errors.js';
import { encodeCommand } from './mvcc-state-machine.js';
import { prefixEnd } from './ordered-keys.js';
import { createStack, dec, enc } from './test-harness.js';
import type { KeyValue } from './types.js';

const view = (kvs: KeyValue[]) => kvs.map((kv) => `${dec(kv.key)}=${dec(kv.value)}@c${kv.createRevision}m${kv.modRevision}v${kv.version}`);

test('revisions, versions and create revisions follow etcd', async () => {
  const s = createStack();
  try {
    assert.equal((await s.svc.put({ key: enc('a'), value: enc('1') })).revision, 2, 'the empty store is revision 1');
    assert.equal((await s.svc.put({ key: enc('a'), value: enc('2') })).revision, 3);
    assert.equal((await s.svc.put({ key: enc('b'), value: enc('x') })).revision, 4);
    let r = await s.svc.range({ key: enc('a') });
    assert.deepEqual(view(r.kvs), ['a=2@c2m3v2']);
    assert.equal(r.revision, 4);
    const d = await s.svc.deleteRange({ key: enc('a'), prevKv: true });
    assert.equal(d.deleted, 1);
    assert.equal(d.revision, 5);
    assert.deepEqual(view(d.prevKvs), ['a=2@c2m3v2']);
    // Recreated: new generation, version restarts at 1.
    await s.svc.put({ key: enc('a'), value: enc('3') });
    r = await s.svc.range({ key: enc('a') });
    assert.deepEqual(view(r.kvs), ['a=3@c6m6v1']);
    // Reads at past revisions.
    assert.deepEqual(view((await s.svc.range({ key: enc('a'), revision: 2 })).kvs), ['a=1@c2m2v1']);
    assert.deepEqual(view((await s.svc.range({ key: enc('a'), revision: 5 })).kvs), []);
    // A delete that matches nothing does not bump the revision.
    const none = await s.svc.deleteRange({ key: enc('zzz') });
    assert.equal(none.deleted, 0);
    assert.equal(none.revision, 6);
    await assert.rejects(s.svc.range({ key: enc('a'), revision: 99 }), (e: unknown) => e instanceof MvccError && e.reason === 'future_revision');
  } finally {
    await s.close();
  }
});

test('range conventions: prefix, from-key, all keys, limit, count, sort, filters', async () => {
  const s = createStack();
  try {
    for (const k of ['a', 'b/1', 'b/2', 'b/3', 'c']) await s.svc.put({ key: enc(k), value: enc(k.toUpperCase()) });
    await s.svc.put({ key: enc('b/1'), value: enc('B1v2') });
    const prefix = await s.svc.range({ key: enc('b/'), rangeEnd: prefixEnd(enc('b/')) });
    assert.deepEqual(prefix.kvs.map((kv) => dec(kv.key)), ['b/1', 'b/2', 'b/3']);
    const fromKey = await s.svc.range({ key: enc('b/2'), rangeEnd: new Uint8Array([0]) });
    assert.deepEqual(fromKey.kvs.map((kv) => dec(kv.key)), ['b/2', 'b/3', 'c']);
    const all = await s.svc.range({ key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) });
    assert.equal(all.kvs.length, 5);
    const limited = await s.svc.range({ key: enc('b/'), rangeEnd: prefixEnd(enc('b/')), limit: 2 });
    assert.deepEqual([limited.kvs.length, limited.more, limited.count], [2, true, 3]);
    const counted = await s.svc.range({ key: enc('b/'), rangeEnd: prefixEnd(enc('b/')), countOnly: true });
    assert.deepEqual([counted.kvs.length, counted.count], [0, 3]);
    const desc = await s.svc.range({ key: enc('b/'), rangeEnd: prefixEnd(enc('b/')), sortOrder: 'descend', sortTarget: 'key' });
    assert.deepEqual(desc.kvs.map((kv) => dec(kv.key)), ['b/3', 'b/2', 'b/1']);
    const byMod = await s.svc.range({ key: enc('b/'), rangeEnd: prefixEnd(enc('b/')), sortOrder: 'descend', sortTarget: 'mod', limit: 1 });
    assert.deepEqual(byMod.kvs.map((kv) => dec(kv.key)), ['b/1']);
    const keysOnly = await s.svc.range({ key: enc('a'), keysOnly: true });
    assert.equal(keysOnly.kvs[0]!.value.length, 0);
    const minMod = await s.svc.range({ key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]), minModRevision: 6 });
    assert.deepEqual(minMod.kvs.map((kv) => dec(kv.key)), ['b/1', 'c']);
    const maxCreate = await s.svc.range({ key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]), maxCreateRevision: 3 });
    assert.deepEqual(maxCreate.kvs.map((kv) => dec(kv.key)), ['a', 'b/1']);
  } finally {
    await s.close();
  }
});

test('txn: compares, one revision for all writes, read-your-writes, nested, duplicate keys refused', async () => {
  const s = createStack();
  try {
    await s.svc.put({ key: enc('k'), value: enc('v1') });
    const t = await s.svc.txn({
      compare: [{ key: enc('k'), target: 'value', result: 'equal', operand: enc('v1') }],
      success: [
        { put: { key: enc('k'), value: enc('v2') } },
        { put: { key: enc('other'), value: enc('o') } },
        { range: { key: enc('k') } },
        { txn: { compare: [{ key: enc('missing'), target: 'version', result: 'equal', operand: 0 }], success: [{ put: { key: enc('nested'), value: enc('n') } }], failure: [] } },
      ],
      failure: [],
    });
    assert.equal(t.succeeded, true);
    assert.equal(t.revision, 3);
    const inner = t.responses[2]!;
    assert.ok('range' in inner);
    assert.deepEqual(view(inner.range.kvs), ['k=v2@c2m3v2']);
    const nested = t.responses[3]!;
    assert.ok('txn' in nested && nested.txn.succeeded);
    assert.deepEqual(view((await s.svc.range({ key: enc('nested') })).kvs), ['nested=n@c3m3v1']);
    // Failure branch, and a read-only txn does not bump the revision.
    const f = await s.svc.txn({
      compare: [{ key: enc('k'), target: 'mod', result: 'less', operand: 3 }],
      success: [{ put: { key: enc('x'), value: enc('y') } }],
      failure: [{ range: { key: enc('k') } }],
    });
    assert.equal(f.succeeded, false);
    assert.equal(f.revision, 3);
    // Value compare on a missing key is false; version compare treats it as version 0.
    const missing = await s.svc.txn({ compare: [{ key: enc('nope'), target: 'value', result: 'not_equal', operand: enc('z') }], success: [], failure: [] });
    assert.equal(missing.succeeded, false);
    await assert.rejects(
      s.svc.txn({ compare: [], success: [{ put: { key: enc('d'), value: enc('1') } }, { put: { key: enc('d'), value: enc('2') } }], failure: [] }),
      (e: unknown) => e instanceof MvccError && e.reason === 'duplicate_key',
    );
    await assert.rejects(
      s.svc.txn({ compare: [], success: [{ put: { key: enc('d/1'), value: enc('1') } }, { deleteRange: { key: enc('d/'), rangeEnd: prefixEnd(enc('d/')) } }], failure: [] }),
      (e: unknown) => e instanceof MvccError && e.reason === 'duplicate_key',
    );
    // Lease compare and a put under an unknown lease.
    await assert.rejects(s.svc.put({ key: enc('l'), value: enc('v'), lease: 12345 }), (e: unknown) => e instanceof MvccError && e.reason === 'lease_not_found');
    assert.equal(s.sm.currentRevision(), 3);
  } finally {
    await s.close();
  }
});

test('compaction drops history, keeps the latest revision, refuses old reads', async () => {
  const s = createStack();
  try {
    for (let i = 1; i <= 5; i++) await s.svc.put({ key: enc('k'), value: enc(`v${i}`) });
    await s.svc.put({ key: enc('gone'), value: enc('x') }); // 7
    await s.svc.deleteRange({ key: enc('gone') }); // 8
    await s.svc.compact(4);
    await assert.rejects(s.svc.range({ key: enc('k'), revision: 3 }), (e: unknown) => e instanceof MvccError && e.reason === 'compacted');
    assert.deepEqual(view((await s.svc.range({ key: enc('k'), revision: 4 })).kvs), ['k=v3@c2m4v3']);
    assert.deepEqual(view((await s.svc.range({ key: enc('k') })).kvs), ['k=v5@c2m6v5']);
    await assert.rejects(s.svc.compact(4), (e: unknown) => e instanceof MvccError && e.reason === 'compacted');
    await assert.rejects(s.svc.compact(100), (e: unknown) => e instanceof MvccError && e.reason === 'future_revision');
    await s.svc.compact(8);
    // The tombstoned key is gone from the index and from storage.
    assert.equal(s.store.count('key'), 1);
    assert.equal(s.sm.compactedRevision(), 8);
  } finally {
    await s.close();
  }
});

test('leases: attach, revoke deletes keys in one revision, TTL floor, expiry via the lessor', async () => {
  const s = createStack({ sm: { minLeaseTtlSeconds: 5 } });
  try {
    const g = await s.svc.leaseGrant(1, 0);
    assert.equal(g.ttlSeconds, 5, 'TTL raised to the minimum');
    await s.svc.put({ key: enc('p/1'), value: enc('a'), lease: g.id });
    await s.svc.put({ key: enc('p/2'), value: enc('b'), lease: g.id });
    assert.deepEqual(s.sm.lease(g.id)!.keys.map(dec), ['p/1', 'p/2']);
    // Moving a key to no lease detaches it.
    await s.svc.put({ key: enc('p/2'), value: enc('b2') });
    assert.deepEqual(s.sm.lease(g.id)!.keys.map(dec), ['p/1']);
    const ttl = await s.svc.leaseTimeToLive(g.id);
    assert.deepEqual([ttl.remainingSeconds, ttl.grantedSeconds], [5, 5]);
    s.clock.advance(3000);
    assert.equal(await s.svc.leaseKeepAlive(g.id), 5);
    s.clock.advance(4000);
    assert.deepEqual(s.lessor.tick(), [], 'renewed lease not yet expired');
    s.clock.advance(1500);
    const before = s.sm.currentRevision();
    assert.deepEqual(s.lessor.tick(), [g.id]);
    await new Promise((r) => setImmediate(r));
    await s.sm.sync();
    assert.equal(s.sm.lease(g.id), undefined);
    assert.equal((await s.svc.range({ key: enc('p/1') })).kvs.length, 0);
    assert.equal(s.sm.currentRevision(), before + 1);
    await assert.rejects(s.svc.leaseKeepAlive(g.id), (e: unknown) => e instanceof MvccError && e.reason === 'lease_not_found');
    // Client-chosen ids; duplicates refused.
    await s.svc.leaseGrant(10, 77);
    await assert.rejects(s.svc.leaseGrant(10, 77), (e: unknown) => e instanceof MvccError && e.reason === 'lease_exists');
  } finally {
    await s.close();
  }
});

test('a new leader renews every lease instead of expiring it early', async () => {
  const s = createStack();
  try {
    const g = await s.svc.leaseGrant(10, 0);
    s.replicator.leader = false;
    s.lessor.tick();
    s.clock.advance(60_000); // long past the TTL while this member was a follower
    s.replicator.leader = true;
    assert.deepEqual(s.lessor.tick(), [], 'promotion renews the TTL');
    assert.equal((await s.svc.leaseTimeToLive(g.id)).remainingSeconds, 10);
    s.clock.advance(10_001);
    assert.deepEqual(s.lessor.tick(), [g.id]);
  } finally {
    await s.close();
  }
});

test('a new leader answers a keep-alive that arrives before its first tick by renewing, not expiring', async () => {
  const s = createStack();
  try {
    const g = await s.svc.leaseGrant(10, 0);
    s.replicator.leader = false;
    s.lessor.tick();
    s.clock.advance(60_000);
    s.replicator.leader = true; // elected; the lessor's timer has not ticked yet
    assert.equal(await s.svc.leaseKeepAlive(g.id), 10);
    assert.deepEqual(s.lessor.tick(), [], 'the lease lives on');
  } finally {
    await s.close();
  }
});

test('a leader confirms its leadership with a quorum round before renewing a lease', async () => {
  const s = createStack();
  try {
    const g = await s.svc.leaseGrant(10, 0);
    s.clock.advance(6_000);
    const barrier = s.replicator.readBarrier.bind(s.replicator);
    s.replicator.readBarrier = async () => { throw new Error('no quorum: the leader is cut off'); };
    await assert.rejects(s.svc.leaseKeepAlive(g.id), /no quorum/);
    s.replicator.readBarrier = barrier;
    assert.equal((await s.svc.leaseTimeToLive(g.id)).remainingSeconds, 4, 'a cut-off leader renewed nothing');
  } finally {
    await s.close();
  }
});

test('lease ids are any positive int64, kept exactly (etcd ids are mostly above 2^53)', async () => {
  const first = createStack({ lmdb: true, keepDir: true });
  const dir = first.dir!;
  const etcdId = 0x2040a233b0ffa805n; // as etcd 3.4 hands out: member bits above a counter
  const max = 2n ** 63n - 1n;
  const reason = (r: string) => (e: unknown) => e instanceof MvccError && e.reason === r;
  try {
    assert.deepEqual(await first.svc.leaseGrant(30, etcdId), { revision: 1, id: etcdId, ttlSeconds: 30 });
    assert.equal((await first.svc.leaseGrant(30, max)).id, max);
    assert.equal((await first.svc.leaseGrant(30, 2n ** 53n - 1n)).id, Number.MAX_SAFE_INTEGER, 'safe ids stay numbers');
    await assert.rejects(first.svc.leaseGrant(30, etcdId), reason('lease_exists'));
    await assert.rejects(first.svc.leaseGrant(30, etcdId + 1n - 1n), reason('lease_exists'));
    await first.svc.put({ key: enc('w'), value: enc('1'), lease: etcdId });
    await first.svc.put({ key: enc('m'), value: enc('1'), lease: max });
    assert.equal((await first.svc.range({ key: enc('w') })).kvs[0]!.lease, etcdId);
    assert.deepEqual(await first.svc.leaseLeases(), [Number.MAX_SAFE_INTEGER, etcdId, max]);
    assert.deepEqual((await first.svc.leaseTimeToLive(etcdId)).keys.map(dec), ['w']);
    assert.equal(await first.svc.leaseKeepAlive(etcdId), 30);
    // A compare on the lease is exact; one id off is another lease.
    const t = await first.svc.txn({ compare: [{ key: enc('w'), target: 'lease', result: 'equal', operand: etcdId }], success: [], failure: [] });
    assert.equal(t.succeeded, true);
    const off = await first.svc.txn({ compare: [{ key: enc('w'), target: 'lease', result: 'equal', operand: etcdId + 1n }], success: [], failure: [] });
    assert.equal(off.succeeded, false);
    await assert.rejects(first.svc.put({ key: enc('x'), value: enc('1'), lease: etcdId + 1n }), reason('lease_not_found'));
    await first.svc.leaseRevoke(max);
    assert.equal((await first.svc.range({ key: enc('m') })).kvs.length, 0, 'revoking deletes its keys');
  } finally {
    await first.close();
  }
  const second = createStack({ lmdb: true, dir });
  try {
    assert.deepEqual(second.sm.leases(), [Number.MAX_SAFE_INTEGER, etcdId], 'rebuilt from the lease bucket, exactly');
    assert.deepEqual(second.sm.lease(etcdId)!.keys.map(dec), ['w'], 'and the key bucket');
    const copy = createStack();
    try {
      const snap = second.sm.exportState();
      await copy.sm.restoreState(snap.index, snap.data);
      assert.equal((await copy.svc.range({ key: enc('w') })).kvs[0]!.lease, etcdId, 'through a snapshot');
      await copy.svc.leaseRevoke(etcdId);
      assert.equal((await copy.svc.range({ key: enc('w') })).kvs.length, 0);
    } finally {
      await copy.close();
    }
  } finally {
    await second.close();
  }
});

test('the index is rebuilt on open (LMDB)', async () => {
  const first = createStack({ lmdb: true, keepDir: true });
  const dir = first.dir!;
  const g = await first.svc.leaseGrant(30, 0);
  await first.svc.put({ key: enc('a'), value: enc('1') });
  await first.svc.put({ key: enc('a'), value: enc('2'), lease: g.id });
  await first.svc.put({ key: enc('b'), value: enc('1') });
  await first.svc.deleteRange({ key: enc('b') });
  await first.svc.compact(3);
  const hash = first.sm.hashKv(0).hash;
  await first.close();
  const second = createStack({ lmdb: true, dir });
  try {
    assert.equal(second.sm.currentRevision(), 5);
    assert.equal(second.sm.compactedRevision(), 3);
    assert.deepEqual(view((await second.svc.range({ key: enc('a') })).kvs), ['a=2@c2m3v2']);
    assert.equal((await second.svc.range({ key: enc('b') })).kvs.length, 0);
    assert.deepEqual(second.sm.lease(g.id)!.keys.map(dec), ['a']);
    assert.equal(second.sm.hashKv(0).hash, hash);
    await second.svc.put({ key: enc('b'), value: enc('again') });
    assert.deepEqual(view((await second.svc.range({ key: enc('b') })).kvs), ['b=again@c6m6v1']);
  } finally {
    await second.close();
    (await import('node:fs')).rmSync(dir, { recursive: true, force: true });
  }
});

test('refused commands still advance the applied index; replays are ignored', async () => {
  const s = createStack();
  try {
    const bad = s.sm.apply(1, encodeCommand({ t: 'put', r: { key: new Uint8Array(0), value: enc('x') } }));
    assert.ok(bad instanceof MvccError && bad.reason === 'empty_key');
    assert.equal(s.sm.appliedIndex(), 1);
    assert.equal(s.sm.apply(1, encodeCommand({ t: 'put', r: { key: enc('a'), value: enc('x') } })), undefined);
    assert.equal(s.sm.currentRevision(), 1);
    const unknown = s.sm.apply(2, new Uint8Array([0xc1]));
    assert.ok(unknown instanceof MvccError);
    assert.equal(s.sm.appliedIndex(), 2);
  } finally {
    await s.close();
  }
});

test('request size limit and NOSPACE quota', async () => {
  const s = createStack({ limits: { requestBytesMax: 1024, quotaBytes: 0 } });
  try {
    await assert.rejects(s.svc.deleteRange({ key: new Uint8Array(2000).fill(97) }), (e: unknown) => e instanceof MvccError && e.reason === 'request_too_large');
    // MemoryStateStore reports its size; quota 0 trips on the first write that adds data.
    await assert.rejects(s.svc.put({ key: enc('a'), value: enc('1') }), (e: unknown) => e instanceof MvccError && e.reason === 'no_space');
    assert.deepEqual(s.sm.alarms().map((a) => a.alarm), ['nospace']);
    await s.svc.deleteRange({ key: enc('a') }); // deletes stay allowed
  } finally {
    await s.close();
  }
});

test('property: the MVCC store agrees with a simple model at every revision', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.constantFrom('put', 'del', 'delp'), fc.constantFrom('a', 'a/1', 'a/2', 'b', 'b/x'), fc.nat(9)), { maxLength: 40 }),
      fc.nat(1000),
      async (ops, compactAt) => {
        const s = createStack();
        try {
          const model = new Map<string, { v: string; c: number; m: number; ver: number }>();
          const snapshots: Map<string, { v: string; c: number; m: number; ver: number }>[] = [new Map(), new Map()];
          let rev = 1;
          for (const [op, k, n] of ops) {
            if (op === 'put') {
              rev++;
              const prev = model.get(k);
              model.set(k, { v: String(n), c: prev ? prev.c : rev, m: rev, ver: prev ? prev.ver + 1 : 1 });
              await s.svc.put({ key: enc(k), value: enc(String(n)) });
            } else {
              const keys = [...model.keys()].filter((x) => (op === 'del' ? x === k : x.startsWith(k)));
              if (keys.length > 0) rev++;
              for (const x of keys) model.delete(x);
              await s.svc.deleteRange(op === 'del' ? { key: enc(k) } : { key: enc(k), rangeEnd: prefixEnd(enc(k)) });
            }
            while (snapshots.length <= rev) snapshots.push(new Map(model));
            snapshots[rev] = new Map(model);
          }
          assert.equal(s.sm.currentRevision(), rev);
          const check = async (from: number, label: string) => {
            for (let r = 1; r <= rev; r++) {
              const read = s.svc.range({ key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]), revision: r });
              if (r < from) {
                await assert.rejects(read, (e: unknown) => e instanceof MvccError && e.reason === 'compacted', `${label}: revision ${r} is compacted`);
                continue;
              }
              const want = [...snapshots[r]!.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([key, e]) => `${key}=${e.v}@c${e.c}m${e.m}v${e.ver}`);
              assert.deepEqual(view((await read).kvs), want, `${label}: at revision ${r}`);
            }
          };
          await check(1, 'before compaction');
          // Compact somewhere in the history, then rebuild the index from the store: every
          // revision at or after the compaction point still reads exactly as before.
          const at = 1 + (compactAt % rev);
          if (at > 1) await s.svc.compact(at);
          await check(at, 'after compaction');
          s.sm.reload();
          await check(at, 'after reload');
        } finally {
          await s.close();
        }
      },
    ),
    { numRuns: 60 },
  );
});

test('MvccKvService: the seed /kv view of the same keyspace, with the seed limits', async () => {
  const { MvccKvService } = await import('./kv-service.js');
  const s = createStack();
  try {
    const kv = new MvccKvService(s.svc);
    await kv.put(enc('seed'), enc('v'));
    assert.equal(dec((await kv.get(enc('seed'), 'linearizable'))!), 'v');
    assert.deepEqual(view((await s.svc.range({ key: enc('seed') })).kvs), ['seed=v@c2m2v1']);
    await kv.delete(enc('seed'));
    assert.equal(await kv.get(enc('seed'), 'serializable'), undefined);
    await assert.rejects(kv.put(new Uint8Array(0), enc('v')), /missing key/);
    await assert.rejects(kv.put(new Uint8Array(2000), enc('v')), (e: unknown) => (e as { code?: string }).code === 'too_large');
  } finally {
    await s.close();
  }
});

test('exportState/restoreState move the whole MVCC state, and batch groups applies', async () => {
  const a = createStack({ lmdb: true });
  const b = createStack({ lmdb: true });
  try {
    const g = await a.svc.leaseGrant(30, 0);
    await a.svc.put({ key: enc('x'), value: enc('1'), lease: g.id });
    await a.svc.put({ key: enc('x'), value: enc('2'), lease: g.id });
    a.sm.batch(() => {
      a.sm.apply(a.sm.appliedIndex() + 1, encodeCommand({ t: 'put', r: { key: enc('y'), value: enc('1') } }));
      a.sm.apply(a.sm.appliedIndex() + 1, encodeCommand({ t: 'put', r: { key: enc('y'), value: enc('2') } }));
    });
    assert.deepEqual(view((await a.svc.range({ key: enc('y') })).kvs), ['y=2@c4m5v2'], 'the second apply of a batch reads the first');
    const exported = a.sm.exportState();
    await b.sm.restoreState(exported.index, exported.data);
    assert.equal(b.sm.appliedIndex(), exported.index);
    assert.equal(b.sm.currentRevision(), a.sm.currentRevision());
    assert.deepEqual(view((await b.svc.range({ key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) })).kvs), view((await a.svc.range({ key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) })).kvs));
    assert.deepEqual(b.sm.lease(g.id)!.keys.map(dec), ['x']);
    assert.equal(b.sm.hashKv(0).hash, a.sm.hashKv(0).hash);
  } finally {
    await a.close();
    await b.close();
  }
});

test('a mass expiry is revoked in bounded waves', async () => {
  const s = createStack();
  try {
    const { Lessor } = await import('./lessor.js');
    // A replicator whose proposals stay in flight for a turn of the event loop, like a real one.
    const slow = Object.create(s.replicator) as typeof s.replicator;
    slow.propose = async (c: Uint8Array) => {
      await new Promise((r) => setImmediate(r));
      return s.replicator.propose(c);
    };
    const lessor = new Lessor({ sm: s.sm, replicator: slow, clock: s.clock, revokesInFlightMax: 3 });
    lessor.tick();
    for (let i = 0; i < 7; i++) await s.svc.leaseGrant(5, 0);
    s.clock.advance(6000);
    assert.equal(lessor.tick().length, 3, 'at most 3 revocations in flight');
    assert.equal(lessor.tick().length, 0, 'none more until they complete');
    for (let i = 0; i < 10 && s.sm.leases().length > 0; i++) {
      await new Promise((r) => setImmediate(r));
      lessor.tick();
    }
    assert.deepEqual(s.sm.leases(), []);
    lessor.stop();
  } finally {
    await s.close();
  }
});

test('property: apply is deterministic — two members (memory and LMDB) fed the same log agree', async () => {
  const { MvccStateMachine: Sm } = await import('./mvcc-state-machine.js');
  const { MemoryStateStore } = await import('../storage/index.js');
  const { LmdbStateStore } = await import('../storage/index.js');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { pack } = await import('msgpackr');
  const key = fc.constantFrom('a', 'a/1', 'b', 'c/x');
  const cmd = fc.oneof(
    fc.record({ t: fc.constant('put'), k: key, v: fc.nat(5), lease: fc.constantFrom(0, 7, 8) }).map((c) => encodeCommand({ t: 'put', r: { key: enc(c.k), value: enc(String(c.v)), lease: c.lease } })),
    key.map((k) => encodeCommand({ t: 'deleteRange', r: { key: enc(k), rangeEnd: prefixEnd(enc(k)) } })),
    fc.tuple(key, key, fc.nat(3)).map(([k1, k2, v]) => encodeCommand({ t: 'txn', r: {
      compare: [{ key: enc(k1), target: 'version', result: 'greater', operand: v }],
      success: [{ put: { key: enc(k2), value: enc('s') } }, { range: { key: enc(k1) } }],
      failure: [{ deleteRange: { key: enc(k2) } }],
    } })),
    fc.constantFrom(7, 8).map((id) => encodeCommand({ t: 'leaseGrant', id, ttl: 10 })),
    fc.constantFrom(7, 8).map((id) => encodeCommand({ t: 'leaseRevoke', id })),
    fc.nat(20).map((rev) => encodeCommand({ t: 'compact', rev })),
    fc.constant(pack({ t: 'bogus' }) as Uint8Array),
  );
  const dir = mkdtempSync(join(tmpdir(), 'conure-mvcc-det-'));
  let run = 0;
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(cmd, { maxLength: 30 }), async (log) => {
        const lmdb = new LmdbStateStore({ dir: join(dir, String(run++)) });
        const a = new Sm(new MemoryStateStore());
        const b = new Sm(lmdb);
        try {
          log.forEach((c, i) => {
            const ra = a.apply(i + 1, c);
            const rb = b.apply(i + 1, c);
            assert.deepEqual(JSON.stringify(ra), JSON.stringify(rb), `result of entry ${i + 1}`);
          });
          assert.equal(a.currentRevision(), b.currentRevision());
          assert.equal(a.hashKv(0).hash, b.hashKv(0).hash);
          assert.deepEqual(a.leases(), b.leases());
          const all = { key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) };
          assert.deepEqual(view(a.range(all).kvs), view(b.range(all).kvs));
          // And a member that restarts (rebuilds its index from disk) still agrees.
          b.reload();
          assert.deepEqual(view(a.range(all).kvs), view(b.range(all).kvs));
          assert.deepEqual(a.leases().map((id) => a.lease(id)!.keys.map(dec)), b.leases().map((id) => b.lease(id)!.keys.map(dec)));
        } finally {
          await lmdb.close();
        }
      }),
      { numRuns: 40 },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a follower forwards keep-alives to the leader when it can, and says not leader otherwise', async () => {
  const { MvccService } = await import('./mvcc-service.js');
  const s = createStack();
  try {
    const g = await s.svc.leaseGrant(10, 0);
    s.replicator.leader = false;
    await assert.rejects(s.svc.leaseKeepAlive(g.id), (e: unknown) => (e as { code?: string }).code === 'not_leader');
    const forwarded: Array<number | bigint> = [];
    const follower = new MvccService({
      replicator: s.replicator, sm: s.sm, lessor: s.lessor, store: s.store, memberId: '1',
      forwardKeepAlive: async (id) => { forwarded.push(id); return 10; },
    });
    assert.equal(await follower.leaseKeepAlive(g.id), 10);
    assert.deepEqual(forwarded, [g.id]);
  } finally {
    await s.close();
  }
});

test('int64 arguments beyond 2^53 are checked as bigints, with etcd reasons (finding 8)', async () => {
  const s = createStack();
  const reason = (r: string) => (e: unknown) => e instanceof MvccError && e.reason === r;
  try {
    await s.svc.put({ key: enc('a'), value: enc('1') });
    const huge = 2n ** 53n + 1n;
    await assert.rejects(s.svc.range({ key: enc('a'), revision: huge }), reason('future_revision'));
    await assert.rejects(s.svc.range({ key: enc('a'), revision: 2n ** 63n - 1n }), reason('future_revision'));
    await assert.rejects(s.svc.compact(huge), reason('future_revision'));
    await assert.rejects(s.svc.compact(-(2n ** 62n)), reason('compacted'));
    assert.throws(() => s.sm.hashKv(huge), reason('future_revision'));
    assert.equal((await s.svc.range({ key: enc('a'), revision: -(2n ** 62n) })).kvs.length, 1, 'negative: the current revision');
    // The TTL bound is checked before conversion: 2^62 does not wrap to a 2 s lease.
    await assert.rejects(s.svc.leaseGrant(2n ** 62n, 0n), reason('lease_ttl_too_large'));
    await assert.rejects(s.svc.leaseGrant(9_000_000_001n, 0n), reason('lease_ttl_too_large'));
    await assert.rejects(s.svc.leaseGrant(10n, -5n), reason('invalid'));
    await assert.rejects(s.svc.leaseGrant(10n, 2n ** 63n), reason('invalid'));
    assert.deepEqual(await s.svc.leaseLeases(), []);
    await assert.rejects(s.svc.leaseRevoke(2n ** 63n - 1n), reason('lease_not_found'));
    await assert.rejects(s.svc.leaseTimeToLive(2n ** 63n - 1n), reason('lease_not_found'));
    await assert.rejects(s.svc.leaseKeepAlive(2n ** 63n - 1n), reason('lease_not_found'));
    await assert.rejects(s.svc.put({ key: enc('a'), value: enc('2'), lease: 2n ** 63n - 1n }), reason('lease_not_found'));
    // A put whose lease is a huge bigint, in the branch a txn does not take, changes nothing else.
    const t = await s.svc.txn({ compare: [{ key: enc('a'), target: 'mod', result: 'less', operand: 2n ** 60n }], success: [{ put: { key: enc('b'), value: enc('x') } }], failure: [{ put: { key: enc('c'), value: enc('y'), lease: 2n ** 63n - 1n } }] });
    assert.equal(t.succeeded, true, 'mod < 2^60, compared exactly');
  } finally {
    await s.close();
  }
});
