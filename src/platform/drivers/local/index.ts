/**
 * The local driver: instances as detached child processes on 127.0.0.1 (see local-driver.ts),
 * and an in-memory PortAllocator for tests and single-process use.
 */
export { LocalDriver, type LocalDriverOptions, type LocalInstanceFile, type LocalMemberRecord } from './local-driver.js';
export { MemoryPortAllocator, bindable, canAdoptPorts, type MemoryPortAllocatorOptions, type PortAdoption } from './memory-ports.js';
