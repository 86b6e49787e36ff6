#!/usr/bin/env node
/**
 * conurectl: command-line client for ConureDB. `--endpoints` (or CONURE_ENDPOINTS) takes a
 * comma list tried in turn. Exits 0 on success; on failure prints `conurectl: <message>` to
 * stderr and exits 1 (2 for bad usage).
 */
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { ConureHttpClient } from '../client/http-client.js';
import { restoreSnapshot, saveSnapshot } from '../node/backup.js';
import { PeerSecret } from '../node/peer-auth.js';
import { runDevCluster } from './dev-cluster.js';

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
snapshot.command('restore <file>').description('create the data directory of a new single-member cluster from a snapshot; start conured on it, then join the others')
  .requiredOption('--data-dir <dir>', 'new, empty data directory')
  .requiredOption('--node-id <id>', 'id of the member that will run on it')
  .requiredOption('--advertise-raft <host:port>', 'its advertised raft address')
  .requiredOption('--advertise-http <host:port>', 'its advertised HTTP address')
  .action(async (file: string, o: { dataDir: string; nodeId: string; advertiseRaft: string; advertiseHttp: string }) => {
    await restoreSnapshot({ file, dataDir: o.dataDir, nodeId: o.nodeId, advertiseRaft: o.advertiseRaft, advertiseHttp: o.advertiseHttp });
    print(`Restored ${file} into ${o.dataDir}; start: conured --node-id ${o.nodeId} --data-dir ${o.dataDir} --advertise-raft ${o.advertiseRaft} --advertise-http ${o.advertiseHttp} …`);
  });

program.command('dev').description('local development helpers').command('cluster')
  .description('start a local cluster as child processes, shaped like the Helm chart')
  .option('--voters <n>', 'data-bearing members, including the bootstrap member', '2')
  .option('--arbiter <mode>', 'auto (an arbiter when voters is even), always or never', 'auto')
  .option('--base-port <port>', 'member i serves HTTP on base+i, raft on base+100+i, etcd on base+200+i', '8081')
  .option('--host <host>', 'address to listen and advertise on', '127.0.0.1')
  .option('--data-dir <dir>', 'parent directory of the members\' data directories', './.conure')
  .action(async (o: { voters: string; arbiter: string; basePort: string; host: string; dataDir: string }) => {
    if (o.arbiter !== 'auto' && o.arbiter !== 'always' && o.arbiter !== 'never') throw new UsageError('--arbiter must be auto, always or never');
    const voters = Number(o.voters), basePort = Number(o.basePort);
    if (!Number.isInteger(voters)) throw new UsageError('--voters must be a whole number');
    if (!Number.isInteger(basePort)) throw new UsageError('--base-port must be a whole number');
    process.exitCode = await runDevCluster({ voters, arbiter: o.arbiter, basePort, host: o.host, dataDir: o.dataDir });
  });

class UsageError extends Error {}

try {
  await program.parseAsync();
} catch (err) {
  const e = err as Error & { code?: string; exitCode?: number };
  if (e.code?.startsWith('commander.')) process.exit(e.exitCode === 0 ? 0 : 2);
  process.stderr.write(`conurectl: ${e.message}\n`);
  process.exit(e instanceof UsageError ? 2 : 1);
}
