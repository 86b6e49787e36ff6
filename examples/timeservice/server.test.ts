/**
 * The Time Service in-process: every endpoint, bad input (nothing changed), CORS, the metrics
 * names, the reader pool's bounds, and OIDC bearer auth against a JWKS served on 127.0.0.1 with
 * a locally generated key.
 */
import assert from 'node:assert/strict';
import { createSign, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { TimeDb } from './db.js';
import { buildService, isIanaZone, type ServiceOptions } from './server.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
function opts(extra: Partial<ServiceOptions> = {}, db: Partial<ServiceOptions['db']> = {}): ServiceOptions {
  const dir = mkdtempSync(join(tmpdir(), 'timeservice-')); dirs.push(dir);
  return { db: { path: join(dir, 'ts.db'), walMode: true, cacheSizeKb: 2000, maxOpenConns: 3, maxIdleConns: 1, ...db }, allowedOrigins: ['https://app.example'], logger: false, ...extra };
}

describe('time service', () => {
  it('validates zones against the IANA database', () => {
    for (const z of ['UTC', 'Europe/Paris', 'America/Argentina/Buenos_Aires', 'Asia/Kolkata']) assert.ok(isIanaZone(z), z);
    for (const z of ['', 'Mars/Olympus', 'Europe/Paris/../x', 'x'.repeat(65), 'Europe Paris']) assert.ok(!isIanaZone(z), z);
  });

  it('serves every endpoint; bad input is a 4xx with a message and changes nothing', async () => {
    const { app } = await buildService(opts());
    try {
      assert.equal((await app.inject('/health')).json().status, 'ok');
      const t = (await app.inject('/api/time?tz=Asia/Tokyo')).json();
      assert.equal(t.timezone, 'Asia/Tokyo'); assert.match(t.local, /\+09:00$/);
      assert.equal((await app.inject('/api/time')).json().timezone, 'UTC');
      const badTz = await app.inject('/api/time?tz=Nowhere/City');
      assert.equal(badTz.statusCode, 400); assert.match(badTz.json().error, /unknown time zone/);

      const post = (body: unknown, raw?: string) => app.inject({ method: 'POST', url: '/api/locations', headers: { 'content-type': 'application/json' }, payload: raw ?? JSON.stringify(body) });
      const created = await post({ name: 'paris', timezone: 'Europe/Paris', description: 'HQ' });
      assert.equal(created.statusCode, 201);
      assert.equal(created.json().timezone, 'Europe/Paris');
      assert.equal((await post({ name: 'tokyo', timezone: 'Asia/Tokyo' })).statusCode, 201);
      const dup = await post({ name: 'paris', timezone: 'Asia/Tokyo' });
      assert.equal(dup.statusCode, 409); assert.match(dup.json().error, /already exists/);
      for (const [what, res] of [
        ['bad JSON', await post(undefined, '{"name": "x",')],
        ['unknown zone', await post({ name: 'mars', timezone: 'Mars/Base' })],
        ['missing name', await post({ timezone: 'UTC' })],
        ['bad name', await post({ name: 'a/b', timezone: 'UTC' })],
        ['extra field', await post({ name: 'x', timezone: 'UTC', admin: true })],
        ['oversized body', await post({ name: 'big', timezone: 'UTC', description: 'x'.repeat(20_000) })],
      ] as const) {
        assert.ok(res.statusCode >= 400 && res.statusCode < 500, `${what}: ${res.statusCode}`);
        assert.ok(typeof res.json().error === 'string' && res.json().error.length > 0, `${what}: message`);
      }
      assert.equal((await post({ name: 'big', timezone: 'UTC', description: 'x'.repeat(20_000) })).statusCode, 413);
      const list = (await app.inject('/api/locations')).json().locations as Array<{ name: string }>;
      assert.deepEqual(list.map((l) => l.name), ['paris', 'tokyo'], 'bad input changed nothing');
      assert.equal((await app.inject('/api/locations/paris')).json().description, 'HQ');
      assert.equal((await app.inject('/api/locations/nowhere')).statusCode, 404);
      const lt = (await app.inject('/api/locations/tokyo/time')).json();
      assert.equal(lt.location, 'tokyo'); assert.equal(lt.timezone, 'Asia/Tokyo');
      assert.equal((await app.inject('/api/locations/nowhere/time')).statusCode, 404);
      assert.equal((await app.inject({ method: 'DELETE', url: '/api/locations/tokyo' })).statusCode, 204);
      assert.equal((await app.inject({ method: 'DELETE', url: '/api/locations/tokyo' })).statusCode, 404);
      assert.equal((await app.inject('/api/locations/tokyo')).statusCode, 404);

      // CORS: the allowed origin is echoed, others get no header; preflight.
      assert.equal((await app.inject({ url: '/api/locations', headers: { origin: 'https://app.example' } })).headers['access-control-allow-origin'], 'https://app.example');
      assert.equal((await app.inject({ url: '/api/locations', headers: { origin: 'https://evil.example' } })).headers['access-control-allow-origin'], undefined);
      const pre = await app.inject({ method: 'OPTIONS', url: '/api/locations', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
      assert.equal(pre.statusCode, 204); assert.match(String(pre.headers['access-control-allow-methods']), /POST/);

      // Metrics: exactly the guide's five names.
      const metrics = (await app.inject('/metrics')).body;
      const names = new Set([...metrics.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]));
      assert.deepEqual([...names].sort(), ['timeservice_db_connections_idle', 'timeservice_db_connections_open', 'timeservice_db_errors_total', 'timeservice_db_queries_total', 'timeservice_db_query_duration_seconds']);
      assert.match(metrics, /timeservice_db_queries_total\{operation="insert_location"\} 3/);
      assert.match(metrics, /timeservice_db_errors_total\{operation="insert_location"\} 1/);
    } finally { await app.close(); }
  });

  it('bounds the pool by DB_MAX_OPEN_CONNS and DB_MAX_IDLE_CONNS', async () => {
    const built = await buildService(opts({}, { maxOpenConns: 3, maxIdleConns: 1 }));
    const { app } = built; const db = built.db as TimeDb;
    try {
      await Promise.all(Array.from({ length: 20 }, () => db.listLocations()));
      assert.ok(db.openConnections() <= 3, `open ${db.openConnections()}`);
      assert.ok(db.idleConnections() <= 1, `idle ${db.idleConnections()}`);
      const m = (await app.inject('/metrics')).body;
      assert.match(m, /timeservice_db_connections_open [12]\n/);
    } finally { await app.close(); }
    const single = await buildService(opts({}, { maxOpenConns: 1, maxIdleConns: 0 }));
    try {
      await single.db.listLocations();
      assert.equal((single.db as TimeDb).openConnections(), 1, 'one connection: the writer serves reads');
    } finally { await single.app.close(); }
  });

  it('requires a valid OIDC bearer token on /api when configured', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k1', use: 'sig', alg: 'RS256' };
    const jwks = createServer((_req, res) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ keys: [jwk] })); });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', () => r()));
    const port = (jwks.address() as { port: number }).port;
    const sign = (claims: object, key = privateKey, kid = 'k1'): string => {
      const enc = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
      const input = `${enc({ alg: 'RS256', typ: 'JWT', kid })}.${enc(claims)}`;
      return `${input}.${createSign('sha256').update(input).sign(key).toString('base64url')}`;
    };
    const now = Math.floor(Date.now() / 1000);
    const good = { iss: 'https://issuer.test', aud: 'timeservice', exp: now + 600, sub: 'u1' };
    const { app } = await buildService(opts({ oidc: { jwksUrl: `http://127.0.0.1:${port}/jwks`, issuer: 'https://issuer.test', audience: 'timeservice' } }));
    try {
      const get = (auth?: string) => app.inject({ url: '/api/time', headers: auth ? { authorization: auth } : {} });
      assert.equal((await get()).statusCode, 401);
      assert.equal((await get(`Bearer ${sign(good)}`)).statusCode, 200);
      for (const [what, token] of [
        ['wrong key', sign(good, other.privateKey)],
        ['expired', sign({ ...good, exp: now - 3600 })],
        ['wrong audience', sign({ ...good, aud: 'other' })],
        ['wrong issuer', sign({ ...good, iss: 'https://evil.test' })],
        ['garbage', 'a.b.c'],
      ] as const) {
        const r = await get(`Bearer ${token}`);
        assert.equal(r.statusCode, 401, what); assert.ok(r.json().error, what);
      }
      assert.equal((await app.inject('/health')).statusCode, 200, 'probes need no token');
    } finally { await app.close(); jwks.close(); }
  });
});
