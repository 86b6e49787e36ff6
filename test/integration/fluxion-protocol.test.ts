/**
 * Protocol tests against a real `fluxiond`: the replayable examples of the spec (§9), every
 * message type, scope enforcement, bad-input handling and the HTTP endpoints.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Client, startDaemon, type Daemon, type Frame } from './fluxion-harness.js';

const sortBy = <T>(xs: T[], key: (x: T) => string): T[] => [...xs].sort((a, b) => key(a).localeCompare(key(b)));

describe('spec §9 replayable examples (fresh server, --secret-key=s3cret)', () => {
  let d: Daemon;
  let probe: Client;
  before(async () => { d = await startDaemon(['--secret-key=s3cret']); });
  after(async () => { await d.kill(); });

  test('1: unknown key → HTTP 401 "Unknown API key"; missing key → "Missing API key parameter"', async () => {
    await assert.rejects(Client.connect(d.url('api-key=nope')), (e: { status?: number; body?: string }) => e.status === 401 && e.body === 'Unknown API key');
    await assert.rejects(Client.connect(d.url('name=x')), (e: { status?: number; body?: string }) => e.status === 401 && e.body === 'Missing API key parameter');
  });

  test('2: the first frame is ready', async () => {
    probe = await Client.connect(d.url('api-key=s3cret&name=probe'));
    assert.deepEqual(probe.frames[0], { message: 'Authentication successful', type: 'ready' });
  });

  test('3–11: inserts, qry, qdoc, overwrite, drrng', async () => {
    const raw = (id: string, type: string, data: string): Promise<Frame> => probe.request(type, data, id);
    assert.deepEqual(await raw('i1', 'ins', '[{"col":"sensors","doc":"dev-1","ts":100,"data":"state:on q:ok"},{"col":"sensors","doc":"dev-1","ts":200,"data":"state:off q:bad"},{"col":"sensors","doc":"dev-2","ts":150,"data":"state:on q:ok"}]'), { id: 'i1' });
    assert.deepEqual(await raw('q1', 'qry', '{"col":"sensors","ts":1000}'),
      { id: 'q1', records: { 'dev-1': { ts: 200, data: 'state:off q:bad' }, 'dev-2': { ts: 150, data: 'state:on q:ok' } } });
    assert.deepEqual(await raw('q2', 'qry', '{"col":"sensors","ts":120}'), { id: 'q2', records: { 'dev-1': { ts: 100, data: 'state:on q:ok' } } });
    assert.deepEqual(await raw('q3', 'qry', '{"col":"sensors","ts":1000,"filter":"q:bad"}'), { id: 'q3', records: { 'dev-2': { ts: 150, data: 'state:on q:ok' } } });
    assert.deepEqual(await raw('q4', 'qry', '{"col":"sensors","ts":1000,"doc":"/DEV-1/i","from":150}'), { id: 'q4', records: { 'dev-1': { ts: 200, data: 'state:off q:bad' } } });
    assert.deepEqual(await raw('d1', 'qdoc', '{"col":"sensors","doc":"dev-1","from":0,"to":1000,"reverse":true,"limit":1}'), { id: 'd1', records: [{ ts: 200, data: 'state:off q:bad' }] });
    assert.deepEqual(await raw('d2', 'qdoc', '{"col":"sensors","doc":"dev-1","to":1000,"where":"/STATE:ON/i"}'), { id: 'd2', records: [{ ts: 100, data: 'state:on q:ok' }] });
    assert.deepEqual(await raw('i2', 'ins', '[{"col":"sensors","doc":"dev-2","ts":150,"data":"idle"}]'), { id: 'i2' });
    assert.deepEqual(await raw('d3', 'qdoc', '{"col":"sensors","doc":"dev-2","from":0,"to":1000}'), { id: 'd3', records: [{ ts: 150, data: 'idle' }] });
    assert.deepEqual(await raw('x1', 'drrng', '{"col":"sensors","doc":"dev-1","fromTs":100,"toTs":150}'), { id: 'x1' });
    assert.deepEqual(await raw('d4', 'qdoc', '{"col":"sensors","doc":"dev-1","from":0,"to":1000}'), { id: 'd4', records: [{ ts: 200, data: 'state:off q:bad' }] });
  });

  test('12: key/values', async () => {
    assert.deepEqual(await probe.request('sval', '{"col":"cfg","key":"env.prod","value":"v1"}', 'k1'), { id: 'k1' });
    assert.deepEqual(await probe.request('gval', '{"col":"cfg","key":"env.dev"}', 'k2'), { id: 'k2', value: '' });
    assert.deepEqual(await probe.request('gvalues', '{"col":"cfg","key":"/^env/"}', 'k3'), { id: 'k3', values: { 'env.prod': 'v1' } });
  });

  test('13–14: API keys, a readonly key cannot write, conn lists every connection', async () => {
    assert.deepEqual(await probe.request('keys', '{"action":"add","key":"reader","scope":"readonly"}', 'a1'), { id: 'a1', status: 'ok', scope: 'readonly' });
    assert.deepEqual(await probe.request('keys', '{"action":"remove","key":"ghost"}', 'a2'), { id: 'a2', error: 'api key not found' });
    const reader = await Client.connect(d.url('api-key=reader'));
    assert.deepEqual(await reader.request('sval', '{"col":"cfg","key":"a","value":"b"}', 'w1'), { id: 'w1', error: 'permission denied' });
    const c1 = await reader.request('conn', '{}', 'c1') as { id: string; connections: Array<{ ip: string; since: number; name: string | null; self: boolean }> };
    assert.equal(c1.id, 'c1');
    const conns = sortBy(c1.connections, (c) => String(c.name));
    assert.equal(conns.length, 2);
    assert.deepEqual(conns.map((c) => [c.name, c.self]), [[null, true], ['probe', false]]);
    for (const c of conns) { assert.equal(c.ip.endsWith('127.0.0.1'), true); assert.equal(Number.isInteger(c.since) && c.since >= 0, true); }
    assert.equal(reader.closeCode, undefined, 'socket stays open after permission denied');
    await reader.close();
  });
});

describe('spec §9 example 15 with --compat-close (original bad-input behaviour)', () => {
  let d: Daemon;
  before(async () => { d = await startDaemon(['--secret-key=s3cret', '--compat-close']); });
  after(async () => { await d.kill(); });

  test('15: invalid payload closes with 1008 and no reply; unknown type sends an id-less error then closes', async () => {
    const a = await Client.connect(d.url('api-key=s3cret'));
    const z1 = await a.request('qdoc', '{"col":"sensors","doc":"dev-1"}', 'z1');
    assert.deepEqual(z1, { id: 'z1', closed: 1008 });
    assert.equal(a.frames.length, 1); // only ready
    const b = await Client.connect(d.url('api-key=s3cret'));
    b.sendRaw(JSON.stringify({ id: 'z2', type: 'nope', data: '{}' }));
    assert.equal(await b.closed(), 1008);
    assert.deepEqual(b.frames.slice(1), [{ error: 'Unknown message type' }]);
  });

  test('envelope errors close with 1008; auth and permission errors keep the socket open', async () => {
    const a = await Client.connect(d.url('api-key=s3cret'));
    assert.deepEqual(await a.request('auth', '{}', 'x'), { id: 'x', error: 'auth messages are not supported; use the api-key query parameter' });
    a.sendRaw('{"id":"e1","type":"qry"}');
    assert.equal(await a.closed(), 1008);
  });
});

describe('every message type, scopes and bad input (default policy: reply with the id)', () => {
  let d: Daemon;
  let m: Client;
  before(async () => {
    d = await startDaemon(['--secret-key', 'master', '--message-bytes-max', '64Ki']);
    m = await Client.connect(d.url('api-key=master&name=admin'));
  });
  after(async () => { await d.kill(); });

  test('records: ins, qry, qdoc, drec, dmrec, drrng, ddoc, dcol, cols', async () => {
    const recs = [];
    for (let i = 1; i <= 20; i++) recs.push({ col: 'm', doc: `d${i % 2}`, ts: i, data: `n=${i}` });
    assert.deepEqual(await m.request('ins', recs), { id: 'r1' });
    assert.deepEqual(await m.request('ins', [{ col: 'm', doc: 'd0', ts: 5, data: 'late' }]), { id: 'r2' }); // out of order
    assert.deepEqual((await m.request('qdoc', { col: 'm', doc: 'd0', to: 6 })).records, [{ ts: 2, data: 'n=2' }, { ts: 4, data: 'n=4' }, { ts: 5, data: 'late' }, { ts: 6, data: 'n=6' }]);
    assert.deepEqual(await m.request('drec', { col: 'm', doc: 'd0', ts: 5 }, 'x'), { id: 'x' });
    assert.deepEqual(await m.request('dmrec', [{ col: 'm', doc: 'd0', ts: 2 }, { col: 'm', doc: 'd0', ts: 4 }]), { id: 'r4' });
    assert.deepEqual(await m.request('drrng', { col: 'm', doc: 'd1', fromTs: 1, toTs: 17 }), { id: 'r5' });
    const latest = (await m.request('qry', { col: 'm', ts: 100 })).records;
    assert.deepEqual(latest, { d0: { ts: 20, data: 'n=20' }, d1: { ts: 19, data: 'n=19' } });
    assert.deepEqual((await m.request('qdoc', { col: 'm', doc: 'd0', from: 0, to: 100, where: 'n=1', limit: 2 })).records, [{ ts: 10, data: 'n=10' }, { ts: 12, data: 'n=12' }]);
    await m.request('ins', [{ col: 'other', doc: 'd1', ts: 1, data: 'x' }]);
    await m.request('sval', { col: 'kvonly', key: 'k', value: 'v' });
    assert.deepEqual(((await m.request('cols', '{}')).collections as string[]).sort(), ['kvonly', 'm', 'other']);
    assert.deepEqual(await m.request('ddoc', { doc: 'd1' }, 'dd'), { id: 'dd' }); // every collection
    assert.deepEqual(((await m.request('cols', '{}')).collections as string[]).sort(), ['kvonly', 'm']);
    assert.deepEqual(await m.request('dcol', { col: 'm' }, 'dc'), { id: 'dc' });
    assert.deepEqual(await m.request('dcol', { col: 'never-existed' }, 'dc2'), { id: 'dc2' });
    assert.deepEqual((await m.request('qry', { col: 'm', ts: 100 })).records, {});
    assert.deepEqual((await m.request('qdoc', { col: 'm', doc: 'd0', to: 100 })).records, []);
  });

  test('key/values: sval, gval, gvalues, gvals, gkeys, rval', async () => {
    await m.request('sval', { col: 'kv', key: 'a', value: '1' });
    await m.request('sval', { col: 'kv', key: 'ab', value: '2' });
    await m.request('sval', { col: 'kv', key: 'a', value: '3' });
    assert.equal((await m.request('gval', { col: 'kv', key: 'a' })).value, '3');
    assert.deepEqual((await m.request('gvalues', { col: 'kv', key: 'zz' })).values, { zz: '' });
    assert.deepEqual((await m.request('gvalues', { col: 'none', key: 'zz' })).values, {});
    assert.deepEqual((await m.request('gvalues', { col: 'kv', key: '/^A/i' })).values, { a: '3', ab: '2' });
    assert.deepEqual((await m.request('gvals', { col: 'kv' })).values, { a: '3', ab: '2' });
    assert.deepEqual(((await m.request('gkeys', { col: 'kv' })).keys as string[]).sort(), ['a', 'ab']);
    assert.deepEqual(await m.request('rval', { col: 'kv', key: 'a' }, 'rv'), { id: 'rv' });
    assert.deepEqual((await m.request('gvals', { col: 'kv' })).values, { ab: '2' });
    assert.deepEqual((await m.request('gkeys', { col: 'nope' })).keys, []);
  });

  test('scopes per message type; removing a key downgrades live sessions to readonly', async () => {
    for (const [key, scope] of [['ro', 'readonly'], ['rw', 'read_write'], ['rwd', 'read-write-delete']] as const) {
      assert.equal((await m.request('keys', { action: 'add', key, scope })).status, 'ok');
    }
    const ro = await Client.connect(d.url('api-key=ro'));
    const rw = await Client.connect(d.url('api-key=rw'));
    const rwd = await Client.connect(d.url('api-key=rwd'));
    const denied = { error: 'permission denied' };
    const ins = [{ col: 's', doc: 'd', ts: 1, data: 'x' }];
    const strip = (f: Frame): Frame => { const { id: _id, ...rest } = f; return rest; };
    assert.deepEqual(strip(await ro.request('ins', ins)), denied);
    assert.deepEqual(strip(await ro.request('sval', { col: 's', key: 'k', value: 'v' })), denied);
    for (const [type, data] of [['ddoc', { doc: 'd' }], ['dcol', { col: 's' }], ['drec', { col: 's', doc: 'd', ts: 1 }], ['dmrec', []],
      ['drrng', { col: 's', doc: 'd', fromTs: 1, toTs: 2 }], ['rval', { col: 's', key: 'k' }]] as const) {
      assert.deepEqual(strip(await ro.request(type, data)), denied, `readonly ${type}`);
      assert.deepEqual(strip(await rw.request(type, data)), denied, `read_write ${type}`);
    }
    assert.deepEqual(strip(await ro.request('keys', { action: 'list' })), denied);
    assert.deepEqual(strip(await ro.request('qry', { col: 's', ts: 5 })), { records: {} });
    assert.deepEqual(strip(await rw.request('ins', ins)), {});
    assert.deepEqual(strip(await rwd.request('drec', { col: 's', doc: 'd', ts: 1 })), {});
    assert.deepEqual(strip(await rwd.request('keys', { action: 'list' })), { error: 'only the master key may manage API keys' });
    assert.deepEqual(await m.request('keys', { action: 'remove', key: 'rw' }, 'rm'), { id: 'rm', status: 'ok' });
    assert.deepEqual(strip(await rw.request('ins', ins)), denied);
    assert.equal(rw.closeCode, undefined);
    await assert.rejects(Client.connect(d.url('api-key=rw')), (e: { status?: number }) => e.status === 401);
    const listed = (await m.request('keys', { action: 'list' })).keys as Array<{ key: string; scope: string; deletable: boolean }>;
    assert.deepEqual(sortBy(listed, (k) => k.key), [
      { key: 'master', scope: 'read_write_delete', deletable: false },
      { key: 'ro', scope: 'readonly', deletable: true },
      { key: 'rwd', scope: 'read_write_delete', deletable: true },
    ]);
    await Promise.all([ro.close(), rw.close(), rwd.close()]);
  });

  test('bad input gets an error with the request id and the connection and data stay intact', async () => {
    const c = await Client.connect(d.url('api-key=master'));
    await c.request('ins', [{ col: 'bad', doc: 'd', ts: 1, data: 'keep' }]);
    assert.deepEqual(await c.request('qry', 'not json', 'b1'), { id: 'b1', error: 'qry: data is not valid JSON' });
    assert.deepEqual(await c.request('ins', '{"col":"bad"}', 'b2'), { id: 'b2', error: 'ins: data must be a JSON array' });
    assert.deepEqual(await c.request('ins', '[{"col":"bad","doc":"d","ts":2,"data":"x"}, 7]', 'b3'), { id: 'b3', error: 'ins: element 1 must be an object' });
    assert.deepEqual(await c.request('qdoc', { col: 'bad', doc: 'd' }, 'b4'), { id: 'b4', error: 'qdoc: `to` must be a positive integer' });
    assert.deepEqual(await c.request('dmrec', [{ col: 'bad', doc: 'd', ts: 1 }, { col: 'bad' }], 'b5'), { id: 'b5', error: 'dmrec: `col` and `doc` are required' });
    assert.deepEqual(await c.request('nope', '{}', 'b6'), { id: 'b6', error: 'Unknown message type' });
    assert.deepEqual(await c.request('sval', { col: 'bad', key: 'k', value: 7 }, 'b7'), { id: 'b7', error: 'sval: `col`, `key` and `value` must be non-empty strings' });
    const big = 'x'.repeat(70 * 1024);
    assert.deepEqual(await c.request('ins', [{ col: 'bad', doc: 'd', ts: 3, data: big }], 'b8'),
      { id: 'b8', error: `request too large: ${JSON.stringify({ id: 'b8', type: 'ins', data: JSON.stringify([{ col: 'bad', doc: 'd', ts: 3, data: big }]) }).length} bytes exceeds the limit of 65536 bytes` });
    c.sendRaw('{"id":"b9","type":"qry"}');
    c.sendRaw('[1,2]');
    c.sendRaw('{{{');
    assert.deepEqual(await c.request('qdoc', { col: 'bad', doc: 'd', to: 10 }, 'ok'), { id: 'ok', records: [{ ts: 1, data: 'keep' }] });
    assert.deepEqual(c.frames.filter((f) => f.id === 'b9' || f.id === undefined).slice(1), [
      { id: 'b9', error: 'invalid request envelope: `id`, `type` and `data` must be non-empty strings' },
      { error: 'invalid request envelope: frame is not a JSON object' },
      { error: 'invalid request envelope: frame is not a JSON object' },
    ]);
    assert.equal(c.closeCode, undefined);
    c.ws.send(Buffer.from('{}'), { binary: true });
    assert.equal(await c.closed(), 1003);
  });

  test('pipelined requests are answered in order, each exactly once', async () => {
    const c = await Client.connect(d.url('api-key=master'));
    const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 === 0
      ? c.request('ins', [{ col: 'pipe', doc: 'd', ts: i + 1, data: String(i) }], `p${i}`)
      : c.request('qdoc', { col: 'pipe', doc: 'd', to: 1_000_000 }, `p${i}`))));
    replies.forEach((r, i) => { if (i % 2 === 1) assert.equal((r.records as unknown[]).length, (i + 1) / 2, `read ${i} sees earlier writes`); });
    const ids = c.frames.slice(1).map((f) => f.id);
    assert.deepEqual(ids, Array.from({ length: 200 }, (_, i) => `p${i}`));
    await c.close();
  });

  test('GET /health and /metrics share the listener; other HTTP requests get 426', async () => {
    const base = `http://127.0.0.1:${d.port}`;
    const health = await (await fetch(`${base}/health`)).json() as Record<string, unknown>;
    assert.equal(health.status, 'ok');
    assert.equal(health.durable, false);
    assert.equal(health.writable, true);
    assert.equal(typeof health.records, 'number');
    const metrics = await (await fetch(`${base}/metrics`)).text();
    for (const name of ['fluxion_records', 'fluxion_documents', 'fluxion_collections', 'fluxion_connections', 'fluxion_wal_fsync_seconds', 'fluxion_memory_rss_bytes', 'fluxion_requests_total']) {
      assert.match(metrics, new RegExp(`^${name}`, 'm'));
    }
    assert.equal((await fetch(`${base}/whatever`)).status, 426);
  });

  test('any URL path is accepted for the upgrade', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${d.port}/some/path?api-key=master`);
    const first = await new Promise<string>((resolve, reject) => { ws.once('message', (m) => resolve(String(m))); ws.once('error', reject); });
    assert.equal(JSON.parse(first).type, 'ready');
    ws.close();
  });
});
