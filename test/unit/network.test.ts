// The proxy decision, as curl makes it (so the broker and both clients agree): which variable wins,
// which NO_PROXY entries match which hosts, which proxy URLs are refused; and what `config
// validate` says about a network section, a CA file and the environment's proxy variables.
import { describe, expect, it } from 'vitest';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { bypassesProxy, noProxyEntryProblem, parseNoProxy, parseProxyUrl, proxyFor, proxyPlan } from '../../server/src/net/proxy.js';
import { describeNetworkError } from '../../server/src/net/errors.js';
import { parseConfig, ConfigError } from '../../server/src/config/load.js';
import { makeCa } from '../support/certs.js';

describe('NO_PROXY matching', () => {
  const cases: Array<[string, string, string, boolean]> = [
    ['an exact host', 'sts.amazonaws.com', 'sts.amazonaws.com', true],
    ['a subdomain of a host entry', 'amazonaws.com', 'sts.us-east-1.amazonaws.com', true],
    ['a subdomain of a leading-dot entry', '.corp.example', 'gitlab.corp.example', true],
    ['the domain itself, for a leading-dot entry', '.corp.example', 'corp.example', true],
    ['not a name that merely ends the same', 'example.com', 'notexample.com', false],
    ['case-insensitively', 'GitLab.Corp.Example', 'gitlab.corp.example', true],
    ['with a trailing dot on either side', 'corp.example.', 'api.corp.example.', true],
    ['an IPv4 address exactly', '10.1.2.3', '10.1.2.3', true],
    ['an IPv4 address inside a CIDR', '10.0.0.0/8', '10.200.3.4', true],
    ['not an IPv4 address outside the CIDR', '10.0.0.0/8', '11.0.0.1', false],
    ['an IPv6 address inside a CIDR', 'fd00::/8', '[fd12:3456::1]', true],
    ['the IPv6 loopback', '::1', '[::1]', true],
    ['not an IP by a host name entry', 'localhost', '127.0.0.1', false],
    ['not a host name by an IP entry', '127.0.0.1', 'localhost', false],
    ['every host with a lone *', '*', 'anything.example', true],
    ['no host with * inside a list (as curl)', 'a.example,*', 'b.example', false],
    ['not with a port in the entry (ports are not part of an entry)', 'gitlab.corp.example:443', 'gitlab.corp.example', false],
    ['entries separated by commas and spaces', ' a.example ,  b.example c.example', 'c.example', true],
  ];
  it.each(cases)('matches %s', (_name, entries, host, expected) => {
    expect(bypassesProxy(parseNoProxy(entries), host)).toBe(expected);
  });
});

describe('which proxy variable wins', () => {
  const plan = (env: Record<string, string>, settings = {}) => proxyPlan({ useEnv: true, ...settings }, env).plan!;
  const https = new URL('https://sts.us-east-1.amazonaws.com/');
  const http = new URL('http://127.0.0.1:5000/');

  it('lower case before upper case, as curl', () => {
    const p = plan({ https_proxy: 'http://lower:3128', HTTPS_PROXY: 'http://upper:3128' });
    expect(proxyFor(p, https)?.display).toBe('http://lower:3128');
    expect(p.source.https).toBe('https_proxy');
  });

  it('HTTPS_PROXY for https:// targets and HTTP_PROXY for http:// ones, without falling back to each other', () => {
    expect(proxyFor(plan({ HTTP_PROXY: 'http://p:1' }), https)).toBeUndefined();
    expect(proxyFor(plan({ HTTPS_PROXY: 'http://p:1' }), http)).toBeUndefined();
    expect(proxyFor(plan({ HTTP_PROXY: 'http://p:1' }), http)?.display).toBe('http://p:1');
  });

  it('network.proxy and network.no_proxy over the environment; use_env_proxy: false ignores it', () => {
    const p = plan({ HTTPS_PROXY: 'http://env:1', NO_PROXY: 'amazonaws.com' }, { proxy: 'http://config:2', noProxy: [] });
    expect(proxyFor(p, https)?.display).toBe('http://config:2');
    expect(proxyFor(plan({ HTTPS_PROXY: 'http://env:1' }, { useEnv: false }), https)).toBeUndefined();
    // A config proxy with the environment's NO_PROXY: each setting is taken where it is given.
    expect(proxyFor(plan({ NO_PROXY: 'amazonaws.com' }, { proxy: 'http://config:2' }), https)).toBeUndefined();
  });

  it('an empty variable counts as unset, and ALL_PROXY is not read', () => {
    expect(proxyFor(plan({ https_proxy: '', HTTPS_PROXY: 'http://upper:1' }), https)?.display).toBe('http://upper:1');
    expect(proxyFor(plan({ ALL_PROXY: 'http://all:1', all_proxy: 'http://all:1' }), https)).toBeUndefined();
  });

  it('refuses a malformed proxy variable instead of going direct', () => {
    expect(proxyPlan({ useEnv: true }, { HTTPS_PROXY: 'socks5://p:1080' }).problems).toEqual([
      { path: 'HTTPS_PROXY', message: 'proxy URL scheme socks5 is not supported (http:// or https:// proxies only)' },
    ]);
  });
});

