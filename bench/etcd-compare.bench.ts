/**
 * ConureDB's etcd API vs a real etcd 3.4, on this machine, with one load generator speaking
 * etcd's gRPC to both: put / get / range at 1, 100 and 1000 closed-loop clients (100 per channel),
 * watch delivery, and (full mode) `etcdctl check perf --load=l` against both.
 *
 * Both servers run as separate processes on loopback with fsync on: ConureDB single-node
 * (SingleNodeReplicator over LMDB) and `etcd` single-member. The 3-node comparison of
 * DESIGN.md §5 needs the raft Replicator and is added with it.
 *
 *   node dist/bench/run.js etcd-compare [--quick]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials, type Client, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { etcdProto } from '../src/api/etcd/proto.js';
import { Latencies, type BenchModule, type BenchRow } from './report.js';

type Msg = Record<string, unknown>;
type Unary = (req: Msg, cb: (err: ServiceError | null, res: Msg) => void) => void;

interface Server { name: string; endpoint: string; stop(): Promise<void> }

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function stopChild(p: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (p.exitCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGTERM');
    setTimeout(() => p.kill('SIGKILL'), 3000).unref();
  });
}

async function startConure(): Promise<Server> {
  const here = dirname(fileURLToPath(import.meta.url));
  const entry = join(here, '..', 'src', 'api', 'etcd', 'test-server.js');
  const script = `import { startTestEtcdServer } from ${JSON.stringify(entry)};
const s = await startTestEtcdServer();
console.log(s.endpoint);
process.on('SIGTERM', async () => { await s.close(); process.exit(0); });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, CONURE_LOG_LEVEL: 'warn' } });
  const endpoint = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    child.on('exit', (code) => reject(new Error(`conure server exited with ${code}`)));
  });
  return { name: 'conuredb', endpoint, stop: () => stopChild(child) };
}

async function startEtcd(): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-etcd-'));
  const [client, peer] = [await freePort(), await freePort()];
  const endpoint = `127.0.0.1:${client}`;
  const child = spawn('etcd', [
    '--data-dir', join(dir, 'data'), '--listen-client-urls', `http://${endpoint}`, '--advertise-client-urls', `http://${endpoint}`,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `default=http://127.0.0.1:${peer}`, '--log-level', 'error',
  ], { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    const r = spawnSync('etcdctl', [`--endpoints=${endpoint}`, 'endpoint', 'health'], { env: { ...process.env, ETCDCTL_API: '3' } });
    if (r.status === 0) break;
    await new Promise((res) => setTimeout(res, 200));
  }
  return { name: 'etcd', endpoint, stop: async () => { await stopChild(child); rmSync(dir, { recursive: true, force: true }); } };
}

function kvClients(endpoint: string, n: number): Client[] {
  const Ctor = etcdProto().KV as ServiceClientConstructor;
  // Distinct channel options force distinct connections (grpc-js shares subchannels otherwise).
  return Array.from({ length: n }, (_, i) => new Ctor(endpoint, credentials.createInsecure(), { 'grpc.channel_id': i } as object));
}

function call(c: Client, method: string, req: Msg): Promise<Msg> {
  return new Promise((resolve, reject) => {
    ((c as unknown as Record<string, Unary>)[method]!).call(c, req, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

async function closedLoop(clients: number, durationMs: number, chans: Client[], op: (c: Client, i: number) => Promise<unknown>) {
  const lat = new Latencies();
  let ops = 0;
  let errors = 0;
  let seq = 0;
  const deadline = performance.now() + durationMs;
  const started = performance.now();
  await Promise.all(Array.from({ length: clients }, async (_, w) => {
    const c = chans[w % chans.length]!;
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        await op(c, seq++);
        ops++;
        lat.record(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  return { ops_per_s: ops / seconds, p50_ms: lat.percentile(50), p99_ms: lat.percentile(99), errors };
}

async function watchDelivery(endpoint: string, puts: number, chans: Client[]): Promise<{ events_per_s: number }> {
  const Ctor = etcdProto().Watch as ServiceClientConstructor;
  const w = new Ctor(endpoint, credentials.createInsecure());
  const stream = (w as unknown as { Watch(): NodeJS.ReadWriteStream & { write(m: Msg): boolean; cancel(): void } }).Watch();
  let seen = 0;
  const key = (i: number) => Buffer.from(`watchbench/${i % 1000}`);
  const allSeen = new Promise<void>((resolve) => stream.on('data', (m: Msg) => {
    seen += ((m.events as unknown[]) ?? []).length;
    if (seen >= puts) resolve();
  }));
  stream.on('error', () => undefined);
  stream.write({ create_request: { key: Buffer.from('watchbench/'), range_end: Buffer.from('watchbench0') } });
  await new Promise((r) => setTimeout(r, 200));
  const t0 = performance.now();
  let i = 0;
  await Promise.all(Array.from({ length: 100 }, async (_, wk) => {
    while (i < puts) await call(chans[wk % chans.length]!, 'Put', { key: key(i++), value: Buffer.alloc(64) });
  }));
  await Promise.race([allSeen, new Promise((r) => setTimeout(r, 30_000))]);
  const seconds = (performance.now() - t0) / 1000;
  stream.cancel();
  w.close();
  return { events_per_s: seen / seconds };
}

function checkPerf(endpoint: string, load: string): { pass: number; writes_per_s: number } {
  const r = spawnSync('etcdctl', [`--endpoints=${endpoint}`, 'check', 'perf', `--load=${load}`], { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8', timeout: 240_000 });
  const out = (r.stdout ?? '').replace(/\r/g, '\n');
  const tput = /Throughput[^\n]*?(\d+) writes\/s/.exec(out);
  return { pass: r.status === 0 ? 1 : 0, writes_per_s: tput ? Number(tput[1]) : 0 };
}

const bench: BenchModule = async ({ quick }) => {
  const notes: string[] = ['single-node ConureDB (SingleNodeReplicator, LMDB, fsync on) vs single-member etcd 3.4; 3-node comparison pending raft'];
  if (spawnSync('which', ['etcd']).status !== 0) return { suite: 'etcd-compare', rows: [], notes: ['etcd not installed: skipped'] };
  const durationMs = quick ? 2000 : 8000;
  const clientCounts = quick ? [1, 100] : [1, 100, 1000];
  const rows: BenchRow[] = [];
  const results = new Map<string, Record<string, number>>();
  for (const start of [startConure, startEtcd]) {
    const srv = await start();
    try {
      const chans = kvClients(srv.endpoint, 10);
      for (let i = 0; i < 1000; i += 100) {
        await Promise.all(Array.from({ length: 100 }, (_, j) => call(chans[0]!, 'Put', { key: Buffer.from(`bench/${String(i + j).padStart(4, '0')}`), value: Buffer.alloc(256, 120) })));
      }
      const ops: [string, (c: Client, i: number) => Promise<unknown>][] = [
        ['put', (c, i) => call(c, 'Put', { key: Buffer.from(`bench/${String(i % 1000).padStart(4, '0')}`), value: Buffer.alloc(256, 121) })],
        ['get', (c, i) => call(c, 'Range', { key: Buffer.from(`bench/${String(i % 1000).padStart(4, '0')}`) })],
        ['range100', (c) => call(c, 'Range', { key: Buffer.from('bench/0'), range_end: Buffer.from('bench/1'), limit: '100' })],
      ];
      for (const [name, op] of ops) {
        for (const clients of clientCounts) {
          process.stderr.write(`[etcd-compare] ${srv.name} ${name} clients=${clients}\n`);
          const m = await closedLoop(clients, durationMs, chans, op);
          rows.push({ name: `${srv.name} ${name}`, params: { clients }, metrics: m });
          results.set(`${srv.name}/${name}/${clients}`, m);
        }
      }
      const w = await watchDelivery(srv.endpoint, quick ? 2000 : 10_000, chans);
      rows.push({ name: `${srv.name} watch`, params: { clients: 100 }, metrics: w });
      if (!quick) {
        for (const load of ['l']) {
          process.stderr.write(`[etcd-compare] ${srv.name} check perf --load=${load}\n`);
          rows.push({ name: `${srv.name} check-perf-${load}`, params: { clients: 0 }, metrics: checkPerf(srv.endpoint, load) });
        }
      }
      for (const c of chans) c.close();
    } finally {
      await srv.stop();
    }
  }
  for (const [k, m] of results) {
    if (!k.startsWith('conuredb/')) continue;
    const e = results.get(k.replace('conuredb/', 'etcd/'));
    if (!e) continue;
    const [, op, clients] = k.split('/');
    rows.push({ name: `ratio ${op} conure/etcd`, params: { clients: Number(clients) }, metrics: { ops_ratio: m.ops_per_s! / Math.max(1e-9, e.ops_per_s!), p99_ratio: m.p99_ms! / Math.max(1e-9, e.p99_ms!) } });
  }
  return { suite: 'etcd-compare', rows, notes };
};

export default bench;
