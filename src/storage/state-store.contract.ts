/**
 * The contract every StateStore implementation must pass. Each implementation's test file
 * calls `stateStoreContract` with a factory; `reopen` is given only for durable stores.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compareBytes, type StateStore } from './state-store.js';

export interface StateStoreFactory {
  name: string;
  /** A fresh, empty store plus a handle to reopen the same data (durable stores only). */
  create(): Promise<{ store: StateStore; reopen?: () => Promise<StateStore>; cleanup(): Promise<void> }>;
}

const b = (s: string) => new TextEncoder().encode(s);
const s = (u: Uint8Array | undefined) => (u === undefined ? undefined : new TextDecoder().decode(u));

export function stateStoreContract(factory: StateStoreFactory): void {
  describe(`StateStore contract: ${factory.name}`, () => {
    it('starts empty at applied index 0', async () => {
      const { store, cleanup } = await factory.create();
      assert.equal(store.appliedIndex(), 0);
      assert.equal(store.get('kv', b('x')), undefined);
      assert.deepEqual(store.range('kv'), []);
      await store.close(); await cleanup();
    });

    it('applies puts and deletes atomically with the applied index', async () => {
      const { store, cleanup } = await factory.create();
      assert.equal(store.apply(1, [{ op: 'put', bucket: 'kv', key: b('a'), value: b('1') }, { op: 'put', bucket: 'kv', key: b('b'), value: b('2') }]), true);
      assert.equal(store.appliedIndex(), 1);
      assert.equal(s(store.get('kv', b('a'))), '1');
      store.apply(2, [{ op: 'del', bucket: 'kv', key: b('a') }, { op: 'del', bucket: 'kv', key: b('missing') }]);
      assert.equal(store.get('kv', b('a')), undefined);
      assert.equal(s(store.get('kv', b('b'))), '2');
      assert.equal(store.appliedIndex(), 2);
      await store.close(); await cleanup();
    });

    it('ignores re-applied indexes (idempotent replay)', async () => {
      const { store, cleanup } = await factory.create();
      store.apply(5, [{ op: 'put', bucket: 'kv', key: b('k'), value: b('new') }]);
      assert.equal(store.apply(5, [{ op: 'put', bucket: 'kv', key: b('k'), value: b('replayed') }]), false);
      assert.equal(store.apply(3, [{ op: 'del', bucket: 'kv', key: b('k') }]), false);
      assert.equal(s(store.get('kv', b('k'))), 'new');
      assert.equal(store.appliedIndex(), 5);
      await store.close(); await cleanup();
    });

    it('rejects a batch with an invalid op without applying any of it', async () => {
      const { store, cleanup } = await factory.create();
      assert.throws(() => store.apply(1, [
        { op: 'put', bucket: 'kv', key: b('ok'), value: b('1') },
        { op: 'put', bucket: 'kv', key: new Uint8Array(0), value: b('1') },
      ]), { code: 'invalid_argument' });
      assert.throws(() => store.apply(1, [{ op: 'put', bucket: 'Bad Bucket!', key: b('k'), value: b('1') }]), { code: 'invalid_argument' });
      assert.equal(store.get('kv', b('ok')), undefined);
      assert.equal(store.appliedIndex(), 0);
      await store.close(); await cleanup();
    });

    it('commits applies made inside batch() together, and none of them if it throws', async () => {
      const { store, reopen, cleanup } = await factory.create();
      store.batch(() => {
        for (let i = 1; i <= 5; i++) store.apply(i, [{ op: 'put', bucket: `fresh${i % 2}`, key: b(`k${i}`), value: b(`v${i}`) }]);
      });
      assert.equal(store.appliedIndex(), 5);
      assert.throws(() => store.batch(() => {
        store.apply(6, [{ op: 'put', bucket: 'kv', key: b('doomed'), value: b('x') }]);
        store.batch(() => store.apply(7, [{ op: 'put', bucket: 'newbucket', key: b('doomed2'), value: b('x') }]));
        throw new Error('boom');
      }), /boom/);
      assert.equal(store.appliedIndex(), 5);
      assert.equal(store.get('kv', b('doomed')), undefined);
      assert.equal(store.get('newbucket', b('doomed2')), undefined);
      assert.equal(store.apply(6, [{ op: 'put', bucket: 'kv', key: b('after'), value: b('y') }]), true);
      await store.sync();
      if (reopen) {
        await store.close();
        const again = await reopen();
        assert.equal(again.appliedIndex(), 6);
        assert.equal(s(again.get('fresh1', b('k3'))), 'v3');
        assert.equal(s(again.get('kv', b('after'))), 'y');
        await again.close();
      } else {
        await store.close();
      }
      await cleanup();
    });

    it('keeps buckets apart', async () => {
      const { store, cleanup } = await factory.create();
      store.apply(1, [{ op: 'put', bucket: 'one', key: b('k'), value: b('1') }, { op: 'put', bucket: 'two', key: b('k'), value: b('2') }]);
      assert.equal(s(store.get('one', b('k'))), '1');
      assert.equal(s(store.get('two', b('k'))), '2');
      assert.deepEqual(store.buckets(), ['one', 'two']);
      await store.close(); await cleanup();
    });

    it('ranges in unsigned byte order, with bounds, limit and reverse (property)', async () => {
      const { store, cleanup } = await factory.create();
      await fc.assert(fc.asyncProperty(
        fc.uniqueArray(fc.uint8Array({ minLength: 1, maxLength: 6 }), { maxLength: 40, selector: (k) => Buffer.from(k).toString('hex') }),
        fc.uint8Array({ maxLength: 3 }), fc.uint8Array({ maxLength: 3 }), fc.nat(10), fc.boolean(),
        async (keys, lo, hi, limit, reverse) => {
          const bucket = 'prop';
          const existing = store.range(bucket).map((r) => ({ op: 'del' as const, bucket, key: r.key }));
          store.apply(store.appliedIndex() + 1, [...existing, ...keys.map((k) => ({ op: 'put' as const, bucket, key: k, value: k }))]);
          const sorted = [...keys].sort(compareBytes);
          const start = lo.length ? lo : undefined, end = hi.length ? hi : undefined;
          let expect = sorted.filter((k) => (!start || compareBytes(k, start) >= 0) && (!end || compareBytes(k, end) < 0));
          assert.equal(store.count(bucket, { ...(start && { start }), ...(end && { end }) }), expect.length);
          if (reverse) expect = expect.reverse();
          if (limit > 0) expect = expect.slice(0, limit);
          const got = store.range(bucket, { ...(start && { start }), ...(end && { end }), ...(limit > 0 && { limit }), reverse });
          assert.deepEqual(got.map((r) => Buffer.from(r.key).toString('hex')), expect.map((k) => Buffer.from(k).toString('hex')));
          for (const r of got) assert.deepEqual(Buffer.from(r.value), Buffer.from(r.key));
        }), { numRuns: 60 });
      await store.close(); await cleanup();
    });

    it('restores a snapshot, replacing all content', async () => {
      const { store, cleanup } = await factory.create();
      store.apply(1, [{ op: 'put', bucket: 'kv', key: b('old'), value: b('x') }]);
      await store.restore(10, new Map([['kv', [{ key: b('new'), value: b('y') }]], ['other', [{ key: b('z'), value: b('w') }]]]));
      assert.equal(store.appliedIndex(), 10);
      assert.equal(store.get('kv', b('old')), undefined);
      assert.equal(s(store.get('kv', b('new'))), 'y');
      assert.equal(s(store.get('other', b('z'))), 'w');
      await store.close(); await cleanup();
    });

    it('refuses calls after close', async () => {
      const { store, cleanup } = await factory.create();
      await store.close();
      assert.throws(() => store.appliedIndex(), { code: 'closed' });
      await cleanup();
    });

    it('persists synced changes across reopen', async (t) => {
      const { store, reopen, cleanup } = await factory.create();
      if (!reopen) { t.skip('not a durable store'); await store.close(); await cleanup(); return; }
      for (let i = 1; i <= 100; i++) store.apply(i, [{ op: 'put', bucket: 'kv', key: b(`k${i}`), value: b(`v${i}`) }]);
      await store.sync();
      await store.close();
      const again = await reopen();
      assert.equal(again.appliedIndex(), 100);
      assert.equal(s(again.get('kv', b('k42'))), 'v42');
      assert.equal(again.count('kv'), 100);
      assert.deepEqual(again.buckets(), ['kv']);
      await again.close(); await cleanup();
    });
  });
}
