/**
 * The local driver: every instance is a set of real, DETACHED child processes on 127.0.0.1 that
 * outlive the platform process and are re-adopted by the next LocalDriver on the same data dir.
 *
 * ```
 *  <dataDir>/
 *    instances/<dbId>/
 *      instance.json            engine, halted, members: id, role, ports, data dir, args, pid
 *      <member>/                the process's data directory (fluxiond --data, conured --data-dir)
 *      <member>.log             its stdout + stderr (JSON lines)
 *      <member>.pid             written right after spawn
 *    backups/<dbId>/<backupId>/ backup.json + data/ (Fluxion) or snapshot.db (ConureDB)
 * ```
 *
 * Adoption: a member's process is ours when /proc/<pid>/cmdline is exactly the command we
 * recorded (script, data dir and ports included); a reused pid is never signalled. A process
 * started just before a crash (pid not yet recorded) is found by scanning /proc for our script
 * with that member's data directory.
 *
 * Fluxion: one `fluxiond` (member `fluxion-0`), master key passed in the environment
 * (FLUXION_SECRET_KEY, readable only by the owner; never written to disk, only its SHA-256 is kept
 * to notice a rotation). `apply` restarts it when RAM (`--max-memory`), port or key changed; data
 * is kept (fluxiond is durable). Backup is stop → copy → start: fluxiond has no online backup, and
 * copying a live WAL could catch a torn record in a non-final segment, which recovery rightly
 * refuses. The downtime is the graceful stop (WAL flush), the copy and the restart (the log line
 * `backup_taken` gives `downtimeMs`).
 *
 * ConureDB: members from the planner, flags from dev-cluster's `conuredArgs`, three ports per
 * member (HTTP, raft, etcd). Scale-up starts the new members (they `--join`); scale-down follows
 * `planScaleDown`: leadership handed to the bootstrap member, `POST /remove` through the cluster,
 * THEN the process is stopped and its data deleted. Backup is `conurectl snapshot save` against a
 * voter; restore is `conurectl snapshot restore` into the bootstrap member's data directory, the
 * other members rejoin with empty data.
 *
 * Every method is idempotent and serialised per instance within this object; every wait is
 * bounded. Errors are ConureErrors: `invalid_argument`, `not_found`, `timeout`, `unavailable`.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, cpSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensurePeerSecretFile, PeerSecret } from '../../../node/index.js';
import { conuredArgs, type LocalMember, planScaleDown } from '../../../planner/index.js';
import { ConureHttpClient } from '../../../client/index.js';
import { ClosedError, ConureError, InvalidArgumentError, KeyedLock, createLogger, type Logger } from '../../../util/index.js';
import { conureDbTopology, memberPortOwner, portRequests, validateFluxionApiKey, CONUREDB_PORTS_PER_MEMBER } from '../../engines/index.js';
import type {
  BackupRecord, BackupResult, ConureDbSpec, DatabaseRecord, Driver, EngineName, FluxionSpec, InstanceObservation, InstanceSecret, PortAllocator,
} from '../../types.js';
import { canAdoptPorts } from './memory-ports.js';
import { findByDataDir, instanceEnv, isOurs, logTail, sleep, spawnDetached, terminate } from './processes.js';

/** Options of {@link LocalDriver}. */
export interface LocalDriverOptions {
  /** Root of instances and backups (PLATFORM_DATA_DIR). */
  dataDir: string;
  ports: PortAllocator;
  /** Listen and advertise address; only loopback is supported. */
  host?: '127.0.0.1';
  logger?: Logger;
  /** Folder with fluxiond.js, conured.js and conurectl.js; default this build's dist/src/cli. */
  binDir?: string;
  /** SIGTERM grace before SIGKILL, per process; default 20 s (conured hands leadership over). */
  stopGraceMs?: number;
  /** Bound on a ConureDB scale-down (waiting for new voters, removals); default 120 s. */
  scaleTimeoutMs?: number;
  /** Bound on one conurectl run (snapshot save/restore); default 10 min. */
  toolTimeoutMs?: number;
}

