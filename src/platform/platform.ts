/**
 * The platform's composition root: configuration → store (external, or an embedded ConureDB
 * member) → operations, election, executor, driver, status sync, reconciler → API.
 *
 * ```
 *  startPlatform(cfg)
 *    store    PLATFORM_STORE_ENDPOINTS, or the embedded store the caller starts (EmbeddedStoreStarter)
 *    driver   LocalDriver(<dataDir>, StorePortAllocator), or KubernetesDriver (helm template + server-side apply)
 *    pool     WorkerPool(NUM_OPERATION_WORKERS, PlatformExecutor)
 *    election LeaderElection(LEADER_LEASE_SECONDS)  → Reconciler(RECONCILE_INTERVAL)
 *    status   StatusSync(STATUS_SYNC_INTERVAL)
 *    api      fastify on PORT
 *  close(): api → reconciler → status → workers (lease revoked: claims go at once) → election
 *           (resign) → driver (instances keep running) → store
 * ```
 *
 * Bad configuration throws ConfigError (the CLI exits 2 with its message).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { EtcdClient } from '../client/index.js';
import { type Logger, TlsFiles } from '../util/index.js';
import { createPlatformApi, PlatformMetrics } from './api/index.js';
import { LocalDriver } from './drivers/local/index.js';
import { DEFAULT_TENANT_QUOTA, HelmRenderer, KubeApi, KubernetesDriver, parseImage, type ImageRef } from './drivers/kubernetes/index.js';
import { LeaderElection } from './election/index.js';
import { PlatformExecutor } from './executor/index.js';
import { OperationService, WorkerPool } from './operations/index.js';
import { Reconciler } from './reconciler/index.js';
import { DatabaseCache, PlatformService } from './service/index.js';
import { StatusSync } from './status/index.js';
import { PlatformStore, StorePortAllocator } from './store/index.js';
import type { Driver, OperationRecord } from './types.js';

export class ConfigError extends Error {}

export interface PlatformConfig {
  port: number;
  host: string;
  /** Empty: start an embedded store. */
  storeEndpoints: string[];
  driver: 'local' | 'kubernetes';
  dataDir: string;
  reconcileIntervalSeconds: number;
  workers: number;
  statusSyncIntervalSeconds: number;
  leaderLeaseSeconds: number;
  /** TTL of the workers' lease: how long a dead replica's claims outlive it (OPERATION_LEASE_SECONDS, default 10). */
  operationLeaseSeconds: number;
  /** From PLATFORM_ADMIN_TOKEN; else read or generated under <dataDir>/admin-token. */
  adminToken?: string;
  instanceId: string;
  /** Ports handed to local instances. */
  portLow: number;
  portHigh: number;
  /** Bound of one wait-ready step, seconds. */
  waitReadySeconds: number;
  /** Operations queued or running at once. */
  queueOperationsMax: number;
  /** Finished operations are kept this long, hours. */
  operationRetentionHours: number;
  bodyLimitBytes: number;
  /** The kubernetes driver's settings (driver === 'kubernetes'). */
  kubernetes?: KubernetesConfig;
  /** Serve the API over HTTPS (PLATFORM_TLS_CERT_FILE, PLATFORM_TLS_KEY_FILE; reloaded on change). */
  tls?: { certFile: string; keyFile: string };
}

/** PLATFORM_K8S_* and friends; see docs/platform.md, "The kubernetes driver". */
export interface KubernetesConfig {
  /** KUBECONFIG; undefined: ~/.kube/config, else the pod's service account. */
  kubeconfig?: string;
  /** PLATFORM_K8S_IMAGE: the image every instance runs. */
  image: ImageRef;
  /** PLATFORM_HELM: the helm binary that renders the charts. */
  helm: string;
  /** PLATFORM_CHARTS_DIR: the folder with conuredb/ and fluxiondb/. */
  chartsDir: string;
  /** PLATFORM_K8S_NAMESPACE: the platform's own namespace (admitted by tenant NetworkPolicies). */
  platformNamespace?: string;
  clusterDomain: string;
  quota: Record<string, string>;
  extraValues: { fluxion?: Record<string, unknown>; conuredb?: Record<string, unknown> };
}

export type Env = Record<string, string | undefined>;

