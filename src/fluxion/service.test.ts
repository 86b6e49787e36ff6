import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../util/index.js';
import { DurableLog, MemoryCommitLog, type CommitLog } from './persistence.js';
import { PayloadError } from './protocol.js';
import { AuthError, FluxionService, UnknownTypeError, type Reply } from './service.js';
import { FluxionStore } from './store.js';

/** A commit log whose fsyncs complete only when the test says so. */
class ManualLog implements CommitLog {
  readonly durable = true;
  readonly writable = true;
  pending: Array<(err: Error | null) => void> = [];
  append(_op: number, _payload: string, cb: (err: Error | null) => void): void { this.pending.push(cb); }
  complete(err: Error | null = null): void { const p = this.pending; this.pending = []; for (const cb of p) cb(err); }
  async close(): Promise<void> {}
}

const ins = (doc: string, ts: number, data = 'x'): string => JSON.stringify([{ col: 'c', doc, ts, data }]);

test('writes apply only once durable; a session reads its own writes and gets replies in order', async () => {
  const log = new ManualLog();
  const svc = new FluxionService({ store: new FluxionStore(), log, masterKey: 'm' });
  const a = svc.openSession('m', '127.0.0.1', 'a');
  const b = svc.openSession('m', '127.0.0.1', '');
  const order: string[] = [];
  const w = Promise.resolve(svc.handle(a, 'ins', ins('d', 1))).then((r) => { order.push('w'); return r; });
  const r = Promise.resolve(svc.handle(a, 'qdoc', '{"col":"c","doc":"d","to":10}')).then((x) => { order.push('r'); return x; });
  // Another session does not wait, and does not see the undurable write.
  assert.deepEqual(svc.handle(b, 'qdoc', '{"col":"c","doc":"d","to":10}'), { records: [] });
  await new Promise((res) => setImmediate(res));
  assert.deepEqual(order, []);
  log.complete();
  assert.deepEqual(await w, {});
  assert.deepEqual(await r, { records: [{ ts: 1, data: 'x' }] });
  assert.deepEqual(order, ['w', 'r']);
  assert.equal(a.inFlight, 0);
});

test('pipelined writes of one session are appended together (group commit) and answered in order', async () => {
  const log = new ManualLog();
  const svc = new FluxionService({ store: new FluxionStore(), log, masterKey: 'm' });
  const s = svc.openSession('m', '', '');
  const done: number[] = [];
  const writes = [1, 2, 3].map((i) => Promise.resolve(svc.handle(s, 'ins', ins('d', i))).then(() => done.push(i)));
  assert.equal(log.pending.length, 3, 'all three appended before the first fsync completes');
  const read = svc.handle(s, 'qdoc', '{"col":"c","doc":"d","to":10}');
  const late = svc.handle(s, 'ins', ins('d', 4)); // behind a read: must not be visible to it
  assert.equal(log.pending.length, 3);
  log.complete();
  await Promise.all(writes);
  assert.deepEqual(done, [1, 2, 3]);
  assert.equal(((await read) as { records: unknown[] }).records.length, 3);
  await new Promise((res) => setImmediate(res));
  assert.equal(log.pending.length, 1);
  log.complete();
  assert.deepEqual(await late, {});
});

test('a failed fsync answers with an error and applies nothing', async () => {
  const log = new ManualLog();
  const svc = new FluxionService({ store: new FluxionStore(), log, masterKey: 'm' });
  const s = svc.openSession('m', '', '');
  const w = svc.handle(s, 'ins', ins('d', 1));
  log.complete(new Error('disk on fire'));
  assert.deepEqual(await w, { error: 'internal error' });
  assert.equal(svc.store.stats().records, 0);
});

