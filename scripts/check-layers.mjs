#!/usr/bin/env node
// Checks the import rules of src/ (DESIGN.md §2, "Folders show the layers; data flows downward
// only"; docs/decisions/003-layer-rules.md says where the order deviates from DESIGN's list).
// Zero dependencies beyond Node. Usage: node scripts/check-layers.mjs [repository root]
// Exit 0 when clean, 1 with a report (file:line, the import, the rule) otherwise, 2 on misuse.
//
// Every src/**/*.ts file (tests included) is parsed for `import … from`, `import '…'`,
// `import(…)` with a literal, `export … from`, `import x = require(…)`. Type-only imports count:
// they couple layers as much as value imports do. The rules:
//
//   raft-pure    src/raft imports nothing but src/util: no other layer, no package, no node:
//                builtin (raft's own tests and test support may use node:test, fast-check, …).
//   layer-order  a layer imports only layers in lower tiers (LAYERS, below) or its own tier.
//   layer-cycle  no cycle between layers (tiers order most edges; this catches peers).
//   index-only   another layer is imported through its index.ts only; inside a layer, a
//                folder with an index.ts (a module, e.g. platform/store/) is imported from
//                outside that folder through its index.ts only.
//   self-index   a file does not import the index.ts of a folder that contains it (an ESM
//                evaluation cycle through the barrel).
//   type-import  an import whose every name is `type X` is written `import type {…}`: under
//                verbatimModuleSyntax the other form still loads the module (and its barrel).
//   unlayered    every src file belongs to a layer of LAYERS.
//   outside-src  non-test src files import nothing outside src/ by relative path.
//   unresolved   a relative import names a file that exists.
//
// Tests: `*.test.ts` and test support (`test-*.ts`, `*.contract.ts`) may deep-import any file
// of their own layer and the test support of other layers; every other rule holds for them.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * The layers, lowest tier first: folders under src/. A layer may import layers of lower tiers
 * and peers of its own tier (acyclically). A layer nested in another's folder (client/platform)
 * owns its subtree; the outer layer owns the rest.
 */
export const LAYERS = [
  ['util'],
  ['raft'],
  ['storage'],
  ['seams', 'api/etcd/proto'],
  ['mvcc'],
  ['node'],
  ['api/http', 'api/etcd'],
  ['fluxion', 'planner', 'client'],
  ['platform'],
  ['client/platform'],
  ['cli'],
];

export const RULES = {
  'raft-pure': 'src/raft imports nothing but src/util',
  'layer-order': 'a layer imports only lower layers',
  'layer-cycle': 'no import cycle between layers',
  'index-only': "another layer (or module) is imported through its index.ts, not its internals",
  'self-index': 'a file does not import the index.ts of a folder that contains it',
  'type-import': 'an import of types only is written `import type`',
  'unlayered': 'every src file belongs to a layer',
  'outside-src': 'non-test src files do not import files outside src/',
  'unresolved': 'a relative import names an existing file',
};

// ---------------------------------------------------------------------------------------------
// Lexing: just enough of TypeScript to find import specifiers outside comments, strings,
// template literals and regular expressions.

const REGEX_AFTER_WORD = new Set(['return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else', 'yield', 'await']);

