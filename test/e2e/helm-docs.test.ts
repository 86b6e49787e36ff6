/**
 * Chart hygiene: the values tables (docs/kubernetes.md for conuredb, each new chart's README)
 * are generated from the current values.yaml by the one shared generator, every value has an
 * `## @param`, and the plain manifests under deploy/ are the charts' current renderings
 * (scripts/render-manifests.mjs), valid Kubernetes objects that carry no secret.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHART_DIR, FLUXION_CHART_DIR, GENERATOR, PLATFORM_CHART_DIR, SKIP_NO_HELM, parseManifests, repoRoot, template, validateObject } from './helm-support.js';

const DOC = join(repoRoot(), 'docs', 'kubernetes.md');

function generator(args: string[], chart = CHART_DIR) {
  return spawnSync(process.execPath, [GENERATOR, chart, ...args], { encoding: 'utf8', timeout: 30_000, cwd: repoRoot() });
}

test('docs/kubernetes.md values table is generated from the current values.yaml', () => {
  const r = generator(['--check', DOC]);
  assert.equal(r.status, 0, r.stderr);
  const table = generator([]).stdout;
  for (const key of ['voters.replicas', 'arbiter.mode', 'unsafe.allowEvenMembers', 'scaling.autoRemoveNodes', 'volumePermissions.enabled']) {
    assert.ok(table.includes(`| \`${key}\` |`), `${key} is in the table`);
  }
});

test('the generator catches a stale table and an undocumented value', () => {
  // Inside the repository (under .build), so that the copied generator resolves `yaml`.
  mkdirSync(join(repoRoot(), '.build'), { recursive: true });
  const dir = mkdtempSync(join(repoRoot(), '.build', 'conure-doc-'));
  try {
    const stale = join(dir, 'doc.md');
    writeFileSync(stale, '# x\n<!-- values-table:start -->\n| old |\n<!-- values-table:end -->\n');
    const r = generator(['--check', stale]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /stale/);
    // A copy of the chart's values with one @param comment dropped.
    const values = readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8').replace(/^\s*## @param clusterDomain .*\n/m, '');
    writeFileSync(join(dir, 'values.yaml'), values);
    const u = generator([], dir);
    assert.equal(u.status, 1);
    assert.match(u.stderr, /clusterDomain has no @param comment/);
    // ...and an @param naming a value that does not exist.
    writeFileSync(join(dir, 'values.yaml'), `${values}## @param nosuch.value Documented but absent\n`);
    assert.match(generator([], dir).stderr, /@param nosuch.value names no value/);
    assert.equal(generator([]).status, 0, 'the real chart is fully documented');
    assert.equal(spawnSync(process.execPath, [GENERATOR], { encoding: 'utf8' }).status, 2, 'no chart directory: usage error');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('deploy/conuredb/conuredb.yaml is the chart rendered with its defaults', { skip: SKIP_NO_HELM }, () => {
  const r = template(['--set', 'tests.enabled=false', '--set', 'scaling.autoRemoveNodes=false', '--set', 'peerAuth.existingSecret=conure-peer'], 'conuredb', 'default');
  assert.ok(r.ok, r.stderr);
  const file = readFileSync(join(repoRoot(), 'deploy', 'conuredb', 'conuredb.yaml'), 'utf8');
  const body = file.slice(file.indexOf('---'));
  assert.equal(body, r.stdout, 'stale: regenerate with the command in deploy/conuredb/README.md');
});

for (const [chart, keys] of [
  [FLUXION_CHART_DIR, ['replicaCount', 'secret.secretKey', 'sizing.ram', 'persistence.accessModes', 'livenessProbe.enabled']],
  [PLATFORM_CHART_DIR, ['replicaCount', 'platform.numOperationWorkers', 'auth.adminToken', 'store.endpoints', 'rbac.admissionPolicy']],
] as const) {
  test(`${chart.split('/').at(-1)}/README.md values table is generated from the current values.yaml`, () => {
    const readme = join(chart, 'README.md');
    const r = generator(['--check', readme], chart);
    assert.equal(r.status, 0, r.stderr);
    const text = readFileSync(readme, 'utf8');
    for (const key of keys) assert.ok(text.includes(`| \`${key}\` |`), `${key} is in the table`);
  });
}

const RENDER = join(repoRoot(), 'scripts', 'render-manifests.mjs');
const DEPLOYED = ['deploy/conuredb/conuredb.yaml', 'deploy/fluxiondb/fluxiondb.yaml', 'deploy/conure-platform/conure-platform.yaml', 'deploy/conure-platform/admission-policy.yaml'];

test('deploy/ is what scripts/render-manifests.mjs renders from the charts now (no drift)', { skip: SKIP_NO_HELM }, () => {
  const r = spawnSync(process.execPath, [RENDER, '--check'], { encoding: 'utf8', timeout: 180_000, cwd: repoRoot() });
  assert.equal(r.status, 0, `stale manifests:\n${r.stderr}`);
  // The checker notices drift: a copy of deploy/ with one edited file and one missing file.
  mkdirSync(join(repoRoot(), '.build'), { recursive: true });
  const dir = mkdtempSync(join(repoRoot(), '.build', 'deploy-drift-'));
  try {
    cpSync(join(repoRoot(), 'deploy'), dir, { recursive: true });
    const edited = join(dir, 'fluxiondb', 'fluxiondb.yaml');
    writeFileSync(edited, readFileSync(edited, 'utf8').replace('--max-memory=512Mi', '--max-memory=1Gi'));
    rmSync(join(dir, 'conure-platform', 'admission-policy.yaml'));
    const d = spawnSync(process.execPath, [RENDER, '--check', '--deploy-dir', dir], { encoding: 'utf8', timeout: 180_000, cwd: repoRoot() });
    assert.equal(d.status, 1);
    const staleFiles = [...d.stderr.matchAll(/^(\S+) is stale/gm)].map((m) => m[1]);
    assert.deepEqual(staleFiles, ['deploy/fluxiondb/fluxiondb.yaml', 'deploy/conure-platform/admission-policy.yaml']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('deploy/ manifests are valid objects, carry no secret, and no Helm hook', () => {
  const kinds: Record<string, string[]> = {};
  for (const file of DEPLOYED) {
    const text = readFileSync(join(repoRoot(), file), 'utf8');
    assert.match(text, /^# Generated from charts\/[a-z-]+ by scripts\/render-manifests\.mjs; do not edit\./);
    const objs = parseManifests(text);
    for (const o of objs) {
      validateObject(o);
      assert.equal(o.metadata.annotations?.['helm.sh/hook'], undefined, `${file}: ${o.kind} ${o.metadata.name} is a hook`);
      assert.notEqual(o.kind, 'Secret', `${file}: no Secret (with a key or token in it) is committed`);
    }
    kinds[file] = [...new Set(objs.map((o) => o.kind))].sort();
  }
  assert.deepEqual(kinds['deploy/fluxiondb/fluxiondb.yaml'], ['PersistentVolumeClaim', 'Service', 'ServiceAccount', 'StatefulSet']);
  assert.deepEqual(kinds['deploy/conure-platform/admission-policy.yaml'], ['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
  assert.ok(kinds['deploy/conure-platform/conure-platform.yaml']!.includes('ClusterRole') && kinds['deploy/conure-platform/conure-platform.yaml']!.includes('StatefulSet'));
});

test('deploy/: the ConureDB members authenticate with the Secret their README tells you to create', () => {
  for (const [file, readme, secret] of [
    ['deploy/conuredb/conuredb.yaml', 'deploy/conuredb/README.md', 'conure-peer'],
    ['deploy/conure-platform/conure-platform.yaml', 'deploy/conure-platform/README.md', 'conure-platform-conure-peer'],
  ] as const) {
    const sets = parseManifests(readFileSync(join(repoRoot(), file), 'utf8')).filter((o) => o.kind === 'StatefulSet' && o.metadata.labels?.['app.kubernetes.io/name'] === 'conuredb');
    assert.equal(sets.length, 3, `${file}: bootstrap, voters, arbiter`);
    for (const sts of sets) {
      const spec = (sts.spec as { template: { spec: { containers: { name: string; args: string[] }[]; volumes: { name: string; secret?: { secretName: string } }[] } } }).template.spec;
      assert.ok(spec.containers.find((c) => c.name === 'conured')!.args.includes('--peer-secret-file=/etc/conure/peer/peer-secret'), `${file} ${sts.metadata.name}`);
      assert.equal(spec.volumes.find((v) => v.name === 'peer-secret')?.secret?.secretName, secret, `${file} ${sts.metadata.name} mounts ${secret}`);
    }
    const steps = readFileSync(join(repoRoot(), readme), 'utf8');
    assert.match(steps, new RegExp(`create secret generic ${secret} \\\\\\n\\s+--from-literal=peer-secret=`), `${readme} creates ${secret} with key peer-secret`);
  }
});
