/**
 * charts/conure-platform rendered with the real helm (its embedded store, charts/conuredb, built
 * offline with `helm dependency build` from file://../conuredb in a private copy):
 * - helm lint --strict;
 * - default (embedded store), external store, and each row of the scaling guide render, and
 *   every object validates with kubernetes-models;
 * - the platform's environment and its defaults; PLATFORM_STORE_ENDPOINTS is the embedded
 *   ConureDB's client service on its etcd port (an object that really is in the rendering);
 * - the admin token: from a Secret, generated when not given, or an existing Secret;
 * - RBAC: no `*` anywhere, exactly the rules the kubernetes driver needs, Secrets write-only,
 *   no pods/exec, bound to the platform's service account; the admission policy that confines
 *   writes to tenant namespaces;
 * - probes, PDB, anti-affinity, security context, NOTES, helm test pod.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import {
  PLATFORM_CHART_DIR, SKIP_NO_HELM, assertPeerAuth, envOf, helm, parseManifests, platformChartDir, renderNotes, sets, templateChart,
  validateObject, type K8sObject,
} from './helm-support.js';

const skip = SKIP_NO_HELM;
const NS = 'conure-system';
const RELEASE = 'conure-platform';

interface EnvVar { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }
interface Container {
  name: string; image: string; command?: string[]; env?: EnvVar[]; ports?: { name: string; containerPort: number }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
  livenessProbe?: { httpGet: { path: string; port: string } }; readinessProbe?: { httpGet: { path: string; port: string } };
}
interface PodSpec { containers: Container[]; serviceAccountName?: string; automountServiceAccountToken?: boolean; affinity?: Record<string, unknown>; securityContext?: Record<string, unknown> }
interface DeploySpec { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } }
interface Rule { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }

function render(pairs: string[], extra: string[] = [], release = RELEASE): K8sObject[] {
  const r = templateChart(platformChartDir(), [...sets(pairs), ...extra], release, NS);
  assert.ok(r.ok, `helm template ${pairs.join(' ')} failed: ${r.stderr}`);
  const objs = parseManifests(r.stdout);
  for (const o of objs) validateObject(o);
  return objs;
}
function refuse(pairs: string[]): string {
  const r = templateChart(platformChartDir(), sets(pairs), RELEASE, NS);
  assert.equal(r.ok, false, `${pairs.join(' ')} must be refused`);
  return r.stderr;
}
function one(objs: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(found.length, 1, `exactly one ${kind} ${name ?? ''}`);
  return found[0]!;
}
function platform(objs: K8sObject[]): { spec: DeploySpec; c: Container } {
  const spec = one(objs, 'Deployment').spec as DeploySpec;
  const c = spec.template.spec.containers.find((x) => x.name === 'platform');
  assert.ok(c);
  return { spec, c };
}
function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

const DEFAULT_ENV = {
  PLATFORM_DRIVER: 'kubernetes', PORT: '8000', RECONCILE_INTERVAL: '300', NUM_OPERATION_WORKERS: '3',
  STATUS_SYNC_INTERVAL: '30', LEADER_LEASE_SECONDS: '30',
};

/** The guide's scaling table: databases → replicas, workers, reconcile interval. */
const SCALING: { databases: string; replicas: number[]; workers: number; interval: number }[] = [
  { databases: '< 100', replicas: [1, 2], workers: 3, interval: 300 },
  { databases: '100-500', replicas: [2], workers: 5, interval: 300 },
  { databases: '> 500', replicas: [2, 3], workers: 7, interval: 600 },
];

test('helm lint --strict passes, with the dependency built offline from file://../conuredb', { skip }, () => {
  const r = helm(['lint', '--strict', platformChartDir()]);
  assert.ok(r.ok, r.stdout + r.stderr);
  const ext = helm(['lint', '--strict', platformChartDir(), ...sets(['store.embedded.enabled=false', 'store.endpoints={http://etcd.db.svc:2379}'])]);
  assert.ok(ext.ok, ext.stdout + ext.stderr);
  const chart = readFileSync(join(PLATFORM_CHART_DIR, 'Chart.yaml'), 'utf8');
  assert.match(chart, /- name: conuredb\n\s+version: 0\.1\.0\n\s+repository: file:\/\/\.\.\/conuredb\n\s+condition: store\.embedded\.enabled/);
});

