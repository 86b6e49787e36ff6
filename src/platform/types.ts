/**
 * The platform's shared vocabulary: the records kept in the store, the operation model, and the
 * seams between layers (Driver, PortAllocator, StepExecutor). Plain data only (JSON-safe), so a
 * record read back from the store is the record that was written.
 *
 * ```
 *  api/ ──► operations/ (queue, workers) ──► StepExecutor ──► engines/ (steps, sizing)
 *                                                         └──► drivers/{local,kubernetes} (Driver)
 *  reconciler/ (leader) ──► operations/      status/ ──► Driver.observe + instance APIs
 *  every layer above ──► store/ (etcd v3 API: records, leases, fenced txns)
 * ```
 *
 * Layers use each other through their folder's index.ts; this file is the common seam.
 */
import type { ArbiterMode } from '../planner/index.js';

export type EngineName = 'fluxion' | 'conuredb';

/**
 * What status sync records. Provisioning: created, not Ready yet. Ready: serving. Critical:
 * serving with quorum but a member down. NotReady: not serving. Halted: stopped on purpose,
 * data kept. Deleting: a delete is running. Failed: the last operation failed and the instance
 * is not serving.
 */
export type Phase = 'Provisioning' | 'Ready' | 'Critical' | 'NotReady' | 'Halted' | 'Deleting' | 'Failed';

/** What happens to an instance's data when its database is deleted (KubeDB's names). */
export type DeletionPolicy = 'Halt' | 'Delete' | 'WipeOut' | 'DoNotTerminate';

/** A Fluxion database: one pod/process; the tenant picks only RAM (and the API key). */
export interface FluxionSpec {
  engine: 'fluxion';
  /** Kubernetes quantity, canonical form (e.g. "2Gi"). */
  ram: string;
  /** Always 2 × ram, canonical quantity. */
  storage: string;
  /** Derived from ram by the engine's one rule; Kubernetes CPU quantities ("250m", "1"). */
  cpuRequest: string;
  cpuLimit: string;
  /** Fixed at 1: Fluxion scales vertically only. */
  replicas: 1;
  version: string;
}

/** A ConureDB cluster: topology from src/planner (the chart's rules). */
export interface ConureDbSpec {
  engine: 'conuredb';
  /** Data-bearing members, bootstrap included: 1..7. */
  voters: number;
  arbiter: ArbiterMode;
  /** Kubernetes quantity per data-bearing member. */
  storage: string;
  version: string;
}

export type DatabaseSpec = FluxionSpec | ConureDbSpec;

export interface MemberStatus {
  id: string;
  role: 'voter' | 'learner' | 'arbiter';
  healthy: boolean;
  leader?: boolean;
  detail?: string;
}

export interface DatabaseStatus {
  phase: Phase;
  /** Human-readable reason for the phase (empty when Ready). */
  message: string;
  /** ISO time status sync last looked. */
  observedAt: string;
  members?: MemberStatus[];
}

/**
 * A database as stored under `databases/<id>`. `generation` increases with every spec change;
 * `observedGeneration` is the generation the last successful operation converged to.
 */
export interface DatabaseRecord {
  id: string;
  tenant: string;
  name: string;
  engine: EngineName;
  spec: DatabaseSpec;
  status: DatabaseStatus;
  /** Client endpoints, e.g. { ws: "ws://127.0.0.1:9100" } or { http: "...", etcd: "..." }. */
  endpoints: Record<string, string>;
  deletionPolicy: DeletionPolicy;
  generation: number;
  observedGeneration: number;
  /** True once a delete operation finished; the record is then removed. */
  deleting?: boolean;
  /** Set by halt, cleared by resume: the reconciler leaves halted instances stopped. */
  halted?: boolean;
  createdAt: string;
  updatedAt: string;
}

/** Credentials an instance needs; kept apart from the record and never returned by the API. */
export interface InstanceSecret {
  /** Fluxion master `--secret-key`. */
  apiKey?: string;
}

