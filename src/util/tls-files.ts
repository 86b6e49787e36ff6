/**
 * TLS material read from PEM files, re-read when the files change, so a rotated certificate is
 * served without a restart (cert-manager, kubelet-projected Secrets, `openssl` by hand).
 *
 * ```
 *  TlsFiles.load({certFile, keyFile, caFile})   reads and checks the files now (throws a clear error)
 *     every reloadIntervalMs: stat each file; size or mtime changed → read all, build a context
 *        ok    → current() is the new context, onReload listeners run (tls.Server.setSecureContext)
 *        fails → keeps serving the old one (a cert written before its key), logs, retries next tick
 * ```
 *
 * Ownership: whoever loads a TlsFiles closes it (stops the timer). The timer is unref'd.
 */
import { readFileSync, statSync } from 'node:fs';
import { createSecureContext, type SecureContext, type Server as TlsServer } from 'node:tls';
import { InvalidArgumentError } from './errors.js';
import type { Logger } from './log.js';

export interface TlsFilesOptions {
  certFile: string;
  keyFile: string;
  /** CA bundle that client (or peer) certificates must chain to; also trusted when dialling. */
  caFile?: string;
  /** How often the files are checked for a change; default 2 s. */
  reloadIntervalMs?: number;
  logger?: Logger;
}

/** The PEM contents, as node's tls options take them. */
export interface TlsMaterial { cert: Buffer; key: Buffer; ca?: Buffer }

export class TlsFiles {
  private material: TlsMaterial;
  private context: SecureContext;
  private stamp: string;
  private readonly listeners: ((m: TlsMaterial) => void)[] = [];
  private readonly timer: NodeJS.Timeout;

  private constructor(private readonly opts: TlsFilesOptions) {
    this.material = read(opts);
    this.context = createSecureContext(this.material);
    this.stamp = stampOf(opts);
    this.timer = setInterval(() => this.check(), opts.reloadIntervalMs ?? 2000);
    this.timer.unref();
  }

  /** Reads and checks the files; throws InvalidArgumentError naming the file that is wrong. */
  static load(opts: TlsFilesOptions): TlsFiles {
    try {
      return new TlsFiles(opts);
    } catch (err) {
      if (err instanceof InvalidArgumentError) throw err;
      throw new InvalidArgumentError(`${opts.certFile} and ${opts.keyFile} are not a usable certificate and key: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Whether a CA was given (so peer certificates can be verified). */
  get hasCa(): boolean { return this.material.ca !== undefined; }

  /** The current material (for tls.connect and https/fastify server options). */
  current(): TlsMaterial { return this.material; }

  /** The current secure context (for TLSSocket and tls.Server options). */
  secureContext(): SecureContext { return this.context; }

  /** Calls `fn` with the new material after each successful reload. */
  onReload(fn: (m: TlsMaterial) => void): void { this.listeners.push(fn); }

  /** Keeps `server`'s certificate current: setSecureContext after each reload. */
  serve(server: TlsServer): void {
    this.onReload((m) => server.setSecureContext(m));
  }

  close(): void { clearInterval(this.timer); }

  private check(): void {
    let stamp: string;
    try { stamp = stampOf(this.opts); } catch { return; } // a file is being replaced: next tick
    if (stamp === this.stamp) return;
    try {
      const m = read(this.opts);
      this.context = createSecureContext(m);
      this.material = m;
      this.stamp = stamp;
      for (const fn of this.listeners) fn(m);
      this.opts.logger?.info({ cert: this.opts.certFile }, 'tls_certificate_reloaded');
    } catch (err) {
      this.opts.logger?.warn({ cert: this.opts.certFile, err: (err as Error).message }, 'tls_certificate_reload_failed_keeping_old');
    }
  }
}

function files(o: TlsFilesOptions): string[] {
  return [o.certFile, o.keyFile, ...(o.caFile ? [o.caFile] : [])];
}

function stampOf(o: TlsFilesOptions): string {
  return files(o).map((f) => { const s = statSync(f); return `${s.size}:${s.mtimeMs}:${s.ino}`; }).join('|');
}

function read(o: TlsFilesOptions): TlsMaterial {
  const get = (f: string) => {
    try { return readFileSync(f); } catch (err) { throw new InvalidArgumentError(`cannot read ${f}: ${(err as Error).message}`, { cause: err }); }
  };
  return { cert: get(o.certFile), key: get(o.keyFile), ...(o.caFile && { ca: get(o.caFile) }) };
}