/** The configuration from flags (win) and the environment; throws ConfigError with the reason. */
export function loadConfig(env: Env, flags: Partial<Record<'port' | 'storeEndpoints' | 'dataDir' | 'driver' | 'host', string>> = {}): PlatformConfig {
  const int = (name: string, raw: string | undefined, def: number, min: number, max: number): number => {
    if (raw === undefined || raw === '') return def;
    const n = Number(raw);
    if (!/^[0-9]+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) throw new ConfigError(`${name} must be a whole number from ${min} to ${max}; got ${JSON.stringify(raw)}`);
    return n;
  };
  const driver = flags.driver ?? env.PLATFORM_DRIVER ?? 'local';
  if (driver !== 'local' && driver !== 'kubernetes') throw new ConfigError(`PLATFORM_DRIVER must be local or kubernetes; got ${JSON.stringify(driver)}`);
  const endpoints = (flags.storeEndpoints ?? env.PLATFORM_STORE_ENDPOINTS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const e of endpoints) if (!/^(https?:\/\/)?[A-Za-z0-9.[\]:_-]+:[0-9]{1,5}\/?$/.test(e)) throw new ConfigError(`PLATFORM_STORE_ENDPOINTS: ${JSON.stringify(e)} is not host:port`);
  const [low, high] = (env.PLATFORM_PORT_RANGE ?? '21000-29999').split('-').map((x) => x.trim());
  const portLow = int('PLATFORM_PORT_RANGE (low)', low, 21000, 1024, 65535);
  const portHigh = int('PLATFORM_PORT_RANGE (high)', high, 29999, 1024, 65535);
  if (portLow > portHigh) throw new ConfigError(`PLATFORM_PORT_RANGE ${portLow}-${portHigh} is empty`);
  const adminToken = env.PLATFORM_ADMIN_TOKEN;
  if (adminToken !== undefined && adminToken !== '' && (adminToken.length < 16 || /\s/.test(adminToken))) throw new ConfigError('PLATFORM_ADMIN_TOKEN must be at least 16 characters without whitespace');
  const certFile = env.PLATFORM_TLS_CERT_FILE || undefined;
  const keyFile = env.PLATFORM_TLS_KEY_FILE || undefined;
  if ((certFile === undefined) !== (keyFile === undefined)) throw new ConfigError('PLATFORM_TLS_CERT_FILE and PLATFORM_TLS_KEY_FILE go together');
  const instanceId = env.PLATFORM_INSTANCE_ID || `${hostname()}-${process.pid}`;
  if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(instanceId)) throw new ConfigError(`PLATFORM_INSTANCE_ID ${JSON.stringify(instanceId)} must be 1..128 of [A-Za-z0-9_.:-]`);
  return {
    port: int('PORT', flags.port ?? env.PORT, 8000, 0, 65535),
    host: flags.host ?? env.PLATFORM_HOST ?? '127.0.0.1',
    storeEndpoints: endpoints,
    driver,
    dataDir: resolve(flags.dataDir ?? env.PLATFORM_DATA_DIR ?? './.conure-platform'),
    reconcileIntervalSeconds: int('RECONCILE_INTERVAL', env.RECONCILE_INTERVAL, 300, 1, 86_400),
    workers: int('NUM_OPERATION_WORKERS', env.NUM_OPERATION_WORKERS, 3, 1, 256),
    statusSyncIntervalSeconds: int('STATUS_SYNC_INTERVAL', env.STATUS_SYNC_INTERVAL, 30, 1, 86_400),
    leaderLeaseSeconds: int('LEADER_LEASE_SECONDS', env.LEADER_LEASE_SECONDS, 30, 2, 3600),
    operationLeaseSeconds: int('OPERATION_LEASE_SECONDS', env.OPERATION_LEASE_SECONDS, 10, 2, 3600),
    ...(adminToken ? { adminToken } : {}),
    instanceId,
    portLow, portHigh,
    waitReadySeconds: int('WAIT_READY_TIMEOUT', env.WAIT_READY_TIMEOUT, 120, 1, 3600),
    queueOperationsMax: int('OPERATION_QUEUE_MAX', env.OPERATION_QUEUE_MAX, 1000, 1, 1_000_000),
    operationRetentionHours: int('OPERATION_RETENTION_HOURS', env.OPERATION_RETENTION_HOURS, 168, 1, 87_600),
    bodyLimitBytes: int('API_BODY_LIMIT_BYTES', env.API_BODY_LIMIT_BYTES, 64 * 1024, 1024, 16 * 2 ** 20),
    ...(driver === 'kubernetes' ? { kubernetes: loadKubernetesConfig(env) } : {}),
    ...(certFile && keyFile && { tls: { certFile, keyFile } }),
  };
}

const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';
const DEFAULT_CHARTS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'charts');

