/**
 * Shared support for the chart tests (test/e2e/helm-*.test.ts): locating helm and the charts
 * (conuredb, fluxiondb, conure-platform), rendering with `helm template`, parsing the
 * documents, validating them with kubernetes-models, the ONE list of conured / conurectl flags
 * the conuredb chart may use, and fluxiond's flags as its real `--help` prints them.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';
import { ConfigMap, Namespace, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { CronJob, Job } from 'kubernetes-models/batch/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding } from 'kubernetes-models/admissionregistration.k8s.io/v1';

/** The conured flag contract (docs: issue 7 / src/cli/conured.ts). Each has a CONURE_* env var. */
export const CONURED_FLAGS: readonly string[] = [
  '--node-id', '--http-addr', '--raft-addr', '--client-addr', '--advertise-http', '--advertise-raft',
  '--data-dir', '--bootstrap', '--join', '--join-backoff', '--join-retries', '--role', '--peer-secret-file',
  '--force-new-cluster',
];

/** The conured environment-variable contract, plus CONURE_ENDPOINTS (conurectl) and CONURE_PEER_SECRET_FILE (both). */
export const CONURE_ENV_VARS: readonly string[] = [
  'CONURE_NODE_ID', 'CONURE_HTTP_ADDR', 'CONURE_RAFT_ADDR', 'CONURE_CLIENT_ADDR', 'CONURE_ADVERTISE_HTTP',
  'CONURE_ADVERTISE_RAFT', 'CONURE_DATA_DIR', 'CONURE_BOOTSTRAP', 'CONURE_JOIN', 'CONURE_JOIN_BACKOFF',
  'CONURE_JOIN_RETRIES', 'CONURE_ROLE', 'CONURE_ENDPOINTS', 'CONURE_PEER_SECRET_FILE', 'CONURE_FORCE_NEW_CLUSTER',
];

/** The conurectl contract: global flags, and each command with the flags it accepts. */
export const CONURECTL_GLOBAL_FLAGS: readonly string[] = ['--endpoints', '--peer-secret-file'];
export const CONURECTL_COMMANDS: Readonly<Record<string, readonly string[]>> = {
  status: [],
  members: [],
  'members remove': [],
  'members add': ['--role'],
  'members promote': [],
  'leader transfer': [],
  'kv put': [],
  'kv get': [],
  'kv del': [],
  health: [],
  recover: ['--data-dir', '--node-id', '--yes'],
  'snapshot save': [],
  'snapshot status': [],
  'snapshot restore': ['--data-dir', '--node-id', '--advertise-raft', '--advertise-http'],
};

/** Repository root: the nearest ancestor of this file holding charts/conuredb/Chart.yaml. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'charts', 'conuredb', 'Chart.yaml'))) return dir;
    dir = resolve(dir, '..');
  }
  return process.cwd();
}

export const CHART_DIR = join(repoRoot(), 'charts', 'conuredb');
export const FLUXION_CHART_DIR = join(repoRoot(), 'charts', 'fluxiondb');
export const PLATFORM_CHART_DIR = join(repoRoot(), 'charts', 'conure-platform');
/** The values-table generator every chart shares: `node GENERATOR <chart dir> [--write|--check FILE]`. */
export const GENERATOR = join(repoRoot(), 'charts', 'generate-values-table.mjs');

/** conurectl compiled in the same build as this file (<dist>/src/cli/conurectl.js). */
export const CONURECTL_JS = fileURLToPath(new URL('../../src/cli/conurectl.js', import.meta.url));
/** fluxiond compiled in the same build as this file. */
export const FLUXIOND_JS = fileURLToPath(new URL('../../src/cli/fluxiond.js', import.meta.url));

/**
 * The long flags fluxiond's real `--help` lists (`--secret-key`, `--data`, ...), from the build
 * this file belongs to; throws when fluxiond cannot print its help.
 */
