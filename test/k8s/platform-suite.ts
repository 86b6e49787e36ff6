/**
 * The platform's kubernetes driver on the local Kubernetes (registered by cluster.test.ts on one
 * of its clusters; the Kubernetes issue's item 7):
 *
 * 1. conure-platform on the host (PLATFORM_DRIVER=kubernetes, the admin kubeconfig, its embedded
 *    store): Provision(userId, 256Mi, key) → namespace fluxiondb-<user> with the tenant's quota and
 *    policy, release db-<user> → Ready → a WebSocket client writes and reads through the Service
 *    → UpdateRAM 512Mi (the pod is replaced, the data kept) → halt (no pod, the claim kept) →
 *    resume → a backup is refused with a clear error → delete: the namespace goes.
 * 2. A ConureDB database (2 voters + arbiter) → Ready → a write → scale to 3 (the arbiter leaves
 *    raft and its claim goes) → scale to 1 → the write still readable → delete.
 * 3. charts/conure-platform installed (1 replica, embedded one-member store): the platform in a
 *    pod, with its service account, ClusterRole and admission policy, provisions a Fluxion
 *    database in a tenant namespace; a write outside the tenant namespaces is refused by the
 *    admission policy; helm uninstall.
 *
 * Sizes are reduced through PLATFORM_K8S_*_VALUES so that everything fits on 2 cores.
 */
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PlatformClient } from '../../src/client/platform/index.js';
import { Client } from '../integration/fluxion-harness.js';
import { ADMIN_TOKEN, startPlatformProcess, type PlatformProcess } from '../support/platform-process.js';
import { platformChartDir } from '../e2e/helm-support.js';
import { helmBinary } from './images.js';
import { CONURE_IMAGE, REPO, type LocalKubernetes } from './local-kubernetes.js';

const note = (m: string): void => { process.stderr.write(`[k8s-platform ${new Date().toISOString().slice(11, 19)}] ${m}\n`); };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const KEY = 'k8s-platform-key-0123456789';
const SMALL = {
  fluxion: { resources: {} },
  conuredb: {
    voters: { resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '512Mi' } } },
    arbiter: { resources: { requests: { cpu: '20m', memory: '64Mi' }, limits: { memory: '256Mi' } } },
  },
};

