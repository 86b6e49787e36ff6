/**
 * Workloads: concurrent clients over the seed REST API that record every operation's
 * invocation and completion in a HistoryRecorder (the client loop and process numbering are in
 * drive.ts).
 *
 * Both workloads end with final reads (`final`), made after the nemesis healed the cluster.
 * The etcd gRPC workloads (`etcd-register`, `etcd-set`, `lease`) live in etcd.ts and lease.ts.
 */
import type { HistoryRecorder } from '../history-recorder.js';
import { kvGet, kvPut, type Outcome } from './http-kv.js';
import { drive, sleep } from './drive.js';
import { etcdRegisterWorkload, etcdSetWorkload } from './etcd.js';
import { leaseWorkload } from './lease.js';

/** Options shared by the workloads. */
export interface WorkloadOptions {
  /** Concurrent client workers. */
  workers: number;
  /** Stop invoking at this Date.now(). */
  deadline: number;
  /** Operations invoked at most (all workers together). */
  opsMax: number;
  /** Per-request timeout: a request slower than this is recorded `info`. */
  requestTimeoutMs: number;
  /** Pause between one worker's operations, ms, uniform in [0, thinkMs]. */
  thinkMs: number;
  /** HTTP endpoints; a worker picks one at random per operation. */
  endpoints: () => string[];
  /** etcd gRPC client endpoints ("127.0.0.1:PORT"), for the etcd-* and lease workloads. */
  etcdEndpoints?: () => string[];
  random: () => number;
  /** Prefix of every key this run touches (keeps runs on one data directory apart). */
  keyPrefix: string;
  signal?: AbortSignal;
}

/** A workload: `run` drives the clients until the deadline; `final` records the final reads. */
export interface Workload {
  readonly name: string;
  /** The model the history is checked against. */
  readonly checker: 'register' | 'set' | 'lease';
  run(recorder: HistoryRecorder, opts: WorkloadOptions): Promise<void>;
  final(recorder: HistoryRecorder, opts: WorkloadOptions): Promise<void>;
}

const endpoint = (opts: WorkloadOptions) => { const e = opts.endpoints(); return e[Math.floor(opts.random() * e.length)]!; };

/**
 * Register workload: reads and writes of unique values on a few keys at a time. Keys rotate
 * every `opsPerKey` operations (Jepsen's "independent" keys), which bounds how many
 * indeterminate writes one key accumulates and so keeps every key's search small.
 * CAS joins when the etcd Txn API lands (the checker and porcupine harness already model it).
 */
export function registerWorkload(params: { keys: number; opsPerKey: number; readFraction: number }): Workload {
  let ops = 0;
  let seq = 0;
  const touched = new Set<string>();
  return {
    name: 'register',
    checker: 'register',
    async run(recorder, opts) {
      await drive(recorder, opts, async (process) => {
        const gen = Math.floor(ops++ / (params.opsPerKey * params.keys));
        const key = `${opts.keyPrefix}/r${gen}.${Math.floor(opts.random() * params.keys)}`;
        touched.add(key);
        const base = endpoint(opts);
        if (opts.random() < params.readFraction) {
          recorder.record({ process, type: 'invoke', f: 'read', key, value: null });
          const r = await kvGet(base, key, { timeoutMs: opts.requestTimeoutMs });
          if (r.type === 'ok') recorder.record({ process, type: 'ok', f: 'read', key, value: r.value });
          else recorder.record({ process, type: r.type, f: 'read', key, value: null, error: r.error });
          return r.type;
        }
        const value = `${process}-${seq++}`;
        recorder.record({ process, type: 'invoke', f: 'write', key, value });
        const r = await kvPut(base, key, value, { timeoutMs: opts.requestTimeoutMs });
        recorder.record({ process, type: r.type, f: 'write', key, value, ...(r.type !== 'ok' && { error: r.error }) });
        return r.type;
      });
    },
    async final(recorder, opts) {
      // One fresh process per key reads it once; retried a few times if the node is still recovering.
      let process = 1_000_000;
      for (const key of touched) {
        for (let attempt = 0; attempt < 5; attempt++) {
          const p = process++;
          recorder.record({ process: p, type: 'invoke', f: 'read', key, value: null });
          const r = await kvGet(endpoint(opts), key, { timeoutMs: opts.requestTimeoutMs });
          recorder.record({ process: p, type: r.type, f: 'read', key, value: r.type === 'ok' ? r.value : null, ...(r.type !== 'ok' && { error: r.error }) });
          if (r.type === 'ok') break;
          await sleep(200);
        }
      }
    },
  };
}

/**
 * Set workload: each add stores one new element under its own key (`<prefix>/s/<n>`); the final
 * read fetches every attempted element plus `canaries` never-attempted ones (which must be
 * absent) and records the set of elements present. Checked by checker/set.ts.
 */
export function setWorkload(params: { canaries: number }): Workload {
  let next = 0;
  return {
    name: 'set',
    checker: 'set',
    async run(recorder, opts) {
      await drive(recorder, opts, async (process) => {
        const element = next++;
        const key = `${opts.keyPrefix}/s/${element}`;
        recorder.record({ process, type: 'invoke', f: 'add', key: 'set', value: element });
        const r = await kvPut(endpoint(opts), key, String(element), { timeoutMs: opts.requestTimeoutMs });
        recorder.record({ process, type: r.type, f: 'add', key: 'set', value: element, ...(r.type !== 'ok' && { error: r.error }) });
        return r.type;
      });
    },
    async final(recorder, opts) {
      const process = 2_000_000;
      recorder.record({ process, type: 'invoke', f: 'read', key: 'set', value: null });
      const present: number[] = [];
      const total = next + params.canaries;
      for (let element = 0; element < total; element++) {
        let r: Outcome<string | null> | undefined;
        for (let attempt = 0; attempt < 5; attempt++) {
          r = await kvGet(endpoint(opts), `${opts.keyPrefix}/s/${element}`, { timeoutMs: opts.requestTimeoutMs });
          if (r.type === 'ok') break;
          await sleep(200);
        }
        if (r?.type !== 'ok') {
          recorder.record({ process, type: 'info', f: 'read', key: 'set', value: null, error: `element ${element}: ${r?.error}` });
          return;
        }
        if (r.value !== null) present.push(Number(r.value));
      }
      recorder.record({ process, type: 'ok', f: 'read', key: 'set', value: present });
    },
  };
}

/** Workloads by name. */
export function workloadByName(name: string): Workload {
  if (name === 'register') return registerWorkload({ keys: 3, opsPerKey: 150, readFraction: 0.5 });
  if (name === 'set') return setWorkload({ canaries: 20 });
  if (name === 'etcd-register') return etcdRegisterWorkload({ keys: 3, opsPerKey: 150, readFraction: 0.4, casFraction: 0.3 });
  if (name === 'etcd-set') return etcdSetWorkload({ readIntervalMs: 500 });
  if (name === 'lease') return leaseWorkload();
  throw new RangeError(`unknown workload ${JSON.stringify(name)}; known: register, set, etcd-register, etcd-set, lease`);
}
