// The broker serving HTTPS itself (server.tls), as `credbroker serve` runs it: real TLS handshakes
// with certificates made at test time (openssl), both clients against it with --ca-file /
// CREDBROKER_CA_FILE (and refusing a certificate they do not trust), the certificate reloaded on
// SIGHUP and on file change without dropping open connections, and mutual TLS on the admin API.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeCa, issue, type Ca, type Issued } from '../support/certs.js';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { callerArn, freePort, startMoto, type Moto } from '../support/moto.js';
import { startServe, until, type ServeProcess } from '../support/serve-process.js';

const root = path.resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-tls-'));
const ROLE_ARN = 'arn:aws:iam::123456789012:role/credbroker/deploy';
const ADMIN_TOKEN = 'admin-token-for-the-tls-test-0123456789';
let ca: Ca;
let otherCa: Ca;
let clientCa: Ca;
let moto: Moto;
let issuer: TestIssuer;
let broker: ServeProcess;
let url: string;
let adminPort: number;
/** The files the broker reads (server.tls); tests overwrite them to rotate the certificate. */
const certFile = path.join(dir, 'tls.crt');
const keyFile = path.join(dir, 'tls.key');

const install = (c: Issued) => {
  copyFileSync(c.key, keyFile);
  copyFileSync(c.cert, certFile);
};

beforeAll(async () => {
  ca = makeCa('credbroker-test-ca');
  otherCa = makeCa('someone-elses-ca');
  clientCa = makeCa('credbroker-admin-clients');
  install(issue(ca, 'broker-1'));
  [moto, issuer] = await Promise.all([startMoto(), startIssuer()]);
  const { IAMClient, CreateRoleCommand } = await import('@aws-sdk/client-iam');
  const iam = new IAMClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  await iam.send(new CreateRoleCommand({ RoleName: 'deploy', Path: '/credbroker/', AssumeRolePolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::123456789012:root' }, Action: ['sts:AssumeRole', 'sts:TagSession', 'sts:SetSourceIdentity'] }] }) }));
  iam.destroy();
  const port = await freePort();
  adminPort = await freePort();
  url = `https://127.0.0.1:${port}`;
  const config = path.join(dir, 'credbroker.yaml');
  writeFileSync(
    config,
    [
      `server: { port: ${port}, tls: { cert_file: "${certFile}", key_file: "${keyFile}" } }`,
      `aws: { sts_endpoint: "${moto.endpoint}", role_chaining: never, max_attempts: 1 }`,
      `admin: { enabled: true, port: ${adminPort}, client_ca_file: "${clientCa.cert}", tokens: [{ name: ops, sha256: "${createHash('sha256').update(ADMIN_TOKEN).digest('hex')}" }] }`,
      'issuers:',
      `  local: { url: "${issuer.url}", audiences: ["${url}"], allow_insecure_http: true }`,
      'roles:',
      '  deploy:',
      `    arn: ${ROLE_ARN}`,
      '    allow: [{ issuer: local, claims: { repository_id: "1" } }]',
    ].join('\n'),
  );
  broker = await startServe(config, moto.env);
}, 120_000);

afterAll(async () => {
  await broker?.stop();
  await Promise.all([moto?.stop(), issuer?.close()]);
});

interface Seen {
  status: number;
  protocol: string | null;
  fingerprint256: string;
  reusedSocket: boolean;
}

/** GET over TLS, trusting `trust`; resolves with what the client saw, rejects on a TLS failure. */
function get(target: string, opts: { trust?: string; agent?: https.Agent; maxVersion?: tls.SecureVersion; cert?: Issued; headers?: Record<string, string> } = {}): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      target,
      {
        ca: readFileSync(opts.trust ?? ca.cert),
        agent: opts.agent ?? false,
        ...(opts.maxVersion ? { maxVersion: opts.maxVersion } : {}),
        ...(opts.cert ? { cert: readFileSync(opts.cert.cert), key: readFileSync(opts.cert.key) } : {}),
        headers: opts.headers ?? {},
      },
      (res) => {
        const socket = res.socket as tls.TLSSocket;
        const seen = { status: res.statusCode!, protocol: socket.getProtocol(), fingerprint256: socket.getPeerCertificate().fingerprint256, reusedSocket: req.reusedSocket };
        res.resume();
        res.on('end', () => resolve(seen));
      },
    );
    req.on('error', reject);
  });
}

