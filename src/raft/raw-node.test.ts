import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pack, unpack } from 'msgpackr';
import {
  InvalidConfChangeError, MemoryStorage, ProposalDroppedError, ProposalTooLargeError, RaftConfigError, RaftUsageError,
  RawNode, createRng, type Membership, type Message, type RaftConfig,
} from './index.js';

const enc = new TextEncoder();

/** A tiny synchronous cluster: every message goes through msgpack, as on the real transport. */
class Cluster {
  nodes = new Map<string, { raw: RawNode; storage: MemoryStorage; applied: string[] }>();
  sent: Message[] = [];
  constructor(m: Membership, extra: Partial<RaftConfig> = {}) {
    for (const id of [...m.voters, ...m.learners, ...m.arbiters]) this.add(id, MemoryStorage.bootstrapped(m), extra);
  }
  add(id: string, storage: MemoryStorage, extra: Partial<RaftConfig> = {}): RawNode {
    const raw = new RawNode({ id, storage, rng: createRng(id.charCodeAt(id.length - 1)), electionTimeoutTicks: 10, heartbeatTicks: 1, ...extra });
    this.nodes.set(id, { raw, storage, applied: [] });
    return raw;
  }
  get(id: string): RawNode { return this.nodes.get(id)!.raw; }
  stabilize(rounds = 50): void {
    for (let i = 0; i < rounds; i++) {
      const inflight: Message[] = [];
      for (const n of this.nodes.values()) {
        while (n.raw.hasReady()) {
          const rd = n.raw.ready();
          if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
          n.storage.append(rd.entries);
          if (rd.hardState) n.storage.setHardState(rd.hardState);
          for (const e of rd.committedEntries) if (e.type === 'normal' && e.data.length) n.applied.push(new TextDecoder().decode(e.data));
          if (rd.compactTo) n.storage.compact(Math.min(rd.compactTo, n.storage.snapshot().meta.index));
          if (rd.arbiterTrimTo) n.storage.trimPayloads(rd.arbiterTrimTo);
          for (const m of rd.messages) inflight.push(unpack(pack(m)) as Message);
          n.raw.advance();
        }
      }
      if (inflight.length === 0) return;
      this.sent.push(...inflight);
      for (const m of inflight) this.nodes.get(m.to)?.raw.step(m);
    }
  }
}

const three: Membership = { voters: ['n1', 'n2', 'n3'], learners: [], arbiters: [] };

