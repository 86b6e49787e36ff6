import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ConureDbSpec, DatabaseRecord } from '../../types.js';
import { deriveFluxionSpec } from '../../engines/index.js';
import {
  DATABASE_ID_ANNOTATION, DATABASE_LABEL, conureDbNames, conureDbTopologyOf, conureDbValues, databaseLabel, fluxionNames, fluxionValues, labelled,
  mergeValues, namespaceOf, parseImage, splitHooks, tenantObjects, type KubeObject,
} from './manifests.js';

const image = parseImage('localhost/conure/conuredb:dev');
function record<S extends DatabaseRecord['spec']>(spec: S, over: Partial<DatabaseRecord> = {}): DatabaseRecord & { spec: S } {
  const now = new Date(0).toISOString();
  return {
    id: 'flx-user123-a1b2c3', tenant: 'user123', name: 'user123', engine: spec.engine, spec,
    status: { phase: 'Provisioning', message: '', observedAt: now }, endpoints: {}, deletionPolicy: 'Delete',
    generation: 1, observedGeneration: 0, createdAt: now, updatedAt: now, ...over,
  } as DatabaseRecord & { spec: S };
}

test('the guide\'s names: namespace fluxiondb-<user>, release db-<user>; conuredb-<tenant> for ConureDB', () => {
  const f = record(deriveFluxionSpec('2Gi', '1.0'));
  assert.equal(namespaceOf(f), 'fluxiondb-user123');
  assert.deepEqual(fluxionNames(f), { release: 'db-user123', fullname: 'db-user123-fluxiondb', keySecret: 'db-user123-fluxiondb-key', service: 'db-user123-fluxiondb' });
  const c = record<ConureDbSpec>({ engine: 'conuredb', voters: 2, arbiter: 'auto', storage: '1Gi', version: '0.1.0' }, { id: 'cdb-orders-0f0f0f', tenant: 'acme', name: 'orders' });
  assert.equal(namespaceOf(c), 'conuredb-acme');
  assert.deepEqual(conureDbNames(c), { release: 'orders', fullname: 'orders', peerSecret: 'orders-peer' });
  assert.deepEqual(conureDbTopologyOf(c).members.map((m) => `${m.id}:${m.role}`), ['orders-bootstrap-0:voter', 'orders-0:voter', 'orders-arbiter-0:arbiter']);
});

test('long names are shortened with a stable hash and stay within the charts\' limits; labels within 63', () => {
  fc.assert(fc.property(fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$/), (name) => {
    const db = record(deriveFluxionSpec('1Gi', '1.0'), { name, id: `flx-${name}-abcdef` });
    const f = fluxionNames(db);
    assert.ok(f.fullname.length <= 52, f.fullname);
    assert.deepEqual(fluxionNames(db), f, 'stable');
    assert.ok(conureDbNames(db).fullname.length <= 40);
    assert.ok(databaseLabel(db.id).length <= 63);
    assert.match(databaseLabel(db.id), /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
  }));
  const a = fluxionNames(record(deriveFluxionSpec('1Gi', '1.0'), { name: 'x'.repeat(50) + 'a' }));
  const b = fluxionNames(record(deriveFluxionSpec('1Gi', '1.0'), { name: 'x'.repeat(50) + 'b' }));
  assert.notEqual(a.fullname, b.fullname, 'two long names sharing a prefix stay distinct');
});

test('Fluxion values: sizing.ram carries the RAM, the key comes from the driver\'s Secret, tests off; the platform\'s values win over extras', () => {
  const db = record(deriveFluxionSpec('512Mi', '1.0'));
  const v = fluxionValues(db, { image, keyDigest: 'abc', extra: { sizing: { ram: '64Gi' }, persistence: { storageClass: 'fast' }, secret: { create: true } } });
  assert.deepEqual(v.sizing, { ram: '512Mi' });
  assert.deepEqual(v.secret, { create: false, name: 'db-user123-fluxiondb-key', dataKey: 'secret-key' });
  assert.deepEqual(v.persistence, { storageClass: 'fast' }, 'an operator extra the platform does not set is kept');
  assert.deepEqual(v.image, { registry: 'localhost', repository: 'conure/conuredb', tag: 'dev', pullPolicy: 'IfNotPresent' });
  assert.deepEqual(v.podAnnotations, { 'platform.conure.io/key-digest': 'abc' });
  assert.deepEqual(v.tests, { enabled: false });
});

