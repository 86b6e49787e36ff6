import { pack, unpack } from 'msgpackr';
import type { StateStore } from '../storage/index.js';
import { exportStore, restoreStore } from './state-export.js';
import type { SnapshottableStateMachine } from '../seams/index.js';

/**
 * A minimal deterministic state machine for node-layer tests: commands are msgpack
 * `{k, v}` pairs written to bucket `t`; the result of a command is its index.
 */
export class TestStateMachine implements SnapshottableStateMachine {
  constructor(readonly store: StateStore) {}
  static command(key: string, value: string): Uint8Array { return pack({ k: key, v: value }); }
  apply(index: number, command: Uint8Array): unknown {
    const { k, v } = unpack(command) as { k: string; v: string };
    return this.store.apply(index, [{ op: 'put', bucket: 't', key: Buffer.from(k), value: Buffer.from(v) }]) ? index : undefined;
  }
  applyNoop(index: number): void { this.store.apply(index, []); }
  appliedIndex(): number { return this.store.appliedIndex(); }
  sync(): Promise<void> { return this.store.sync(); }
  batch<T>(fn: () => T): T { return this.store.batch(fn); }
  exportState(): { index: number; data: Uint8Array } { return exportStore(this.store); }
  restoreState(index: number, data: Uint8Array): Promise<void> { return restoreStore(this.store, index, data); }
  read(key: string): string | undefined {
    const v = this.store.get('t', Buffer.from(key));
    return v === undefined ? undefined : Buffer.from(v).toString();
  }
}
