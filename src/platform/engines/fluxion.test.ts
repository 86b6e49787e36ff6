import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  applyFluxionPatch, deriveFluxionSpec, fluxionNamespace, fluxionRelease, fluxionResources, validateFluxionCreate, validateUserId,
} from './fluxion.js';
import { parseBytes, parseCpuMilli } from './quantity.js';

const KEY = 'k'.repeat(16);
const invalid = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (e: Error & { code?: string }) => e.code === 'invalid_argument' && pattern.test(e.message));

test('a create request derives storage = 2 × RAM and the CPU rule; 512Mi gives the chart defaults', () => {
  const { spec, apiKey } = validateFluxionCreate({ ram: '512Mi', apiKey: KEY });
  assert.equal(apiKey, KEY);
  assert.deepEqual(spec, { engine: 'fluxion', ram: '512Mi', storage: '1Gi', cpuRequest: '250m', cpuLimit: '1', replicas: 1, version: '1.0' });
  assert.equal(validateFluxionCreate({ ram: '2Gi', apiKey: KEY }).spec.storage, '4Gi');
  assert.equal(validateFluxionCreate({ ram: '4Gi', apiKey: KEY }).spec.storage, '8Gi');
  assert.equal(validateFluxionCreate({ ram: '2048Mi', apiKey: KEY, replicas: 1, version: '1.0' }).spec.ram, '2Gi');
  assert.equal(validateFluxionCreate({ ram: '1G', apiKey: KEY }).spec.storage, '2G');
});

test('the CPU table of the file header', () => {
  const table: Array<[string, string, string]> = [
    ['256Mi', '250m', '1'], ['512Mi', '250m', '1'], ['1Gi', '250m', '1'], ['1536Mi', '375m', '1500m'], ['2Gi', '500m', '2'],
    ['4Gi', '1', '4'], ['8Gi', '2', '8'], ['16Gi', '4', '8'], ['64Gi', '4', '8'],
  ];
  for (const [ram, req, lim] of table) {
    const s = deriveFluxionSpec(ram, '1.0');
    assert.deepEqual([s.cpuRequest, s.cpuLimit], [req, lim], ram);
  }
});

test('property: the rule is monotonic, bounded, limit ≥ request, storage = 2 × RAM', () => {
  fc.assert(fc.property(fc.integer({ min: 256 * 2 ** 20, max: 64 * 2 ** 30 }), fc.integer({ min: 256 * 2 ** 20, max: 64 * 2 ** 30 }), (a, b) => {
    const [lo, hi] = a <= b ? [a, b] : [b, a];
    const rl = fluxionResources(lo), rh = fluxionResources(hi);
    assert.ok(rl.cpuRequestMilli <= rh.cpuRequestMilli && rl.cpuLimitMilli <= rh.cpuLimitMilli);
    assert.ok(rh.cpuRequestMilli >= 250 && rh.cpuRequestMilli <= 4000 && rh.cpuLimitMilli <= 8000);
    assert.ok(rh.cpuLimitMilli >= rh.cpuRequestMilli);
    assert.equal(rh.storageBytes, 2 * hi);
  }));
  fc.assert(fc.property(fc.integer({ min: 256, max: 64 * 1024 }), (mi) => {
    const s = deriveFluxionSpec(`${mi}Mi`, '1.0');
    assert.equal(parseBytes(s.storage), 2 * mi * 2 ** 20);
    assert.equal(parseCpuMilli(s.cpuRequest), fluxionResources(mi * 2 ** 20).cpuRequestMilli);
  }));
});

test('refusals of a create request, each with its reason', () => {
  invalid(() => validateFluxionCreate(null), /must be a JSON object; got null/);
  invalid(() => validateFluxionCreate([]), /must be a JSON object; got an array/);
  invalid(() => validateFluxionCreate({ apiKey: KEY }), /^ram is required/);
  invalid(() => validateFluxionCreate({ ram: '255Mi', apiKey: KEY }), /ram must be between 256Mi and 64Gi; got "255Mi"/);
  invalid(() => validateFluxionCreate({ ram: '65Gi', apiKey: KEY }), /between 256Mi and 64Gi/);
  invalid(() => validateFluxionCreate({ ram: 'lots', apiKey: KEY }), /^ram "lots" is not a quantity/);
  invalid(() => validateFluxionCreate({ ram: '1Gi' }), /^apiKey is required.*got nothing$/);
  invalid(() => validateFluxionCreate({ ram: '1Gi', apiKey: 'short' }), /at least 16 characters; got 5/);
  invalid(() => validateFluxionCreate({ ram: '1Gi', apiKey: 'k'.repeat(257) }), /at most 256 characters/);
  invalid(() => validateFluxionCreate({ ram: '1Gi', apiKey: `${KEY} x` }), /printable ASCII without whitespace; character 17 is a space/);
  invalid(() => validateFluxionCreate({ ram: '1Gi', apiKey: `${KEY}é` }), /character 17 is code 233/);
  invalid(() => validateFluxionCreate({ ram: '1Gi', apiKey: `${KEY}\t` }), /code 9/);
  invalid(() => validateFluxionCreate({ ram: '1Gi', apiKey: KEY, replicas: 3 }), /replicas must be 1 \(got 3\): Fluxion scales vertically only; change ram instead/);
  invalid(() => validateFluxionCreate({ ram: '1Gi', apiKey: KEY, replicas: '1' }), /scales vertically only/);
  invalid(() => validateFluxionCreate({ ram: '1Gi', apiKey: KEY, version: '9.9' }), /version "9.9" is not a supported Fluxion version; supported: 1.0/);
  invalid(() => validateFluxionCreate({ ram: '1Gi', apiKey: KEY, storage: '10Gi' }), /unknown field "storage"/);
});

test('the key never appears in an error message', () => {
  const secret = 'sup3r-s3cret-key with space';
  assert.throws(() => validateFluxionCreate({ ram: '1Gi', apiKey: secret }), (e: Error) => !e.message.includes('s3cret'));
});

test('a patch changes RAM (and what follows from it) only', () => {
  const { spec } = validateFluxionCreate({ ram: '512Mi', apiKey: KEY });
  assert.deepEqual(applyFluxionPatch(spec, { ram: '1Gi' }), { ...spec, ram: '1Gi', storage: '2Gi', cpuRequest: '250m', cpuLimit: '1' });
  assert.equal(applyFluxionPatch(spec, { ram: '4Gi' }).cpuRequest, '1');
  invalid(() => applyFluxionPatch(spec, {}), /^ram is required/);
  invalid(() => applyFluxionPatch(spec, { ram: '1Gi', replicas: 2 }), /Fluxion scales vertically only/);
  invalid(() => applyFluxionPatch(spec, { apiKey: KEY }), /use the rotate-key operation/);
  invalid(() => applyFluxionPatch(spec, { ram: '1Gi', version: '1.0' }), /unknown field "version"/);
  invalid(() => applyFluxionPatch(spec, { ram: '128Mi' }), /between 256Mi and 64Gi/);
});

test('names: fluxiondb-<user> and db-<user>, for DNS-label user ids', () => {
  assert.equal(fluxionNamespace('alice'), 'fluxiondb-alice');
  assert.equal(fluxionRelease('alice-2'), 'db-alice-2');
  assert.equal(validateUserId('a'.repeat(53)), 'a'.repeat(53));
  for (const bad of ['', 'Alice', 'a_b', '-a', 'a-', 'a.b', 'a'.repeat(54), 7, null]) {
    invalid(() => fluxionNamespace(bad as string), /user id .* must be 1 to 53 lower-case letters/);
  }
});
