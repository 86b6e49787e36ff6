import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bool, canonicalScope, decodeDmrec, decodeDrrng, decodeIns, decodeQdoc, decodeQry, decodeSval, int, PayloadError,
  scopeAllows, str,
} from './protocol.js';

test('field coercion follows spec §2', () => {
  assert.equal(str('x'), 'x');
  assert.equal(str(5), '');
  assert.equal(str(null), '');
  assert.equal(int(42), 42);
  assert.equal(int(42.9), 42);
  assert.equal(int(-42.9), -42);
  assert.equal(int('42'), 42);
  assert.equal(int('42x'), 42);
  assert.equal(int('x'), 0);
  assert.equal(int(true), 0);
  assert.equal(int(undefined), 0);
  assert.equal(bool(true), true);
  assert.equal(bool(2), true);
  assert.equal(bool(0), false);
  assert.equal(bool('true'), false);
});

test('scopes: canonical names and permission classes', () => {
  assert.equal(canonicalScope('read-only'), 'readonly');
  assert.equal(canonicalScope('READ_WRITE'), 'read_write');
  assert.equal(canonicalScope('Read Write Delete'), 'read_write_delete');
  assert.equal(canonicalScope('admin'), undefined);
  assert.equal(scopeAllows('readonly', 'W'), false);
  assert.equal(scopeAllows('read_write', 'W'), true);
  assert.equal(scopeAllows('read_write', 'D'), false);
  assert.equal(scopeAllows('read_write_delete', 'M'), true);
});

test('decoders validate required fields and JSON kinds', () => {
  assert.deepEqual(decodeIns('[{"doc":"d","ts":"7","data":5}]'), [{ col: '', doc: 'd', ts: 7, data: '' }]);
  assert.throws(() => decodeIns('[1]'), PayloadError);
  assert.throws(() => decodeIns('{}'), PayloadError);
  assert.throws(() => decodeIns('not json'), PayloadError);
  assert.equal(decodeQry('{"col":"c","ts":5}').doc, '');
  assert.throws(() => decodeQry('{"col":"c","ts":0}'), /ts/);
  assert.throws(() => decodeQry('{"ts":5}'), /col/);
  assert.throws(() => decodeQry('[]'), /object/);
  assert.throws(() => decodeQdoc('{"col":"c","doc":"d"}'), /to/);
  assert.throws(() => decodeQdoc('{"col":"c","doc":"d","from":10,"to":5}'), /from/);
  assert.equal(decodeQdoc('{"col":"c","doc":"d","to":5,"reverse":1}').reverse, true);
  assert.throws(() => decodeDrrng('{"col":"c","doc":"d","fromTs":5,"toTs":1}'), PayloadError);
  assert.throws(() => decodeSval('{"col":"c","key":"k","value":""}'), PayloadError);
  assert.throws(() => decodeDmrec('[{"col":"c","doc":"d","ts":1},{"col":"c","doc":"d"}]'), PayloadError);
  assert.deepEqual(decodeDmrec('[]'), []);
});
