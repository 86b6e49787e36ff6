import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStateStore } from '../storage/index.js';
import { MembershipService } from './membership-service.js';
import { TestStateMachine } from './test-state-machine.js';
import { SingleNodeReplicator } from './single-node-replicator.js';
import type { Member, Replicator } from '../seams/index.js';

const resolver = async (host: string) => { if (host.endsWith('.invalid')) throw new Error('ENOTFOUND'); };

/** A replicator double that records membership calls. */
function fakeReplicator(members: Member[]): Replicator & { calls: string[] } {
  const r = new SingleNodeReplicator({ id: 'n1', raftAddress: 'h:1', httpAddress: 'h:2', stateMachine: new TestStateMachine(new MemoryStateStore()) });
  const calls: string[] = [];
  return Object.assign(r, {
    calls,
    members: () => members,
    addMember: async (m: Member) => { calls.push(`add ${m.id} ${m.address} ${m.suffrage}`); members = [...members.filter((x) => x.id !== m.id), m]; },
    removeMember: async (id: string) => { calls.push(`remove ${id}`); members = members.filter((x) => x.id !== id); },
  });
}

describe('MembershipService', () => {
  it('joins idempotently: same id and address is a no-op, a new address replaces', async () => {
    const rep = fakeReplicator([{ id: 'n1', address: 'h:1', suffrage: 'voter' }]);
    const svc = new MembershipService(rep, resolver);
    assert.equal((await svc.join({ ID: 'n2', RaftAddr: 'h:7002' })).outcome, 'added');
    assert.equal((await svc.join({ ID: 'n2', RaftAddr: 'h:7002' })).outcome, 'unchanged');
    assert.equal((await svc.join({ ID: 'n2', RaftAddr: 'other:7002', Role: 'voter' })).outcome, 'updated');
    assert.equal((await svc.join({ ID: 'arb', RaftAddr: 'h:7003', Role: 'arbiter' })).member.suffrage, 'arbiter');
    assert.deepEqual(rep.calls, ['add n2 h:7002 voter', 'add n2 other:7002 voter', 'add arb h:7003 arbiter']);
  });

  it('records a published ClientURL; the same URL again is unchanged', async () => {
    const rep = fakeReplicator([{ id: 'n1', address: 'h:1', suffrage: 'voter' }]);
    const svc = new MembershipService(rep, resolver);
    assert.equal((await svc.join({ ID: 'n1', RaftAddr: 'h:1', ClientURL: 'http://h:2379/' })).member.clientUrl, 'http://h:2379');
    assert.equal((await svc.join({ ID: 'n1', RaftAddr: 'h:1', ClientURL: 'http://h:2379' })).outcome, 'unchanged');
    assert.equal((await svc.join({ ID: 'n1', RaftAddr: 'h:1' })).outcome, 'unchanged');
  });

  it('refuses malformed requests without touching membership', async () => {
    const rep = fakeReplicator([{ id: 'n1', address: 'h:1', suffrage: 'voter' }]);
    const svc = new MembershipService(rep, resolver);
    const bad: Array<[unknown, RegExp]> = [
      [null, /JSON object/], ['str', /JSON object/], [{}, /ID is required/], [{ ID: '' }, /ID is required/],
      [{ ID: 'a b', RaftAddr: 'h:1' }, /letters, digits/], [{ ID: 'n2' }, /RaftAddr is required/],
      [{ ID: 'n2', RaftAddr: 'h' }, /not host:port/], [{ ID: 'n2', RaftAddr: 'h:99999' }, /not host:port/],
      [{ ID: 'n2', RaftAddr: 'nowhere.invalid:1' }, /does not resolve/], [{ ID: 'n2', RaftAddr: 'h:1', Role: 'boss' }, /Role must be/],
      ...['h:2379', 'ftp://h:1', 'http://h', 'http://u:p@h:1', 'http://h:1/x', 'http://h:1?q', 7, `http://${'h'.repeat(300)}:1`]
        .map((v): [unknown, RegExp] => [{ ID: 'n2', RaftAddr: 'h:1', ClientURL: v }, /ClientURL/]),
    ];
    for (const [body, msg] of bad) await assert.rejects(svc.join(body), (e: Error & { code: string }) => e.code === 'invalid_argument' && msg.test(e.message), JSON.stringify(body));
    assert.deepEqual(rep.calls, []);
  });

  it('removing an absent member succeeds with removed=false', async () => {
    const rep = fakeReplicator([{ id: 'n1', address: 'h:1', suffrage: 'voter' }, { id: 'n2', address: 'h:2', suffrage: 'voter' }]);
    const svc = new MembershipService(rep, resolver);
    assert.deepEqual(await svc.remove({ ID: 'ghost' }), { removed: false });
    assert.deepEqual(await svc.remove({ ID: 'n2' }), { removed: true });
    assert.deepEqual(rep.calls, ['remove n2']);
  });

  it('a follower answers not_leader with the leader before it looks at the body', async () => {
    const rep = fakeReplicator([{ id: 'n1', address: 'h:1', suffrage: 'voter' }]);
    rep.status = () => ({ id: 'n2', isLeader: false, leader: 'h:7001', leaderHttp: 'h:8081', ready: true });
    const svc = new MembershipService(rep, resolver);
    for (const body of [Buffer.from('{"ID":"test","RaftAddr":"test"}'), Buffer.from('not json'), Buffer.alloc(0)]) {
      await assert.rejects(svc.join(body), (e: Error & { code: string; leaderHttp?: string }) => e.code === 'not_leader' && e.leaderHttp === 'h:8081');
      await assert.rejects(svc.remove(body), (e: Error & { code: string }) => e.code === 'not_leader');
    }
    assert.deepEqual(rep.calls, []);
  });

  it('parses raw JSON bodies and refuses a role change of an existing member', async () => {
    const rep = fakeReplicator([{ id: 'n1', address: 'h:1', suffrage: 'voter' }, { id: 'arb', address: 'h:3', suffrage: 'arbiter' }]);
    const svc = new MembershipService(rep, resolver);
    await assert.rejects(svc.join(Buffer.from('{"ID":')), /malformed JSON/);
    await assert.rejects(svc.join(Buffer.from('{"ID":"arb","RaftAddr":"h:9","Role":"voter"}')), /member as arbiter/);
    await assert.rejects(svc.join({ ID: 'n1', RaftAddr: 'h:9', Role: 'arbiter' }), /member as voter/);
    assert.deepEqual(rep.calls, []);
    assert.equal((await svc.join(Buffer.from('{"ID":"n2","RaftAddr":"h:2"}'))).outcome, 'added');
  });
});
