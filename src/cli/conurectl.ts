#!/usr/bin/env node
/**
 * conurectl: command-line client for ConureDB. `--endpoints` (or CONURE_ENDPOINTS) takes a
 * comma list tried in turn. Exits 0 on success; on failure prints `conurectl: <message>` to
 * stderr and exits 1 (2 for bad usage).
 */
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { ConureHttpClient } from '../client/index.js';
import { importEtcdSnapshot, restoreSnapshot, saveSnapshot, snapshotStatus } from '../node/index.js';
import { PeerSecret } from '../node/index.js';
import { runDevCluster } from './dev-cluster.js';
import { adviseRecovery, askMembers, judgeHealth } from './recover.js';
import { recoverDataDir } from './recover-offline.js';
import { migrateFromEtcd, parseEndpoints, type TlsFiles } from './migrate.js';
import { PlatformClient, type Accepted } from '../client/platform/index.js';
import type { OperationRecord } from '../platform/index.js';

const program = new Command('conurectl')
  .description('ConureDB command-line client')
  .addOption(new Option('--endpoints <urls>', 'comma-separated HTTP endpoints').default('http://127.0.0.1:8081').env('CONURE_ENDPOINTS'))
  .addOption(new Option('--timeout <ms>', 'per-request timeout in milliseconds').default('10000'))
  .addOption(new Option('--peer-secret-file <path>', 'the cluster secret: authenticates membership and snapshot calls to a cluster started with it').env('CONURE_PEER_SECRET_FILE'))
  .showHelpAfterError()
  .exitOverride();

function client(): ConureHttpClient {
  const o = program.opts<{ endpoints: string; timeout: string; peerSecretFile?: string }>();
  return new ConureHttpClient({
    endpoints: o.endpoints.split(',').map((s) => s.trim()).filter(Boolean), timeoutMs: Number(o.timeout),
    ...(o.peerSecretFile && { token: PeerSecret.fromFile(o.peerSecretFile).httpToken }),
  });
}

function endpointList(): string[] {
  return program.opts<{ endpoints: string }>().endpoints.split(',').map((s) => s.trim()).filter(Boolean);
}

function membersAsked() {
  const o = program.opts<{ timeout: string; peerSecretFile?: string }>();
  return askMembers(endpointList(), Number(o.timeout), o.peerSecretFile ? PeerSecret.fromFile(o.peerSecretFile).httpToken : undefined);
}

function print(v: unknown): void {
  process.stdout.write(`${typeof v === 'string' ? v : JSON.stringify(v, null, 2)}\n`);
}

const kv = program.command('kv').description('read and write keys');
kv.command('put <key> [value]').description('store a value (omit it, or pass "-", to read stdin)')
  .action(async (key: string, value?: string) => {
    const bytes = value === undefined || value === '-' ? readFileSync(0) : Buffer.from(value);
    await client().put(key, bytes);
    print('OK');
  });
kv.command('get <key>').description('print a value (empty when absent)')
  .option('--consistency <mode>', 'linearizable or serializable', 'linearizable')
  .action(async (key: string, o: { consistency: string }) => {
    if (o.consistency !== 'linearizable' && o.consistency !== 'serializable') throw new UsageError('--consistency must be linearizable or serializable');
    process.stdout.write(await client().get(key, o.consistency));
    if (process.stdout.isTTY) process.stdout.write('\n');
  });
kv.command('del <key>').description('delete a key').action(async (key: string) => { await client().delete(key); print('OK'); });

program.command('status').description('this endpoint\'s view: leader and raft statistics')
  .action(async () => {
    const c = client();
    const [status, stats] = await Promise.all([c.status(), c.raftStats()]);
    print({ ...status, stats });
  });

program.command('health').description('exit 0 when a reachable member knows a leader, else 1 (every endpoint is asked)')
  .action(async () => {
    const v = judgeHealth(await membersAsked());
    (v.healthy ? process.stdout : process.stderr).write(`${v.message}\n`);
    process.exitCode = v.healthy ? 0 : 1;
  });

