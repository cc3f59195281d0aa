// GitHub Actions secrets API stand-in (docs.github.com/rest/actions/secrets): per repository,
// environment and organization a libsodium key pair generated at start; GET …/secrets/public-key
// returns {key_id, key}; PUT …/secrets/{name} takes {encrypted_value, key_id} and answers 201
// (created) or 204 (updated), 422 when the key id is stale or the value is not a sealed box for
// that key. The test holds the private keys and decrypts what was stored.
import sodium from 'libsodium-wrappers';
import { randomBytes } from 'node:crypto';
import { json, startStandIn, type StandIn } from './server.js';

export interface GithubSecret {
  encrypted_value: string;
  key_id: string;
  updated_at: string;
}

export interface GithubScope {
  keyId: string;
  publicKey: Uint8Array;
  privateKey: Uint8Array;
  secrets: Map<string, GithubSecret>;
}

export interface GithubApi extends StandIn {
  token: string;
  /** 'repo:owner/repo' | 'env:owner/repo/env' | 'org:org' */
  scopes: Map<string, GithubScope>;
  /** Decrypts a stored secret with the scope's private key (as only the test can). */
  decrypt(scope: string, name: string): string | undefined;
}

export async function startGithubApi(opts: { token?: string } = {}): Promise<GithubApi> {
  await sodium.ready;
  const token = opts.token ?? `ghp_test_${randomBytes(12).toString('hex')}`;
  const scopes = new Map<string, GithubScope>();
  const scope = (id: string): GithubScope => {
    let s = scopes.get(id);
    if (!s) {
      const kp = sodium.crypto_box_keypair();
      s = { keyId: String(Math.floor(Math.random() * 1e15)), publicKey: kp.publicKey, privateKey: kp.privateKey, secrets: new Map() };
      scopes.set(id, s);
    }
    return s;
  };
  const open = (s: GithubScope, b64: string): string | undefined => {
    try {
      const sealed = sodium.from_base64(b64, sodium.base64_variants.ORIGINAL);
      return sodium.to_string(sodium.crypto_box_seal_open(sealed, s.publicKey, s.privateKey));
    } catch {
      return undefined;
    }
  };

  const standIn = await startStandIn((req) => {
    const auth = req.headers.authorization ?? '';
    if (auth !== `token ${token}` && auth !== `Bearer ${token}`) return json(401, { message: 'Bad credentials' });
    const seg = req.segments;
    // /repos/{o}/{r}/actions/secrets/…  /repos/{o}/{r}/environments/{e}/secrets/…  /orgs/{org}/actions/secrets/…
    let id: string | undefined;
    let rest: string[] = [];
    if (seg[0] === 'repos' && seg[3] === 'actions' && seg[4] === 'secrets') [id, rest] = [`repo:${seg[1]}/${seg[2]}`, seg.slice(5)];
    else if (seg[0] === 'repos' && seg[3] === 'environments' && seg[5] === 'secrets') [id, rest] = [`env:${seg[1]}/${seg[2]}/${seg[4]}`, seg.slice(6)];
    else if (seg[0] === 'orgs' && seg[2] === 'actions' && seg[3] === 'secrets') [id, rest] = [`org:${seg[1]}`, seg.slice(4)];
    if (id === undefined || rest.length !== 1) return json(404, { message: 'Not Found' });
    const s = scope(id);
    if (rest[0] === 'public-key' && req.method === 'GET') {
      return json(200, { key_id: s.keyId, key: sodium.to_base64(s.publicKey, sodium.base64_variants.ORIGINAL) });
    }
    if (req.method === 'PUT') {
      // GitHub: alphanumerics and underscores, not starting with GITHUB_ or a digit.
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(rest[0]!) || /^GITHUB_/i.test(rest[0]!)) return json(422, { message: 'Invalid secret name' });
      const body = req.body as { encrypted_value?: unknown; key_id?: unknown; visibility?: unknown } | undefined;
      if (typeof body?.encrypted_value !== 'string' || typeof body.key_id !== 'string') return json(422, { message: 'Invalid request' });
      if (body.key_id !== s.keyId) return json(422, { message: 'Bad key_id' });
      if (open(s, body.encrypted_value) === undefined) return json(422, { message: 'Bad encrypted_value' });
      if (id.startsWith('org:') && !['all', 'private', 'selected'].includes(String(body.visibility))) return json(422, { message: 'visibility required' });
      const existed = s.secrets.has(rest[0]!);
      s.secrets.set(rest[0]!, { encrypted_value: body.encrypted_value, key_id: body.key_id, updated_at: new Date().toISOString() });
      return json(existed ? 204 : 201, existed ? undefined : {});
    }
    return json(404, { message: 'Not Found' });
  });

  return {
    ...standIn,
    token,
    scopes,
    decrypt(id, name) {
      const s = scopes.get(id);
      const secret = s?.secrets.get(name);
      return s && secret ? open(s, secret.encrypted_value) : undefined;
    },
  };
}
