/**
 * Shared support for the chart tests (test/e2e/helm-*.test.ts): locating helm and the chart,
 * rendering with `helm template`, parsing the documents, validating them with
 * kubernetes-models, and the ONE list of conured / conurectl flags the chart may use.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { ConfigMap, PersistentVolumeClaim, Pod, Service, ServiceAccount } from 'kubernetes-models/v1';
import { StatefulSet } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';

/** The conured flag contract (docs: issue 7 / src/cli/conured.ts). Each has a CONURE_* env var. */
export const CONURED_FLAGS: readonly string[] = [
  '--node-id', '--http-addr', '--raft-addr', '--client-addr', '--advertise-http', '--advertise-raft',
  '--data-dir', '--bootstrap', '--join', '--join-backoff', '--join-retries', '--role',
];

/** The conured environment-variable contract, plus CONURE_ENDPOINTS read by conurectl. */
export const CONURE_ENV_VARS: readonly string[] = [
  'CONURE_NODE_ID', 'CONURE_HTTP_ADDR', 'CONURE_RAFT_ADDR', 'CONURE_CLIENT_ADDR', 'CONURE_ADVERTISE_HTTP',
  'CONURE_ADVERTISE_RAFT', 'CONURE_DATA_DIR', 'CONURE_BOOTSTRAP', 'CONURE_JOIN', 'CONURE_JOIN_BACKOFF',
  'CONURE_JOIN_RETRIES', 'CONURE_ROLE', 'CONURE_ENDPOINTS',
];

/** The conurectl contract: global flags, and each command with the flags it accepts. */
export const CONURECTL_GLOBAL_FLAGS: readonly string[] = ['--endpoints'];
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

/** conurectl compiled in the same build as this file (<dist>/src/cli/conurectl.js). */
export const CONURECTL_JS = fileURLToPath(new URL('../../src/cli/conurectl.js', import.meta.url));


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
  return helm(['template', release, CHART_DIR, '--namespace', namespace, ...args]);
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
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
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


let notesChart: string | undefined;
/**
 * Renders templates/NOTES.txt (which `helm template` evaluates but does not print) through a
 * copy of the chart, under .build/, with one extra template that includes NOTES.txt.
 * Returns the NOTES text, or the failed HelmResult's stderr as an Error.
 */
export function renderNotes(args: readonly string[], release = 'conuredb', namespace = 'default'): string {
  if (!notesChart) {
    const root = join(repoRoot(), '.build');
    mkdirSync(root, { recursive: true });
    const tmp = mkdtempSync(join(root, 'notes-chart-'));
    process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));
    notesChart = join(tmp, 'conuredb');
    cpSync(CHART_DIR, notesChart, { recursive: true });
    writeFileSync(join(notesChart, 'templates', 'zz-notes.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  notes: |-\n    {{- include (print $.Template.BasePath "/NOTES.txt") . | nindent 4 }}\n');
  }
  const r = helm(['template', release, notesChart, '--namespace', namespace, '--show-only', 'templates/zz-notes.yaml', ...args]);
  if (!r.ok) throw new Error(r.stderr);
  return (parseManifests(r.stdout)[0]!.data as { notes: string }).notes;
}
