/**
 * Renders a chart with `helm template`, so the kubernetes driver applies exactly the objects the
 * charts render (docs/decisions/002-kubernetes-driver-renders-the-charts.md). No release is
 * installed: there is no Helm release Secret, `lookup` sees nothing (the driver supplies every
 * Secret the charts would look up), and hooks are returned for the driver to run.
 *
 * Values go through a 0600 file under `workDir` (removed after), never the command line. Helm's
 * own cache and config folders are kept under `workDir` too, since the platform's root file
 * system is read-only in its pod.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ConureError } from '../../../util/index.js';
import type { KubeObject } from './manifests.js';

export interface HelmRendererOptions {
  /** The helm binary (PLATFORM_HELM, default `helm` on PATH). */
  helm: string;
  /** Folder holding the charts (`conuredb/`, `fluxiondb/`). */
  chartsDir: string;
  /** Scratch folder for values files and helm's cache. */
  workDir: string;
  /** Bound on one render, ms. Default 60 s. */
  timeoutMs?: number;
}

export class HelmRenderer {
  private readonly timeoutMs: number;

  constructor(private readonly o: HelmRendererOptions) {
    this.timeoutMs = o.timeoutMs ?? 60_000;
    mkdirSync(o.workDir, { recursive: true, mode: 0o700 });
  }

  /** The objects `chart` renders for `release` in `namespace` with `values` (hooks included, tests too). */
  async render(chart: 'conuredb' | 'fluxiondb', release: string, namespace: string, values: Record<string, unknown>): Promise<KubeObject[]> {
    const file = join(this.o.workDir, `values-${randomBytes(6).toString('hex')}.json`);
    writeFileSync(file, JSON.stringify(values), { mode: 0o600 });
    try {
      const out = await this.run(['template', release, join(this.o.chartsDir, chart), '--namespace', namespace, '--values', file]);
      const objects: KubeObject[] = [];
      for (const doc of parseAllDocuments(out)) {
        if (doc.errors.length > 0) throw new ConureError('internal', `helm template ${chart}: unparseable output: ${doc.errors[0]!.message}`);
        const obj = doc.toJS() as KubeObject | null;
        if (obj === null || typeof obj !== 'object') continue;
        if (typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string' || typeof obj.metadata?.name !== 'string') {
          throw new ConureError('internal', `helm template ${chart}: a document without apiVersion, kind or metadata.name`);
        }
        objects.push({ ...obj, metadata: { ...obj.metadata, namespace: obj.kind === 'Namespace' ? undefined : namespace } } as KubeObject);
      }
      return objects;
    } finally {
      rmSync(file, { force: true });
    }
  }

  private run(args: string[]): Promise<string> {
    const home = join(this.o.workDir, 'helm');
    const env = { ...process.env, HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') };
    return new Promise((resolve, reject) => {
      execFile(this.o.helm, args, { env, timeout: this.timeoutMs, maxBuffer: 32 * 2 ** 20, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (!err) { resolve(stdout); return; }
        const e = err as NodeJS.ErrnoException & { killed?: boolean };
        if (e.code === 'ENOENT') { reject(new ConureError('unavailable', `helm not found at ${JSON.stringify(this.o.helm)}: set PLATFORM_HELM to the helm binary`)); return; }
        // A chart's `fail` (a value it refuses) is a bad request, not an outage.
        const msg = stderr.trim().split('\n').filter(Boolean).slice(-3).join('; ') || e.message;
        reject(new ConureError(e.killed ? 'timeout' : 'invalid_argument', `helm template refused the values: ${msg}`));
      });
    });
  }
}
