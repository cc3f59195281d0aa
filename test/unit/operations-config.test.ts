// The operational settings that guard the broker's own trust boundaries: the audit HMAC key
// (required with the store sink unless explicitly waived), the admin listener's address, admin
// token scopes, and the metrics listener. Each case names the problem or warning, with its path.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../server/src/config/load.js';
import { isLoopbackHost } from '../../server/src/admin/listener.js';
import { authenticateAdmin, effectiveScopes, hashAdminToken } from '../../server/src/admin/auth.js';
import { formatProblem } from '../../server/src/core/problems.js';

const HASH = 'a'.repeat(64);

function load(sections: Record<string, unknown>): { problems: string[]; warnings: string[] } {
  const text = JSON.stringify({
    issuers: { gh: { preset: 'github-actions', audiences: ['https://credbroker.example.com'] } },
    roles: { deploy: { arn: 'arn:aws:iam::111122223333:role/deploy', allow: [{ issuer: 'gh', claims: { repository_owner_id: '9919', repository_id: '1' } }] } },
    ...sections,
  });
  try {
    return { problems: [], warnings: parseConfig(text).warnings.map(formatProblem) };
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return { problems: e.problems.map(formatProblem), warnings: [] };
  }
}

type Case = [name: string, sections: Record<string, unknown>, expected: { problems?: RegExp[]; warnings?: RegExp[] }];

describe('operational settings', () => {
  const cases: Case[] = [
    ['accepts the defaults: stdout audit, no admin, metrics on loopback', {}, {}],
    ['refuses the store sink without an HMAC key', { audit: { sink: 'store' } }, { problems: [/^audit\.hmac_key_file: audit\.sink "store" needs an HMAC key/] }],
    ['accepts the store sink with a key file', { audit: { sink: 'store', hmac_key_file: '/run/secrets/k' } }, {}],
    ['accepts the store sink with a key in an environment variable', { audit: { sink: 'store', hmac_key_env: 'AUDIT_KEY' } }, {}],
    ['accepts an unkeyed store sink only when waived, with a warning', { audit: { sink: 'store', allow_unkeyed_chain: true } }, { warnings: [/^audit\.allow_unkeyed_chain: the audit chain is unkeyed/] }],
    ['refuses a key from both a file and a variable', { audit: { sink: 'store', hmac_key_file: '/k', hmac_key_env: 'K' } }, { problems: [/^audit\.hmac_key_env: give hmac_key_file or hmac_key_env, not both/] }],
    ['refuses a retired key without a source', { audit: { sink: 'store', hmac_key_env: 'K', previous_hmac_keys: [{ id: 'old' }] } }, { problems: [/^audit\.previous_hmac_keys\[0\]: give file or env/] }],
    ['refuses retired keys without a current key', { audit: { sink: 'stdout', previous_hmac_keys: [{ env: 'OLD' }] } }, { problems: [/^audit\.previous_hmac_keys: retired keys need a current key/] }],
    ['refuses an environment variable name that is not one', { audit: { sink: 'store', hmac_key_env: 'NOT A NAME' } }, { problems: [/^audit\.hmac_key_env: /] }],
    ['refuses a checkpoint file sink without a path', { audit: { sink: 'store', hmac_key_env: 'K', checkpoints: { sink: 'file' } } }, { problems: [/^audit\.checkpoints\.path: required/] }],
    ['refuses a checkpoint interval under 5 s', { audit: { sink: 'store', hmac_key_env: 'K', checkpoints: { interval_seconds: 1 } } }, { problems: [/^audit\.checkpoints\.interval_seconds: /] }],
    ['refuses an admin listener on a public address', { admin: { enabled: true, host: '0.0.0.0', tokens: [{ name: 'a', sha256: HASH, scopes: ['read'] }] } }, { problems: [/^admin\.host: "0\.0\.0\.0" is not a loopback address/] }],
    ['refuses an admin listener on a host name other than localhost', { admin: { enabled: true, host: 'admin.internal', tokens: [{ name: 'a', sha256: HASH, scopes: ['read'] }] } }, { problems: [/^admin\.host: "admin\.internal" is not a loopback address/] }],
    [
      'accepts a public admin address with the explicit opt-in, with a warning',
      { admin: { enabled: true, host: '0.0.0.0', allow_insecure_non_loopback: true, tokens: [{ name: 'a', sha256: HASH, scopes: ['read'] }] } },
      { warnings: [/^admin\.host: the admin API listens on a non-loopback address over plain HTTP/] },
    ],
    ['does not check the address of a disabled admin listener', { admin: { enabled: false, host: '0.0.0.0' } }, {}],
    ['warns that a token without scopes can only read', { admin: { enabled: true, tokens: [{ name: 'bob', sha256: HASH }] } }, { warnings: [/^admin\.tokens\[0\]\.scopes: not set: "bob" can only read/] }],
    ['refuses an unknown scope', { admin: { enabled: true, tokens: [{ name: 'bob', sha256: HASH, scopes: ['admin'] }] } }, { problems: [/^admin\.tokens\[0\]\.scopes\[0\]: /] }],
    ['refuses the metrics listener on the public port', { server: { port: 9000 }, metrics: { port: 9000 } }, { problems: [/^metrics\.port: must differ from server\.port/] }],
    ['refuses the metrics listener on the admin port', { admin: { enabled: true, port: 9001, tokens: [{ name: 'a', sha256: HASH, scopes: ['read'] }] }, metrics: { port: 9001 } }, { problems: [/^metrics\.port: must differ from admin\.port/] }],
    ['warns about metrics on a public address', { metrics: { host: '0.0.0.0' } }, { warnings: [/^metrics\.host: the metrics listener has no authentication/] }],
    ['accepts metrics disabled on any port', { server: { port: 9000 }, metrics: { enabled: false, port: 9000 } }, {}],
  ];
  it.each(cases)('%s', (_name, sections, expected) => {
    const { problems, warnings } = load(sections);
    expect(problems).toEqual((expected.problems ?? []).map((re) => expect.stringMatching(re)));
    expect(warnings).toEqual((expected.warnings ?? []).map((re) => expect.stringMatching(re)));
  });
});