program.command('recover').description('quorum loss: say which member to recover from and how (read-only); with --data-dir, rewrite a stopped member\'s data directory as --force-new-cluster would')
  .option('--data-dir <dir>', 'the stopped member\'s data directory to rewrite (offline recovery)')
  .option('--node-id <id>', 'with --data-dir: the member\'s id')
  .option('--yes', 'with --data-dir: carry out the rewrite (without it, only say what it would do)')
  .action(async (o: { dataDir?: string; nodeId?: string; yes?: boolean }) => {
    if (o.dataDir !== undefined || o.nodeId !== undefined || o.yes) {
      if (!o.dataDir || !o.nodeId) throw new UsageError('offline recovery needs both --data-dir and --node-id');
      print(await recoverDataDir({ dataDir: o.dataDir, nodeId: o.nodeId, apply: o.yes === true }));
      return;
    }
    const advice = adviseRecovery(await membersAsked());
    print(advice.message);
    process.exitCode = advice.kind === 'recover' ? 0 : 1;
  });

const members = program.command('members').description('list (default) or change cluster membership')
  .action(async () => print(await client().raftConfig()));
members.command('list').description('list members').action(async () => print(await client().raftConfig()));
members.command('add <id> <raftAddr>').description('add a member (voters enter as learners and are promoted when caught up)')
  .option('--role <role>', 'voter, arbiter or learner', 'voter')
  .option('--http-addr <host:port>', 'the member\'s HTTP address')
  .action(async (id: string, raftAddr: string, o: { role: string; httpAddr?: string }) => print(await client().join(id, raftAddr, o.role, o.httpAddr)));
members.command('remove <id>').description('remove a member (succeeds when already absent)')
  .action(async (id: string) => {
    const r = await client().remove(id);
    if (!r.removed) process.stderr.write(`conurectl: note: ${id} is not a member; nothing to remove\n`);
    print(r);
  });
members.command('promote <id>').description('promote a learner to voter').action(async (id: string) => print(await client().promote(id)));

program.command('leader').description('leadership').command('transfer [id]')
  .description('if the endpoint is the leader, hand leadership to <id> (or the best-placed voter)')
  .action(async (id?: string) => print(await client().transferLeader(id)));

const snapshot = program.command('snapshot').description('backup and restore');
snapshot.command('save <file>').description('stream a consistent snapshot from the first endpoint into <file> (same file as etcdctl snapshot save)')
  .action(async (file: string) => {
    const endpoint = program.opts<{ endpoints: string }>().endpoints.split(',')[0]!.trim();
    const r = await saveSnapshot(endpoint.startsWith('http') ? endpoint : `http://${endpoint}`, file);
    print(`Snapshot saved at ${file} (${r.bytes} bytes)`);
  });
snapshot.command('status <file>').description('verify a snapshot file and print its revision, key count, size and checksum (JSON)')
  .action((file: string) => print(snapshotStatus(file)));
snapshot.command('restore <file>').description('create the data directory of a new single-member cluster from a snapshot; start conured on it, then join the others')
  .requiredOption('--data-dir <dir>', 'new, empty data directory')
  .requiredOption('--node-id <id>', 'id of the member that will run on it')
  .requiredOption('--advertise-raft <host:port>', 'its advertised raft address')
  .requiredOption('--advertise-http <host:port>', 'its advertised HTTP address')
  .action(async (file: string, o: { dataDir: string; nodeId: string; advertiseRaft: string; advertiseHttp: string }) => {
    await restoreSnapshot({ file, dataDir: o.dataDir, nodeId: o.nodeId, advertiseRaft: o.advertiseRaft, advertiseHttp: o.advertiseHttp });
    print(`Restored ${file} into ${o.dataDir}; start: conured --node-id ${o.nodeId} --data-dir ${o.dataDir} --advertise-raft ${o.advertiseRaft} --advertise-http ${o.advertiseHttp} …`);
  });

