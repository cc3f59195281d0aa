// Both clients behind an egress proxy: a real tinyproxy on loopback, the real broker serving HTTPS
// with a certificate from a CA made at test time (--ca-file), GitHub's token endpoint stand-in, and
// the real AWS CLI using the credentials. The proxy's own log shows the token request and the
// exchange went through it; NO_PROXY sends them directly; a proxy's credentials work and are never
// printed; both clients read HTTPS_PROXY / HTTP_PROXY / NO_PROXY alike (one table for both, and for
// the broker's own reading in server/src/net/proxy.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { startMoto, type Moto } from '../support/moto.js';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startTestBroker, TEST_AUDIENCE, type TestBroker } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { startGithubTokenEndpoint, type GithubTokenEndpoint } from '../support/ci-providers/index.js';
import { forwardProxyMissing, startForwardProxy, type ForwardProxy } from '../support/forward-proxy.js';
import { issue, makeCa, type Ca } from '../support/certs.js';
import { bypassesProxy as brokerBypasses, parseNoProxy } from '../../server/src/net/proxy.js';
// @ts-expect-error the client is plain JavaScript (checked with // @ts-check), without declarations
import { bypassesProxy as clientBypasses } from '../../client/src/proxy.mjs';
import { ASSUMED_ROLE, callerArn } from './stack.js';
import { EXIT, POSIX_SH, SH_CLIENT, expectNoSecrets, run, runClient, runShClient, tempDir } from './helpers.js';

const skip = forwardProxyMissing !== undefined;
let moto: Moto;
let issuer: TestIssuer;
let tb: TestBroker;
let github: GithubTokenEndpoint;
let proxy: ForwardProxy;
let authProxy: ForwardProxy;
let ca: Ca;
let tmp: { dir: string; cleanup(): void };
const proxyUser = 'ci-runner';
const proxyPassword = 'runner-Pr0xy-pa55';

const githubClaims = (extra: Record<string, unknown> = {}) => ({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE, ...extra });
const hostPort = (url: string) => `${new URL(url).hostname}:${new URL(url).port}`;
const seen = (p: ForwardProxy, url: string) => p.requests().filter((r) => r.includes(hostPort(url)));

beforeAll(async () => {
  if (skip) return;
  ca = makeCa('credbroker-client-proxy-ca');
  const cert = issue(ca, 'broker');
  [moto, issuer, proxy, authProxy] = await Promise.all([startMoto(), startIssuer(), startForwardProxy(), startForwardProxy({ basicAuth: { user: proxyUser, password: proxyPassword } })]);
  tb = await startTestBroker({ moto, issuer, issuerSettings: { test: { preset: 'github-actions' } }, config: { server: { tls: { cert_file: cert.cert, key_file: cert.key } } } });
  github = await startGithubTokenEndpoint(async (audience) => issuer.sign(githubClaims({ aud: audience })));
  tmp = tempDir();
});
afterAll(async () => {
  await Promise.all([tb?.close(), github?.close(), proxy?.close(), authProxy?.close()]);
  await Promise.all([issuer?.close(), moto?.stop()]);
  tmp?.cleanup();
});

/** A GitHub job step behind the proxy: both the token endpoint (http) and the broker (https) are proxied. */
function jobEnv(proxyUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    HOME: tmp.dir,
    ...github.env,
    CREDBROKER_URL: tb.url,
    CREDBROKER_ROLE: 'deploy',
    CREDBROKER_AUDIENCE: TEST_AUDIENCE,
    CREDBROKER_CA_FILE: ca.cert,
    https_proxy: proxyUrl,
    HTTP_PROXY: proxyUrl,
    AWS_CONFIG_FILE: path.join(tmp.dir, 'no-config'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_ENDPOINT_URL_STS: moto.endpoint,
    AWS_DEFAULT_REGION: 'us-east-1',
    ...extra,
  };
}

const CLIENTS = [
  ['the Node client', runClient],
  ['the sh client', runShClient],
] as const;

