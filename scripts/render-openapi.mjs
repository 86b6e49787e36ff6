#!/usr/bin/env node
// Writes the OpenAPI documents of every HTTP API under docs/openapi/, from the route schemas in
// the compiled code (build first: npx tsc -p tsconfig.json):
//
//   node scripts/render-openapi.mjs            write docs/openapi/{conuredb,fluxion,platform}.json
//   node scripts/render-openapi.mjs --check    exit 1 when a committed file differs
//
//   CONURE_DIST=/tmp/dist-x   read the compiled code from there instead of dist/
//
// The documents are what each server serves at GET /openapi.json (src/cli/openapi-documents.ts);
// the unit test beside that module fails when a committed file is stale.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = resolve(root, process.env.CONURE_DIST ?? 'dist');
const check = process.argv.includes('--check');
const { openApiDocuments, renderOpenApi } = await import(pathToFileURL(join(dist, 'src', 'cli', 'openapi-documents.js')).href);

const dir = join(root, 'docs', 'openapi');
mkdirSync(dir, { recursive: true });
let stale = 0;
for (const [file, doc] of Object.entries(await openApiDocuments())) {
  const path = join(dir, file);
  const text = renderOpenApi(doc);
  let current;
  try { current = readFileSync(path, 'utf8'); } catch { current = undefined; }
  if (current === text) { console.error(`up to date: docs/openapi/${file}`); continue; }
  if (check) { console.error(`stale: docs/openapi/${file} (run node scripts/render-openapi.mjs)`); stale++; continue; }
  writeFileSync(path, text);
  console.error(`wrote docs/openapi/${file}`);
}
process.exit(stale > 0 ? 1 : 0);
