// The broker behind an egress proxy: a real tinyproxy on loopback (test/support/forward-proxy.ts),
// and the proxy's own log as the witness of what went through it. JWKS, STS (moto) and a sink push
// go through; hosts in NO_PROXY (here a second loopback address, 127.0.0.2) do not. A proxy that
// wants basic auth gets it, and the credentials appear in no log line or audit record.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STSClient, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { startMoto, type Moto } from '../support/moto.js';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { requestCredentials, startTestBroker, TEST_AUDIENCE, type TestBroker } from '../support/broker.js';
import { forwardProxyMissing, startForwardProxy, type ForwardProxy } from '../support/forward-proxy.js';
import { issue, makeCa } from '../support/certs.js';
import { startGitlabApi } from '../support/ci-apis/index.js';
import { startFakeSts } from '../support/fake-sts.js';
import { StsCredentialIssuer } from '../../server/src/aws/sts.js';
import { createIamKeys } from '../../server/src/aws/iam.js';
import { createSink } from '../../server/src/rotation/sinks/index.js';
import { rotationConfigSchema, type SinkConfig } from '../../server/src/rotation/config-schema.js';
import { SecretValue } from '../../server/src/rotation/secret.js';
import { createNetwork } from '../../server/src/net/network.js';
import { parseConfig } from '../../server/src/config/load.js';
import { freePort } from '../support/moto.js';
import { startIdp } from '../console/idp.js';
import { Agent } from '../console/agent.js';

const cleanup: Array<() => Promise<unknown>> = [];
let moto: Moto;
let proxy: ForwardProxy;
const user = 'credbroker-egress';
const password = 'pr0xy-S3cret-d0-not-log';
let authProxy: ForwardProxy;

const claims = () => ({ aud: TEST_AUDIENCE, sub: 'repo:acme/app:ref:refs/heads/main', repository_id: '487920697' });
const port = (url: string) => new URL(url).port;
const through = (p: ForwardProxy, url: string) => p.requests().filter((r) => r.includes(`${new URL(url).hostname}:${port(url)}`));

async function callerArn(endpoint: string, creds: { AccessKeyId: string; SecretAccessKey: string; SessionToken: string }): Promise<string | undefined> {
  const sts = new STSClient({ region: 'us-east-1', endpoint, credentials: { accessKeyId: creds.AccessKeyId, secretAccessKey: creds.SecretAccessKey, sessionToken: creds.SessionToken } });
  try {
    return (await sts.send(new GetCallerIdentityCommand({}))).Arn;
  } finally {
    sts.destroy();
  }
}

const skip = forwardProxyMissing !== undefined;
beforeAll(async () => {
  if (skip) return;
  [moto, proxy, authProxy] = await Promise.all([startMoto(), startForwardProxy(), startForwardProxy({ basicAuth: { user, password } })]);
});
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
  await Promise.all([moto?.stop(), proxy?.close(), authProxy?.close()]);
});

/** Every request the proxy logged for `url`'s host:port is a tunnel, and there was at least one. */
function tunnelled(p: ForwardProxy, url: string): void {
  const seen = through(p, url);
  expect(seen.length, `no request to ${url} in the proxy's log`).toBeGreaterThanOrEqual(1);
  expect(seen.every((r) => r === `CONNECT ${new URL(url).hostname}:${port(url)}`)).toBe(true);
}