/** A fresh token for the broker (its URL is the audience), written to a file for the clients. */
async function tokenFile(): Promise<string> {
  const file = path.join(dir, `token-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, await issuer.sign({ aud: url, sub: 'repo:octo/app', repository_id: '1' }), { mode: 0o600 });
  return file;
}

function runClient(cmd: string[], env: Record<string, string>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { env: { PATH: process.env.PATH, HOME: dir, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}
const nodeClient = (args: string[], env: Record<string, string> = {}) =>
  runClient([process.execPath, path.join(root, 'client/credbroker-client.mjs'), '--url', url, '--role', 'deploy', '--provider', 'generic', '--retries', '0', ...args], env);
const shClient = (args: string[], env: Record<string, string> = {}) =>
  runClient(['sh', path.join(root, 'client/credbroker-client.sh'), '--url', url, '--role', 'deploy', '--provider', 'generic', '--retries', '0', ...args], env);

const envCreds = (stdout: string) => {
  const v = (name: string) => new RegExp(`${name}='?([^'\\n]+)'?`).exec(stdout)?.[1] ?? '';
  return { AccessKeyId: v('AWS_ACCESS_KEY_ID'), SecretAccessKey: v('AWS_SECRET_ACCESS_KEY'), SessionToken: v('AWS_SESSION_TOKEN') };
};

describe('server.tls', () => {
  it('serves HTTPS with the certificate made at test time, over TLS 1.3 and 1.2', async () => {
    expect(url).toMatch(/^https:/);
    expect(broker.stderr()).toMatch(/"url":"https:\/\/127\.0\.0\.1:\d+"/);
    const v13 = await get(`${url}/healthz`);
    expect(v13).toMatchObject({ status: 200, protocol: 'TLSv1.3' });
    expect(await get(`${url}/readyz`, { maxVersion: 'TLSv1.2' })).toMatchObject({ status: 200, protocol: 'TLSv1.2' });
  });

  it('refuses TLS 1.1: the server answers with a protocol_version alert', async () => {
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port: Number(new URL(url).port), minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0', rejectUnauthorized: false });
      socket.once('secureConnect', () => {
        socket.destroy();
        resolve(Object.assign(new Error('handshake succeeded'), { code: 'CONNECTED' }));
      });
      socket.once('error', (e: NodeJS.ErrnoException) => resolve(e));
    });
    expect(err.code).toBe('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
  });

  it('the Node client with --ca-file gets credentials that work against moto', async () => {
    const r = await nodeClient(['--ca-file', ca.cert, '--token-file', await tokenFile(), '--format', 'json', '--quiet']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const creds = JSON.parse(r.stdout) as { AccessKeyId: string; SecretAccessKey: string; SessionToken: string };
    expect(await callerArn(moto, creds)).toMatch(/^arn:aws:sts::123456789012:assumed-role\/deploy\//);
  });

  it('the Node client refuses a certificate it does not trust, and its token is never sent', async () => {
    const token = await tokenFile();
    for (const trust of [[], ['--ca-file', otherCa.cert]]) {
      const r = await nodeClient([...trust, '--token-file', token, '--format', 'json']);
      expect(r.status).toBe(6);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/TLS error/);
    }
    // The same one-time token still works: the TLS failures happened before anything was sent.
    const ok = await nodeClient(['--ca-file', ca.cert, '--token-file', token, '--format', 'json', '--quiet']);
    expect(ok.status).toBe(0);
  });

  it('the sh client (curl) with CREDBROKER_CA_FILE gets credentials; without it, curl refuses the certificate', async () => {
    const token = await tokenFile();
    const refused = await shClient(['--token-file', token]);
    expect(refused.status).toBe(6);
    expect(refused.stdout).toBe('');
    const r = await shClient(['--token-file', token], { CREDBROKER_CA_FILE: ca.cert });
    expect(r.status).toBe(0);
    expect(await callerArn(moto, envCreds(r.stdout))).toMatch(/^arn:aws:sts::123456789012:assumed-role\/deploy\//);
  });

  it('reloads the certificate on SIGHUP; an open connection keeps working, new ones get the new certificate', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const before = await get(`${url}/healthz`, { agent });
      const next = issue(ca, 'broker-2');
      install(next);
      const logged = broker.stderr().length;
      broker.child.kill('SIGHUP');
      await until(() => /"trigger":"SIGHUP".*TLS certificate loaded|TLS certificate loaded.*"trigger":"SIGHUP"/.test(broker.stderr().slice(logged)), 10_000, broker.stderr);
      const same = await get(`${url}/healthz`, { agent });
      expect(same).toMatchObject({ status: 200, reusedSocket: true, fingerprint256: before.fingerprint256 });
      const fresh = await get(`${url}/healthz`);
      expect(fresh.fingerprint256).toBe(next.fingerprint256);
      expect(fresh.fingerprint256).not.toBe(before.fingerprint256);
    } finally {
      agent.destroy();
    }
  });

  it('reloads the certificate when its files change, without a signal', async () => {
    const next = issue(ca, 'broker-3');
    install(next);
    await until(async () => (await get(`${url}/healthz`)).fingerprint256 === next.fingerprint256, 10_000, broker.stderr);
    expect(broker.stderr()).toMatch(/"trigger":"file-change"/);
  });

  it('keeps serving the current certificate when the new files do not load together', async () => {
    const current = (await get(`${url}/healthz`)).fingerprint256;
    const mismatched = issue(ca, 'broker-4');
    const logged = broker.stderr().length;
    copyFileSync(issue(ca, 'unrelated').key, keyFile);
    copyFileSync(mismatched.cert, certFile);
    broker.child.kill('SIGHUP');
    await until(() => broker.stderr().slice(logged).includes('TLS certificate reload refused'), 10_000, broker.stderr);
    expect((await get(`${url}/healthz`)).fingerprint256).toBe(current);
    install(issue(ca, 'broker-5')); // leave a good pair for the tests after this one
    await until(() => broker.stderr().slice(logged).includes('"trigger":"file-change","fingerprint256"') || /file-change.*TLS certificate loaded/.test(broker.stderr().slice(logged)), 10_000, broker.stderr);
  });
});

