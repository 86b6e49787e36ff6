/**
 * Test support: a child process running one LeaderElection candidate. Env: STORE_ENDPOINT,
 * LEADER_KEY, INSTANCE_ID, TTL_S, CHECK_MS. Logs JSON on stderr (leadership_acquired, …).
 * Stdin commands, one per line: `write <key> <value>` → a fenced put; the answer is a JSON line
 * on stdout: {"write":key,"ok":true} or {"write":key,"ok":false,"code":…}.
 */
import { createInterface } from 'node:readline';
import { EtcdClient, op } from '../../src/client/etcd-client.js';
import { LeaderElection } from '../../src/platform/election/index.js';
import { asConureError } from '../../src/util/errors.js';

const client = new EtcdClient({ endpoints: [process.env.STORE_ENDPOINT!], callTimeoutMs: 2000 });
const election = new LeaderElection({
  client, key: process.env.LEADER_KEY!, instanceId: process.env.INSTANCE_ID!,
  ttlSeconds: Number(process.env.TTL_S ?? 2), checkIntervalMs: Number(process.env.CHECK_MS ?? 500),
});
election.start();
process.stdout.write('started\n');
createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, key, value] = line.trim().split(/\s+/);
  if (cmd !== 'write' || !key) return;
  election.fencedTxn([op.put(key, value ?? '')]).then(
    () => process.stdout.write(`${JSON.stringify({ write: key, ok: true })}\n`),
    (err) => process.stdout.write(`${JSON.stringify({ write: key, ok: false, code: asConureError(err).code })}\n`),
  );
});
process.on('SIGTERM', () => { void election.stop().then(() => { client.close(); process.exit(0); }); });
