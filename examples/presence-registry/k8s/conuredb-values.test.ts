/**
 * examples/presence-registry/k8s/conuredb-values.yaml renders with the real helm against
 * charts/conuredb, every object validates against the Kubernetes schema, and the topology is
 * the guide's: 3 voters (bootstrap included), no arbiter, 10Gi volumes, 250m/512Mi requests and
 * 500m/1Gi limits.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { join } from 'node:path';
import { parseManifests, repoRoot, SKIP_NO_HELM, template, validateObject, type K8sObject } from '../../../test/e2e/helm-support.js';

const VALUES = join(repoRoot(), 'examples', 'presence-registry', 'k8s', 'conuredb-values.yaml');

interface Sts { metadata: { name: string }; spec: { replicas: number; template: { spec: { containers: Array<{ name: string; resources: unknown }> } }; volumeClaimTemplates?: Array<{ spec: { resources: { requests: { storage: string } } } }> } }

describe('presence-registry chart values', () => {
  it('render a valid 3-voter, arbiter-less ConureDB with the guide\'s resources', { skip: SKIP_NO_HELM }, () => {
    const r = template(['-f', VALUES], 'conuredb', 'chat');
    assert.ok(r.ok, r.stderr);
    const objs = parseManifests(r.stdout);
    for (const o of objs) validateObject(o);
    const sts = objs.filter((o): o is K8sObject & Sts => o.kind === 'StatefulSet') as unknown as Sts[];
    const arbiters = sts.filter((s) => /arbiter/.test(s.metadata.name));
    const voters = sts.filter((s) => !/arbiter/.test(s.metadata.name));
    assert.equal(arbiters.reduce((n, s) => n + s.spec.replicas, 0), 0, 'no arbiter pod (arbiter.mode=never)');
    assert.equal(voters.reduce((n, s) => n + s.spec.replicas, 0), 3, 'three data-bearing members');
    for (const s of voters) {
      const main = s.spec.template.spec.containers[0]!;
      assert.deepEqual(main.resources, { requests: { cpu: '250m', memory: '512Mi' }, limits: { cpu: '500m', memory: '1Gi' } }, s.metadata.name);
      assert.equal(s.spec.volumeClaimTemplates?.[0]?.spec.resources.requests.storage, '10Gi', s.metadata.name);
    }
  });
});
