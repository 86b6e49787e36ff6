/**
 * Hostile patterns against a real `fluxiond`: catastrophic regexes from a readonly key (RE2, so
 * they answer at once, and /health stays responsive during a flood) and the per-query time budget.
 * Timings are only bounded generously ("answers within 2 s"), to tell "answers" from "hangs".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { Client, startDaemon, waitForLog, type Daemon, type Frame } from './fluxion-harness.js';

const EVIL = '/(a+)+$/';
const NAME_31 = `${'a'.repeat(30)}!`;
const NAME_10K = `${'a'.repeat(9999)}!`;

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms))]);
}

function health(d: Daemon): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    get(`http://127.0.0.1:${d.port}/health`, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) as Record<string, unknown> }));
    }).on('error', reject);
  });
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, performance.now() - t0];
}

test('/(a+)+$/ from a readonly key answers in milliseconds (31- and 10,000-character names, where, gvalues)', async (t) => {
  const d = await startDaemon(['--secret-key', 'k']);
  t.after(() => d.kill('SIGKILL'));
  const m = await Client.connect(d.url('api-key=k'));
  await m.request('ins', [
    { col: 'evil', doc: NAME_31, ts: 1, data: NAME_31 },
    { col: 'evil', doc: NAME_10K, ts: 1, data: NAME_10K },
    { col: 'evil10k', doc: NAME_10K, ts: 1, data: NAME_10K },
  ]);
  await m.request('sval', { col: 'evil', key: NAME_31, value: 'v' });
  await m.request('keys', { action: 'add', key: 'reader', scope: 'readonly' });
  const r = await Client.connect(d.url('api-key=reader'));
  const cases: Array<[string, string, unknown]> = [
    ['qry doc, 31-character name', 'qry', { col: 'evil', ts: 10, doc: EVIL }],
    ['qry doc, 10,000-character name', 'qry', { col: 'evil10k', ts: 10, doc: EVIL }],
    ['qry where', 'qry', { col: 'evil', ts: 10, where: EVIL }],
    ['qdoc where, 10,000 characters', 'qdoc', { col: 'evil', doc: NAME_10K, to: 10, where: EVIL }],
    ['gvalues', 'gvalues', { col: 'evil', key: EVIL }],
  ];
  for (const [what, type, data] of cases) {
    const [reply, ms] = await timed(() => within(r.request(type, data), 2000, what));
    assert.equal(reply.error, undefined, `${what}: ${JSON.stringify(reply)}`);
    t.diagnostic(`${what}: ${ms.toFixed(1)} ms`);
  }
  // Nothing matches (every name ends with "!"), and the server is still fine.
  assert.deepEqual((await r.request('qry', { col: 'evil', ts: 10, doc: EVIL })).records, {});
  assert.deepEqual((await r.request('gvalues', { col: 'evil', key: EVIL })).values, {});
  // A backreference cannot run on RE2: an error reply, the socket stays open.
  assert.match(String((await r.request('qry', { col: 'evil', ts: 10, doc: '/(a)\\1/' })).error), /unsupported regular expression/);
  assert.deepEqual(Object.keys((await r.request('qry', { col: 'evil', ts: 10, doc: '/^a{30}!$/' })).records as object), [NAME_31]);
});

test('/health and other connections stay responsive during a flood of hostile queries', async (t) => {
  const d = await startDaemon(['--secret-key', 'k']);
  t.after(() => d.kill('SIGKILL'));
  const m = await Client.connect(d.url('api-key=k'));
  await m.request('ins', Array.from({ length: 200 }, (_, i) => ({ col: 'evil', doc: `${'a'.repeat(30 + (i % 50))}!${i}`, ts: 1, data: NAME_31 })));
  await m.request('keys', { action: 'add', key: 'reader', scope: 'readonly' });
  const attackers = await Promise.all(Array.from({ length: 4 }, () => Client.connect(d.url('api-key=reader'))));
  let stop = false;
  let sent = 0;
  const flood = attackers.map(async (a) => {
    while (!stop) {
      const batch: Array<Promise<Frame>> = [];
      for (let i = 0; i < 50; i++) {
        batch.push(a.request('qry', { col: 'evil', ts: 10, doc: EVIL, where: EVIL }));
        batch.push(a.request('gvalues', { col: 'evil', key: EVIL }));
      }
      sent += batch.length;
      await Promise.all(batch);
    }
  });
  const healthMs: number[] = [];
  const otherMs: number[] = [];
  try {
    for (let i = 0; i < 10; i++) {
      const [h, ms] = await timed(() => within(health(d), 2000, '/health during the flood'));
      assert.equal(h.status, 200);
      healthMs.push(ms);
      const [, ms2] = await timed(() => within(m.request('gval', { col: 'evil', key: 'x' }), 2000, 'master gval during the flood'));
      otherMs.push(ms2);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    stop = true;
    // A server that hangs would never answer the flood: drop the attackers rather than wait.
    await Promise.race([Promise.all(flood), new Promise((r) => setTimeout(r, 5000))]);
    for (const a of attackers) a.ws.terminate();
  }
  t.diagnostic(`${sent} hostile requests; /health max ${Math.max(...healthMs).toFixed(1)} ms, master gval max ${Math.max(...otherMs).toFixed(1)} ms`);
});

test('a scan past --query-budget-ms stops with a clear error; other requests are unaffected', async (t) => {
  const d = await startDaemon(['--secret-key', 'k', '--query-budget-ms', '1']);
  t.after(() => d.kill('SIGKILL'));
  const m = await Client.connect(d.url('api-key=k'));
  for (let b = 0; b < 10; b++) {
    await m.request('ins', Array.from({ length: 10_000 }, (_, i) => ({ col: 'big', doc: `doc-${b}-${i}-${'x'.repeat(40)}`, ts: 1, data: 'y'.repeat(200) })));
  }
  const reply = await within(m.request('qry', { col: 'big', ts: 10, doc: '/doc-.*-z/', where: '/y+z/' }), 5000, 'budgeted scan');
  assert.match(String(reply.error), /qry: query stopped after exceeding its time budget of 1 ms \(--query-budget-ms\)/);
  assert.equal((await m.request('qry', { col: 'big', ts: 10, doc: `doc-0-0-${'x'.repeat(40)}` })).error, undefined);
  assert.ok(await waitForLog(d, (l) => l.includes('"query_budget_exceeded"')), 'query_budget_exceeded is logged');
});
