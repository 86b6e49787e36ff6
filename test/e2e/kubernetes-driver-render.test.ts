/**
 * The kubernetes driver's rendering with the real helm: what HelmRenderer returns for a Fluxion
 * and a ConureDB database is exactly what `helm template` prints for the same values (the
 * objects the charts render), every object validates with kubernetes-models, the driver's
 * labels reach pods and claims, and bad values or a missing helm give clear errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HelmRenderer, conureDbValues, fluxionValues, labelled, parseImage, splitHooks, DATABASE_LABEL } from '../../src/platform/drivers/kubernetes/index.js';
import { deriveFluxionSpec } from '../../src/platform/engines/index.js';
import type { ConureDbSpec, DatabaseRecord } from '../../src/platform/types.js';
import { HELM, SKIP_NO_HELM, helm, parseManifests, repoRoot, validateObject } from './helm-support.js';

const skip = SKIP_NO_HELM;
const image = parseImage('localhost/conure/conuredb:dev');
const now = new Date(0).toISOString();
const base = { status: { phase: 'Provisioning' as const, message: '', observedAt: now }, endpoints: {}, deletionPolicy: 'Delete' as const, generation: 1, observedGeneration: 0, createdAt: now, updatedAt: now };
const fluxion = { ...base, id: 'flx-user123-a1b2c3', tenant: 'user123', name: 'user123', engine: 'fluxion' as const, spec: deriveFluxionSpec('512Mi', '1.0') };
const conuredb = { ...base, id: 'cdb-orders-0f0f0f', tenant: 'acme', name: 'orders', engine: 'conuredb' as const, spec: { engine: 'conuredb', voters: 2, arbiter: 'auto', storage: '1Gi', version: '0.1.0' } as ConureDbSpec };

function renderer(dir: string, helmBin = HELM!): HelmRenderer {
  return new HelmRenderer({ helm: helmBin, chartsDir: join(repoRoot(), 'charts'), workDir: dir });
}

test('HelmRenderer returns exactly what helm template renders (Fluxion and ConureDB), and the objects validate', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'k8s-render-'));
  try {
    const r = renderer(dir);
    const cases = [
      { chart: 'fluxiondb' as const, release: 'db-user123', ns: 'fluxiondb-user123', values: fluxionValues(fluxion, { image, keyDigest: '0123' }) },
      { chart: 'conuredb' as const, release: 'orders', ns: 'conuredb-acme', values: conureDbValues(conuredb, { image }) },
    ];
    for (const c of cases) {
      const got = await r.render(c.chart, c.release, c.ns, c.values);
      const file = join(dir, 'v.json');
      writeFileSync(file, JSON.stringify(c.values));
      const direct = helm(['template', c.release, join(repoRoot(), 'charts', c.chart), '--namespace', c.ns, '--values', file]);
      assert.ok(direct.ok, direct.stderr);
      const want = parseManifests(direct.stdout);
      assert.deepEqual(got.map((o) => `${o.kind}/${o.metadata.name}`).sort(), want.map((o) => `${o.kind}/${o.metadata.name}`).sort(), `${c.chart}: the same objects`);
      for (const o of got) {
        const w = want.find((x) => x.kind === o.kind && x.metadata.name === o.metadata.name)!;
        assert.deepEqual(o, { ...w, metadata: { ...w.metadata, namespace: c.ns } }, `${c.chart} ${o.kind}/${o.metadata.name} as helm renders it`);
        validateObject(labelled({ id: 'x' }, o) as never);
      }
      assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('values-')), [], 'the values file is removed');
    }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('Fluxion: one StatefulSet with RAM as memory and --max-memory, the claim at 2 x RAM, the key from the driver\'s Secret; labels reach the pod and the claim', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'k8s-render-'));
  try {
    const objs = (await renderer(dir).render('fluxiondb', 'db-user123', 'fluxiondb-user123', fluxionValues(fluxion, { image, keyDigest: '0123' }))).map((o) => labelled(fluxion, o));
    const { main, hooks } = splitHooks(objs);
    assert.deepEqual(hooks, [], 'no hooks: tests are off');
    assert.ok(!main.some((o) => o.kind === 'Secret'), 'the chart creates no Secret: the driver applies the key');
    const sts = main.find((o) => o.kind === 'StatefulSet')!;
    const pod = (sts.spec as { template: { metadata: { labels: Record<string, string>; annotations: Record<string, string> }; spec: { containers: Array<{ image: string; resources: { limits: Record<string, string> }; env?: Array<{ name: string; valueFrom?: { secretKeyRef?: { name: string } } }> }> } } }).template;
    assert.equal(pod.metadata.labels[DATABASE_LABEL], fluxion.id);
    assert.equal(pod.metadata.annotations['platform.conure.io/key-digest'], '0123');
    const c = pod.spec.containers[0]!;
    assert.equal(c.image, 'localhost/conure/conuredb:dev');
    assert.equal(c.resources.limits.memory, '512Mi');
    assert.equal(c.env?.find((e) => e.name === 'FLUXION_SECRET_KEY')?.valueFrom?.secretKeyRef?.name, 'db-user123-fluxiondb-key');
    const pvc = main.find((o) => o.kind === 'PersistentVolumeClaim')!;
    assert.equal((pvc.spec as { resources: { requests: { storage: string } } }).resources.requests.storage, '1Gi');
    assert.equal(pvc.metadata.labels![DATABASE_LABEL], fluxion.id);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('ConureDB: three StatefulSets named after the database, the scale-down Job as a hook, the driver\'s peer Secret', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'k8s-render-'));
  try {
    const { main, hooks } = splitHooks(await renderer(dir).render('conuredb', 'orders', 'conuredb-acme', conureDbValues(conuredb as DatabaseRecord & { spec: ConureDbSpec }, { image })));
    assert.deepEqual(main.filter((o) => o.kind === 'StatefulSet').map((o) => [o.metadata.name, (o.spec as { replicas: number }).replicas]), [['orders-bootstrap', 1], ['orders', 1], ['orders-arbiter', 1]]);
    assert.ok(!main.some((o) => o.kind === 'Secret'), 'peerAuth.existingSecret: the chart makes no Secret (helm template cannot look one up)');
    assert.deepEqual(hooks.map((h) => [h.obj.kind, h.obj.metadata.name, h.phases]), [['Job', 'orders-scale-down', ['pre-upgrade', 'pre-rollback', 'post-upgrade']]]);
    assert.ok(hooks[0]!.deletePolicies.includes('before-hook-creation') && hooks[0]!.deletePolicies.includes('hook-succeeded'));
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('values a chart refuses are invalid_argument with helm\'s message; a missing helm is unavailable and names PLATFORM_HELM', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'k8s-render-'));
  try {
    await assert.rejects(renderer(dir).render('fluxiondb', 'db-user123', 'fluxiondb-user123', fluxionValues(fluxion, { image, extra: { persistence: { accessModes: ['ReadWriteMany'] } } })),
      (err: Error & { code?: string }) => err.code === 'invalid_argument' && /helm template refused the values/.test(err.message));
    await assert.rejects(renderer(dir, join(dir, 'no-helm')).render('fluxiondb', 'db-user123', 'fluxiondb-user123', {}),
      (err: Error & { code?: string }) => err.code === 'unavailable' && /PLATFORM_HELM/.test(err.message));
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
