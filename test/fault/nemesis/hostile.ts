/**
 * The hostile-peer nemesis: someone on the network who can reach every member's raft port,
 * without the cluster secret. One fault sends, straight to each member's raft listener (not
 * through the link proxies):
 * - frames that name a real member as sender with a term far ahead (would depose the leader),
 * - an `app` from a real member id injecting a configuration change that adds an outsider as
 *   a voter, and a heartbeat claiming a huge commit index,
 * - the review's malformed terms (`Infinity`, 2^53) and messages from an unknown id,
 * - garbage bytes, an oversized length prefix, and partial frames held open,
 * - a bounded burst of idle connections.
 * Healing closes every connection it opened. With peer authentication (the default) nothing of
 * this reaches raft, so the run must stay clean; without it the forged terms are adopted, which
 * `runner.test.ts` shows (`hostileDamage`).
 */
import { connect, type Socket } from 'node:net';
import { pack } from 'msgpackr';
import { encodeConfChange } from '../../../src/raft/conf-change.js';
import { makeMessage } from '../../../src/raft/types.js';
import { encodeFrame } from '../../../src/node/peer-transport.js';
import type { FaultCluster } from '../cluster.js';
import type { Nemesis, Random } from './nemesis.js';

/** How far ahead the forged terms are: far beyond anything a real run reaches. */
export const FORGED_TERM_AHEAD = 1_000_000;
const IDLE_CONNECTIONS = 40;
const CONNECT_TIMEOUT_MS = 2000;

function open(hostPort: string): Promise<Socket | undefined> {
  const at = hostPort.lastIndexOf(':');
  return new Promise((resolve) => {
    const s = connect({ host: hostPort.slice(0, at), port: Number(hostPort.slice(at + 1)) });
    const timer = setTimeout(() => { s.destroy(); resolve(undefined); }, CONNECT_TIMEOUT_MS);
    s.on('error', () => { clearTimeout(timer); resolve(undefined); });
    s.once('connect', () => { clearTimeout(timer); resolve(s); });
  });
}

async function termOf(url: string): Promise<number> {
  try {
    return Number(((await (await fetch(`${url}/raft/stats`, { signal: AbortSignal.timeout(2000) })).json()) as { term: number }).term) || 0;
  } catch { return 0; }
}

function frames(to: string, asMember: string, term: number): Buffer[] {
  const env = (from: string, msg: unknown) => encodeFrame(pack({ from, to, msg }));
  const huge = Buffer.alloc(4); huge.writeUInt32BE(0xffffff00, 0);
  return [
    env(asMember, makeMessage({ type: 'heartbeat', from: asMember, to, term, commit: 1 })),
    env(asMember, makeMessage({
      type: 'app', from: asMember, to, term, index: 0, logTerm: 0, commit: 1_000_000,
      entries: [{ index: 1, term, type: 'conf', data: encodeConfChange({ type: 'addVoter', nodeId: 'mallory', context: new Uint8Array(0) }) }],
    })),
    env(asMember, makeMessage({ type: 'vote', from: asMember, to, term: term + 1, index: 1 << 30, logTerm: term, force: true })),
    env('mallory', makeMessage({ type: 'heartbeat', from: 'mallory', to, term: Infinity })),
    env('mallory', makeMessage({ type: 'heartbeat', from: 'mallory', to, term: 2 ** 53 })),
    Buffer.from([0, 0, 0, 3, 0xc1, 0xc1, 0xc1]),
    huge,
  ];
}

export function hostileNemesis(): Nemesis {
  let sockets: Socket[] = [];
  return {
    name: 'hostile',
    needs: { members: 2 },
    async inject(cluster: FaultCluster, random: Random) {
      const running = cluster.nodes.filter((n) => n.isRunning() && !n.isPaused());
      const term = Math.max(0, ...(await Promise.all(running.map((n) => termOf(n.url))))) + FORGED_TERM_AHEAD;
      let sent = 0;
      for (const target of running) {
        const others = cluster.nodes.filter((n) => n !== target);
        const asMember = others[Math.floor(random() * others.length)]!.id;
        // Each frame on its own connection: a member closes a connection at its first bad frame.
        for (const f of frames(target.id, asMember, term)) {
          const s = await open(target.raft);
          if (!s) continue;
          s.on('error', () => undefined);
          s.write(f);
          sockets.push(s);
          sent++;
        }
        // A partial frame left hanging, then idle connections.
        const partial = await open(target.raft);
        if (partial) {
          const head = Buffer.alloc(4); head.writeUInt32BE(4 * 1024 * 1024, 0);
          partial.write(Buffer.concat([head, Buffer.alloc(64 * 1024)]));
          partial.on('error', () => undefined);
          sockets.push(partial);
        }
        for (let i = 0; i < IDLE_CONNECTIONS / running.length; i++) {
          const s = await open(target.raft);
          if (s) { s.on('error', () => undefined); sockets.push(s); }
        }
      }
      return { action: 'forged and malformed raft frames', targets: running.map((n) => n.id), detail: { forgedTerm: term, frames: sent } };
    },
    async heal() {
      if (sockets.length === 0) return undefined;
      const n = sockets.length;
      for (const s of sockets) s.destroy();
      sockets = [];
      return { action: `closed ${n} hostile connections`, targets: [] };
    },
  };
}

/** The highest term any running member reports: a forged term that got in shows here. */
export async function highestTerm(cluster: FaultCluster): Promise<number> {
  return Math.max(0, ...(await Promise.all(cluster.nodes.filter((n) => n.isRunning()).map((n) => termOf(n.url)))));
}
