import { MemoryStateStore } from './memory-state-store.js';
import { stateStoreContract } from './state-store.contract.js';

stateStoreContract({ name: 'memory', create: async () => ({ store: new MemoryStateStore(), cleanup: async () => {} }) });
