// Verifies a CI job's OIDC token against the issuer allowlist. Every failure becomes a
// BrokerError: the public code is coarse (401 ERR_TOKEN_INVALID / ERR_TOKEN_EXPIRED), the
// precise reason is kept for the log and the audit record.
import { createHash } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, jwtVerify, errors as joseErrors, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import { BrokerError, type ReasonCode } from '../errors.js';
import type { IssuerConfig } from '../config/compile.js';
import { IssuerKeyCache, KeysUnavailableError, type KeyCacheEvents } from './key-cache.js';
import type { Network } from '../net/network.js';

export const MAX_TOKEN_LENGTH = 16 * 1024;

export interface VerifiedToken {
  issuer: IssuerConfig;
  claims: JWTPayload & Record<string, unknown>;
  header: ProtectedHeaderParameters;
  /** SHA-256 of the raw token, hex: what audit keeps instead of the token (the client can compute it too). */
  tokenHash: string;
  /**
   * SHA-256 of what the signature covers (`header.payload`), hex. Every spelling of a token that
   * verifies has the same signed content, so this — not the raw text — identifies it for replay.
   */
  signedHash: string;
}

const issuerFingerprint = (i: IssuerConfig): string => JSON.stringify({ ...i, preset: i.preset?.name });

export const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');

/** Media types a JWT may declare in `typ` (RFC 7519 §5.1); anything else (`at+jwt`…) is not an identity token. */
const ACCEPTED_TYP = new Set(['jwt', 'application/jwt']);

/**
 * Whether each segment is canonical base64url: no padding, no characters outside the alphabet, and
 * zero unused low bits in the last character. Decoders accept the other spellings, so without this
 * one token could be presented in many forms; providers only ever emit the canonical one.
 */
function canonicalSegments(token: string): boolean {
  const segments = token.split('.');
  if (segments.length !== 3) return false;
  // An empty signature (alg "none") is canonical here; the algorithm check refuses it by name.
  return segments.every((s) => /^[A-Za-z0-9_-]*$/.test(s) && Buffer.from(s, 'base64url').toString('base64url') === s);
}

const invalid = (reason: ReasonCode, detail: Record<string, unknown>, cause?: unknown) =>
  new BrokerError('ERR_TOKEN_INVALID', { reason, detail, cause });

export function mapJoseError(err: unknown, issuer: string | undefined): BrokerError {
  const detail = { issuer, jose_code: (err as { code?: string })?.code, error: err instanceof Error ? err.message : String(err) };
  if (err instanceof BrokerError) return err;
  if (err instanceof KeysUnavailableError) {
    return new BrokerError('ERR_NOT_READY', { reason: 'ERR_ISSUER_KEYS_UNAVAILABLE', detail, retryAfter: 5, cause: err });
  }
  if (err instanceof joseErrors.JWTExpired) {
    const tooOld = err.claim === 'iat';
    return new BrokerError('ERR_TOKEN_EXPIRED', { reason: tooOld ? 'ERR_TOKEN_TOO_OLD' : 'ERR_TOKEN_EXPIRED', detail, cause: err });
  }
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return invalid('ERR_TOKEN_CLAIMS_MISSING', { ...detail, claim: err.claim }, err);
    switch (err.claim) {
      case 'aud':
        return invalid('ERR_TOKEN_AUDIENCE', detail, err);
      case 'iss':
        return invalid('ERR_TOKEN_ISSUER_UNKNOWN', detail, err);
      case 'nbf':
        return invalid('ERR_TOKEN_NOT_YET_VALID', detail, err);
      default:
        return invalid('ERR_TOKEN_INVALID', { ...detail, claim: err.claim }, err);
    }
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return invalid('ERR_TOKEN_ALGORITHM', detail, err);
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return invalid('ERR_TOKEN_SIGNATURE', detail, err);
  if (err instanceof joseErrors.JWKSNoMatchingKey) return invalid('ERR_TOKEN_KID_UNKNOWN', detail, err);
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return invalid('ERR_TOKEN_MALFORMED', detail, err);
  return invalid('ERR_TOKEN_INVALID', detail, err);
}

export class TokenVerifier {
  readonly caches = new Map<string, IssuerKeyCache>();
  private readonly byUrl = new Map<string, IssuerConfig>();

