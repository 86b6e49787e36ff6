/**
 * clientv3's `WithRequireLeader` (issue 19): the metadata `hasleader: true` on a call. etcd
 * answers such a request at once with UNAVAILABLE "etcdserver: no leader" when the member has
 * no leader (instead of holding it), and ends such a Watch stream with that error once the
 * leader has been gone for a while. Through a raw @grpc/grpc-js client over the proto files,
 * sending the metadata clientv3 sends, on a 2-voter cluster whose other voter is killed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { credentials, Metadata, type ClientDuplexStream, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { etcdProto } from '../../src/api/etcd/proto/index.js';
import { TestCluster } from '../support/cluster.js';
import { until } from '../support/until.js';

const requireLeader = (): Metadata => { const md = new Metadata(); md.set('hasleader', 'true'); return md; };

function range(endpoint: string, md: Metadata, deadlineMs: number): Promise<{ ok: true } | { ok: false; code: number; details: string }> {
  const KV = etcdProto().KV as ServiceClientConstructor;
  const client = new KV(endpoint, credentials.createInsecure());
  return new Promise((resolve) => {
    (client as unknown as { Range(req: object, md: Metadata, o: object, cb: (err: ServiceError | null) => void): void })
      .Range({ key: Buffer.from('k') }, md, { deadline: Date.now() + deadlineMs }, (err) => {
        client.close();
        resolve(err ? { ok: false, code: err.code, details: err.details } : { ok: true });
      });
  });
}

describe('WithRequireLeader (metadata hasleader=true)', { timeout: 120_000 }, () => {
  it('a member without a leader refuses such a Range at once and ends such a Watch with "etcdserver: no leader"', async () => {
    const c = new TestCluster();
    try {
      const a = await c.add({ id: 'a', bootstrap: true });
      await a.start();
      await a.waitReady();
      const b = await c.add({ id: 'b', join: [a.url] });
      await b.start();
      await c.waitConfig((s) => s.filter((x) => x.suffrage === 'voter').length === 2, '2 voters');
      await b.waitReady();
      const endpoint = `127.0.0.1:${b.clientPort}`;
      assert.deepEqual(await range(endpoint, requireLeader(), 5000), { ok: true }, 'with a leader the metadata changes nothing');

      // A watch opened with the metadata while there is a leader.
      const Watch = etcdProto().Watch as ServiceClientConstructor;
      const wc = new Watch(endpoint, credentials.createInsecure());
      const stream = (wc as unknown as { Watch(md: Metadata): ClientDuplexStream<object, { created?: boolean }> }).Watch(requireLeader());
      const created = new Promise<void>((resolve) => stream.on('data', (r) => { if (r.created) resolve(); }));
      const ended = new Promise<{ code: number; details: string }>((resolve) => stream.on('status', (st: { code: number; details: string }) => resolve(st)));
      stream.on('error', () => { /* reported through 'status' */ });
      stream.write({ create_request: { key: Buffer.from('w') } });
      await created;

      // b loses its leader for good: the other voter of two is gone.
      await a.kill9();
      await until('b without a leader', async () => ((await (await fetch(`${b.url}/status`)).json()) as { leader: string }).leader === '', 20_000);
      assert.deepEqual(await range(endpoint, requireLeader(), 5000), { ok: false, code: 14, details: 'etcdserver: no leader' });
      const st = await ended;
      wc.close();
      assert.deepEqual({ code: st.code, details: st.details }, { code: 14, details: 'etcdserver: no leader' }, 'the watch ended with etcd\'s error');
      // Without the metadata the request is held for a leader (finding 5), so it runs into its deadline instead.
      const held = await range(endpoint, new Metadata(), 1500);
      assert.equal(held.ok ? 'ok' : held.code, 4, 'DEADLINE_EXCEEDED: held, not refused');
    } finally {
      await c.stopAll();
    }
  });
});
