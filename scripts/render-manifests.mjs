#!/usr/bin/env node
// Renders the plain manifests under deploy/ from the charts, for clusters without Helm:
//
//   node scripts/render-manifests.mjs            write every file below
//   node scripts/render-manifests.mjs --check    exit 1 when a committed file differs (CI)
//   ... --deploy-dir DIR                        write or check DIR instead of deploy/
//
//   deploy/conuredb/conuredb.yaml                     charts/conuredb, defaults, namespace default,
//                                                     cluster secret from Secret `conure-peer`
//   deploy/fluxiondb/fluxiondb.yaml                   charts/fluxiondb, key from Secret `fluxiondb`
//   deploy/conure-platform/conure-platform.yaml       charts/conure-platform + embedded ConureDB,
//                                                     namespace conure-system, token from Secret
//                                                     `conure-platform-admin`, the store's cluster
//                                                     secret from Secret `conure-platform-conure-peer`
//   deploy/conure-platform/admission-policy.yaml      its ValidatingAdmissionPolicy (1.30+)
//
// Helm hooks are left out (no `helm test` pods, no scale-down Job): without Helm nothing runs
// them. No secret is ever rendered into a file: the manifests reference Secrets you create
// (existingSecret everywhere: without Helm there is no `lookup` to keep a generated value).
// The charts are copied under .build/ first, so `helm dependency build` (conure-platform's
// file://../conuredb) never touches the worktree. helm: $HELM, `go env GOPATH`/bin, ~/go/bin, PATH.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The manifests: output file, chart, release, namespace, helm arguments. */
export const MANIFESTS = [
  {
    file: 'deploy/conuredb/conuredb.yaml', chart: 'conuredb', release: 'conuredb', namespace: 'default',
    args: ['--set', 'tests.enabled=false', '--set', 'scaling.autoRemoveNodes=false', '--set', 'peerAuth.existingSecret=conure-peer'],
  },
  {
    file: 'deploy/fluxiondb/fluxiondb.yaml', chart: 'fluxiondb', release: 'fluxiondb', namespace: 'default',
    args: ['--set', 'tests.enabled=false', '--set', 'secret.create=false', '--set', 'secret.name=fluxiondb'],
  },
  {
    file: 'deploy/conure-platform/conure-platform.yaml', chart: 'conure-platform', release: 'conure-platform', namespace: 'conure-system',
    args: ['--set', 'tests.enabled=false', '--set', 'auth.existingSecret=conure-platform-admin', '--set', 'rbac.admissionPolicy=false',
      '--set', 'conuredb.tests.enabled=false', '--set', 'conuredb.scaling.autoRemoveNodes=false',
      '--set', 'conuredb.peerAuth.existingSecret=conure-platform-conure-peer'],
  },
  {
    file: 'deploy/conure-platform/admission-policy.yaml', chart: 'conure-platform', release: 'conure-platform', namespace: 'conure-system',
    args: ['--set', 'auth.existingSecret=conure-platform-admin', '--set', 'rbac.admissionPolicy=true', '--show-only', 'templates/admission-policy.yaml'],
  },
];

function findHelm() {
  const candidates = [];
  if (process.env.HELM) candidates.push(process.env.HELM);
  const go = spawnSync('go', ['env', 'GOPATH'], { encoding: 'utf8' });
  if (go.status === 0 && go.stdout.trim()) candidates.push(join(go.stdout.trim(), 'bin', 'helm'));
  candidates.push(join(process.env.HOME ?? '', 'go', 'bin', 'helm'));
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir) candidates.push(join(dir, 'helm'));
  return candidates.find((p) => existsSync(p));
}

function helm(bin, args) {
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 120_000, env: { ...process.env, HELM_CACHE_HOME: join(root, '.build', 'helm-cache') } });
  if (r.status !== 0) throw new Error(`helm ${args.join(' ')}: ${r.stderr || r.error}`);
  return r.stdout;
}

/** Renders every manifest; returns [{ file, text }]. */
export function renderAll() {
  const bin = findHelm();
  if (!bin) throw new Error('helm not found ($HELM, $(go env GOPATH)/bin, ~/go/bin, PATH); run scripts/setup.sh');
  mkdirSync(join(root, '.build'), { recursive: true });
  const tmp = mkdtempSync(join(root, '.build', 'render-manifests-'));
  try {
    for (const chart of new Set(MANIFESTS.map((m) => m.chart).concat('conuredb'))) {
      cpSync(join(root, 'charts', chart), join(tmp, chart), { recursive: true, filter: (src) => !src.startsWith(join(root, 'charts', chart, 'charts')) });
    }
    helm(bin, ['dependency', 'build', join(tmp, 'conure-platform'), '--skip-refresh']);
    return MANIFESTS.map((m) => {
      const body = helm(bin, ['template', m.release, join(tmp, m.chart), '--namespace', m.namespace, ...m.args]);
      const header = `# Generated from charts/${m.chart} by scripts/render-manifests.mjs; do not edit. See ${dirname(m.file)}/README.md.\n`;
      return { file: m.file, text: header + body };
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes('--check');
  const at = process.argv.indexOf('--deploy-dir');
  const deployDir = at > 0 ? resolve(process.argv[at + 1] ?? '') : join(root, 'deploy');
  const stale = [];
  for (const { file, text } of renderAll()) {
    const path = join(deployDir, file.replace(/^deploy\//, ''));
    const current = existsSync(path) ? readFileSync(path, 'utf8') : undefined;
    if (current === text) continue;
    if (check) stale.push(file);
    else {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, text);
      console.log(`wrote ${file}`);
    }
  }
  if (stale.length > 0) {
    for (const f of stale) console.error(`${f} is stale (or missing): run node scripts/render-manifests.mjs`);
    process.exit(1);
  }
}
