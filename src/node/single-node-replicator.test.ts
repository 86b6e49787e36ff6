import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pack } from 'msgpackr';
import { MemoryStateStore } from '../storage/memory-state-store.js';
import { PlainKvService, PlainKvStateMachine } from './plain-kv.js';
import { SingleNodeReplicator } from './single-node-replicator.js';
import type { StateMachine } from './types.js';

const enc = (s: string) => new TextEncoder().encode(s);

function setup(extra: Partial<ConstructorParameters<typeof SingleNodeReplicator>[0]> = {}) {
  const store = new MemoryStateStore();
  const sm = new PlainKvStateMachine(store);
  const r = new SingleNodeReplicator({ id: 'n1', raftAddress: '127.0.0.1:7001', httpAddress: '127.0.0.1:8081', stateMachine: sm, ...extra });
  return { store, sm, r, kv: new PlainKvService(r, sm) };
}

describe('SingleNodeReplicator', () => {
  it('applies concurrent proposals in order at consecutive indexes, in few syncs', async () => {
    const { sm, kv } = setup();
    let syncs = 0;
    const realSync = sm.sync.bind(sm);
    sm.sync = async () => { syncs++; return realSync(); };
    await Promise.all(Array.from({ length: 100 }, (_, i) => kv.put(enc('k'), enc(String(i)))));
    assert.equal(sm.appliedIndex(), 100);
    assert.equal(new TextDecoder().decode(await kv.get(enc('k'), 'linearizable')), '99');
    assert.ok(syncs < 10, `expected group commit, got ${syncs} syncs for 100 proposals`);
  });

  it('rejects the whole batch when applying fails, and keeps serving afterwards', async () => {
    const { store, sm, kv } = setup();
    let fail = true;
    const failing: StateMachine = {
      apply: (i, c) => { if (fail) throw new Error('disk on fire'); return sm.apply(i, c); },
      applyNoop: (i) => sm.applyNoop(i), appliedIndex: () => sm.appliedIndex(), sync: () => sm.sync(), batch: (fn) => store.batch(fn),
    };
    const r2 = new SingleNodeReplicator({ id: 'n1', raftAddress: 'a:1', httpAddress: 'a:2', stateMachine: failing });
    await assert.rejects(r2.propose(pack({ t: 'put', k: enc('x'), v: enc('1') })), /disk on fire/);
    fail = false;
    await r2.propose(pack({ t: 'put', k: enc('x'), v: enc('2') }));
    assert.equal(new TextDecoder().decode(await kv.get(enc('x'), 'serializable')), '2');
    await r2.close();
  });

  it('refuses proposals beyond the pending limit with a retryable error', async () => {
    const { r } = setup({ pendingProposalsMax: 2 });
    const ok = [r.propose(pack({ t: 'put', k: enc('a'), v: enc('1') })), r.propose(pack({ t: 'put', k: enc('b'), v: enc('1') }))];
    await assert.rejects(r.propose(pack({ t: 'put', k: enc('c'), v: enc('1') })), { code: 'unavailable' });
    await Promise.all(ok);
  });

  it('rejects proposals after close and reports shutdown', async () => {
    const { r } = setup();
    await r.close();
    await assert.rejects(r.propose(pack({ t: 'put', k: enc('a'), v: enc('1') })), { code: 'closed' });
    assert.equal(r.stats().state, 'shutdown');
    assert.equal(r.status().ready, false);
  });

  it('describes a single voter and refuses membership changes clearly', async () => {
    const { r } = setup();
    assert.deepEqual(r.members(), [{ id: 'n1', address: '127.0.0.1:7001', httpAddress: '127.0.0.1:8081', suffrage: 'voter' }]);
    await r.addMember({ id: 'n1', address: '127.0.0.1:7001', suffrage: 'voter' });
    await assert.rejects(r.addMember({ id: 'n2', address: '127.0.0.1:7002', suffrage: 'voter' }), { code: 'unsupported' });
    await assert.rejects(r.removeMember('n1'), { code: 'invalid_argument' });
  });
});

describe('PlainKvService limits', () => {
  it('refuses empty and oversized keys and values before proposing', async () => {
    const { kv, sm } = setup();
    await assert.rejects(kv.put(new Uint8Array(0), enc('v')), { code: 'invalid_argument', message: 'missing key' });
    await assert.rejects(kv.put(new Uint8Array(1025), enc('v')), { code: 'too_large' });
    await assert.rejects(kv.put(enc('k'), new Uint8Array(1024 * 1024 + 1)), { code: 'too_large' });
    await kv.put(enc('k'), new Uint8Array(1024 * 1024));
    assert.equal(sm.appliedIndex(), 1);
  });
});