test('authentication, scopes and API key management', async () => {
  const svc = new FluxionService({ store: new FluxionStore(), log: new MemoryCommitLog(), masterKey: 's3cret' });
  assert.throws(() => svc.openSession('', '', ''), (e: unknown) => e instanceof AuthError && e.message === 'Missing API key parameter');
  assert.throws(() => svc.openSession('nope', '', ''), (e: unknown) => e instanceof AuthError && e.message === 'Unknown API key');
  const m = svc.openSession('s3cret', '', '');
  const call = async (s: ReturnType<typeof svc.openSession>, type: string, data: unknown): Promise<Reply> =>
    svc.handle(s, type, typeof data === 'string' ? data : JSON.stringify(data));
  assert.deepEqual(await call(m, 'keys', { action: 'add', key: 'r', scope: 'Read-Only' }), { status: 'ok', scope: 'readonly' });
  assert.deepEqual(await call(m, 'keys', { action: 'add', key: 'rw', scope: 'READ_WRITE' }), { status: 'ok', scope: 'read_write' });
  assert.deepEqual(await call(m, 'keys', { action: 'add', key: 'rwd', scope: 'read write delete' }), { status: 'ok', scope: 'read_write_delete' });
  assert.deepEqual(await call(m, 'keys', { action: 'add', key: 'x', scope: 'admin' }), { error: 'invalid scope' });
  assert.deepEqual(await call(m, 'keys', { action: 'add', key: '', scope: 'readonly' }), { error: 'api key cannot be empty' });
  assert.deepEqual(await call(m, 'keys', { action: 'remove', key: 's3cret' }), { error: 'api key cannot be removed' });
  assert.deepEqual(await call(m, 'keys', { action: 'remove', key: 'ghost' }), { error: 'api key not found' });
  assert.deepEqual(await call(m, 'keys', { action: 'rotate' }), { error: 'unknown action' });
  const r = svc.openSession('r', '', '');
  const rw = svc.openSession('rw', '', '');
  const rwd = svc.openSession('rwd', '', '');
  assert.deepEqual(await call(r, 'ins', ins('d', 1)), { error: 'permission denied' });
  assert.deepEqual(await call(r, 'ddoc', { doc: 'd' }), { error: 'permission denied' });
  assert.deepEqual(await call(rw, 'ins', ins('d', 1)), {});
  assert.deepEqual(await call(rw, 'drec', { col: 'c', doc: 'd', ts: 1 }), { error: 'permission denied' });
  assert.deepEqual(await call(rw, 'keys', { action: 'list' }), { error: 'permission denied' });
  assert.deepEqual(await call(rwd, 'keys', { action: 'list' }), { error: 'only the master key may manage API keys' });
  assert.deepEqual(await call(rwd, 'drec', { col: 'c', doc: 'd', ts: 1 }), {});
  assert.deepEqual(await call(r, 'auth', '{}'), { error: 'auth messages are not supported; use the api-key query parameter' });
  // Live scope changes: re-adding upgrades, removing downgrades to readonly without disconnecting.
  await call(m, 'keys', { action: 'add', key: 'r', scope: 'read_write' });
  assert.deepEqual(await call(r, 'ins', ins('d', 2)), {});
  await call(m, 'keys', { action: 'remove', key: 'rw' });
  assert.equal(rw.scope, 'readonly');
  assert.deepEqual(await call(rw, 'ins', ins('d', 3)), { error: 'permission denied' });
  const listed = (await call(m, 'keys', { action: 'list' })) as { keys: Array<{ key: string; scope: string; deletable: boolean }> };
  assert.deepEqual(listed.keys.sort((x, y) => x.key.localeCompare(y.key)), [
    { key: 'r', scope: 'read_write', deletable: true },
    { key: 'rwd', scope: 'read_write_delete', deletable: true },
    { key: 's3cret', scope: 'read_write_delete', deletable: false },
  ]);
  assert.throws(() => svc.handle(m, 'nope', '{}'), UnknownTypeError);
  assert.throws(() => svc.handle(m, 'qry', '{"col":"c"}'), PayloadError);
  // Adding the master key's own string answers ok with the requested scope but changes nothing.
  assert.deepEqual(await call(m, 'keys', { action: 'add', key: 's3cret', scope: 'readonly' }), { status: 'ok', scope: 'readonly' });
  assert.equal(svc.openSession('s3cret', '', '').scope, 'read_write_delete');
  assert.equal(svc.store.apiKeyScope('s3cret'), undefined);
  // conn lists every session and marks the caller.
  const conns = (await call(m, 'conn', '{}')) as { connections: Array<{ self: boolean; name: string | null }> };
  assert.equal(conns.connections.length, 5);
  assert.ok(conns.connections.every((c) => c.name === null)); // empty handshake name → null
  assert.equal(conns.connections.filter((c) => c.self).length, 1);
});

test('the memory limit refuses ins and sval but not reads or deletes', async () => {
  let used = 10;
  const svc = new FluxionService({ store: new FluxionStore(), log: new MemoryCommitLog(), masterKey: 'm', memoryBytesMax: 100, memoryUsedBytes: () => used });
  const s = svc.openSession('m', '', '');
  assert.deepEqual(await svc.handle(s, 'ins', ins('d', 1)), {});
  used = 100;
  const refused = (await svc.handle(s, 'ins', ins('d', 2))) as { error: string };
  assert.match(refused.error, /^memory limit reached .*insert refused/);
  assert.match(((await svc.handle(s, 'sval', '{"col":"c","key":"k","value":"v"}')) as { error: string }).error, /memory limit/);
  assert.deepEqual(await svc.handle(s, 'qdoc', '{"col":"c","doc":"d","to":10}'), { records: [{ ts: 1, data: 'x' }] });
  assert.deepEqual(await svc.handle(s, 'drec', '{"col":"c","doc":"d","ts":1}'), {});
  assert.equal(svc.store.stats().records, 0);
});