describe('RawNode', () => {
  it('validates its config with RaftConfigError', () => {
    const storage = new MemoryStorage();
    const rng = createRng(1);
    assert.throws(() => new RawNode({ id: '', storage, rng }), RaftConfigError);
    assert.throws(() => new RawNode({ id: 'a', storage, rng, heartbeatTicks: 10, electionTimeoutTicks: 10 }), RaftConfigError);
    assert.throws(() => new RawNode({ id: 'a', storage, rng, readOnlyOption: 'lease', checkQuorum: false }), RaftConfigError);
    assert.throws(() => new RawNode({ id: 'a', storage, rng, maxInflightMsgs: 0 }), RaftConfigError);
  });

  it('enforces the ready/advance contract', () => {
    const c = new Cluster({ voters: ['n1'], learners: [], arbiters: [] });
    const n = c.get('n1');
    assert.throws(() => n.advance(), RaftUsageError);
    n.campaign();
    n.ready();
    assert.equal(n.hasReady(), false, 'nothing more until advance');
    assert.throws(() => n.ready(), RaftUsageError);
    n.advance();
  });

  it('elects a leader and replicates; messages survive msgpack as plain data', () => {
    const c = new Cluster(three);
    c.get('n1').campaign();
    c.stabilize();
    assert.equal(c.get('n1').role, 'leader');
    const at = c.get('n1').propose(enc.encode('hello'));
    assert.deepEqual(at, { index: 3, term: 2 });
    c.stabilize();
    for (const id of ['n1', 'n2', 'n3']) assert.deepEqual(c.nodes.get(id)!.applied, ['hello']);
    assert.ok(c.sent.some((m) => m.type === 'app' && m.entries.length > 0 && m.entries[0]!.data instanceof Uint8Array));
  });

  it('refuses proposals without a leader, too large, or with forwarding disabled; forwards otherwise', () => {
    const c = new Cluster(three, { maxSizePerMsgBytes: 1024 });
    assert.throws(() => c.get('n2').propose(enc.encode('x')), (e: unknown) => e instanceof ProposalDroppedError && e.reason === 'no-leader');
    c.get('n1').campaign();
    c.stabilize();
    assert.throws(() => c.get('n1').propose(new Uint8Array(2048)), ProposalTooLargeError);
    assert.equal(c.get('n2').propose(enc.encode('fwd')), null);
    c.stabilize();
    assert.deepEqual(c.nodes.get('n3')!.applied, ['fwd']);
    const d = new Cluster(three, { disableProposalForwarding: true });
    d.get('n1').campaign();
    d.stabilize();
    assert.throws(() => d.get('n2').propose(enc.encode('x')), (e: unknown) => e instanceof ProposalDroppedError && e.reason === 'not-leader');
  });

  it('bounds uncommitted bytes on the leader', () => {
    const c = new Cluster(three, { maxUncommittedEntriesBytes: 200 });
    c.get('n1').campaign();
    c.stabilize();
    const n1 = c.get('n1');
    let dropped = 0;
    for (let i = 0; i < 20; i++) {
      try { n1.propose(new Uint8Array(40)); } catch (e) { if (e instanceof ProposalDroppedError && e.reason === 'uncommitted-limit') dropped++; else throw e; }
    }
    assert.ok(dropped > 0);
    c.stabilize();
    n1.propose(new Uint8Array(40)); // committed entries free the budget
  });

  it('restarts from storage with term, vote and the membership rebuilt from conf entries', () => {
    const c = new Cluster(three);
    c.get('n1').campaign();
    c.stabilize();
    c.get('n1').proposeConfChange({ type: 'addLearner', nodeId: 'n4', context: new Uint8Array(0) });
    c.stabilize();
    const s = c.nodes.get('n2')!.storage;
    const again = new RawNode({ id: 'n2', storage: s, rng: createRng(9) });
    assert.equal(again.term, 2);
    assert.deepEqual(again.membership, { voters: ['n1', 'n2', 'n3'], learners: ['n4'], arbiters: [] });
    assert.equal(again.status().vote, 'n1');
    assert.deepEqual(again.members, [
      { id: 'n1', suffrage: 'voter' }, { id: 'n2', suffrage: 'voter' }, { id: 'n3', suffrage: 'voter' }, { id: 'n4', suffrage: 'learner' },
    ]);
  });

  it('a member restored from a snapshot takes the snapshot\'s membership', () => {
    const c = new Cluster(three, { compactionRetainEntries: 0 });
    c.get('n1').campaign();
    c.stabilize();
    const n3 = c.nodes.get('n3')!;
    c.nodes.delete('n3');
    c.get('n1').proposeConfChange({ type: 'addLearner', nodeId: 'n4', context: new Uint8Array(0) });
    c.stabilize();
    c.get('n1').proposeConfChange({ type: 'remove', nodeId: 'n4', context: new Uint8Array(0) });
    c.stabilize();
    c.get('n1').proposeConfChange({ type: 'addLearner', nodeId: 'n5', context: new Uint8Array(0) });
    c.stabilize();
    const n1 = c.nodes.get('n1')!;
    n1.storage.createSnapshot(n1.raw.applied, n1.raw.membershipAt(n1.raw.applied), enc.encode('state'));
    n1.raw.snapshotCreated(n1.raw.applied);
    c.stabilize();
    assert.ok(n1.storage.firstIndex() > 3, 'the leader compacted past what n3 has');
    c.nodes.set('n3', n3);
    for (let i = 0; i < 3; i++) { c.get('n1').tick(); c.stabilize(); }
    assert.ok(c.sent.some((m) => m.type === 'snap' && m.to === 'n3'));
    assert.deepEqual(n3.raw.membership, { voters: ['n1', 'n2', 'n3'], learners: ['n5'], arbiters: [] });
    assert.equal(n3.raw.commitIndex, n1.raw.commitIndex);
    // And after a restart from its storage too.
    const again = new RawNode({ id: 'n3', storage: n3.storage, rng: createRng(3) });
    assert.deepEqual(again.membership, { voters: ['n1', 'n2', 'n3'], learners: ['n5'], arbiters: [] });
  });

  it('a learner never campaigns', () => {
    const c = new Cluster({ voters: ['n1'], learners: ['n2'], arbiters: [] });
    const n2 = c.get('n2');
    for (let i = 0; i < 100; i++) n2.tick();
    assert.equal(n2.role, 'follower');
    assert.equal(n2.hasReady(), false);
  });

  it('transferLeadership refuses a non-voter target', () => {
    const c = new Cluster({ voters: ['n1', 'n2'], learners: ['n3'], arbiters: [] });
    c.get('n1').campaign();
    c.stabilize();
    assert.throws(() => c.get('n1').transferLeadership('n3'), InvalidConfChangeError);
    c.get('n2').transferLeadership('n2');
    c.stabilize();
    assert.equal(c.get('n2').role, 'leader');
  });

  it('ReadIndex: single member answers at once; lease mode skips the heartbeat round; limits apply', () => {
    const one = new Cluster({ voters: ['n1'], learners: [], arbiters: [] });
    one.get('n1').campaign();
    one.stabilize();
    one.get('n1').readIndex(enc.encode('a'));
    const rd = one.get('n1').ready();
    assert.deepEqual(rd.readStates.map((r) => r.index), [2]);
    one.get('n1').advance();

    const lease = new Cluster(three, { readOnlyOption: 'lease' });
    lease.get('n1').campaign();
    lease.stabilize();
    lease.get('n1').readIndex(enc.encode('no-lease-yet'));
    assert.equal(lease.get('n1').ready().readStates.length, 0, 'no heartbeat acknowledged yet: falls back to a ReadIndex round');
    lease.get('n1').advance();
    lease.stabilize();
    lease.get('n1').tick();
    lease.stabilize();
    lease.get('n1').readIndex(enc.encode('b'));
    const lr = lease.get('n1').ready();
    assert.equal(lr.readStates.length, 1);
    assert.equal(lr.messages.length, 0, 'no heartbeat round');
    lease.get('n1').advance();
    // After an election timeout without acknowledgements the lease is gone.
    const n1 = lease.get('n1');
    for (let i = 0; i < 9; i++) n1.tick();
    n1.ready(); n1.advance(); // heartbeats are lost
    n1.readIndex(enc.encode('c'));
    assert.equal(n1.ready().readStates.length, 0, 'lease expired: a heartbeat round is needed');
    n1.advance();

    const small = new Cluster(three, { maxPendingReadIndex: 2, maxReadIndexContextBytes: 8 });
    small.get('n1').campaign();
    small.stabilize();
    assert.throws(() => small.get('n1').readIndex(new Uint8Array(9)), ProposalTooLargeError);
    small.get('n1').readIndex(enc.encode('1'));
    small.get('n1').readIndex(enc.encode('2'));
    assert.throws(() => small.get('n1').readIndex(enc.encode('3')), (e: unknown) => e instanceof ProposalDroppedError && e.reason === 'read-queue-full');
  });

  it('lease reads: a deposed leader kept alive by stale responses serves no stale read', () => {
    for (const mutation of [undefined, 'unsafeLease'] as const) {
      const c = new Cluster(three, { readOnlyOption: 'lease', testMutation: mutation });
      c.get('n1').campaign();
      c.stabilize();
      c.get('n1').tick();
      c.stabilize();
      const n1 = c.get('n1');
      // One more heartbeat round; keep the followers' answers to replay later (a slow network).
      n1.tick();
      const rd = n1.ready();
      n1.advance();
      const held: Message[] = [];
      for (const m of rd.messages) {
        const f = c.nodes.get(m.to)!.raw;
        f.step(m);
        const fr = f.ready();
        held.push(...fr.messages);
        f.advance();
      }
      // n1 is cut off; n2 and n3 elect a new leader and commit a write.
      c.nodes.delete('n1');
      const other = () => (c.get('n2').role === 'leader' ? c.get('n2') : c.get('n3').role === 'leader' ? c.get('n3') : undefined);
      for (let i = 0; i < 100 && !other(); i++) {
        c.get('n2').tick();
        c.get('n3').tick();
        c.stabilize();
        for (const m of held) n1.step(m); // stale answers keep check-quorum satisfied
        n1.tick();
        if (n1.hasReady()) { n1.ready(); n1.advance(); }
      }
      const leader2 = other();
      assert.ok(leader2, 'a new leader was elected');
      leader2.propose(enc.encode('newer'));
      c.stabilize();
      assert.equal(n1.role, 'leader', 'n1 still believes it leads');
      n1.readIndex(enc.encode('r'));
      const states = n1.hasReady() ? n1.ready().readStates : [];
      if (mutation === undefined) {
        assert.equal(states.length, 0, 'the lease expired: no read is served');
      } else {
        assert.equal(states.length, 1, 'the broken lease serves the read');
        assert.ok(states[0]!.index < leader2.commitIndex, 'and it is stale');
      }
    }
  });

  it('an arbiter trims payloads all voters hold, and never compacts past that point', () => {
    const m: Membership = { voters: ['n1', 'n2'], learners: [], arbiters: ['a1'] };
    const c = new Cluster(m, { compactionRetainEntries: 0 });
    c.get('n1').campaign();
    c.stabilize();
    for (let i = 0; i < 5; i++) c.get('n1').propose(enc.encode(`v${i}`));
    c.stabilize();
    const a1 = c.nodes.get('a1')!;
    assert.equal(a1.storage.payloadBytes(), 0, 'every payload is on both voters: dropped');
    assert.deepEqual(a1.applied.length, 5, 'the test driver saw committed entries (a real arbiter skips normal entries)');
    // Cut n2 off: new entries are committed by n1 + a1 only, and a1 must keep them.
    const n2 = c.nodes.get('n2')!;
    c.nodes.delete('n2');
    c.get('n1').propose(enc.encode('only-two-copies'));
    c.stabilize();
    assert.ok(a1.storage.payloadBytes() > 0, 'the arbiter keeps what a voter lacks');
    // Even if the arbiter snapshots at its applied index, compaction stops at the trim point.
    a1.storage.createSnapshot(a1.raw.applied, a1.raw.membershipAt(a1.raw.applied), new Uint8Array(0));
    a1.raw.snapshotCreated(a1.raw.applied);
    c.stabilize();
    assert.ok(a1.storage.lastIndex() >= a1.storage.firstIndex(), 'the untrimmed tail is still there');
    assert.ok(a1.storage.entries(a1.storage.lastIndex(), a1.storage.lastIndex() + 1, 1 << 20)[0]!.data.length > 0);
    c.nodes.set('n2', n2);
    for (let i = 0; i < 3; i++) { c.get('n1').tick(); c.stabilize(); }
    assert.equal(a1.storage.payloadBytes(), 0, 'once n2 caught up, the arbiter drops it');
  });
});