async function retry<T>(what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try { return await fn(); } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: ${(err as Error).message}`);
      await sleep(1000);
    }
  }
}

export function platformSuite(k8s: () => LocalKubernetes): void {
  let platform: PlatformProcess | undefined;
  let dir = '';
  const kubectl = (args: string[], allowFail = false): string => k8s().kubectl(args, { allowFail }).stdout.trim();
  const jsonpath = (kind: string, name: string, ns: string, path: string): string => kubectl(['get', kind, name, '-n', ns, '-o', `jsonpath=${path}`], true);
  // Also when a check fails half-way (the cluster and what is in it go with the cluster).
  after(async () => {
    if (platform) await platform.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('platform (kubernetes driver, on the host): starts against the local cluster', async () => {
    dir = mkdtempSync(join(tmpdir(), 'k8s-platform-'));
    platform = await startPlatformProcess({
      dataDir: dir,
      env: {
        PLATFORM_DRIVER: 'kubernetes', KUBECONFIG: k8s().kubeconfig, PLATFORM_K8S_IMAGE: CONURE_IMAGE, PLATFORM_HELM: helmBinary(),
        PLATFORM_CHARTS_DIR: join(REPO, 'charts'), PLATFORM_K8S_CONUREDB_VALUES: JSON.stringify(SMALL.conuredb),
        WAIT_READY_TIMEOUT: '300', STATUS_SYNC_INTERVAL: '2',
      },
    });
    assert.equal(platform.events('kubernetes_driver_configured').length, 1);
  });

  it('platform: Provision → fluxiondb-<user>/db-<user> Ready, a WebSocket write and read; UpdateRAM keeps the data; halt, resume; a backup is refused; delete removes the namespace', async () => {
    const admin = platform!.admin;
    const user = 'k8s-user';
    const ns = `fluxiondb-${user}`;
    const t0 = Date.now();
    const created = await admin.provision({ userId: user, ramSize: '256Mi', apiKey: KEY });
    await admin.waitOperation(created.operation.id, { timeoutMs: 360_000 });
    note(`Fluxion provisioned in ${Math.round((Date.now() - t0) / 1000)}s`);
    const id = created.database.id;
    assert.equal(kubectl(['get', 'namespace', ns, '-o', 'jsonpath={.metadata.labels.platform\\.conure\\.io/tenant}']), user);
    assert.match(kubectl(['get', 'resourcequota', 'conure-tenant-quota', '-n', ns, '-o', 'jsonpath={.spec.hard}']), /requests\.storage/);
    assert.equal(kubectl(['get', 'networkpolicy', 'conure-tenant-isolation', '-n', ns, '-o', 'name']), 'networkpolicy.networking.k8s.io/conure-tenant-isolation');
    assert.equal(jsonpath('statefulset', 'db-k8s-user-fluxiondb', ns, '{.spec.template.spec.containers[0].resources.limits.memory}'), '256Mi');
    assert.equal(jsonpath('pvc', 'db-k8s-user-fluxiondb-data', ns, '{.spec.resources.requests.storage}'), '512Mi', 'storage is 2 x RAM');
    const db = await retry('status Ready', 60_000, async () => { const d = await admin.getDatabase(id); assert.equal(d.status.phase, 'Ready'); return d; });
    assert.equal(db.endpoints.ws, `ws://db-k8s-user-fluxiondb.${ns}.svc.cluster.local:8080`);
    // The host reaches the Service's ClusterIP (it routes 198.18.0.0/15).
    const svc = `${jsonpath('service', 'db-k8s-user-fluxiondb', ns, '{.spec.clusterIP}')}:8080`;
    const docs = [1, 2].map((i) => ({ col: 'k8s', doc: `d${i}`, ts: 1_700_000_000_000 + i, data: `via the platform ${i}` }));
    const session = async <T>(fn: (c: Client) => Promise<T>): Promise<T> => {
      const c = await Client.connect(`ws://${svc}/?api-key=${KEY}&name=k8s-platform`);
      try { return await fn(c); } finally { c.ws.terminate(); }
    };
    const readBack = (): Promise<unknown[]> => session((c) => Promise.all(docs.map(async (d) => (await c.request('qdoc', { col: d.col, doc: d.doc, from: d.ts, to: d.ts })).records)));
    await retry('the first WebSocket session', 60_000, () => session(async (c) => { const r = await c.request('ins', docs); assert.ok(!r.error, String(r.error)); }));
    assert.deepEqual(await readBack(), docs.map((d) => [{ ts: d.ts, data: d.data }]));
    // UpdateRAM: the pod is replaced with 512Mi, the claim (static volumes here cannot grow) and the data stay.
    const uid = jsonpath('pod', 'db-k8s-user-fluxiondb-0', ns, '{.metadata.uid}');
    await admin.waitOperation((await admin.updateRam(user, '512Mi')).operation.id, { timeoutMs: 360_000 });
    assert.equal(jsonpath('pod', 'db-k8s-user-fluxiondb-0', ns, '{.spec.containers[0].resources.limits.memory}'), '512Mi');
    assert.notEqual(jsonpath('pod', 'db-k8s-user-fluxiondb-0', ns, '{.metadata.uid}'), uid, 'the pod was replaced');
    assert.equal((await admin.getDatabase(id)).spec.storage, '1Gi');
    assert.deepEqual(await retry('reading back after UpdateRAM', 60_000, readBack), docs.map((d) => [{ ts: d.ts, data: d.data }]));
    // Halt: no pod, the claim stays; resume: the data is back.
    await admin.waitOperation((await admin.halt(id)).operation.id, { timeoutMs: 300_000 });
    assert.equal(kubectl(['get', 'pods', '-n', ns, '-o', 'name']), '');
    assert.equal(jsonpath('pvc', 'db-k8s-user-fluxiondb-data', ns, '{.status.phase}'), 'Bound');
    await admin.waitOperation((await admin.resume(id)).operation.id, { timeoutMs: 360_000 });
    assert.deepEqual(await retry('reading back after resume', 60_000, readBack), docs.map((d) => [{ ts: d.ts, data: d.data }]));
    // Backups are not built for this driver: the operation fails with the reason, nothing changes.
    await assert.rejects(admin.waitOperation((await admin.backup(id)).operation.id, { timeoutMs: 60_000 }), /kubernetes driver does not take backups yet/);
    assert.deepEqual(await readBack(), docs.map((d) => [{ ts: d.ts, data: d.data }]));
    // Delete: every object, the claim and the namespace go.
    await admin.waitOperation((await admin.deleteDatabase(id, 'Delete')).operation.id, { timeoutMs: 300_000 });
    await retry(`namespace ${ns} gone`, 180_000, async () => assert.equal(kubectl(['get', 'namespace', ns, '-o', 'name'], true), ''));
  });

  it('platform: a ConureDB database (2 voters + arbiter) → Ready; scale to 3 and to 1 keeps the write; delete', async () => {
    const admin = platform!.admin;
    const ns = 'conuredb-k8s-acme';
    const created = await admin.createDatabase({ engine: 'conuredb', tenant: 'k8s-acme', name: 'orders', voters: 2, arbiter: 'auto', storage: '256Mi' });
    const id = created.database.id;
    await admin.waitOperation(created.operation.id, { timeoutMs: 420_000 });
    const suffrages = (): string => kubectl(['exec', '-n', ns, 'orders-bootstrap-0', '-c', 'conured', '--', 'node', '-e',
      "fetch('http://127.0.0.1:8081/raft/config').then((r) => r.json()).then((j) => console.log(j.servers.map((s) => s.id + ':' + s.suffrage).sort().join(',')))"]);
    assert.equal(suffrages(), 'orders-0:voter,orders-arbiter-0:arbiter,orders-bootstrap-0:voter');
    const http = (method: string, path: string): Promise<{ status: number; body: string }> => {
      const ip = jsonpath('pod', 'orders-bootstrap-0', ns, '{.status.podIP}');
      return fetch(`http://${ip}:8081${path}`, { method, signal: AbortSignal.timeout(10_000) }).then(async (r) => ({ status: r.status, body: await r.text() }));
    };
    assert.deepEqual(await http('PUT', '/kv?key=platform-k8s&value=kept'), { status: 200, body: 'OK' });
    await retry('status Ready', 60_000, async () => assert.equal((await admin.getDatabase(id)).status.phase, 'Ready'));
    await admin.waitOperation((await admin.patchDatabase(id, { voters: 3 })).operation.id, { timeoutMs: 420_000 });
    assert.equal(suffrages(), 'orders-0:voter,orders-1:voter,orders-bootstrap-0:voter', 'the arbiter left raft once the third voter joined');
    assert.equal(kubectl(['get', 'pvc', 'data-orders-arbiter-0', '-n', ns, '-o', 'name'], true), '', "the arbiter's claim is deleted");
    await admin.waitOperation((await admin.patchDatabase(id, { voters: 1 })).operation.id, { timeoutMs: 420_000 });
    assert.equal(suffrages(), 'orders-bootstrap-0:voter');
    assert.deepEqual(await http('GET', '/kv?key=platform-k8s'), { status: 200, body: 'kept' });
    assert.equal(kubectl(['get', 'pods', '-n', ns, '-o', 'name']), 'pod/orders-bootstrap-0');
    await admin.waitOperation((await admin.deleteDatabase(id, 'Delete')).operation.id, { timeoutMs: 300_000 });
    await retry(`namespace ${ns} gone`, 180_000, async () => assert.equal(kubectl(['get', 'namespace', ns, '-o', 'name'], true), ''));
    await platform!.stop();
    platform = undefined;
  });

  it('charts/conure-platform on the cluster: the platform pod provisions a tenant database with its own service account; writes outside tenant namespaces are refused', async () => {
    if (platform) { await platform.stop(); platform = undefined; }
    const k = k8s();
    const ns = 'conure-system';
    const rel = 'conure-platform';
    const chart = platformChartDir(); // a private copy with the embedded store packaged offline
    const image = CONURE_IMAGE;
    const reg = image.slice(0, image.indexOf('/'));
    const repo = image.slice(image.indexOf('/') + 1, image.lastIndexOf(':'));
    const tag = image.slice(image.lastIndexOf(':') + 1);
    k.helm(['install', rel, chart, '-n', ns, '--create-namespace', '--wait', '--timeout', '8m',
      '--set', 'replicaCount=1', '--set', `image.registry=${reg}`, '--set', `image.repository=${repo}`, '--set', `image.tag=${tag}`,
      '--set', `auth.adminToken=${ADMIN_TOKEN}`, '--set', 'resources.requests.cpu=100m', '--set', 'resources.requests.memory=256Mi',
      '--set', 'conuredb.voters.replicas=1', '--set', `conuredb.image.registry=${reg}`, '--set', `conuredb.image.repository=${repo}`, '--set', `conuredb.image.tag=${tag}`,
      '--set', 'conuredb.voters.resources.requests.cpu=50m', '--set', 'conuredb.voters.resources.requests.memory=128Mi', '--set', 'conuredb.voters.pvc.size=256Mi',
      '--set', 'tests.enabled=false'], { timeoutMs: 540_000 });
    try {
      const pod = kubectl(['get', 'pods', '-n', ns, '-l', 'app.kubernetes.io/name=conure-platform', '-o', 'jsonpath={.items[0].metadata.name}']);
      const ip = jsonpath('pod', pod, ns, '{.status.podIP}');
      const admin = new PlatformClient({ url: `http://${ip}:8000`, token: ADMIN_TOKEN });
      const created = await admin.provision({ userId: 'incluster', ramSize: '256Mi', apiKey: KEY });
      await admin.waitOperation(created.operation.id, { timeoutMs: 360_000 });
      assert.equal(jsonpath('statefulset', 'db-incluster-fluxiondb', 'fluxiondb-incluster', '{.status.readyReplicas}'), '1');
      // The admission policy: the platform's service account may not write outside tenant namespaces.
      const sa = `system:serviceaccount:${ns}:${rel}`;
      const refused = k.kubectl(['--as', sa, 'create', 'configmap', 'outside', '-n', 'default'], { allowFail: true });
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /may write only in tenant namespaces|forbidden/i);
      assert.equal(k.kubectl(['--as', sa, 'get', 'secrets', '-n', 'fluxiondb-incluster'], { allowFail: true }).code === 0, false, 'Secrets cannot be listed');
      await admin.waitOperation((await admin.deleteDatabase(created.database.id, 'Delete')).operation.id, { timeoutMs: 300_000 });
      await retry('namespace fluxiondb-incluster gone', 180_000, async () => assert.equal(kubectl(['get', 'namespace', 'fluxiondb-incluster', '-o', 'name'], true), ''));
    } finally {
      k.helm(['uninstall', rel, '-n', ns, '--wait', '--timeout', '3m'], { allowFail: true, timeoutMs: 240_000 });
    }
  });
}
