/**
 * The lease workload over the etcd v3 gRPC API: workers grant leases with short TTLs (client-
 * chosen ids), attach one or two new keys to each, and then either keep the lease alive for one
 * to two TTLs with single keep-alives before letting it lapse, or let it lapse at once.
 * Watchers on the key prefix record every response they receive; when a stream breaks (a member
 * died) they re-create the watch from the revision after the last one they covered. The final
 * phase waits for every lease to expire, reads the prefix, makes every watcher catch up to that
 * read's revision (progress requests), and probes a sample of leases with keep-alives that must
 * answer TTL 0. The event format and the checks are in checker/lease.ts (checkLease).
 *
 * Nothing mutating is retried (etcd-client.ts). Keys are never deleted and leases never revoked
 * by the workload, so every DELETE the watchers see is an expiry.
 */
import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import type { HistoryRecorder } from '../history-recorder.js';
import { classifyGrpcError, EtcdChannels, prefixEnd, revisionOf, watchedEvents, type Msg } from './etcd-client.js';
import { etcdEndpointsOf, pickEndpoint } from './etcd.js';
import { pauseAfter, sleep } from './drive.js';
import type { Outcome } from './http-kv.js';
import type { Workload, WorkloadOptions } from './workload.js';

/** Parameters of the lease workload. */
export interface LeaseWorkloadParams {
  /** TTLs (s) to choose from per lease. */
  ttlsSeconds: number[];
  /** Share of leases kept alive for a while before they lapse; the rest lapse at once. */
  keepFraction: number;
  /** Share of leases with two keys (expired together in one revision) instead of one. */
  twoKeyFraction: number;
  /** Concurrent watchers on the prefix. */
  watchers: number;
  /** Pause between one worker's leases, ms (uniform in [0, leasePauseMs]) on top of thinkMs. */
  leasePauseMs: number;
  /** How long the final phase waits, after the expiry wait, for leases to expire and watchers to catch up. */
  finalWaitMaxMs: number;
  /** Leases probed with a keep-alive at the end (each must answer TTL 0). */
  finalProbesMax: number;
}

export const DEFAULT_LEASE_PARAMS: LeaseWorkloadParams = {
  ttlsSeconds: [2, 3, 4], keepFraction: 0.4, twoKeyFraction: 0.3, watchers: 2, leasePauseMs: 300, finalWaitMaxMs: 20_000, finalProbesMax: 30,
};

/** Waiting for a watch's `created`, and for one progress response while catching up. */
const PROGRESS_WAIT_MS = 2000;
/** Pause between progress requests while a watcher is still behind. */
const PROGRESS_RETRY_MS = 100;
/** Pause before re-creating a broken watch. */
const REOPEN_BACKOFF_MS = 200;

/**
 * One watcher: a Watch stream on the prefix, re-created (from the revision after the last one
 * covered) whenever it breaks, until `stop()`. Records `watch`, `watch-event` and `watch-broken`.
 */
