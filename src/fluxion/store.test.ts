import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FluxionStore } from './store.js';
import type { QdocRequest, QryRequest } from './protocol.js';

const qry = (o: Partial<QryRequest>): QryRequest => ({ col: 'sensors', ts: 1000, doc: '', from: 0, where: '', filter: '', ...o });
const qdoc = (o: Partial<QdocRequest>): QdocRequest => ({
  col: 'sensors', doc: 'dev-1', from: 0, to: 1000, limit: 0, reverse: false, where: '', filter: '', ...o,
});

function seeded(): FluxionStore {
  const s = new FluxionStore();
  s.insert([
    { col: 'sensors', doc: 'dev-1', ts: 100, data: 'state:on q:ok' },
    { col: 'sensors', doc: 'dev-1', ts: 200, data: 'state:off q:bad' },
    { col: 'sensors', doc: 'dev-2', ts: 150, data: 'state:on q:ok' },
  ]);
  return s;
}

test('qry: newest at or before ts, no fallback past a filter, from bound, regex doc', () => {
  const s = seeded();
  assert.deepEqual({ ...s.latest(qry({})) }, { 'dev-1': { ts: 200, data: 'state:off q:bad' }, 'dev-2': { ts: 150, data: 'state:on q:ok' } });
  assert.deepEqual({ ...s.latest(qry({ ts: 120 })) }, { 'dev-1': { ts: 100, data: 'state:on q:ok' } });
  assert.deepEqual({ ...s.latest(qry({ filter: 'q:bad' })) }, { 'dev-2': { ts: 150, data: 'state:on q:ok' } });
  assert.deepEqual({ ...s.latest(qry({ doc: '/DEV-1/i', from: 150 })) }, { 'dev-1': { ts: 200, data: 'state:off q:bad' } });
  assert.deepEqual({ ...s.latest(qry({ doc: 'dev' })) }, {}); // literal doc is exact, not substring
  assert.deepEqual({ ...s.latest(qry({ col: 'nope' })) }, {});
});

test('qdoc: inclusive range, reverse + limit = newest N, predicates before limit', () => {
  const s = seeded();
  assert.deepEqual(s.history(qdoc({ reverse: true, limit: 1 })), [{ ts: 200, data: 'state:off q:bad' }]);
  assert.deepEqual(s.history(qdoc({ where: '/STATE:ON/i' })), [{ ts: 100, data: 'state:on q:ok' }]);
  assert.deepEqual(s.history(qdoc({ from: 100, to: 100 })), [{ ts: 100, data: 'state:on q:ok' }]);
  assert.deepEqual(s.history(qdoc({ filter: 'q:ok', limit: 5 })), [{ ts: 200, data: 'state:off q:bad' }]);
  assert.deepEqual(s.history(qdoc({ doc: 'ghost' })), []);
});

test('insert replaces an existing identity, last element of a batch wins', () => {
  const s = seeded();
  s.insert([{ col: 'sensors', doc: 'dev-2', ts: 150, data: 'a' }, { col: 'sensors', doc: 'dev-2', ts: 150, data: 'idle' }]);
  assert.deepEqual(s.history(qdoc({ doc: 'dev-2' })), [{ ts: 150, data: 'idle' }]);
  assert.equal(s.stats().records, 3);
});

test('deletes: drrng, drec, emptied collections stay until pruneEmpty, dcol drops key/values', () => {
  const s = seeded();
  s.setValue('cfg', 'k', 'v');
  s.deleteRange({ col: 'sensors', doc: 'dev-1', fromTs: 100, toTs: 150 });
  assert.deepEqual(s.history(qdoc({})), [{ ts: 200, data: 'state:off q:bad' }]);
  s.deleteRecords([{ col: 'sensors', doc: 'dev-1', ts: 200 }, { col: 'sensors', doc: 'dev-2', ts: 150 }]);
  assert.equal(s.stats().records, 0);
  assert.deepEqual(s.collectionNames().sort(), ['cfg', 'sensors']);
  s.pruneEmpty();
  assert.deepEqual(s.collectionNames(), ['cfg']);
  s.deleteCollection('cfg');
  assert.deepEqual(s.collectionNames(), []);
  assert.equal(s.stats().keyValues, 0);
});

test('ddoc: one collection or all; keeps collections that still hold key/values', () => {
  const s = seeded();
  s.insert([{ col: 'other', doc: 'dev-1', ts: 1, data: 'x' }]);
  s.setValue('sensors', 'k', 'v');
  s.setValue('kvonly', 'k', 'v');
  s.deleteDocument('dev-1', 'other');
  assert.deepEqual(s.collectionNames().sort(), ['kvonly', 'sensors']);
  s.deleteDocument('dev-2', '');
  s.deleteDocument('dev-1', '');
  assert.equal(s.stats().documents, 0);
  assert.deepEqual(s.collectionNames().sort(), ['kvonly', 'sensors']); // key/values survive
  assert.equal(s.getValue('kvonly', 'k'), 'v');
});

test('key/values: gval, gvalues literal and regex, gvals, gkeys, rval', () => {
  const s = new FluxionStore();
  s.setValue('cfg', 'env.prod', 'v1');
  s.setValue('cfg', 'env.dev', 'v2');
  s.setValue('cfg', 'other', 'v3');
  assert.equal(s.getValue('cfg', 'env.test'), '');
  assert.deepEqual({ ...s.getValues('cfg', '/^env/') }, { 'env.prod': 'v1', 'env.dev': 'v2' });
  assert.deepEqual({ ...s.getValues('cfg', 'missing') }, { missing: '' });
  assert.deepEqual({ ...s.getValues('nocol', 'k') }, {});
  assert.deepEqual(s.getKeys('cfg').sort(), ['env.dev', 'env.prod', 'other']);
  s.removeValue('cfg', 'other');
  assert.deepEqual({ ...s.getAllValues('cfg') }, { 'env.prod': 'v1', 'env.dev': 'v2' });
  s.setValue('cfg', '__proto__', 'safe');
  assert.equal(s.getAllValues('cfg')['__proto__'], 'safe');
  assert.equal(s.stats().keyValues, 3);
});