/** Tokens of `src`: {t: 'id'|'str'|'p', v, line}. Numbers, regexes and template text are dropped. */
export function tokenize(src) {
  const out = [];
  const braces = []; // one entry per open template `${`: the brace depth at which it closes
  let depth = 0;
  let line = 1;
  let i = 0;
  const n = src.length;
  const prev = () => out[out.length - 1];
  const regexAllowed = () => {
    const p = prev();
    if (!p) return true;
    if (p.t === 'p') return !(p.v === ')' || p.v === ']' || p.v === '`');
    if (p.t === 'id') return REGEX_AFTER_WORD.has(p.v);
    return false;
  };
  const readTemplate = () => { // at the char after ` (or after the } closing `${…}`)
    while (i < n) {
      const c = src[i];
      if (c === '\\') { if (src[i + 1] === '\n') line++; i += 2; continue; }
      if (c === '\n') line++;
      if (c === '`') { i++; out.push({ t: 'p', v: '`', line }); return; }
      if (c === '$' && src[i + 1] === '{') { i += 2; braces.push(depth); depth++; out.push({ t: 'p', v: '${', line }); return; }
      i++;
    }
  };
  while (i < n) {
    const c = src[i];
    if (c === '\n') { line++; i++; continue; }
    if (c === ' ' || c === '\t' || c === '\r') { i++; continue; }
    if (c === '/' && src[i + 1] === '/') { while (i < n && src[i] !== '\n') i++; continue; }
    if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end < 0 ? n : end + 2;
      for (let k = i; k < stop; k++) if (src[k] === '\n') line++;
      i = stop;
      continue;
    }
    if (c === '"' || c === "'") {
      const startLine = line;
      let v = '';
      i++;
      while (i < n && src[i] !== c) {
        if (src[i] === '\\') { if (src[i + 1] === '\n') line++; v += src[i + 1] ?? ''; i += 2; continue; }
        if (src[i] === '\n') { line++; break; } // unterminated: stop at the line's end
        v += src[i++];
      }
      i++;
      out.push({ t: 'str', v, line: startLine });
      continue;
    }
    if (c === '`') { i++; readTemplate(); continue; }
    if (c === '/' && regexAllowed()) {
      i++;
      let inClass = false;
      while (i < n && src[i] !== '\n') {
        const d = src[i];
        if (d === '\\') { i += 2; continue; }
        if (d === '[') inClass = true;
        else if (d === ']') inClass = false;
        else if (d === '/' && !inClass) { i++; break; }
        i++;
      }
      while (i < n && /[a-z]/i.test(src[i])) i++;
      out.push({ t: 'p', v: '/re/', line });
      continue;
    }
    if (/[A-Za-z_$]/.test(c)) {
      let j = i + 1;
      while (j < n && /[\w$]/.test(src[j])) j++;
      out.push({ t: 'id', v: src.slice(i, j), line });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] ?? ''))) {
      let j = i + 1;
      while (j < n && /[\w.]/.test(src[j])) j++;
      out.push({ t: 'num', v: src.slice(i, j), line });
      i = j;
      continue;
    }
    if (c === '{') depth++;
    if (c === '}') {
      if (braces.length > 0 && braces[braces.length - 1] === depth - 1) {
        braces.pop();
        depth--;
        i++;
        out.push({ t: 'p', v: '}', line });
        readTemplate();
        continue;
      }
      depth--;
    }
    out.push({ t: 'p', v: c, line });
    i++;
  }
  return out;
}

/**
 * The imports of one TypeScript source: {spec, line, kind, typeOnly, inlineTypeOnly}.
 * `typeOnly`: `import type`/`export type`; `inlineTypeOnly`: every named binding is `type X`
 * and there is no default or namespace binding.
 */
