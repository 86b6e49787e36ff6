import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConureError } from '../util/index.js';
import { chartFullname, planScaleDown, planTopology, quorumOf, VOTERS_MAX, type ArbiterMode, type CurrentMember, type Topology, type TopologySpec } from './topology.js';

/** The live membership of a fully formed cluster for a topology. */
function live(t: Topology): CurrentMember[] {
  return t.members.map((m) => ({ id: m.id, suffrage: m.role }));
}

const arbSpec = fc.record({
  votersReplicas: fc.integer({ min: 1, max: VOTERS_MAX }),
  arbiterMode: fc.constantFrom<ArbiterMode>('auto', 'always', 'never'),
  allowEvenMembers: fc.boolean(),
});

/** Plans, or returns undefined for specs the planner refuses (checked separately). */
function tryPlan(spec: TopologySpec) {
  try {
    return planTopology(spec);
  } catch (err) {
    assert.ok(err instanceof ConureError && err.code === 'invalid_argument', String(err));
    return undefined;
  }
}

test('the README examples give the documented member counts', () => {
  const cases: [number, ArbiterMode, number, number][] = [
    [2, 'auto', 3, 1], // helm install conuredb ./charts/conuredb
    [3, 'auto', 3, 0],
    [3, 'never', 3, 0],
    [4, 'auto', 5, 1],
    [1, 'auto', 1, 0],
    [5, 'auto', 5, 0],
  ];
  for (const [voters, mode, members, arbiters] of cases) {
    const t = planTopology({ votersReplicas: voters, arbiterMode: mode });
    assert.equal(t.memberCount, members, `${voters}/${mode}`);
    assert.equal(t.arbiterCount, arbiters, `${voters}/${mode}`);
  }
});

test('default layout: names, roles, bootstrap flag, advertised addresses', () => {
  const t = planTopology({ votersReplicas: 4, arbiterMode: 'auto', namespace: 'db' });
  assert.deepEqual(t.members.map((m) => [m.id, m.role, m.bootstrap]), [
    ['conure-bootstrap-0', 'voter', true],
    ['conure-0', 'voter', false],
    ['conure-1', 'voter', false],
    ['conure-2', 'voter', false],
    ['conure-arbiter-0', 'arbiter', false],
  ]);
  assert.equal(t.members[1]!.advertiseRaft, 'conure-0.conure-hs.db.svc.cluster.local:7001');
  assert.equal(t.members[1]!.advertiseHttp, 'conure-0.conure-hs.db.svc.cluster.local:8081');
  assert.deepEqual(t.replicas, { 'conure-bootstrap': 1, conure: 3, 'conure-arbiter': 1 });
  assert.deepEqual(t.pdb, { minAvailable: 3 });
  assert.equal(t.faultTolerance, 2);
});

test('refuses impossible specs with a clear message', () => {
  assert.throws(() => planTopology({ votersReplicas: 0, arbiterMode: 'auto' }), /voters.replicas must be a whole number >= 1/);
  assert.throws(() => planTopology({ votersReplicas: 2.5, arbiterMode: 'auto' }), /whole number/);
  assert.throws(() => planTopology({ votersReplicas: VOTERS_MAX + 1, arbiterMode: 'auto' }), /must be <=/);
  assert.throws(() => planTopology({ votersReplicas: 4, arbiterMode: 'never' }), /even membership of 4.*unsafe.allowEvenMembers=true/);
  assert.throws(() => planTopology({ votersReplicas: 3, arbiterMode: 'sometimes' as ArbiterMode }), /arbiter.mode must be/);
  assert.throws(() => planTopology({ votersReplicas: 3, arbiterMode: 'auto', fullname: 'Bad_Name' }), /DNS label/);
  const even = planTopology({ votersReplicas: 4, arbiterMode: 'never', allowEvenMembers: true });
  assert.equal(even.memberCount, 4);
  assert.match(even.warnings.join('\n'), /even membership/);
});

test('property: membership follows the arbiter mode; only never+even is refused', () => {
  fc.assert(fc.property(arbSpec, (spec) => {
    const t = tryPlan(spec);
    const even = spec.votersReplicas % 2 === 0;
    if (t === undefined) {
      assert.ok(spec.arbiterMode === 'never' && even && !spec.allowEvenMembers);
      return;
    }
    const expectArbiter = spec.arbiterMode === 'always' || (spec.arbiterMode === 'auto' && even);
    assert.equal(t.arbiterCount, expectArbiter ? 1 : 0);
    assert.equal(t.voterCount, spec.votersReplicas);
    assert.equal(t.memberCount, t.members.length);
    assert.equal(t.members.filter((m) => m.role === 'voter').length, spec.votersReplicas);
    assert.equal(t.members.filter((m) => m.bootstrap).length, 1);
    assert.equal(new Set(t.members.map((m) => m.id)).size, t.memberCount);
    const sum = Object.values(t.replicas).reduce((a, b) => a + b, 0);
    assert.equal(sum, t.memberCount);
    if (spec.arbiterMode === 'auto') assert.equal(t.memberCount % 2, 1, 'auto always gives an odd membership');
  }), { numRuns: 300 });
});

test('property: quorum is a strict majority and the PDB never allows losing it', () => {
  fc.assert(fc.property(arbSpec, (spec) => {
    const t = tryPlan(spec);
    if (!t) return;
    const n = t.memberCount;
    assert.ok(2 * t.quorum > n, 'majority');
    assert.ok(2 * (t.quorum - 1) <= n, 'smallest majority');
    assert.equal(t.quorum, quorumOf(n));
    if (n === 1) {
      assert.equal(t.pdb, null, 'a single member gets no PDB, so drains are not blocked');
    } else {
      assert.ok(t.pdb);
      // The PDB lets at most n - minAvailable pods go; what remains must still be a quorum.
      assert.ok(t.pdb.minAvailable >= t.quorum);
      assert.ok(t.pdb.minAvailable <= n, 'a PDB asking for more pods than exist blocks forever');
    }
  }), { numRuns: 300 });
});