test('default: the platform Deployment, its environment and defaults, and the embedded store', { skip }, () => {
  const objs = render([]);
  const { spec, c } = platform(objs);
  assert.equal(spec.replicas, 2);
  assert.deepEqual(c.command, ['node', '/app/dist/src/cli/conure-platform.js']);
  assert.equal(c.image, 'docker.io/conure/conuredb:0.1.0');
  const env = envOf(c);
  for (const [k, v] of Object.entries(DEFAULT_ENV)) assert.equal(env[k], v, k);
  // PLATFORM_STORE_ENDPOINTS names the embedded ConureDB's client service, on its etcd port.
  assert.equal(env.PLATFORM_STORE_ENDPOINTS, `http://conure-platform-conure.${NS}.svc.cluster.local:2379`);
  const storeSvc = one(objs, 'Service', 'conure-platform-conure');
  assert.ok((storeSvc.spec as { ports: { name: string; port: number }[] }).ports.some((p) => p.name === 'etcd' && p.port === 2379));
  assert.equal(objs.filter((o) => o.kind === 'StatefulSet').length, 3, 'the embedded ConureDB: bootstrap, voters, arbiter');
  // Resources, probes, port.
  assert.deepEqual(c.resources, { requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: '1000m', memory: '1Gi' } });
  assert.deepEqual(c.livenessProbe?.httpGet, { path: '/health', port: 'http' });
  assert.deepEqual(c.readinessProbe?.httpGet, { path: '/ready', port: 'http' });
  assert.deepEqual(c.ports, [{ name: 'http', containerPort: 8000 }]);
  const svc = one(objs, 'Service', 'conure-platform').spec as { ports: { port: number; targetPort: string }[]; selector: Record<string, string> };
  assert.deepEqual(svc.ports.map((p) => [p.port, p.targetPort]), [[8000, 'http']]);
  assert.ok(matches(svc.selector, spec.template.metadata.labels));
  // HA: PDB minAvailable 1 over the replicas, preferred anti-affinity between them.
  const pdb = one(objs, 'PodDisruptionBudget', 'conure-platform').spec as { minAvailable: number; selector: { matchLabels: Record<string, string> } };
  assert.equal(pdb.minAvailable, 1);
  assert.ok(matches(pdb.selector.matchLabels, spec.template.metadata.labels));
  const anti = (spec.template.spec.affinity as { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: { podAffinityTerm: { topologyKey: string; labelSelector: { matchLabels: Record<string, string> } } }[] } }).podAntiAffinity;
  const term = anti.preferredDuringSchedulingIgnoredDuringExecution[0]!.podAffinityTerm;
  assert.equal(term.topologyKey, 'kubernetes.io/hostname');
  assert.deepEqual(term.labelSelector.matchLabels, spec.selector.matchLabels);
  // The store admits clients only from the platform's pods (its NetworkPolicy's client rule).
  const np = one(objs, 'NetworkPolicy', 'conure-platform-conure').spec as { ingress: { ports?: { port: number }[]; from?: { podSelector: { matchLabels: Record<string, string> } }[] }[] };
  const clientRule = np.ingress.find((r) => r.ports?.some((p) => p.port === 2379));
  assert.ok(clientRule?.from, 'the etcd port is not open to everyone');
  assert.ok(clientRule.from.some((f) => matches(f.podSelector.matchLabels, spec.template.metadata.labels)), 'the platform pods are admitted to the store');
  // The store's pods are not the platform's: selectors do not overlap.
  for (const sts of objs.filter((o) => o.kind === 'StatefulSet')) {
    const labels = (sts.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
    assert.equal(matches(spec.selector.matchLabels, labels), false, `the platform's selector must not select ${sts.metadata.name}`);
  }
  // Security: non-root, read-only root, nothing added; the token IS mounted (the driver calls the API).
  assert.equal(spec.template.spec.automountServiceAccountToken, true);
  assert.equal(spec.template.spec.serviceAccountName, 'conure-platform');
  const sc = c.securityContext!;
  assert.equal(sc.readOnlyRootFilesystem, true);
  assert.equal(sc.runAsNonRoot, true);
  assert.equal(sc.allowPrivilegeEscalation, false);
  assert.deepEqual((sc.capabilities as { drop: string[] }).drop, ['ALL']);
});