export function parseImports(src) {
  const tk = tokenize(src);
  const found = [];
  const isP = (k, v) => tk[k]?.t === 'p' && tk[k].v === v;
  const isId = (k, v) => tk[k]?.t === 'id' && tk[k].v === v;
  for (let k = 0; k < tk.length; k++) {
    const tok = tk[k];
    if (tok.t !== 'id' || (tok.v !== 'import' && tok.v !== 'export')) continue;
    if (isP(k - 1, '.')) continue; // x.import
    const line = tok.line;
    if (tok.v === 'import') {
      if (isP(k + 1, '.')) continue; // import.meta
      if (isP(k + 1, '(')) {
        if (tk[k + 2]?.t === 'str' && (isP(k + 3, ')') || isP(k + 3, ','))) found.push({ spec: tk[k + 2].v, line, kind: 'dynamic', typeOnly: false, inlineTypeOnly: false });
        continue;
      }
      if (tk[k + 1]?.t === 'str') { found.push({ spec: tk[k + 1].v, line, kind: 'side-effect', typeOnly: false, inlineTypeOnly: false }); continue; }
    } else if (!(isP(k + 1, '*') || isP(k + 1, '{') || (isId(k + 1, 'type') && (isP(k + 2, '{') || isP(k + 2, '*'))))) {
      continue; // an export declaration, not a re-export
    }
    // Walk the clause up to `from '…'` (or `= require('…')`), at brace depth 0.
    const typeOnly = isId(k + 1, 'type') && !isId(k + 2, 'from') && !isP(k + 2, ',') && !isP(k + 2, '=');
    let d = 0;
    let hasDefaultOrNs = false;
    let named = 0;
    let namedTypes = 0;
    let atName = false;
    let j = k + 1;
    for (; j < tk.length && j < k + 2000; j++) {
      const t = tk[j];
      if (t.t === 'p' && t.v === '{') { d++; atName = true; continue; }
      if (t.t === 'p' && t.v === '}') { d--; continue; }
      if (d > 0) {
        if (t.t === 'p' && t.v === ',') { atName = true; continue; }
        if (atName && t.t === 'id') {
          named++;
          // `type X`, `type as` (a type named "as"); not `type as y` (a value named "type", renamed).
          if (t.v === 'type' && tk[j + 1]?.t === 'id' && !(tk[j + 1].v === 'as' && tk[j + 2]?.t === 'id' && tk[j + 2].v !== 'as')) namedTypes++;
          atName = false;
        }
        continue;
      }
      if (t.t === 'p' && t.v === ';') break;
      if (t.t === 'id' && t.v === 'from' && tk[j + 1]?.t === 'str') {
        found.push({ spec: tk[j + 1].v, line, kind: tok.v, typeOnly, inlineTypeOnly: !typeOnly && !hasDefaultOrNs && named > 0 && named === namedTypes });
        break;
      }
      if (t.t === 'id' && t.v === 'require' && isP(j + 1, '(') && tk[j + 2]?.t === 'str') {
        found.push({ spec: tk[j + 2].v, line, kind: 'require', typeOnly: false, inlineTypeOnly: false });
        break;
      }
      if (t.t === 'id' && (t.v === 'import' || t.v === 'export')) break; // a new statement
      if (t.t === 'id' && !(j === k + 1 && typeOnly) && t.v !== 'as') hasDefaultOrNs = true; // a default binding
      if (t.t === 'p' && t.v === '*') hasDefaultOrNs = true;
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// The rules.

const posix = (p) => p.split(sep).join('/');
const isTestFile = (p) => p.endsWith('.test.ts');
const isTestSupport = (p) => { const b = p.slice(p.lastIndexOf('/') + 1); return b.startsWith('test-') || b.endsWith('.contract.ts'); };
const isTestCode = (p) => isTestFile(p) || isTestSupport(p);
const within = (p, dir) => p.startsWith(`${dir}/`);

function layerIndex(layers) {
  const tierOf = new Map();
  layers.forEach((tier, t) => tier.forEach((name) => tierOf.set(name, t)));
  // Longest folder first, so a nested layer (client/platform) wins over its parent (client).
  const byLength = [...tierOf.keys()].sort((a, b) => b.length - a.length);
  const layerOf = (p) => byLength.find((name) => within(p, `src/${name}`));
  return { tierOf, layerOf };
}

/**
 * Checks a source tree. `files`: Map of repository-relative posix path (`src/…`) to source text.
 * Returns {violations: [{file, line, statement, spec, rule, message}], stats}.
 */
export function checkTree(files, layers = LAYERS) {
  const { tierOf, layerOf } = layerIndex(layers);
  const violations = [];
  const edges = new Map(); // "a\u0000b" -> first {file, line, spec}, count
  const dirsWithIndex = new Set([...files.keys()].filter((p) => p.endsWith('/index.ts')).map((p) => p.slice(0, -'/index.ts'.length)));
  let imports = 0;
  const report = (file, imp, rule, message) => {
    const text = files.get(file) ?? '';
    const statement = imp ? (text.split('\n')[imp.line - 1] ?? '').trim() : '';
    violations.push({ file, line: imp?.line ?? 1, statement, spec: imp?.spec ?? '', rule, message });
  };
  const resolveSpec = (from, spec) => {
    const base = posix(join(dirname(from), spec));
    const candidates = /\.(m|c)?js$/.test(base)
      ? [base.replace(/\.js$/, '.ts').replace(/\.mjs$/, '.mts').replace(/\.cjs$/, '.cts'), base]
      : [base, `${base}.ts`, `${base}/index.ts`];
    return candidates.find((c) => files.has(c)) ?? (base.startsWith('src/') ? undefined : base);
  };
  // The folders with an index.ts between `p` (of `layer`) and its layer's root, innermost first.
  // No nested layer's root lies on that path: `p` would belong to the nested layer.
  const modulesOf = (p, layer) => {
    const root = `src/${layer}`;
    const out = [];
    for (let d = dirname(p); within(d, root); d = dirname(d)) if (dirsWithIndex.has(d)) out.push(d);
    return out;
  };

  for (const [file, text] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const from = layerOf(file);
    const test = isTestCode(file);
    if (!from) { report(file, undefined, 'unlayered', `${file} is in no layer: add its folder to LAYERS in scripts/check-layers.mjs`); continue; }
    for (const imp of parseImports(text)) {
      imports++;
      if (imp.inlineTypeOnly) report(file, imp, 'type-import', 'every name is a type: write `import type { … }` (this form still loads the module under verbatimModuleSyntax)');
      const relativeSpec = imp.spec.startsWith('./') || imp.spec.startsWith('../');
      if (!relativeSpec) {
        if (from === 'raft' && !test) report(file, imp, 'raft-pure', `raft imports '${imp.spec}': the pure core imports nothing but src/util (no packages, no node: builtins)`);
        continue;
      }
      const target = resolveSpec(file, imp.spec);
      if (target === undefined) { report(file, imp, 'unresolved', `'${imp.spec}' names no file under src/`); continue; }
      if (!target.startsWith('src/')) {
        if (!test) report(file, imp, 'outside-src', `'${imp.spec}' resolves to ${target}, outside src/`);
        continue;
      }
      const to = layerOf(target);
      if (!to) continue; // reported as unlayered on its own
      // self-index: the barrel of a folder that contains the importer.
      if (!test && from === to && target.endsWith('/index.ts') && within(file, target.slice(0, -'/index.ts'.length))) {
        report(file, imp, 'self-index', `imports ${target}, the index of a folder containing it: import the file itself (a barrel cycle)`);
      }
      if (from !== to) {
        const key = `${from}\u0000${to}`;
        const e = edges.get(key);
        if (e) e.count++;
        else edges.set(key, { file, line: imp.line, spec: imp.spec, count: 1 });
        if (from === 'raft' && to !== 'util') {
          report(file, imp, 'raft-pure', `raft imports ${to}: the pure core imports nothing but src/util`);
        } else if (tierOf.get(from) < tierOf.get(to)) {
          report(file, imp, 'layer-order', `${from} (tier ${tierOf.get(from)}) imports ${to} (tier ${tierOf.get(to)}), a higher layer`);
        }
        const index = `src/${to}/index.ts`;
        if (target !== index && !(test && isTestSupport(target))) {
          report(file, imp, 'index-only', files.has(index)
            ? `imports ${to}'s internals (${target}): import '${posix(relative(dirname(file), index)).replace(/\.ts$/, '.js').replace(/^(?!\.)/, './')}' instead`
            : `imports ${target}, but ${to} has no index.ts: give it one and import that`);
        }
      } else if (!test) {
        // Inside one layer: the outermost module folder that holds the target but not the importer.
        const outer = modulesOf(target, to).filter((d) => !within(file, d)).pop();
        if (outer && target !== `${outer}/index.ts`) {
          report(file, imp, 'index-only', `imports the internals of module ${outer}/ (${target}): import '${posix(relative(dirname(file), `${outer}/index.ts`)).replace(/\.ts$/, '.js').replace(/^(?!\.)/, './')}' instead`);
        }
      }
    }
  }

  for (const cycle of layerCycles(edges)) {
    const hops = cycle.map((a, k) => { const b = cycle[(k + 1) % cycle.length]; return { a, b, e: edges.get(`${a}\u0000${b}`) }; });
    const first = hops[0].e;
    violations.push({
      file: first.file, line: first.line, statement: '', spec: first.spec, rule: 'layer-cycle',
      message: `${[...cycle, cycle[0]].join(' -> ')}:\n${hops.map(({ a, b, e }) => `    ${a} -> ${b}: ${e.file}:${e.line} '${e.spec}'${e.count > 1 ? ` (+${e.count - 1} more)` : ''}`).join('\n')}`,
    });
  }
  return { violations, stats: { files: files.size, imports, layerEdges: edges.size }, layers };
}

/** One shortest cycle per strongly connected component (Tarjan) of more than one layer. */
function layerCycles(edges) {
  const adj = new Map();
  for (const key of edges.keys()) {
    const [a, b] = key.split('\u0000');
    if (!adj.has(a)) adj.set(a, []);
    if (!adj.has(b)) adj.set(b, []);
    adj.get(a).push(b);
  }
  for (const list of adj.values()) list.sort();
  let counter = 0;
  const index = new Map(), low = new Map(), stack = [], onStack = new Set(), sccs = [];
  const visit = (v) => {
    index.set(v, counter); low.set(v, counter); counter++;
    stack.push(v); onStack.add(v);
    for (const w of adj.get(v)) {
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v), low.get(w))); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) === index.get(v)) {
      const scc = [];
      let w;
      do { w = stack.pop(); onStack.delete(w); scc.push(w); } while (w !== v);
      if (scc.length > 1) sccs.push(scc);
    }
  };
  for (const v of [...adj.keys()].sort()) if (!index.has(v)) visit(v);
  return sccs.map((scc) => {
    const inScc = new Set(scc);
    const start = [...scc].sort()[0];
    const parent = new Map([[start, undefined]]);
    const queue = [start];
    while (queue.length > 0) { // BFS back to start
      const v = queue.shift();
      for (const w of adj.get(v)) {
        if (!inScc.has(w)) continue;
        if (w === start) {
          const path = [v];
          for (let p = parent.get(v); p !== undefined; p = parent.get(p)) path.push(p);
          return path.reverse();
        }
        if (!parent.has(w)) { parent.set(w, v); queue.push(w); }
      }
    }
    return [...scc].sort(); // unreachable: an SCC always has a cycle through each member
  });
}