describe('loopback addresses', () => {
  const cases: Array<[host: string, loopback: boolean]> = [
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['localhost', true],
    ['LOCALHOST', true],
    ['::1', true],
    ['[::1]', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::ffff:127.0.0.1', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.0.0.5', false],
    ['128.0.0.1', false],
    ['127.0.0.1.attacker.example', false],
    ['localhost.attacker.example', false],
    ['::ffff:10.0.0.1', false],
    ['', false],
  ];
  it.each(cases)('%s is loopback: %s', (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });
});

describe('admin token scopes', () => {
  const token = 'a-token-for-the-test';
  const cases: Array<[name: string, scopes: Array<'read' | 'operate'> | undefined, expected: string[]]> = [
    ['a token without scopes can only read', undefined, ['read']],
    ['a read token can only read', ['read'], ['read']],
    ['an operate token can also read', ['operate'], ['operate', 'read']],
    ['both scopes give both', ['read', 'operate'], ['operate', 'read']],
  ];
  it.each(cases)('%s', (_name, scopes, expected) => {
    expect([...effectiveScopes(scopes)].sort()).toEqual(expected);
    const auth = authenticateAdmin(`Bearer ${token}`, [{ name: 'x', sha256: hashAdminToken(token), ...(scopes ? { scopes } : {}) }]);
    expect(auth.ok && [...auth.scopes].sort()).toEqual(expected);
  });

  it('says why authentication failed, without echoing anything presented', () => {
    const tokens = [{ name: 'x', sha256: hashAdminToken(token) }];
    expect(authenticateAdmin(undefined, tokens)).toEqual({ ok: false, reason: 'missing' });
    expect(authenticateAdmin(`Basic ${token}`, tokens)).toEqual({ ok: false, reason: 'not-bearer' });
    expect(authenticateAdmin(`Bearer ${token}x`, tokens)).toEqual({ ok: false, reason: 'unknown-token' });
  });
});