function loadKubernetesConfig(env: Env): KubernetesConfig {
  const json = (name: string): Record<string, unknown> | undefined => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return undefined;
    let v: unknown;
    try { v = JSON.parse(raw); } catch (err) { throw new ConfigError(`${name} must be a JSON object: ${(err as Error).message}`); }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`${name} must be a JSON object`);
    return v as Record<string, unknown>;
  };
  let image: ImageRef;
  try { image = parseImage(env.PLATFORM_K8S_IMAGE || 'docker.io/conure/conuredb:0.1.0', env.PLATFORM_K8S_IMAGE_PULL_POLICY || 'IfNotPresent'); } catch (err) { throw new ConfigError(`PLATFORM_K8S_IMAGE: ${(err as Error).message}`); }
  const quota = json('PLATFORM_K8S_TENANT_QUOTA') ?? { ...DEFAULT_TENANT_QUOTA };
  for (const [k, v] of Object.entries(quota)) if (typeof v !== 'string' || !/^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$/.test(v)) throw new ConfigError(`PLATFORM_K8S_TENANT_QUOTA: ${k} must be a quantity string; got ${JSON.stringify(v)}`);
  const chartsDir = resolve(env.PLATFORM_CHARTS_DIR || DEFAULT_CHARTS_DIR);
  for (const c of ['conuredb', 'fluxiondb']) if (!existsSync(join(chartsDir, c, 'Chart.yaml'))) throw new ConfigError(`PLATFORM_CHARTS_DIR: ${join(chartsDir, c, 'Chart.yaml')} is missing`);
  const platformNamespace = env.PLATFORM_K8S_NAMESPACE || (existsSync(SERVICE_ACCOUNT_NAMESPACE) ? readFileSync(SERVICE_ACCOUNT_NAMESPACE, 'utf8').trim() : undefined);
  const fluxion = json('PLATFORM_K8S_FLUXION_VALUES');
  const conuredb = json('PLATFORM_K8S_CONUREDB_VALUES');
  return {
    ...(env.KUBECONFIG ? { kubeconfig: env.KUBECONFIG } : {}),
    image, helm: env.PLATFORM_HELM || 'helm', chartsDir,
    ...(platformNamespace ? { platformNamespace } : {}),
    clusterDomain: env.PLATFORM_K8S_CLUSTER_DOMAIN || 'cluster.local',
    quota: quota as Record<string, string>,
    extraValues: { ...(fluxion ? { fluxion } : {}), ...(conuredb ? { conuredb } : {}) },
  };
}

/** The driver the configuration names. */
function createDriver(cfg: PlatformConfig, ports: StorePortAllocator, log: Logger): Driver {
  if (cfg.driver === 'local') return new LocalDriver({ dataDir: cfg.dataDir, ports, logger: log.child({ component: 'local-driver' }) });
  const k = cfg.kubernetes!;
  let kube: KubeApi;
  try { kube = new KubeApi(k.kubeconfig); } catch (err) { throw new ConfigError(`PLATFORM_DRIVER=kubernetes: ${(err as Error).message}`); }
  log.info({ server: kube.server, image: `${k.image.registry}/${k.image.repository}:${k.image.tag}`, charts: k.chartsDir }, 'kubernetes_driver_configured');
  return new KubernetesDriver({
    kube, renderer: new HelmRenderer({ helm: k.helm, chartsDir: k.chartsDir, workDir: join(cfg.dataDir, 'render') }),
    image: k.image, quota: k.quota, extraValues: k.extraValues, clusterDomain: k.clusterDomain,
    ...(k.platformNamespace ? { platformNamespace: k.platformNamespace } : {}),
    logger: log.child({ component: 'kubernetes-driver' }),
  });
}

export interface RunningPlatform {
  url: string;
  port: number;
  adminToken: string;
  /** Where the admin token is kept when it was generated (undefined when from the environment). */
  adminTokenFile?: string;
  storeEndpoints: string[];
  app: FastifyInstance;
  close(): Promise<void>;
}