test('ConureDB values: voters, arbiter, storage and the driver\'s peer Secret', () => {
  const db = record<ConureDbSpec>({ engine: 'conuredb', voters: 3, arbiter: 'never', storage: '2Gi', version: '0.1.0' }, { name: 'orders' });
  const v = conureDbValues(db, { image });
  assert.deepEqual(v.voters, { replicas: 3, pvc: { size: '2Gi' } });
  assert.deepEqual(v.arbiter, { mode: 'never' });
  assert.deepEqual(v.peerAuth, { enabled: true, existingSecret: 'orders-peer', secretKey: 'peer-secret' });
  assert.equal(v.fullnameOverride, 'orders');
});

test('parseImage accepts registry/repo:tag forms and refuses the rest', () => {
  assert.deepEqual(parseImage('conure/conuredb:0.1.0'), { registry: 'docker.io', repository: 'conure/conuredb', tag: '0.1.0', pullPolicy: 'IfNotPresent' });
  assert.deepEqual(parseImage('registry.example.com:5000/a/b:v1', 'Always'), { registry: 'registry.example.com:5000', repository: 'a/b', tag: 'v1', pullPolicy: 'Always' });
  for (const bad of ['', 'conure', 'Conure/X:1', 'a/b:', 'a/b:-x']) assert.throws(() => parseImage(bad), /must be/);
  assert.throws(() => parseImage('a/b:1', 'Sometimes'), /pull policy/);
});

test('labelled() marks the object, its pod template and its claim templates; splitHooks orders objects and keeps hooks apart', () => {
  const sts: KubeObject = { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 's', labels: { a: 'b' } }, spec: { replicas: 2, template: { metadata: { labels: { x: 'y' } } }, volumeClaimTemplates: [{ metadata: { name: 'data' } }] } };
  const l = labelled({ id: 'flx-u-1' }, sts);
  assert.equal(l.metadata.labels![DATABASE_LABEL], 'flx-u-1');
  assert.equal(l.metadata.labels!.a, 'b');
  assert.equal(l.metadata.annotations![DATABASE_ID_ANNOTATION], 'flx-u-1');
  const spec = l.spec as { template: { metadata: { labels: Record<string, string> } }; volumeClaimTemplates: Array<{ metadata: { labels: Record<string, string> } }> };
  assert.equal(spec.template.metadata.labels[DATABASE_LABEL], 'flx-u-1');
  assert.equal(spec.template.metadata.labels.x, 'y');
  assert.equal(spec.volumeClaimTemplates[0]!.metadata.labels[DATABASE_LABEL], 'flx-u-1');
  assert.equal((sts.metadata.labels as Record<string, string>)[DATABASE_LABEL], undefined, 'the input is not modified');
  const job = (hook: string, weight = '0'): KubeObject => ({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: `j${weight}${hook}`, annotations: { 'helm.sh/hook': hook, 'helm.sh/hook-weight': weight } } });
  const { main, hooks } = splitHooks([sts, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'svc' } }, job('test'), job('pre-upgrade,post-upgrade', '5'), job('pre-install', '-1'), { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'sa' } }]);
  assert.deepEqual(main.map((m) => m.kind), ['ServiceAccount', 'Service', 'StatefulSet']);
  assert.deepEqual(hooks.map((h) => [h.obj.metadata.name, h.phases, h.weight]), [['j-1pre-install', ['pre-install'], -1], ['j5pre-upgrade,post-upgrade', ['pre-upgrade', 'post-upgrade'], 5]]);
  assert.deepEqual(hooks[0]!.deletePolicies, ['before-hook-creation']);
});

test('tenant objects: a labelled namespace, the quota, and a policy admitting the tenant and the platform only', () => {
  const objs = tenantObjects({ engine: 'fluxion', tenant: 'user123' }, { quota: { pods: '4' }, platformNamespace: 'conure-system' });
  assert.deepEqual(objs.map((o) => `${o.kind}/${o.metadata.name}`), ['Namespace/fluxiondb-user123', 'ResourceQuota/conure-tenant-quota', 'NetworkPolicy/conure-tenant-isolation']);
  assert.deepEqual((objs[1]!.spec as { hard: unknown }).hard, { pods: '4' });
  const from = ((objs[2]!.spec as { ingress: Array<{ from: unknown[] }> }).ingress[0]!.from);
  assert.deepEqual(from, [
    { podSelector: {} },
    { namespaceSelector: { matchLabels: { 'platform.conure.io/tenant': 'user123' } } },
    { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'conure-system' } } },
  ]);
});

test('mergeValues: deep for objects, replacing for arrays and scalars', () => {
  assert.deepEqual(mergeValues({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] }, d: { e: 1 } }), { a: { b: 1, c: [3] }, d: { e: 1 } });
});