/** A member as recorded in instance.json. */
export interface LocalMemberRecord {
  id: string;
  role: 'voter' | 'arbiter';
  bootstrap: boolean;
  /** Fluxion: [port]. ConureDB: [http, raft, etcd]. */
  ports: number[];
  dataDir: string;
  logFile: string;
  pidFile: string;
  /** Arguments after the node binary, as last started (script first); [] before the first start. */
  args: string[];
  pid?: number;
}

/** The content of instance.json. */
export interface LocalInstanceFile {
  format: 1;
  id: string;
  engine: EngineName;
  /** Stopped on purpose (halt); apply clears it. */
  halted: boolean;
  members: LocalMemberRecord[];
  /** Fluxion: SHA-256 of `keySalt` + the master key the process was started with. */
  keyDigest?: string;
  keySalt?: string;
}

const FLUXION_MEMBER = 'fluxion-0';
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const DEFAULT_BIN_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'cli');
const POLL_MS = 50;

export class LocalDriver implements Driver {
  readonly name = 'local' as const;
  private readonly root: string;
  private readonly ports: PortAllocator;
  private readonly host: string;
  private readonly log: Logger;
  private readonly bin: { fluxiond: string; conured: string; conurectl: string };
  private readonly stopGraceMs: number;
  private readonly scaleTimeoutMs: number;
  private readonly toolTimeoutMs: number;
  private readonly locks = new KeyedLock();
  private closed = false;

  constructor(opts: LocalDriverOptions) {
    if ((opts.host ?? '127.0.0.1') !== '127.0.0.1') throw new InvalidArgumentError('the local driver listens on 127.0.0.1 only');
    this.root = resolve(opts.dataDir);
    this.ports = opts.ports;
    this.host = '127.0.0.1';
    this.log = opts.logger ?? createLogger('local-driver');
    const binDir = resolve(opts.binDir ?? DEFAULT_BIN_DIR);
    this.bin = { fluxiond: join(binDir, 'fluxiond.js'), conured: join(binDir, 'conured.js'), conurectl: join(binDir, 'conurectl.js') };
    this.stopGraceMs = opts.stopGraceMs ?? 20_000;
    this.scaleTimeoutMs = opts.scaleTimeoutMs ?? 120_000;
    this.toolTimeoutMs = opts.toolTimeoutMs ?? 10 * 60_000;
    mkdirSync(join(this.root, 'instances'), { recursive: true });
    mkdirSync(join(this.root, 'backups'), { recursive: true });
  }

  // ---- Driver ---------------------------------------------------------------------------------

  apply(db: DatabaseRecord, secret: InstanceSecret, signal?: AbortSignal): Promise<Record<string, string>> {
    return this.locked(db, async () => {
      signal?.throwIfAborted();
      return db.spec.engine === 'fluxion' ? this.applyFluxion(db, db.spec, secret) : this.applyConureDb(db, db.spec, signal);
    });
  }

  async waitReady(db: DatabaseRecord, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    this.open();
    const deadline = Date.now() + timeoutMs;
    let last = 'not checked yet';
    for (;;) {
      signal?.throwIfAborted();
      const inst = this.load(db.id);
      if (!inst) throw new ConureError('not_found', `instance ${db.id} does not exist on this host`);
      if (inst.halted) throw new ConureError('unavailable', `instance ${db.id} is halted`);
      for (const m of inst.members) {
        if (this.livePid(inst, m) === undefined) {
          // A process that died is not coming back by itself: fail fast, with its log.
          throw new ConureError('unavailable', `${db.id}/${m.id} is not running; the end of ${m.logFile}:\n${logTail(m.logFile)}`);
        }
      }
      last = inst.engine === 'fluxion' ? await this.fluxionNotReady(inst) : await this.conureNotReady(inst, db.spec as ConureDbSpec);
      if (last === '') return;
      if (Date.now() >= deadline) throw new ConureError('timeout', `instance ${db.id} was not ready within ${timeoutMs} ms: ${last}`);
      await sleep(POLL_MS * 4, signal);
    }
  }

