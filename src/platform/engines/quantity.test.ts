import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalBytes, canonicalCpu, formatBytes, formatCpuMilli, parseByteQuantity, parseBytes, parseCpuMilli, type QuantityFamily } from './quantity.js';

const invalid = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (e: Error & { code?: string }) => e.code === 'invalid_argument' && pattern.test(e.message));

test('parses binary, decimal and plain byte quantities', () => {
  assert.equal(parseBytes('512Mi'), 512 * 2 ** 20);
  assert.equal(parseBytes('2Gi'), 2 * 2 ** 30);
  assert.equal(parseBytes('1Ti'), 2 ** 40);
  assert.equal(parseBytes('4Ki'), 4096);
  assert.equal(parseBytes('1.5Gi'), 1.5 * 2 ** 30);
  assert.equal(parseBytes('3k'), 3000);
  assert.equal(parseBytes('2M'), 2e6);
  assert.equal(parseBytes('1G'), 1e9);
  assert.equal(parseBytes('1048576'), 1048576);
  assert.equal(parseBytes('0'), 0);
  assert.deepEqual(parseByteQuantity('500M'), { bytes: 5e8, family: 'decimal' });
});

test('canonical output: the largest unit of the same family that divides exactly', () => {
  assert.equal(canonicalBytes('2Gi'), '2Gi');
  assert.equal(canonicalBytes('2048Mi'), '2Gi');
  assert.equal(canonicalBytes('1536Mi'), '1536Mi');
  assert.equal(canonicalBytes('1.5Gi'), '1536Mi');
  assert.equal(canonicalBytes('1000k'), '1M');
  assert.equal(canonicalBytes('1048576'), '1Mi');
  assert.equal(canonicalBytes('3000'), '3k');
  assert.equal(canonicalBytes('1500'), '1500');
  assert.equal(formatBytes(0), '0');
  assert.equal(formatBytes(1000, 'binary'), '1000');
});

test('refuses what is not a byte quantity, with the field and value in the message', () => {
  invalid(() => parseBytes('2 Gi', 'ram'), /^ram "2 Gi" is not a quantity/);
  invalid(() => parseBytes('-1Gi', 'ram'), /not a quantity/);
  invalid(() => parseBytes('1e9', 'ram'), /"1e9" is not a quantity/);
  invalid(() => parseBytes('2gi', 'ram'), /unknown unit "gi"/);
  invalid(() => parseBytes('2GB', 'ram'), /unknown unit "GB"/);
  invalid(() => parseBytes('100m', 'ram'), /"m" means thousandths/);
  invalid(() => parseBytes('1.5', 'ram'), /not a whole number of bytes/);
  invalid(() => parseBytes('0.3Ki'), /not a whole number of bytes/);
  invalid(() => parseBytes('99999999Ei'), /too large/);
  invalid(() => parseBytes(''), /1 to 32 characters/);
  invalid(() => parseBytes('1'.repeat(33)), /1 to 32 characters/);
  invalid(() => parseBytes(2048, 'ram'), /^ram must be a string quantity such as "2Gi"; got 2048$/);
  invalid(() => parseBytes(undefined, 'ram'), /got nothing/);
  invalid(() => formatBytes(-1), /safe non-negative integer/);
  invalid(() => formatBytes(1.5), /safe non-negative integer/);
});

test('CPU: cores and millicores, canonical whole cores', () => {
  assert.equal(parseCpuMilli('250m'), 250);
  assert.equal(parseCpuMilli('1.5'), 1500);
  assert.equal(parseCpuMilli('2'), 2000);
  assert.equal(parseCpuMilli('0.25'), 250);
  assert.equal(parseCpuMilli('0.100'), 100);
  assert.equal(canonicalCpu('1000m'), '1');
  assert.equal(canonicalCpu('1.5'), '1500m');
  assert.equal(canonicalCpu('250m'), '250m');
  assert.equal(formatCpuMilli(0), '0');
  invalid(() => parseCpuMilli('0.0005', 'cpuLimit'), /^cpuLimit "0.0005" is finer than one millicore$/);
  invalid(() => parseCpuMilli('1.5m'), /not a CPU quantity/);
  invalid(() => parseCpuMilli('2Gi'), /not a CPU quantity/);
  invalid(() => parseCpuMilli('-1'), /not a CPU quantity/);
  invalid(() => parseCpuMilli('2000'), /above 1024 cores/);
  invalid(() => parseCpuMilli(1), /must be a string CPU quantity/);
});

test('property: parse ∘ format is the identity on byte counts, in both families', () => {
  fc.assert(fc.property(fc.maxSafeNat(), fc.constantFrom<QuantityFamily>('binary', 'decimal'), (n, family) => {
    assert.equal(parseBytes(formatBytes(n, family)), n);
  }));
  // Multiples of units, where formatting actually uses a suffix.
  fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 20 }), fc.constantFrom(1, 2 ** 10, 2 ** 20, 2 ** 30, 1e3, 1e6, 1e9), (k, unit) => {
    const n = k * unit;
    for (const family of ['binary', 'decimal'] as const) assert.equal(parseBytes(formatBytes(n, family)), n);
  }));
});

test('property: the canonical form is a fixed point and keeps the family', () => {
  const unit = fc.constantFrom('', 'Ki', 'Mi', 'Gi', 'Ti', 'k', 'M', 'G', 'T');
  fc.assert(fc.property(fc.integer({ min: 0, max: 8000 }), unit, (n, u) => {
    const text = `${n}${u}`;
    const canon = canonicalBytes(text);
    assert.equal(canonicalBytes(canon), canon);
    assert.equal(parseBytes(canon), parseBytes(text));
    const suffix = /[A-Za-z]+$/.exec(canon)?.[0];
    if (u !== '' && suffix !== undefined) assert.equal(suffix.endsWith('i'), u.endsWith('i'), `${text} → ${canon}`);
  }));
});

test('property: CPU format ∘ parse round trip', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 1024 * 1000 }), (milli) => {
    assert.equal(parseCpuMilli(formatCpuMilli(milli)), milli);
    assert.equal(canonicalCpu(`${milli}m`), formatCpuMilli(milli));
  }));
});