test('the admin token: generated when not given (32 characters), or auth.adminToken, or an existing Secret', { skip }, () => {
  const tokenOf = (objs: K8sObject[]) => Buffer.from((one(objs, 'Secret', 'conure-platform-admin').data as Record<string, string>)['admin-token']!, 'base64').toString();
  const a = tokenOf(render([]));
  const b = tokenOf(render([]));
  assert.match(a, /^[A-Za-z0-9]{32}$/);
  assert.notEqual(a, b, 'helm template has no live Secret to keep, so each render generates');
  const objs = render(['auth.adminToken=0123456789abcdef-admin']);
  assert.equal(tokenOf(objs), '0123456789abcdef-admin');
  assert.deepEqual(platform(objs).c.env!.find((e) => e.name === 'PLATFORM_ADMIN_TOKEN')?.valueFrom?.secretKeyRef, { name: 'conure-platform-admin', key: 'admin-token' });
  assert.ok(!JSON.stringify(objs.filter((o) => o.kind !== 'Secret')).includes('0123456789abcdef-admin'), 'the token is only in the Secret');
  const ext = render(['auth.existingSecret=platform-admin', 'auth.existingSecretKey=token']);
  // (The one Secret left is the embedded store's cluster secret, conure-platform-conure-peer.)
  assert.deepEqual(ext.filter((o) => o.kind === 'Secret').map((o) => o.metadata.name), ['conure-platform-conure-peer'], 'no admin Secret rendered');
  assert.deepEqual(platform(ext).c.env!.find((e) => e.name === 'PLATFORM_ADMIN_TOKEN')?.valueFrom?.secretKeyRef, { name: 'platform-admin', key: 'token' });
  // Kept across upgrades through lookup of the live Secret.
  const secretTpl = readFileSync(join(PLATFORM_CHART_DIR, 'templates', 'secret.yaml'), 'utf8');
  assert.match(secretTpl, /lookup "v1" "Secret" \.Release\.Namespace \$name/);
  assert.match(secretTpl, /\.Values\.auth\.adminToken \| default \$kept \| default \(randAlphaNum 32\)/);
  assert.match(refuse(['auth.adminToken=short']), /auth\.adminToken must be at least 16 characters/);
  assert.match(refuse(['auth.adminToken=0123456789abcdef', 'auth.existingSecret=x']), /auth\.adminToken and auth\.existingSecret are both set/);
});

test('external store: store.endpoints become PLATFORM_STORE_ENDPOINTS and no ConureDB is rendered', { skip }, () => {
  const objs = render(['store.embedded.enabled=false', 'store.endpoints={http://conuredb.db.svc.cluster.local:2379,conuredb-1.db:2379}']);
  assert.equal(envOf(platform(objs).c).PLATFORM_STORE_ENDPOINTS, 'http://conuredb.db.svc.cluster.local:2379,conuredb-1.db:2379');
  assert.equal(objs.filter((o) => o.kind === 'StatefulSet').length, 0);
  assert.ok(objs.every((o) => !(o.metadata.labels?.['helm.sh/chart'] ?? '').startsWith('conuredb-')), 'nothing of the conuredb chart');
  assert.match(refuse(['store.embedded.enabled=false']), /store\.endpoints is required when store\.embedded\.enabled=false: pass --set store\.endpoints=/);
  assert.match(refuse(['store.endpoints={http://x:2379}']), /store\.endpoints is set while store\.embedded\.enabled=true/);
  assert.match(refuse(['store.embedded.enabled=false', 'store.endpoints={not a url}']), /store\.endpoints/);
  // The embedded store follows its own values (naming, ports).
  const renamed = render(['conuredb.fullnameOverride=platform-store', 'conuredb.service.etcdPort=3379']);
  assert.equal(envOf(platform(renamed).c).PLATFORM_STORE_ENDPOINTS, `http://platform-store.${NS}.svc.cluster.local:3379`);
  assert.ok((one(renamed, 'Service', 'platform-store').spec as { ports: { port: number }[] }).ports.some((p) => p.port === 3379));
});

