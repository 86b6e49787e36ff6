/**
 * ConureDB's etcd API vs a real etcd 3.4, on this machine, with one load generator speaking
 * etcd's gRPC to both: put / get / range at 1, 100 and 1000 closed-loop clients (100 per channel),
 * watch delivery, and (full mode) `etcdctl check perf --load=l` against both.
 *
 * Both run as 3-member clusters of separate processes on loopback with fsync on (DESIGN.md §5):
 * ConureDB (`conured` × 3 voters, load sent to the leader) and etcd 3.4 (× 3, load sent to
 * member 0). `--single` compares one ConureDB member with a single-member etcd instead.
 *
 *   node dist/bench/run.js etcd-compare [--quick] [--single]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, type Client, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { etcdProto } from '../src/api/etcd/proto/index.js';
import { freePort, TestCluster } from '../test/support/cluster.js';
import { Latencies, type BenchModule, type BenchRow } from './report.js';

type Msg = Record<string, unknown>;
type Unary = (req: Msg, cb: (err: ServiceError | null, res: Msg) => void) => void;

interface Server { name: string; endpoint: string; stop(): Promise<void> }


function stopChild(p: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (p.exitCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGTERM');
    setTimeout(() => p.kill('SIGKILL'), 3000).unref();
  });
}

/** A 3-voter ConureDB cluster of real `conured` processes; the endpoint is the leader's gRPC port. */
async function startConure3(): Promise<Server> {
  const c = new TestCluster();
  const boot = await c.add({ id: 'c0', bootstrap: true });
  await boot.start();
  await boot.waitReady();
  for (const id of ['c1', 'c2']) await (await c.add({ id, join: [boot.url] })).start();
  await c.waitConfig((s) => s.filter((x) => x.suffrage === 'voter').length === 3, '3 voters');
  for (const m of c.members) await m.waitReady();
  const leader = await c.leader();
  return { name: 'conuredb', endpoint: `127.0.0.1:${leader.clientPort}`, stop: () => c.stopAll() };
}

/** One ConureDB member (a single-member raft cluster). */
async function startConure1(): Promise<Server> {
  const c = new TestCluster();
  const boot = await c.add({ id: 'c0', bootstrap: true });
  await boot.start();
  await boot.waitReady();
  return { name: 'conuredb', endpoint: `127.0.0.1:${boot.clientPort}`, stop: () => c.stopAll() };
}

/** An etcd 3.4 cluster of `size` members on loopback; the endpoint is member 0's. */
async function startEtcd(size: number): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-etcd-'));
  const ports = await Promise.all(Array.from({ length: size }, async () => [await freePort(), await freePort()] as const));
  const initial = ports.map(([, peer], i) => `e${i}=http://127.0.0.1:${peer}`).join(',');
  const children = ports.map(([client, peer], i) => spawn('etcd', [
    '--name', `e${i}`, '--data-dir', join(dir, `e${i}`),
    '--listen-client-urls', `http://127.0.0.1:${client}`, '--advertise-client-urls', `http://127.0.0.1:${client}`,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', initial, '--initial-cluster-state', 'new', '--log-level', 'error',
  ], { stdio: 'ignore' }));
  const endpoint = `127.0.0.1:${ports[0]![0]}`;
  const all = ports.map(([client]) => `127.0.0.1:${client}`).join(',');
  for (let i = 0; i < 100; i++) {
    const r = spawnSync('etcdctl', [`--endpoints=${all}`, 'endpoint', 'health'], { env: { ...process.env, ETCDCTL_API: '3' } });
    if (r.status === 0) break;
    await new Promise((res) => setTimeout(res, 200));
  }
  return { name: 'etcd', endpoint, stop: async () => { await Promise.all(children.map(stopChild)); rmSync(dir, { recursive: true, force: true }); } };
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
  const single = process.argv.includes('--single');
  const notes: string[] = [single
    ? 'one ConureDB member vs a single-member etcd 3.4, fsync on'
    : '3-voter ConureDB (load to the leader) vs 3-member etcd 3.4 (load to member 0), fsync on, all on this machine'];
  if (spawnSync('which', ['etcd']).status !== 0) return { suite: 'etcd-compare', rows: [], notes: ['etcd not installed: skipped'] };
  const durationMs = quick ? 2000 : 8000;
  const clientCounts = quick ? [1, 100] : [1, 100, 1000];
  const rows: BenchRow[] = [];
  const results = new Map<string, Record<string, number>>();
  const starters = single ? [startConure1, () => startEtcd(1)] : [startConure3, () => startEtcd(3)];
  for (const start of starters) {
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
        for (const load of ['l', 'xl']) {
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
