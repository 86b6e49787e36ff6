import type { Logger } from '../util/index.js';

/**
 * SIGTERM and SIGINT close `running` once (logged as `shutdown_requested`), then exit 0; exit 1
 * when closing fails or takes longer than `timeoutMs`. `stoppedEvent`, when given, is logged
 * after a clean close. Shared by the long-running commands (conured, conure-platform).
 */
export function exitOnSignals(log: Logger, running: { close(): Promise<void> }, timeoutMs: number, stoppedEvent?: string): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutdown_requested');
    setTimeout(() => { log.error('shutdown timed out; exiting'); process.exit(1); }, timeoutMs).unref();
    running.close().then(
      () => { if (stoppedEvent) log.info({}, stoppedEvent); process.exit(0); },
      (err) => { log.error({ err }, 'shutdown_failed'); process.exit(1); },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
