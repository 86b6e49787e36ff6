/**
 * charts/fluxiondb rendered with the real helm:
 * - helm lint --strict;
 * - every command of the FluxionDB deployment guide renders, and what it asks for is what the
 *   pod gets (memory, --max-memory, claim size), install and `upgrade --reuse-values` alike;
 * - every rendered object validates with kubernetes-models;
 * - refusals: a missing master key (with the message saying what to pass), replicaCount != 1
 *   (schema, and the template's own message for `--skip-schema-validation`), access modes other
 *   than ReadWriteOnce, bad sizes;
 * - existingClaim and an existing Secret (secret.create=false, secret.name);
 * - sizing.ram gives exactly fluxionResources() (src/platform/engines/fluxion.ts) for every RAM
 *   size the platform accepts at the edges and in between;
 * - every fluxiond flag the chart passes is in the real fluxiond's --help, and the master key
 *   reaches fluxiond only through FLUXION_SECRET_KEY from the Secret;
 * - the `helm test` script passes against a real fluxiond and fails on a wrong key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fluxionResources } from '../../src/platform/engines/fluxion.js';
import { parseBytes, parseCpuMilli } from '../../src/platform/engines/quantity.js';
import { parseBytes as fluxiondParseBytes } from '../../src/fluxion/options.js';
import {
  FLUXION_CHART_DIR, FLUXIOND_JS, SKIP_NO_HELM, fluxiondFlags, helm, parseManifests, renderNotes, repoRoot, sets,
  templateChart, validateObject, type K8sObject,
} from './helm-support.js';

const skip = SKIP_NO_HELM;
const KEY = 'abcdefghijklmnop1234';

interface Container {
  name: string; image: string; command?: string[]; args?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  ports?: { name: string; containerPort: number }[];
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  livenessProbe?: { httpGet: { path: string; port: string } };
  readinessProbe?: { httpGet: { path: string; port: string } };
  startupProbe?: { httpGet: { path: string; port: string } };
}
interface PodSpec {
  containers: Container[]; securityContext?: Record<string, unknown>; automountServiceAccountToken?: boolean;
  volumes: { name: string; persistentVolumeClaim?: { claimName: string }; emptyDir?: object }[];
}
interface StsSpec { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec }; volumeClaimTemplates?: unknown[] }

function render(pairs: string[], release = 'db-user123', namespace = 'fluxiondb-user123', extra: string[] = []): K8sObject[] {
  const r = templateChart(FLUXION_CHART_DIR, [...sets(pairs), ...extra], release, namespace);
  assert.ok(r.ok, `helm template ${pairs.join(' ')} failed: ${r.stderr}`);
  const objs = parseManifests(r.stdout);
  for (const o of objs) validateObject(o);
  return objs;
}
function refuse(pairs: string[], extra: string[] = []): string {
  const r = templateChart(FLUXION_CHART_DIR, [...sets(pairs), ...extra], 'db-user123', 'fluxiondb-user123');
  assert.equal(r.ok, false, `${pairs.join(' ')} must be refused`);
  return r.stderr;
}
function one(objs: K8sObject[], kind: string): K8sObject {
  const found = objs.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind}`);
  return found[0]!;
}
function sts(objs: K8sObject[]): StsSpec { return one(objs, 'StatefulSet').spec as StsSpec; }
function fluxiond(objs: K8sObject[]): Container {
  const c = sts(objs).template.spec.containers.find((x) => x.name === 'fluxiond');
  assert.ok(c, 'a fluxiond container');
  return c;
}
function arg(c: Container, flag: string): string | undefined {
  const a = (c.args ?? []).find((x) => x.startsWith(`${flag}=`));
  return a?.slice(flag.length + 1);
}
function claimSize(objs: K8sObject[]): string {
  return (one(objs, 'PersistentVolumeClaim').spec as { resources: { requests: { storage: string } } }).resources.requests.storage;
}

/** The guide's commands. `upgrade --reuse-values` renders the install's values plus its own. */
const INSTALL = ['secret.secretKey=abcdefghijklmnop1234', 'resources.requests.memory=2Gi', 'resources.limits.memory=2Gi', 'persistence.size=4Gi'];
const UPGRADE = ['resources.requests.memory=4Gi', 'resources.limits.memory=4Gi', 'persistence.size=8Gi'];
const GUIDE: { line: string; sets: string[]; memory: string; storage: string }[] = [
  { line: 'helm install db-user123 ./charts/fluxiondb --namespace fluxiondb-user123 --create-namespace --set secret.secretKey=... --set resources.requests.memory=2Gi --set resources.limits.memory=2Gi --set persistence.size=4Gi', sets: INSTALL, memory: '2Gi', storage: '4Gi' },
  { line: 'helm upgrade db-user123 ./charts/fluxiondb --reuse-values --set resources.requests.memory=4Gi --set resources.limits.memory=4Gi --set persistence.size=8Gi', sets: [...INSTALL, ...UPGRADE], memory: '4Gi', storage: '8Gi' },
  { line: 'helm install db-user123 ./charts/fluxiondb --set secret.secretKey=... (defaults)', sets: [`secret.secretKey=${KEY}`], memory: '512Mi', storage: '1Gi' },
  { line: 'helm upgrade db-user123 ./charts/fluxiondb --reuse-values --set sizing.ram=4Gi', sets: [...INSTALL, 'sizing.ram=4Gi'], memory: '4Gi', storage: '8Gi' },
];

