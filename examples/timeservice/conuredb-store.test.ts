/**
 * DB_TYPE=conuredb: the Time Service's API on a real ConureDB (one member): create, duplicate
 * 409, bad input changes nothing, get, location time, delete, list, and the same metric names.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startConuredEndpoint, type EtcdEndpoint } from '../../test/support/etcd-process.js';
import { buildService, optionsFromEnv } from './server.js';

describe('time service on ConureDB (DB_TYPE=conuredb)', { timeout: 60_000 }, () => {
  let store: EtcdEndpoint;
  before(async () => { store = await startConuredEndpoint(); });
  after(async () => { await store.close(); });

  it('reads DB_TYPE from the environment', () => {
    const o = optionsFromEnv({ DB_TYPE: 'conuredb', ETCD_ENDPOINTS: 'a:1,b:2' });
    assert.deepEqual(o.conuredb, { endpoints: ['a:1', 'b:2'], prefix: '/timeservice/' });
    assert.throws(() => optionsFromEnv({ DB_TYPE: 'mysql' }), /DB_TYPE/);
  });

  it('serves locations from ConureDB', async () => {
    const o = optionsFromEnv({ DB_TYPE: 'conuredb', ETCD_ENDPOINTS: store.endpoint, ETCD_PREFIX: `/ts-${process.pid}/` });
    const { app } = await buildService({ ...o, logger: false });
    try {
      const post = (body: unknown) => app.inject({ method: 'POST', url: '/api/locations', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) });
      assert.equal((await post({ name: 'nyc', timezone: 'America/New_York', description: 'office' })).statusCode, 201);
      assert.equal((await post({ name: 'nyc', timezone: 'UTC' })).statusCode, 409);
      assert.equal((await post({ name: 'bad', timezone: 'Nowhere/X' })).statusCode, 400);
      assert.equal((await post({ timezone: 'UTC' })).statusCode, 400);
      assert.equal((await post({ name: 'lon', timezone: 'Europe/London' })).statusCode, 201);
      assert.deepEqual(((await app.inject('/api/locations')).json().locations as Array<{ name: string }>).map((l) => l.name), ['lon', 'nyc']);
      assert.equal((await app.inject('/api/locations/nyc')).json().timezone, 'America/New_York');
      assert.equal((await app.inject('/api/locations/nyc/time')).json().timezone, 'America/New_York');
      assert.equal((await app.inject({ method: 'DELETE', url: '/api/locations/nyc' })).statusCode, 204);
      assert.equal((await app.inject('/api/locations/nyc')).statusCode, 404);
      assert.equal((await app.inject('/health')).statusCode, 200);
      const names = new Set([...(await app.inject('/metrics')).body.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]));
      assert.deepEqual([...names].sort(), ['timeservice_db_connections_idle', 'timeservice_db_connections_open', 'timeservice_db_errors_total', 'timeservice_db_queries_total', 'timeservice_db_query_duration_seconds']);
    } finally { await app.close(); }
  });
});