export function fluxiondFlags(): Set<string> {
  const r = spawnSync(process.execPath, [FLUXIOND_JS, '--help'], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`fluxiond --help exited ${r.status}: ${r.stderr}`);
  return new Set([...r.stdout.matchAll(/(?:^|[\s,])(--[a-z][a-z0-9-]*)/gm)].map((m) => m[1]!));
}


/** helm from `$(go env GOPATH)/bin` (where CI installs it) or PATH; undefined when absent. */
export function findHelm(): string | undefined {
  const go = spawnSync('go', ['env', 'GOPATH'], { encoding: 'utf8' });
  const candidates: string[] = [];
  if (go.status === 0 && go.stdout.trim()) candidates.push(join(go.stdout.trim(), 'bin', 'helm'));
  candidates.push(join(process.env.HOME ?? '', 'go', 'bin', 'helm'));
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir) candidates.push(join(dir, 'helm'));
  return candidates.find((p) => existsSync(p));
}

export const HELM = findHelm();
/** Reason to skip helm tests, or false. Only a genuinely missing helm skips. */
export const SKIP_NO_HELM: string | false = HELM ? false : 'helm not found in $(go env GOPATH)/bin or PATH; run scripts/setup.sh (CI installs it)';

export interface HelmResult { ok: boolean; stdout: string; stderr: string }

/** Runs helm with arguments; never throws. */
export function helm(args: readonly string[]): HelmResult {
  if (!HELM) throw new Error('helm is not installed');
  const r = spawnSync(HELM, args, { encoding: 'utf8', timeout: 60_000, env: { ...process.env, HELM_CACHE_HOME: join(repoRoot(), '.build', 'helm-cache') } });
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error ? String(r.error) : '') };
}

/** `helm template <release> charts/conuredb --namespace <ns> <args>`. */
export function template(args: readonly string[], release = 'conuredb', namespace = 'default'): HelmResult {
  return templateChart(CHART_DIR, args, release, namespace);
}

/** `helm template <release> <chart> --namespace <ns> <args>`, for any chart directory. */
export function templateChart(chart: string, args: readonly string[], release: string, namespace = 'default'): HelmResult {
  return helm(['template', release, chart, '--namespace', namespace, ...args]);
}

/** `--set a=b` pairs from ["a=b", ...]. */
export function sets(pairs: readonly string[]): string[] {
  return pairs.flatMap((p) => ['--set', p]);
}

let platformChart: string | undefined;
/**
 * charts/conure-platform ready to render: a private copy (under .build, removed at exit) of it
 * and of charts/conuredb, on which `helm dependency build` has packaged the embedded store from
 * file://../conuredb. A copy, so that concurrent test files never race on the chart's charts/
 * folder and the worktree is left untouched. Offline: file:// needs no repository.
 */
export function platformChartDir(): string {
  if (platformChart) return platformChart;
  const root = join(repoRoot(), '.build');
  mkdirSync(root, { recursive: true });
  const tmp = mkdtempSync(join(root, 'platform-chart-'));
  process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));
  const skipBuilt = (src: string) => !/[\\/]conure-platform[\\/]charts([\\/]|$)/.test(src);
  cpSync(CHART_DIR, join(tmp, 'conuredb'), { recursive: true });
  cpSync(PLATFORM_CHART_DIR, join(tmp, 'conure-platform'), { recursive: true, filter: skipBuilt });
  const r = helm(['dependency', 'build', join(tmp, 'conure-platform'), '--skip-refresh']);
  if (!r.ok) throw new Error(`helm dependency build: ${r.stderr}`);
  platformChart = join(tmp, 'conure-platform');
  return platformChart;
}

