/**
 * The kubernetes driver: every database is the set of objects its chart renders (charts/fluxiondb,
 * charts/conuredb, through `helm template`), applied with server-side apply into one namespace per
 * tenant, with the tenant's ResourceQuota and NetworkPolicy and the database's Secret.
 *
 * ```
 *  apply    tenant objects → Secret (Fluxion key: applied; ConureDB peer secret: created once)
 *           → hooks pre-install|pre-upgrade → chart objects (helm's order) → prune what the
 *           chart no longer renders → hooks post-install|post-upgrade → claims of members that
 *           left (ConureDB scale-down) deleted
 *  halt     every StatefulSet to 0 replicas (a field manager of its own), claims kept
 *  remove   every labelled object and claim, the Secret; the namespace with the tenant's last one
 *  observe  StatefulSets and pods by label; members reached at their pod IPs
 * ```
 *
 * Hooks: the charts' Jobs (ConureDB's scale-down Job removes surplus members from raft before the
 * StatefulSets shrink) run as helm runs them: deleted first (`before-hook-creation`), applied,
 * awaited, deleted on success (`hook-succeeded`). Test hooks are skipped.
 *
 * Backups and restores are not built for this driver yet: they fail with `unsupported`.
 * Every method is idempotent and serialised per database; every wait is bounded.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ConureError, InvalidArgumentError, KeyedLock, createLogger, type Logger } from '../../../util/index.js';
import { ConureHttpClient } from '../../../client/index.js';
import type { BackupResult, ConureDbSpec, DatabaseRecord, Driver, FluxionSpec, InstanceObservation, InstanceSecret } from '../../types.js';
import type { HelmRenderer } from './helm.js';
import type { KubeApi } from './kube-api.js';
import {
  CONUREDB_ETCD_PORT, CONUREDB_HTTP_PORT, DATABASE_ID_ANNOTATION, DATABASE_LABEL, DEFAULT_TENANT_QUOTA, FLUXION_PORT, MANAGED_BY, MANAGED_BY_LABEL, OWNED_KINDS,
  conureDbNames, conureDbTopologyOf, conureDbValues, databaseLabel, fluxionNames, fluxionValues, labelled, namespaceOf, secretObject, splitHooks, tenantObjects,
  type HookPhase, type ImageRef, type KubeObject,
} from './manifests.js';

export interface KubernetesDriverOptions {
  kube: KubeApi;
  renderer: HelmRenderer;
  image: ImageRef;
  /** Chart values the operator adds per engine (PLATFORM_K8S_FLUXION_VALUES / _CONUREDB_VALUES). */
  extraValues?: { fluxion?: Record<string, unknown>; conuredb?: Record<string, unknown> };
  /** Hard limits of each tenant namespace's ResourceQuota. */
  quota?: Record<string, string>;
  /** The platform's own namespace, admitted by each tenant's NetworkPolicy. */
  platformNamespace?: string;
  clusterDomain?: string;
  logger?: Logger;
  /** Poll interval of every wait, ms. Default 1 s. */
  pollMs?: number;
  /** Bound on one hook Job, and on a halt or removal, ms. Default 10 min. */
  waitTimeoutMs?: number;
}

const HALT_FIELD_MANAGER = 'conure-platform-halt';
/** Kinds pruned when the chart stops rendering them (never claims: they hold data; never hook Jobs). */
const PRUNED_KINDS = OWNED_KINDS.filter((k) => k.kind !== 'PersistentVolumeClaim' && k.kind !== 'Job');

interface Pod { name: string; ip?: string; running: boolean; ready: boolean; role: 'voter' | 'arbiter' }

export class KubernetesDriver implements Driver {
  readonly name = 'kubernetes' as const;
  private readonly kube: KubeApi;
  private readonly log: Logger;
  private readonly locks = new KeyedLock();
  private readonly pollMs: number;
  private readonly waitTimeoutMs: number;
  private readonly domain: string;
  private closed = false;

  constructor(private readonly o: KubernetesDriverOptions) {
    this.kube = o.kube;
    this.log = o.logger ?? createLogger('kubernetes-driver');
    this.pollMs = o.pollMs ?? 1000;
    this.waitTimeoutMs = o.waitTimeoutMs ?? 10 * 60_000;
    this.domain = o.clusterDomain ?? 'cluster.local';
  }

  // ---- Driver ---------------------------------------------------------------------------------