  halt(db: DatabaseRecord): Promise<void> {
    return this.locked(db, async () => {
      const inst = this.load(db.id);
      if (!inst) return;
      inst.halted = true;
      this.save(inst);
      await this.stopAll(inst);
      this.log.info({ instance_id: db.id }, 'instance_halted');
    });
  }

  remove(db: DatabaseRecord, policy: 'Delete' | 'WipeOut'): Promise<void> {
    return this.locked(db, async () => {
      if (policy !== 'Delete' && policy !== 'WipeOut') throw new InvalidArgumentError(`deletion policy must be Delete or WipeOut; got ${JSON.stringify(policy)}`);
      const inst = this.load(db.id);
      if (inst) {
        inst.halted = true;
        this.save(inst);
        await this.stopAll(inst);
      }
      const owners = new Set<string>([db.id, ...portRequests(db.id, db.spec).map((r) => r.owner)]);
      for (const m of inst?.members ?? []) owners.add(this.portOwner(inst!, m));
      for (const o of owners) await this.ports.release(o);
      rmSync(this.instanceDir(db.id), { recursive: true, force: true });
      if (policy === 'WipeOut') rmSync(this.backupRoot(db.id), { recursive: true, force: true });
      this.log.info({ instance_id: db.id, policy }, 'instance_removed');
    });
  }

  backup(db: DatabaseRecord, secret: InstanceSecret, backupId: string): Promise<BackupResult> {
    return this.locked(db, async () => {
      checkId(backupId, 'backup id');
      const dir = join(this.backupRoot(db.id), backupId);
      const done = readBackupMeta(dir);
      if (done) return { location: dir, sizeBytes: done.sizeBytes };
      const inst = this.load(db.id);
      if (!inst) throw new ConureError('not_found', `instance ${db.id} does not exist on this host`);
      const part = `${dir}.part`;
      rmSync(part, { recursive: true, force: true });
      mkdirSync(part, { recursive: true });
      const t0 = Date.now();
      let downtimeMs = 0;
      if (inst.engine === 'fluxion') {
        const m = inst.members[0]!;
        // An instance that should run is started again afterwards, even if a crash in an earlier
        // attempt left it stopped; a halted one stays stopped.
        const shouldRun = !inst.halted;
        const key = shouldRun ? validateFluxionApiKey(secret.apiKey) : undefined;
        await this.stopMember(inst, m);
        try {
          copyTree(m.dataDir, join(part, 'data'));
        } finally {
          if (shouldRun) {
            this.startMember(inst, m, { FLUXION_SECRET_KEY: key! });
            downtimeMs = Date.now() - t0;
          }
        }
      } else {
        const voter = inst.members.find((m) => m.role === 'voter' && this.livePid(inst, m) !== undefined);
        if (!voter) throw new ConureError('unavailable', `no voter of ${db.id} is running; a ConureDB backup needs a live member`);
        await this.tool(['--endpoints', `http://${this.host}:${voter.ports[0]}`, 'snapshot', 'save', join(part, 'snapshot.db')]);
      }
      const sizeBytes = treeBytes(part);
      writeFileSync(join(part, 'backup.json'), `${JSON.stringify({ format: 1, engine: inst.engine, databaseId: db.id, backupId, sizeBytes, tookMs: Date.now() - t0, downtimeMs })}\n`);
      fsyncTree(part);
      rmSync(dir, { recursive: true, force: true });
      renameSync(part, dir);
      this.log.info({ instance_id: db.id, backup_id: backupId, sizeBytes, tookMs: Date.now() - t0, downtimeMs }, 'backup_taken');
      return { location: dir, sizeBytes };
    });
  }

