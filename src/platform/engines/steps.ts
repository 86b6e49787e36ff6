/**
 * The step plan of every operation, per engine: the ordered step names an executor runs and
 * records (`OperationRecord.steps`). Each name maps to one call:
 *
 *   allocate-ports  PortAllocator.allocate for each of `portRequests(db)` (local driver; the
 *                   kubernetes driver has nothing to allocate). LocalDriver.apply repeats the
 *                   same reservations, so the step is an early, visible reservation, not a must.
 *   apply           Driver.apply(db, secret)          start / converge / scale / restart
 *   wait-ready      Driver.waitReady(db, timeout)
 *   backup          Driver.backup(db, secret, backupId)
 *   restore         Driver.restore(db, secret, backup)
 *   halt            Driver.halt(db)
 *   remove          Driver.remove(db, policy)         also frees the instance's ports
 *
 * Pure. An operation type that does not apply to an engine throws `InvalidArgumentError` with
 * the reason, before anything is queued.
 */
import type { EngineName, OperationType } from '../types.js';
import { InvalidArgumentError } from '../../util/index.js';

/** Every step name an executor must know. */
export type StepName = 'allocate-ports' | 'apply' | 'wait-ready' | 'backup' | 'restore' | 'halt' | 'remove';

export const OPERATION_TYPES: readonly OperationType[] = ['create', 'scale', 'resize', 'update', 'backup', 'restore', 'halt', 'resume', 'delete', 'rotate-key', 'repair'];

const COMMON: Record<Exclude<OperationType, 'scale' | 'rotate-key'>, StepName[]> = {
  create: ['allocate-ports', 'apply', 'wait-ready'],
  resize: ['apply', 'wait-ready'],
  update: ['apply', 'wait-ready'],
  backup: ['backup'],
  restore: ['allocate-ports', 'restore', 'wait-ready'],
  halt: ['halt'],
  resume: ['allocate-ports', 'apply', 'wait-ready'],
  delete: ['remove'],
  repair: ['allocate-ports', 'apply', 'wait-ready'],
};

const REFUSED: Record<EngineName, Partial<Record<OperationType, string>>> = {
  fluxion: { scale: 'Fluxion scales vertically only: change ram (a resize) instead of scaling' },
  conuredb: { 'rotate-key': 'ConureDB has no platform-managed API key to rotate' },
};

/** Whether `opType` applies to `engine` (no throw). */
export function supportsOperation(engine: EngineName, opType: OperationType): boolean {
  return OPERATION_TYPES.includes(opType) && REFUSED[engine]?.[opType] === undefined && (engine === 'fluxion' || engine === 'conuredb');
}

/**
 * The ordered step names of `opType` on `engine` (a fresh array). Throws `InvalidArgumentError`
 * for an unknown engine or operation type, or one that does not apply (e.g. `scale` on Fluxion).
 */
export function stepsFor(engine: EngineName, opType: OperationType): StepName[] {
  if (engine !== 'fluxion' && engine !== 'conuredb') throw new InvalidArgumentError(`unknown engine ${JSON.stringify(String(engine))}; use fluxion or conuredb`);
  if (!OPERATION_TYPES.includes(opType)) throw new InvalidArgumentError(`unknown operation type ${JSON.stringify(String(opType))}; use one of ${OPERATION_TYPES.join(', ')}`);
  const refused = REFUSED[engine][opType];
  if (refused !== undefined) throw new InvalidArgumentError(refused);
  if (opType === 'scale') return ['allocate-ports', 'apply', 'wait-ready'];
  // rotate-key on Fluxion: restart with the new master key (apply sees the new secret).
  if (opType === 'rotate-key') return ['apply', 'wait-ready'];
  return [...COMMON[opType]];
}
