/**
 * Locates, builds and runs the porcupine harness (test/fault/porcupine, a Go module) so the
 * TypeScript checker's verdicts can be cross-checked on any history file.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Porcupine's verdict, or why there is none. */
export type PorcupineResult = 'Ok' | 'Illegal' | 'Unknown' | { error: string };

/** True when a `go` toolchain is on PATH. */
export function goAvailable(): boolean {
  return spawnSync('go', ['version'], { encoding: 'utf8' }).status === 0;
}

/** The Go module directory, found upward from this (compiled) file, else under the working directory. */
export function harnessDir(): string | undefined {
  for (let d = dirname(fileURLToPath(import.meta.url)); ; d = dirname(d)) {
    const candidate = join(d, 'test', 'fault', 'porcupine');
    if (existsSync(join(candidate, 'go.mod'))) return candidate;
    if (dirname(d) === d) break;
  }
  const fromCwd = join(process.cwd(), 'test', 'fault', 'porcupine');
  return existsSync(join(fromCwd, 'go.mod')) ? fromCwd : undefined;
}

/**
 * Builds the harness into `outDir` (a fresh temp folder by default) and returns the binary's
 * path. Throws an Error with go's output when the module is missing or does not build.
 */
export function buildPorcupine(outDir = mkdtempSync(join(tmpdir(), 'conure-porcupine-'))): string {
  const dir = harnessDir();
  if (!dir) throw new Error('test/fault/porcupine/go.mod not found');
  const bin = join(outDir, 'porcupine-check');
  const r = spawnSync('go', ['build', '-o', bin, '.'], { cwd: dir, encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0) throw new Error(`go build of the porcupine harness failed:\n${r.stderr ?? ''}${r.error?.message ?? ''}`);
  return bin;
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
