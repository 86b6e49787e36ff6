import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { createLogger } from '../util/index.js';
import { FluxionMetrics } from './metrics.js';
import type { CommitLog } from './persistence.js';
import { FluxionServer, type ServerOptions } from './server.js';
import { FluxionService } from './service.js';
import { FluxionStore } from './store.js';

/** Commit log that makes records durable after `delayMs` (a slow disk). */
class SlowLog implements CommitLog {
  readonly durable = true;
  readonly writable = true;
  constructor(private readonly delayMs: number) {}
  append(_op: number, _p: string, cb: (err: Error | null) => void): void { setTimeout(() => cb(null), this.delayMs); }
  async close(): Promise<void> {}
}

async function serve(opts: Partial<ServerOptions> = {}, log: CommitLog = new SlowLog(0)): Promise<{ server: FluxionServer; url: string }> {
  const store = new FluxionStore();
  const service = new FluxionService({ store, log, masterKey: 'k' });
  const server = new FluxionServer(service, new FluxionMetrics({ stats: () => store.stats(), connections: () => 0 }, false), createLogger('test'), {
    host: '127.0.0.1', port: 0, ...opts,
  });
  const addr = await server.listen();
  return { server, url: `ws://127.0.0.1:${addr.port}/?api-key=k` };
}

function open(url: string): Promise<{ ws: WebSocket; frames: string[]; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const frames: string[] = [];
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    ws.on('message', (m) => frames.push(String(m)));
    ws.once('message', () => resolve({ ws, frames, closed }));
    ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

test('a connection that stops answering pings is dropped after the idle timeout', async () => {
  const { server, url } = await serve({ idleTimeoutMs: 200 });
  const c = await open(url);
  c.ws.pause(); // no pongs, no reads
  for (let i = 0; i < 100 && server.connectionCount > 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(server.connectionCount, 0);
  c.ws.terminate();
  await server.close(100);
});

test('connections beyond connectionsMax get HTTP 503 at the upgrade', async () => {
  const { server, url } = await serve({ connectionsMax: 1 });
  const a = await open(url);
  await assert.rejects(open(url), /HTTP 503/);
  a.ws.close();
  await a.closed;
  await server.close(100);
});

test('graceful close answers in-flight writes before closing with 1001 and refuses new connections', async () => {
  const { server, url } = await serve({}, new SlowLog(100));
  const c = await open(url);
  c.ws.send(JSON.stringify({ id: 'w', type: 'ins', data: '[{"col":"c","doc":"d","ts":1,"data":"x"}]' }));
  await new Promise((r) => setTimeout(r, 20));
  const closing = server.close(5_000);
  assert.equal(await c.closed, 1001);
  assert.deepEqual(c.frames.slice(1), ['{"id":"w"}']);
  await closing;
  await assert.rejects(open(url));
});

test('reading pauses at inFlightMax and resumes as replies drain; every request is answered', async () => {
  const { server, url } = await serve({ inFlightMax: 4 }, new SlowLog(5));
  const c = await open(url);
  const n = 50;
  const done = new Promise<void>((resolve) => c.ws.on('message', () => { if (c.frames.length === n + 1) resolve(); }));
  for (let i = 0; i < n; i++) c.ws.send(JSON.stringify({ id: `i${i}`, type: 'ins', data: `[{"col":"c","doc":"d","ts":${i + 1},"data":"x"}]` }));
  await done;
  assert.deepEqual(c.frames.slice(1).map((f) => JSON.parse(f).id), Array.from({ length: n }, (_, i) => `i${i}`));
  c.ws.close();
  await server.close(100);
});

test('connection caps: per scoped key (429) and slots reserved for the master key (503 for scoped keys only)', async (t) => {
  const store = new FluxionStore();
  store.putApiKey('r', 'readonly');
  store.putApiKey('r2', 'readonly');
  const service = new FluxionService({ store, log: new SlowLog(0), masterKey: 'k' });
  const server = new FluxionServer(service, new FluxionMetrics({ stats: () => store.stats(), connections: () => 0 }, false), createLogger('test'), {
    host: '127.0.0.1', port: 0, connectionsMax: 5, connectionsPerKeyMax: 2, masterConnectionsReserved: 2,
  });
  const { port } = await server.listen();
  t.after(() => server.close(100));
  const url = (key: string): string => `ws://127.0.0.1:${port}/?api-key=${key}`;
  const r1 = await open(url('r'));
  await open(url('r'));
  await assert.rejects(open(url('r')), /HTTP 429/);
  await open(url('r2'));
  await assert.rejects(open(url('r2')), /HTTP 503/); // 3 scoped = 5 - 2 reserved
  await open(url('k'));
  await open(url('k'));
  await assert.rejects(open(url('k')), /HTTP 503/); // 5 in all
  r1.ws.close();
  await r1.closed;
  await new Promise((r) => setTimeout(r, 50));
  await open(url('r')); // its slot is free again
  assert.equal(server.connectionCount, 5);
  assert.equal(service.sessionCount, 5);
});

test('plain HTTP: /openapi.json is the document of the routes served; another method there is 405, other paths 426', async () => {
  const { server, url } = await serve();
  const base = url.replace('ws://', 'http://').replace(/\/\?.*$/, '');
  const doc = await (await fetch(`${base}/openapi.json`)).json() as { openapi: string; paths: Record<string, Record<string, unknown>> };
  assert.equal(doc.openapi, '3.0.3');
  assert.deepEqual(Object.keys(doc.paths), ['/health', '/metrics', '/openapi.json']);
  assert.equal((await fetch(`${base}/health`)).status, 200);
  const post = await fetch(`${base}/health`, { method: 'POST' });
  assert.deepEqual([post.status, post.headers.get('allow')], [405, 'GET']);
  assert.equal((await fetch(`${base}/elsewhere`)).status, 426);
  await server.close(100);
});
