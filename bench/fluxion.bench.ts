/**
 * Fluxion benchmark (prints figures, asserts nothing):
 *  - durable batch insert throughput over WebSocket against a real `fluxiond --data` child process,
 *    at batch sizes 1, 100 and 10,000 (pipelined; every request acknowledged after fsync);
 *  - the same batch path in-process (service + WAL, no socket), i.e. the engine's per-core ceiling;
 *  - `qry` / `qdoc` p50/p99 on 1M records across 10,000 documents, over WebSocket and in-process;
 *  - memory bytes per record (V8 heap, after GC) and disk bytes per record (WAL, snapshot);
 *  - restart time (snapshot + WAL replay) of a real `fluxiond`.
 * `quick` shrinks every size; the notes say what was measured.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { DurableLog } from '../src/fluxion/persistence.js';
import { FluxionService } from '../src/fluxion/service.js';
import { FluxionStore } from '../src/fluxion/store.js';
import { createLogger } from '../src/util/log.js';
import { Latencies, type BenchModule, type BenchRow } from './report.js';

const FLUXIOND = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'fluxiond.js');
const KEY = 'bench';

interface Daemon { proc: ChildProcess; port: number; startMs: number; recovered: Record<string, number> }

async function startDaemon(dataDir: string, extra: string[] = []): Promise<Daemon> {
  const t0 = performance.now();
  const proc = spawn(process.execPath, [FLUXIOND, '--secret-key', KEY, '--data', dataDir, '--port', '0', '--host', '127.0.0.1', ...extra], {
    env: { ...process.env, CONURE_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let recovered: Record<string, number> = {};
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error('fluxiond did not start')); }, 600_000);
    proc.stderr!.on('data', (c: Buffer) => {
      buf += c.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const o = JSON.parse(line) as { msg?: string; port?: number } & Record<string, number>;
          if (o.msg === 'recovered') recovered = o;
          if (o.msg === 'listening') { clearTimeout(timer); resolve(o.port!); }
        } catch { /* ignore */ }
      }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`fluxiond exited with ${code}`)); });
  });
  return { proc, port, startMs: performance.now() - t0, recovered };
}

function stopDaemon(d: Daemon): Promise<void> {
  return new Promise((resolve) => { d.proc.once('exit', () => resolve()); d.proc.kill('SIGTERM'); });
}