class PrefixWatcher {
  /** Highest revision this watcher has seen everything up to. */
  covered: number;
  private stream: ClientDuplexStream<Msg, Msg> | undefined;
  private state: 'idle' | 'creating' | 'live' = 'idle';
  private stopped = false;
  /** Set on a compaction: the watcher lost events and gives up (the checker reports it). */
  compacted = false;
  private attempts = 0;
  private progressWaiters: (() => void)[] = [];
  private createTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly name: string,
    private readonly index: number,
    private readonly recorder: HistoryRecorder,
    private readonly channels: EtcdChannels,
    private readonly prefix: string,
    fromRevision: number,
    private readonly endpoints: () => string[],
    private readonly timeoutMs: number,
  ) {
    this.covered = fromRevision - 1;
  }

  start(): void { this.open(); }

  private open(): void {
    if (this.stopped || this.compacted) return;
    const eps = this.endpoints();
    const endpoint = eps[(this.index + this.attempts++) % eps.length]!;
    const fromRevision = this.covered + 1;
    const rec = (type: 'invoke' | 'ok' | 'fail' | 'info', value: unknown, error?: string) =>
      this.recorder.record({ process: this.name, type, f: 'watch', key: this.prefix, value, ...(error !== undefined && { error }) });
    rec('invoke', { fromRevision, endpoint });
    this.state = 'creating';
    let stream: ClientDuplexStream<Msg, Msg>;
    try {
      stream = this.channels.watchStream(endpoint);
    } catch (err) {
      rec('info', null, (err as Error).message);
      this.state = 'idle';
      return;
    }
    this.stream = stream;
    const broken = (reason: string, type: 'fail' | 'info' = 'info') => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      clearTimeout(this.createTimer);
      stream.cancel();
      if (this.state === 'creating') rec(type, null, reason);
      else if (this.state === 'live') this.event('watch-broken', { reason });
      this.state = 'idle';
      this.wakeProgress();
      this.reopenLater();
    };
    this.createTimer = setTimeout(() => broken('timeout waiting for created'), this.timeoutMs);
    stream.on('data', (m: Msg) => {
      if (this.stream !== stream || this.stopped) return;
      const compactRevision = Number(m.compact_revision ?? 0);
      if (this.state === 'creating') {
        clearTimeout(this.createTimer);
        if (m.canceled === true || compactRevision > 0) {
          this.stream = undefined;
          this.state = 'idle';
          stream.cancel();
          if (compactRevision > 0) {
            this.compacted = true;
            rec('fail', { compactRevision }, 'compacted');
            this.wakeProgress();
          } else {
            rec('fail', null, `canceled: ${String(m.cancel_reason ?? '')}`);
            this.reopenLater();
          }
          return;
        }
        rec('ok', { watchId: String(m.watch_id) });
        this.state = 'live';
        if (m.created === true && watchedEvents(m).length === 0) return;
      }
      if (m.canceled === true || compactRevision > 0) {
        this.event('watch-broken', { reason: `canceled: ${String(m.cancel_reason ?? '')}`, ...(compactRevision > 0 && { compactRevision }) });
        this.state = 'idle';
        this.stream = undefined;
        stream.cancel();
        this.wakeProgress();
        if (compactRevision > 0) this.compacted = true;
        else this.reopenLater();
        return;
      }
      const events = watchedEvents(m);
      const revision = revisionOf(m);
      if (events.length === 0) {
        // A progress notification: everything up to `revision` has been delivered.
        this.event('watch-event', { revision, events: [], progress: true });
        this.covered = Math.max(this.covered, revision);
        this.wakeProgress();
        return;
      }
      this.event('watch-event', { revision, events });
      this.covered = Math.max(this.covered, events.at(-1)!.rev);
    });
    stream.on('error', (err: ServiceError) => { if (!this.stopped) broken(classifyGrpcError(err).error, classifyGrpcError(err).type); });
    stream.on('end', () => { if (!this.stopped) broken('stream ended'); });
    stream.write({ create_request: { key: Buffer.from(this.prefix), range_end: prefixEnd(this.prefix), start_revision: String(fromRevision) } });
  }

  private reopenLater(): void {
    if (!this.stopped) setTimeout(() => this.open(), REOPEN_BACKOFF_MS).unref();
  }

  private event(f: 'watch-event' | 'watch-broken', value: unknown): void {
    this.recorder.record({ process: this.name, type: 'invoke', f, value: null });
    this.recorder.record({ process: this.name, type: 'ok', f, value });
  }

  private wakeProgress(): void {
    const w = this.progressWaiters;
    this.progressWaiters = [];
    for (const f of w) f();
  }

  /**
   * Asks for progress until the watcher covered `revision` (true), re-creating a stream that
   * does not answer, or until `budgetMs` passed (false).
   */
  async catchUp(revision: number, budgetMs: number): Promise<boolean> {
    const deadline = Date.now() + budgetMs;
    while (this.covered < revision && Date.now() < deadline && !this.compacted) {
      const stream = this.stream;
      if (!stream || this.state !== 'live') { await sleep(100); continue; }
      const answered = new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), PROGRESS_WAIT_MS);
        this.progressWaiters.push(() => { clearTimeout(t); resolve(true); });
      });
      stream.write({ progress_request: {} });
      const gotAnswer = await answered;
      // A member behind the target answers at once: ask again after a pause, not in a tight loop.
      if (gotAnswer && this.covered < revision) await sleep(PROGRESS_RETRY_MS);
      if (!gotAnswer && this.stream === stream && this.covered < revision) {
        // A silent stream (e.g. a member that was paused or cut off): start over elsewhere.
        this.event('watch-broken', { reason: 'no progress response' });
        this.stream = undefined;
        this.state = 'idle';
        stream.cancel();
        this.open();
      }
    }
    return this.covered >= revision;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.createTimer);
    if (this.state === 'creating') this.recorder.record({ process: this.name, type: 'info', f: 'watch', key: this.prefix, value: null, error: 'stopped' });
    this.state = 'idle';
    this.stream?.cancel();
    this.stream = undefined;
    this.wakeProgress();
  }
}