for (const row of SCALING) {
  for (const replicas of row.replicas) {
    test(`scaling guide, ${row.databases} databases: ${replicas} replica(s), ${row.workers} workers, ${row.interval} s`, { skip }, () => {
      const objs = render([`replicaCount=${replicas}`, `platform.numOperationWorkers=${row.workers}`, `platform.reconcileInterval=${row.interval}`]);
      const { spec, c } = platform(objs);
      assert.equal(spec.replicas, replicas);
      const env = envOf(c);
      assert.equal(env.NUM_OPERATION_WORKERS, String(row.workers));
      assert.equal(env.RECONCILE_INTERVAL, String(row.interval));
      assert.equal(env.STATUS_SYNC_INTERVAL, '30');
      const pdbs = objs.filter((o) => o.kind === 'PodDisruptionBudget' && o.metadata.name === 'conure-platform');
      assert.equal(pdbs.length, replicas > 1 ? 1 : 0, 'a PDB only with more than one replica (never blocks a drain)');
    });
  }
}

test('the scaling guide is documented in values.yaml and the README', () => {
  for (const file of ['values.yaml', 'README.md']) {
    const text = readFileSync(join(PLATFORM_CHART_DIR, file), 'utf8');
    assert.match(text, /< 100\s*\|?\s*1-2\s*\|?\s*3\s*\|?\s*300 s/, `${file}: < 100 row`);
    assert.match(text, /100-500\s*\|?\s*2\s*\|?\s*5\s*\|?\s*300 s/, `${file}: 100-500 row`);
    assert.match(text, /> 500\s*\|?\s*2-3\s*\|?\s*7\s*\|?\s*600 s/, `${file}: > 500 row`);
  }
});

test('RBAC: least privilege for the kubernetes driver, no wildcards, Secrets write-only, no exec', { skip }, () => {
  const objs = render([]);
  const role = one(objs, 'ClusterRole', 'conure-platform');
  const rules = role.rules as Rule[];
  for (const r of rules) {
    for (const field of [r.apiGroups, r.resources, r.verbs]) assert.ok(!field.includes('*'), `no wildcard in ${JSON.stringify(r)}`);
    assert.ok(!r.verbs.includes('update'), 'server-side apply needs patch, not update');
    assert.ok(!r.verbs.some((v) => ['escalate', 'bind', 'impersonate'].includes(v)));
  }
  const grants = new Map<string, Set<string>>();
  for (const r of rules) for (const g of r.apiGroups) for (const res of r.resources) {
    const key = `${g || 'core'}/${res}`;
    grants.set(key, new Set([...(grants.get(key) ?? []), ...r.verbs]));
  }
  const APPLY = ['create', 'delete', 'get', 'list', 'patch', 'watch'];
  const expected: Record<string, string[]> = {
    'core/namespaces': APPLY,
    'apps/statefulsets': APPLY,
    'core/services': APPLY,
    'core/configmaps': APPLY,
    'core/serviceaccounts': APPLY,
    'core/persistentvolumeclaims': APPLY,
    'core/secrets': ['create', 'delete', 'patch'],
    'core/resourcequotas': APPLY,
    'core/pods': ['get', 'list', 'watch'],
    'policy/poddisruptionbudgets': APPLY,
    'networking.k8s.io/networkpolicies': APPLY,
    'batch/jobs': APPLY,
  };
  assert.deepEqual(Object.fromEntries([...grants].map(([k, v]) => [k, [...v].sort()]).sort()), Object.fromEntries(Object.entries(expected).sort()));
  assert.ok(!grants.has('core/pods/exec'), 'no pods/exec');
  assert.ok(![...grants.keys()].some((k) => k.startsWith('rbac.authorization.k8s.io/')), 'the platform grants no RBAC');
  // Each rule has a comment saying why.
  const tpl = readFileSync(join(PLATFORM_CHART_DIR, 'templates', 'rbac.yaml'), 'utf8');
  assert.equal((tpl.match(/^ {2}# /gm) ?? []).length >= rules.length, true, 'a comment per rule');
  // Bound to the platform's service account, in the release namespace.
  const binding = one(objs, 'ClusterRoleBinding', 'conure-platform') as K8sObject & { roleRef: { kind: string; name: string }; subjects: { kind: string; name: string; namespace: string }[] };
  assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'conure-platform' });
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'conure-platform', namespace: NS }]);
  assert.equal(one(objs, 'ServiceAccount', 'conure-platform').metadata.namespace, NS);
  // rbac.create=false: none of it.
  const none = render(['rbac.create=false']);
  assert.equal(none.filter((o) => /Role|AdmissionPolicy/.test(o.kind)).length, 0);
});

