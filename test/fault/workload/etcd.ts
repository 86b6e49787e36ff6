/**
 * Workloads over the etcd v3 gRPC API (`etcd-register`, `etcd-set`), recording the same history
 * format as the seed-API workloads (docs/fault-testing.md "The history format") so the same
 * checkers judge them:
 *
 * - etcd-register: reads (default, linearizable Range), writes (Put) and compare-and-set (a
 *   Txn `value == expected → put new`) on a few keys at a time, rotating keys like `register`.
 *   `cas` events carry `[expected, new]`; a Txn whose compare failed is recorded `fail`.
 *   Checked by checker/register.ts (checkRegister and lostRegisterWrites, which both model cas).
 * - etcd-set: each add is a Put of a new key under `<prefix>/es/`; now and then one worker reads
 *   the whole prefix with one Range (a non-final set `read`); the final read is one prefix Range.
 *   Checked by checker/set.ts (checkSet).
 *
 * Outcomes follow etcd-client.ts (ok / fail = certainly not applied / info = indeterminate);
 * nothing is retried except reads, whose retries stay inside one recorded operation.
 * Endpoints come from `WorkloadOptions.etcdEndpoints` ("127.0.0.1:PORT" gRPC client ports).
 */
import { EtcdChannels, prefixEnd } from './etcd-client.js';
import type { Outcome } from './http-kv.js';
import { drive, sleep } from './drive.js';
import type { Workload, WorkloadOptions } from './workload.js';

/** Attempts of a final read before it is recorded `info`. */
const FINAL_READ_ATTEMPTS = 5;

/** The gRPC endpoints of the run; throws when the runner gave none. */
export function etcdEndpointsOf(opts: WorkloadOptions): string[] {
  const eps = opts.etcdEndpoints?.() ?? [];
  if (eps.length === 0) throw new Error('this workload needs WorkloadOptions.etcdEndpoints (the members\' gRPC client ports)');
  return eps;
}

/** A random gRPC endpoint for one operation. */
export function pickEndpoint(opts: WorkloadOptions): string {
  const e = etcdEndpointsOf(opts);
  return e[Math.floor(opts.random() * e.length)]!;
}

/** Retries a read (no side effects) a few times; the caller records one operation around it. */
async function readWithRetries<T>(read: () => Promise<Outcome<T>>): Promise<Outcome<T>> {
  let r: Outcome<T> = { type: 'info', error: 'not attempted' };
  for (let attempt = 0; attempt < FINAL_READ_ATTEMPTS; attempt++) {
    r = await read();
    if (r.type === 'ok') return r;
    await sleep(200 * (attempt + 1));
  }
  return r;
}

/**
 * etcd-register: read / write / cas of unique values (`<process>-<seq>`) on `keys` keys at a
 * time; keys rotate every `opsPerKey` operations per key. A cas uses as `expected` the value this
 * client last saw for the key (read, written or swapped in), so both outcomes occur; with
 * nothing seen yet it writes instead.
 */