test('DurableLog: everything acknowledged, scoped keys included, survives reopen and snapshots', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fluxion-durable-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const log = createLogger('test');
  const open = async (): Promise<{ svc: FluxionService; dl: DurableLog }> => {
    const store = new FluxionStore();
    const dl = await DurableLog.open({ dir, store, masterKey: 'm', log, snapshotWalBytes: 2 ** 40, segmentBytesMax: 4096 });
    return { svc: new FluxionService({ store, log: dl, masterKey: 'm' }), dl };
  };
  let { svc, dl } = await open();
  let s = svc.openSession('m', '', '');
  for (let i = 0; i < 200; i++) await svc.handle(s, 'ins', ins(`d${i % 7}`, i + 1, `v${i}`));
  await svc.handle(s, 'sval', '{"col":"kv","key":"k","value":"v"}');
  await svc.handle(s, 'keys', '{"action":"add","key":"reader","scope":"readonly"}');
  await svc.handle(s, 'drrng', '{"col":"c","doc":"d0","fromTs":1,"toTs":50}');
  await dl.snapshot();
  assert.equal(readdirSync(dir).filter((f) => f.endsWith('.snap')).length, 1);
  const walBefore = readdirSync(dir).filter((f) => f.startsWith('wal-')).length;
  assert.ok(walBefore <= 2, `old segments purged, ${walBefore} left`);
  for (let i = 200; i < 300; i++) await svc.handle(s, 'ins', ins(`d${i % 7}`, i + 1, `v${i}`));
  await svc.handle(s, 'dcol', '{"col":"gone"}');
  const before = svc.store.stats();
  const q = '{"col":"c","doc":"d3","to":1000}';
  const hist = await svc.handle(s, 'qdoc', q);
  await dl.close();
  ({ svc, dl } = await open());
  assert.ok(dl.recovery.snapshotRecords > 0 && dl.recovery.walRecords > 0);
  s = svc.openSession('m', '', '');
  assert.deepEqual(svc.store.stats(), before);
  assert.deepEqual(await svc.handle(s, 'qdoc', q), hist);
  assert.equal(svc.store.getValue('kv', 'k'), 'v');
  assert.equal(svc.openSession('reader', '', '').scope, 'readonly');
  await dl.close();
});

test('hostile patterns from a readonly key: qry doc, where and gvalues answer at once (RE2)', async () => {
  const svc = new FluxionService({ store: new FluxionStore(), log: new MemoryCommitLog(), masterKey: 'm' });
  const m = svc.openSession('m', '', '');
  const name = 'a'.repeat(31);
  await svc.handle(m, 'ins', JSON.stringify([{ col: 'c', doc: name, ts: 1, data: `${'a'.repeat(31)}!` }, { col: 'c', doc: `${'a'.repeat(10_000)}!`, ts: 1, data: 'x' }]));
  await svc.handle(m, 'sval', JSON.stringify({ col: 'c', key: `${'a'.repeat(31)}!`, value: 'v' }));
  await svc.handle(m, 'keys', '{"action":"add","key":"r","scope":"readonly"}');
  const r = svc.openSession('r', '', '');
  const t0 = performance.now();
  const byDoc = (await svc.handle(r, 'qry', JSON.stringify({ col: 'c', ts: 10, doc: '/(a+)+$/' }))) as { records: Record<string, unknown> };
  assert.deepEqual(Object.keys(byDoc.records), [name]); // the 10,000-character name ends with "!"
  const byWhere = (await svc.handle(r, 'qry', JSON.stringify({ col: 'c', ts: 10, where: '/(a+)+$/' }))) as { records: object };
  assert.deepEqual(Object.keys(byWhere.records), []);
  assert.deepEqual(await svc.handle(r, 'qdoc', JSON.stringify({ col: 'c', doc: name, to: 10, where: '/(a+)+$/' })), { records: [] });
  assert.deepEqual({ ...((await svc.handle(r, 'gvalues', JSON.stringify({ col: 'c', key: '/(a+)+$/' }))) as { values: object }).values }, {});
  assert.ok(performance.now() - t0 < 2000, 'JavaScript RegExp would take many seconds here');
});

