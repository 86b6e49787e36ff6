/**
 * examples/timeservice/k8s/deployment.yaml validates against the Kubernetes schema
 * (kubernetes-models) and has the guide's shape: a 1-replica StatefulSet with a 1Gi RWO `data`
 * claim at /app/data, the pod security settings, probes, a token-less ServiceAccount, the daily
 * 2 AM VACUUM INTO backup with 7-day retention, and a ServiceMonitor on /metrics.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CronJob } from 'kubernetes-models/batch/v1';
import { parseManifests, repoRoot, validateObject, type K8sObject } from '../../../test/e2e/helm-support.js';

const FILE = join(repoRoot(), 'examples', 'timeservice', 'k8s', 'deployment.yaml');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

describe('timeservice manifests', () => {
  const objs = parseManifests(readFileSync(FILE, 'utf8'));
  const byKind = (kind: string): Any => objs.find((o) => o.kind === kind) as Any;

  it('validate against the Kubernetes schema', () => {
    for (const o of objs) {
      if (o.kind === 'CronJob') new CronJob(o as never).validate(); else validateObject(o as K8sObject);
    }
    assert.deepEqual(objs.map((o) => o.kind).sort(), ['CronJob', 'PersistentVolumeClaim', 'Service', 'ServiceAccount', 'ServiceMonitor', 'StatefulSet']);
  });

  it('run one hardened replica on a 1Gi RWO data claim', () => {
    const sts = byKind('StatefulSet');
    assert.equal(sts.metadata.name, 'timeservice');
    assert.equal(sts.spec.replicas, 1);
    const vct = sts.spec.volumeClaimTemplates[0];
    assert.equal(vct.metadata.name, 'data');
    assert.deepEqual(vct.spec.accessModes, ['ReadWriteOnce']);
    assert.equal(vct.spec.resources.requests.storage, '1Gi');
    const pod = sts.spec.template.spec;
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(pod.securityContext.runAsUser, 10001);
    assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
    const c = pod.containers[0];
    assert.ok(c.volumeMounts.some((m: Any) => m.name === 'data' && m.mountPath === '/app/data'));
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    for (const p of ['startupProbe', 'readinessProbe', 'livenessProbe']) assert.equal(c[p].httpGet.path, '/health', p);
    assert.equal(c.env.find((e: Any) => e.name === 'DB_PATH').value, '/app/data/timeservice.db');
    assert.equal(byKind('ServiceAccount').automountServiceAccountToken, false);
    assert.equal(byKind('Service').spec.ports[0].targetPort, 'http');
  });

  it('back up daily at 2 AM with VACUUM INTO and keep 7 days; scrape /metrics', () => {
    const cj = byKind('CronJob');
    assert.equal(cj.spec.schedule, '0 2 * * *');
    const pod = cj.spec.jobTemplate.spec.template.spec;
    const script = pod.containers[0].args.join('\n') as string;
    assert.match(script, /sqlite3 \/app\/data\/timeservice\.db "VACUUM INTO '\/backup\/timeservice_\$TIMESTAMP\.db'"/);
    // POSIX -exec rm, not -delete: busybox's find (Alpine, and this repository's test image) lacks -delete on some builds.
    assert.match(script, /-mmin \+10080 -exec rm -f \{\} \+/, '7 days = 10080 minutes');
    assert.equal(pod.volumes.find((v: Any) => v.name === 'data').persistentVolumeClaim.claimName, 'data-timeservice-0', 'the StatefulSet pod\'s claim');
    const sm = byKind('ServiceMonitor');
    assert.deepEqual(sm.spec.endpoints[0], { port: 'http', path: '/metrics', interval: '30s' });
    assert.deepEqual(sm.spec.selector.matchLabels, byKind('Service').spec.selector);
  });
});