  apply(db: DatabaseRecord, secret: InstanceSecret, signal?: AbortSignal): Promise<Record<string, string>> {
    return this.locked(db, async () => {
      const ns = namespaceOf(db);
      const { main, hooks } = splitHooks((await this.render(db, secret)).map((obj) => labelled(db, obj)));
      const primary = main.find((x) => x.kind === 'StatefulSet');
      if (!primary) throw new ConureError('internal', `the ${db.engine} chart rendered no StatefulSet`);
      const live = await this.kube.read('apps/v1', 'StatefulSet', primary.metadata.name, ns);
      const owner = live?.metadata.annotations?.[DATABASE_ID_ANNOTATION];
      if (live && owner !== db.id) throw new InvalidArgumentError(`namespace ${ns} already has ${primary.metadata.name}${owner ? `, of database ${owner}` : ', not made by the platform'}; give this database another name`);
      for (const t of tenantObjects(db, { quota: this.o.quota ?? DEFAULT_TENANT_QUOTA, ...(this.o.platformNamespace ? { platformNamespace: this.o.platformNamespace } : {}) })) await this.kube.apply(t);
      await this.applySecret(db, secret);
      signal?.throwIfAborted();
      const upgrade = live !== undefined;
      await this.runHooks(hooks, upgrade ? 'pre-upgrade' : 'pre-install', signal);
      for (const obj of main) await this.applyObject(obj);
      await this.prune(db, main);
      // As `helm upgrade --wait`: post hooks see the new pods running (ConureDB's scale-down Job
      // removes a surplus arbiter only once the new voters have joined).
      if (hooks.some((h) => h.phases.includes(upgrade ? 'post-upgrade' : 'post-install'))) {
        let why = '';
        await this.until(`the StatefulSets of ${db.id} rolled out`, async () => (why = await this.rolloutReason(db)) === '', signal).catch((err: Error) => { throw new ConureError('timeout', `${err.message}: ${why}`); });
      }
      await this.runHooks(hooks, upgrade ? 'post-upgrade' : 'post-install', signal);
      if (db.spec.engine === 'conuredb') await this.deleteLeftClaims(db, main);
      this.log.info({ db: db.id, namespace: ns, objects: main.length, upgrade }, 'instance_applied');
      return this.endpoints(db);
    });
  }