const migrate = program.command('migrate').description('move data between etcd and ConureDB, live (both etcd v3 client ports)');
const MIGRATIONS = {
  'from-etcd': ['copy a live etcd v3 cluster into a ConureDB cluster', 'the etcd cluster\'s client endpoints', 'the ConureDB cluster\'s etcd client endpoints (its client port, gRPC)'],
  'to-etcd': ['copy a live ConureDB cluster into an etcd v3 cluster, the way back', 'the ConureDB cluster\'s etcd client endpoints (its client port, gRPC)', 'the etcd cluster\'s client endpoints'],
} as const;
for (const [direction, [what, sourceHelp, destHelp]] of Object.entries(MIGRATIONS) as Array<[keyof typeof MIGRATIONS, readonly [string, string, string]]>) migrate.command(direction)
  .description(`${what} (keys, values, lease ids and attachments), follow its changes until SIGINT/SIGTERM (or --once), then check that both agree; revisions are not preserved`)
  .requiredOption('--source <endpoints>', `${sourceHelp}, comma-separated (host:port, http:// or https://)`)
  .requiredOption('--dest <endpoints>', `${destHelp}, comma-separated`)
  .option('--prefix <prefix>', 'only keys starting with this (default: every key)')
  .option('--once', 'copy a snapshot at one revision, check and exit, instead of mirroring until SIGINT/SIGTERM')
  .option('--force', 'write into a target that holds keys in scope: they are deleted first (and its own leases with ids the source uses are revoked)')
  .option('--lease-ttl <ttl>', 'TTL of re-created leases: granted (the source\'s granted TTL) or remaining (what is left of it)', 'granted')
  .option('--page-size <n>', 'most keys per Range page', '1000')
  .option('--source-cacert <file>', 'CA bundle the source\'s certificates must chain to (TLS)')
  .option('--source-cert <file>', 'client certificate for the source (TLS)')
  .option('--source-key <file>', 'its private key')
  .option('--dest-cacert <file>', 'CA bundle the target\'s certificates must chain to (TLS)')
  .option('--dest-cert <file>', 'client certificate for the target (TLS)')
  .option('--dest-key <file>', 'its private key')
  .action(async (o: Record<string, string | boolean | undefined>) => {
    const source = parseEndpoints(String(o.source), '--source');
    const dest = parseEndpoints(String(o.dest), '--dest');
    if (typeof source === 'string') throw new UsageError(source);
    if (typeof dest === 'string') throw new UsageError(dest);
    if (o.leaseTtl !== 'granted' && o.leaseTtl !== 'remaining') throw new UsageError('--lease-ttl must be granted or remaining');
    const pageKeysMax = wholeNumber(String(o.pageSize), '--page-size');
    if (pageKeysMax < 1 || pageKeysMax > 100_000) throw new UsageError('--page-size must be between 1 and 100000');
    if (o.prefix === '') throw new UsageError('--prefix must not be empty (leave it out to copy every key)');
    const timeoutMs = wholeNumber(program.opts<{ timeout: string }>().timeout, '--timeout');
    if (timeoutMs < 100) throw new UsageError('--timeout must be at least 100 (ms)');
    const tls = (side: 'source' | 'dest'): TlsFiles | undefined => {
      const files = { ca: o[`${side}Cacert`], cert: o[`${side}Cert`], key: o[`${side}Key`] } as Record<string, string | undefined>;
      if (!files.ca && !files.cert && !files.key) return undefined;
      if (!files.cert !== !files.key) throw new UsageError(`--${side}-cert and --${side}-key go together`);
      const read = (flag: string, f: string | undefined) => {
        if (!f) return undefined;
        try { return readFileSync(f); } catch (err) { throw new UsageError(`${flag}: cannot read ${f} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`); }
      };
      const out: TlsFiles = {};
      const ca = read(`--${side}-cacert`, files.ca), cert = read(`--${side}-cert`, files.cert), key = read(`--${side}-key`, files.key);
      if (ca) out.ca = ca;
      if (cert) out.cert = cert;
      if (key) out.key = key;
      return out;
    };
    const sourceTls = tls('source');
    const destTls = tls('dest');
    // The first SIGINT/SIGTERM stops mirroring (then the check runs); a second one ends the process.
    const stop = new Promise<string>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    });
    const { summary, exitCode } = await migrateFromEtcd({
      direction, source, dest, once: o.once === true, force: o.force === true, leaseTtl: o.leaseTtl, timeoutMs, pageKeysMax, stop,
      ...(typeof o.prefix === 'string' && { prefix: o.prefix }),
      ...(sourceTls && { sourceTls }), ...(destTls && { destTls }),
      progress: (line) => process.stderr.write(`conurectl: ${line}\n`),
    });
    print(summary);
    process.exitCode = exitCode;
  });
