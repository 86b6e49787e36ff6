/**
 * Test support: real multi-member ConureDB clusters on 127.0.0.1. Ports are chosen at random
 * below the kernel's ephemeral range and checked by binding (see freePort), so they stay free
 * across member restarts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONURED, tempDir, waitReady } from './conured-process.js';

/** The kernel's ephemeral port range (where port 0 and outgoing connections get their ports). */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo && hi) return [lo, hi];
  } catch { /* not Linux */ }
  return [32768, 60999];
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A port that is free now, chosen below the ephemeral range: a member restarted on the same port
 * later must find it still free, and the kernel never hands these ports to outgoing connections
 * or to listeners on port 0 (which it would, from the ephemeral range, while the member is down).
 */
export async function freePort(): Promise<number> {
  const [ephemeralLow] = ephemeralRange();
  const low = Math.min(10_000, ephemeralLow - 1000);
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (ephemeralLow - low));
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port found between ${low} and ${ephemeralLow}`);
}

export interface MemberSpec {
  id: string;
  role?: 'voter' | 'arbiter';
  bootstrap?: boolean;
  /** Seed HTTP URLs to join through. */
  join?: string[];
}

export class TestMember {
  proc: ChildProcess | undefined;
  log = '';
  /** The etcd gRPC port bound at the last start (0 on arbiters). */
  clientPort = 0;
  private exited: Promise<number | null> = Promise.resolve(null);
  constructor(readonly spec: MemberSpec, readonly dataDir: string, readonly httpPort: number, readonly raftPort: number) {}

  get url(): string { return `http://127.0.0.1:${this.httpPort}`; }
  get raftAddr(): string { return `127.0.0.1:${this.raftPort}`; }
  get running(): boolean { return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null; }

  args(): string[] {
    const s = this.spec;
    return [
      '--node-id', s.id, '--data-dir', this.dataDir,
      '--http-addr', `127.0.0.1:${this.httpPort}`, '--raft-addr', this.raftAddr, '--client-addr', '127.0.0.1:0',
      '--advertise-http', `127.0.0.1:${this.httpPort}`, '--advertise-raft', this.raftAddr,
      '--heartbeat-interval', '50ms', '--election-timeout', '500ms', '--join-backoff', '200ms',
      ...(s.bootstrap ? ['--bootstrap'] : []),
      ...(s.join && s.join.length > 0 ? ['--join', s.join.join(',')] : []),
      ...(s.role === 'arbiter' ? ['--role', 'arbiter'] : []),
    ];
  }

  /** Starts the process and waits for its HTTP listener (not for readiness). */
  async start(extraArgs: string[] = [], env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<void> {
    const proc = spawn(process.execPath, [...nodeArgs, CONURED, ...this.args(), ...extraArgs], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env, CONURE_LOG_LEVEL: 'info' } });
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.spec.id} did not start:\n${this.log}`)), 15_000);
      let thisStart = ''; // this.log spans restarts: read the port from this start's lines only
      proc.stderr!.on('data', (c: Buffer) => {
        this.log += c.toString();
        thisStart += c.toString();
        const started = /"client":"(?:127\.0\.0\.1:(\d+))?"[^\n]*conured_started/.exec(thisStart);
        if (started) { this.clientPort = Number(started[1] ?? 0); clearTimeout(timer); resolve(); }
      });
      void this.exited.then((code) => { clearTimeout(timer); reject(new Error(`${this.spec.id} exited with ${code}:\n${this.log}`)); });
    });
  }

  async waitReady(timeoutMs = 20_000): Promise<void> { await waitReady(this.url, timeoutMs); }
  async kill9(): Promise<void> { this.proc?.kill('SIGKILL'); await this.exited; }
  async stop(): Promise<number | null> { if (!this.running) return null; this.proc?.kill('SIGTERM'); return this.exited; }
}

export class TestCluster {
  readonly members: TestMember[] = [];
  private readonly dir = tempDir('conure-cluster-');

  async add(spec: MemberSpec): Promise<TestMember> {
    const m = new TestMember(spec, join(this.dir.dir, spec.id), await freePort(), await freePort());
    this.members.push(m);
    return m;
  }

  get(id: string): TestMember {
    const m = this.members.find((x) => x.spec.id === id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  seeds(): string[] { return this.members.filter((m) => m.spec.role !== 'arbiter').map((m) => m.url); }

  /**
   * The member that leads, skipping arbiters: an arbiter may lead briefly to hand its log tail to
   * a voter, but serves no clients, so tests wait for a data-bearing leader.
   */
  async leader(timeoutMs = 15_000): Promise<TestMember> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const m of this.members.filter((x) => x.running && x.spec.role !== 'arbiter')) {
        try {
          const s = (await (await fetch(`${m.url}/status`, { signal: AbortSignal.timeout(1000) })).json()) as { is_leader: boolean };
          if (s.is_leader) return m;
        } catch { /* down */ }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('no leader elected in time');
  }

  async config(via?: TestMember): Promise<{ leader: string; servers: Array<{ id: string; address: string; suffrage: string }> }> {
    const m = via ?? (await this.leader());
    return (await (await fetch(`${m.url}/raft/config`)).json()) as { leader: string; servers: Array<{ id: string; address: string; suffrage: string }> };
  }

  /** Waits until the leader's configuration satisfies `pred`. */
  async waitConfig(pred: (servers: Array<{ id: string; suffrage: string }>) => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      try {
        const c = await this.config();
        last = JSON.stringify(c.servers.map((s) => `${s.id}:${s.suffrage}`));
        if (pred(c.servers)) return;
      } catch (err) { last = (err as Error).message; }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}; last config ${last}`);
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop().catch(() => undefined)));
    this.dir.cleanup();
  }
}

/**
 * A background writer: PUTs unique keys through the given endpoints (rotating on failure) and
 * records which were acknowledged. `stop()` resolves with the acknowledged keys.
 */
export function startWriter(endpoints: () => string[], prefix: string): { stop: () => Promise<string[]>; acked: string[] } {
  const acked: string[] = [];
  let running = true;
  let n = 0;
  let at = 0;
  const loop = (async () => {
    while (running) {
      const key = `${prefix}-${n++}`;
      const eps = endpoints();
      const url = eps[at % eps.length];
      try {
        const res = await fetch(`${url}/kv?key=${key}&value=v-${key}`, { method: 'PUT', signal: AbortSignal.timeout(5000) });
        if (res.ok && (await res.text()) === 'OK') acked.push(key); else at++;
      } catch { at++; }
      if (!running) break;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return { acked, stop: async () => { running = false; await loop; return acked; } };
}

/**
 * Every key must read back `v-<key>` through `url` (linearizable reads). Returns the missing
 * ones: a key read with another value (or none) is missing at once; a read the member refuses or
 * cannot answer (503 during an election, a timeout) is retried for up to `retryMs`, since
 * unavailability is not data loss, and counts as missing only when it never succeeds.
 */
export async function missingKeys(url: string, keys: string[], retryMs = 10_000): Promise<string[]> {
  const missing: string[] = [];
  const deadline = Date.now() + retryMs;
  const read = async (k: string): Promise<void> => {
    for (;;) {
      try {
        const res = await fetch(`${url}/kv?key=${k}`, { signal: AbortSignal.timeout(5000) });
        const v = await res.text();
        if (res.ok) { if (v !== `v-${k}`) missing.push(k); return; }
      } catch { /* unreachable or slow: retried */ }
      if (Date.now() > deadline) { missing.push(k); return; }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  for (let i = 0; i < keys.length; i += 32) await Promise.all(keys.slice(i, i + 32).map(read));
  return missing;
}
