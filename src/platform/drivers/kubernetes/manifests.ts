/**
 * What the kubernetes driver applies for a database, as plain objects. Pure: no I/O, clock or
 * randomness, so the names, the chart values and the tenant objects are unit-tested here and the
 * charts' own rendering (helm.ts) stays the one source of every instance object.
 *
 * ```
 *  tenant namespace  fluxiondb-<tenant> | conuredb-<tenant>   (labels: managed-by, tenant)
 *    ResourceQuota   conure-tenant-quota          bounds the namespace (counts and storage)
 *    NetworkPolicy   conure-tenant-isolation      ingress only from the namespace itself, from
 *                                                 namespaces labelled with the same tenant, and
 *                                                 from the platform's namespace
 *  per database
 *    Fluxion   release db-<name>, fullname db-<name>-fluxiondb, Secret <fullname>-key (the key)
 *    ConureDB  fullname <name> (members <name>-bootstrap-0, <name>-0, <name>-arbiter-0),
 *              Secret <fullname>-peer (the cluster secret)
 *    every object labelled platform.conure.io/database=<label of the id> (pods and claims too)
 *    and annotated platform.conure.io/database-id=<id>
 * ```
 *
 * `<name>` is the database's name (a DNS label; the id when none was given). Names longer than
 * the charts allow are shortened with a hash suffix, so they stay unique and stable.
 */
import { createHash } from 'node:crypto';
import { chartFullname, type Topology } from '../../../planner/index.js';
import { conureDbTopology } from '../../engines/index.js';
import type { DatabaseRecord, FluxionSpec, ConureDbSpec } from '../../types.js';

export const MANAGED_BY_LABEL = 'platform.conure.io/managed-by';
export const MANAGED_BY = 'conure-platform';
export const DATABASE_LABEL = 'platform.conure.io/database';
export const DATABASE_ID_ANNOTATION = 'platform.conure.io/database-id';
export const TENANT_LABEL = 'platform.conure.io/tenant';
export const KEY_DIGEST_ANNOTATION = 'platform.conure.io/key-digest';
export const TENANT_QUOTA_NAME = 'conure-tenant-quota';
export const TENANT_POLICY_NAME = 'conure-tenant-isolation';
/** Field manager of every server-side apply. */
export const FIELD_MANAGER = 'conure-platform';

/** Ports inside the pods (the charts' defaults, which the driver does not change). */
export const FLUXION_PORT = 8080;
export const CONUREDB_HTTP_PORT = 8081;
export const CONUREDB_ETCD_PORT = 2379;

/** The default per-tenant quota (counts and storage only: every chart container need not set requests). */
export const DEFAULT_TENANT_QUOTA: Readonly<Record<string, string>> = { pods: '40', persistentvolumeclaims: '40', 'requests.storage': '1Ti' };

/** A Kubernetes object as the driver handles it. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}

/** Where the images come from; `localhost/conure/conuredb:dev` → localhost, conure/conuredb, dev. */
export interface ImageRef { registry: string; repository: string; tag: string; pullPolicy: string }

