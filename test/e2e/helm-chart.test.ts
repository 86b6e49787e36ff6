/**
 * charts/conuredb rendered with the real helm and checked against the planner:
 * - helm lint;
 * - every example command of the chart's issue, plus voters 1..7 x arbiter auto|always|never;
 * - every rendered object validates with kubernetes-models;
 * - members, roles, bootstrap flag, advertised addresses, per-StatefulSet replicas, PDB and the
 *   hook's desired counts equal planTopology() for the same values, and both refuse the same specs;
 * - values.schema.json rejects bad types;
 * - every conured flag and conurectl command/flag the chart uses is in the contract list;
 * - peer authentication (peerAuth): on by default, the chart's Secret (random, 48 characters,
 *   kept), mounted read-only in every member, its init container and the scale-down Job, with
 *   `--peer-secret-file` on every member and CONURE_PEER_SECRET_FILE wherever conurectl makes a
 *   member-only call; off renders the chart as before; existingSecret mounts the named Secret.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { chartFullname, planTopology, type ArbiterMode, type Topology } from '../../src/planner/topology.js';
import {
  CHART_DIR, CONURECTL_COMMANDS, CONURECTL_GLOBAL_FLAGS, CONURED_FLAGS, CONURE_ENV_VARS, SKIP_NO_HELM,
  MEMBER_ONLY_COMMANDS, assertPeerAuth, conurectlCalls, envOf, helm, parseManifests, peerSecretPath, podSpecs, renderNotes, renderedPeerSecret, template,
  validateObject, CONURECTL_JS, type K8sObject,
} from './helm-support.js';

const skip = SKIP_NO_HELM;

interface Container { name: string; image: string; args?: string[]; command?: string[]; env?: { name: string; value?: string }[]; securityContext?: Record<string, unknown>; volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[] }
interface PodSpec { containers: Container[]; initContainers?: Container[]; affinity?: unknown; securityContext?: Record<string, unknown>; volumes?: { name: string }[] }
interface StsSpec { replicas: number; serviceName: string; podManagementPolicy?: string; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec }; volumeClaimTemplates: { spec: { storageClassName?: string; resources: { requests: { storage: string } } } }[] }

/** The example commands, as `--set` lists (install and upgrade render alike). */
const EXAMPLES: { line: string; sets: string[] }[] = [
  { line: 'helm install conuredb ./charts/conuredb', sets: [] },
  { line: 'install voters=3 pvc=20Gi tag=latest', sets: ['voters.replicas=3', 'voters.pvc.size=20Gi', 'image.tag=latest'] },
  { line: 'install voters=3 arbiter=never', sets: ['voters.replicas=3', 'arbiter.mode=never'] },
  { line: 'install voters=4 arbiter=auto', sets: ['voters.replicas=4', 'arbiter.mode=auto'] },
  {
    line: 'install voters=4 storage + security + volumePermissions',
    sets: ['voters.replicas=4', 'voters.pvc.size=100Gi', 'voters.pvc.storageClassName=fast-ssd', 'arbiter.pvc.size=10Gi',
      'security.runAsNonRoot=true', 'security.runAsUser=1000', 'volumePermissions.enabled=true'],
  },
  { line: 'helm upgrade conuredb ./charts/conuredb --set voters.replicas=1', sets: ['voters.replicas=1'] },
  { line: 'helm upgrade conuredb ./charts/conuredb --set voters.replicas=5', sets: ['voters.replicas=5'] },
];

/** Values from `--set a.b=c` pairs, for the planner. */
function specFromSets(sets: string[]) {
  const v = new Map(sets.map((s) => [s.slice(0, s.indexOf('=')), s.slice(s.indexOf('=') + 1)]));
  return {
    votersReplicas: Number(v.get('voters.replicas') ?? 2),
    arbiterMode: (v.get('arbiter.mode') ?? 'auto') as ArbiterMode,
    allowEvenMembers: v.get('unsafe.allowEvenMembers') === 'true',
  };
}

function byKind(objs: K8sObject[], kind: string): K8sObject[] {
  return objs.filter((o) => o.kind === kind);
}
function one(objs: K8sObject[], kind: string, name: string): K8sObject {
  const found = objs.filter((o) => o.kind === kind && o.metadata.name === name);
  assert.equal(found.length, 1, `expected exactly one ${kind} ${name}`);
  return found[0]!;
}
function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}
function argValue(args: string[], flag: string): string | undefined {
  const a = args.find((x) => x === flag || x.startsWith(`${flag}=`));
  return a === undefined ? undefined : a === flag ? 'true' : a.slice(flag.length + 1);
}

