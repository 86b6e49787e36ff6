/**
 * Test-only: the environment behind the golden interaction tests (testdata/*.txt), after
 * etcd-io/raft's interaction tests. A set of in-memory members, an explicit message bus
 * (nothing is delivered unless a command says so) and a textual rendering of everything each
 * member does, so protocol behaviour is reviewed as a diff.
 *
 * Commands (one per block; `key=value` arguments):
 *   add-nodes voters=n1,n2,n3 [learners=..] [arbiters=..] [prevote=false] [checkquorum=false]
 *             [lease=true] [retain=N] [maxmsg=BYTES]   bootstraps the listed members
 *   add-blank id                          a member with empty storage (to be joined)
 *   campaign id | tick id [n=1] | tick-all [n=1]
 *   propose id data | propose-conf-change id type=addVoter node=n4 | read-index id ctx
 *   transfer-leadership id to=n2 | snapshot id (snapshot at applied, then compact)
 *   process-ready id | deliver id [drop=true] | stabilize [max=N]
 *   isolate id | heal | crash id | restart id | lose id
 *   status id | log id
 */
import { decodeConfChange } from './conf-change.js';
import type { RaftMutation } from './raft.js';
import { RawNode } from './raw-node.js';
import { createRng } from './rng.js';
import { MemoryStorage } from './storage.js';
import type { Ready } from './raw-node.js';
import type { ConfChangeType, Entry, Membership, Message } from './types.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

interface EnvNode { id: string; raw: RawNode | null; mem: MemoryStorage; disk: MemoryStorage; applied: string[]; arbiter: boolean }

function fmtEntry(e: Entry): string {
  if (e.type === 'conf') {
    const cc = decodeConfChange(e.data);
    return `${e.index}/${e.term} conf ${cc.type} ${cc.nodeId}`;
  }
  return `${e.index}/${e.term} ${e.data.length === 0 ? 'empty' : JSON.stringify(dec.decode(e.data))}`;
}

export function fmtMessage(m: Message): string {
  const base = `${m.from}->${m.to} ${m.type} term=${m.term}`;
  switch (m.type) {
    case 'app': return `${base} prev=${m.index}/${m.logTerm} commit=${m.commit}${m.voterDurable ? ` voterDurable=${m.voterDurable}` : ''} [${m.entries.map(fmtEntry).join(', ')}]`;
    case 'appResp': return m.reject ? `${base} REJECT index=${m.index} hint=${m.rejectHint}/${m.logTerm}` : `${base} index=${m.index}`;
    case 'vote': case 'preVote': return `${base} last=${m.index}/${m.logTerm}${m.force ? ' force' : ''}`;
    case 'voteResp': case 'preVoteResp': return `${base}${m.reject ? ' REJECT' : ' granted'}`;
    case 'heartbeat': return `${base} commit=${m.commit} stamp=${m.index}${m.voterDurable ? ` voterDurable=${m.voterDurable}` : ''}${m.context.length ? ` ctx=${dec.decode(m.context)}` : ''}`;
    case 'heartbeatResp': return `${base} stamp=${m.index}${m.context.length ? ` ctx=${dec.decode(m.context)}` : ''}`;
    case 'snap': return `${base} snapshot=${m.snapshot!.meta.index}/${m.snapshot!.meta.term} ${fmtMembership(m.snapshot!.meta.membership)} data=${m.snapshot!.data.length}B`;
    case 'prop': return `${base} [${m.entries.map((e) => (e.type === 'conf' ? 'conf' : JSON.stringify(dec.decode(e.data)))).join(', ')}]`;
    case 'readIndex': return `${base} ctx=${dec.decode(m.context)}`;
    case 'readIndexResp': return `${base} index=${m.index} ctx=${dec.decode(m.context)}`;
    default: return base;
  }
}