/** A Kubernetes object as parsed from YAML. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** Parses a multi-document YAML stream; fails on YAML errors; drops empty documents. */
export function parseManifests(text: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as K8sObject | null;
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

type Validatable = { validate(): void };
const MODELS: Record<string, new (data: never) => Validatable> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'v1/Pod': Pod,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'apps/v1/StatefulSet': StatefulSet,
  'batch/v1/Job': Job,
  'batch/v1/CronJob': CronJob,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'networking.k8s.io/v1/Ingress': Ingress,
  'v1/Secret': Secret,
  'v1/Namespace': Namespace,
  'apps/v1/Deployment': Deployment,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy': ValidatingAdmissionPolicy,
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding': ValidatingAdmissionPolicyBinding,
};

/**
 * Validates one object against the Kubernetes OpenAPI schema through kubernetes-models.
 * ServiceMonitor (a Prometheus Operator CRD kubernetes-models does not ship) gets a structural
 * check instead. Throws, naming the object, on any violation or unknown kind.
 */
export function validateObject(obj: K8sObject): void {
  const key = `${obj.apiVersion}/${obj.kind}`;
  const name = `${key} ${obj.metadata?.name ?? '<unnamed>'}`;
  if (key === 'monitoring.coreos.com/v1/ServiceMonitor') {
    const spec = obj.spec as { selector?: { matchLabels?: object }; endpoints?: { port?: string; path?: string }[] } | undefined;
    if (!spec?.selector?.matchLabels || !Array.isArray(spec.endpoints) || spec.endpoints.length === 0 || !spec.endpoints.every((e) => e.port && e.path)) {
      throw new Error(`${name}: needs spec.selector.matchLabels and endpoints with port and path`);
    }
    return;
  }
  const Model = MODELS[key];
  if (!Model) throw new Error(`${name}: no kubernetes-models class registered for this kind`);
  try {
    new Model(obj as never).validate();
  } catch (err) {
    throw new Error(`${name}: ${(err as Error).message}`, { cause: err });
  }
  const labelNames = Object.keys(obj.metadata.labels ?? {});
  for (const l of labelNames) if (!/^([a-z0-9.-]+\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(l)) throw new Error(`${name}: bad label name ${l}`);
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(obj.metadata.name) || obj.metadata.name.length > 63) throw new Error(`${name}: bad object name`);
}

/** Environment variables of a container spec as a map (plain values only). */
export function envOf(container: { env?: { name: string; value?: string }[] }): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of container.env ?? []) if (e.value !== undefined) out[e.name] = e.value;
  return out;
}

/** Where the conuredb chart mounts its cluster secret (peerAuth), for key `key`. */
export function peerSecretPath(key = 'peer-secret'): string {
  return `/etc/conure/peer/${key}`;
}

/**
 * The cluster secret of a rendering: the decoded value of the chart's Secret `<fullname>-peer`
 * (key `key`); throws when the rendering has none.
 */
export function renderedPeerSecret(objs: K8sObject[], fullname = 'conure', key = 'peer-secret'): string {
  const s = objs.find((o) => o.kind === 'Secret' && o.metadata.name === `${fullname}-peer`);
  const b64 = (s?.data as Record<string, string> | undefined)?.[key];
  if (b64 === undefined) throw new Error(`no Secret ${fullname}-peer with key ${key} in the rendering`);
  return Buffer.from(b64, 'base64').toString('utf8');
}