describe('admin.client_ca_file (mutual TLS on the admin listener)', () => {
  const adminUrl = () => `https://127.0.0.1:${adminPort}/v1/admin/revocations`;
  const bearer = { authorization: `Bearer ${ADMIN_TOKEN}` };

  it('refuses a connection without a client certificate, or with one another CA signed', async () => {
    await expect(get(adminUrl(), { headers: bearer })).rejects.toThrow();
    await expect(get(adminUrl(), { headers: bearer, cert: issue(otherCa, 'mallory', 'client') })).rejects.toThrow();
  });

  it('serves a client whose certificate the admin CA signed (and still requires the admin token)', async () => {
    const cert = issue(clientCa, 'alice', 'client');
    expect((await get(adminUrl(), { headers: bearer, cert })).status).toBe(200);
    expect((await get(adminUrl(), { cert })).status).toBe(401);
  });
});

describe('a certificate that cannot be read', () => {
  it('stops the broker at start, naming the file', async () => {
    const config = path.join(dir, 'missing-cert.yaml');
    writeFileSync(
      config,
      [
        `server: { port: 0, tls: { cert_file: "${path.join(dir, 'nope.crt')}", key_file: "${keyFile}" } }`,
        'issuers:',
        `  local: { url: "${issuer.url}", audiences: [https://x], allow_insecure_http: true }`,
        'roles:',
        `  deploy: { arn: "${ROLE_ARN}", allow: [{ issuer: local, claims: { repository_id: "1" } }] }`,
      ].join('\n'),
    );
    const r = await runClient([process.execPath, '--import', 'tsx', path.join(root, 'server/src/cli.ts'), 'serve', '--config', config], { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`cannot read the TLS certificate ${path.join(dir, 'nope.crt')}: ENOENT`);
  });
});
