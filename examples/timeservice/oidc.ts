/**
 * Optional OIDC bearer auth: a JWT (RS256/RS384/RS512, ES256/ES384, PS256) verified with
 * node:crypto against the keys of a JWKS URL, and its iss/aud/exp/nbf claims checked.
 * The JWKS is fetched on first use and again (at most every 30 s) when a token names an
 * unknown `kid`. Errors: `AuthError` (code `UNAUTHENTICATED`), with a short reason.
 */
import { createPublicKey, verify, constants, type KeyObject } from 'node:crypto';

export class AuthError extends Error {
  readonly code = 'UNAUTHENTICATED';
  constructor(message: string) { super(message); this.name = 'AuthError'; }
}

export interface OidcConfig { jwksUrl: string; issuer?: string; audience?: string; clockSkewSeconds?: number }

const ALGS: Record<string, { hash: string; kty: string; pss?: boolean; ec?: boolean }> = {
  RS256: { hash: 'sha256', kty: 'RSA' }, RS384: { hash: 'sha384', kty: 'RSA' }, RS512: { hash: 'sha512', kty: 'RSA' },
  PS256: { hash: 'sha256', kty: 'RSA', pss: true }, ES256: { hash: 'sha256', kty: 'EC', ec: true }, ES384: { hash: 'sha384', kty: 'EC', ec: true },
};
const TOKEN_BYTES_MAX = 8192;

function b64json(part: string, what: string): Record<string, unknown> {
  try {
    const v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch { throw new AuthError(`malformed token ${what}`); }
}

export class OidcVerifier {
  private keys = new Map<string, { key: KeyObject; kty: string }>();
  private fetchedAt = 0;
  constructor(private readonly config: OidcConfig) {}

  private async refresh(): Promise<void> {
    const res = await fetch(this.config.jwksUrl, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new AuthError(`JWKS fetch failed: HTTP ${res.status}`);
    const body = (await res.json()) as { keys?: Array<Record<string, unknown>> };
    const keys = new Map<string, { key: KeyObject; kty: string }>();
    for (const jwk of (body.keys ?? []).slice(0, 100)) {
      if (typeof jwk.kid !== 'string' || (jwk.use !== undefined && jwk.use !== 'sig')) continue;
      try { keys.set(jwk.kid, { key: createPublicKey({ key: jwk as never, format: 'jwk' }), kty: String(jwk.kty) }); } catch { /* unusable key */ }
    }
    this.keys = keys;
    this.fetchedAt = Date.now();
  }

  /** Verifies `Authorization: Bearer <jwt>`; resolves with the claims. */
  async verifyHeader(header: string | undefined): Promise<Record<string, unknown>> {
    if (!header || !/^Bearer [A-Za-z0-9_\-.]+$/.test(header)) throw new AuthError('missing bearer token');
    const token = header.slice(7);
    if (token.length > TOKEN_BYTES_MAX) throw new AuthError('token too long');
    const parts = token.split('.');
    if (parts.length !== 3) throw new AuthError('malformed token');
    const [h, p, s] = parts as [string, string, string];
    const head = b64json(h, 'header');
    const alg = typeof head.alg === 'string' ? ALGS[head.alg] : undefined;
    if (!alg) throw new AuthError('unsupported token algorithm');
    const kid = typeof head.kid === 'string' ? head.kid : '';
    if (!this.keys.has(kid) && Date.now() - this.fetchedAt > 30_000) await this.refresh();
    const k = this.keys.get(kid);
    if (!k || k.kty !== alg.kty) throw new AuthError('unknown signing key');
    const ok = verify(alg.hash, Buffer.from(`${h}.${p}`), {
      key: k.key,
      ...(alg.pss ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST } : {}),
      ...(alg.ec ? { dsaEncoding: 'ieee-p1363' as const } : {}),
    }, Buffer.from(s, 'base64url'));
    if (!ok) throw new AuthError('bad token signature');
    const claims = b64json(p, 'payload');
    const now = Math.floor(Date.now() / 1000);
    const skew = this.config.clockSkewSeconds ?? 30;
    if (typeof claims.exp !== 'number' || claims.exp + skew < now) throw new AuthError('token expired');
    if (typeof claims.nbf === 'number' && claims.nbf - skew > now) throw new AuthError('token not yet valid');
    if (this.config.issuer && claims.iss !== this.config.issuer) throw new AuthError('wrong token issuer');
    if (this.config.audience) {
      const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
      if (!aud.includes(this.config.audience)) throw new AuthError('wrong token audience');
    }
    return claims;
  }
}