test('property: scale-down removes exactly the surplus, voters highest ordinal first, never the bootstrap', () => {
  fc.assert(fc.property(arbSpec, arbSpec, fc.array(fc.constantFrom('manual-1', 'conure-x-1', 'conure-01'), { maxLength: 2 }), (from, to, extra) => {
    const a = tryPlan(from);
    const b = tryPlan(to);
    if (!a || !b) return;
    const current: CurrentMember[] = [...live(a), ...extra.map((id) => ({ id, suffrage: 'learner' as const }))];
    const plan = planScaleDown(current, b);
    const desired = new Set(b.members.map((m) => m.id));
    assert.deepEqual(new Set(plan.foreign), new Set(extra));
    assert.ok(!plan.remove.includes('conure-bootstrap-0'));
    for (const id of plan.remove) assert.ok(!desired.has(id), `${id} is desired but planned for removal`);
    for (const id of plan.keep) assert.ok(desired.has(id), `${id} is surplus but kept`);
    assert.equal(plan.remove.length + plan.deferred.length + plan.keep.length + plan.foreign.length, current.length);
    // An arbiter is deferred exactly when fewer voters than desired would stay.
    const keptVoters = current.filter((m) => m.suffrage === 'voter' && !plan.remove.includes(m.id)).length;
    for (const id of plan.deferred) assert.ok(id.startsWith('conure-arbiter-') && keptVoters < b.voterCount, `${id} deferred wrongly`);
    if (keptVoters < b.voterCount) assert.ok(!plan.remove.some((id) => id.startsWith('conure-arbiter-')), 'arbiter removed before the new voters joined');
    // Order: voters (descending ordinal) before arbiters.
    const kinds = plan.remove.map((id) => (id.startsWith('conure-arbiter-') ? 1 : 0));
    assert.deepEqual(kinds, [...kinds].sort());
    const voterOrdinals = plan.remove.filter((id) => !id.startsWith('conure-arbiter-')).map((id) => Number(id.slice('conure-'.length)));
    assert.deepEqual(voterOrdinals, [...voterOrdinals].sort((x, y) => y - x));
    // What remains is exactly the overlap of the two layouts, and never empty (the bootstrap stays).
    const overlap = current.filter((m) => desired.has(m.id)).map((m) => m.id);
    assert.deepEqual(plan.keep, overlap);
    assert.ok(plan.keep.includes('conure-bootstrap-0'));
  }), { numRuns: 300 });
});

test('scale-down 3 -> 1 and 4+arbiter -> 3', () => {
  const three = planTopology({ votersReplicas: 3, arbiterMode: 'auto' });
  const one = planTopology({ votersReplicas: 1, arbiterMode: 'auto' });
  assert.deepEqual(planScaleDown(live(three), one).remove, ['conure-1', 'conure-0']);
  const five = planTopology({ votersReplicas: 4, arbiterMode: 'auto' });
  assert.deepEqual(planScaleDown(live(five), three).remove, ['conure-2', 'conure-arbiter-0']);
  assert.deepEqual(planScaleDown(live(three), five).remove, [], 'scale-up removes nothing');
  // 2 voters + arbiter -> 5 voters drops the arbiter, but only once 5 voters are members.
  const two = planTopology({ votersReplicas: 2, arbiterMode: 'auto' });
  const fiveOdd = planTopology({ votersReplicas: 5, arbiterMode: 'auto' });
  assert.deepEqual(planScaleDown(live(two), fiveOdd), { remove: [], deferred: ['conure-arbiter-0'], keep: ['conure-bootstrap-0', 'conure-0'], foreign: [] });
  const joined: CurrentMember[] = [...live(two), ...['conure-1', 'conure-2', 'conure-3'].map((id) => ({ id, suffrage: 'voter' as const }))];
  assert.deepEqual(planScaleDown(joined, fiveOdd).remove, ['conure-arbiter-0']);
  const learning = joined.map((m) => (m.id === 'conure-3' ? { ...m, suffrage: 'learner' as const } : m));
  assert.deepEqual(planScaleDown(learning, fiveOdd).deferred, ['conure-arbiter-0'], 'learners do not count');
});

test('chartFullname follows the chart helper', () => {
  assert.equal(chartFullname('conuredb'), 'conure');
  assert.equal(chartFullname('conure'), 'conure');
  assert.equal(chartFullname('prod'), 'prod-conure');
  assert.equal(chartFullname('prod', 'kv'), 'kv');
  assert.equal(chartFullname('a'.repeat(39) + '-b'), 'a'.repeat(39));
  const other = planTopology({ votersReplicas: 2, arbiterMode: 'auto', fullname: chartFullname('prod') });
  assert.deepEqual(other.members.map((m) => m.id), ['prod-conure-bootstrap-0', 'prod-conure-0', 'prod-conure-arbiter-0']);
  const ids = ['prod-conure-bootstrap-0', 'prod-conure-0', 'prod-conure-1', 'conure-1'];
  assert.deepEqual(planScaleDown(ids.map((id) => ({ id, suffrage: 'voter' })), other),
    { remove: ['prod-conure-1'], deferred: [], keep: ['prod-conure-bootstrap-0', 'prod-conure-0'], foreign: ['conure-1'] });
});
