// `credbroker serve` stopping as an orchestrator stops it (ECS, Kubernetes and the container's
// SIGTERM): exchanges in flight are answered and audited, nothing new is accepted, kept-alive
// connections do not hold the exit, and a stuck connection is cut at the drain deadline.
// STS is the fake STS here (not moto) because only it can be made slow on purpose.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startFakeSts, type FakeSts } from '../support/fake-sts.js';
import { startServe, until, type ServeProcess } from '../support/serve-process.js';
import { DRAIN_MARGIN_MS } from '../../server/src/broker.js';

const AUDIENCE = 'https://credbroker.test';
const REQUEST_TIMEOUT_MS = 4000;
const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-shutdown-'));
let issuer: TestIssuer;
let sts: FakeSts;

beforeAll(async () => {
  [issuer, sts] = await Promise.all([startIssuer(), startFakeSts()]);
});
afterAll(async () => {
  await Promise.all([issuer?.close(), sts?.close()]);
});

async function serve(name: string): Promise<{ broker: ServeProcess; auditFile: string }> {
  const file = path.join(dir, `${name}.yaml`);
  const auditFile = path.join(dir, `${name}.audit.jsonl`);
  writeFileSync(
    file,
    [
      `server: { port: 0, request_timeout_ms: ${REQUEST_TIMEOUT_MS} }`,
      `aws: { sts_endpoint: "${sts.endpoint}", role_chaining: never, max_attempts: 1 }`,
      `audit: { sink: file, path: "${auditFile}" }`,
      'issuers:',
      `  local: { url: "${issuer.url}", audiences: [${AUDIENCE}], allow_insecure_http: true }`,
      'roles:',
      '  deploy:',
      '    arn: arn:aws:iam::123456789012:role/credbroker/deploy',
      '    allow: [{ issuer: local, claims: { repository_id: "1" } }]',
    ].join('\n'),
  );
  return { broker: await startServe(file), auditFile };
}

interface Answer {
  status: number;
  connection: string | undefined;
  body: { AccessKeyId?: string; SecretAccessKey?: string };
}

/** POST /v1/credentials over `agent` (keep-alive, so the drain must close the connection itself). */
async function exchange(url: string, agent: http.Agent): Promise<Answer> {
  const token = await issuer.sign({ aud: AUDIENCE, sub: 'repo:octo/app', repository_id: '1' });
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/v1/credentials`,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ role: 'deploy' }));
  });
}

const exited = (broker: ServeProcess) => new Promise<number | null>((resolve) => broker.child.once('exit', (code) => resolve(code)));

describe('SIGTERM drains, then exits', () => {
  it('answers and audits an exchange in flight, closes its kept-alive connection, and exits 0 right after', async () => {
    sts.latencyMs = 0;
    const { broker, auditFile } = await serve('in-flight');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect((await exchange(broker.url, agent)).status).toBe(200); // the connection is now kept alive
      sts.latencyMs = 1500;
      const inFlight = exchange(broker.url, agent);
      await until(() => sts.requests.length === 2); // the exchange is at STS
      const exit = exited(broker);
      broker.child.kill('SIGTERM');

      const answer = await inFlight;
      const answeredAt = Date.now();
      expect(answer.status).toBe(200);
      expect(answer.body.AccessKeyId).toMatch(/^ASIA/);
      expect(answer.connection).toBe('close');
      expect(await exit).toBe(0);
      // Not held open by the kept-alive connection until its 5 s timeout.
      expect(Date.now() - answeredAt).toBeLessThan(1500);

      const records = readFileSync(auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { decision?: string; access_key_id?: string });
      expect(records.filter((r) => r.decision === 'allow').map((r) => r.access_key_id)).toContain(answer.body.AccessKeyId);
      expect(broker.stderr()).toContain('"signal":"SIGTERM"');
    } finally {
      agent.destroy();
      await broker.stop('SIGKILL');
    }
  });

  it('accepts no new connection once draining', async () => {
    sts.latencyMs = 1500;
    const { broker } = await serve('refuse');
    const agent = new http.Agent({ keepAlive: false });
    try {
      const inFlight = exchange(broker.url, agent);
      const before = sts.requests.length;
      await until(() => sts.requests.length > before);
      broker.child.kill('SIGTERM');
      await until(() => broker.stderr().includes('"signal":"SIGTERM"'));
      const port = Number(new URL(broker.url).port);
      const refused = await new Promise<string>((resolve) => {
        const socket = net.connect(port, '127.0.0.1');
        socket.once('connect', () => {
          socket.destroy();
          resolve('connected');
        });
        socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      });
      expect(refused).toBe('ECONNREFUSED');
      expect((await inFlight).status).toBe(200);
    } finally {
      agent.destroy();
      await broker.stop('SIGKILL');
    }
  });

  it('cuts a connection that is still sending its request at the drain deadline', async () => {
    sts.latencyMs = 0;
    const { broker } = await serve('stuck');
    const port = Number(new URL(broker.url).port);
    // Headers complete, body promised and never sent: a request in flight that never ends.
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('POST /v1/credentials HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"role":');
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    const exit = exited(broker);
    broker.child.kill('SIGTERM');
    expect(await exit).toBe(0);
    const took = Date.now() - started;
    await closed;
    // Cut at request_timeout_ms + margin, not when the request would have timed out by itself.
    expect(took).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS + DRAIN_MARGIN_MS - 200);
    expect(took).toBeLessThan(REQUEST_TIMEOUT_MS + DRAIN_MARGIN_MS + 2500);
  });
});
