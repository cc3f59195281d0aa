// A real OIDC issuer over HTTP on loopback: discovery + JWKS, keys generated at start, tokens
// signed with jose. Tests can rotate keys, take the JWKS endpoint down, and count fetches.
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type JWK, type JWTPayload, type CryptoKey } from 'jose';

export interface IssuerKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export interface SignOptions {
  /** Override or drop header fields (e.g. kid) — for hostile-token tests. */
  kid?: string | null;
  key?: IssuerKey;
  /** The `typ` header: default "JWT"; null leaves it out. */
  typ?: string | null;
  /** Claims set verbatim; defaults fill iss/aud/iat/nbf/exp/jti unless given (null removes). */
  lifetimeSeconds?: number;
}

export interface TestIssuer {
  url: string;
  keys: IssuerKey[];
  jwksFetches: number;
  discoveryFetches: number;
  /** When true, discovery and JWKS answer 503. */
  down: boolean;
  /** Optional artificial delay for JWKS responses (ms). */
  jwksDelayMs: number;
  /** Bytes of padding added to the JWKS document (size-cap tests). */
  jwksPaddingBytes: number;
  /** Overrides the `issuer` field of the discovery document (mismatch tests). */
  discoveryIssuerOverride?: string;
  sign(claims: Record<string, unknown>, opts?: SignOptions): Promise<string>;
  /** Adds a new key and publishes it; the old ones stay published unless `retire` is set. */
  rotate(opts?: { alg?: 'RS256' | 'ES256'; retire?: boolean }): Promise<IssuerKey>;
  /** A key that is never published (a "key of another issuer"). */
  unpublishedKey(alg?: 'RS256' | 'ES256'): Promise<IssuerKey>;
  close(): Promise<void>;
}

export async function makeKey(alg: 'RS256' | 'ES256' = 'RS256'): Promise<IssuerKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = randomUUID();
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicJwk };
}

/**
 * `tls`: serve HTTPS with this certificate and key (PEM files, e.g. from test/support/certs.ts).
 * `host`: the loopback address to listen on and name in the URL (default 127.0.0.1; 127.0.0.2 is
 * another host as far as NO_PROXY is concerned).
 */
export async function startIssuer(opts: { path?: string; tls?: { cert: string; key: string }; host?: string } = {}): Promise<TestIssuer> {
  const basePath = opts.path ?? '';
  const state = {
    keys: [await makeKey('RS256')],
  };
  const issuer: TestIssuer = {
    url: '',
    get keys() {
      return state.keys;
    },
    jwksFetches: 0,
    discoveryFetches: 0,
    down: false,
    jwksDelayMs: 0,
    jwksPaddingBytes: 0,
    async sign(claims, signOpts = {}) {
      const key = signOpts.key ?? state.keys[state.keys.length - 1]!;
      const now = Math.floor(Date.now() / 1000);
      const payload: JWTPayload = {
        iss: issuer.url,
        iat: now,
        nbf: now - 5,
        exp: now + (signOpts.lifetimeSeconds ?? 300),
        jti: randomUUID(),
        ...claims,
      };
      for (const [k, v] of Object.entries(payload)) if (v === null && k !== 'build_tag') delete payload[k];
      const header: { alg: string; kid?: string; typ?: string } = { alg: key.alg };
      if (signOpts.typ !== null) header.typ = signOpts.typ ?? 'JWT';
      if (signOpts.kid !== null) header.kid = signOpts.kid ?? key.kid;
      return new SignJWT(payload).setProtectedHeader(header).sign(key.privateKey);
    },
    async rotate(rotateOpts = {}) {
      const key = await makeKey(rotateOpts.alg ?? 'RS256');
      state.keys = rotateOpts.retire ? [key] : [...state.keys, key];
      return key;
    },
    async unpublishedKey(alg = 'RS256') {
      return makeKey(alg);
    },
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const handler: http.RequestListener = (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (issuer.down) return send(503, { error: 'down' });
    if (url.pathname === `${basePath}/.well-known/openid-configuration`) {
      issuer.discoveryFetches += 1;
      return send(200, {
        issuer: issuer.discoveryIssuerOverride ?? issuer.url,
        jwks_uri: `${issuer.url}/.well-known/jwks`,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256', 'ES256'],
      });
    }
    if (url.pathname === `${basePath}/.well-known/jwks`) {
      issuer.jwksFetches += 1;
      const body: Record<string, unknown> = { keys: state.keys.map((k) => k.publicJwk) };
      if (issuer.jwksPaddingBytes > 0) body.padding = 'x'.repeat(issuer.jwksPaddingBytes);
      if (issuer.jwksDelayMs > 0) {
        setTimeout(() => send(200, body), issuer.jwksDelayMs);
        return;
      }
      return send(200, body);
    }
    send(404, { error: 'not found' });
  };
  const server = opts.tls ? https.createServer({ cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) }, handler) : http.createServer(handler);
  server.keepAliveTimeout = 1000;
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
  const { port } = server.address() as AddressInfo;
  issuer.url = `${opts.tls ? 'https' : 'http'}://${host}:${port}${basePath}`;
  return issuer;
}
