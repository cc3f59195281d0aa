// Single sign-on with OpenID Connect through openid-client: authorization code flow with PKCE
// (S256), state and nonce. The identity provider's metadata is discovered once per SSO setting
// and cached; the client secret is read from its file or variable when the client is built (never
// logged). Only the ID token's claims (and, when asked, userinfo's) are kept; the tokens are not.
import { readFileSync } from 'node:fs';
import * as oidc from 'openid-client';
import type { SsoSettings } from './settings.js';

export interface SsoClient {
  /** Where to send the browser, and the secrets to keep until the callback. */
  start(redirectUri: string): Promise<{ url: string; state: string; nonce: string; verifier: string }>;
  /** Completes the sign-in from the callback URL; returns the verified claims. */
  finish(callbackUrl: URL, pending: { state: string; nonce: string; verifier: string }): Promise<Record<string, unknown>>;
}

export class SsoError extends Error {
  override readonly name = 'SsoError';
}

function clientSecret(s: SsoSettings, env: NodeJS.ProcessEnv): string {
  if (s.client_secret_file !== undefined) {
    try {
      return readFileSync(s.client_secret_file, 'utf8').trim();
    } catch (err) {
      throw new SsoError(`cannot read console.sso.client_secret_file: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  const v = s.client_secret_env === undefined ? undefined : env[s.client_secret_env];
  if (!v) throw new SsoError(`the environment variable ${s.client_secret_env ?? '(none)'} named by console.sso.client_secret_env is not set`);
  return v.trim();
}

/**
 * One client per SSO setting: rebuilt when a reload changes console.sso. `fetch` is the broker's
 * outbound network (egress proxy, CA bundles), so the identity provider is reached like every other
 * outside service.
 */
export function ssoClients(env: NodeJS.ProcessEnv = process.env, fetchImpl?: typeof fetch): (settings: SsoSettings) => SsoClient {
  let cached: { key: string; client: Promise<oidc.Configuration> } | undefined;
  const configuration = (s: SsoSettings): Promise<oidc.Configuration> => {
    const key = JSON.stringify(s);
    if (cached?.key !== key) {
      const secret = clientSecret(s, env);
      const client = oidc
        .discovery(new URL(s.issuer), s.client_id, { client_secret: secret }, oidc.ClientSecretBasic(secret), {
          timeout: 10,
          ...(s.allow_insecure_http ? { execute: [oidc.allowInsecureRequests] } : {}),
          ...(fetchImpl ? { [oidc.customFetch]: fetchImpl as oidc.CustomFetch } : {}),
        })
        .then((config) => {
          // Token and userinfo requests after discovery go the same way.
          if (fetchImpl) config[oidc.customFetch] = fetchImpl as oidc.CustomFetch;
          return config;
        });
      // A failed discovery is retried at the next sign-in, not cached.
      client.catch(() => {
        if (cached?.key === key) cached = undefined;
      });
      cached = { key, client };
    }
    return cached.client;
  };
  return (s) => ({
    async start(redirectUri) {
      const config = await configuration(s);
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: s.scopes.join(' '),
        response_type: 'code',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        nonce,
      });
      return { url: url.href, state, nonce, verifier };
    },
    async finish(callbackUrl, pending) {
      const config = await configuration(s);
      const tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: pending.verifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
      const claims = tokens.claims();
      if (!claims) throw new SsoError('the identity provider returned no ID token');
      let all: Record<string, unknown> = { ...claims };
      if (s.userinfo) {
        const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
        all = { ...info, ...claims };
      }
      return all;
    },
  });
}
