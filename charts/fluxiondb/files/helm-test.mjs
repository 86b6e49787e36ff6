// `helm test` check of chart fluxiondb, run by the image's node:
//   1. GET <FLUXION_URL>/health answers 200 with status "ok";
//   2. a WebSocket session with the master key: the "ready" frame, an `ins` of one record into a
//      scratch collection, a `qdoc` that reads it back unchanged, and a `dcol` that removes it.
// Environment: FLUXION_URL (http://host:port), FLUXION_SECRET_KEY, APP_DIR (where node_modules
// holds `ws`; /app in the image), TEST_COLLECTION (default __helm_test), TIMEOUT_MS (default 20000).
import { createRequire } from 'node:module';

const url = process.env.FLUXION_URL;
const key = process.env.FLUXION_SECRET_KEY;
const col = process.env.TEST_COLLECTION || '__helm_test';
const timeoutMs = Number(process.env.TIMEOUT_MS || 20000);
const fail = (msg) => { console.error(`helm-test: FAIL: ${msg}`); process.exit(1); };
if (!url || !key) fail('FLUXION_URL and FLUXION_SECRET_KEY must be set');
setTimeout(() => fail(`no result within ${timeoutMs} ms`), timeoutMs).unref();

const health = await fetch(new URL('/health', url)).catch((err) => fail(`GET /health: ${err.message}`));
const body = await health.text();
if (health.status !== 200) fail(`GET /health answered ${health.status}: ${body.slice(0, 200)}`);
if (JSON.parse(body).status !== 'ok') fail(`GET /health status is not ok: ${body.slice(0, 200)}`);

const WebSocket = createRequire(`${process.env.APP_DIR || '/app'}/package.json`)('ws');
const wsUrl = new URL(url);
wsUrl.protocol = wsUrl.protocol === 'https:' ? 'wss:' : 'ws:';
wsUrl.search = new URLSearchParams({ 'api-key': key, name: 'helm-test' }).toString();
const ws = new WebSocket(wsUrl);
const pending = new Map();
let ready;
const isReady = new Promise((resolve) => { ready = resolve; });
ws.on('error', (err) => fail(`WebSocket: ${err.message}`));
ws.on('unexpected-response', (_req, res) => fail(`WebSocket upgrade answered ${res.statusCode}`));
ws.on('close', (code) => { if (pending.size > 0) fail(`socket closed (${code}) with requests pending`); });
ws.on('message', (raw) => {
  const frame = JSON.parse(String(raw));
  if (frame.type === 'ready') return ready();
  const done = pending.get(frame.id);
  if (!done) fail(`unexpected frame ${String(raw).slice(0, 200)}`);
  pending.delete(frame.id);
  if (frame.error) fail(`request ${frame.id} failed: ${frame.error}`);
  done(frame);
});
let n = 0;
const request = (type, data) => new Promise((resolve) => {
  const id = `t${++n}`;
  pending.set(id, resolve);
  ws.send(JSON.stringify({ id, type, data: JSON.stringify(data) }));
});

await isReady;
const ts = Date.now();
const value = `helm-test ${ts}`;
await request('ins', [{ col, doc: 'probe', ts, data: value }]);
const got = await request('qdoc', { col, doc: 'probe', from: ts, to: ts });
if (!Array.isArray(got.records) || got.records.length !== 1 || got.records[0].data !== value) {
  fail(`read back ${JSON.stringify(got.records)}, expected [{"ts":${ts},"data":"${value}"}]`);
}
await request('dcol', { col });
ws.close();
console.log(`helm-test: ok: /health, and an insert/read/delete round trip on ${wsUrl.host}`);
process.exit(0);
