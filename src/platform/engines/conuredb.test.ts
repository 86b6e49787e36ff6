import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyConureDbPatch, conureDbTopology, validateConureDbCreate } from './conuredb.js';

const invalid = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (e: Error & { code?: string }) => e.code === 'invalid_argument' && pattern.test(e.message));

test('a create request gives the spec and the planner topology', () => {
  const spec = validateConureDbCreate({ voters: 2, arbiter: 'auto', storage: '10240Mi' });
  assert.deepEqual(spec, { engine: 'conuredb', voters: 2, arbiter: 'auto', storage: '10Gi', version: '0.1.0' });
  const t = conureDbTopology(spec);
  assert.deepEqual(t.members.map((m) => [m.id, m.role, m.bootstrap]), [
    ['conure-bootstrap-0', 'voter', true], ['conure-0', 'voter', false], ['conure-arbiter-0', 'arbiter', false],
  ]);
  assert.equal(t.quorum, 2);
  assert.deepEqual(t.pdb, { minAvailable: 2 });
  assert.equal(conureDbTopology({ voters: 1, arbiter: 'auto' }).pdb, null);
  assert.equal(conureDbTopology({ voters: 3, arbiter: 'auto' }).memberCount, 3);
  assert.equal(conureDbTopology({ voters: 3, arbiter: 'always' }).memberCount, 4);
  assert.equal(validateConureDbCreate({ voters: 7, arbiter: 'never', storage: '1Ti', version: '0.1.0' }).voters, 7);
});

test('refusals of a create request', () => {
  invalid(() => validateConureDbCreate('x'), /must be a JSON object/);
  invalid(() => validateConureDbCreate({ arbiter: 'auto', storage: '1Gi' }), /^voters must be a whole number from 1 to 7 .*got nothing$/);
  invalid(() => validateConureDbCreate({ voters: 0, arbiter: 'auto', storage: '1Gi' }), /from 1 to 7.*got 0/);
  invalid(() => validateConureDbCreate({ voters: 8, arbiter: 'auto', storage: '1Gi' }), /from 1 to 7.*got 8/);
  invalid(() => validateConureDbCreate({ voters: 2.5, arbiter: 'auto', storage: '1Gi' }), /whole number/);
  invalid(() => validateConureDbCreate({ voters: '3', arbiter: 'auto', storage: '1Gi' }), /got "3"/);
  invalid(() => validateConureDbCreate({ voters: 3, arbiter: 'sometimes', storage: '1Gi' }), /arbiter must be auto, always or never; got "sometimes"/);
  invalid(() => validateConureDbCreate({ voters: 3, arbiter: 'auto' }), /^storage is required/);
  invalid(() => validateConureDbCreate({ voters: 3, arbiter: 'auto', storage: '100Mi' }), /storage must be between 256Mi and 1Ti/);
  invalid(() => validateConureDbCreate({ voters: 3, arbiter: 'auto', storage: '2Ti' }), /between 256Mi and 1Ti/);
  invalid(() => validateConureDbCreate({ voters: 3, arbiter: 'auto', storage: 'big' }), /^storage "big" is not a quantity/);
  invalid(() => validateConureDbCreate({ voters: 2, arbiter: 'never', storage: '1Gi' }), /even membership of 2/);
  invalid(() => validateConureDbCreate({ voters: 3, arbiter: 'auto', storage: '1Gi', version: '2' }), /not a supported ConureDB version/);
  invalid(() => validateConureDbCreate({ voters: 3, arbiter: 'auto', storage: '1Gi', ram: '1Gi' }), /unknown field "ram"/);
});

test('patches: voters (scale) and storage (grow only)', () => {
  const spec = validateConureDbCreate({ voters: 2, arbiter: 'auto', storage: '1Gi' });
  assert.equal(applyConureDbPatch(spec, { voters: 3 }).voters, 3);
  assert.equal(applyConureDbPatch(spec, { storage: '2Gi' }).storage, '2Gi');
  invalid(() => applyConureDbPatch(spec, {}), /must change voters or storage/);
  invalid(() => applyConureDbPatch(spec, { voters: 9 }), /from 1 to 7/);
  invalid(() => applyConureDbPatch(spec, { storage: '512Mi' }), /storage can only grow.*1Gi → 512Mi refused/);
  invalid(() => applyConureDbPatch(spec, { arbiter: 'never' }), /unknown field "arbiter"/);
  const never = validateConureDbCreate({ voters: 3, arbiter: 'never', storage: '1Gi' });
  invalid(() => applyConureDbPatch(never, { voters: 4 }), /even membership of 4/);
});