export function parseImage(image: string, pullPolicy = 'IfNotPresent'): ImageRef {
  const m = /^(?:([^/]+\.[^/]+|[^/]+:[0-9]+|localhost)\/)?([a-z0-9._/-]+):([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$/.exec(image);
  if (!m) throw new Error(`image ${JSON.stringify(image)} must be [registry/]repository:tag`);
  if (!['Always', 'IfNotPresent', 'Never'].includes(pullPolicy)) throw new Error(`image pull policy ${JSON.stringify(pullPolicy)} must be Always, IfNotPresent or Never`);
  return { registry: m[1] ?? 'docker.io', repository: m[2]!, tag: m[3]!, pullPolicy };
}

/** `s` if it is at most `max` characters, else a prefix and 8 hex digits of its SHA-256 (stable, unique in practice). */
function fit(s: string, max: number): string {
  if (s.length <= max) return s;
  const h = createHash('sha256').update(s).digest('hex').slice(0, 8);
  return `${s.slice(0, max - 9).replace(/-+$/, '')}-${h}`;
}

/** The tenant namespace of a database: `fluxiondb-<tenant>` or `conuredb-<tenant>`. */
export function namespaceOf(db: Pick<DatabaseRecord, 'engine' | 'tenant'>): string {
  return `${db.engine === 'fluxion' ? 'fluxiondb' : 'conuredb'}-${db.tenant}`;
}

/** Label value naming the database (a label value is at most 63 characters; ids can be 64). */
export function databaseLabel(id: string): string { return fit(id, 63); }

/** Fluxion: the release (`db-<name>`, the guide's) and the resource prefix. */
export function fluxionNames(db: Pick<DatabaseRecord, 'name'>): { release: string; fullname: string; keySecret: string; service: string } {
  const release = fit(`db-${db.name}`, 42);
  const fullname = `${release}-fluxiondb`;
  return { release, fullname, keySecret: `${fullname}-key`, service: fullname };
}

/** ConureDB: the resource prefix (the chart allows 40 characters) and the peer Secret. */
export function conureDbNames(db: Pick<DatabaseRecord, 'name'>): { release: string; fullname: string; peerSecret: string } {
  const fullname = fit(db.name, 40);
  return { release: fullname, fullname: chartFullname(fullname, fullname), peerSecret: `${fullname}-peer` };
}

/** The topology the chart renders for a ConureDB database (member ids are pod names). */
export function conureDbTopologyOf(db: DatabaseRecord & { spec: ConureDbSpec }): Topology {
  return conureDbTopology(db.spec, conureDbNames(db).fullname);
}

/** Deep merge: `over` wins; arrays are replaced, not merged. */
export function mergeValues(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? mergeValues(b, v) : v;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Options shared by the values functions. */
export interface ValuesOptions {
  image: ImageRef;
  /** Operator-supplied chart values (PLATFORM_K8S_<ENGINE>_VALUES); the platform's own values win. */
  extra?: Record<string, unknown>;
  /** Pod annotation that changes when the master key does (Fluxion): a key rotation restarts the pod. */
  keyDigest?: string;
}

function imageValues(i: ImageRef): Record<string, unknown> {
  return { registry: i.registry, repository: i.repository, tag: i.tag, pullPolicy: i.pullPolicy };
}

/** charts/fluxiondb values for a Fluxion database: `sizing.ram` applies the platform's sizing rule. */
export function fluxionValues(db: DatabaseRecord & { spec: FluxionSpec }, o: ValuesOptions): Record<string, unknown> {
  const n = fluxionNames(db);
  return mergeValues(o.extra ?? {}, {
    fullnameOverride: n.fullname,
    replicaCount: 1,
    image: imageValues(o.image),
    secret: { create: false, name: n.keySecret, dataKey: 'secret-key' },
    sizing: { ram: db.spec.ram },
    ...(o.keyDigest ? { podAnnotations: { [KEY_DIGEST_ANNOTATION]: o.keyDigest } } : {}),
    tests: { enabled: false },
  });
}

/** charts/conuredb values for a ConureDB database. */
export function conureDbValues(db: DatabaseRecord & { spec: ConureDbSpec }, o: ValuesOptions): Record<string, unknown> {
  const n = conureDbNames(db);
  return mergeValues(o.extra ?? {}, {
    fullnameOverride: n.fullname,
    image: imageValues(o.image),
    voters: { replicas: db.spec.voters, pvc: { size: db.spec.storage } },
    arbiter: { mode: db.spec.arbiter },
    peerAuth: { enabled: true, existingSecret: n.peerSecret, secretKey: 'peer-secret' },
  });
}

/** The tenant's namespace, quota and isolation policy. */
export function tenantObjects(db: Pick<DatabaseRecord, 'engine' | 'tenant'>, o: { quota: Readonly<Record<string, string>>; platformNamespace?: string }): KubeObject[] {
  const ns = namespaceOf(db);
  const labels = { [MANAGED_BY_LABEL]: MANAGED_BY, [TENANT_LABEL]: db.tenant };
  const from: unknown[] = [
    { podSelector: {} },
    { namespaceSelector: { matchLabels: { [TENANT_LABEL]: db.tenant } } },
    ...(o.platformNamespace ? [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': o.platformNamespace } } }] : []),
  ];
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels } },
    { apiVersion: 'v1', kind: 'ResourceQuota', metadata: { name: TENANT_QUOTA_NAME, namespace: ns, labels }, spec: { hard: { ...o.quota } } },
    {
      apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: TENANT_POLICY_NAME, namespace: ns, labels },
      spec: { podSelector: {}, policyTypes: ['Ingress'], ingress: [{ from }] },
    },
  ];
}

/** The Secret a database needs (Fluxion's master key, ConureDB's cluster secret), labelled as the database. */
export function secretObject(db: DatabaseRecord, name: string, key: string, value: string): KubeObject {
  return labelled(db, { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: namespaceOf(db) }, type: 'Opaque', stringData: { [key]: value } });
}