describe.skipIf(skip)(`both clients behind a proxy${skip ? ` (skipped: ${forwardProxyMissing})` : ''}`, () => {
  it('serves HTTPS with a certificate from the test CA', () => {
    expect(tb.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it.each(CLIENTS)('%s fetches the token and exchanges it through the proxy, and the AWS CLI works with the credentials', async (_name, runIt) => {
    const credentials = path.join(tmp.dir, `credentials-${_name.replace(/\W/g, '')}`);
    const tokenBefore = seen(proxy, github.origin).length;
    const brokerBefore = seen(proxy, tb.url).length;
    const r = await runIt(['--format', 'profile', '-v'], jobEnv(proxy.url, { AWS_SHARED_CREDENTIALS_FILE: credentials }), { timeoutMs: 60_000 });
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(EXIT.OK);
    // The proxy's own log: a tunnel to the token endpoint, then one to the broker.
    expect(seen(proxy, github.origin).slice(tokenBefore)).toEqual([`CONNECT ${hostPort(github.origin)}`]);
    expect(seen(proxy, tb.url).slice(brokerBefore)).toEqual([`CONNECT ${hostPort(tb.url)}`]);
    expect(r.stderr).toContain(`${new URL(github.origin).origin}: through the proxy ${proxy.url} (HTTP_PROXY)`);
    expect(r.stderr).toContain(`${tb.url}: through the proxy ${proxy.url} (https_proxy)`);
    const aws = await callerArn(jobEnv(proxy.url, { AWS_SHARED_CREDENTIALS_FILE: credentials }), ['--profile', 'credbroker']);
    expect(aws.stderr).toBe('');
    expect(aws.arn).toMatch(ASSUMED_ROLE);
  });

  it.each(CLIENTS)('%s goes directly to the hosts NO_PROXY names, and says so with -v', async (_name, runIt) => {
    const before = proxy.requests().length;
    const r = await runIt(['--format', 'env', '-v'], jobEnv(proxy.url, { NO_PROXY: 'example.internal,127.0.0.0/8' }), { timeoutMs: 60_000 });
    expect(r.code).toBe(EXIT.OK);
    expect(r.stdout).toContain('export AWS_SESSION_TOKEN=');
    expect(proxy.requests().length).toBe(before);
    expect(r.stderr).toContain(`${tb.url}: direct (NO_PROXY)`);
  });

  it.each(CLIENTS)('%s uses the credentials of the proxy URL and never prints them', async (_name, runIt) => {
    const url = `http://${proxyUser}:${encodeURIComponent(proxyPassword)}@127.0.0.1:${authProxy.port}`;
    const credentials = path.join(tmp.dir, `credentials-auth-${_name.replace(/\W/g, '')}`);
    const r = await runIt(['--format', 'profile', '-v'], jobEnv(url, { AWS_SHARED_CREDENTIALS_FILE: credentials }), { timeoutMs: 60_000 });
    expect(r.code).toBe(EXIT.OK);
    expect(seen(authProxy, tb.url).length).toBeGreaterThanOrEqual(1);
    expect(r.stderr).toContain(`${tb.url}: through the proxy ${authProxy.url} (https_proxy)`);
    expectNoSecrets('stderr', r.stderr + r.stdout, { proxyPassword, proxyAuthorization: Buffer.from(`${proxyUser}:${proxyPassword}`).toString('base64') });
    expectNoSecrets("the proxy's log", authProxy.log(), { proxyPassword });
    const aws = await callerArn(jobEnv(proxy.url, { AWS_SHARED_CREDENTIALS_FILE: credentials }), ['--profile', 'credbroker']);
    expect(aws.arn).toMatch(ASSUMED_ROLE);
  });

  it.each(CLIENTS)('%s says the proxy refused the tunnel when its credentials are wrong, and spends no token', async (_name, runIt) => {
    const tokenFile = path.join(tmp.dir, 'job-token');
    writeFileSync(tokenFile, await issuer.sign(githubClaims()));
    const exchangesBefore = tb.audit.filter((a) => a.event === 'exchange').length;
    const url = `http://${proxyUser}:wrong@127.0.0.1:${authProxy.port}`;
    const r = await runIt(['--token-file', tokenFile, '--retries', '0'], jobEnv(url), { timeoutMs: 60_000 });
    expect(r.code).toBe(EXIT.UNAVAILABLE);
    // tinyproxy answers a failed basic auth with 401 (a standard proxy says 407): either reads the same.
    expect(r.stderr).toMatch(new RegExp(`error: broker ${tb.url.replace(/[.]/g, '\\.')} unavailable after 1 attempt\\(s\\): the proxy refused the tunnel \\(HTTP 40[17], proxy authentication required\\)`));
    expect(r.stderr).not.toContain('wrong');
    expect(tb.audit.filter((a) => a.event === 'exchange').length).toBe(exchangesBefore);
  });

  it.each(CLIENTS)('%s refuses a proxy variable it cannot use before anything is sent', async (_name, runIt) => {
    const before = proxy.requests().length;
    const r = await runIt([], jobEnv('socks5://127.0.0.1:1080'));
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.stderr).toContain('error: https_proxy: socks5 proxies are not supported (http:// or https:// only) (see --help)');
    expect(proxy.requests().length).toBe(before);
  });
});

// One reading of NO_PROXY for the broker and both clients. The broker's and the Node client's
// functions are called directly; the sh client is run (its -v line says which way it went), with a
// proxy on a closed port so that every run ends at once.
const NO_PROXY_TABLE: Array<[string, string, boolean]> = [
  ['127.0.0.9', '127.0.0.9', true],
  ['127.0.0.0/8', '127.0.0.9', true],
  ['10.0.0.0/8', '127.0.0.9', false],
  ['localhost', '127.0.0.9', false],
  ['*', 'broker.corp.example', true],
  ['other.example,*', 'broker.corp.example', false],
  ['corp.example', 'broker.corp.example', true],
  ['.corp.example', 'broker.corp.example', true],
  ['CORP.Example.', 'broker.corp.example', true],
  ['p.corp.example', 'broker.corp.example', false],
  ['rp.example', 'broker.corp.example', false],
  ['broker.corp.example:443', 'broker.corp.example', false],
];

describe('NO_PROXY, read the same way by the broker and both clients', () => {
  it.each(NO_PROXY_TABLE)('NO_PROXY=%s for %s: bypass %s (broker and Node client)', (noProxy, host, bypass) => {
    expect(brokerBypasses(parseNoProxy(noProxy), host)).toBe(bypass);
    expect(clientBypasses(noProxy, host)).toBe(bypass);
  });

  it('the sh client decides the same for every row', async () => {
    const tokenFile = path.join(tempDir().dir, 'token');
    writeFileSync(tokenFile, 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln');
    const results = await Promise.all(
      NO_PROXY_TABLE.map(async ([noProxy, host]) => {
        const env = { HOME: '/nonexistent', HTTPS_PROXY: 'http://127.0.0.1:1', NO_PROXY: noProxy };
        const r = await run(POSIX_SH, [SH_CLIENT, '--url', `https://${host}:1`, '--role', 'r', '--token-file', tokenFile, '--retries', '0', '--timeout', '2', '-v'], env);
        if (r.stderr.includes('direct (NO_PROXY)')) return true;
        if (r.stderr.includes('through the proxy http://127.0.0.1:1 (HTTPS_PROXY)')) return false;
        return r.stderr;
      }),
    );
    expect(results).toEqual(NO_PROXY_TABLE.map(([, , bypass]) => bypass));
  });
});
