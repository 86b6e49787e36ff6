/**
 * The quick simulation sweep run by `make test`: a few hundred seeds across all scenarios,
 * the arbiter loss scenarios, and mutation checks proving the invariant checker can fail.
 * The long sweep is `make sim SEEDS=100000` (test/sim/sweep.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runSim, type SimResult } from './cluster.js';

function sweep(from: number, count: number, opts: Partial<Parameters<typeof runSim>[0]> = {}): SimResult[] {
  const out: SimResult[] = [];
  for (let s = from; s < from + count; s++) out.push(runSim({ seed: s, ...opts }));
  return out;
}

function assertClean(results: SimResult[]): void {
  const bad = results.filter((r) => !r.ok);
  assert.deepEqual(bad.map((r) => `seed ${r.seed} (${r.scenario}): ${r.violation}  replay: node dist/test/sim/sweep.js --seed ${r.seed} --verbose`), []);
}

describe('raft simulation', () => {
  it('400 seeds over every scenario keep all invariants and recover after healing', () => {
    const results = sweep(1, 400);
    assertClean(results);
    const total = (k: keyof SimResult['stats']) => results.reduce((n, r) => n + r.stats[k], 0);
    // The sweep must actually exercise the hard paths, or a clean result means little.
    assert.ok(total('crashes') > 100, 'crashes happened');
    assert.ok(total('snapshotsSent') > 50, 'snapshots were sent');
    assert.ok(total('confChanges') > 50, 'membership changed');
    assert.ok(total('reads') > 500, 'reads were checked');
    for (const sc of ['basic', 'membership', 'arbiter'] as const) assert.ok(results.some((r) => r.scenario === sc), sc);
  });

  it('2 voters + 1 arbiter: losing any one member for good loses no committed entry and the cluster writes again', () => {
    // Arbiter-scenario seeds are ≡ 3 (mod 4); the loss mode is seed % 3:
    // 0 nobody lost (trim check), 1 a voter lags then the leader is lost, 2 a random member is lost.
    const seeds = Array.from({ length: 150 }, (_, i) => 3 + 4 * i);
    const results = seeds.map((seed) => runSim({ seed }));
    assertClean(results);
    assert.ok(results.every((r) => r.scenario === 'arbiter'));
    const lost = results.filter((r) => r.stats.lost > 0).length;
    assert.ok(lost >= 80, `members were lost in ${lost} runs`);
    assert.ok(results.some((r) => r.stats.arbiterLeaderships > 0), 'the arbiter led a hand-off at least once');
    const trimmed = results.reduce((n, r) => n + r.stats.arbiterTrimmedChecked, 0);
    assert.ok(trimmed > 200, `arbiter entries checked trimmed: ${trimmed}`);
  });

  it('mutation: granting a second vote in one term is caught (election safety)', () => {
    const bad = sweep(1, 100, { mutation: 'voteTwice' }).filter((r) => !r.ok);
    assert.ok(bad.length > 0, 'the checker caught the broken rule');
    assert.ok(bad.some((r) => /election safety|leader completeness|state-machine safety|log matching/.test(r.violation ?? '')), bad[0]?.violation);
  });

  it('mutation: voting without the up-to-date log check is caught (leader completeness)', () => {
    const bad = sweep(1, 100, { mutation: 'skipUpToDateCheck' }).filter((r) => !r.ok);
    assert.ok(bad.length > 0, 'the checker caught the broken rule');
    assert.ok(bad.some((r) => /leader completeness|state-machine safety/.test(r.violation ?? '')), bad[0]?.violation);
  });

  it('driver bug: a driver that ignores mustSync loses acknowledged state on crash, and it is caught', () => {
    const bad = sweep(1, 100, { driverBug: 'skipSync' }).filter((r) => !r.ok);
    assert.ok(bad.length > 0, 'crashes without fsync must break an invariant');
  });

  it('a run is fully determined by its seed', () => {
    const a = runSim({ seed: 4242 });
    const b = runSim({ seed: 4242 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(runSim({ seed: 4243 }).stats, a.stats);
  });
});