snapshot.command('import-etcd <file>').description('create the data directory of a new single-member cluster from an etcd v3 snapshot (the bbolt file etcdctl snapshot save writes), keeping keys, values, revisions and leases; start conured on it, then join the others')
  .requiredOption('--data-dir <dir>', 'new, empty data directory')
  .requiredOption('--node-id <id>', 'id of the member that will run on it')
  .requiredOption('--advertise-raft <host:port>', 'its advertised raft address')
  .requiredOption('--advertise-http <host:port>', 'its advertised HTTP address')
  .action(async (file: string, o: { dataDir: string; nodeId: string; advertiseRaft: string; advertiseHttp: string }) => {
    const r = await importEtcdSnapshot({ file, dataDir: o.dataDir, nodeId: o.nodeId, advertiseRaft: o.advertiseRaft, advertiseHttp: o.advertiseHttp });
    if (r.authEnabled) process.stderr.write('conurectl: note: etcd had auth enabled; users, roles and permissions are not imported\n');
    if (r.keysWithUnknownLease) process.stderr.write(`conurectl: note: ${r.keysWithUnknownLease} keys name a lease the snapshot does not hold; they keep the id, as in etcd, and never expire\n`);
    if (r.sha256 === 'absent') process.stderr.write('conurectl: note: the file has no sha256 trailer (a raw db file, not etcdctl snapshot save): its integrity was not checked beyond the bbolt structure\n');
    print(r);
    process.stderr.write(`conurectl: imported ${file} into ${o.dataDir}; start: conured --node-id ${o.nodeId} --data-dir ${o.dataDir} --advertise-raft ${o.advertiseRaft} --advertise-http ${o.advertiseHttp} …\n`);
  });

program.command('dev').description('local development helpers').command('cluster')
  .description('start a local cluster as child processes, shaped like the Helm chart')
  .option('--voters <n>', 'data-bearing members, including the bootstrap member', '2')
  .option('--arbiter <mode>', 'auto (an arbiter when voters is even), always or never', 'auto')
  .option('--base-port <port>', 'member i serves HTTP on base+i, raft on base+100+i, etcd on base+200+i', '8081')
  .option('--host <host>', 'address to listen and advertise on', '127.0.0.1')
  .option('--data-dir <dir>', 'parent directory of the members\' data directories', './.conure')
  .option('--tls', 'make a CA and certificates under <data-dir>/tls (openssl) and serve TLS on every port (mutual TLS between members)')
  .action(async (o: { voters: string; arbiter: string; basePort: string; host: string; dataDir: string; tls?: boolean }) => {
    if (o.arbiter !== 'auto' && o.arbiter !== 'always' && o.arbiter !== 'never') throw new UsageError('--arbiter must be auto, always or never');
    const voters = Number(o.voters), basePort = Number(o.basePort);
    if (!Number.isInteger(voters)) throw new UsageError('--voters must be a whole number');
    if (!Number.isInteger(basePort)) throw new UsageError('--base-port must be a whole number');
    process.exitCode = await runDevCluster({ voters, arbiter: o.arbiter, basePort, host: o.host, dataDir: o.dataDir, tls: o.tls === true });
  });