test('helm lint --strict passes (defaults need only the key)', { skip }, () => {
  const r = helm(['lint', '--strict', FLUXION_CHART_DIR, ...sets([`secret.secretKey=${KEY}`])]);
  assert.ok(r.ok, r.stdout + r.stderr);
  for (const g of GUIDE) {
    const l = helm(['lint', '--strict', FLUXION_CHART_DIR, '--namespace', 'fluxiondb-user123', ...sets(g.sets)]);
    assert.ok(l.ok, `${g.line}\n${l.stdout}${l.stderr}`);
  }
});

for (const g of GUIDE) {
  test(`guide command renders, validates and sizes the pod: ${g.line}`, { skip }, () => {
    const objs = render(g.sets);
    assert.deepEqual(objs.map((o) => o.kind).sort(), ['PersistentVolumeClaim', 'Pod', 'Secret', 'Service', 'ServiceAccount', 'StatefulSet']);
    for (const o of objs) assert.equal(o.metadata.namespace, 'fluxiondb-user123', `${o.kind} namespace`);
    const s = sts(objs);
    assert.equal(s.replicas, 1);
    assert.equal(s.volumeClaimTemplates, undefined, 'the claim is chart-managed, so that it can grow on upgrade');
    const c = fluxiond(objs);
    assert.equal(c.resources.requests?.memory, g.memory);
    assert.equal(c.resources.limits?.memory, g.memory);
    assert.equal(arg(c, '--max-memory'), g.memory, '--max-memory follows resources.limits.memory');
    assert.equal(fluxiondParseBytes(arg(c, '--max-memory')!, '--max-memory'), parseBytes(c.resources.limits!.memory!), 'fluxiond reads the same byte count as Kubernetes');
    assert.equal(claimSize(objs), g.storage);
    const pvc = one(objs, 'PersistentVolumeClaim');
    assert.deepEqual((pvc.spec as { accessModes: string[] }).accessModes, ['ReadWriteOnce']);
    assert.deepEqual(s.template.spec.volumes.find((v) => v.name === 'data')?.persistentVolumeClaim, { claimName: pvc.metadata.name });
    assert.equal(c.image, 'docker.io/conure/conuredb:0.1.0');
    assert.deepEqual(c.command, ['node', '/app/dist/src/cli/fluxiond.js']);
  });
}

/** The guide's command lines, verbatim. */
const GUIDE_LINES = [
  'helm install db-user123 ./charts/fluxiondb --namespace fluxiondb-user123 --create-namespace --set secret.secretKey=abcdefghijklmnop1234 --set resources.requests.memory=2Gi --set resources.limits.memory=2Gi --set persistence.size=4Gi',
  'helm upgrade db-user123 ./charts/fluxiondb --reuse-values --set resources.requests.memory=4Gi --set resources.limits.memory=4Gi --set persistence.size=8Gi',
];

