import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { OperationType } from '../types.js';
import { OPERATION_TYPES, stepsFor, supportsOperation } from './steps.js';
import { portRequests } from './ports.js';
import { validateConureDbCreate } from './conuredb.js';
import { deriveFluxionSpec } from './fluxion.js';

const invalid = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (e: Error & { code?: string }) => e.code === 'invalid_argument' && pattern.test(e.message));

test('step plans per engine and operation type', () => {
  assert.deepEqual(stepsFor('fluxion', 'create'), ['allocate-ports', 'apply', 'wait-ready']);
  assert.deepEqual(stepsFor('fluxion', 'resize'), ['apply', 'wait-ready']);
  assert.deepEqual(stepsFor('fluxion', 'delete'), ['remove']);
  assert.deepEqual(stepsFor('fluxion', 'rotate-key'), ['apply', 'wait-ready']);
  assert.deepEqual(stepsFor('fluxion', 'backup'), ['backup']);
  assert.deepEqual(stepsFor('fluxion', 'restore'), ['allocate-ports', 'restore', 'wait-ready']);
  assert.deepEqual(stepsFor('fluxion', 'halt'), ['halt']);
  assert.deepEqual(stepsFor('conuredb', 'scale'), ['allocate-ports', 'apply', 'wait-ready']);
  assert.deepEqual(stepsFor('conuredb', 'resume'), ['allocate-ports', 'apply', 'wait-ready']);
  for (const engine of ['fluxion', 'conuredb'] as const) {
    for (const op of OPERATION_TYPES) {
      if (!supportsOperation(engine, op)) continue;
      const steps = stepsFor(engine, op);
      assert.ok(steps.length > 0);
      steps.push('halt'); // a fresh array each time
      assert.notDeepEqual(stepsFor(engine, op), steps);
    }
  }
});

test('operation types that do not apply are refused with the reason', () => {
  invalid(() => stepsFor('fluxion', 'scale'), /^Fluxion scales vertically only: change ram/);
  invalid(() => stepsFor('conuredb', 'rotate-key'), /no platform-managed API key/);
  invalid(() => stepsFor('fluxion', 'explode' as OperationType), /unknown operation type "explode"/);
  invalid(() => stepsFor('redis' as 'fluxion', 'create'), /unknown engine "redis"/);
  assert.equal(supportsOperation('fluxion', 'scale'), false);
  assert.equal(supportsOperation('conuredb', 'scale'), true);
});

test('port reservations: one per Fluxion, three per ConureDB member', () => {
  assert.deepEqual(portRequests('db1', deriveFluxionSpec('1Gi', '1.0')), [{ owner: 'db1', count: 1 }]);
  assert.deepEqual(portRequests('db2', validateConureDbCreate({ voters: 2, arbiter: 'auto', storage: '1Gi' })).map((r) => r.owner),
    ['db2/conure-bootstrap-0', 'db2/conure-0', 'db2/conure-arbiter-0']);
});