  constructor(
    issuers: Iterable<IssuerConfig>,
    events: KeyCacheEvents = {},
    private readonly now: () => Date = () => new Date(),
    /** On reload: caches of issuers whose settings did not change are carried over, keys and all. */
    previous?: TokenVerifier,
    /** How discovery and JWKS are fetched (proxy, CAs); default: the environment's proxy, the system's CAs. */
    network?: Network,
  ) {
    for (const issuer of issuers) {
      this.byUrl.set(issuer.url, issuer);
      const old = previous?.caches.get(issuer.id);
      const reusable = old !== undefined && issuerFingerprint(old.issuer) === issuerFingerprint(issuer);
      this.caches.set(issuer.id, reusable ? old : new IssuerKeyCache(issuer, events, undefined, network));
    }
  }

  /** Stops the background refresh of caches that `next` does not carry over. */
  retire(next: TokenVerifier): void {
    for (const [id, cache] of this.caches) if (next.caches.get(id) !== cache) cache.stop();
  }

  /** Prefetch every issuer's keys, waiting at most `waitMs`; then refresh in the background. */
  async start(waitMs: number): Promise<void> {
    // Caches carried over from a previous verifier already have keys and a refresh timer.
    const all = Promise.all([...this.caches.values()].filter((c) => !c.loaded).map((c) => c.refresh('start')));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
    for (const cache of this.caches.values()) cache.startBackgroundRefresh();
  }

  stop(): void {
    for (const cache of this.caches.values()) cache.stop();
  }

  /** Ready when every issuer has a key set. */
  get ready(): boolean {
    return [...this.caches.values()].every((c) => c.loaded);
  }

  async verify(token: string): Promise<VerifiedToken> {
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw invalid('ERR_TOKEN_MALFORMED', { length: token.length });
    if (!canonicalSegments(token)) throw invalid('ERR_TOKEN_MALFORMED', { error: 'not three canonical base64url segments' });
    let header: ProtectedHeaderParameters;
    let unverified: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      unverified = decodeJwt(token);
    } catch (err) {
      throw invalid('ERR_TOKEN_MALFORMED', { error: err instanceof Error ? err.message : String(err) }, err);
    }
    const issuer = typeof unverified.iss === 'string' ? this.byUrl.get(unverified.iss) : undefined;
    if (!issuer) throw invalid('ERR_TOKEN_ISSUER_UNKNOWN', { iss: String(unverified.iss).slice(0, 200) });
    // Fail closed on the algorithm before any key is looked up (`none`, HS* with a public key…).
    if (typeof header.alg !== 'string' || !(issuer.algorithms as string[]).includes(header.alg)) {
      throw invalid('ERR_TOKEN_ALGORITHM', { issuer: issuer.id, alg: String(header.alg).slice(0, 20) });
    }
    const cache = this.caches.get(issuer.id)!;
    try {
      const { payload, protectedHeader } = await jwtVerify(token, (h, t) => cache.resolve(h, t), {
        issuer: issuer.url,
        audience: issuer.audiences,
        algorithms: issuer.algorithms,
        clockTolerance: issuer.clockSkewSeconds,
        maxTokenAge: issuer.maxTokenAgeSeconds,
        requiredClaims: ['iat', 'exp', ...issuer.requiredClaims],
        currentDate: this.now(),
      });
      checkTokenShape(protectedHeader, payload, issuer);
      const signedContent = token.slice(0, token.lastIndexOf('.'));
      return { issuer, claims: payload as VerifiedToken['claims'], header: protectedHeader, tokenHash: hashToken(token), signedHash: hashToken(signedContent) };
    } catch (err) {
      throw mapJoseError(err, issuer.id);
    }
  }
}

/** What jose leaves to the caller: the token's type, a single audience, a string subject. */
function checkTokenShape(header: ProtectedHeaderParameters, claims: JWTPayload, issuer: IssuerConfig): void {
  if (header.typ !== undefined && (typeof header.typ !== 'string' || !ACCEPTED_TYP.has(header.typ.toLowerCase()))) {
    throw invalid('ERR_TOKEN_TYPE', { issuer: issuer.id, typ: String(header.typ).slice(0, 40) });
  }
  if (Array.isArray(claims.aud) && claims.aud.length > 1 && !issuer.allowMultipleAudiences) {
    throw invalid('ERR_TOKEN_AUDIENCE', { issuer: issuer.id, error: `token has ${claims.aud.length} audiences; this issuer allows one` });
  }
  if (typeof claims.sub !== 'string' || claims.sub.length === 0) {
    throw invalid(claims.sub === undefined ? 'ERR_TOKEN_CLAIMS_MISSING' : 'ERR_TOKEN_CLAIM_TYPE', { issuer: issuer.id, claim: 'sub' });
  }
}