/** Renders, validates every object, and asserts the chart equals the planner's topology. */
function renderAndCompare(sets: string[], namespace = 'db', release = 'conuredb'): { objs: K8sObject[]; plan: Topology } {
  const spec = specFromSets(sets);
  const plan = planTopology({ ...spec, namespace, fullname: chartFullname(release) });
  const r = template(sets.flatMap((s) => ['--set', s]), release, namespace);
  assert.ok(r.ok, `helm template ${sets.join(' ')} failed: ${r.stderr}`);
  const objs = parseManifests(r.stdout);
  for (const o of objs) validateObject(o);
  const names = plan.names;

  // Members: expand each StatefulSet's replicas into pods and read role/bootstrap from its args.
  const sets3 = byKind(objs, 'StatefulSet');
  assert.deepEqual(sets3.map((s) => s.metadata.name).sort(), [names.voters, names.arbiter, names.bootstrap].sort());
  const members: Topology['members'] = [];
  for (const stsName of [names.bootstrap, names.voters, names.arbiter]) {
    const sts = one(objs, 'StatefulSet', stsName).spec as StsSpec;
    assert.equal(sts.replicas, plan.replicas[stsName], `replicas of ${stsName}`);
    assert.equal(sts.podManagementPolicy, 'Parallel');
    assert.equal(sts.serviceName, names.headless);
    assert.ok(matches(sts.selector.matchLabels, sts.template.metadata.labels), `${stsName} selects its own pods`);
    const c = sts.template.spec.containers.find((x) => x.name === 'conured');
    assert.ok(c?.args, `${stsName} has a conured container with args`);
    for (let i = 0; i < sts.replicas; i++) {
      const pod = `${stsName}-${i}`;
      const expand = (s: string | undefined) => s?.replaceAll('$(POD_NAME)', pod).replaceAll('$(POD_NAMESPACE)', namespace) ?? '';
      assert.equal(expand(argValue(c.args, '--node-id')), pod);
      members.push({
        id: pod,
        role: argValue(c.args, '--role') as 'voter' | 'arbiter',
        statefulSet: stsName,
        ordinal: i,
        bootstrap: argValue(c.args, '--bootstrap') === 'true',
        advertiseHttp: expand(argValue(c.args, '--advertise-http')),
        advertiseRaft: expand(argValue(c.args, '--advertise-raft')),
      });
    }
    if (argValue(c.args, '--bootstrap') !== 'true') {
      assert.ok(argValue(c.args, '--join'), `${stsName} joins through seeds`);
      assert.match(argValue(c.args, '--join')!, new RegExp(`http://${names.bootstrap}-0\\.${names.headless}\\.${namespace}\\.svc`));
    }
  }
  assert.deepEqual(members, plan.members);

  // PDB: minAvailable = quorum over every member pod; none for a single member.
  const pdbs = byKind(objs, 'PodDisruptionBudget');
  if (plan.pdb === null) assert.equal(pdbs.length, 0, 'a single member must not get a PDB');
  else {
    assert.equal(pdbs.length, 1);
    const pdb = pdbs[0]!.spec as { minAvailable: number; selector: { matchLabels: Record<string, string> } };
    assert.equal(pdb.minAvailable, plan.pdb.minAvailable);
    for (const s of sets3) assert.ok(matches(pdb.selector.matchLabels, (s.spec as StsSpec).template.metadata.labels), `PDB covers ${s.metadata.name}`);
  }

  // Services: headless selects every pod; the client service voters only.
  const hs = one(objs, 'Service', names.headless).spec as { clusterIP: string; publishNotReadyAddresses: boolean; selector: Record<string, string> };
  assert.equal(hs.clusterIP, 'None');
  assert.equal(hs.publishNotReadyAddresses, true);
  const client = one(objs, 'Service', names.client).spec as { selector: Record<string, string>; ports: { port: number }[] };
  assert.deepEqual(client.ports.map((p) => p.port).sort(), [2379, 8081]);
  for (const s of sets3) {
    const labels = (s.spec as StsSpec).template.metadata.labels;
    assert.ok(matches(hs.selector, labels), `headless service selects ${s.metadata.name}`);
    assert.equal(matches(client.selector, labels), s.metadata.name !== names.arbiter, `client service and ${s.metadata.name}`);
  }

  // The topology ConfigMap read by preStop, and the hook's desired counts, equal the plan.
  const cm = one(objs, 'ConfigMap', names.topologyConfigMap).data as Record<string, string>;
  for (const [sts, n] of Object.entries(plan.replicas)) assert.equal(cm[`${sts}.replicas`], String(n), `ConfigMap ${sts}.replicas`);
  assert.equal(cm.members, String(plan.memberCount));
  assert.equal(cm.quorum, String(plan.quorum));
  const job = one(objs, 'Job', `${plan.fullname}-scale-down`);
  assert.equal(job.metadata.annotations?.['helm.sh/hook'], 'pre-upgrade,pre-rollback,post-upgrade');
  const jobPod = (job.spec as { template: { spec: PodSpec } }).template.spec;
  assert.equal(jobPod.affinity, undefined, 'the scale-down Job has no (anti-)affinity');
  const jobEnv = envOf(jobPod.containers[0]!);
  assert.equal(jobEnv.DESIRED_VOTER_REPLICAS, String(plan.replicas[names.voters]));
  assert.equal(jobEnv.DESIRED_ARBITER_REPLICAS, String(plan.replicas[names.arbiter]));
  assert.equal(jobEnv.FULLNAME, plan.fullname);

  // Security: every container non-root, read-only root, no privilege escalation, ALL dropped
  // (the volume-permissions init container is the one deliberate root exception).
  for (const o of [...sets3, job]) {
    const spec = o.kind === 'Job' ? jobPod : (o.spec as StsSpec).template.spec;
    for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
      const sc = c.securityContext ?? {};
      assert.equal(sc.readOnlyRootFilesystem, true, `${o.metadata.name}/${c.name} read-only root`);
      assert.equal(sc.allowPrivilegeEscalation, false, `${o.metadata.name}/${c.name}`);
      assert.deepEqual((sc.capabilities as { drop: string[] }).drop, ['ALL'], `${o.metadata.name}/${c.name}`);
      if (c.name !== 'volume-permissions') assert.equal(sc.runAsNonRoot, true, `${o.metadata.name}/${c.name} non-root`);
    }
  }
  // Peer authentication is on by default: every member, its init container and the hook.
  assertPeerAuth(objs, { secretName: `${plan.fullname}-peer`, key: 'peer-secret', created: true });
  return { objs, plan };
}