  async waitReady(db: DatabaseRecord, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    this.open();
    let why = 'not looked yet';
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      signal?.throwIfAborted();
      why = await this.notReadyReason(db).catch((err: Error) => err.message);
      if (why === '') return;
      if (Date.now() > deadline) throw new ConureError('timeout', `${db.id} not ready after ${Math.round(timeoutMs / 1000)} s: ${why}`);
      await sleep(this.pollMs, signal);
    }
  }

  halt(db: DatabaseRecord): Promise<void> {
    return this.locked(db, async () => {
      const ns = namespaceOf(db);
      for (const s of await this.owned(db, 'apps/v1', 'StatefulSet')) {
        await this.kube.apply({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: s.metadata.name, namespace: ns }, spec: { replicas: 0 } }, HALT_FIELD_MANAGER);
      }
      await this.until(`the pods of ${db.id} stopped`, async () => (await this.pods(db)).length === 0);
      this.log.info({ db: db.id, namespace: ns }, 'instance_halted');
    });
  }

  remove(db: DatabaseRecord, policy: 'Delete' | 'WipeOut'): Promise<void> {
    return this.locked(db, async () => {
      const ns = namespaceOf(db);
      for (const k of OWNED_KINDS) for (const obj of await this.owned(db, k.apiVersion, k.kind)) await this.kube.delete(k.apiVersion, k.kind, obj.metadata.name, ns);
      await this.kube.delete('v1', 'Secret', db.engine === 'fluxion' ? fluxionNames(db).keySecret : conureDbNames(db).peerSecret, ns);
      await this.until(`the pods of ${db.id} gone`, async () => (await this.pods(db)).length === 0);
      const others = await this.kube.list('apps/v1', 'StatefulSet', ns, `${MANAGED_BY_LABEL}=${MANAGED_BY}`);
      if (others.length === 0) await this.kube.delete('v1', 'Namespace', ns);
      this.log.info({ db: db.id, namespace: ns, policy, namespaceDeleted: others.length === 0 }, 'instance_removed');
    });
  }

  async backup(db: DatabaseRecord): Promise<BackupResult> {
    throw new ConureError('unsupported', `backups of ${db.id} need the local driver: the kubernetes driver does not take backups yet (docs/platform.md, "Drivers")`);
  }

  async restore(db: DatabaseRecord): Promise<Record<string, string>> {
    throw new ConureError('unsupported', `restoring ${db.id} needs the local driver: the kubernetes driver does not restore backups yet (docs/platform.md, "Drivers")`);
  }

  async observe(db: DatabaseRecord): Promise<InstanceObservation> {
    this.open();
    const sets = await this.owned(db, 'apps/v1', 'StatefulSet');
    const pods = await this.pods(db);
    const expected = sets.reduce((n, s) => n + Number((s.spec as { replicas?: number } | undefined)?.replicas ?? 0), 0);
    const port = db.engine === 'fluxion' ? FLUXION_PORT : CONUREDB_HTTP_PORT;
    const members = pods.map((p) => ({ id: p.name, role: p.role, running: p.running, ...(p.ip ? { http: `http://${p.ip}:${port}` } : {}) }));
    const first = members.find((m) => m.running && m.http);
    return {
      exists: sets.length > 0,
      running: pods.filter((p) => p.running).length,
      expected,
      endpoints: { ...this.endpoints(db), ...(db.engine === 'fluxion' && first?.http ? { http: first.http } : {}) },
      members,
      ...(db.engine === 'conuredb' ? { fullname: conureDbNames(db).fullname } : {}),
    };
  }

  async list(): Promise<string[]> {
    this.open();
    const sets = await this.kube.list('apps/v1', 'StatefulSet', undefined, `${MANAGED_BY_LABEL}=${MANAGED_BY}`);
    return [...new Set(sets.map((s) => s.metadata.annotations?.[DATABASE_ID_ANNOTATION]).filter((x): x is string => typeof x === 'string'))].sort();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.locks.idle();
  }

  // ---- rendering and applying -----------------------------------------------------------------

  private async render(db: DatabaseRecord, secret: InstanceSecret): Promise<KubeObject[]> {
    const ns = namespaceOf(db);
    if (db.spec.engine === 'fluxion') {
      const fdb = db as DatabaseRecord & { spec: FluxionSpec };
      if (!secret.apiKey) throw new InvalidArgumentError(`${db.id} has no API key`);
      const keyDigest = createHash('sha256').update(`${db.id}:${secret.apiKey}`).digest('hex').slice(0, 16);
      return this.o.renderer.render('fluxiondb', fluxionNames(db).release, ns, fluxionValues(fdb, { image: this.o.image, keyDigest, ...(this.o.extraValues?.fluxion ? { extra: this.o.extraValues.fluxion } : {}) }));
    }
    const cdb = db as DatabaseRecord & { spec: ConureDbSpec };
    return this.o.renderer.render('conuredb', conureDbNames(db).release, ns, conureDbValues(cdb, { image: this.o.image, ...(this.o.extraValues?.conuredb ? { extra: this.o.extraValues.conuredb } : {}) }));
  }

  /** Fluxion's key is applied every time (a rotation changes it); ConureDB's peer secret is made once and never changes. */
  private async applySecret(db: DatabaseRecord, secret: InstanceSecret): Promise<void> {
    if (db.spec.engine === 'fluxion') {
      await this.kube.apply(secretObject(db, fluxionNames(db).keySecret, 'secret-key', secret.apiKey!));
      return;
    }
    await this.kube.createIfAbsent(secretObject(db, conureDbNames(db).peerSecret, 'peer-secret', randomBytes(36).toString('base64url')));
  }

  /** Applies one object. A claim the StorageClass cannot grow keeps its size: logged, not fatal (the instance still converges). */
  private async applyObject(obj: KubeObject): Promise<void> {
    try {
      await this.kube.apply(obj);
    } catch (err) {
      const e = err as ConureError;
      if (obj.kind === 'PersistentVolumeClaim' && (e.code === 'invalid_argument' || e.code === 'permission_denied') && /resiz|expan|forbidden/i.test(e.message)) {
        this.log.warn({ claim: `${obj.metadata.namespace}/${obj.metadata.name}`, err: e.message }, 'claim_growth_refused');
        return;
      }
      throw err;
    }
  }

  /** Deletes objects of this database that the chart no longer renders. */
  private async prune(db: DatabaseRecord, desired: KubeObject[]): Promise<void> {
    const want = new Set(desired.map((d) => `${d.kind}/${d.metadata.name}`));
    for (const k of PRUNED_KINDS) {
      for (const obj of await this.owned(db, k.apiVersion, k.kind)) {
        if (want.has(`${k.kind}/${obj.metadata.name}`)) continue;
        await this.kube.delete(k.apiVersion, k.kind, obj.metadata.name, namespaceOf(db));
        this.log.info({ db: db.id, object: `${k.kind}/${obj.metadata.name}` }, 'object_pruned');
      }
    }
  }

  /** Claims `<template>-<statefulset>-<ordinal>` whose ordinal the StatefulSet no longer runs (members removed from raft by the scale-down hook). */
  private async deleteLeftClaims(db: DatabaseRecord, desired: KubeObject[]): Promise<void> {
    const left = new Map<string, number>(); // claim-name prefix → first ordinal no longer run
    for (const s of desired.filter((d) => d.kind === 'StatefulSet')) {
      const spec = s.spec as { replicas?: number; volumeClaimTemplates?: Array<{ metadata?: { name?: string } }> };
      for (const t of spec.volumeClaimTemplates ?? []) if (t.metadata?.name) left.set(`${t.metadata.name}-${s.metadata.name}-`, Number(spec.replicas ?? 0));
    }
    for (const claim of await this.owned(db, 'v1', 'PersistentVolumeClaim')) {
      for (const [prefix, first] of left) {
        const rest = claim.metadata.name.startsWith(prefix) ? claim.metadata.name.slice(prefix.length) : '';
        if (!/^[0-9]+$/.test(rest) || Number(rest) < first) continue;
        await this.kube.delete('v1', 'PersistentVolumeClaim', claim.metadata.name, namespaceOf(db));
        this.log.info({ db: db.id, claim: claim.metadata.name }, 'left_member_claim_deleted');
      }
    }
  }

  private async runHooks(hooks: ReturnType<typeof splitHooks>['hooks'], phase: HookPhase, signal?: AbortSignal): Promise<void> {
    for (const h of hooks) {
      if (!h.phases.includes(phase)) continue;
      const { kind, apiVersion, metadata: { name, namespace } } = h.obj;
      if (h.deletePolicies.includes('before-hook-creation')) {
        await this.kube.delete(apiVersion, kind, name, namespace);
        await this.until(`the previous ${kind} ${name} gone`, async () => (await this.kube.read(apiVersion, kind, name, namespace)) === undefined, signal);
      }
      await this.kube.apply(h.obj);
      if (kind === 'Job') {
        await this.until(`the ${phase} Job ${namespace}/${name}`, async () => {
          const job = await this.kube.read(apiVersion, kind, name, namespace);
          const conds = ((job?.status as { conditions?: Array<{ type: string; status: string; message?: string }> } | undefined)?.conditions) ?? [];
          const failed = conds.find((c) => c.type === 'Failed' && c.status === 'True');
          if (failed) throw new ConureError('internal', `the ${phase} Job ${namespace}/${name} failed: ${failed.message ?? 'no message'} (kubectl logs -n ${namespace} job/${name})`);
          return conds.some((c) => c.type === 'Complete' && c.status === 'True');
        }, signal);
      }
      if (h.deletePolicies.includes('hook-succeeded')) await this.kube.delete(apiVersion, kind, name, namespace);
      this.log.info({ hook: `${kind}/${name}`, phase }, 'hook_ran');
    }
  }

  // ---- observing -----------------------------------------------------------------------------

  private owned(db: DatabaseRecord, apiVersion: string, kind: string): Promise<KubeObject[]> {
    return this.kube.list(apiVersion, kind, namespaceOf(db), `${DATABASE_LABEL}=${databaseLabel(db.id)}`);
  }

  private async pods(db: DatabaseRecord): Promise<Pod[]> {
    const pods = await this.owned(db, 'v1', 'Pod');
    return pods
      .filter((p) => !(p.metadata.labels?.['app.kubernetes.io/component'] ?? '').includes('scale-down'))
      .map((p) => {
        const st = (p.status ?? {}) as { phase?: string; podIP?: string; conditions?: Array<{ type: string; status: string }> };
        const terminating = Boolean(p.metadata.deletionTimestamp);
        return {
          name: p.metadata.name,
          ...(st.podIP ? { ip: st.podIP } : {}),
          running: st.phase === 'Running' && !terminating,
          ready: !terminating && (st.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
          role: p.metadata.labels?.['conure.io/role'] === 'arbiter' ? 'arbiter' as const : 'voter' as const,
        };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** '' when every StatefulSet rolled out and every pod is Ready (ConureDB: and raft has exactly the planned members); else why not. */
  private async notReadyReason(db: DatabaseRecord): Promise<string> {
    const rollout = await this.rolloutReason(db);
    if (rollout) return rollout;
    const pods = await this.pods(db);
    const unready = pods.filter((p) => !p.ready).map((p) => p.name);
    if (unready.length) return `pods not Ready: ${unready.join(', ')}`;
    if (db.spec.engine === 'fluxion') return pods.length === 1 ? '' : `${pods.length} Fluxion pods, want 1`;
    const topo = conureDbTopologyOf(db as DatabaseRecord & { spec: ConureDbSpec });
    const voters = pods.filter((p) => p.role === 'voter' && p.ip).map((p) => `http://${p.ip}:${CONUREDB_HTTP_PORT}`);
    if (voters.length === 0) return 'no voter pod has an address yet';
    const cfg = await new ConureHttpClient({ endpoints: voters, timeoutMs: 3000 }).raftConfig();
    const have = cfg.servers.map((s) => `${s.id}:${s.suffrage}`).sort().join(',');
    const want = topo.members.map((m) => `${m.id}:${m.role}`).sort().join(',');
    return have === want ? '' : `raft membership is ${have}; planned ${want}`;
  }

  /** '' when every StatefulSet of the database runs its replicas of the current revision, Ready; else why not. */
  private async rolloutReason(db: DatabaseRecord): Promise<string> {
    const sets = await this.owned(db, 'apps/v1', 'StatefulSet');
    if (sets.length === 0) return 'no StatefulSet yet';
    for (const s of sets) {
      const spec = s.spec as { replicas?: number };
      const st = (s.status ?? {}) as { observedGeneration?: number; readyReplicas?: number; updatedReplicas?: number; replicas?: number; currentRevision?: string; updateRevision?: string };
      const want = spec.replicas ?? 0;
      if ((st.observedGeneration ?? 0) < Number(s.metadata.generation ?? 0)) return `StatefulSet ${s.metadata.name} not observed yet`;
      if ((st.readyReplicas ?? 0) !== want || (st.replicas ?? 0) !== want) return `StatefulSet ${s.metadata.name}: ${st.readyReplicas ?? 0}/${want} ready`;
      if (want > 0 && st.updateRevision && st.currentRevision !== st.updateRevision && (st.updatedReplicas ?? 0) !== want) return `StatefulSet ${s.metadata.name}: rolling out (${st.updatedReplicas ?? 0}/${want} updated)`;
    }
    return '';
  }

  /** Client endpoints, by the Services' DNS names (what applications in the cluster dial). */
  private endpoints(db: DatabaseRecord): Record<string, string> {
    const ns = namespaceOf(db);
    if (db.engine === 'fluxion') return { ws: `ws://${fluxionNames(db).service}.${ns}.svc.${this.domain}:${FLUXION_PORT}` };
    const host = `${conureDbNames(db).fullname}.${ns}.svc.${this.domain}`;
    return { http: `http://${host}:${CONUREDB_HTTP_PORT}`, etcd: `http://${host}:${CONUREDB_ETCD_PORT}` };
  }

  // ---- plumbing -------------------------------------------------------------------------------

  private async until(what: string, check: () => Promise<boolean>, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + this.waitTimeoutMs;
    for (;;) {
      signal?.throwIfAborted();
      if (await check()) return;
      if (Date.now() > deadline) throw new ConureError('timeout', `timed out after ${Math.round(this.waitTimeoutMs / 1000)} s waiting for ${what}`);
      await sleep(this.pollMs, signal);
    }
  }

  private locked<T>(db: DatabaseRecord, fn: () => Promise<T>): Promise<T> {
    this.open();
    return this.locks.run(db.id, fn);
  }

  private open(): void {
    if (this.closed) throw new ConureError('closed', 'the kubernetes driver is closed');
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void { clearTimeout(t); signal?.removeEventListener('abort', done); resolve(); }
    signal?.addEventListener('abort', done, { once: true });
  });
}
