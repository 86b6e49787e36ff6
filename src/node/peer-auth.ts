/**
 * Peer authentication with a shared cluster secret: an HMAC challenge–response handshake on
 * every raft connection, then a MAC on every frame. For deployments without certificates;
 * it authenticates and protects integrity, it does not encrypt.
 *
 * ```
 *  dialer (from)                                         listener (to)
 *   HELLO     "CNR1" | cn (32) | from | to   ─────────►   checks `to` is itself
 *             ◄─────────  CHALLENGE  sn (32) | HMAC(K, "s" | transcript)
 *   verifies the listener knows K
 *   AUTH      HMAC(K, "c" | transcript)      ─────────►   verifies the dialer knows K
 *   frames    payload | tag                  ─────────►   tag = HMAC(S, seq | payload)[0..16]
 *
 *  transcript = cn | sn | len(from) | from | len(to) | to
 *  K = HMAC-SHA256(secret, "conure peer secret v1")      S = HMAC(K, "k" | transcript)
 * ```
 *
 * Both nonces are fresh per connection, so neither side can replay an old handshake, and the
 * per-connection key with a frame sequence number makes replayed, reordered or altered frames
 * fail. Every member holding the secret is trusted alike: the secret authenticates membership
 * of the cluster, not which member is speaking. HTTP calls between members (snapshot fetches,
 * joins) carry a bearer token derived from the same secret (`httpToken`).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from '../util/index.js';

export const NONCE_BYTES = 32;
export const MAC_BYTES = 32;
export const TAG_BYTES = 16;
/** Shortest secret accepted (after trimming whitespace). */
export const SECRET_BYTES_MIN = 16;
const MAGIC = Buffer.from('CNR1');
const ID_BYTES_MAX = 255;

export class PeerSecret {
  private readonly key: Buffer;
  /** The bearer token members present to each other's HTTP endpoints. */
  readonly httpToken: string;

  constructor(secret: string | Buffer) {
    const raw = Buffer.from(typeof secret === 'string' ? secret.trim() : secret.toString('utf8').trim());
    if (raw.length < SECRET_BYTES_MIN) throw new InvalidArgumentError(`the peer secret must be at least ${SECRET_BYTES_MIN} bytes`);
    this.key = createHmac('sha256', raw).update('conure peer secret v1').digest();
    this.httpToken = createHmac('sha256', this.key).update('conure http peer v1').digest('hex');
  }

  static fromFile(path: string): PeerSecret {
    let text: Buffer;
    try { text = readFileSync(path); } catch (err) { throw new InvalidArgumentError(`cannot read the peer secret file ${path}: ${(err as Error).message}`, { cause: err }); }
    return new PeerSecret(text);
  }

