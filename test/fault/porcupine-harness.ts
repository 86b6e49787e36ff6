/**
 * Locates, builds and runs the porcupine harness (test/fault/porcupine, a Go module) so the
 * TypeScript checker's verdicts can be cross-checked on any history file.
 */
import { spawnSync } from 'node:child_process';
import { buildGoModule } from '../support/go-module.js';

export { goAvailable } from '../support/go-module.js';

/** Porcupine's verdict, or why there is none. */
export type PorcupineResult = 'Ok' | 'Illegal' | 'Unknown' | { error: string };

/**
 * Builds the harness into `outDir` (a fresh temp folder by default) and returns the binary's
 * path. Throws an Error with go's output when the module is missing or does not build.
 */
export function buildPorcupine(outDir?: string): string {
  return buildGoModule('test/fault/porcupine', 'porcupine-check', outDir);
}

/** Runs the built harness on a JSONL history file. */
export function runPorcupine(bin: string, historyFile: string, timeoutMs = 60_000): PorcupineResult {
  const r = spawnSync(bin, ['-timeout', `${Math.max(1, Math.floor(timeoutMs / 1000))}s`, historyFile], { encoding: 'utf8', timeout: timeoutMs + 10_000 });
  if (r.status !== 0 && r.status !== 1 && r.status !== 3) return { error: `exit ${r.status}: ${(r.stderr ?? '').trim() || r.error?.message}` };
  try {
    return (JSON.parse(r.stdout) as { result: 'Ok' | 'Illegal' | 'Unknown' }).result;
  } catch {
    return { error: `unreadable output: ${r.stdout.slice(0, 200)}` };
  }
}
