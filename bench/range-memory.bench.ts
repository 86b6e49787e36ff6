/**
 * Memory of large etcd Ranges (docs/security.md, finding 10): the leader's resident set while
 * it answers one, then ten parallel, unlimited Ranges over 100k keys (~98-byte values, ~9.8 MB
 * per response), on a 3-voter `conured` cluster of real processes (`--quick`: 20k keys).
 *
 * RSS is read from /proc/<pid>/status: VmRSS before, VmHWM (the peak) after, with the peak reset
 * through /proc/<pid>/clear_refs ("5") before each measurement. A figure, never an assertion.
 *
 *   node dist/bench/run.js range-memory [--quick]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { credentials, type Client, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { etcdProto } from '../src/api/etcd/proto/index.js';
import { TestCluster } from '../test/support/cluster.js';
import type { BenchModule, BenchRow } from './report.js';

type Msg = Record<string, unknown>;
type Unary = (req: Msg, cb: (err: ServiceError | null, res: Msg) => void) => void;

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

function unary(client: Client, method: string, req: Msg): Promise<Msg> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, Unary>)[method]!.call(client, req, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** A budget small enough to bind ten ~13 MB responses: the third configuration. */
const CAPPED_BYTES = 32 * 1024 * 1024;

async function measure(keys: number, label: string, flags: string[], parallels: number[]): Promise<BenchRow[]> {
  const c = new TestCluster();
  const rows: BenchRow[] = [];
  try {
    const boot = await c.add({ id: 'r0', bootstrap: true });
    await boot.start(flags);
    await boot.waitReady();
    for (const id of ['r1', 'r2']) await (await c.add({ id, join: [boot.url] })).start(flags);
    await c.waitConfig((s) => s.filter((x) => x.suffrage === 'voter').length === 3, '3 voters');
    for (const m of c.members) await m.waitReady();
    const leader = await c.leader();
    const pid = leader.proc!.pid!;
    const KV = etcdProto().KV as ServiceClientConstructor;
    const opts = { 'grpc.max_receive_message_length': -1 };
    const client = new KV(`127.0.0.1:${leader.clientPort}`, credentials.createInsecure(), opts);
    const value = Buffer.alloc(98, 0x76);
    for (let i = 0; i < keys; i += 128) {
      const success = [];
      for (let j = i; j < Math.min(keys, i + 128); j++) success.push({ request_put: { key: Buffer.from(`bench/range/${String(j).padStart(7, '0')}`), value } });
      await unary(client, 'Txn', { compare: [], success, failure: [] });
      if (i % 12_800 === 0) process.stderr.write(`[range-memory] loaded ${i}/${keys} keys\r`);
    }
    process.stderr.write('\n');
    const range = { key: Buffer.from('bench/range/'), range_end: Buffer.from('bench/range0') };
    // Warm up once (JIT, LMDB pages), let the heap settle.
    await unary(client, 'Range', { ...range, count_only: true });
    await new Promise((r) => setTimeout(r, 2000));
    for (const parallel of parallels) {
      const clients = Array.from({ length: parallel }, () => new KV(`127.0.0.1:${leader.clientPort}`, credentials.createInsecure(), { ...opts, 'grpc.use_local_subchannel_pool': 1 }));
      await new Promise((r) => setTimeout(r, 1000));
      const before = statusKb(pid, 'VmRSS');
      resetPeak(pid);
      const started = performance.now();
      const res = await Promise.all(clients.map((cl) => unary(cl, 'Range', range)));
      const ms = performance.now() - started;
      const peak = statusKb(pid, 'VmHWM');
      const kvs = (res[0]!.kvs as Msg[]).length;
      const respBytes = (res[0]!.kvs as Msg[]).reduce((a, kv) => a + (kv.key as Buffer).length + (kv.value as Buffer).length + 12, 0);
      rows.push({
        name: `conuredb leader Range, no limit${label}`,
        params: { keys, parallel },
        metrics: {
          kvs_per_response: kvs,
          response_mb: respBytes / 1e6,
          rss_before_mb: before / 1024,
          rss_peak_mb: peak / 1024,
          rss_added_mb: (peak - before) / 1024,
          added_per_response_byte: (peak - before) * 1024 / (respBytes * parallel),
          wall_ms: ms,
        },
      });
      for (const cl of clients) cl.close();
      await new Promise((r) => setTimeout(r, 2000));
    }
    client.close();
  } finally {
    await c.stopAll();
  }
  return rows;
}

const bench: BenchModule = async ({ quick }) => {
  const keys = quick ? 20_000 : 100_000;
  // The flag only exists after finding 10; an older conured would refuse it, so allow skipping.
  const capped = process.env.BENCH_NO_CAPPED === '1' ? [] : await measure(keys, ` (--range-bytes-in-flight-max ${CAPPED_BYTES})`, ['--range-bytes-in-flight-max', String(CAPPED_BYTES)], [10]);
  const rows = [...(await measure(keys, '', [], [1, 10])), ...capped];
  return {
    suite: 'range-memory',
    rows,
    notes: ['3 conured voters on loopback; RSS of the leader from /proc (VmRSS before, VmHWM peak after a clear_refs reset)'],
  };
};

export default bench;
