import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openApiDocuments, renderOpenApi } from './openapi-documents.js';

/** The repository: the folder above this file's build that has docs/openapi (else the cwd). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'docs', 'openapi')) && existsSync(join(dir, 'package.json'))) return dir;
    dir = resolve(dir, '..');
  }
  return process.cwd();
}

test('docs/openapi/ holds exactly what the servers serve (regenerate: node scripts/render-openapi.mjs)', async () => {
  const dir = join(repoRoot(), 'docs', 'openapi');
  for (const [file, doc] of Object.entries(await openApiDocuments())) {
    const path = join(dir, file);
    assert.ok(existsSync(path), `${path} is missing: run node scripts/render-openapi.mjs`);
    // assert.ok, not equal: the message, not a diff of two large documents.
    assert.ok(readFileSync(path, 'utf8') === renderOpenApi(doc), `docs/openapi/${file} is stale: run node scripts/render-openapi.mjs and commit it`);
  }
});

test('every operation of every document has a summary and documents its success', async () => {
  for (const [file, doc] of Object.entries(await openApiDocuments())) {
    assert.equal(doc.openapi, '3.0.3', file);
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, { summary: string; responses: Record<string, unknown> }>>)) {
      for (const [method, op] of Object.entries(ops)) {
        assert.notEqual(op.summary, '', `${file}: ${method} ${path} has a summary`);
        assert.ok(Object.keys(op.responses).some((c) => /^2\d\d$/.test(c)), `${file}: ${method} ${path} documents a 2xx`);
      }
    }
  }
});