function fmtMembership(m: Membership): string {
  const parts = [`voters=(${m.voters.join(' ')})`];
  if (m.learners.length) parts.push(`learners=(${m.learners.join(' ')})`);
  if (m.arbiters.length) parts.push(`arbiters=(${m.arbiters.join(' ')})`);
  return parts.join(' ');
}

export class InteractionEnv {
  nodes = new Map<string, EnvNode>();
  private inbox = new Map<string, Message[]>();
  private isolated = new Set<string>();
  private opts = { preVote: true, checkQuorum: true, lease: false, retain: 0, maxMsgBytes: 1 << 16 };
  private out: string[] = [];

  /** `mutation` breaks one rule on purpose (to show a golden file catches it). */
  constructor(private readonly mutation?: RaftMutation) {}

  run(command: string): string {
    this.out = [];
    const [cmd, ...rest] = command.trim().split(/\s+/);
    const pos: string[] = [];
    const kv: Record<string, string> = {};
    for (const a of rest) { const i = a.indexOf('='); if (i > 0) kv[a.slice(0, i)] = a.slice(i + 1); else pos.push(a); }
    try {
      this.dispatch(cmd!, pos, kv);
    } catch (err) {
      this.out.push(`error: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    }
    return this.out.length ? this.out.join('\n') : 'ok';
  }

  private node(id: string | undefined): EnvNode {
    const n = id ? this.nodes.get(id) : undefined;
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }
  private raw(id: string | undefined): RawNode {
    const n = this.node(id);
    if (!n.raw) throw new Error(`${id} is down`);
    return n.raw;
  }

  private start(n: EnvNode): void {
    n.mem = n.disk.clone();
    let seed = 0;
    for (const ch of n.id) seed = seed * 31 + ch.charCodeAt(0);
    n.raw = new RawNode({
      id: n.id, storage: n.mem, rng: createRng(seed), electionTimeoutTicks: 10, heartbeatTicks: 1,
      preVote: this.opts.preVote, checkQuorum: this.opts.checkQuorum, readOnlyOption: this.opts.lease ? 'lease' : 'safe',
      compactionRetainEntries: this.opts.retain, maxSizePerMsgBytes: this.opts.maxMsgBytes, testMutation: this.mutation,
    });
  }

  private dispatch(cmd: string, pos: string[], kv: Record<string, string>): void {
    const list = (s: string | undefined) => (s ? s.split(',').filter(Boolean) : []);
    switch (cmd) {
      case 'add-nodes': {
        this.opts = { preVote: kv.prevote !== 'false', checkQuorum: kv.checkquorum !== 'false', lease: kv.lease === 'true', retain: Number(kv.retain ?? 0), maxMsgBytes: Number(kv.maxmsg ?? 1 << 16) };
        const m: Membership = { voters: list(kv.voters).sort(), learners: list(kv.learners).sort(), arbiters: list(kv.arbiters).sort() };
        for (const id of [...m.voters, ...m.learners, ...m.arbiters]) {
          const disk = MemoryStorage.bootstrapped(m);
          const n: EnvNode = { id, raw: null, mem: disk, disk, applied: [], arbiter: m.arbiters.includes(id) };
          this.nodes.set(id, n);
          this.start(n);
        }
        this.out.push(`added ${fmtMembership(m)}`);
        return;
      }
      case 'add-blank': {
        const id = pos[0]!;
        const n: EnvNode = { id, raw: null, mem: new MemoryStorage(), disk: new MemoryStorage(), applied: [], arbiter: id.startsWith('a') };
        this.nodes.set(id, n);
        this.start(n);
        this.out.push(`added blank ${id}`);
        return;
      }
      case 'campaign': this.raw(pos[0]).campaign(); return;
      case 'tick': { const r = this.raw(pos[0]); for (let i = 0; i < Number(kv.n ?? 1); i++) r.tick(); return; }
      case 'tick-all': for (let i = 0; i < Number(kv.n ?? 1); i++) for (const n of this.nodes.values()) n.raw?.tick(); return;
      case 'propose': {
        const res = this.raw(pos[0]).propose(enc.encode(pos[1] ?? ''));
        this.out.push(res ? `appended at ${res.index}/${res.term}` : 'forwarded');
        return;
      }
      case 'propose-conf-change': {
        const res = this.raw(pos[0]).proposeConfChange({ type: kv.type as ConfChangeType, nodeId: kv.node!, context: new Uint8Array(0) });
        this.out.push(res ? `appended at ${res.index}/${res.term}` : 'forwarded');
        return;
      }
      case 'read-index': this.raw(pos[0]).readIndex(enc.encode(pos[1] ?? '')); return;
      case 'transfer-leadership': this.raw(pos[0]).transferLeadership(kv.to!); return;
      case 'snapshot': {
        const n = this.node(pos[0]);
        const r = this.raw(pos[0]);
        n.mem.createSnapshot(r.applied, r.membershipAt(r.applied), enc.encode(n.applied.join('|')));
        n.disk.createSnapshot(r.applied, r.membershipAt(r.applied), enc.encode(n.applied.join('|')));
        r.snapshotCreated(r.applied);
        this.out.push(`snapshot at ${r.applied}`);
        return;
      }
      case 'process-ready': this.processReady(this.node(pos[0])); return;
      case 'deliver': this.deliver(pos[0]!, kv.drop === 'true'); return;
      case 'stabilize': this.stabilize(Number(kv.max ?? 50)); return;
      case 'isolate': this.isolated.add(pos[0]!); return;
      case 'heal': this.isolated.clear(); return;
      case 'crash': { const n = this.node(pos[0]); n.raw = null; this.inbox.delete(n.id); this.out.push(`${n.id} crashed`); return; }
      case 'restart': { const n = this.node(pos[0]); this.start(n); this.out.push(`${n.id} restarted: ${this.fmtStatus(n.raw!)}`); return; }
      case 'lose': { const n = this.node(pos[0]); this.nodes.delete(n.id); this.inbox.delete(n.id); this.out.push(`${n.id} lost with its disk`); return; }
      case 'status': this.out.push(this.fmtStatus(this.raw(pos[0]))); return;
      case 'log': {
        const n = this.node(pos[0]);
        const r = this.raw(pos[0]);
        const lines: string[] = [`first=${r.firstIndex} last=${r.lastIndex} payloadFloor=${n.mem.payloadFloor()}`];
        if (r.lastIndex >= r.firstIndex) for (const e of n.mem.entries(r.firstIndex, r.lastIndex + 1, 1 << 30)) lines.push(fmtEntry(e));
        this.out.push(...lines);
        return;
      }
      default: throw new Error(`unknown command ${cmd}`);
    }
  }

  private fmtStatus(r: RawNode): string {
    const s = r.status();
    const prog = Object.entries(s.progress).map(([id, p]) => `${id}:${p.state}/${p.match}`).join(' ');
    return `${s.id} ${s.role} term=${s.term} lead=${s.lead || '-'} commit=${s.commit} applied=${s.applied} last=${s.lastIndex} ${fmtMembership(s.membership)}${s.leadTransferee ? ` transferee=${s.leadTransferee}` : ''}${prog ? ` progress=[${prog}]` : ''}`;
  }

  private processReady(n: EnvNode): boolean {
    if (!n.raw || !n.raw.hasReady()) return false;
    const rd: Ready = n.raw.ready();
    const lines: string[] = [`> ${n.id} ready`];
    if (rd.softState) lines.push(`  state: ${rd.softState.role} lead=${rd.softState.lead || '-'}`);
    if (rd.hardState) lines.push(`  hardState: term=${rd.hardState.term} vote=${rd.hardState.vote || '-'} commit=${rd.hardState.commit}`);
    if (rd.snapshot) lines.push(`  snapshot: ${rd.snapshot.meta.index}/${rd.snapshot.meta.term} ${fmtMembership(rd.snapshot.meta.membership)}`);
    if (rd.entries.length) lines.push(`  entries: ${rd.entries.map(fmtEntry).join(', ')}`);
    if (rd.committedEntries.length) lines.push(`  committed: ${rd.committedEntries.map(fmtEntry).join(', ')}`);
    for (const rs of rd.readStates) lines.push(`  readState: index=${rs.index} ctx=${dec.decode(rs.context)}`);
    if (rd.compactTo) lines.push(`  compactTo: ${rd.compactTo}`);
    if (rd.arbiterTrimTo) lines.push(`  arbiterTrimTo: ${rd.arbiterTrimTo}`);
    if (rd.mustSync) lines.push('  mustSync');
    for (const m of rd.messages) lines.push(`  send ${fmtMessage(m)}`);
    for (const s of [n.mem, n.disk]) {
      if (rd.snapshot) s.applySnapshot(rd.snapshot);
      s.append(rd.entries);
      if (rd.hardState) s.setHardState(rd.hardState);
    }
    for (const m of rd.messages) {
      if (this.isolated.has(m.from) || this.isolated.has(m.to)) continue;
      const q = this.inbox.get(m.to) ?? [];
      q.push(m);
      this.inbox.set(m.to, q);
    }
    if (rd.snapshot && !n.arbiter) n.applied = rd.snapshot.data.length ? dec.decode(rd.snapshot.data).split('|') : [];
    for (const e of rd.committedEntries) if (!n.arbiter && e.type === 'normal' && e.data.length) n.applied.push(dec.decode(e.data));
    for (const s of [n.mem, n.disk]) {
      if (rd.compactTo) s.compact(Math.min(rd.compactTo, s.snapshot().meta.index));
      if (rd.arbiterTrimTo) s.trimPayloads(rd.arbiterTrimTo);
    }
    n.raw.advance();
    this.out.push(...lines);
    return true;
  }

  private deliver(id: string, drop: boolean): boolean {
    const q = this.inbox.get(id) ?? [];
    this.inbox.delete(id);
    const n = this.nodes.get(id);
    if (q.length === 0) return false;
    if (drop || !n?.raw) { for (const m of q) this.out.push(`  dropped ${fmtMessage(m)}`); return true; }
    this.out.push(`> ${id} receiving ${q.length} message(s)`);
    for (const m of q) {
      if (this.isolated.has(m.from) || this.isolated.has(m.to)) continue;
      n.raw.step(m);
    }
    return true;
  }

  private stabilize(max: number): void {
    for (let round = 0; round < max; round++) {
      let progress = false;
      for (const n of [...this.nodes.values()]) while (this.processReady(n)) progress = true;
      for (const id of [...this.nodes.keys()]) if (this.deliver(id, false)) progress = true;
      if (!progress) return;
    }
    this.out.push(`not stable after ${max} rounds`);
  }
}

/** Parses a golden file into blocks: comment lines, a command, '----', the expected output. */
export interface GoldenBlock { comments: string[]; command: string; expected: string }

export function parseGolden(text: string): GoldenBlock[] {
  const blocks: GoldenBlock[] = [];
  const lines = text.split('\n');
  let i = 0;
  while (i < lines.length) {
    const comments: string[] = [];
    while (i < lines.length && (lines[i]!.startsWith('#') || lines[i]!.trim() === '')) {
      if (lines[i]!.startsWith('#')) comments.push(lines[i]!);
      i++;
    }
    if (i >= lines.length) break;
    const command = lines[i++]!;
    if (lines[i] !== '----') throw new Error(`line ${i + 1}: expected ---- after command ${JSON.stringify(command)}`);
    i++;
    const out: string[] = [];
    while (i < lines.length && lines[i]!.trim() !== '') out.push(lines[i++]!);
    blocks.push({ comments, command, expected: out.join('\n') });
  }
  return blocks;
}

export function renderGolden(blocks: ReadonlyArray<GoldenBlock>): string {
  return blocks.map((b) => [...b.comments, b.command, '----', b.expected].join('\n')).join('\n\n') + '\n';
}