test('admission policy: writes of the platform service account confined to tenant namespaces', { skip }, () => {
  // auto follows the API server's capabilities.
  assert.equal(render([]).filter((o) => o.kind === 'ValidatingAdmissionPolicy').length, 0, 'helm template without the API: auto renders none');
  const auto = render([], ['--api-versions', 'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy']);
  const policy = one(auto, 'ValidatingAdmissionPolicy');
  const spec = policy.spec as {
    failurePolicy: string; matchConditions: { expression: string }[]; variables: { name: string; expression: string }[];
    validations: { expression: string }[]; matchConstraints: { resourceRules: { resources: string[]; operations: string[] }[] };
  };
  assert.equal(spec.failurePolicy, 'Fail');
  assert.equal(spec.matchConditions[0]!.expression, `request.userInfo.username == "system:serviceaccount:${NS}:conure-platform"`);
  assert.equal(spec.validations[0]!.expression, '["fluxiondb-","conuredb-"].exists(p, variables.target.startsWith(p))');
  // Every writable resource of the ClusterRole is matched.
  const writable = (one(auto, 'ClusterRole').rules as Rule[]).filter((r) => r.verbs.some((v) => ['create', 'patch', 'delete'].includes(v))).flatMap((r) => r.resources);
  assert.deepEqual([...new Set(writable)].sort(), [...spec.matchConstraints.resourceRules[0]!.resources].sort());
  assert.deepEqual(spec.matchConstraints.resourceRules[0]!.operations, ['CREATE', 'UPDATE', 'DELETE']);
  const binding = one(auto, 'ValidatingAdmissionPolicyBinding').spec as { policyName: string; validationActions: string[] };
  assert.deepEqual(binding, { policyName: policy.metadata.name, validationActions: ['Deny'] });
  assert.equal(render(['rbac.admissionPolicy=true']).filter((o) => o.kind === 'ValidatingAdmissionPolicy').length, 1);
  assert.equal(render(['rbac.admissionPolicy=false'], ['--api-versions', 'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy']).filter((o) => o.kind === 'ValidatingAdmissionPolicy').length, 0);
  // Without it, NOTES warn.
  const notes = renderNotes([], RELEASE, NS, platformChartDir());
  assert.match(notes, /WARNING: no ValidatingAdmissionPolicy/);
  assert.doesNotMatch(renderNotes(sets(['rbac.admissionPolicy=true']), RELEASE, NS, platformChartDir()), /WARNING/);
});