test('the guide\'s command lines, verbatim, render with helm template and lint (upgrade on top of the install\'s values)', { skip }, () => {
  let installSets: string[] = [];
  for (const line of GUIDE_LINES) {
    const [, verb, release, chart, ...rest] = line.split(' ');
    assert.equal(chart, './charts/fluxiondb');
    const args = rest.filter((a) => a !== '--reuse-values');
    const setArgs = args.flatMap((a, i) => (args[i - 1] === '--set' ? [a] : []));
    if (verb === 'install') installSets = setArgs;
    // --reuse-values: the values of the install, then this command's.
    const all = verb === 'upgrade' ? [...sets(installSets), '--namespace', 'fluxiondb-user123', ...args] : args;
    const r = helm(['template', release!, join(repoRoot(), chart!), ...all]);
    assert.ok(r.ok, `${line}\n${r.stderr}`);
    const objs = parseManifests(r.stdout);
    for (const o of objs) validateObject(o);
    const want = verb === 'install' ? ['2Gi', '4Gi'] : ['4Gi', '8Gi'];
    assert.equal(arg(fluxiond(objs), '--max-memory'), want[0]);
    assert.equal(claimSize(objs), want[1]);
    const lint = helm(['lint', '--strict', join(repoRoot(), chart!), ...all.filter((a) => a !== '--create-namespace')]);
    assert.ok(lint.ok, `${line}\n${lint.stdout}${lint.stderr}`);
  }
});

test('the master key reaches fluxiond only as FLUXION_SECRET_KEY from the Secret', { skip }, () => {
  const objs = render(INSTALL);
  const secret = one(objs, 'Secret');
  assert.equal(Buffer.from((secret.data as Record<string, string>)['secret-key']!, 'base64').toString(), KEY);
  for (const c of [fluxiond(objs), ...((one(objs, 'Pod').spec as PodSpec).containers)]) {
    const env = c.env!.find((e) => e.name === 'FLUXION_SECRET_KEY');
    assert.deepEqual(env?.valueFrom?.secretKeyRef, { name: secret.metadata.name, key: 'secret-key' }, `${c.name}`);
    assert.equal(env?.value, undefined);
  }
  const everythingButTheSecret = JSON.stringify(objs.filter((o) => o.kind !== 'Secret'));
  assert.ok(!everythingButTheSecret.includes(KEY), 'the key appears in no object but the Secret');
  assert.ok(!(fluxiond(objs).args ?? []).some((a) => a.startsWith('--secret-key')), 'no --secret-key flag');
});

test('every fluxiond flag the chart passes is in the real fluxiond --help', { skip }, () => {
  const known = fluxiondFlags();
  assert.ok(known.has('--data') && known.has('--max-memory') && known.has('--secret-key'), `parsed flags: ${[...known].join(' ')}`);
  const objs = render([...INSTALL, 'fluxiond.extraArgs[0]=--permessage-deflate']);
  const c = fluxiond(objs);
  assert.ok((c.args ?? []).length >= 6);
  for (const a of c.args ?? []) assert.ok(known.has(a.split('=')[0]!), `fluxiond has no flag ${a}`);
  // --data is the mounted volume; the env var the key uses is fluxiond's own.
  assert.equal(arg(c, '--data'), '/var/lib/fluxion');
  assert.ok(c.volumeMounts?.some((m) => m.name === 'data' && m.mountPath === '/var/lib/fluxion' && !m.readOnly));
  const help = spawnSync(process.execPath, [FLUXIOND_JS, '--help'], { encoding: 'utf8' }).stdout;
  assert.match(help, /--secret-key <key>[\s\S]*env:\s+FLUXION_SECRET_KEY\)/);
});