test('a regex RE2 cannot run is an error reply, for every pattern field; the session stays usable', async () => {
  const svc = new FluxionService({ store: new FluxionStore(), log: new MemoryCommitLog(), masterKey: 'm' });
  const s = svc.openSession('m', '', '');
  await svc.handle(s, 'ins', ins('d', 1, 'aa'));
  const cases: Array<[string, unknown]> = [
    ['qry', { col: 'c', ts: 10, doc: '/(a)\\1/' }],
    ['qry', { col: 'c', ts: 10, where: '/(a)\\1/' }],
    ['qdoc', { col: 'c', doc: 'd', to: 10, filter: '/a(?=a)/' }],
    ['gvalues', { col: 'c', key: '/(a)\\1/' }],
    ['qry', { col: 'c', ts: 10, doc: `/${'a'.repeat(5000)}/` }],
  ];
  for (const [type, data] of cases) {
    const reply = (await svc.handle(s, type, JSON.stringify(data))) as { error?: string };
    assert.match(reply.error ?? '', /unsupported regular expression|regular expression too long/, `${type} ${JSON.stringify(data).slice(0, 80)}`);
  }
  assert.deepEqual(await svc.handle(s, 'qdoc', '{"col":"c","doc":"d","to":10,"where":"/A{2}/i"}'), { records: [{ ts: 1, data: 'aa' }] });
});

test('qry, qdoc and gvalues scans stop with an error once they exceed the query budget', async () => {
  let now = 0;
  // Every clock read advances 300 ms: a scan that reads the clock four times is over a 1 s budget.
  const svc = new FluxionService({ store: new FluxionStore(), log: new MemoryCommitLog(), masterKey: 'm', queryBudgetMs: 1000, queryClock: () => (now += 300) });
  const s = svc.openSession('m', '', '');
  const docs = Array.from({ length: 20_000 }, (_, i) => ({ col: 'c', doc: `doc-${i}`, ts: 1, data: 'x' }));
  await svc.handle(s, 'ins', JSON.stringify(docs));
  await svc.handle(s, 'ins', JSON.stringify(Array.from({ length: 20_000 }, (_, i) => ({ col: 'c', doc: 'one', ts: i + 1, data: 'x' }))));
  for (let i = 0; i < 20_000; i++) svc.store.setValue('c', `k${i}`, 'v');
  for (const [type, data] of [
    ['qry', { col: 'c', ts: 10, doc: '/doc/' }],
    ['qry', { col: 'c', ts: 10, where: '/y/' }],
    ['qdoc', { col: 'c', doc: 'one', to: 1e9, where: '/y/' }],
    ['gvalues', { col: 'c', key: '/k/' }],
  ] as const) {
    const reply = (await svc.handle(s, type, JSON.stringify(data))) as { error?: string };
    assert.match(reply.error ?? '', /query stopped after exceeding its time budget of 1000 ms/, type);
  }
  // Unlimited budget (0): the same scan completes.
  const free = new FluxionService({ store: svc.store, log: new MemoryCommitLog(), masterKey: 'm', queryBudgetMs: 0, queryClock: () => (now += 300) });
  const f = free.openSession('m', '', '');
  assert.equal(Object.keys(((await free.handle(f, 'qry', JSON.stringify({ col: 'c', ts: 10, doc: '/doc/' }))) as { records: object }).records).length, 20_000);
});

test('a single regex search whose worst case would overrun the budget is refused before it starts', async () => {
  const svc = new FluxionService({ store: new FluxionStore(), log: new MemoryCommitLog(), masterKey: 'm', queryBudgetMs: 1000 });
  const s = svc.openSession('m', '', '');
  let text = '';
  for (let i = 0; i < 1 << 20; i++) text += i % 3 === 0 ? 'a' : 'b';
  await svc.handle(s, 'ins', JSON.stringify([{ col: 'c', doc: 'big', ts: 1, data: text }]));
  // This pattern outgrows re2js's lazy DFA, so its NFA takes seconds on 1 MiB: refused up front.
  const t0 = performance.now();
  const reply = (await svc.handle(s, 'qdoc', JSON.stringify({ col: 'c', doc: 'big', to: 10, where: '/a[ab]{40}[bc]{40}/' }))) as { error?: string };
  assert.match(reply.error ?? '', /time budget of 1000 ms .*search of 1048576 characters could take up to \d+ ms/);
  assert.ok(performance.now() - t0 < 1000, 'refused without running the search');
  // A small program on the same text is well within the budget and runs.
  assert.deepEqual(await svc.handle(s, 'qdoc', JSON.stringify({ col: 'c', doc: 'big', to: 10, where: '/ba{3}/' })), { records: [] });
  assert.deepEqual(Object.keys(((await svc.handle(s, 'qry', JSON.stringify({ col: 'c', ts: 10, filter: '/bab/' }))) as { records: object }).records), []);
});
