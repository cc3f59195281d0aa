// A real OpenID Connect provider for the console's SSO tests: oidc-provider (a certified
// implementation) on loopback, authorization code flow with PKCE required, one confidential
// client, and people in two groups. Its built-in development sign-in page (any password; the
// login name picks the account) and consent page are what the browser goes through.
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import Provider from 'oidc-provider';
import { freePort } from '../support/moto.js';

export interface TestIdp {
  issuer: string;
  clientId: string;
  clientSecret: string;
  close(): Promise<void>;
}

/** login name → the claims the provider asserts (groups as Okta or Keycloak send them). */
export const PEOPLE: Record<string, { email: string; name: string; groups: string[] }> = {
  alice: { email: 'alice@example.com', name: 'Alice Operator', groups: ['security-operators', 'staff'] },
  bob: { email: 'bob@example.com', name: 'Bob Viewer', groups: ['security-viewers', 'staff'] },
  mallory: { email: 'mallory@example.com', name: 'Mallory', groups: ['staff'] },
};

export async function startIdp(redirectUri: string): Promise<TestIdp> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const clientId = 'credbroker-console';
  const clientSecret = randomBytes(24).toString('base64url');
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    pkce: { required: () => true },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    scopes: ['openid', 'email', 'profile', 'groups'],
    // Scope claims in the ID token itself (as Okta's groups claim or Entra's are configured).
    conformIdTokenClaims: false,
    cookies: { keys: [randomBytes(32).toString('hex')] },
    features: { devInteractions: { enabled: true } },
    async findAccount(_ctx, id) {
      const person = PEOPLE[id];
      if (!person) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, email: person.email, email_verified: true, name: person.name, groups: person.groups }) };
    },
  });
  const server: Server = await new Promise((resolve) => {
    const s = provider.listen(port, '127.0.0.1', () => resolve(s));
  });
  return {
    issuer,
    clientId,
    clientSecret,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
