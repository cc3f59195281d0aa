// server.tls and admin.client_ca_file in the config: what is accepted, refused and warned about.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../server/src/config/load.js';
import { formatProblem } from '../../server/src/core/problems.js';

const HASH = 'a'.repeat(64);
const TLS = { cert_file: '/etc/credbroker/tls/tls.crt', key_file: '/etc/credbroker/tls/tls.key' };
const admin = (extra: Record<string, unknown>) => ({ enabled: true, tokens: [{ name: 'a', sha256: HASH, scopes: ['read'] }], ...extra });

function load(sections: Record<string, unknown>): { problems: string[]; warnings: string[]; tls?: unknown } {
  const text = JSON.stringify({
    issuers: { gh: { preset: 'github-actions', audiences: ['https://credbroker.example.com'] } },
    roles: { deploy: { arn: 'arn:aws:iam::111122223333:role/deploy', allow: [{ issuer: 'gh', claims: { repository_owner_id: '9919', repository_id: '1' } }] } },
    ...sections,
  });
  try {
    const { config, warnings } = parseConfig(text);
    return { problems: [], warnings: warnings.map(formatProblem), tls: config.server.tls };
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return { problems: e.problems.map(formatProblem), warnings: [] };
  }
}

describe('server.tls', () => {
  it('defaults the minimum version to TLS 1.2', () => {
    expect(load({ server: { tls: TLS } })).toEqual({ problems: [], warnings: [], tls: { ...TLS, min_version: 'TLSv1.2' } });
  });

  it('accepts TLS 1.3 as the minimum, and nothing older than 1.2', () => {
    expect(load({ server: { tls: { ...TLS, min_version: 'TLSv1.3' } } }).problems).toEqual([]);
    expect(load({ server: { tls: { ...TLS, min_version: 'TLSv1.1' } } }).problems).toEqual([expect.stringMatching(/^server\.tls\.min_version: /)]);
  });

  it('needs both files', () => {
    expect(load({ server: { tls: { cert_file: TLS.cert_file } } }).problems).toEqual([expect.stringMatching(/^server\.tls\.key_file: /)]);
  });

  it('lets the admin listener bind beyond loopback, without a warning: it is HTTPS', () => {
    expect(load({ server: { tls: TLS }, admin: admin({ host: '0.0.0.0' }) })).toMatchObject({ problems: [], warnings: [] });
  });

  it('still refuses a non-loopback admin listener without TLS (and without the explicit opt-in)', () => {
    expect(load({ admin: admin({ host: '0.0.0.0' }) }).problems).toEqual([expect.stringMatching(/^admin\.host: "0\.0\.0\.0" is not a loopback address.*configure server\.tls/)]);
  });

  it('refuses client certificates for the admin listener without TLS', () => {
    expect(load({ admin: admin({ client_ca_file: '/etc/credbroker/admin-ca.pem' }) }).problems).toEqual([
      'admin.client_ca_file: client certificates need TLS: set server.tls too',
    ]);
    expect(load({ server: { tls: TLS }, admin: admin({ client_ca_file: '/etc/credbroker/admin-ca.pem' }) }).problems).toEqual([]);
  });
});