// ---- the platform API ----------------------------------------------------------------------------
const platform = program.command('platform').description('the Conure platform API (databases, operations)')
  .addOption(new Option('--platform-url <url>', 'platform API URL').default('http://127.0.0.1:8000').env('CONURE_PLATFORM_URL'))
  .addOption(new Option('--token <token>', 'bearer token (admin or tenant)').env('CONURE_PLATFORM_TOKEN'));

function platformClient(): PlatformClient {
  const o = platform.opts<{ platformUrl: string; token?: string }>();
  if (!o.token) throw new UsageError('a token is needed: --token or CONURE_PLATFORM_TOKEN');
  return new PlatformClient({ url: o.platformUrl, token: o.token });
}

function wholeNumber(v: string, flag: string): number {
  if (!/^[0-9]+$/.test(v)) throw new UsageError(`${flag} must be a whole number`);
  return Number(v);
}

/** A progress bar on stderr while an operation runs; resolves with the final operation. */
async function waitWithProgress(c: PlatformClient, id: string, timeoutMs: number): Promise<OperationRecord> {
  const tty = process.stderr.isTTY === true;
  let last = '';
  const draw = (op: OperationRecord) => {
    const width = 30;
    const filled = Math.round((op.progress / 100) * width);
    const step = op.steps.find((s) => s.state === 'running')?.name ?? op.steps.filter((s) => s.state === 'done').pop()?.name ?? '';
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(op.progress).padStart(3)}% ${op.type} ${op.state}${step ? ` · ${step}` : ''}`;
    if (line === last) return;
    last = line;
    process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
  };
  try {
    return await c.waitOperation(id, { timeoutMs, onProgress: draw });
  } finally {
    if (tty && last) process.stderr.write('\n');
  }
}

async function accepted(r: Accepted, wait: boolean | undefined): Promise<void> {
  if (!wait) { print({ database: r.database, operation: r.operation }); return; }
  const c = platformClient();
  const op = await waitWithProgress(c, r.operation.id, 30 * 60_000);
  print(r.operation.type === 'delete' ? { operation: op } : { database: await c.getDatabase(r.database.id), operation: op });
}

const pdb = platform.command('db').description('databases');
pdb.command('create').description('create a database (Fluxion: --ram --api-key; ConureDB: --voters --arbiter --storage)')
  .requiredOption('--engine <engine>', 'fluxion or conuredb')
  .option('--tenant <id>', 'tenant (implied by a tenant token)')
  .option('--name <name>', 'name')
  .option('--ram <quantity>', 'Fluxion RAM, e.g. 2Gi')
  .option('--api-key <key>', 'Fluxion master API key (16..256 characters)')
  .option('--voters <n>', 'ConureDB data-bearing members (1..7)')
  .option('--arbiter <mode>', 'ConureDB arbiter: auto, always or never', 'auto')
  .option('--storage <quantity>', 'ConureDB storage per member, e.g. 8Gi')
  .option('--deletion-policy <policy>', 'Halt, Delete, WipeOut or DoNotTerminate')
  .option('--wait', 'wait for the operation, with a progress bar on stderr')
  .action(async (o: Record<string, string | boolean | undefined>) => {
    const base = { ...(o.tenant ? { tenant: String(o.tenant) } : {}), ...(o.name ? { name: String(o.name) } : {}), ...(o.deletionPolicy ? { deletionPolicy: String(o.deletionPolicy) } : {}) };
    let body;
    if (o.engine === 'fluxion') body = { engine: 'fluxion' as const, ...base, ram: String(o.ram ?? ''), apiKey: String(o.apiKey ?? '') };
    else if (o.engine === 'conuredb') body = { engine: 'conuredb' as const, ...base, voters: wholeNumber(String(o.voters ?? ''), '--voters'), arbiter: String(o.arbiter) as 'auto', storage: String(o.storage ?? '') };
    else throw new UsageError('--engine must be fluxion or conuredb');
    await accepted(await platformClient().createDatabase(body), o.wait === true);
  });
pdb.command('list').description('list databases').option('--tenant <id>', 'only this tenant (admin)').action(async (o: { tenant?: string }) => {
  const dbs = await platformClient().listDatabases(o.tenant ? { tenant: o.tenant } : {});
  print(dbs.map((d) => ({ id: d.id, tenant: d.tenant, engine: d.engine, phase: d.status.phase, endpoints: d.endpoints })));
});
pdb.command('get <id>').description('show a database').action(async (id: string) => print(await platformClient().getDatabase(id)));
pdb.command('scale <id>').description('ConureDB: change the number of voters').requiredOption('--voters <n>', 'voters (1..7)').option('--wait', 'wait for the operation')
  .action(async (id: string, o: { voters: string; wait?: boolean }) => accepted(await platformClient().patchDatabase(id, { voters: wholeNumber(o.voters, '--voters') }), o.wait));
pdb.command('resize <id>').description('Fluxion: --ram; ConureDB: --storage (grow only)').option('--ram <quantity>', 'new RAM').option('--storage <quantity>', 'new storage').option('--wait', 'wait for the operation')
  .action(async (id: string, o: { ram?: string; storage?: string; wait?: boolean }) => {
    if (!o.ram && !o.storage) throw new UsageError('give --ram or --storage');
    await accepted(await platformClient().patchDatabase(id, { ...(o.ram && { ram: o.ram }), ...(o.storage && { storage: o.storage }) }), o.wait);
  });
pdb.command('backup <id>').description('take a backup').option('--wait', 'wait for the operation')
  .action(async (id: string, o: { wait?: boolean }) => accepted(await platformClient().backup(id), o.wait));
pdb.command('backups [id]').description('list backups (of one database, or every visible one)').action(async (id?: string) => print(await platformClient().listBackups(id)));
pdb.command('restore <id>').description('restore a backup into this database').requiredOption('--backup <backupId>', 'backup id').option('--wait', 'wait for the operation')
  .action(async (id: string, o: { backup: string; wait?: boolean }) => accepted(await platformClient().restore(id, o.backup), o.wait));
pdb.command('delete <id>').description('delete (policy Delete or WipeOut) or halt (Halt)').option('--policy <policy>', 'Delete, WipeOut or Halt').option('--wait', 'wait for the operation')
  .action(async (id: string, o: { policy?: 'Delete' | 'WipeOut' | 'Halt'; wait?: boolean }) => accepted(await platformClient().deleteDatabase(id, o.policy), o.wait));
pdb.command('events <id>').description('a database\'s events').action(async (id: string) => print(await platformClient().events(id)));

const pop = platform.command('op').description('operations');
pop.command('get <id>').description('show an operation').action(async (id: string) => print(await platformClient().getOperation(id)));
pop.command('list').description('list operations').option('--database <id>', 'of one database').action(async (o: { database?: string }) => print(await platformClient().listOperations(o.database)));
pop.command('wait <id>').description('wait for an operation, with a progress bar on stderr').option('--timeout <seconds>', 'give up after', '1800')
  .action(async (id: string, o: { timeout: string }) => print(await waitWithProgress(platformClient(), id, wholeNumber(o.timeout, '--timeout') * 1000)));

class UsageError extends Error {}

try {
  await program.parseAsync();
} catch (err) {
  const e = err as Error & { code?: string; exitCode?: number };
  if (e.code?.startsWith('commander.')) process.exit(e.exitCode === 0 ? 0 : 2);
  process.stderr.write(`conurectl: ${e.message}\n`);
  process.exit(e instanceof UsageError ? 2 : 1);
}