// ---------------------------------------------------------------------------------------------
// The command.

/** Reads every src/**\/*.ts under `root` into a Map of repository-relative posix path to text. */
export function loadTree(root) {
  const files = new Map();
  const walk = (dir) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) files.set(posix(relative(root, p)), readFileSync(p, 'utf8'));
    }
  };
  walk(join(root, 'src'));
  return files;
}

/** The human report of `checkTree`'s result. */
export function formatReport({ violations, stats, layers = LAYERS }) {
  if (violations.length === 0) return `check-layers: ${stats.files} files, ${stats.imports} imports, ${stats.layerEdges} layer edges: ok`;
  const byRule = {};
  for (const v of violations) byRule[v.rule] = (byRule[v.rule] ?? 0) + 1;
  // One entry per import (file:line and its first line), then every rule it breaks.
  const lines = [];
  let last = '';
  const sorted = violations.filter((v) => v.rule !== 'layer-cycle').sort((a, b) => (a.file === b.file ? a.line - b.line : a.file < b.file ? -1 : 1));
  for (const v of sorted) {
    const where = `${v.file}:${v.line}${v.statement ? `  ${v.statement}` : ''}`;
    if (where !== last) lines.push(where);
    last = where;
    lines.push(`    [${v.rule}] ${v.message}`);
  }
  // A cycle has no single place: its hops, each with one import that makes it.
  for (const v of violations.filter((c) => c.rule === 'layer-cycle')) lines.push(`layers: [layer-cycle] ${v.message}`);
  const summary = Object.entries(byRule).map(([r, c]) => `${r} ${c}`).join(', ');
  return `${lines.join('\n')}\n\ncheck-layers: ${violations.length} violation${violations.length === 1 ? '' : 's'} (${summary}) in ${stats.files} files.\n`
    + `Rules: ${Object.entries(RULES).map(([r, d]) => `${r}: ${d}`).join('; ')}.\n`
    + 'Layers, lowest first (peers share a tier): ' + layers.map((t) => t.join(' ')).join(' < ');
}

const invoked = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (invoked) {
  const args = process.argv.slice(2);
  if (args.length > 1 || args[0]?.startsWith('-')) {
    console.error('usage: node scripts/check-layers.mjs [repository root]');
    process.exit(2);
  }
  const root = resolve(args[0] ?? join(dirname(fileURLToPath(import.meta.url)), '..'));
  if (!existsSync(join(root, 'src'))) { console.error(`check-layers: no src/ under ${root}`); process.exit(2); }
  const result = checkTree(loadTree(root));
  const text = formatReport(result);
  if (result.violations.length > 0) { console.error(text); process.exit(1); }
  console.log(text);
}
