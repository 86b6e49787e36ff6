/**
 * Test support: a StepExecutor whose steps record how often they ran in the store (so a test
 * can assert each step's effect count across processes) and whose behaviour comes from the
 * operation's params, so a child process needs no configuration:
 *
 *   params.steps            step names (default prepare, apply, verify, finish)
 *   params.stepMs           how long each step sleeps after counting (abortable), or
 *   params.slowStep/slowMs  one step that sleeps longer
 *   params.failStep         the step that throws `params.failCode` (default invalid_argument)
 *   params.unavailableTimes the first N runs of every step throw `unavailable`
 */
import { pino, type Logger } from 'pino';
import { compare, op } from '../../src/client/etcd-client.js';
import { ConureError, UnavailableError } from '../../src/util/errors.js';
import type { StepContext, StepExecutor } from '../../src/platform/operations/index.js';
import type { PlatformStore } from '../../src/platform/store/index.js';
import type { OperationRecord } from '../../src/platform/types.js';

const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((r) => {
  const t = setTimeout(r, ms);
  signal?.addEventListener('abort', () => { clearTimeout(t); r(); }, { once: true });
});

export class CountingExecutor implements StepExecutor {
  /** `honourSlow: false` ignores params.slowStep (a rescuing pool in a test runs it fast). */
  constructor(private readonly store: PlatformStore, private readonly opts: { honourSlow?: boolean } = {}) {}

  effectKey(opId: string, step: string): string { return `${this.store.keys.prefix}test-effects/${opId}/${step}`; }

  /** How many times `step` of `opId` started. */
  async count(opId: string, step: string): Promise<number> {
    const kv = await this.store.client.get(this.effectKey(opId, step));
    return kv ? Number(kv.value.toString()) : 0;
  }

  steps(o: OperationRecord): string[] {
    return (o.params.steps as string[] | undefined) ?? ['prepare', 'apply', 'verify', 'finish'];
  }

  async run(o: OperationRecord, step: string, ctx: StepContext): Promise<void> {
    const n = await this.bump(o.id, step);
    ctx.report(`${step} run ${n}`);
    const p = o.params as { stepMs?: number; slowStep?: string; slowMs?: number; failStep?: string; failCode?: string; unavailableTimes?: number };
    if (p.unavailableTimes && n <= p.unavailableTimes) throw new UnavailableError(`${step}: not yet (${n})`);
    await sleep(step === p.slowStep && this.opts.honourSlow !== false ? (p.slowMs ?? 0) : (p.stepMs ?? 0), ctx.signal);
    if (step === p.failStep) throw new ConureError((p.failCode ?? 'invalid_argument') as never, `${step} failed on purpose`);
  }

  private async bump(opId: string, step: string): Promise<number> {
    const key = this.effectKey(opId, step);
    for (;;) {
      const kv = await this.store.client.get(key);
      const n = (kv ? Number(kv.value.toString()) : 0) + 1;
      const r = await this.store.client.runTxn({
        compare: [kv ? compare.modRevision(key, '==', kv.modRevision) : compare.absent(key)],
        success: [op.put(key, String(n))],
      });
      if (r.succeeded) return n;
    }
  }
}

/** A pino logger that keeps its JSON lines in memory. */
export function memoryLogger(): { log: Logger; lines: () => Array<Record<string, unknown>> } {
  const out: string[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => { out.push(s); } });
  return { log, lines: () => out.flatMap((l) => l.split('\n')).filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}