/** The admin token: the configured one, or the one saved (0600) under <dataDir>/admin-token, generated once. */
function adminTokenOf(cfg: PlatformConfig): { token: string; file?: string } {
  if (cfg.adminToken) return { token: cfg.adminToken };
  const file = join(cfg.dataDir, 'admin-token');
  if (!existsSync(file)) {
    try {
      writeFileSync(file, `cpa_${randomBytes(24).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  chmodSync(file, 0o600);
  const token = readFileSync(file, 'utf8').trim();
  if (token.length < 16) throw new ConfigError(`${file} does not hold a token of at least 16 characters`);
  return { token, file };
}

/**
 * Starts the embedded single-member store when no PLATFORM_STORE_ENDPOINTS are given. Supplied
 * by the caller (the CLI, which composes a ConureDB member), so this layer never imports one.
 */
export type EmbeddedStoreStarter = (cfg: PlatformConfig, log: Logger, onFatal: (err: unknown) => void) => Promise<{ endpoint: string; close(): Promise<void> }>;

export async function startPlatform(cfg: PlatformConfig, log: Logger, onFatal: (err: unknown) => void, embeddedStore?: EmbeddedStoreStarter): Promise<RunningPlatform> {
  mkdirSync(cfg.dataDir, { recursive: true });
  const admin = adminTokenOf(cfg);
  const cleanups: Array<() => Promise<void>> = [];
  const closeAll = async () => { for (const c of cleanups.reverse()) await c().catch((err) => log.warn({ err: (err as Error).message }, 'shutdown_step_failed')); };
  try {
    let endpoints = cfg.storeEndpoints;
    if (endpoints.length === 0) {
      if (!embeddedStore) throw new ConfigError('no PLATFORM_STORE_ENDPOINTS given and no embedded store to start');
      const embedded = await embeddedStore(cfg, log, onFatal);
      cleanups.push(() => embedded.close());
      endpoints = [embedded.endpoint];
    }
    const client = new EtcdClient({ endpoints, callTimeoutMs: 3000 });
    cleanups.push(async () => client.close());
    const store = new PlatformStore(client);
    const ports = new StorePortAllocator({ store, portLow: cfg.portLow, portHigh: cfg.portHigh });
    const driver = createDriver(cfg, ports, log);
    cleanups.push(() => driver.close());
    const operations = new OperationService({ store, queueOperationsMax: cfg.queueOperationsMax });
    const executor = new PlatformExecutor({ store, driver, ...(driver.name === 'local' ? { ports } : {}), waitReadyTimeoutMs: cfg.waitReadySeconds * 1000, log: log.child({ component: 'executor' }) });
    const pool = new WorkerPool({ store, executor, workers: cfg.workers, leaseTtlSeconds: cfg.operationLeaseSeconds, instanceId: cfg.instanceId, log: log.child({ component: 'operations' }) });
    const election = new LeaderElection({ client, key: store.keys.leader(), instanceId: cfg.instanceId, ttlSeconds: cfg.leaderLeaseSeconds, log: log.child({ component: 'election' }) });
    const reconciler = new Reconciler({ store, driver, operations, election, intervalSeconds: cfg.reconcileIntervalSeconds, operationRetentionMs: cfg.operationRetentionHours * 3_600_000, log: log.child({ component: 'reconciler' }) });
    const status = new StatusSync({ store, driver, intervalSeconds: cfg.statusSyncIntervalSeconds, log: log.child({ component: 'status' }) });
    const cache = new DatabaseCache(store, log.child({ component: 'database-cache' }));
    cache.start();
    cleanups.push(async () => cache.stop());
    const service = new PlatformService({ store, operations, adminToken: admin.token, cache });

    let workersState = 'starting';
    let apiState = 'starting';
    const metrics = new PlatformMetrics({
      operations: async () => (await store.list<OperationRecord>(store.keys.kind('operations'))).items.map((i) => i.value),
      databases: async () => (await store.listDatabases()).map((d) => d.value),
      leader: () => election.isLeader(),
      queueDepth: () => pool.stats().queueDepth,
      workersBusy: () => pool.stats().running,
      reconcilePassSeconds: () => reconciler.lastPassMs / 1000,
      reconcilePasses: () => reconciler.passes,
      statusPassSeconds: () => status.lastPassMs / 1000,
    });
    const tls = cfg.tls && TlsFiles.load({ ...cfg.tls, logger: log });
    if (tls) cleanups.push(async () => tls.close());
    const app = createPlatformApi({
      service, metrics, bodyLimitBytes: cfg.bodyLimitBytes, log, ...(tls && { tls }),
      health: {
        components: () => ({ api: apiState, workers: workersState }),
        storeReachable: async () => { try { await client.get(store.keys.leader(), { timeoutMs: 1000 }); return true; } catch { return false; } },
      },
    });

    await pool.start();
    workersState = 'running';
    cleanups.push(async () => { workersState = 'stopped'; await pool.stop(); });
    election.start();
    cleanups.push(() => election.stop());
    reconciler.start();
    cleanups.push(() => reconciler.stop());
    status.start();
    cleanups.push(() => status.stop());
    await app.listen({ port: cfg.port, host: cfg.host });
    apiState = 'running';
    cleanups.push(async () => { apiState = 'stopped'; await app.close(); });
    const port = (app.server.address() as { port: number }).port;
    const url = `${tls ? 'https' : 'http'}://${cfg.host === '0.0.0.0' ? '127.0.0.1' : cfg.host}:${port}`;
    log.info({ url, instance_id: cfg.instanceId, store: endpoints, driver: cfg.driver, data_dir: cfg.dataDir, workers: cfg.workers }, 'platform_started');
    let closing: Promise<void> | undefined;
    return {
      url, port, adminToken: admin.token, ...(admin.file && { adminTokenFile: admin.file }), storeEndpoints: endpoints, app,
      close: () => (closing ??= closeAll()),
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
