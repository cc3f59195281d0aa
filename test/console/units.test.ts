// The console's pure pieces: who gets which role, how a person is read from ID token claims, the
// decisions filters and their URL round trip, the console's config rules, and the age histogram.
import { describe, expect, it } from 'vitest';
import { missingRequiredClaim, personFromClaims, roleFor, type Person } from '../../server/src/console/access.js';
import { filtersQuery, parseFilters, toSearch } from '../../server/src/console/filters.js';
import { hostAllowed, safeNext } from '../../server/src/console/http.js';
import { parseConfig, ConfigError } from '../../server/src/config/load.js';
import { histogram } from '../../server/src/console/views/keys.js';
import { series } from '../../server/src/console/views/overview.js';

const access = { viewers: { groups: ['sec-view'], emails: ['Carol@Example.com'] }, operators: { groups: ['sec-ops'], emails: [] } };
const person = (p: Partial<Person>): Person => ({ id: 'x', email: undefined, name: undefined, groups: [], ...p });

describe('roles from groups and e-mail addresses', () => {
  it.each([
    ['an operators group member is an operator', person({ groups: ['staff', 'sec-ops'] }), { ok: true, role: 'operator' }],
    ['a member of both lists is an operator', person({ groups: ['sec-view', 'sec-ops'] }), { ok: true, role: 'operator' }],
    ['a viewers group member is a viewer', person({ groups: ['sec-view'] }), { ok: true, role: 'viewer' }],
    ['a listed e-mail address matches whatever its case', person({ email: 'carol@example.COM' }), { ok: true, role: 'viewer' }],
    ['anyone else is refused', person({ groups: ['staff'], email: 'dave@example.com' }), { ok: false, reason: 'not-allowed' }],
    ['a group name must match exactly', person({ groups: ['sec-ops-old', 'SEC-OPS'] }), { ok: false, reason: 'not-allowed' }],
  ])('%s', (_name, p, expected) => {
    expect(roleFor(p, access)).toEqual(expected);
  });

  it('reads groups and the e-mail address from the configured claims, and ignores an unverified address', () => {
    const opts = { emailClaim: 'email', groupsClaim: 'groups' };
    expect(personFromClaims({ sub: 's', iss: 'https://idp', email: 'a@example.com', email_verified: true, groups: ['g1', 2, 'g2'] }, opts)).toMatchObject({ id: 'a@example.com', groups: ['g1', 'g2'] });
    expect(personFromClaims({ sub: 's', iss: 'https://idp', email: 'a@example.com', email_verified: false }, opts)).toMatchObject({ id: 's@https://idp', email: undefined });
    expect(personFromClaims({ sub: 's', iss: 'https://idp', preferred_username: 'u@corp.example', roles: 'Console.Operator' }, { emailClaim: 'preferred_username', groupsClaim: 'roles' })).toMatchObject({
      email: 'u@corp.example',
      groups: ['Console.Operator'],
    });
  });
});

describe('required claims', () => {
  it.each([
    ['a Google Workspace account of the domain', { hd: 'example.com', email: 'a@example.com' }, undefined],
    ['a consumer Google account with the same address (no hd)', { email: 'a@example.com' }, 'hd'],
    ['another Workspace domain', { hd: 'example.com.attacker.example' }, 'hd'],
  ])('%s', (_name, claims, expected) => {
    expect(missingRequiredClaim(claims, { hd: 'example.com' })).toBe(expected);
  });
});

describe('decision filters in the URL', () => {
  it('give the same search after a round trip through the query string', () => {
    const query = 'outcome=deny&role=deploy&issuer=github&claim=repository_id%3D487920697&claim=ref%3Drefs%2Fheads%2Frelease%2F*&since=24h&event=all&q=ERR_POLICY&size=100&before=900';
    const { filters, problems } = parseFilters(Object.fromEntries([...new URLSearchParams(query).keys()].map((k) => [k, new URLSearchParams(query).getAll(k).length > 1 ? new URLSearchParams(query).getAll(k) : new URLSearchParams(query).get(k)])));
    expect(problems).toEqual([]);
    expect(filtersQuery(filters)).toBe(query);
    const now = new Date('2026-02-01T00:00:00Z');
    expect(toSearch(filters, now)).toEqual({
      decision: 'deny',
      role: 'deploy',
      issuer: 'github',
      claims: [
        { name: 'repository_id', value: '487920697' },
        { name: 'ref', value: 'refs/heads/release/*' },
      ],
      since: new Date('2026-01-31T00:00:00Z'),
      text: 'ERR_POLICY',
      beforeSeq: 900,
      limit: 100,
    });
  });

  it('report what does not parse instead of searching everything', () => {
    const { problems } = parseFilters({ outcome: 'maybe', claim: ['no-equals-sign', 'bad name=1'], since: 'yesterday' });
    expect(problems).toHaveLength(4);
  });

  it('default to exchanges, 50 a page, and leave the page cursor out of a shared link on request', () => {
    const { filters } = parseFilters({ after: '12' });
    expect(toSearch(filters, new Date())).toEqual({ event: 'exchange', afterSeq: 12, limit: 50 });
    expect(filtersQuery(filters, { withoutPage: true })).toBe('');
  });
});

