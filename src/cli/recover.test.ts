import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adviseRecovery, judgeHealth, type MemberAnswer, type MemberStats } from './recover.js';

const member = (endpoint: string, s: Partial<MemberStats> & { id: string }): MemberAnswer => ({
  endpoint, stats: { role: 'voter', state: 'follower', suffrage: 'voter', term: 3, leader_id: '', last_log_index: 10, last_log_term: 3, commit_index: 9, ...s },
});
const down = (endpoint: string): MemberAnswer => ({ endpoint, error: 'connect ECONNREFUSED' });

describe('conurectl health', () => {
  it('is healthy when any reachable member knows a leader, preferring the leader\'s own word', () => {
    const v = judgeHealth([down('http://a'), member('http://b', { id: 'b', leader_id: 'c' }), member('http://c', { id: 'c', state: 'leader', leader_id: 'c', term: 4 })]);
    assert.equal(v.healthy, true);
    assert.match(v.message, /^healthy: leader c \(term 4\), seen by http:\/\/c; http:\/\/a: unreachable/);
  });
  it('is unhealthy with nobody reachable, or nobody knowing a leader', () => {
    assert.equal(judgeHealth([down('http://a')]).healthy, false);
    const v = judgeHealth([member('http://b', { id: 'b', state: 'pre-candidate' })]);
    assert.equal(v.healthy, false);
    assert.match(v.message, /no reachable member knows a leader; http:\/\/b: b pre-candidate term 3 last 3\/10/);
  });
});

describe('conurectl recover', () => {
  it('needs nothing while a member knows a leader', () => {
    assert.equal(adviseRecovery([member('http://a', { id: 'a', leader_id: 'b' }), down('http://b')]).kind, 'not-needed');
  });
  it('picks the data-bearing member with the highest (last log term, last log index); never an arbiter', () => {
    const r = adviseRecovery([
      member('http://a', { id: 'a', last_log_term: 3, last_log_index: 50 }),
      member('http://b', { id: 'b', last_log_term: 4, last_log_index: 20 }),
      member('http://c', { id: 'c', last_log_term: 4, last_log_index: 21 }),
      member('http://z', { id: 'z', role: 'arbiter', suffrage: 'arbiter', last_log_term: 9, last_log_index: 99 }),
      down('http://d'),
    ]);
    assert.equal(r.kind, 'recover');
    assert.equal(r.kind === 'recover' && r.from.stats.id, 'c');
    assert.match(r.message, /^recover from c \(http:\/\/c\)/);
    assert.match(r.message, /a, b, z answered and will be removed too/);
  });
  it('refuses with the reason when only arbiters (or nobody) answer', () => {
    const arb = adviseRecovery([member('http://z', { id: 'z', role: 'arbiter', suffrage: 'arbiter' }), down('http://a')]);
    assert.equal(arb.kind, 'impossible');
    assert.match(arb.message, /\(z\) are arbiters, which hold no state.*conurectl snapshot restore/s);
    assert.match(adviseRecovery([down('http://a')]).message, /no member answered/);
  });
});