test('helm lint --strict passes', { skip }, () => {
  const r = helm(['lint', '--strict', CHART_DIR]);
  assert.ok(r.ok, r.stdout + r.stderr);
});

for (const ex of EXAMPLES) {
  test(`example renders, validates and matches the planner: ${ex.line}`, { skip }, () => {
    const { objs, plan } = renderAndCompare(ex.sets);
    const sts = (name: string) => one(objs, 'StatefulSet', name).spec as StsSpec;
    const set = new Map(ex.sets.map((s) => s.split('=') as [string, string]));
    const vSize = set.get('voters.pvc.size') ?? '8Gi';
    for (const name of [plan.names.bootstrap, plan.names.voters]) {
      assert.equal(sts(name).volumeClaimTemplates[0]!.spec.resources.requests.storage, vSize);
      assert.equal(sts(name).volumeClaimTemplates[0]!.spec.storageClassName, set.get('voters.pvc.storageClassName'));
    }
    assert.equal(sts(plan.names.arbiter).volumeClaimTemplates[0]!.spec.resources.requests.storage, set.get('arbiter.pvc.size') ?? '1Gi');
    const image = sts(plan.names.voters).template.spec.containers[0]!.image;
    assert.equal(image, `docker.io/conure/conuredb:${set.get('image.tag') ?? '0.1.0'}`);
    const init = sts(plan.names.voters).template.spec.initContainers ?? [];
    const perm = init.find((c) => c.name === 'volume-permissions');
    if (set.get('volumePermissions.enabled') === 'true') {
      assert.ok(perm, 'volumePermissions.enabled adds the chown init container');
      assert.match(perm.command!.join(' '), /chown -R 1000:1000 \/var\/lib\/conure/);
      assert.equal(init[0]!.name, 'volume-permissions', 'chown runs before anything touches the volume');
    } else assert.equal(perm, undefined);
    const podSc = sts(plan.names.voters).template.spec.securityContext!;
    assert.equal(podSc.runAsUser, 1000);
    assert.equal(podSc.fsGroup, 1000);
  });
}

test('the issue examples give the documented member counts', { skip }, () => {
  const counts = EXAMPLES.map((ex) => renderAndCompare(ex.sets).plan.memberCount);
  assert.deepEqual(counts, [3, 3, 3, 5, 5, 1, 5]);
});

test('matrix voters 1..7 x arbiter auto|always|never: chart and planner agree, refusals included', { skip }, () => {
  let rendered = 0;
  for (let voters = 1; voters <= 7; voters++) {
    for (const mode of ['auto', 'always', 'never'] as const) {
      const sets = [`voters.replicas=${voters}`, `arbiter.mode=${mode}`];
      let refusal: string | undefined;
      try { planTopology({ votersReplicas: voters, arbiterMode: mode }); } catch (err) { refusal = (err as Error).message; }
      if (refusal !== undefined) {
        const r = template(sets.flatMap((s) => ['--set', s]));
        assert.equal(r.ok, false, `${sets.join(' ')}: the planner refuses, the chart must too`);
        assert.ok(r.stderr.includes(refusal), `${sets.join(' ')}: chart message\n${r.stderr}\nplanner message\n${refusal}`);
        // The documented escape hatch renders, and still agrees.
        renderAndCompare([...sets, 'unsafe.allowEvenMembers=true']);
      } else {
        renderAndCompare(sets);
      }
      rendered++;
    }
  }
  assert.equal(rendered, 21);
});