/** `obj` with the database's label and id annotation on it, its pod template and its claim templates. */
export function labelled(db: Pick<DatabaseRecord, 'id'>, obj: KubeObject): KubeObject {
  const label = { [MANAGED_BY_LABEL]: MANAGED_BY, [DATABASE_LABEL]: databaseLabel(db.id) };
  const meta = (m: Record<string, unknown> | undefined, annotate: boolean): Record<string, unknown> => ({
    ...(m ?? {}),
    labels: { ...((m?.labels as Record<string, string> | undefined) ?? {}), ...label },
    ...(annotate ? { annotations: { ...((m?.annotations as Record<string, string> | undefined) ?? {}), [DATABASE_ID_ANNOTATION]: db.id } } : {}),
  });
  const out: KubeObject = { ...obj, metadata: meta(obj.metadata, true) as KubeObject['metadata'] };
  const spec = obj.spec as Record<string, unknown> | undefined;
  if (spec && (obj.kind === 'StatefulSet' || obj.kind === 'Job')) {
    const template = spec.template as Record<string, unknown> | undefined;
    const claims = spec.volumeClaimTemplates as Array<Record<string, unknown>> | undefined;
    out.spec = {
      ...spec,
      ...(template ? { template: { ...template, metadata: meta(template.metadata as Record<string, unknown> | undefined, false) } } : {}),
      ...(claims ? { volumeClaimTemplates: claims.map((c) => ({ ...c, metadata: meta(c.metadata as Record<string, unknown> | undefined, false) })) } : {}),
    };
  }
  return out;
}

/** Helm hook phases the driver runs itself (charts' `helm.sh/hook` annotation). */
export type HookPhase = 'pre-install' | 'post-install' | 'pre-upgrade' | 'post-upgrade';

/** Rendered objects split into plain ones and hooks (test hooks dropped), in helm's install order. */
export function splitHooks(objects: KubeObject[]): { main: KubeObject[]; hooks: Array<{ obj: KubeObject; phases: string[]; weight: number; deletePolicies: string[] }> } {
  const main: KubeObject[] = [];
  const hooks: Array<{ obj: KubeObject; phases: string[]; weight: number; deletePolicies: string[] }> = [];
  for (const obj of objects) {
    const a = obj.metadata.annotations ?? {};
    const hook = a['helm.sh/hook'];
    if (hook === undefined) { main.push(obj); continue; }
    const phases = hook.split(',').map((s) => s.trim()).filter(Boolean);
    if (phases.every((p) => p.startsWith('test'))) continue;
    hooks.push({ obj, phases, weight: Number(a['helm.sh/hook-weight'] ?? 0) || 0, deletePolicies: (a['helm.sh/hook-delete-policy'] ?? 'before-hook-creation').split(',').map((s) => s.trim()) });
  }
  main.sort((x, y) => kindRank(x.kind) - kindRank(y.kind));
  hooks.sort((x, y) => x.weight - y.weight);
  return { main, hooks };
}

/** Helm's install order, for the kinds the charts render; others go last. */
const KIND_ORDER = ['Namespace', 'NetworkPolicy', 'ResourceQuota', 'ServiceAccount', 'Secret', 'ConfigMap', 'PersistentVolumeClaim', 'Service', 'StatefulSet', 'Job', 'PodDisruptionBudget', 'Ingress'];
function kindRank(kind: string): number {
  const i = KIND_ORDER.indexOf(kind);
  return i < 0 ? KIND_ORDER.length : i;
}

/** Kinds the driver lists by label to prune and to remove (never Secrets: it may not list them). */
export const OWNED_KINDS: ReadonlyArray<{ apiVersion: string; kind: string }> = [
  { apiVersion: 'apps/v1', kind: 'StatefulSet' },
  { apiVersion: 'batch/v1', kind: 'Job' },
  { apiVersion: 'v1', kind: 'Service' },
  { apiVersion: 'v1', kind: 'ConfigMap' },
  { apiVersion: 'v1', kind: 'ServiceAccount' },
  { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget' },
  { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy' },
  { apiVersion: 'v1', kind: 'PersistentVolumeClaim' },
];
