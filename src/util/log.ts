import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logger (pino) writing to stderr, so stdout stays free for command output.
 * Level from `CONURE_LOG_LEVEL` (default `info`); `silent` in tests unless overridden.
 */
export function createLogger(name: string, bindings: Record<string, unknown> = {}): Logger {
  const level = process.env.CONURE_LOG_LEVEL ?? (process.env.NODE_TEST_CONTEXT ? 'silent' : 'info');
  return pino({ name, level, base: { pid: process.pid, ...bindings } }, pino.destination(2));
}