describe('console configuration', () => {
  const base = `issuers: { gh: { preset: github-actions, audiences: [x] } }
roles: { r: { arn: "arn:aws:iam::123456789012:role/r", allow: [{ issuer: gh, claims: { repository_id: "1" } }] } }
`;
  const problems = (yaml: string) => {
    try {
      parseConfig(base + yaml);
      return [];
    } catch (err) {
      return (err as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
    }
  };
  const sso = 'sso: { issuer: "https://idp.example.com", client_id: c, client_secret_env: S }';

  it('accepts SSO on the admin listener with an https address and people to let in (no admin token needed)', () => {
    expect(problems(`admin: { enabled: true }\nconsole: { url: "https://credbroker-admin.example.com", ${sso}, operators: { groups: [sec] } }\n`)).toEqual([]);
  });

  it.each([
    ['without the admin listener', `console: { url: "https://a.example.com", ${sso}, operators: { groups: [sec] } }`, 'console.sso: the console is served on the admin listener'],
    ['without a url', `admin: { enabled: true }\nconsole: { ${sso}, operators: { groups: [sec] } }`, 'console.url: required with console.sso'],
    ['with plain http on a network address', `admin: { enabled: true }\nconsole: { url: "http://admin.example.com", ${sso}, operators: { groups: [sec] } }`, 'console.url: must use https'],
    ['with a path in the url', `admin: { enabled: true }\nconsole: { url: "https://a.example.com/admin", ${sso}, operators: { groups: [sec] } }`, 'console.url: must have no path'],
    ['with nobody allowed in', `admin: { enabled: true }\nconsole: { url: "https://a.example.com", ${sso} }`, 'console.operators: nobody could sign in'],
    [
      'with two client secrets',
      `admin: { enabled: true }\nconsole: { url: "https://a.example.com", sso: { issuer: "https://idp.example.com", client_id: c, client_secret_env: S, client_secret_file: /f }, operators: { groups: [sec] } }`,
      'console.sso: give the client secret in exactly one',
    ],
    [
      'with an http identity provider',
      `admin: { enabled: true }\nconsole: { url: "https://a.example.com", sso: { issuer: "http://idp.example.com", client_id: c, client_secret_env: S }, operators: { groups: [sec] } }`,
      'console.sso.issuer: must use https',
    ],
  ])('refuses SSO %s', (_name, yaml, expected) => {
    expect(problems(`${yaml}\n`).join('\n')).toContain(expected);
  });
});

describe('addresses', () => {
  it.each([
    ['/console/decisions?outcome=deny', '/console/decisions?outcome=deny'],
    ['//attacker.example/console', '/console/'],
    ['/console/\\attacker', '/console/'],
    ['https://attacker.example/console/', '/console/'],
    ['/v1/admin/audit', '/console/'],
  ])('after sign-in, %s goes to %s', (next, expected) => {
    expect(safeNext(next)).toBe(expected);
  });

  it.each([
    ['127.0.0.1:8081', undefined, true],
    ['localhost:8081', undefined, true],
    ['[::1]:8081', undefined, true],
    ['admin.example.com', 'https://admin.example.com', true],
    ['admin.example.com:8443', 'https://admin.example.com', false],
    ['attacker.example', 'https://admin.example.com', false],
    ['attacker.example', undefined, false],
    ['', undefined, false],
  ])('the host %s with console.url %s is allowed: %s', (host, url, expected) => {
    expect(hostAllowed(host, url)).toBe(expected);
  });
});

describe('charts', () => {
  it('counts active keys per age bucket', () => {
    expect(histogram([1, 29.9, 30, 89, 90, 179, 400])).toEqual([2, 1, 1, 2, 1]);
  });

  it('fills the minutes without records with zeros, oldest first, ending at the current minute', () => {
    const end = Date.UTC(2026, 0, 1, 12, 30, 40);
    const s = series([{ start: Date.UTC(2026, 0, 1, 12, 29), allow: 2, deny: 1, error: 0 }], end, 3);
    expect(s).toEqual({ start: Date.UTC(2026, 0, 1, 12, 28) / 1000, allow: [0, 2, 0], deny: [0, 1, 0], error: [0, 0, 0] });
  });
});