describe.skipIf(skip)(`the broker behind an egress proxy${forwardProxyMissing ? ` (skipped: ${forwardProxyMissing})` : ''}`, () => {
  it('fetches discovery and JWKS and calls STS through HTTPS_PROXY/HTTP_PROXY, and reaches NO_PROXY hosts directly', async () => {
    const proxied = await startIssuer();
    const direct = await startIssuer({ host: '127.0.0.2' });
    cleanup.push(() => proxied.close(), () => direct.close());
    const tb = await startTestBroker({
      moto,
      issuer: { test: proxied, other: direct },
      env: { https_proxy: proxy.url, HTTP_PROXY: proxy.url, NO_PROXY: 'example.internal, 127.0.0.2' },
    });
    cleanup.push(() => tb.close());

    const res = await requestCredentials(tb.url, await proxied.sign(claims()));
    expect(res.status).toBe(200);
    expect(await callerArn(moto.endpoint, res.body)).toMatch(/^arn:aws:sts::123456789012:assumed-role\/deploy\//);

    // The proxy's own log: tunnels to the issuer (discovery and JWKS) and to STS.
    tunnelled(proxy, proxied.url);
    tunnelled(proxy, moto.endpoint);
    // 127.0.0.2 is in NO_PROXY: its keys were fetched, and never through the proxy.
    expect(direct.jwksFetches).toBe(1);
    expect(proxy.requests().some((r) => r.includes('127.0.0.2'))).toBe(false);
    // The start-up log says where the proxy came from.
    const summary = tb.logs.find((l) => l.includes('"outbound network"'));
    expect(JSON.parse(summary!)).toMatchObject({ https_proxy: proxy.url, http_proxy: proxy.url, proxy_from: 'https_proxy, HTTP_PROXY', no_proxy: ['example.internal', '127.0.0.2'], no_proxy_from: 'NO_PROXY' });
  });

  it('keeps the tunnel to STS alive across AssumeRole calls (no connection per exchange)', async () => {
    // moto closes every connection after its answer; this STS stand-in keeps them alive, as STS does.
    const fake = await startFakeSts();
    cleanup.push(() => fake.close());
    const network = createNetwork(parseConfig(JSON.stringify({ issuers: {}, roles: {}, network: { proxy: proxy.url } }), 'test', {}).config.network, {});
    cleanup.push(() => network.close());
    const sts = new StsCredentialIssuer({ defaultRegion: 'us-east-1', endpoint: fake.endpoint, maxAttempts: 1, httpTimeoutMs: 5000, network, credentials: { accessKeyId: 'AKIDBROKERTESTONLY00', secretAccessKey: 'broker-test-secret-not-real' } });
    const req = { roleArn: 'arn:aws:iam::123456789012:role/credbroker/deploy', region: 'us-east-1', sessionName: 's', sourceIdentity: 's', tags: [], transitiveTagKeys: [], durationSeconds: 900, sessionPolicy: undefined, policyArns: [] };
    for (let i = 0; i < 5; i++) await sts.assumeRole(req);
    expect(fake.requests).toHaveLength(5);
    expect(through(proxy, fake.endpoint)).toEqual([`CONNECT 127.0.0.1:${port(fake.endpoint)}`]);
    sts.destroy();
  });

  it('sends the AWS SDK clients (IAM for rotation, STS GetCallerIdentity) through the proxy, and not a NO_PROXY endpoint', async () => {
    const via = createNetwork(parseConfig(JSON.stringify({ issuers: {}, roles: {}, network: { proxy: proxy.url } }), 'test', {}).config.network, {});
    const creds = { accessKeyId: 'AKIDBROKERTESTONLY00', secretAccessKey: 'broker-test-secret-not-real' };
    const before = through(proxy, moto.endpoint).length;
    const iam = createIamKeys({ region: 'us-east-1', iamEndpoint: moto.endpoint, stsEndpoint: moto.endpoint, credentials: creds, network: via });
    expect(await iam.getUser('nobody-here')).toBeUndefined(); // answered by moto: NoSuchEntity
    expect(through(proxy, moto.endpoint).length).toBeGreaterThan(before);
    tunnelled(proxy, moto.endpoint);

    // The same endpoint in network.no_proxy: straight to moto, nothing more in the proxy's log.
    const bypass = createNetwork(parseConfig(JSON.stringify({ issuers: {}, roles: {}, network: { proxy: proxy.url, no_proxy: ['127.0.0.0/8'] } }), 'test', {}).config.network, {});
    cleanup.push(() => via.close(), () => bypass.close());
    const seen = proxy.requests().length;
    const direct = createIamKeys({ region: 'us-east-1', iamEndpoint: moto.endpoint, stsEndpoint: moto.endpoint, credentials: creds, network: bypass });
    expect(await direct.getUser('nobody-here')).toBeUndefined();
    expect(proxy.requests().length).toBe(seen);
  });

  it('pushes a rotated key to a CI API over HTTPS through the proxy, trusting network.ca_file', async () => {
    const ca = makeCa('credbroker-test-ci-ca');
    const gitlab = await startGitlabApi({ tls: issue(ca, 'gitlab') });
    cleanup.push(() => gitlab.close());
    const { config } = parseConfig(JSON.stringify({ issuers: {}, roles: {}, network: { proxy: proxy.url, ca_file: ca.cert } }), 'test', {});
    const network = createNetwork(config.network, {});
    cleanup.push(() => network.close());
    const sinkConfig = rotationConfigSchema.parse({ users: [{ name: 'ci-user', sinks: [{ type: 'gitlab', project: 42, token_env: 'GL_TOKEN', base_url: gitlab.url }] }] }).users[0]!.sinks[0]! as SinkConfig;
    const sink = createSink(sinkConfig, { env: { GL_TOKEN: gitlab.token }, timeoutMs: 5000, network });
    const keyId = `AKIA${randomBytes(8).toString('hex').toUpperCase()}`;
    await sink.deliver({ userName: 'ci-user', accessKeyId: keyId, secretAccessKey: new SecretValue(randomBytes(20).toString('hex')), createdAt: new Date() });
    expect(gitlab.variable('42', 'AWS_ACCESS_KEY_ID')?.value).toBe(keyId);
    tunnelled(proxy, gitlab.url);

    // The same push without the CA: the TLS reason and host, through the proxy, not "fetch failed".
    const untrusting = createNetwork({ ...config.network, caCerts: undefined, caFile: undefined }, {});
    cleanup.push(() => untrusting.close());
    const refused = createSink(sinkConfig, { env: { GL_TOKEN: gitlab.token }, timeoutMs: 5000, network: untrusting });
    await expect(refused.preflight()).rejects.toThrow(
      `sink gitlab:42:*: list variables failed (TLS: the certificate of 127.0.0.1:${port(gitlab.url)} is signed by an unknown certificate authority (UNABLE_TO_VERIFY_LEAF_SIGNATURE): add the CA that signed it with ca_file, through the proxy)`,
    );
  });

  it('reaches an HTTPS issuer through the proxy with its ca_file', async () => {
    const ca = makeCa('credbroker-test-issuer-ca');
    const issuer = await startIssuer({ tls: issue(ca, 'issuer') });
    cleanup.push(() => issuer.close());
    const tb = await startTestBroker({ moto, issuer, issuerSettings: { test: { allow_insecure_http: false, ca_file: ca.cert } }, config: { network: { proxy: proxy.url } } });
    cleanup.push(() => tb.close());
    expect((await requestCredentials(tb.url, await issuer.sign(claims()))).status).toBe(200);
    tunnelled(proxy, issuer.url);
  });
});

describe.skipIf(skip)('the console behind an egress proxy', () => {
  it("reaches the identity provider (discovery, token, keys) through the proxy, and a person signs in", async () => {
    const adminPort = await freePort();
    const consoleUrl = `http://127.0.0.1:${adminPort}`;
    const [issuer, idp] = await Promise.all([startIssuer(), startIdp(`${consoleUrl}/console/auth/callback`)]);
    cleanup.push(() => issuer.close(), () => idp.close());
    process.env.CREDBROKER_EGRESS_CONSOLE_SECRET = idp.clientSecret;
    const tb = await startTestBroker({
      moto,
      issuer,
      config: {
        network: { proxy: proxy.url },
        admin: { enabled: true, port: adminPort, tokens: [] },
        console: {
          url: consoleUrl,
          sso: { issuer: idp.issuer, client_id: idp.clientId, client_secret_env: 'CREDBROKER_EGRESS_CONSOLE_SECRET', scopes: ['openid', 'email', 'profile', 'groups'], allow_insecure_http: true },
          viewers: { groups: ['security-viewers'] },
          operators: { groups: ['security-operators'] },
        },
      },
    });
    cleanup.push(() => tb.close());
    await tb.broker.listenAdmin(adminPort, '127.0.0.1');
    const r = await new Agent().ssoSignIn(consoleUrl, 'bob');
    expect(r.status, r.text).toBe(200);
    // The browser went to the IdP directly; the broker's own calls (discovery, then token and JWKS
    // over the same kept-alive tunnel) went through the proxy.
    tunnelled(proxy, idp.issuer);
  });
});

describe.skipIf(skip)('a proxy that requires basic authentication', () => {
  async function brokerVia(proxyUrl: string, issuer: TestIssuer): Promise<TestBroker> {
    const tb = await startTestBroker({ moto, issuer, config: { network: { proxy: proxyUrl }, server: { readiness_wait_ms: 2000 } } });
    cleanup.push(() => tb.close());
    return tb;
  }

  it('gets the credentials from the proxy URL, and no log line or audit record contains them', async () => {
    const issuer = await startIssuer();
    cleanup.push(() => issuer.close());
    const tb = await brokerVia(authProxy.authUrl, issuer);
    const res = await requestCredentials(tb.url, await issuer.sign(claims()));
    expect(res.status).toBe(200);
    tunnelled(authProxy, issuer.url);
    tunnelled(authProxy, moto.endpoint);
    const everything = [...tb.logs, ...tb.audit.map((r) => JSON.stringify(r)), authProxy.log()].join('\n');
    expect(everything.includes(password), 'the proxy password leaked into a log').toBe(false);
    expect(everything.includes(Buffer.from(`${user}:${password}`).toString('base64')), 'the Proxy-Authorization value leaked into a log').toBe(false);
    expect(tb.logs.find((l) => l.includes('"outbound network"'))).toContain(`"https_proxy":"${authProxy.url} (with credentials)"`);
  });

  it('with wrong credentials, says the proxy refused the tunnel (status and host), and logs no credential', async () => {
    const issuer = await startIssuer();
    cleanup.push(() => issuer.close());
    const wrong = `http://${user}:wrong-${password}@127.0.0.1:${authProxy.port}`;
    const tb = await brokerVia(wrong, issuer);
    const ready = await fetch(`${tb.url}/readyz`);
    expect(ready.status).toBe(503);
    const body = (await ready.json()) as { issuer_errors: Record<string, string> };
    // tinyproxy answers a failed basic auth with 401 (a standard proxy says 407): either is named.
    expect(body.issuer_errors.test).toMatch(new RegExp(`the proxy refused the tunnel to 127\\.0\\.0\\.1:${port(issuer.url)}: HTTP 40[17] \\(proxy authentication required`));
    expect(tb.logs.join('\n').includes(password)).toBe(false);
    expect(JSON.stringify(body).includes(password)).toBe(false);
  });
});