describe('proxy URLs', () => {
  it.each([
    ['host:port, as curl takes it', 'proxy.corp:3128', 'http://proxy.corp:3128'],
    ['an https:// proxy', 'https://proxy.corp', 'https://proxy.corp:443'],
    ['credentials, never shown', 'http://user:p%40ss@proxy.corp:8080', 'http://proxy.corp:8080'],
  ])('accepts %s', (_n, text, display) => {
    const p = parseProxyUrl(text);
    expect(typeof p === 'string' ? p : p.display).toBe(display);
  });

  it('turns credentials into a Proxy-Authorization value, percent-decoded', () => {
    const p = parseProxyUrl('http://user:p%40ss@proxy.corp:8080');
    expect(typeof p !== 'string' && p.authorization).toBe(`Basic ${Buffer.from('user:p@ss').toString('base64')}`);
  });

  it.each([
    ['a path', 'http://proxy.corp:3128/path', 'must be scheme://[user:password@]host:port, without a path, query or fragment'],
    ['a SOCKS proxy', 'socks5://proxy.corp:1080', 'scheme socks5 is not supported (http:// or https:// proxies only)'],
    ['garbage', 'http://', 'not a URL (expected http://host:port or https://host:port)'],
  ])('refuses %s', (_n, text, why) => {
    expect(parseProxyUrl(text)).toBe(why);
  });

  it.each([
    ['a port', 'gitlab.corp:443'],
    ['a wildcard', '*.corp.example'],
    ['a bad CIDR', '10.0.0.0/33'],
  ])('says a no_proxy entry with %s can never match', (_n, entry) => {
    expect(noProxyEntryProblem(entry)).toBeDefined();
  });
});

describe('config validate: the network section', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-net-'));
  const config = (network: Record<string, unknown>, issuer: Record<string, unknown> = {}) =>
    JSON.stringify({ network, issuers: { gl: { url: 'https://gitlab.corp.example', audiences: ['credbroker'], ...issuer } }, roles: {} });
  const problems = (text: string, env?: NodeJS.ProcessEnv): string[] => {
    try {
      parseConfig(text, 'test', env);
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
      throw err;
    }
  };

  it('reports every problem at once: proxy URL, no_proxy entries, CA files, and a ca_file_only without a file', () => {
    const notPem = path.join(dir, 'not.pem');
    writeFileSync(notPem, 'hello\n');
    expect(problems(config({ proxy: 'ftp://proxy:21', no_proxy: ['ok.example', 'gitlab:443'], ca_file: path.join(dir, 'missing.pem') }, { ca_file: notPem }))).toEqual([
      'network.proxy: proxy URL scheme ftp is not supported (http:// or https:// proxies only)',
      'network.no_proxy[1]: "gitlab:443": entries name hosts, domains or CIDRs, without a port',
      `network.ca_file: cannot read ${path.join(dir, 'missing.pem')} (ENOENT)`,
      `issuers.gl.ca_file: ${notPem}: no PEM certificate ("-----BEGIN CERTIFICATE-----") in it`,
    ]);
    expect(problems(config({ ca_file_only: true }))).toEqual(['network.ca_file_only: needs ca_file: with neither the system roots nor a CA file nothing would be trusted']);
  });

  it('checks the proxy variables of the environment it is loaded in, unless network.proxy is set', () => {
    expect(problems(config({}), { HTTPS_PROXY: 'http://proxy:3128/x' })).toEqual([
      'HTTPS_PROXY (environment): proxy URL must be scheme://[user:password@]host:port, without a path, query or fragment',
    ]);
    expect(problems(config({ proxy: 'http://proxy:3128' }), { HTTPS_PROXY: 'http://proxy:3128/x' })).toEqual([]);
  });

  it('reads a CA bundle into the compiled config, and adds it to the roots Node trusts by default', async () => {
    const ca = makeCa('credbroker-unit-ca');
    const { config: c } = parseConfig(config({ ca_file: ca.cert }, { ca_file: ca.cert, ca_file_only: true }), 'test', {});
    expect(c.network.caCerts).toHaveLength(1);
    expect(c.issuers.get('gl')!.trust).toEqual({ caCerts: c.network.caCerts, only: true });
    expect(tls.rootCertificates.length).toBeGreaterThan(50); // what "added to the system roots" adds to
  });
});

describe('network errors in words', () => {
  const err = (code: string, message = code) => Object.assign(new Error(message), { code });
  const wrapped = (cause: Error) => new TypeError('fetch failed', { cause });
  it.each([
    ['an unknown CA', wrapped(err('UNABLE_TO_VERIFY_LEAF_SIGNATURE')), 'TLS: the certificate of idp.corp:443 is signed by an unknown certificate authority (UNABLE_TO_VERIFY_LEAF_SIGNATURE): add the CA that signed it with ca_file'],
    ['an expired certificate', wrapped(err('CERT_HAS_EXPIRED')), 'TLS: the certificate of idp.corp:443 has expired (CERT_HAS_EXPIRED)'],
    ['a name mismatch', wrapped(err('ERR_TLS_CERT_ALTNAME_INVALID')), 'TLS: the certificate of idp.corp:443 does not name this host (ERR_TLS_CERT_ALTNAME_INVALID)'],
    ['a refused connection', wrapped(err('ECONNREFUSED')), 'connection refused (idp.corp:443, ECONNREFUSED)'],
    ['a refused tunnel (undici)', wrapped(new Error('Proxy response (407) !== 200 when HTTP Tunneling')), 'the proxy refused the tunnel to idp.corp:443: HTTP 407 (proxy authentication required: check the credentials in the proxy URL)'],
  ])('names %s with the host, never "fetch failed"', (_n, e, text) => {
    expect(describeNetworkError(e, 'https://idp.corp/.well-known/openid-configuration')).toBe(text);
  });
});