/** Minimal pipelining client: `send` returns the reply; replies are matched by id. */
class BenchClient {
  private readonly waiters = new Map<string, (reply: string) => void>();
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (raw) => {
      const text = String(raw);
      const m = /^\{"id":"([^"]+)"/.exec(text);
      if (m) { const w = this.waiters.get(m[1]!); this.waiters.delete(m[1]!); w?.(text); }
    });
  }
  static connect(port: number): Promise<BenchClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/?api-key=${KEY}&name=bench`, { perMessageDeflate: false });
      ws.once('message', () => resolve(new BenchClient(ws)));
      ws.once('error', reject);
    });
  }
  send(id: string, frame: string): Promise<string> {
    const p = new Promise<string>((resolve) => this.waiters.set(id, resolve));
    this.ws.send(frame);
    return p;
  }
  close(): void { this.ws.close(); }
}

const frame = (id: string, type: string, data: string): string => JSON.stringify({ id, type, data });

function insPayload(col: string, first: number, n: number, docs: number): string {
  const recs = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const k = first + i;
    recs[i] = `{"col":"${col}","doc":"doc-${k % docs}","ts":${1_700_000_000 + Math.floor(k / docs)},"data":"{\\"v\\":${k % 100_000},\\"s\\":\\"ok\\"}"}`;
  }
  return `[${recs.join(',')}]`;
}

/** Sends pre-encoded frames with at most `window` in flight; returns records/s and ack latencies. */
async function pipelined(c: BenchClient, frames: Array<{ id: string; text: string; records: number }>, window: number): Promise<{ seconds: number; lat: Latencies; records: number }> {
  const lat = new Latencies();
  let next = 0;
  let records = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < frames.length) {
      const f = frames[next++]!;
      const s = performance.now();
      const reply = await c.send(f.id, f.text);
      if (reply.includes('"error"')) throw new Error(`insert failed: ${reply}`);
      lat.record(performance.now() - s);
      records += f.records;
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  return { seconds: (performance.now() - t0) / 1000, lat, records };
}

async function scrape(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

function dirBytes(dir: string, prefix: string): number {
  return readdirSync(dir).filter((f) => f.startsWith(prefix)).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

const bench: BenchModule = async ({ quick }) => {
  const rows: BenchRow[] = [];
  const notes: string[] = [];
  const root = mkdtempSync(join(tmpdir(), 'fluxion-bench-'));
  const log = createLogger('fluxion-bench', {});
  log.level = 'warn';
  try {
    // ---- 1. durable batch insert throughput over WebSocket -------------------------------------
    const plans = quick
      ? [{ batch: 1, total: 5_000, window: 64 }, { batch: 100, total: 200_000, window: 16 }, { batch: 10_000, total: 500_000, window: 4 }]
      : [{ batch: 1, total: 50_000, window: 256 }, { batch: 100, total: 1_000_000, window: 32 }, { batch: 10_000, total: 3_000_000, window: 4 }];
    for (const p of plans) {
      const dir = join(root, `ins-${p.batch}`);
      const d = await startDaemon(dir);
      const c = await BenchClient.connect(d.port);
      const frames = [];
      for (let i = 0, n = 0; i < p.total; i += p.batch, n++) frames.push({ id: `i${n}`, text: frame(`i${n}`, 'ins', insPayload('ins', i, p.batch, 10_000)), records: p.batch });
      const fsync0 = await scrape(d.port, 'fluxion_wal_fsync_seconds_count');
      const cpu0 = await scrape(d.port, 'fluxion_process_cpu_seconds_total');
      const r = await pipelined(c, frames, p.window);
      const fsyncs = (await scrape(d.port, 'fluxion_wal_fsync_seconds_count')) - fsync0;
      const serverCpu = (await scrape(d.port, 'fluxion_process_cpu_seconds_total')) - cpu0;
      rows.push({
        name: 'ins over WebSocket, durable', params: { batch: p.batch, in_flight: p.window, records: r.records },
        metrics: { records_per_s: r.records / r.seconds, records_per_cpu_s: r.records / serverCpu, requests_per_s: frames.length / r.seconds, ack_p50_ms: r.lat.percentile(50), ack_p99_ms: r.lat.percentile(99), requests_per_fsync: frames.length / fsyncs },
      });
      c.close();
      await stopDaemon(d);
      rmSync(dir, { recursive: true, force: true });
    }

    // ---- 2. the same batch path in-process (engine + WAL + fsync, no socket) -------------------
    {
      const dir = join(root, 'engine');
      const store = new FluxionStore();
      const dl = await DurableLog.open({ dir, store, masterKey: KEY, log, snapshotWalBytes: 2 ** 40 });
      const svc = new FluxionService({ store, log: dl, masterKey: KEY });
      const s = svc.openSession(KEY, '', '');
      const batch = 10_000;
      const total = quick ? 500_000 : 3_000_000;
      const payloads = Array.from({ length: total / batch }, (_, n) => insPayload('eng', n * batch, batch, 10_000));
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      const inflight: Array<Promise<unknown>> = [];
      for (const pl of payloads) {
        inflight.push(Promise.resolve(svc.handle(s, 'ins', pl)));
        if (inflight.length >= 4) await inflight.shift();
      }
      await Promise.all(inflight);
      const sec = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      rows.push({ name: 'ins in-process (service+WAL), durable', params: { batch, in_flight: 4, records: total }, metrics: { records_per_s: total / sec, records_per_cpu_s: total / ((cpu.user + cpu.system) / 1e6) } });
      await dl.close();
      rmSync(dir, { recursive: true, force: true });
    }

    // ---- 3. queries on 1M records / 10,000 documents, and restart -----------------------------
    const qRecords = quick ? 200_000 : 1_000_000;
    const qDocs = 10_000;
    const perDoc = qRecords / qDocs;
    const qdir = join(root, 'query');
    let d = await startDaemon(qdir);
    let c = await BenchClient.connect(d.port);
    {
      const frames = [];
      for (let i = 0, n = 0; i < qRecords; i += 10_000, n++) frames.push({ id: `l${n}`, text: frame(`l${n}`, 'ins', insPayload('q', i, 10_000, qDocs)), records: 10_000 });
      await pipelined(c, frames, 4);
    }
    const rnd = (n: number): number => Math.floor(Math.random() * n);
    const tsBase = 1_700_000_000;
    const samples = quick ? 2_000 : 10_000;
    const measure = async (name: string, params: Record<string, string | number>, n: number, make: (i: number) => string): Promise<void> => {
      const lat = new Latencies();
      let bytes = 0;
      for (let i = 0; i < n; i++) {
        const id = `q${i}`;
        const s = performance.now();
        bytes += (await c.send(id, frame(id, name.split(' ')[0]!, make(i)))).length;
        lat.record(performance.now() - s);
      }
      rows.push({ name: `${name} over WebSocket`, params: { records: qRecords, docs: qDocs, ...params }, metrics: { p50_ms: lat.percentile(50), p99_ms: lat.percentile(99), reply_bytes: bytes / n } });
    };
    await measure('qry one doc', { sel: 'doc=exact, ts=random' }, samples, () => JSON.stringify({ col: 'q', doc: `doc-${rnd(qDocs)}`, ts: tsBase + rnd(perDoc) }));
    await measure('qdoc 10 records', { sel: 'range of 10' }, samples, () => { const f = tsBase + rnd(perDoc - 10); return JSON.stringify({ col: 'q', doc: `doc-${rnd(qDocs)}`, from: f, to: f + 9 }); });
    await measure('qdoc newest 1', { sel: 'reverse limit 1' }, samples, () => JSON.stringify({ col: 'q', doc: `doc-${rnd(qDocs)}`, to: tsBase + perDoc, reverse: true, limit: 1 }));
    await measure('qdoc whole doc', { sel: `all ${perDoc}` }, samples, () => JSON.stringify({ col: 'q', doc: `doc-${rnd(qDocs)}`, to: tsBase + perDoc }));
    await measure('qry all docs', { sel: `${qDocs} docs` }, quick ? 50 : 200, () => JSON.stringify({ col: 'q', ts: tsBase + rnd(perDoc) }));
    c.close();
    await stopDaemon(d);
    const walBytes = dirBytes(qdir, 'wal-');
    // Restart from the WAL alone, then write a snapshot (via a small threshold) and restart from it.
    d = await startDaemon(qdir);
    rows.push({ name: 'restart fluxiond (WAL replay only)', params: { records: qRecords }, metrics: { seconds: d.startMs / 1000, recovery_s: d.recovered.seconds ?? NaN, recovery_cpu_s: d.recovered.cpuSeconds ?? NaN } });
    await stopDaemon(d);
    d = await startDaemon(qdir, ['--snapshot-wal-bytes', '1']);
    c = await BenchClient.connect(d.port);
    await c.send('s', frame('s', 'ins', insPayload('snaptrigger', 0, 1, 1))); // crosses the threshold: snapshot
    for (let i = 0; i < 600 && dirBytes(qdir, 'snapshot-') === 0; i++) await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 600 && readdirSync(qdir).some((f) => f.endsWith('.tmp')); i++) await new Promise((r) => setTimeout(r, 100));
    c.close();
    await stopDaemon(d);
    const snapBytes = dirBytes(qdir, 'snapshot-');
    d = await startDaemon(qdir);
    rows.push({ name: 'restart fluxiond (snapshot)', params: { records: qRecords + 1 }, metrics: { seconds: d.startMs / 1000, recovery_s: d.recovered.seconds ?? NaN, recovery_cpu_s: d.recovered.cpuSeconds ?? NaN } });
    await stopDaemon(d);
    rows.push({ name: 'disk bytes per record', params: { records: qRecords }, metrics: { wal: walBytes / qRecords, snapshot: snapBytes / qRecords } });
    rmSync(qdir, { recursive: true, force: true });

    // ---- 4. heap bytes per record: a fresh process with --expose-gc, so nothing else is counted -----
    {
      const n = quick ? 200_000 : 1_000_000;
      const storeUrl = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'fluxion', 'store.js')).href;
      const script = `
        const { FluxionStore } = await import(${JSON.stringify(storeUrl)});
        const docs = ${qDocs};
        const batch = (first) => Array.from({ length: 10000 }, (_, i) => { const k = first + i;
          return { col: 'mem', doc: 'doc-' + (k % docs), ts: 1700000000 + Math.floor(k / docs), data: JSON.stringify({ v: k % 100000, s: 'ok' }) }; });
        const names = Array.from({ length: docs }, (_, d) => 'doc-' + d); // document names exist in any deployment
        globalThis.gc(); globalThis.gc();
        const before = process.memoryUsage();
        const store = new FluxionStore();
        let chars = 0;
        for (let i = 0; i < ${n}; i += 10000) { const b = batch(i); for (const r of b) chars += r.data.length; store.insert(b); }
        globalThis.gc(); globalThis.gc();
        const after = process.memoryUsage();
        console.log(JSON.stringify({ bytes: after.heapUsed - before.heapUsed + after.arrayBuffers - before.arrayBuffers, chars, est: store.stats().estimatedBytes, keep: names.length + store.stats().records }));`;
      const out = await new Promise<string>((resolve, reject) => {
        const p = spawn(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
        let text = '';
        p.stdout.on('data', (c: Buffer) => { text += c.toString(); });
        p.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`memory probe exited with ${code}`))));
      });
      const m = JSON.parse(out) as { bytes: number; chars: number; est: number };
      rows.push({
        name: 'heap bytes per record (after GC)', params: { records: n, docs: qDocs },
        metrics: { bytes_per_record: m.bytes / n, data_bytes_per_record: m.chars / n, overhead_per_record: (m.bytes - m.chars) / n, estimated_per_record: m.est / n },
      });
    }

    // ---- 5. restart with a large data set (full run only) --------------------------------------
    if (!quick) {
      const big = 10_000_000;
      const bdir = join(root, 'big');
      const store = new FluxionStore();
      const dl = await DurableLog.open({ dir: bdir, store, masterKey: KEY, log, snapshotWalBytes: 2 ** 40 });
      const svc = new FluxionService({ store, log: dl, masterKey: KEY });
      const s = svc.openSession(KEY, '', '');
      const inflight: Array<Promise<unknown>> = [];
      for (let i = 0; i < big; i += 10_000) {
        inflight.push(Promise.resolve(svc.handle(s, 'ins', insPayload('big', i, 10_000, 100_000))));
        if (inflight.length >= 4) await inflight.shift();
      }
      await Promise.all(inflight);
      await dl.snapshot();
      await dl.close();
      const snapBytes = dirBytes(bdir, 'snapshot-');
      const dd = await startDaemon(bdir);
      rows.push({ name: 'restart fluxiond (snapshot)', params: { records: big }, metrics: { seconds: dd.startMs / 1000, recovery_s: dd.recovered.seconds ?? NaN, recovery_cpu_s: dd.recovered.cpuSeconds ?? NaN, snapshot_bytes_per_record: snapBytes / big } });
      await stopDaemon(dd);
      rmSync(bdir, { recursive: true, force: true });
    } else {
      notes.push('quick mode: restart measured on the query data set only; run without --quick for 10M records');
    }
    notes.push(`query set: ${qRecords} records in ${qDocs} documents (${perDoc} per document), one collection; data ~20 bytes per record`);
    notes.push('WebSocket rows: client and server share this machine (2 cores); the in-process row is the engine + WAL + fsync alone');
    notes.push('records_per_cpu_s = records / CPU seconds of the server process (all threads): the per-core figure, insensitive to other load on the machine');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return { suite: 'fluxion', rows, notes };
};

export default bench;