  restore(db: DatabaseRecord, secret: InstanceSecret, backup: BackupRecord): Promise<Record<string, string>> {
    return this.locked(db, async () => {
      if (backup.engine !== db.spec.engine) throw new InvalidArgumentError(`backup ${backup.id} is of a ${backup.engine} database; ${db.id} is ${db.spec.engine}`);
      const meta = readBackupMeta(backup.location);
      if (!meta) throw new ConureError('not_found', `backup ${backup.id} is not complete at ${backup.location}`);
      if (meta.engine !== db.spec.engine) throw new InvalidArgumentError(`backup at ${backup.location} holds ${meta.engine} data`);
      const existing = this.load(db.id);
      if (existing) await this.stopAll(existing);
      if (db.spec.engine === 'fluxion') {
        validateFluxionApiKey(secret.apiKey);
        const inst = await this.ensureFluxion(db);
        const m = inst.members[0]!;
        replaceTree(join(backup.location, 'data'), m.dataDir);
        const endpoints = await this.applyFluxion(db, db.spec, secret);
        this.log.info({ instance_id: db.id, backup_id: backup.id }, 'instance_restored');
        return endpoints;
      }
      const spec = db.spec;
      const inst = existing ?? this.newInstance(db.id, 'conuredb');
      // Every member starts over: the bootstrap member from the snapshot, the others empty.
      for (const m of inst.members) rmSync(m.dataDir, { recursive: true, force: true });
      await this.planMembers(inst, spec);
      const boot = inst.members.find((m) => m.bootstrap)!;
      const lm = this.localMember(boot);
      await this.tool(['snapshot', 'restore', join(backup.location, 'snapshot.db'), '--data-dir', boot.dataDir, '--node-id', boot.id, '--advertise-raft', lm.raft, '--advertise-http', lm.http]);
      const endpoints = await this.applyConureDb(db, spec);
      this.log.info({ instance_id: db.id, backup_id: backup.id }, 'instance_restored');
      return endpoints;
    });
  }

  async observe(db: DatabaseRecord): Promise<InstanceObservation> {
    this.open();
    const inst = this.load(db.id);
    if (!inst) return { exists: false, running: 0, expected: 0, endpoints: {}, members: [], detail: 'no processes on this host' };
    const members = inst.members.map((m) => ({
      id: m.id, role: m.role, running: this.livePid(inst, m) !== undefined,
      ...(m.ports[0] !== undefined && { http: `http://${this.host}:${m.ports[0]}` }),
    }));
    const running = members.filter((m) => m.running).length;
    const expected = inst.halted ? 0 : members.length;
    return {
      exists: true, running, expected, endpoints: this.endpoints(inst), members,
      ...(inst.halted ? { detail: 'halted' } : running < expected ? { detail: `${expected - running} of ${expected} process(es) not running` } : {}),
    };
  }

  async list(): Promise<string[]> {
    this.open();
    const dir = join(this.root, 'instances');
    return readdirSync(dir).filter((n) => existsSync(join(dir, n, 'instance.json'))).sort();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.locks.idle();
  }

  // ---- Fluxion --------------------------------------------------------------------------------

  private async ensureFluxion(db: DatabaseRecord): Promise<LocalInstanceFile> {
    const inst = this.load(db.id) ?? this.newInstance(db.id, 'fluxion');
    if (inst.members.length === 0) inst.members.push(this.memberRecord(db.id, FLUXION_MEMBER, 'voter', false));
    inst.members[0]!.ports = await this.reservePorts(db.id, inst.members[0]!.ports, 1);
    this.save(inst);
    return inst;
  }

