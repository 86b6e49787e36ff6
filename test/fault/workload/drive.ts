/**
 * The client loop every workload shares: `workers` concurrent workers, each running one
 * operation at a time until the deadline, the operation budget, an abort or a full history.
 *
 * Processes: worker `w` starts as process `w`. When an operation ends `info` the request may
 * still be in flight, so the worker continues as a new process (`w + workers`, then
 * `w + 2·workers`, …): a process never has two operations open. The timeline groups processes
 * back into worker lanes with `process % workers`.
 */
import type { HistoryRecorder } from '../history-recorder.js';
import type { WorkloadOptions } from './workload.js';

/** Mean pause of a worker after a failed or indeterminate operation. */
const ERROR_BACKOFF_MS = 100;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * How long a worker pauses after an operation: think time after success, a back-off after an
 * error so a down or leaderless member is not hammered with requests.
 */
export function pauseAfter(type: 'ok' | 'fail' | 'info', opts: Pick<WorkloadOptions, 'random' | 'thinkMs'>): number {
  return type === 'ok' ? opts.random() * opts.thinkMs : ERROR_BACKOFF_MS * (0.5 + opts.random());
}

/** Runs `opts.workers` loops of `step` (see the module comment). */
export async function drive(recorder: HistoryRecorder, opts: WorkloadOptions, step: (process: number) => Promise<'ok' | 'fail' | 'info'>): Promise<void> {
  let invoked = 0;
  const worker = async (w: number) => {
    let process = w;
    while (Date.now() < opts.deadline && invoked < opts.opsMax && !opts.signal?.aborted && !recorder.full) {
      invoked++;
      const type = await step(process);
      if (type === 'info') process += opts.workers;
      const pauseMs = pauseAfter(type, opts);
      if (pauseMs > 0) await sleep(pauseMs);
    }
  };
  await Promise.all(Array.from({ length: opts.workers }, (_, w) => worker(w)));
}