export function etcdRegisterWorkload(params: { keys: number; opsPerKey: number; readFraction: number; casFraction: number }): Workload {
  let ops = 0;
  let seq = 0;
  const touched = new Set<string>();
  const lastSeen = new Map<string, string | null>();
  let channels: EtcdChannels | undefined;
  const ch = () => (channels ??= new EtcdChannels());
  return {
    name: 'etcd-register',
    checker: 'register',
    async run(recorder, opts) {
      etcdEndpointsOf(opts);
      await drive(recorder, opts, async (process) => {
        const gen = Math.floor(ops++ / (params.opsPerKey * params.keys));
        const key = `${opts.keyPrefix}/er${gen}.${Math.floor(opts.random() * params.keys)}`;
        touched.add(key);
        const ep = pickEndpoint(opts);
        const roll = opts.random();
        if (roll < params.readFraction) {
          recorder.record({ process, type: 'invoke', f: 'read', key, value: null });
          const r = await ch().range(ep, { key }, opts.requestTimeoutMs);
          if (r.type !== 'ok') {
            recorder.record({ process, type: r.type, f: 'read', key, value: null, error: r.error });
            return r.type;
          }
          const value: string | null = r.value.kvs[0]?.value ?? null;
          lastSeen.set(key, value);
          recorder.record({ process, type: 'ok', f: 'read', key, value });
          return 'ok';
        }
        const value = `${process}-${seq++}`;
        const expected = lastSeen.get(key);
        if (roll < params.readFraction + params.casFraction && typeof expected === 'string') {
          recorder.record({ process, type: 'invoke', f: 'cas', key, value: [expected, value] });
          const r = await ch().cas(ep, key, expected, value, opts.requestTimeoutMs);
          if (r.type === 'ok') lastSeen.set(key, value);
          recorder.record({ process, type: r.type, f: 'cas', key, value: [expected, value], ...(r.type !== 'ok' && { error: r.error }) });
          return r.type;
        }
        recorder.record({ process, type: 'invoke', f: 'write', key, value });
        const r = await ch().put(ep, key, value, opts.requestTimeoutMs);
        if (r.type === 'ok') lastSeen.set(key, value);
        recorder.record({ process, type: r.type, f: 'write', key, value, ...(r.type !== 'ok' && { error: r.error }) });
        return r.type;
      });
    },
    async final(recorder, opts) {
      try {
        let process = 1_000_000;
        for (const key of touched) {
          const p = process++;
          recorder.record({ process: p, type: 'invoke', f: 'read', key, value: null });
          const r = await readWithRetries(() => ch().range(pickEndpoint(opts), { key }, opts.requestTimeoutMs));
          recorder.record({ process: p, type: r.type, f: 'read', key, value: r.type === 'ok' ? (r.value.kvs[0]?.value ?? null) : null, ...(r.type !== 'ok' && { error: r.error }) });
        }
      } finally {
        channels?.close();
        channels = undefined;
      }
    },
  };
}

/**
 * etcd-set: each add puts a new key `<prefix>/es/<element>`. At most one prefix read is in flight
 * and reads start at least `readIntervalMs` apart (a non-final set `read`, which checkSet tests
 * for staleness). The final read is one prefix Range. Reads are keys-only; the element is the
 * key's last segment.
 */
export function etcdSetWorkload(params: { readIntervalMs: number }): Workload {
  let next = 0;
  let channels: EtcdChannels | undefined;
  const ch = () => (channels ??= new EtcdChannels());
  const readSet = async (opts: WorkloadOptions): Promise<Outcome<number[]>> => {
    const prefix = `${opts.keyPrefix}/es/`;
    const r = await ch().range(pickEndpoint(opts), { key: prefix, rangeEnd: prefixEnd(prefix), keysOnly: true }, opts.requestTimeoutMs);
    if (r.type !== 'ok') return r;
    return { type: 'ok', value: r.value.kvs.map((kv) => Number(kv.key.slice(prefix.length))) };
  };
  return {
    name: 'etcd-set',
    checker: 'set',
    async run(recorder, opts) {
      etcdEndpointsOf(opts);
      let reading = false;
      let lastReadAt = Date.now();
      await drive(recorder, opts, async (process) => {
        if (!reading && Date.now() - lastReadAt >= params.readIntervalMs) {
          reading = true;
          lastReadAt = Date.now();
          try {
            recorder.record({ process, type: 'invoke', f: 'read', key: 'set', value: null });
            const r = await readSet(opts);
            recorder.record({ process, type: r.type, f: 'read', key: 'set', value: r.type === 'ok' ? r.value : null, ...(r.type !== 'ok' && { error: r.error }) });
            return r.type;
          } finally { reading = false; }
        }
        const element = next++;
        recorder.record({ process, type: 'invoke', f: 'add', key: 'set', value: element });
        const r = await ch().put(pickEndpoint(opts), `${opts.keyPrefix}/es/${element}`, String(element), opts.requestTimeoutMs);
        recorder.record({ process, type: r.type, f: 'add', key: 'set', value: element, ...(r.type !== 'ok' && { error: r.error }) });
        return r.type;
      });
    },
    async final(recorder, opts) {
      try {
        const process = 2_000_000;
        recorder.record({ process, type: 'invoke', f: 'read', key: 'set', value: null });
        const r = await readWithRetries(() => readSet(opts));
        recorder.record({ process, type: r.type === 'ok' ? 'ok' : 'info', f: 'read', key: 'set', value: r.type === 'ok' ? r.value : null, ...(r.type !== 'ok' && { error: r.error }) });
      } finally {
        channels?.close();
        channels = undefined;
      }
    },
  };
}
