/**
 * Chart hygiene that needs no helm: the values table in docs/kubernetes.md is generated from the
 * current values.yaml, every value has an `## @param`, and the plain manifests under
 * deploy/conuredb are the chart's current default rendering.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHART_DIR, GENERATOR, SKIP_NO_HELM, repoRoot, template } from './helm-support.js';

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
  const r = template(['--set', 'tests.enabled=false', '--set', 'scaling.autoRemoveNodes=false'], 'conuredb', 'default');
  assert.ok(r.ok, r.stderr);
  const file = readFileSync(join(repoRoot(), 'deploy', 'conuredb', 'conuredb.yaml'), 'utf8');
  const body = file.slice(file.indexOf('---'));
  assert.equal(body, r.stdout, 'stale: regenerate with the command in deploy/conuredb/README.md');
});