test('NOTES: the URL, how to read the admin token, a curl example', { skip }, () => {
  const notes = renderNotes(sets(['auth.adminToken=0123456789abcdef-admin']), RELEASE, NS, platformChartDir());
  assert.match(notes, /http:\/\/conure-platform\.conure-system\.svc\.cluster\.local:8000/);
  assert.match(notes, /kubectl -n conure-system get secret conure-platform-admin -o jsonpath='\{\.data\.admin-token\}' \| base64 -d/);
  assert.match(notes, /curl -s -H "Authorization: Bearer \$CONURE_TOKEN" http:\/\/127\.0\.0\.1:8000\//);
  assert.match(notes, /Store: http:\/\/conure-platform-conure\.conure-system\.svc\.cluster\.local:2379 \(embedded ConureDB\)/);
  assert.ok(!notes.includes('0123456789abcdef-admin'), 'NOTES never print the token');
});

test('helm test pod: GET /health through the service; not selected by the Service or the PDB', { skip }, () => {
  const objs = render([]);
  const pod = one(objs, 'Pod', 'conure-platform-test');
  assert.equal(pod.metadata.annotations?.['helm.sh/hook'], 'test');
  const c = (pod.spec as PodSpec).containers[0]!;
  assert.equal(c.command![3], readFileSync(join(PLATFORM_CHART_DIR, 'files', 'helm-test.mjs'), 'utf8'));
  assert.equal(envOf(c).PLATFORM_URL, `http://conure-platform.${NS}.svc.cluster.local:8000`);
  const selector = (one(objs, 'Service', 'conure-platform').spec as { selector: Record<string, string> }).selector;
  assert.equal(matches(selector, pod.metadata.labels ?? {}), false);
  assert.equal(render(['tests.enabled=false', 'conuredb.tests.enabled=false']).filter((o) => o.kind === 'Pod').length, 0);
});

test('optional: ingress, naming, schema refusals', { skip }, () => {
  const objs = render(['ingress.enabled=true', 'ingress.className=nginx', 'ingress.hosts[0].host=dbaas.example.com', 'ingress.hosts[0].paths[0].path=/']);
  const ing = one(objs, 'Ingress').spec as { rules: { host: string; http: { paths: { backend: { service: { name: string; port: { name: string } } } }[] } }[] };
  assert.deepEqual(ing.rules[0]!.http.paths[0]!.backend.service, { name: 'conure-platform', port: { name: 'http' } });
  assert.equal(one(render([], [], 'dbaas'), 'Deployment').metadata.name, 'dbaas-conure-platform');
  for (const [set, re] of [
    ['platform.driver=local', /platform\.driver/],
    ['platform.numOperationWorkers=0', /platform\.numOperationWorkers/],
    ['replicaCount=two', /replicaCount: Invalid type/],
    ['rbac.tenantNamespacePrefixes={nodash}', /rbac\.tenantNamespacePrefixes/],
    ['store.embeded.enabled=false', /Additional property embeded is not allowed/],
  ] as const) {
    assert.match(refuse([set]), re, set);
  }
});

test('the helm test script passes on a healthy /health and fails on a 503', async () => {
  const script = readFileSync(join(PLATFORM_CHART_DIR, 'files', 'helm-test.mjs'), 'utf8');
  let healthy = true;
  const server = createServer((req, res) => {
    if (req.url !== '/health') return void res.writeHead(404).end();
    if (healthy) res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"healthy","components":{"api":"running","workers":"running"}}');
    else res.writeHead(503, { 'content-type': 'application/json' }).end('{"status":"unhealthy","components":{"api":"running","workers":"failed"}}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  const run = () => new Promise<{ code: number | null; out: string }>((resolve) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, PLATFORM_URL: `http://127.0.0.1:${port}`, TIMEOUT_MS: '1500' } });
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += String(d); });
    p.stderr.on('data', (d: Buffer) => { out += String(d); });
    p.on('exit', (code) => resolve({ code, out }));
  });
  try {
    const ok = await run();
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /helm-test: ok: .*200/);
    healthy = false;
    const bad = await run();
    assert.equal(bad.code, 1, bad.out);
    assert.match(bad.out, /helm-test: FAIL: .*503 .*"workers":"failed"/);
  } finally {
    server.close();
  }
});

test('the embedded store\'s members authenticate each other (conuredb.peerAuth, on by default); the platform, an etcd client, holds no cluster secret', { skip }, () => {
  const objs = render([]);
  assertPeerAuth(objs, { secretName: 'conure-platform-conure-peer', key: 'peer-secret', created: true });
  const { spec, c } = platform(objs);
  const volumes = (spec.template.spec as { volumes?: { secret?: { secretName?: string } }[] }).volumes ?? [];
  assert.ok(!volumes.some((v) => v.secret?.secretName === 'conure-platform-conure-peer'), 'the platform does not mount the store\'s cluster secret');
  assert.equal(envOf(c).CONURE_PEER_SECRET_FILE, undefined);
  // The store's values pass through: a Secret of yours, or no peer authentication.
  assertPeerAuth(render(['conuredb.peerAuth.existingSecret=store-peer', 'conuredb.peerAuth.secretKey=k']), { secretName: 'store-peer', key: 'k', created: false });
  assertPeerAuth(render(['conuredb.peerAuth.enabled=false']), false);
  // A renamed store keeps its Secret's name in step with its other objects.
  assertPeerAuth(render(['conuredb.fullnameOverride=platform-store']), { secretName: 'platform-store-peer', key: 'peer-secret', created: true });
  // An external store: no ConureDB, so no cluster secret either.
  const ext = render(['store.embedded.enabled=false', 'store.endpoints={http://etcd.db.svc:2379}']);
  assert.ok(!ext.some((o) => o.kind === 'Secret' && o.metadata.labels?.['app.kubernetes.io/component'] === 'peer-auth'));
});
