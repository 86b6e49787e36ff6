/**
 * Renders a run as a self-contained SVG a person can open in a browser:
 *
 *   time ─────────────────────────────────────────────────►
 *   worker 0  ▭▭ ▭▭▭ ▭ ▭▭           ▭▭▭ ▭▭
 *   worker 1   ▭▭▭ ▭▭ ▭      ▭▭▭▭▭▭▭▭▭▭▭▭▭▭▭▭▭▭▭▭▭▭▭▭▭▭ (info: open to the end)
 *   nemesis        ░░░░░░ kill -9 n1 ░░░░░░
 *
 * One lane per worker (`process % workers`; final reads get their own lane). Each operation is a
 * bar from invocation to completion: green ok, grey fail, orange info (drawn to the end of the
 * run, since it may take effect any time). Operations in a counterexample are outlined in red.
 * Fault windows are red bands across all lanes. Hovering a bar shows the operation.
 * At most `opsMax` operations are drawn (the earliest), so huge runs stay viewable.
 */
import type { HistoryEvent } from '../checker/history.js';
import { pairOperations } from '../checker/history.js';
import type { NemesisEvent } from '../nemesis/nemesis.js';

/** Options of `renderTimeline`. */
export interface TimelineOptions {
  title: string;
  workers: number;
  /** Indices (Operation.index) to highlight, e.g. the counterexample. */
  highlight?: ReadonlySet<number>;
  /** Operations drawn at most; default 20,000. */
  opsMax?: number;
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** Returns the SVG text. */
export function renderTimeline(events: readonly HistoryEvent[], nemesis: readonly NemesisEvent[], opts: TimelineOptions): string {
  const ops = pairOperations(events).slice(0, opts.opsMax ?? 20_000);
  // A loop, not Math.max(...spread): a long run's history overflows the argument stack.
  let end = 1;
  for (const e of events) if (e.time > end) end = e.time;
  for (const e of nemesis) if (e.time > end) end = e.time;
  const lane = (p: number | string) => (typeof p === 'number' && p < 1_000_000 ? p % opts.workers : opts.workers);
  const lanes = opts.workers + 1;
  const W = 1600, left = 90, laneH = 18, top = 40, right = 20;
  const H = top + lanes * laneH + 60;
  const x = (t: number) => left + (t / end) * (W - left - right);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="monospace" font-size="11">`);
  parts.push(`<text x="${left}" y="16" font-size="13">${esc(opts.title)}</text>`);
  parts.push(`<text x="${left}" y="30" fill="#555">${ops.length} ops · ${(end / 1e9).toFixed(1)} s · green ok · grey fail · orange info (indeterminate) · red bands: faults · red outline: counterexample</text>`);
  // Fault windows: pair start/stop in order.
  let open: NemesisEvent | undefined;
  const band = (from: number, to: number, label: string) => {
    parts.push(`<rect x="${x(from).toFixed(1)}" y="${top}" width="${Math.max(1, x(to) - x(from)).toFixed(1)}" height="${lanes * laneH}" fill="#e33" fill-opacity="0.15"><title>${esc(label)}</title></rect>`);
    parts.push(`<text x="${x(from).toFixed(1)}" y="${top + lanes * laneH + 14}" fill="#b00">${esc(label)}</text>`);
  };
  for (const e of nemesis) {
    if (e.phase === 'start') { if (open) band(open.time, e.time, `${open.action} ${open.targets.join(',')}`); open = e; }
    if (e.phase === 'stop' && open) { band(open.time, e.time, `${open.action} ${open.targets.join(',')}`); open = undefined; }
  }
  if (open) band(open.time, end, `${open.action} ${open.targets.join(',')}`);
  for (let l = 0; l < lanes; l++) {
    parts.push(`<text x="4" y="${top + l * laneH + 13}">${l < opts.workers ? `worker ${l}` : 'final'}</text>`);
    parts.push(`<line x1="${left}" x2="${W - right}" y1="${top + (l + 1) * laneH}" y2="${top + (l + 1) * laneH}" stroke="#eee"/>`);
  }
  for (const o of ops) {
    const x0 = x(o.invokeTime);
    const x1 = x(Number.isFinite(o.completeTime) ? o.completeTime : end);
    const fill = o.status === 'ok' ? '#3a3' : o.status === 'fail' ? '#999' : '#f90';
    const hl = opts.highlight?.has(o.index) ? ' stroke="#d00" stroke-width="2"' : '';
    const shown = o.f === 'read' ? (o.status === 'ok' ? `→ ${JSON.stringify(o.output)}`.slice(0, 80) : '') : JSON.stringify(o.input);
    const label = `p${o.process} ${o.f} ${o.key ?? ''} ${shown} ${o.status}${o.events[1]?.error ? ` (${o.events[1].error})` : ''}`;
    parts.push(`<rect x="${x0.toFixed(1)}" y="${top + lane(o.process) * laneH + 3}" width="${Math.max(1, x1 - x0).toFixed(1)}" height="${laneH - 6}" fill="${fill}"${hl}><title>${esc(label)}</title></rect>`);
  }
  parts.push(`<text x="${left}" y="${H - 8}" fill="#555">0 s</text><text x="${W - right - 60}" y="${H - 8}" fill="#555">${(end / 1e9).toFixed(1)} s</text>`);
  parts.push('</svg>');
  return parts.join('\n');
}