export type OperationType = 'create' | 'scale' | 'resize' | 'update' | 'backup' | 'restore' | 'halt' | 'resume' | 'delete' | 'rotate-key' | 'repair';
export type OperationState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface StepRecord {
  name: string;
  state: 'pending' | 'running' | 'done' | 'failed';
  startedAt?: string;
  finishedAt?: string;
  /** What the step did or why it failed. */
  message?: string;
}

/** An operation as stored under `operations/<id>`. */
export interface OperationRecord {
  id: string;
  type: OperationType;
  databaseId: string;
  tenant: string;
  state: OperationState;
  /** Inputs of the operation (e.g. the new spec, a backup id, a deletion policy). */
  params: Record<string, unknown>;
  steps: StepRecord[];
  /** 0..100, from the finished steps. */
  progress: number;
  error?: { code: string; message: string };
  /** Worker that runs it now (informational; the claim key is the truth). */
  worker?: string;
  /** Times a worker started it; > 1 means it was resumed after a lost claim. */
  attempts: number;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string;
}

export interface BackupRecord {
  id: string;
  databaseId: string;
  tenant: string;
  engine: EngineName;
  /** Where the driver keeps it (a directory for local, a PVC/object for kubernetes). */
  location: string;
  sizeBytes: number;
  createdAt: string;
}

export interface EventRecord {
  at: string;
  databaseId: string;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** What a driver sees of an instance, without asking the instance's own API. */
export interface InstanceObservation {
  /** The driver has objects/processes for it (running or not). */
  exists: boolean;
  /** Processes (local) or pods (kubernetes) that should run and do. */
  running: number;
  /** Processes or pods that should run. */
  expected: number;
  endpoints: Record<string, string>;
  /** Per-member process/pod state for ConureDB; one entry for Fluxion. */
  members: Array<{ id: string; role: 'voter' | 'arbiter'; running: boolean; http?: string }>;
  /** ConureDB: the member-name prefix when it is not the planner's default `conure` (kubernetes: the database's name). */
  fullname?: string;
  detail?: string;
}

/** Where a backup went. */
export interface BackupResult { location: string; sizeBytes: number }

/**
 * Runs instances. Every method is idempotent: a worker that dies mid-call and a worker that
 * repeats the call converge to the same state (that is what makes operations resumable).
 * Errors are ConureErrors; `unavailable` means "try again later".
 */
export interface Driver {
  readonly name: 'local' | 'kubernetes';
  /** Creates or converges the instance to `db.spec` (start, scale, resize, resume). Returns endpoints. */
  apply(db: DatabaseRecord, secret: InstanceSecret, signal?: AbortSignal): Promise<Record<string, string>>;
  /** Resolves when the instance serves (Fluxion /health, ConureDB /ready on a quorum); throws `timeout`. */
  waitReady(db: DatabaseRecord, timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /** Stops the instance, keeping its data. */
  halt(db: DatabaseRecord): Promise<void>;
  /** Removes the instance. `Delete` keeps backups; `WipeOut` removes them too. */
  remove(db: DatabaseRecord, policy: 'Delete' | 'WipeOut'): Promise<void>;
  /** Takes a consistent backup `backupId` of a running instance. */
  backup(db: DatabaseRecord, secret: InstanceSecret, backupId: string): Promise<BackupResult>;
  /** Replaces the instance's data with backup `backup` (of the same engine) and starts it. */
  restore(db: DatabaseRecord, secret: InstanceSecret, backup: BackupRecord): Promise<Record<string, string>>;
  observe(db: DatabaseRecord): Promise<InstanceObservation>;
  /** Instance ids this driver has objects/processes for (orphans are what the store lacks). */
  list(): Promise<string[]>;
  /** Releases timers and handles; instances keep running (they outlive the platform). */
  close(): Promise<void>;
}

/**
 * Hands out TCP ports for local instances so two workers never pick the same one. The store
 * implementation records each port under `ports/<n>` with a create-if-absent txn.
 */
export interface PortAllocator {
  /** Returns `count` ports reserved for `owner`; the same owner asking again gets its own back. */
  allocate(owner: string, count: number): Promise<number[]>;
  /** Frees every port of `owner`. */
  release(owner: string): Promise<void>;
}
