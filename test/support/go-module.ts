/**
 * Test support: Go modules kept in the repository (a harness, a real Go client), found from the
 * compiled test file or the working directory and built with the local toolchain.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** True when a `go` toolchain is on PATH. */
export function goAvailable(): boolean {
  return spawnSync('go', ['version'], { encoding: 'utf8' }).status === 0;
}

/** The module directory `rel` (e.g. `test/fault/porcupine`), found upward from this file, else under the working directory. */
export function goModuleDir(rel: string): string | undefined {
  for (let d = dirname(fileURLToPath(import.meta.url)); ; d = dirname(d)) {
    const candidate = join(d, rel);
    if (existsSync(join(candidate, 'go.mod'))) return candidate;
    if (dirname(d) === d) break;
  }
  const fromCwd = join(process.cwd(), rel);
  return existsSync(join(fromCwd, 'go.mod')) ? fromCwd : undefined;
}

/**
 * Builds the module `rel` into `outDir` (a fresh temp folder by default) as `name` and returns
 * the binary's path. Throws an Error with go's output when the module is missing or does not build.
 */
export function buildGoModule(rel: string, name: string, outDir = mkdtempSync(join(tmpdir(), `conure-${name}-`))): string {
  const dir = goModuleDir(rel);
  if (!dir) throw new Error(`${rel}/go.mod not found`);
  const bin = join(outDir, name);
  const r = spawnSync('go', ['build', '-o', bin, '.'], { cwd: dir, encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0) throw new Error(`go build of ${rel} failed:\n${r.stderr ?? ''}${r.error?.message ?? ''}`);
  return bin;
}