test('NOTES.txt prints the planner\'s topology and exactly its warnings', { skip }, () => {
  for (let voters = 1; voters <= 7; voters++) {
    for (const mode of ['auto', 'always', 'never'] as const) {
      const allowEven = mode === 'never' && voters % 2 === 0;
      const plan = planTopology({ votersReplicas: voters, arbiterMode: mode, allowEvenMembers: allowEven });
      const notes = renderNotes(['--set', `voters.replicas=${voters}`, '--set', `arbiter.mode=${mode}`, ...(allowEven ? ['--set', 'unsafe.allowEvenMembers=true'] : [])]);
      assert.match(notes, new RegExp(`^ConureDB \\S+: ${voters} voter\\(s\\) \\+ ${plan.arbiterCount} arbiter\\(s\\) = ${plan.memberCount} member\\(s\\), quorum ${plan.quorum}\\.`));
      const warnings = notes.split('\n').filter((l) => l.startsWith('WARNING: ') && !l.includes('unsafe.')).map((l) => l.slice('WARNING: '.length));
      assert.deepEqual(warnings, plan.warnings, `${voters}/${mode}`);
      assert.equal(notes.includes('WARNING: unsafe.allowEvenMembers=true'), allowEven);
    }
  }
  assert.match(renderNotes(['--set', 'scaling.autoRemoveNodes=false']), /remove the surplus members yourself/);
  assert.match(renderNotes(['--set', 'recovery.bootstrapRejoin=true']), /joins the existing cluster instead of bootstrapping/);
});

test('naming: release and fullnameOverride follow chartFullname()', { skip }, () => {
  const long = renderAndCompare(['voters.replicas=3'], 'db', 'r'.repeat(38));
  assert.equal(long.plan.fullname, `${'r'.repeat(38)}-c`, 'truncated to 40 characters');
  assert.ok(long.objs.every((o) => o.metadata.name.length <= 52), 'every name fits the StatefulSet limit');
  const prod = renderAndCompare([], 'prod', 'prod');
  assert.equal(prod.plan.fullname, 'prod-conure');
  assert.ok(prod.objs.some((o) => o.kind === 'StatefulSet' && o.metadata.name === 'prod-conure-bootstrap'));
  const r = template(['--set', 'fullnameOverride=kv'], 'anything');
  assert.ok(r.ok, r.stderr);
  assert.deepEqual(parseManifests(r.stdout).filter((o) => o.kind === 'StatefulSet').map((o) => o.metadata.name).sort(), ['kv', 'kv-arbiter', 'kv-bootstrap']);
});