/** The lease workload (`lease`). */
export function leaseWorkload(params: LeaseWorkloadParams = DEFAULT_LEASE_PARAMS): Workload {
  let channels: EtcdChannels | undefined;
  const ch = () => (channels ??= new EtcdChannels());
  const watchers: PrefixWatcher[] = [];
  /** Leases whose grant succeeded, in grant order. */
  const granted: string[] = [];
  let leaseBase = 0;
  let leaseSeq = 0;
  let finalProcess = 3_000_000;
  const maxTtlSeconds = Math.max(...params.ttlsSeconds);

  const shutdown = () => {
    for (const w of watchers) w.stop();
    channels?.close();
    channels = undefined;
  };

  const prefixOf = (opts: WorkloadOptions) => `${opts.keyPrefix}/l/`;

  /** A prefix Range with retries (reads are side-effect free): keys and revision. */
  const readPrefix = async (opts: WorkloadOptions, attemptsMax: number): Promise<Outcome<{ keys: string[]; revision: number }>> => {
    let r: Outcome<{ keys: string[]; revision: number }> = { type: 'info', error: 'not attempted' };
    for (let attempt = 0; attempt < attemptsMax; attempt++) {
      const prefix = prefixOf(opts);
      const res = await ch().range(pickEndpoint(opts), { key: prefix, rangeEnd: prefixEnd(prefix), keysOnly: true }, opts.requestTimeoutMs);
      r = res.type === 'ok' ? { type: 'ok', value: { keys: res.value.kvs.map((kv) => kv.key), revision: res.value.revision } } : res;
      if (r.type === 'ok') return r;
      await sleep(200 * Math.min(attempt + 1, 5));
    }
    return r;
  };

  /** Records one operation of `process` around `call`. */
  async function op<T>(recorder: HistoryRecorder, process: number | string, f: string, key: string | undefined, input: unknown, call: () => Promise<Outcome<T>>, output: (v: T) => unknown): Promise<Outcome<T>> {
    recorder.record({ process, type: 'invoke', f, ...(key !== undefined && { key }), value: input });
    const r = await call();
    recorder.record({ process, type: r.type, f, ...(key !== undefined && { key }), value: r.type === 'ok' ? output(r.value) : input, ...(r.type !== 'ok' && { error: r.error }) });
    return r;
  }

  return {
    name: 'lease',
    checker: 'lease',
    async run(recorder, opts) {
      etcdEndpointsOf(opts);
      opts.signal?.addEventListener('abort', shutdown, { once: true });
      leaseBase = (1 + Math.floor(opts.random() * 2 ** 20)) * 2 ** 24;
      const prefix = prefixOf(opts);
      // The watchers start right after the revision of an initial read, all from the same one.
      const initial = await op(recorder, 'setup', 'read', prefix, null, () => readPrefix(opts, 20), (v) => v);
      if (initial.type !== 'ok') {
        shutdown();
        throw new Error(`lease workload: the initial read failed: ${initial.error}`);
      }
      for (let i = 0; i < params.watchers; i++) {
        const w = new PrefixWatcher(`watch-${i}`, i, recorder, ch(), prefix, initial.value.revision + 1, () => etcdEndpointsOf(opts), opts.requestTimeoutMs);
        watchers.push(w);
        w.start();
      }
      let invoked = 0;
      const budget = () => Date.now() < opts.deadline && invoked < opts.opsMax && !opts.signal?.aborted && !recorder.full;
      const worker = async (w: number) => {
        let process = w;
        const after = async (r: Outcome<unknown>) => {
          if (r.type === 'info') process += opts.workers;
          await sleep(pauseAfter(r.type, opts));
        };
        while (budget()) {
          const lease = String(leaseBase + leaseSeq++);
          const ttl = params.ttlsSeconds[Math.floor(opts.random() * params.ttlsSeconds.length)]!;
          invoked++;
          const g = await op(recorder, process, 'grant', undefined, { lease, ttl }, () => ch().leaseGrant(pickEndpoint(opts), lease, ttl, opts.requestTimeoutMs), (v) => ({ lease: v.id, ttl: v.ttl }));
          await after(g);
          if (g.type !== 'ok') continue;
          granted.push(lease);
          const keys = opts.random() < params.twoKeyFraction ? 2 : 1;
          for (let k = 0; k < keys && budget(); k++) {
            const key = `${prefix}${lease}.${k}`;
            invoked++;
            const p = await op(recorder, process, 'put', key, { lease }, () => ch().put(pickEndpoint(opts), key, `${process}`, opts.requestTimeoutMs, lease), (v) => ({ lease, revision: v.revision }));
            await after(p);
          }
          if (opts.random() < params.keepFraction) {
            const grantedTtl = g.value.ttl;
            const keepUntil = Date.now() + grantedTtl * 1000 * (1 + opts.random());
            while (Date.now() < keepUntil && budget()) {
              await sleep(grantedTtl * 1000 * (0.2 + 0.15 * opts.random()));
              if (!budget()) break;
              invoked++;
              const timeoutMs = Math.min(opts.requestTimeoutMs, grantedTtl * 500);
              const ka = await op(recorder, process, 'keepalive', undefined, { lease }, () => ch().leaseKeepAliveOnce(pickEndpoint(opts), lease, timeoutMs), (v) => ({ lease, ttl: v.ttl }));
              if (ka.type === 'info') process += opts.workers;
              if (ka.type === 'ok' && ka.value.ttl <= 0) break; // gone (e.g. keep-alives failed for a whole TTL)
            }
          }
          await sleep(opts.random() * params.leasePauseMs);
        }
      };
      await Promise.all(Array.from({ length: opts.workers }, (_, w) => worker(w)));
    },
    async final(recorder, opts) {
      try {
        const prefix = prefixOf(opts);
        // 1. A leader serves reads (a new leader renews every lease, so the TTLs count from here).
        await readPrefix(opts, 50);
        await sleep(maxTtlSeconds * 1000 + 2000);
        // 2. Read the prefix until no lease key is left, or the wait is over.
        const deadline = Date.now() + params.finalWaitMaxMs;
        let finalRevision: number | undefined;
        for (;;) {
          const r = await op(recorder, finalProcess++, 'final-read', prefix, null, () => readPrefix(opts, 1), (v) => v);
          if (r.type === 'ok') finalRevision = r.value.revision;
          if ((r.type === 'ok' && r.value.keys.length === 0) || Date.now() >= deadline) break;
          await sleep(1000);
        }
        // 3. Every watcher catches up to the final read.
        if (finalRevision !== undefined) {
          const rev = finalRevision;
          await Promise.all(watchers.map((w) => w.catchUp(rev, Math.max(5000, deadline - Date.now()))));
        }
        // 4. Lapsed leases answer keep-alives with TTL 0.
        const step = Math.max(1, Math.floor(granted.length / params.finalProbesMax));
        for (let i = 0; i < granted.length; i += step) {
          const lease = granted[i]!;
          await op(recorder, finalProcess++, 'keepalive', undefined, { lease }, () => ch().leaseKeepAliveOnce(pickEndpoint(opts), lease, opts.requestTimeoutMs), (v) => ({ lease, ttl: v.ttl }));
        }
      } finally {
        shutdown();
      }
    },
  };
}