/** conurectl invocations in a script: global flags, the command, and the command's flags. */
export function conurectlCalls(script: string): { text: string; globals: string[]; command: string; flags: string[] }[] {
  const calls: { text: string; globals: string[]; command: string; flags: string[] }[] = [];
  const lines = script.split('\n').filter((l) => !/^\s*#/.test(l));
  const re = /(?:^|[;&|(!]|--|\b(?:if|until|while|retry|then|do|exec))\s*conurectl\b([^;|&)>\n]*)/g;
  for (const line of lines) {
    for (const m of line.matchAll(re)) {
      const tokens = m[1]!.trim().split(/\s+/).filter(Boolean).map((t) => t.replace(/^["']|["']$/g, ''));
      const globals: string[] = [];
      let i = 0;
      while (i < tokens.length && tokens[i]!.startsWith('-')) {
        const flag = tokens[i]!.split('=')[0]!;
        globals.push(flag);
        i += tokens[i]!.includes('=') ? 1 : 2;
      }
      const words = tokens.slice(i).filter((t) => !t.startsWith('-'));
      const two = words.slice(0, 2).join(' ');
      const command = CONURECTL_COMMANDS[two] !== undefined ? two : words[0] ?? '';
      const flags = tokens.slice(i).filter((t) => t.startsWith('-')).map((t) => t.split('=')[0]!);
      calls.push({ text: m[0].trim(), globals, command, flags });
    }
  }
  return calls;
}


const notesCharts = new Map<string, string>();
/**
 * Renders templates/NOTES.txt (which `helm template` evaluates but does not print) through a
 * copy of the chart, under .build/, with one extra template that includes NOTES.txt.
 * Returns the NOTES text, or the failed HelmResult's stderr as an Error. `chart` defaults to
 * charts/conuredb; a chart with dependencies must already have them built (platformChartDir()).
 */
export function renderNotes(args: readonly string[], release = 'conuredb', namespace = 'default', chart = CHART_DIR): string {
  let notesChart = notesCharts.get(chart);
  if (!notesChart) {
    const root = join(repoRoot(), '.build');
    mkdirSync(root, { recursive: true });
    const tmp = mkdtempSync(join(root, 'notes-chart-'));
    process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));
    notesChart = join(tmp, basename(chart));
    cpSync(chart, notesChart, { recursive: true });
    writeFileSync(join(notesChart, 'templates', 'zz-notes.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  notes: |-\n    {{- include (print $.Template.BasePath "/NOTES.txt") . | nindent 4 }}\n');
    notesCharts.set(chart, notesChart);
  }
  const r = helm(['template', release, notesChart, '--namespace', namespace, '--show-only', 'templates/zz-notes.yaml', ...args]);
  if (!r.ok) throw new Error(r.stderr);
  return (parseManifests(r.stdout)[0]!.data as { notes: string }).notes;
}

interface PeerContainer { name: string; args?: string[]; env?: { name: string; value?: string }[]; volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[] }
interface SecretVolume { secretName: string; defaultMode?: number; optional?: boolean; items?: { key: string; path: string }[] }
interface PeerPodSpec { containers: PeerContainer[]; initContainers?: PeerContainer[]; volumes?: { name: string; secret?: SecretVolume }[] }

/** Member-only conurectl commands: they need the cluster secret's token. */
export const MEMBER_ONLY_COMMANDS: ReadonlySet<string> = new Set(['members add', 'members remove', 'members promote', 'leader transfer']);

/** The pod specs of a rendering: each StatefulSet's, the scale-down Job's and the test pod's. */
export function podSpecs(objs: K8sObject[]): { name: string; kind: string; spec: PeerPodSpec }[] {
  return objs.flatMap((o) => {
    if (o.kind === 'StatefulSet' || o.kind === 'Job') return [{ name: o.metadata.name, kind: o.kind, spec: (o.spec as { template: { spec: PeerPodSpec } }).template.spec }];
    if (o.kind === 'Pod') return [{ name: o.metadata.name, kind: o.kind, spec: o.spec as PeerPodSpec }];
    return [];
  });
}

/**
 * Asserts the peer-authentication wiring of a rendering. `false`: none of it anywhere. Otherwise:
 * Secret `secretName` (rendered by the chart iff `created`, random 48 characters, kept on
 * uninstall), mounted read-only, mode 0400, one key, in every member's conured and
 * wait-for-cluster containers and in the scale-down Job (optional there: on the upgrade that
 * turns peerAuth on the hook runs before the Secret exists); `--peer-secret-file` on every
 * member; CONURE_PEER_SECRET_FILE in every container that makes member-only conurectl calls;
 * nothing in the `helm test` pod, whose script makes none.
 */
export function assertPeerAuth(objs: K8sObject[], want: false | { secretName: string; key: string; created: boolean }): void {
  // The chart's peer Secrets (a platform rendering also holds the admin token's).
  const secrets = objs.filter((o) => o.kind === 'Secret' && o.metadata.labels?.['app.kubernetes.io/component'] === 'peer-auth');
  const pods = podSpecs(objs);
  if (want === false) {
    assert.deepEqual(secrets, [], 'peerAuth off: no Secret');
    for (const { name, spec } of pods) {
      assert.ok(!(spec.volumes ?? []).some((v) => v.secret), `${name}: no secret volume`);
      for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
        assert.ok(!(c.args ?? []).some((a) => a.startsWith('--peer-secret-file')), `${name}/${c.name}: no --peer-secret-file`);
        assert.equal(envOf(c).CONURE_PEER_SECRET_FILE, undefined, `${name}/${c.name}: no CONURE_PEER_SECRET_FILE`);
      }
    }
    return;
  }
  const file = peerSecretPath(want.key);
  if (want.created) {
    assert.deepEqual(secrets.map((x) => x.metadata.name), [want.secretName]);
    const secret = secrets[0]!;
    assert.equal(secret.metadata.annotations?.['helm.sh/resource-policy'], 'keep', 'the Secret outlives helm uninstall, as the PVCs do');
    assert.equal(secret.metadata.annotations?.['helm.sh/hook'], undefined, 'a release resource, not a hook');
    assert.deepEqual(Object.keys(secret.data as object), [want.key]);
    assert.match(Buffer.from((secret.data as Record<string, string>)[want.key]!, 'base64').toString('utf8'), /^[A-Za-z0-9]{48}$/);
  } else {
    assert.deepEqual(secrets, [], 'existingSecret: the chart renders no Secret');
    assert.ok(!objs.some((o) => o.kind === 'Secret' && o.metadata.name === want.secretName), `${want.secretName} is yours, not the chart's`);
  }
  let members = 0;
  for (const { name, kind, spec } of pods) {
    const vol = (spec.volumes ?? []).find((v) => v.name === 'peer-secret');
    const containers = [...spec.containers, ...(spec.initContainers ?? [])];
    if (kind === 'Pod') {
      assert.equal(vol, undefined, `${name}: the helm test pod gets no secret`);
      for (const c of containers) assert.equal(envOf(c).CONURE_PEER_SECRET_FILE, undefined, `${name}/${c.name}`);
      continue;
    }
    assert.ok(vol?.secret, `${name}: secret volume peer-secret`);
    assert.equal(vol.secret.secretName, want.secretName, `${name}: mounts ${want.secretName}`);
    assert.equal(vol.secret.defaultMode, 0o400, `${name}: mode 0400`);
    assert.deepEqual(vol.secret.items, [{ key: want.key, path: want.key }], `${name}: only the one key`);
    assert.equal(vol.secret.optional, kind === 'Job' ? true : undefined, `${name}: optional only in the hook`);
    const needs = kind === 'Job' ? ['scale-down'] : ['wait-for-cluster', 'conured'];
    for (const cname of needs) {
      const c = containers.find((x) => x.name === cname);
      assert.ok(c, `${name}/${cname}`);
      assert.ok(c.volumeMounts?.some((m) => m.name === 'peer-secret' && m.mountPath === file.slice(0, file.lastIndexOf('/')) && m.readOnly === true), `${name}/${cname}: read-only mount`);
      assert.equal(envOf(c).CONURE_PEER_SECRET_FILE, file, `${name}/${cname}: CONURE_PEER_SECRET_FILE`);
    }
    if (kind === 'StatefulSet') {
      members++;
      const c = spec.containers.find((x) => x.name === 'conured')!;
      assert.equal(c.args!.filter((a) => a === `--peer-secret-file=${file}`).length, 1, `${name}: --peer-secret-file=${file}`);
    }
  }
  assert.equal(members, 3, 'the bootstrap, voter and arbiter StatefulSets');
}