  private async applyFluxion(db: DatabaseRecord, spec: FluxionSpec, secret: InstanceSecret): Promise<Record<string, string>> {
    const key = validateFluxionApiKey(secret.apiKey);
    const inst = await this.ensureFluxion(db);
    const m = inst.members[0]!;
    const args = [this.bin.fluxiond, '--data', m.dataDir, '--host', this.host, '--port', String(m.ports[0]), '--max-memory', spec.ram];
    inst.keySalt ??= randomBytes(16).toString('hex');
    const digest = sha256(inst.keySalt + key);
    const pid = this.livePid(inst, m);
    if (pid !== undefined && sameArgs(m.args, args) && inst.keyDigest === digest) {
      if (inst.halted) { inst.halted = false; this.save(inst); }
      return this.endpoints(inst);
    }
    if (pid !== undefined) {
      this.log.info({ instance_id: db.id, pid, ram: spec.ram }, 'instance_restarting');
      await this.stopMember(inst, m);
    }
    inst.halted = false;
    inst.keyDigest = digest;
    m.args = args;
    this.startMember(inst, m, { FLUXION_SECRET_KEY: key });
    return this.endpoints(inst);
  }

  private async fluxionNotReady(inst: LocalInstanceFile): Promise<string> {
    const url = `http://${this.host}:${inst.members[0]!.ports[0]}/health`;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      return res.ok ? '' : `${url} answered ${res.status}`;
    } catch (err) {
      return `${url}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`;
    }
  }

  // ---- ConureDB -------------------------------------------------------------------------------

  /** Adds the planned members that the instance lacks, with their ports; returns the planned ids. */
  private async planMembers(inst: LocalInstanceFile, spec: ConureDbSpec): Promise<Set<string>> {
    const topo = conureDbTopology(spec);
    for (const pm of topo.members) {
      let m = inst.members.find((x) => x.id === pm.id);
      if (!m) {
        m = this.memberRecord(inst.id, pm.id, pm.role, pm.bootstrap);
        inst.members.push(m);
      }
      m.ports = await this.reservePorts(memberPortOwner(inst.id, pm.id), m.ports, CONUREDB_PORTS_PER_MEMBER);
    }
    this.save(inst);
    return new Set(topo.members.map((m) => m.id));
  }

  private async applyConureDb(db: DatabaseRecord, spec: ConureDbSpec, signal?: AbortSignal): Promise<Record<string, string>> {
    const inst = this.load(db.id) ?? this.newInstance(db.id, 'conuredb');
    const planned = await this.planMembers(inst, spec);
    inst.halted = false;
    const wanted = inst.members.filter((m) => planned.has(m.id));
    const seeds = wanted.filter((m) => m.role === 'voter').map((m) => `http://${this.localMember(m).http}`);
    // Members authenticate each other with the instance's own cluster secret.
    const secretFile = ensurePeerSecretFile(this.instanceDir(inst.id));
    for (const m of wanted) {
      if (this.livePid(inst, m) !== undefined) continue;
      m.args = [this.bin.conured, ...conuredArgs(this.localMember(m), seeds, secretFile)];
      this.startMember(inst, m, {});
    }
    const surplus = inst.members.filter((m) => !planned.has(m.id));
    if (surplus.length > 0) await this.scaleDown(inst, spec, signal);
    this.save(inst);
    return this.endpoints(inst);
  }

  /** Removes surplus members from raft (planScaleDown order) and only then stops them and deletes their data. */
  private async scaleDown(inst: LocalInstanceFile, spec: ConureDbSpec, signal?: AbortSignal): Promise<void> {
    const topo = conureDbTopology(spec);
    const planned = new Set(topo.members.map((m) => m.id));
    const deadline = Date.now() + this.scaleTimeoutMs;
    const urls = () => inst.members.filter((m) => planned.has(m.id) && m.role === 'voter').map((m) => `http://${this.localMember(m).http}`);
    const boot = topo.members.find((m) => m.bootstrap)!.id;
    let lastError = '';
    for (;;) {
      signal?.throwIfAborted();
      if (Date.now() >= deadline) throw new ConureError('timeout', `scale-down of ${inst.id} did not finish within ${this.scaleTimeoutMs} ms: ${lastError}`);
      let servers;
      try {
        servers = (await new ConureHttpClient({ endpoints: urls(), timeoutMs: 3000 }).raftConfig()).servers;
      } catch (err) {
        lastError = (err as Error).message;
        await sleep(250, signal);
        continue;
      }
      const plan = planScaleDown(servers, topo);
      try {
        for (const id of plan.remove) {
          const m = inst.members.find((x) => x.id === id);
          if (m && this.livePid(inst, m) !== undefined) {
            // As the chart's hook does: a leader hands over to the bootstrap member before it goes.
            try { await new ConureHttpClient({ endpoints: [`http://${this.localMember(m).http}`], timeoutMs: 5000, token: this.peerToken(inst) }).transferLeader(boot); } catch { /* not the leader, or raft elects one */ }
          }
          await new ConureHttpClient({ endpoints: urls(), timeoutMs: 10_000, token: this.peerToken(inst) }).remove(id);
          this.log.info({ instance_id: inst.id, member_id: id }, 'member_removed');
          if (m) await this.dropMember(inst, m);
        }
      } catch (err) {
        lastError = (err as Error).message;
        await sleep(250, signal);
        continue;
      }
      if (plan.deferred.length === 0) {
        // Surplus members raft no longer lists (removed before a crash): stop and delete them.
        const inRaft = new Set(servers.map((s) => s.id));
        for (const m of inst.members.filter((x) => !planned.has(x.id) && (!inRaft.has(x.id) || plan.remove.includes(x.id)))) await this.dropMember(inst, m);
        if (inst.members.every((m) => planned.has(m.id))) return;
      }
      lastError = `waiting for ${topo.voterCount} voters before removing ${plan.deferred.join(', ')}`;
      await sleep(250, signal);
    }
  }

  private async dropMember(inst: LocalInstanceFile, m: LocalMemberRecord): Promise<void> {
    await this.stopMember(inst, m);
    rmSync(m.dataDir, { recursive: true, force: true });
    rmSync(m.pidFile, { force: true });
    await this.ports.release(this.portOwner(inst, m));
    inst.members = inst.members.filter((x) => x.id !== m.id);
    this.save(inst);
  }

  private async conureNotReady(inst: LocalInstanceFile, spec: ConureDbSpec): Promise<string> {
    const topo = conureDbTopology(spec);
    for (const pm of topo.members) {
      const m = inst.members.find((x) => x.id === pm.id);
      if (!m) return `member ${pm.id} is not created yet`;
      // Arbiters hold no state machine: /health says the process serves.
      const url = `http://${this.localMember(m).http}${m.role === 'voter' ? '/ready' : '/health'}`;
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (!res.ok) return `${pm.id}: ${url} answered ${res.status}`;
      } catch (err) {
        return `${pm.id}: ${url}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`;
      }
    }
    let servers;
    try {
      const voters = inst.members.filter((m) => m.role === 'voter').map((m) => `http://${this.localMember(m).http}`);
      servers = (await new ConureHttpClient({ endpoints: voters, timeoutMs: 1000 }).raftConfig()).servers;
    } catch (err) {
      return `raft configuration: ${(err as Error).message}`;
    }
    const have = servers.map((s) => `${s.id}:${s.suffrage}`).sort().join(',');
    const want = topo.members.map((m) => `${m.id}:${m.role}`).sort().join(',');
    return have === want ? '' : `raft membership is ${have}; planned ${want}`;
  }

  // ---- processes and files --------------------------------------------------------------------

  /** The live pid of a member's process (recorded, or found by its data dir), or undefined. */
  private livePid(inst: LocalInstanceFile, m: LocalMemberRecord): number | undefined {
    if (m.pid !== undefined && m.args.length > 0 && isOurs(m.pid, m.args)) return m.pid;
    const script = inst.engine === 'fluxion' ? this.bin.fluxiond : this.bin.conured;
    const found = findByDataDir(script, inst.engine === 'fluxion' ? '--data' : '--data-dir', m.dataDir);
    if (found.length === 0) return undefined;
    const pid = found[0]!;
    const argv = readCmdline(pid);
    if (!argv) return undefined;
    m.pid = pid;
    m.args = argv.slice(1);
    this.save(inst);
    this.log.info({ instance_id: inst.id, member_id: m.id, pid }, 'process_adopted');
    return pid;
  }

  /** The owner's ports: the recorded ones when the allocator can take them back, else allocated. */
  private async reservePorts(owner: string, recorded: readonly number[], count: number): Promise<number[]> {
    if (recorded.length === count && canAdoptPorts(this.ports)) await this.ports.adopt(owner, recorded);
    return this.ports.allocate(owner, count);
  }

  private startMember(inst: LocalInstanceFile, m: LocalMemberRecord, env: Record<string, string>): void {
    mkdirSync(m.dataDir, { recursive: true });
    delete m.pid;
    this.save(inst); // args first: a crash after spawn still finds the process by its data dir
    const pid = spawnDetached(m.args, m.logFile, env);
    writeFileSync(m.pidFile, `${pid}\n`);
    m.pid = pid;
    this.save(inst);
    this.log.info({ instance_id: inst.id, member_id: m.id, pid, ports: m.ports }, 'process_started');
  }

  private async stopMember(inst: LocalInstanceFile, m: LocalMemberRecord): Promise<void> {
    const pid = this.livePid(inst, m);
    if (pid === undefined) return;
    const how = await terminate(pid, m.args, this.stopGraceMs);
    if (how === 'killed') this.log.warn({ instance_id: inst.id, member_id: m.id, pid, graceMs: this.stopGraceMs }, 'process_killed_after_grace');
    else this.log.info({ instance_id: inst.id, member_id: m.id, pid }, 'process_stopped');
  }

  /** Stops every member: non-bootstrap members first, so leadership moves at most once. */
  private async stopAll(inst: LocalInstanceFile): Promise<void> {
    for (const m of [...inst.members].reverse()) await this.stopMember(inst, m);
  }

  private endpoints(inst: LocalInstanceFile): Record<string, string> {
    if (inst.engine === 'fluxion') {
      const p = inst.members[0]?.ports[0];
      return p === undefined ? {} : { ws: `ws://${this.host}:${p}`, http: `http://${this.host}:${p}` };
    }
    const voters = inst.members.filter((m) => m.role === 'voter' && m.ports.length === CONUREDB_PORTS_PER_MEMBER);
    return {
      http: voters.map((m) => `http://${this.host}:${m.ports[0]}`).join(','),
      etcd: voters.map((m) => `${this.host}:${m.ports[2]}`).join(','),
    };
  }

  private localMember(m: LocalMemberRecord): LocalMember {
    const [http, raft, client] = m.ports;
    return {
      id: m.id, role: m.role, bootstrap: m.bootstrap,
      http: `${this.host}:${http}`, raft: `${this.host}:${raft}`, client: `${this.host}:${client}`,
      dataDir: m.dataDir, logFile: m.logFile,
    };
  }

  private portOwner(inst: LocalInstanceFile, m: LocalMemberRecord): string {
    return inst.engine === 'fluxion' ? inst.id : memberPortOwner(inst.id, m.id);
  }

  private memberRecord(dbId: string, id: string, role: 'voter' | 'arbiter', bootstrap: boolean): LocalMemberRecord {
    const dir = this.instanceDir(dbId);
    return { id, role, bootstrap, ports: [], dataDir: join(dir, id), logFile: join(dir, `${id}.log`), pidFile: join(dir, `${id}.pid`), args: [] };
  }

  private newInstance(id: string, engine: EngineName): LocalInstanceFile {
    mkdirSync(this.instanceDir(id), { recursive: true });
    return { format: 1, id, engine, halted: false, members: [] };
  }

  /** The HTTP token of a ConureDB instance's cluster secret (member-only endpoints need it). */
  private peerToken(inst: LocalInstanceFile): string {
    return PeerSecret.fromFile(ensurePeerSecretFile(this.instanceDir(inst.id))).httpToken;
  }

  private instanceDir(id: string): string { return join(this.root, 'instances', checkId(id, 'database id')); }
  private backupRoot(id: string): string { return join(this.root, 'backups', checkId(id, 'database id')); }

  private load(id: string): LocalInstanceFile | undefined {
    const file = join(this.instanceDir(id), 'instance.json');
    let text: string;
    try { text = readFileSync(file, 'utf8'); } catch { return undefined; }
    try {
      const inst = JSON.parse(text) as LocalInstanceFile;
      if (inst.format !== 1 || inst.id !== id || !Array.isArray(inst.members)) throw new Error('unexpected content');
      return inst;
    } catch (err) {
      throw new ConureError('internal', `${file} is damaged: ${(err as Error).message}`, { cause: err });
    }
  }

  private save(inst: LocalInstanceFile): void {
    const dir = this.instanceDir(inst.id);
    mkdirSync(dir, { recursive: true });
    const tmp = join(dir, 'instance.json.tmp');
    writeFileSync(tmp, `${JSON.stringify(inst, null, 2)}\n`);
    renameSync(tmp, join(dir, 'instance.json'));
  }

  private tool(args: string[]): Promise<string> {
    return new Promise((resolvePromise, reject) => {
      execFile(process.execPath, [this.bin.conurectl, ...args], { timeout: this.toolTimeoutMs, env: { ...instanceEnv(), CONURE_LOG_LEVEL: 'warn' } }, (err, stdout, stderr) => {
        if (err) reject(new ConureError(err.killed ? 'timeout' : 'unavailable', `conurectl ${args.slice(0, 3).join(' ')} failed: ${stderr.trim() || err.message}`, { cause: err }));
        else resolvePromise(stdout);
      });
    });
  }

  private async locked<T>(db: DatabaseRecord, fn: () => Promise<T>): Promise<T> {
    this.open();
    checkId(db.id, 'database id');
    return this.locks.run(db.id, fn);
  }

  private open(): void {
    if (this.closed) throw new ClosedError('the local driver');
  }
}

