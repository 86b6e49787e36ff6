/**
 * The demo gateway and the load generator against a real ConureDB member: connect, lookup from
 * the watch-driven cache (a second gateway sees the first's devices), disconnect, bad ids 400,
 * the per-gateway device bound 429; the load generator finishes its bounded run cleanly.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EtcdClient } from '../../src/client/etcd-client.js';
import { startConuredEndpoint, type EtcdEndpoint } from '../../test/support/etcd-process.js';
import { until } from '../../test/support/until.js';
import { startGateway } from './gateway.js';
import { runLoad } from './load.js';

describe('presence gateway', { timeout: 60_000 }, () => {
  let store: EtcdEndpoint;
  before(async () => { store = await startConuredEndpoint(); });
  after(async () => { await store.close(); });

  it('registers devices, serves lookups from its cache, and bounds its devices', async () => {
    const a = await startGateway({ endpoints: [store.endpoint], port: 0, host: '127.0.0.1', gatewayId: 'gw-a', ttlSeconds: 30, devicesMax: 2 });
    const b = await startGateway({ endpoints: [store.endpoint], port: 0, host: '127.0.0.1', gatewayId: 'gw-b', ttlSeconds: 30, devicesMax: 2 });
    try {
      const post = (gw: { url: string }, path: string) => fetch(`${gw.url}${path}`, { method: 'POST' });
      assert.equal((await post(a, '/connect?user=erin&device=phone')).status, 200);
      assert.equal((await post(b, '/connect?user=erin&device=laptop')).status, 200);
      const lookup = async (gw: { url: string }) => ((await (await fetch(`${gw.url}/lookup?user=erin`)).json()) as { devices: Array<{ deviceId: string; gateway: string }> }).devices.map((d) => `${d.deviceId}@${d.gateway}`).sort();
      for (const gw of [a, b]) await until('both gateways see both devices', async () => (await lookup(gw)).length === 2);
      assert.deepEqual(await lookup(a), ['laptop@gw-b', 'phone@gw-a']);
      const bad = await post(a, '/connect?user=a%2Fb&device=x');
      assert.equal(bad.status, 400); assert.match(((await bad.json()) as { error: string }).error, /'\/'/);
      assert.equal((await post(a, '/connect?user=erin')).status, 400, 'missing device');
      assert.equal((await post(a, '/connect?user=frank&device=d1')).status, 200);
      assert.equal((await post(a, '/connect?user=frank&device=d2')).status, 429, 'devicesMax');
      assert.equal((await post(a, '/disconnect?user=erin&device=phone')).status, 200);
      await until('b sees the disconnect', async () => (await lookup(b)).length === 1);
    } finally { await a.close(); await b.close(); }
    // Closing a gateway revokes its devices' leases: nothing is left behind.
    const client = new EtcdClient({ endpoints: [store.endpoint] });
    try { assert.equal((await client.range('/registry/users/', { prefix: true })).count, 0); } finally { client.close(); }
  });

  it('runs the bounded load generator without errors', async () => {
    const r = await runLoad({ endpoints: [store.endpoint], users: 10, devices: 2, churn: 1, concurrency: 4, ttlSeconds: 30 });
    assert.equal(r.errors, 0);
    assert.equal(r.ops, 10 * 2 * 4);
  });
});
