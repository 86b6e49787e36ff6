/**
 * Seed REST API calls classified the way a history needs them:
 *
 *   ok     the server answered 200 (for reads: with the value)
 *   fail   the operation certainly did not take effect: a 4xx answer, or the connection was
 *          refused (nothing was sent)
 *   info   anything else: timeout, connection reset after sending, a 5xx (the write may have
 *          been applied before the error), so the operation is indeterminate
 *
 * Reads never change state, so for them fail and info mean the same to the checker.
 */
export type Outcome<T> = { type: 'ok'; value: T } | { type: 'fail' | 'info'; error: string };

/** Per-request options. */
export interface KvCallOptions {
  /** Abort (and record info) after this long. */
  timeoutMs: number;
}

function classifyThrown(err: unknown): { type: 'fail' | 'info'; error: string } {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return { type: 'info', error: 'timeout' };
  const code = e.cause?.code;
  if (code === 'ECONNREFUSED') return { type: 'fail', error: 'connection refused' };
  return { type: 'info', error: code ?? e.cause?.message ?? e.message };
}

/** `PUT /kv?key=K` with the value as the body. */
export async function kvPut(base: string, key: string, value: string, opts: KvCallOptions): Promise<Outcome<undefined>> {
  try {
    const res = await fetch(`${base}/kv?key=${encodeURIComponent(key)}`, { method: 'PUT', body: value, signal: AbortSignal.timeout(opts.timeoutMs) });
    const text = await res.text();
    if (res.status === 200) return { type: 'ok', value: undefined };
    return { type: res.status >= 400 && res.status < 500 ? 'fail' : 'info', error: `${res.status} ${text.slice(0, 200)}` };
  } catch (err) {
    return classifyThrown(err);
  }
}

/** `GET /kv?key=K`: the value, or null when absent (the seed API answers an empty body). */
export async function kvGet(base: string, key: string, opts: KvCallOptions): Promise<Outcome<string | null>> {
  try {
    const res = await fetch(`${base}/kv?key=${encodeURIComponent(key)}`, { signal: AbortSignal.timeout(opts.timeoutMs) });
    const text = await res.text();
    if (res.status === 200) return { type: 'ok', value: text === '' ? null : text };
    return { type: 'fail', error: `${res.status} ${text.slice(0, 200)}` };
  } catch (err) {
    const c = classifyThrown(err);
    return { type: c.type === 'fail' ? 'fail' : 'info', error: c.error };
  }
}

/** Polls `GET /ready` on any endpoint until one answers 200; false after `timeoutMs`. */
export async function waitReady(endpoints: () => string[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
    for (const base of endpoints()) {
      try {
        const res = await fetch(`${base}/ready`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (res.ok) return true;
      } catch { /* not up yet */ }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
