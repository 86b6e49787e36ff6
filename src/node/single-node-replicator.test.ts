import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStateStore } from '../storage/index.js';
import { SingleNodeReplicator } from './single-node-replicator.js';
import { TestStateMachine } from './test-state-machine.js';
import type { StateMachine } from '../seams/index.js';

const cmd = TestStateMachine.command;

function setup(extra: Partial<ConstructorParameters<typeof SingleNodeReplicator>[0]> = {}) {
  const store = new MemoryStateStore();
  const sm = new TestStateMachine(store);
  const r = new SingleNodeReplicator({ id: 'n1', raftAddress: '127.0.0.1:7001', httpAddress: '127.0.0.1:8081', stateMachine: sm, ...extra });
  return { store, sm, r };
}

describe('SingleNodeReplicator', () => {
  it('applies concurrent proposals in order at consecutive indexes, in few syncs', async () => {
    const { sm, r } = setup();
    let syncs = 0;
    const realSync = sm.sync.bind(sm);
    sm.sync = async () => { syncs++; return realSync(); };
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => r.propose(cmd('k', String(i)))));
    assert.deepEqual(results, Array.from({ length: 100 }, (_, i) => i + 1), 'each proposal gets its own index, in order');
    assert.equal(sm.read('k'), '99');
    assert.ok(syncs < 10, `expected group commit, got ${syncs} syncs for 100 proposals`);
  });

  it('rejects the whole batch when applying fails, and keeps serving afterwards', async () => {
    const { store, sm } = setup();
    let fail = true;
    const failing: StateMachine = {
      apply: (i, c) => { if (fail) throw new Error('disk on fire'); return sm.apply(i, c); },
      applyNoop: (i) => sm.applyNoop(i), appliedIndex: () => sm.appliedIndex(), sync: () => sm.sync(), batch: (fn) => store.batch(fn),
    };
    const r2 = new SingleNodeReplicator({ id: 'n1', raftAddress: 'a:1', httpAddress: 'a:2', stateMachine: failing });
    await assert.rejects(r2.propose(cmd('x', '1')), /disk on fire/);
    assert.equal(sm.appliedIndex(), 0, 'nothing of the failed batch was applied');
    fail = false;
    await r2.propose(cmd('x', '2'));
    assert.equal(sm.read('x'), '2');
    await r2.close();
  });

  it('refuses proposals beyond the pending limit with a retryable error', async () => {
    const { r } = setup({ pendingProposalsMax: 2 });
    const ok = [r.propose(cmd('a', '1')), r.propose(cmd('b', '1'))];
    await assert.rejects(r.propose(cmd('c', '1')), { code: 'unavailable' });
    await Promise.all(ok);
  });

  it('rejects proposals after close and reports shutdown', async () => {
    const { r } = setup();
    await r.close();
    await assert.rejects(r.propose(cmd('a', '1')), { code: 'closed' });
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
