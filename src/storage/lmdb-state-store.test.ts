import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdbStateStore } from './lmdb-state-store.js';
import { stateStoreContract } from './state-store.contract.js';

stateStoreContract({
  name: 'lmdb',
  create: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conure-state-'));
    return {
      store: new LmdbStateStore({ dir }),
      reopen: async () => new LmdbStateStore({ dir }),
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
});

stateStoreContract({
  name: 'lmdb, fsync on demand',
  create: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conure-state-'));
    return {
      store: new LmdbStateStore({ dir, fsyncOnCommit: false }),
      reopen: async () => new LmdbStateStore({ dir, fsyncOnCommit: false }),
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
});