test('optional features render valid objects: serviceMonitor, networkPolicy, no tests, no hook', { skip }, () => {
  const r = template(['--set', 'metrics.serviceMonitor.enabled=true', '--set', 'networkPolicy.enabled=true', '--set', 'networkPolicy.allowExternal=false',
    '--set', 'tests.enabled=false', '--set', 'scaling.autoRemoveNodes=false', '--set', 'serviceAccount.create=false']);
  assert.ok(r.ok, r.stderr);
  const objs = parseManifests(r.stdout);
  for (const o of objs) validateObject(o);
  assert.equal(byKind(objs, 'ServiceMonitor').length, 1);
  const sm = byKind(objs, 'ServiceMonitor')[0]!.spec as { selector: { matchLabels: Record<string, string> } };
  assert.deepEqual(byKind(objs, 'Service').filter((svc) => matches(sm.selector.matchLabels, svc.metadata.labels ?? {})).map((svc) => svc.metadata.name), ['conure-hs'],
    'the ServiceMonitor scrapes every member once, through the headless service');
  assert.equal(byKind(objs, 'NetworkPolicy').length, 1);
  assert.equal(byKind(objs, 'Job').length, 0, 'autoRemoveNodes=false: no hook Job');
  assert.equal(byKind(objs, 'Pod').length, 0, 'tests.enabled=false: no test pod');
  assert.equal(byKind(objs, 'ServiceAccount').length, 0);
  const withTests = parseManifests(template([]).stdout);
  const testPod = one(withTests, 'Pod', 'conure-test');
  assert.equal(testPod.metadata.annotations?.['helm.sh/hook'], 'test');
  const env = envOf((testPod.spec as PodSpec).containers[0]!);
  assert.deepEqual([env.EXPECTED_VOTERS, env.EXPECTED_ARBITERS], ['2', '1']);
  // Only member pods count for the PDB and get headless DNS: not the test pod, not the hook Job.
  const pdbSel = (one(withTests, 'PodDisruptionBudget', 'conure').spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
  const hsSel = (one(withTests, 'Service', 'conure-hs').spec as { selector: Record<string, string> }).selector;
  const jobLabels = (one(withTests, 'Job', 'conure-scale-down').spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
  for (const labels of [testPod.metadata.labels ?? {}, jobLabels]) {
    assert.equal(matches(pdbSel, labels), false, 'PDB must not select a non-member pod');
    assert.equal(matches(hsSel, labels), false, 'headless service must not select a non-member pod');
  }
  assert.equal(withTests.filter((o) => ['Role', 'RoleBinding', 'ClusterRole'].includes(o.kind)).length, 0, 'no RBAC: nothing calls the API');
});

test('recovery.bootstrapRejoin: the bootstrap pod joins through the client service instead of bootstrapping', { skip }, () => {
  const r = template(['--set', 'recovery.bootstrapRejoin=true']);
  assert.ok(r.ok, r.stderr);
  const objs = parseManifests(r.stdout);
  for (const o of objs) validateObject(o);
  const spec = one(objs, 'StatefulSet', 'conure-bootstrap').spec as StsSpec;
  const c = spec.template.spec.containers[0]!;
  assert.equal(argValue(c.args!, '--bootstrap'), 'false');
  assert.equal(argValue(c.args!, '--join'), 'http://conure.default.svc.cluster.local:8081');
  const wait = envOf(spec.template.spec.initContainers!.find((x) => x.name === 'wait-for-cluster')!);
  assert.equal(wait.WAIT_MODE, 'any');
  assert.equal(spec.replicas, 1);
  // Nothing else changes: the other StatefulSets are rendered exactly as without the flag.
  const plain = parseManifests(template([]).stdout);
  for (const name of ['conure', 'conure-arbiter']) assert.deepEqual(one(objs, 'StatefulSet', name), one(plain, 'StatefulSet', name));
});

test('a scale leaves the bootstrap StatefulSet unchanged, so helm upgrade never restarts the bootstrap pod', { skip }, () => {
  const sts = (replicas: number): unknown => one(parseManifests(template(['--set', `voters.replicas=${replicas}`]).stdout), 'StatefulSet', 'conure-bootstrap');
  const base = sts(2);
  for (const n of [1, 3, 4, 5, 15]) assert.deepEqual(sts(n), base, `voters.replicas=${n}`);
  const wait = envOf((base as { spec: StsSpec }).spec.template.spec.initContainers!.find((x) => x.name === 'wait-for-cluster')!);
  assert.equal(wait.WAIT_MODE, 'bootstrap');
  assert.equal(wait.MEMBER_URL_TEMPLATE, 'http://%s.conure-hs.default.svc.cluster.local:8081');
  assert.equal(wait.OTHER_STATEFULSETS, 'conure conure-arbiter');
});

test('values.schema.json rejects bad types and values', { skip }, () => {
  const bad: [string, RegExp][] = [
    ['voters.replicas=abc', /voters.replicas: Invalid type. Expected: integer/],
    ['voters.replicas=0', /voters.replicas: Must be greater than or equal to 1/],
    ['voters.replicas=16', /voters.replicas: Must be less than or equal to 15/],
    ['arbiter.mode=sometimes', /arbiter.mode/],
    ['voters.pvc.size=lots', /voters.pvc.size/],
    ['security.runAsUser=root', /security.runAsUser: Invalid type/],
    ['volumePermissions.enabled=maybe', /volumePermissions.enabled: Invalid type/],
    ['voter.replicas=3', /Additional property voter is not allowed/],
    ['join.backoff=soon', /join.backoff/],
    ['recovery.bootstrapRejoin=yes please', /recovery.bootstrapRejoin: Invalid type/],
  ];
  for (const [set, pattern] of bad) {
    const r = template(['--set', set]);
    assert.equal(r.ok, false, `--set ${set} must be rejected`);
    assert.match(r.stderr, pattern, `--set ${set}`);
  }
});

test('chart scripts use only conurectl commands and flags from the contract', { skip }, () => {
  const files = readdirSync(join(CHART_DIR, 'files')).filter((f) => f.endsWith('.sh'));
  const sources = files.map((f) => ({ name: `files/${f}`, text: readFileSync(join(CHART_DIR, 'files', f), 'utf8') }));
  sources.push({ name: 'templates/NOTES.txt', text: readFileSync(join(CHART_DIR, 'templates', 'NOTES.txt'), 'utf8') });
  let calls = 0;
  for (const { name, text } of sources) {
    for (const call of conurectlCalls(text)) {
      calls++;
      for (const g of call.globals) assert.ok(CONURECTL_GLOBAL_FLAGS.includes(g), `${name}: global flag ${g} in "${call.text}" is not in the contract`);
      assert.ok(CONURECTL_COMMANDS[call.command] !== undefined, `${name}: command "${call.command}" in "${call.text}" is not in the contract`);
      for (const f of call.flags) assert.ok(CONURECTL_COMMANDS[call.command]!.includes(f), `${name}: flag ${f} of "${call.command}" is not in the contract`);
    }
  }
  assert.ok(calls >= 8, `expected the scripts to call conurectl; found ${calls} calls`);
  // ...and the conurectl in this build really has them (its --help lists each flag).
  if (existsSync(CONURECTL_JS)) {
    for (const [command, flags] of Object.entries(CONURECTL_COMMANDS)) {
      const r = spawnSync(process.execPath, [CONURECTL_JS, ...command.split(' '), '--help'], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 0, `conurectl ${command} --help: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`Usage: conurectl ${command}\\b`), `conurectl has the command ${command}`);
      for (const f of flags) assert.ok(r.stdout.includes(f), `conurectl ${command} has ${f}`);
    }
    const top = spawnSync(process.execPath, [CONURECTL_JS, '--help'], { encoding: 'utf8', timeout: 30_000 });
    for (const g of CONURECTL_GLOBAL_FLAGS) assert.ok(top.stdout.includes(g), `conurectl has the global flag ${g}`);
  }
  // The scanner itself catches violations.
  assert.equal(conurectlCalls('retry conurectl --timeout 5 members remove x').some((c) => c.globals.includes('--timeout')), true);
  assert.equal(conurectlCalls('if conurectl member rm x; then').map((c) => c.command)[0], 'member');
});

test('rendered scripts are the files under charts/conuredb/files, and conured gets only contract flags and env vars', { skip }, () => {
  const objs = parseManifests(template(['--set', 'voters.replicas=4']).stdout);
  const cm = one(objs, 'ConfigMap', 'conure-topology').data as Record<string, string>;
  for (const f of ['prestop.sh', 'wait-for.sh']) assert.equal(cm[f], readFileSync(join(CHART_DIR, 'files', f), 'utf8').replace(/\n$/, ''), f);
  const job = (one(objs, 'Job', 'conure-scale-down').spec as { template: { spec: PodSpec } }).template.spec.containers[0]!;
  assert.equal(job.command![2], readFileSync(join(CHART_DIR, 'files', 'scale-down.sh'), 'utf8'));
  for (const sts of byKind(objs, 'StatefulSet')) {
    const spec = (sts.spec as StsSpec).template.spec;
    const c = spec.containers.find((x) => x.name === 'conured')!;
    for (const a of c.args ?? []) assert.ok(CONURED_FLAGS.includes(a.split('=')[0]!), `${sts.metadata.name}: conured flag ${a} is not in the contract`);
    for (const container of [...spec.containers, ...(spec.initContainers ?? []), job]) {
      for (const e of container.env ?? []) {
        if (e.name.startsWith('CONURE_')) assert.ok(CONURE_ENV_VARS.includes(e.name), `${sts.metadata.name}/${container.name}: ${e.name} is not in the contract`);
      }
    }
    const preStop = (c as unknown as { lifecycle: { preStop: { exec: { command: string[] } } } }).lifecycle.preStop.exec.command;
    assert.deepEqual(preStop, ['sh', '/etc/conure/topology/prestop.sh']);
    assert.ok(c.volumeMounts?.some((m) => m.name === 'topology' && m.mountPath === '/etc/conure/topology'), 'preStop reads the mounted ConfigMap');
  }
});

test('peerAuth: on by default, off renders the chart as before, existingSecret mounts the named Secret', { skip }, () => {
  const render = (pairs: string[]) => {
    const r = template(pairs.flatMap((p) => ['--set', p]));
    assert.ok(r.ok, `${pairs.join(' ')}: ${r.stderr}`);
    const objs = parseManifests(r.stdout);
    for (const o of objs) validateObject(o);
    return objs;
  };
  assertPeerAuth(render([]), { secretName: 'conure-peer', key: 'peer-secret', created: true });
  // Off: no Secret, no secret volume, no flag, no variable anywhere.
  assertPeerAuth(render(['peerAuth.enabled=false']), false);
  // existingSecret (and a custom key): no Secret rendered, the named one mounted everywhere.
  const own = render(['peerAuth.existingSecret=my-peer', 'peerAuth.secretKey=cluster.key']);
  assertPeerAuth(own, { secretName: 'my-peer', key: 'cluster.key', created: false });
  // A release with another name, with every option at once: names follow the fullname.
  const r = template(['--set', 'voters.replicas=3', '--set', 'arbiter.mode=always', '--set', 'networkPolicy.enabled=true', '--set', 'networkPolicy.allowExternal=false'], 'prod', 'db');
  assert.ok(r.ok, r.stderr);
  assertPeerAuth(parseManifests(r.stdout), { secretName: 'prod-conure-peer', key: 'peer-secret', created: true });
  // Without a cluster to look up (helm template), every rendering makes a new random value:
  // what a real install keeps comes from `lookup` of the live Secret on upgrade.
  const a = renderedPeerSecret(render([]));
  const b = renderedPeerSecret(render([]));
  assert.notEqual(a, b, 'helm template renders a fresh secret each time');
  const tpl = readFileSync(join(CHART_DIR, 'templates', 'secret-peer.yaml'), 'utf8');
  assert.match(tpl, /lookup "v1" "Secret" \.Release\.Namespace \$name/, 'the live Secret is looked up');
  assert.match(tpl, /\$kept \| default \(randAlphaNum 48 \| b64enc\)/, 'a kept value wins over a new one');
});

test('peerAuth: the schema refuses bad values; NOTES warns when off and on the upgrade that turns it on', { skip }, () => {
  for (const [set, pattern] of [
    ['peerAuth.enabled=maybe', /peerAuth.enabled: Invalid type/],
    ['peerAuth.secretKey=..', /peerAuth.secretKey/],
    ['peerAuth.secretKey=a/b', /peerAuth.secretKey/],
    ['peerAuth.existingSecret=Not_A_Name', /peerAuth.existingSecret/],
    ['peerAuth.secret=x', /Additional property secret is not allowed/],
  ] as const) {
    const r = template(['--set', set]);
    assert.equal(r.ok, false, `--set ${set} must be rejected`);
    assert.match(r.stderr, pattern, `--set ${set}`);
  }
  const on = renderNotes([]);
  assert.match(on, /authenticate each other with the cluster secret in Secret conure-peer \(key peer-secret\)/);
  assert.ok(!on.includes('WARNING: peerAuth'));
  assert.ok(!on.includes('this upgrade creates the cluster secret'), 'an install says nothing about restarting');
  assert.match(renderNotes(['--set', 'peerAuth.enabled=false']), /WARNING: peerAuth.enabled=false: the raft port and the member-only endpoints/);
  // `helm template --is-upgrade` has no live Secret to find: exactly the upgrade that creates it.
  const turnedOn = renderNotes(['--is-upgrade']);
  assert.match(turnedOn, /this upgrade creates the cluster secret conure-peer/);
  assert.match(turnedOn, /delete pod -l app\.kubernetes\.io\/name=conuredb,app\.kubernetes\.io\/instance=conuredb/);
  assert.ok(!renderNotes(['--is-upgrade', '--set', 'peerAuth.existingSecret=mine']).includes('this upgrade creates'), 'a Secret you made is not created by the upgrade');
});

test('peerAuth: every script that makes a member-only conurectl call runs where CONURE_PEER_SECRET_FILE is set', { skip }, () => {
  const objs = parseManifests(template([]).stdout);
  const file = peerSecretPath();
  // Which rendered container runs which script.
  const runs: Record<string, string> = { 'prestop.sh': 'conured', 'wait-for.sh': 'wait-for-cluster', 'scale-down.sh': 'scale-down', 'helm-test.sh': 'roundtrip' };
  for (const [script, container] of Object.entries(runs)) {
    const calls = conurectlCalls(readFileSync(join(CHART_DIR, 'files', script), 'utf8'));
    const memberOnly = calls.filter((c) => MEMBER_ONLY_COMMANDS.has(c.command));
    for (const { name, spec } of podSpecs(objs)) {
      const c = [...spec.containers, ...(spec.initContainers ?? [])].find((x) => x.name === container);
      if (!c) continue;
      if (memberOnly.length > 0) assert.equal(envOf(c).CONURE_PEER_SECRET_FILE, file, `${name}/${container} runs ${script}, which calls ${memberOnly.map((m) => m.command).join(', ')}`);
      else assert.equal(envOf(c).CONURE_PEER_SECRET_FILE, undefined, `${name}/${container} runs ${script}, which needs no secret`);
    }
    assert.equal(memberOnly.length > 0, script !== 'helm-test.sh', `${script}: member-only calls ${memberOnly.map((m) => m.text).join('; ')}`);
  }
  // No script reaches a member-only endpoint behind conurectl's back (curl or fetch).
  for (const f of readdirSync(join(CHART_DIR, 'files'))) {
    const text = readFileSync(join(CHART_DIR, 'files', f), 'utf8').split('\n').filter((l) => !/^\s*#/.test(l)).join('\n');
    assert.doesNotMatch(text, /\/(join|remove|promote|leader\/transfer|raft\/snapshot)\b/, `${f} calls a member-only endpoint directly`);
  }
});

test('recovery.forceNewCluster: the flag on every data StatefulSet (only the named pod acts on it), never on the arbiter; other values refused', { skip }, () => {
  const r = template(['--set', 'recovery.forceNewCluster=conure-0']);
  assert.ok(r.ok, r.stderr);
  const objs = parseManifests(r.stdout);
  for (const o of objs) validateObject(o);
  for (const name of ['conure-bootstrap', 'conure']) assert.equal(argValue((one(objs, 'StatefulSet', name).spec as StsSpec).template.spec.containers[0]!.args!, '--force-new-cluster'), 'conure-0');
  assert.equal(argValue((one(objs, 'StatefulSet', 'conure-arbiter').spec as StsSpec).template.spec.containers[0]!.args!, '--force-new-cluster'), undefined);
  assert.ok(template(['--set', 'recovery.forceNewCluster=conure-bootstrap-0']).ok);
  for (const bad of ['conure-arbiter-0', 'other-0', 'conure-bootstrap-1']) {
    const b = template(['--set', `recovery.forceNewCluster=${bad}`]);
    assert.ok(!b.ok && /must name a data pod of this release/.test(b.stderr), `${bad}: ${b.stderr}`);
  }
  assert.ok(!template(['--set', 'recovery.forceNewCluster=a b']).ok, 'schema: a member id');
});

test('backup.enabled: a CronJob running files/backup.sh into a kept PVC (or backup.existingClaim); restore.fromBackup: an init container on the bootstrap pod only', { skip }, () => {
  const r = template(['--set', 'backup.enabled=true', '--set', 'backup.retention=3', '--set', 'backup.schedule=15 3 * * *', '--set', 'restore.fromBackup=latest']);
  assert.ok(r.ok, r.stderr);
  const objs = parseManifests(r.stdout);
  for (const o of objs) validateObject(o);
  const pvc = one(objs, 'PersistentVolumeClaim', 'conure-backup');
  assert.equal((pvc.metadata.annotations as Record<string, string>)['helm.sh/resource-policy'], 'keep');
  const cron = one(objs, 'CronJob', 'conure-backup').spec as { schedule: string; concurrencyPolicy: string; jobTemplate: { spec: { template: { spec: { containers: { command: string[]; env: { name: string; value?: string }[] }[]; volumes: { name: string; persistentVolumeClaim?: { claimName: string } }[] } } } } };
  assert.equal(cron.schedule, '15 3 * * *');
  assert.equal(cron.concurrencyPolicy, 'Forbid');
  const pod = cron.jobTemplate.spec.template.spec;
  assert.equal(pod.containers[0]!.command[2], readFileSync(join(CHART_DIR, 'files', 'backup.sh'), 'utf8'));
  assert.equal(envOf(pod.containers[0]!).RETENTION, '3');
  assert.equal(pod.volumes.find((v) => v.name === 'backups')!.persistentVolumeClaim!.claimName, 'conure-backup');
  const boot = (one(objs, 'StatefulSet', 'conure-bootstrap').spec as StsSpec).template.spec;
  const restore = boot.initContainers!.find((c) => c.name === 'restore-from-backup')!;
  assert.equal(restore.command![2], readFileSync(join(CHART_DIR, 'files', 'restore.sh'), 'utf8'));
  assert.equal(envOf(restore).RESTORE_FILE, 'latest');
  for (const name of ['conure', 'conure-arbiter']) assert.ok(!(one(objs, 'StatefulSet', name).spec as StsSpec).template.spec.initContainers!.some((c) => c.name === 'restore-from-backup'));

  const own = parseManifests(template(['--set', 'backup.enabled=true', '--set', 'backup.existingClaim=my-backups', '--set', 'restore.fromBackup=x.db']).stdout);
  assert.ok(!own.some((o) => o.kind === 'PersistentVolumeClaim' && o.metadata.name === 'conure-backup'), 'no PVC of its own');
  assert.ok(JSON.stringify(one(own, 'CronJob', 'conure-backup')).includes('"claimName":"my-backups"'));
  assert.ok(JSON.stringify(one(own, 'StatefulSet', 'conure-bootstrap')).includes('"claimName":"my-backups"'), 'a restore reads the backup claim by default');
  // An upgrade with --reuse-values from a chart without these values has none: still renders.
  assert.ok(template(['--set', 'backup=null', '--set', 'restore=null']).ok);
  const both = template(['--set', 'restore.fromBackup=x.db', '--set', 'recovery.bootstrapRejoin=true']);
  assert.ok(!both.ok && /set one of them/.test(both.stderr), both.stderr);
  for (const bad of ['backup.retention=0', 'restore.fromBackup=../x', 'backup.size=lots']) assert.ok(!template(['--set', bad]).ok, bad);
});