test('--max-memory: every memory limit the schema admits means the same bytes to fluxiond and to Kubernetes', { skip }, () => {
  for (const limit of ['512Mi', '1.5Gi', '2G', '750M', '1048576000', '1Ti', '4096Ki']) {
    const c = fluxiond(render([`secret.secretKey=${KEY}`], 'db-user123', 'fluxiondb-user123', ['--set-string', `resources.limits.memory=${limit}`]));
    assert.equal(arg(c, '--max-memory'), limit);
    assert.equal(fluxiondParseBytes(arg(c, '--max-memory')!, '--max-memory'), parseBytes(limit), limit);
  }
  // Kubernetes spellings fluxiond cannot read are refused, by the schema and by the template.
  for (const limit of ['1e9', '2Pi', '512Mi ']) {
    assert.match(refuse([`secret.secretKey=${KEY}`], ['--set-string', `resources.limits.memory=${limit}`]), /resources\.limits\.memory/, limit);
    assert.match(refuse([`secret.secretKey=${KEY}`], ['--skip-schema-validation', '--set-string', `resources.limits.memory=${limit}`]), /cannot be fluxiond's --max-memory/, limit);
  }
  // No memory limit: no --max-memory (fluxiond then has no soft limit).
  const r = templateChart(FLUXION_CHART_DIR, [...sets([`secret.secretKey=${KEY}`]), '--set', 'resources.limits.memory=null'], 'x');
  assert.ok(r.ok, r.stderr);
  assert.equal(arg(fluxiond(parseManifests(r.stdout)), '--max-memory'), undefined);
});

test('probes hit /health on the port the Service targets; Prometheus annotations point at /metrics there', { skip }, () => {
  const objs = render(INSTALL);
  const c = fluxiond(objs);
  const port = c.ports!.find((p) => p.name === 'http')!;
  assert.equal(port.containerPort, 8080);
  for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe]) assert.deepEqual(probe?.httpGet, { path: '/health', port: 'http' });
  assert.equal(arg(c, '--port'), '8080');
  const svc = one(objs, 'Service').spec as { selector: Record<string, string>; ports: { port: number; targetPort: string }[] };
  assert.deepEqual(svc.ports.map((p) => [p.port, p.targetPort]), [[8080, 'http']]);
  const s = sts(objs);
  assert.ok(Object.entries(svc.selector).every(([k, v]) => s.template.metadata.labels[k] === v), 'the Service selects the pod');
  const testLabels = one(objs, 'Pod').metadata.labels ?? {};
  assert.ok(!Object.entries(svc.selector).every(([k, v]) => testLabels[k] === v), 'the Service does not select the test pod');
  assert.deepEqual(s.template.metadata.annotations, { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080', 'prometheus.io/path': '/metrics' });
  const off = fluxiond(render([...INSTALL, 'livenessProbe.enabled=false', 'readinessProbe.enabled=false', 'startupProbe.enabled=false', 'service.port=80']));
  assert.equal(off.livenessProbe ?? off.readinessProbe ?? off.startupProbe, undefined);
  assert.equal(arg(off, '--port'), '8080', 'fluxiond keeps its unprivileged port whatever the Service port');
});

test('security: non-root, read-only root with only the data volume and /tmp writable, ALL capabilities dropped, no token', { skip }, () => {
  const objs = render(INSTALL);
  const pod = sts(objs).template.spec;
  assert.equal(pod.automountServiceAccountToken, false);
  assert.equal(pod.securityContext?.runAsNonRoot, true);
  assert.equal(pod.securityContext?.fsGroup, 1000);
  for (const c of [...pod.containers, ...(one(objs, 'Pod').spec as PodSpec).containers]) {
    const sc = c.securityContext ?? {};
    assert.equal(sc.readOnlyRootFilesystem, true, c.name);
    assert.equal(sc.allowPrivilegeEscalation, false, c.name);
    assert.equal(sc.runAsNonRoot, true, c.name);
    assert.deepEqual((sc.capabilities as { drop: string[] }).drop, ['ALL'], c.name);
  }
  assert.deepEqual(fluxiond(objs).volumeMounts?.map((m) => m.mountPath).sort(), ['/tmp', '/var/lib/fluxion']);
  assert.equal(objs.filter((o) => /Role/.test(o.kind)).length, 0, 'no RBAC: fluxiond never calls the API');
});

test('a missing master key fails with a message saying what to pass', { skip }, () => {
  const err = refuse(['resources.limits.memory=2Gi']);
  assert.match(err, /secret\.secretKey is required when secret\.create=true: pass the master API key with --set secret\.secretKey=/);
  assert.match(refuse(['secret.secretKey=short']), /secret\.secretKey must be 16 to 256 characters; got 5/);
  assert.match(refuse(['secret.secretKey=has space in it 1234'], []), /secret\.secretKey/);
  assert.match(refuse(['secret.create=false']), /secret\.name is required when secret\.create=false: pass --set secret\.name=/);
});

test('replicaCount other than 1 is refused, with the reason', { skip }, () => {
  for (const n of ['2', '0', '3']) {
    assert.match(refuse([`secret.secretKey=${KEY}`, `replicaCount=${n}`]), /replicaCount/, `schema refuses ${n}`);
    const err = refuse([`secret.secretKey=${KEY}`, `replicaCount=${n}`], ['--skip-schema-validation']);
    assert.match(err, new RegExp(`replicaCount must be 1 \\(got ${n}\\): Fluxion keeps its data in one process's memory plus its write-ahead log and scales vertically only`));
  }
  const schema = JSON.parse(readFileSync(join(FLUXION_CHART_DIR, 'values.schema.json'), 'utf8')) as { properties: { replicaCount: { const: number; maximum: number; description: string } } };
  assert.equal(schema.properties.replicaCount.const, 1);
  assert.equal(schema.properties.replicaCount.maximum, 1);
  assert.match(schema.properties.replicaCount.description, /scales vertically only/);
});

test('access modes other than ReadWriteOnce are refused', { skip }, () => {
  for (const mode of ['ReadWriteMany', 'ReadOnlyMany', 'ReadWriteOncePod']) {
    assert.match(refuse([`secret.secretKey=${KEY}`, `persistence.accessModes[0]=${mode}`]), /persistence\.accessModes/);
    assert.match(refuse([`secret.secretKey=${KEY}`, `persistence.accessModes[0]=${mode}`], ['--skip-schema-validation']), /persistence\.accessModes must be \[ReadWriteOnce\]/);
  }
  assert.match(refuse([`secret.secretKey=${KEY}`, 'persistence.accessModes={ReadWriteOnce,ReadWriteMany}']), /persistence\.accessModes/);
});

test('values.schema.json rejects bad types and values', { skip }, () => {
  const bad: [string, RegExp][] = [
    ['replicaCount=one', /replicaCount: Invalid type/],
    ['resources.limits.memory=lots', /resources\.limits\.memory/],
    ['persistence.size=big', /persistence\.size/],
    ['sizing.ram=1.5Gi', /sizing\.ram/],
    ['service.port=70000', /service\.port/],
    ['secret.create=maybe', /secret\.create: Invalid type/],
    ['persistence.resourcePolicy=delete', /persistence\.resourcePolicy/],
    ['replica=1', /Additional property replica is not allowed/],
    ['networkPolicy.policyTypes[0]=Everything', /networkPolicy\.policyTypes/],
  ];
  for (const [set, pattern] of bad) assert.match(refuse([`secret.secretKey=${KEY}`, set]), pattern, set);
});

test('existingClaim and an existing Secret', { skip }, () => {
  const objs = render(['persistence.existingClaim=fluxion-old-data', 'secret.create=false', 'secret.name=tenant-key', 'secret.dataKey=api-key']);
  assert.equal(objs.filter((o) => o.kind === 'PersistentVolumeClaim' || o.kind === 'Secret').length, 0, 'neither a claim nor a Secret is created');
  const s = sts(objs);
  assert.deepEqual(s.template.spec.volumes.find((v) => v.name === 'data')?.persistentVolumeClaim, { claimName: 'fluxion-old-data' });
  for (const c of [fluxiond(objs), ...(one(objs, 'Pod').spec as PodSpec).containers]) {
    assert.deepEqual(c.env!.find((e) => e.name === 'FLUXION_SECRET_KEY')?.valueFrom?.secretKeyRef, { name: 'tenant-key', key: 'api-key' });
  }
  // persistence.enabled=false: an emptyDir, and the NOTES say so.
  const eph = render([`secret.secretKey=${KEY}`, 'persistence.enabled=false']);
  assert.equal(eph.filter((o) => o.kind === 'PersistentVolumeClaim').length, 0);
  assert.deepEqual(sts(eph).template.spec.volumes.find((v) => v.name === 'data')?.emptyDir, {});
  assert.match(renderNotes([...sets([`secret.secretKey=${KEY}`, 'persistence.enabled=false'])], 'db-user123', 'fluxiondb-user123', FLUXION_CHART_DIR), /NO persistent volume/);
  // resourcePolicy=keep marks the claim for Helm to leave behind.
  const kept = render([`secret.secretKey=${KEY}`, 'persistence.resourcePolicy=keep']);
  assert.equal(one(kept, 'PersistentVolumeClaim').metadata.annotations?.['helm.sh/resource-policy'], 'keep');
});

test('sizing.ram gives exactly fluxionResources(): memory = ram, storage = 2 x ram, CPU by the same rule', { skip }, () => {
  const rams = ['256Mi', '512Mi', '1Gi', '2Gi', '4Gi', '16Gi', '64Gi', '300Mi', '1536Mi', '3Gi', '8Gi', '2G', '500M', '268435456'];
  for (const ram of rams) {
    const objs = render([`secret.secretKey=${KEY}`, 'resources.requests.memory=1Gi', 'persistence.size=100Gi'], 'db-user123', 'fluxiondb-user123', ['--set-string', `sizing.ram=${ram}`]);
    const want = fluxionResources(parseBytes(ram));
    const c = fluxiond(objs);
    assert.equal(parseBytes(c.resources.requests!.memory!), want.ramBytes, `${ram}: memory request`);
    assert.equal(parseBytes(c.resources.limits!.memory!), want.ramBytes, `${ram}: memory limit`);
    assert.equal(fluxiondParseBytes(arg(c, '--max-memory')!, '--max-memory'), want.ramBytes, `${ram}: --max-memory`);
    assert.equal(parseBytes(claimSize(objs)), want.storageBytes, `${ram}: storage`);
    assert.equal(parseCpuMilli(c.resources.requests!.cpu!), want.cpuRequestMilli, `${ram}: cpu request`);
    assert.equal(parseCpuMilli(c.resources.limits!.cpu!), want.cpuLimitMilli, `${ram}: cpu limit`);
  }
  // Spelled as the platform spells it: 2 x 2Gi is 4Gi, 2 x 1536Mi is 3Gi.
  assert.equal(claimSize(render([`secret.secretKey=${KEY}`, 'sizing.ram=1536Mi'])), '3Gi');
  // The platform's bounds: 256Mi to 64Gi.
  for (const ram of ['255Mi', '128Mi', '65Gi', '1Ti']) assert.match(refuse([`secret.secretKey=${KEY}`, `sizing.ram=${ram}`]), /sizing\.ram must be between 256Mi and 64Gi/, ram);
  // Without sizing.ram the chart's defaults are the rule at 512Mi.
  const d = fluxiond(render([`secret.secretKey=${KEY}`]));
  const at512 = fluxionResources(512 * 2 ** 20);
  assert.equal(parseCpuMilli(d.resources.requests!.cpu!), at512.cpuRequestMilli);
  assert.equal(parseCpuMilli(d.resources.limits!.cpu!), at512.cpuLimitMilli);
  assert.equal(parseBytes(d.resources.limits!.memory!), at512.ramBytes);
});

test('optional objects render valid: ingress with TLS, network policy with egress, scheduling', { skip }, () => {
  const objs = render([`secret.secretKey=${KEY}`, 'ingress.enabled=true', 'ingress.className=nginx', 'ingress.hosts[0].host=fx.example.com',
    'ingress.hosts[0].paths[0].path=/', 'ingress.tls[0].secretName=fx-tls', 'ingress.tls[0].hosts[0]=fx.example.com',
    'ingress.annotations.nginx\\.ingress\\.kubernetes\\.io/proxy-body-size=16m',
    'networkPolicy.enabled=true', 'networkPolicy.policyTypes={Ingress,Egress}', 'nodeSelector.disk=ssd',
    'tolerations[0].key=dedicated', 'tolerations[0].operator=Exists', 'tests.enabled=false', 'serviceAccount.create=false']);
  const ing = one(objs, 'Ingress').spec as { ingressClassName: string; rules: { host: string; http: { paths: { backend: { service: { name: string; port: { name: string } } } }[] } }[] };
  assert.equal(ing.ingressClassName, 'nginx');
  assert.deepEqual(ing.rules[0]!.http.paths[0]!.backend.service, { name: 'db-user123-fluxiondb', port: { name: 'http' } });
  const np = one(objs, 'NetworkPolicy').spec as { policyTypes: string[]; ingress: unknown[]; egress: unknown[] };
  assert.deepEqual(np.policyTypes, ['Ingress', 'Egress']);
  assert.deepEqual(np.ingress, [{ ports: [{ port: 'http' }] }]);
  assert.deepEqual(np.egress, [], 'Egress with no rules: nothing leaves the pod');
  assert.equal(objs.filter((o) => o.kind === 'Pod' || o.kind === 'ServiceAccount').length, 0);
  assert.equal((sts(objs).template.spec as unknown as { serviceAccountName: string }).serviceAccountName, 'default');
  const notes = renderNotes(sets([`secret.secretKey=${KEY}`, 'ingress.enabled=true', 'ingress.hosts[0].host=fx.example.com', 'ingress.hosts[0].paths[0].path=/', 'ingress.tls[0].secretName=x']), 'db-user123', 'fluxiondb-user123', FLUXION_CHART_DIR);
  assert.match(notes, /wss:\/\/fx\.example\.com\/\?api-key=\$FLUXION_KEY/);
});

test('naming: release db-<user> gives <release>-fluxiondb; fullnameOverride; a release containing the chart name', { skip }, () => {
  assert.equal(one(render([`secret.secretKey=${KEY}`]), 'StatefulSet').metadata.name, 'db-user123-fluxiondb');
  assert.equal(one(render([`secret.secretKey=${KEY}`], 'fluxiondb'), 'StatefulSet').metadata.name, 'fluxiondb');
  assert.equal(one(render([`secret.secretKey=${KEY}`, 'fullnameOverride=tsdb']), 'StatefulSet').metadata.name, 'tsdb');
  const long = render([`secret.secretKey=${KEY}`], 'x'.repeat(50));
  assert.ok(long.every((o) => o.metadata.name.length <= 63) && one(long, 'StatefulSet').metadata.name.length <= 52);
});

test('NOTES: how to read the key, the ws:// URL with ?api-key=, the port-forward line', { skip }, () => {
  const notes = renderNotes(sets(INSTALL), 'db-user123', 'fluxiondb-user123', FLUXION_CHART_DIR);
  assert.match(notes, /memory 2Gi \(--max-memory\)/);
  assert.match(notes, /ws:\/\/db-user123-fluxiondb\.fluxiondb-user123\.svc\.cluster\.local:8080\/\?api-key=\$FLUXION_KEY/);
  assert.match(notes, /kubectl -n fluxiondb-user123 port-forward svc\/db-user123-fluxiondb 8080:8080/);
  assert.match(notes, /get secret db-user123-fluxiondb -o jsonpath='\{\.data\.secret-key\}' \| base64 -d/);
  assert.ok(!notes.includes(KEY), 'NOTES never print the key');
});

/** A free loopback port. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address() as { port: number }; s.close(() => resolve(port)); });
  });
}

test('the helm test script passes against a real fluxiond with the rendered flags, and fails on a wrong key', { skip }, async () => {
  const objs = render(INSTALL);
  const pod = (one(objs, 'Pod').spec as PodSpec).containers[0]!;
  const script = pod.command!;
  assert.deepEqual(script.slice(0, 3), ['node', '--input-type=module', '-e']);
  assert.equal(script[3], readFileSync(join(FLUXION_CHART_DIR, 'files', 'helm-test.mjs'), 'utf8'), 'the pod runs files/helm-test.mjs');
  const dir = mkdtempSync(join(tmpdir(), 'fluxion-helm-test-'));
  const port = await freePort();
  // fluxiond with the chart's own flags, the data dir and port moved to this machine.
  const args = fluxiond(objs).args!.map((a) => a.startsWith('--data=') ? `--data=${dir}` : a.startsWith('--port=') ? `--port=${port}` : a);
  const child = spawn(process.execPath, [FLUXIOND_JS, ...args, '--host=127.0.0.1'], { env: { ...process.env, FLUXION_SECRET_KEY: KEY }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += String(d); });
  try {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
      if (ok) break;
      assert.ok(Date.now() < deadline && child.exitCode === null, `fluxiond did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const run = (key: string) => new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn(process.execPath, script.slice(1), {
        env: { ...process.env, FLUXION_URL: `http://127.0.0.1:${port}`, FLUXION_SECRET_KEY: key, APP_DIR: repoRoot(), TIMEOUT_MS: '15000' },
      });
      let out = '';
      p.stdout.on('data', (d: Buffer) => { out += String(d); });
      p.stderr.on('data', (d: Buffer) => { out += String(d); });
      p.on('exit', (code) => resolve({ code, out }));
    });
    const good = await run(KEY);
    assert.equal(good.code, 0, good.out);
    assert.match(good.out, /helm-test: ok: \/health, and an insert\/read\/delete round trip/);
    const bad = await run('not-the-key-0123456789');
    assert.equal(bad.code, 1, bad.out);
    assert.match(bad.out, /helm-test: FAIL: WebSocket upgrade answered 401/);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
});
