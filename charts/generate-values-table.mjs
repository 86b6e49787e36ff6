#!/usr/bin/env node
// Generates the values table of a chart (charts/conuredb, charts/fluxiondb, charts/conure-platform)
// from the `## @param <key> <description>` and `## @section <title>` comments in its values.yaml,
// with each default read from the YAML itself. One generator for every chart.
//
//   node charts/generate-values-table.mjs CHART_DIR                 print the table
//   node charts/generate-values-table.mjs CHART_DIR --write FILE    replace the table in FILE
//   node charts/generate-values-table.mjs CHART_DIR --check FILE    exit 1 when FILE is stale
//
// In FILE the table sits between `<!-- values-table:start -->` and `<!-- values-table:end -->`.
// Also exits 1 when a value has no @param (its own or an ancestor's) or an @param names a
// value that does not exist, so the documentation cannot silently drift from values.yaml.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const START = '<!-- values-table:start -->';
const END = '<!-- values-table:end -->';
const [chartDir, mode, file] = process.argv.slice(2);
const USAGE = 'usage: generate-values-table.mjs CHART_DIR [--write FILE | --check FILE]';
if (!chartDir || chartDir.startsWith('--')) { console.error(USAGE); process.exit(2); }
const source = readFileSync(join(chartDir, 'values.yaml'), 'utf8');
const values = parse(source);

/** @returns {{ sections: { title: string, params: { key: string, description: string }[] }[] }} */
function readParams(text) {
  const sections = [{ title: 'General', params: [] }];
  for (const line of text.split('\n')) {
    const section = /^\s*## @section (.+)$/.exec(line);
    if (section) { sections.push({ title: section[1].trim(), params: [] }); continue; }
    const param = /^\s*## @param (\S+) (.+)$/.exec(line);
    if (param) sections.at(-1).params.push({ key: param[1], description: param[2].trim() });
  }
  return { sections: sections.filter((s) => s.params.length > 0) };
}

function lookup(key) {
  let v = values;
  for (const part of key.split('.')) {
    if (v === null || typeof v !== 'object' || !(part in v)) return { found: false };
    v = v[part];
  }
  return { found: true, value: v };
}

/** Every leaf path of the values (empty maps and lists are leaves). */
function leaves(v, prefix = '') {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || Object.keys(v).length === 0) return [prefix];
  return Object.entries(v).flatMap(([k, child]) => leaves(child, prefix ? `${prefix}.${k}` : k));
}

function cell(text) {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

function render() {
  const { sections } = readParams(source);
  const problems = [];
  const documented = new Set(sections.flatMap((s) => s.params.map((p) => p.key)));
  for (const key of documented) if (!lookup(key).found) problems.push(`@param ${key} names no value in values.yaml`);
  for (const leaf of leaves(values)) {
    const parts = leaf.split('.');
    const covered = parts.some((_, i) => documented.has(parts.slice(0, i + 1).join('.')));
    if (!covered) problems.push(`${leaf} has no @param comment`);
  }
  const out = [];
  for (const s of sections) {
    out.push(`#### ${s.title}`, '', '| Name | Description | Default |', '| --- | --- | --- |');
    for (const p of s.params) {
      const { value } = lookup(p.key);
      out.push(`| \`${p.key}\` | ${cell(p.description)} | \`${cell(JSON.stringify(value ?? null))}\` |`);
    }
    out.push('');
  }
  return { table: out.join('\n').trimEnd(), problems };
}

function splice(doc, table) {
  const a = doc.indexOf(START);
  const b = doc.indexOf(END);
  if (a < 0 || b < a) throw new Error(`markers ${START} ... ${END} not found`);
  return `${doc.slice(0, a + START.length)}\n${table}\n${doc.slice(b)}`;
}

const { table, problems } = render();
if (problems.length > 0) {
  for (const p of problems) console.error(`${join(chartDir, 'values.yaml')}: ${p}`);
  process.exit(1);
}
if (mode === '--write' || mode === '--check') {
  if (!file) { console.error(`${mode} needs a file`); process.exit(2); }
  const doc = readFileSync(file, 'utf8');
  const next = splice(doc, table);
  if (mode === '--write') writeFileSync(file, next);
  else if (next !== doc) {
    console.error(`${file}: the values table is stale; run node charts/generate-values-table.mjs ${chartDir} --write ${file}`);
    process.exit(1);
  }
} else if (mode === undefined) {
  process.stdout.write(`${table}\n`);
} else {
  console.error(USAGE);
  process.exit(2);
}