function checkId(id: string, what: string): string {
  if (typeof id !== 'string' || !ID_PATTERN.test(id) || id.includes('..')) {
    throw new InvalidArgumentError(`${what} ${JSON.stringify(String(id).slice(0, 40))} must be 1 to 128 letters, digits, '_', '.' or '-' (it names a directory)`);
  }
  return id;
}

function sha256(text: string): string { return createHash('sha256').update(text).digest('hex'); }

function sameArgs(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function readCmdline(pid: number): string[] | undefined {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0$/, '').split('\0'); } catch { return undefined; }
}

function readBackupMeta(dir: string): { engine: EngineName; sizeBytes: number } | undefined {
  try {
    const meta = JSON.parse(readFileSync(join(dir, 'backup.json'), 'utf8')) as { engine: EngineName; sizeBytes: number };
    return meta;
  } catch {
    return undefined;
  }
}

/** Copies a stopped instance's data dir; the LOCK file (a pid) stays behind. */
function copyTree(from: string, to: string): void {
  mkdirSync(from, { recursive: true });
  cpSync(from, to, { recursive: true, filter: (src) => !src.endsWith('/LOCK') && !src.endsWith('.tmp') });
}

/** Replaces `to` with a copy of `from`, through `<to>.restore` so a crash leaves one or the other. */
function replaceTree(from: string, to: string): void {
  if (!existsSync(from)) throw new ConureError('not_found', `backup data ${from} is missing`);
  const staging = `${to}.restore`;
  rmSync(staging, { recursive: true, force: true });
  copyTree(from, staging);
  fsyncTree(staging);
  rmSync(to, { recursive: true, force: true });
  renameSync(staging, to);
}

function treeBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    total += st.isDirectory() ? treeBytes(p) : st.size;
  }
  return total;
}

function fsyncTree(dir: string): void {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) fsyncTree(p);
    else { const fd = openSync(p, 'r'); try { fsyncSync(fd); } finally { closeSync(fd); } }
  }
  const fd = openSync(dir, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}