  /** Whether `token` is this cluster's HTTP peer token (constant time). */
  checkHttpToken(token: string): boolean {
    const a = Buffer.from(token);
    const b = Buffer.from(this.httpToken);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** @internal */ mac(label: string, transcript: Buffer): Buffer {
    return createHmac('sha256', this.key).update(label).update(transcript).digest();
  }
}

/**
 * The cluster secret of a cluster run on this host (`conurectl dev cluster`, the platform's local
 * driver): `<dir>/peer-secret`, made (random, mode 0600) on first use and kept, so restarted
 * members still know each other. Returns its path.
 */
export function ensurePeerSecretFile(dir: string): string {
  const file = join(dir, 'peer-secret');
  mkdirSync(dir, { recursive: true });
  try {
    writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return file;
}

export interface Hello { clientNonce: Buffer; from: string; to: string }

function transcript(cn: Buffer, sn: Buffer, from: string, to: string): Buffer {
  const f = Buffer.from(from);
  const t = Buffer.from(to);
  return Buffer.concat([cn, sn, Buffer.from([f.length]), f, Buffer.from([t.length]), t]);
}

export function encodeHello(h: Hello): Buffer {
  const f = Buffer.from(h.from);
  const t = Buffer.from(h.to);
  if (f.length === 0 || f.length > ID_BYTES_MAX || t.length === 0 || t.length > ID_BYTES_MAX) throw new InvalidArgumentError('member ids must be 1..255 bytes');
  return Buffer.concat([MAGIC, h.clientNonce, Buffer.from([f.length]), f, Buffer.from([t.length]), t]);
}

/** Parses a HELLO frame; throws InvalidArgumentError on anything else. */
export function decodeHello(b: Buffer): Hello {
  const bad = (why: string): never => { throw new InvalidArgumentError(`bad peer hello: ${why}`); };
  if (b.length < MAGIC.length + NONCE_BYTES + 2 || !b.subarray(0, MAGIC.length).equals(MAGIC)) bad('not a Conure peer handshake');
  let at = MAGIC.length;
  const clientNonce = Buffer.from(b.subarray(at, at + NONCE_BYTES)); at += NONCE_BYTES;
  const fl = b[at++]!;
  if (fl === 0 || at + fl + 1 > b.length) bad('truncated sender id');
  const from = b.subarray(at, at + fl).toString('utf8'); at += fl;
  const tl = b[at++]!;
  if (tl === 0 || at + tl !== b.length) bad('truncated recipient id');
  const to = b.subarray(at, at + tl).toString('utf8');
  return { clientNonce, from, to };
}

/** The listener's side of one handshake. */
export class ServerHandshake {
  readonly serverNonce = randomBytes(NONCE_BYTES);
  private readonly transcript: Buffer;
  constructor(private readonly secret: PeerSecret, readonly hello: Hello) {
    this.transcript = transcript(hello.clientNonce, this.serverNonce, hello.from, hello.to);
  }

  /** The CHALLENGE frame: our nonce and our proof that we know the secret. */
  challenge(): Buffer { return Buffer.concat([this.serverNonce, this.secret.mac('s', this.transcript)]); }

  /** Checks the dialer's AUTH frame; on success returns the connection's frame verifier. */
  verify(auth: Buffer): FrameMac | undefined {
    const want = this.secret.mac('c', this.transcript);
    if (auth.length !== MAC_BYTES || !timingSafeEqual(auth, want)) return undefined;
    return new FrameMac(this.secret.mac('k', this.transcript));
  }
}

/** The dialer's side of one handshake. */
export class ClientHandshake {
  readonly clientNonce = randomBytes(NONCE_BYTES);
  constructor(private readonly secret: PeerSecret, readonly from: string, readonly to: string) {}

  hello(): Buffer { return encodeHello({ clientNonce: this.clientNonce, from: this.from, to: this.to }); }

  /**
   * Checks the listener's CHALLENGE; on success returns the AUTH frame to send and the
   * connection's frame signer, or undefined when the listener does not know the secret.
   */
  answer(challenge: Buffer): { auth: Buffer; mac: FrameMac } | undefined {
    if (challenge.length !== NONCE_BYTES + MAC_BYTES) return undefined;
    const sn = challenge.subarray(0, NONCE_BYTES);
    const t = transcript(this.clientNonce, sn, this.from, this.to);
    const proof = challenge.subarray(NONCE_BYTES);
    if (!timingSafeEqual(proof, this.secret.mac('s', t))) return undefined;
    return { auth: this.secret.mac('c', t), mac: new FrameMac(this.secret.mac('k', t)) };
  }
}

/** Signs (dialer) or verifies (listener) the frames of one connection, in order. */
export class FrameMac {
  private seq = 0n;
  private readonly seqBuf = Buffer.alloc(8);
  constructor(private readonly key: Buffer) {}

  private tag(payload: Buffer): Buffer {
    this.seqBuf.writeBigUInt64BE(this.seq++, 0);
    return createHmac('sha256', this.key).update(this.seqBuf).update(payload).digest().subarray(0, TAG_BYTES);
  }

  /** `payload | tag`. */
  sign(payload: Buffer): Buffer { return Buffer.concat([payload, this.tag(payload)]); }

  /** The payload of a signed frame, or undefined when its tag is wrong (then the connection must close). */
  open(frame: Buffer): Buffer | undefined {
    if (frame.length < TAG_BYTES) return undefined;
    const payload = frame.subarray(0, frame.length - TAG_BYTES);
    return timingSafeEqual(this.tag(payload), frame.subarray(frame.length - TAG_BYTES)) ? payload : undefined;
  }
}
