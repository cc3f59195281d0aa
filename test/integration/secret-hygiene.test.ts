// Nothing secret in any log line or audit record: run exchanges in every format plus refusals,
// with the most verbose log level, then scan everything captured for every token, every
// SecretAccessKey and every SessionToken issued during the test.
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startMoto, type Moto } from '../support/moto.js';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startTestBroker, requestCredentials, TEST_AUDIENCE, type TestBroker } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { StdoutAuditSink } from '../../server/src/audit/sinks.js';
import { createLogger } from '../../server/src/log.js';

let moto: Moto;
let issuer: TestIssuer;
let tb: TestBroker;
const auditLines: string[] = [];

beforeAll(async () => {
  [moto, issuer] = await Promise.all([startMoto(), startIssuer()]);
  // The real stdout audit sink, writing into a captured stream: the serialized form is scanned.
  const out = new Writable({
    write(chunk: Buffer, _e, cb) {
      auditLines.push(chunk.toString('utf8'));
      cb();
    },
  });
  tb = await startTestBroker({ moto, issuer, config: { logging: { level: 'trace' } }, brokerOptions: { audit: new StdoutAuditSink(out) } });
});
afterAll(async () => {
  await tb?.close();
  await Promise.all([issuer?.close(), moto?.stop()]);
});

it('never writes a token, SecretAccessKey or SessionToken to the logs or the audit trail', async () => {
  const secrets: string[] = [];
  const claims = { ...providerClaims('github-actions'), aud: TEST_AUDIENCE };
  for (const format of ['json', 'credential-process', 'env', 'json']) {
    const token = await issuer.sign(claims);
    secrets.push(token);
    const res = await requestCredentials(tb.url, token, { role: 'deploy' }, { format });
    expect(res.status).toBe(200);
    if (format === 'env') {
      for (const m of res.text.matchAll(/AWS_(?:SECRET_ACCESS_KEY|SESSION_TOKEN)='([^']+)'/g)) secrets.push(m[1]!);
    } else {
      secrets.push(res.body.SecretAccessKey, res.body.SessionToken);
    }
    // A replay, a denial and a bad signature with the same material.
    await requestCredentials(tb.url, token);
    const denied = await issuer.sign({ ...claims, repository_id: '1' });
    secrets.push(denied);
    await requestCredentials(tb.url, denied);
    await requestCredentials(tb.url, `${token.slice(0, -4)}AAAA`);
  }
  expect(secrets.length).toBeGreaterThanOrEqual(16);
  const captured = [...tb.logs, ...auditLines].join('\n');
  expect(tb.logs.length).toBeGreaterThan(10);
  expect(auditLines.length).toBe(16);
  for (const secret of secrets) {
    expect(secret.length).toBeGreaterThan(15);
    expect(captured.includes(secret), 'a secret reached the logs or the audit trail').toBe(false);
    // Tokens must not appear in part either (the signature alone identifies a token).
    if (secret.split('.').length === 3) expect(captured.includes(secret.split('.')[2]!)).toBe(false);
  }
});

it('redacts secrets that code might pass to the logger by mistake', () => {
  const lines: string[] = [];
  const logger = createLogger({
    level: 'info',
    destination: new Writable({
      write(c: Buffer, _e, cb) {
        lines.push(c.toString());
        cb();
      },
    }) as never,
  });
  logger.info({ authorization: 'Bearer eyJsecret', token: 'eyJtoken', credentials: { SecretAccessKey: 'sek', SessionToken: 'stok' }, req: { headers: { authorization: 'Bearer eyJh' } }, SecretAccessKey: 'top' }, 'oops');
  const text = lines.join('');
  for (const s of ['eyJsecret', 'eyJtoken', 'sek', 'stok', 'eyJh', '"top"']) expect(text).not.toContain(s);
  expect(text).toContain('[REDACTED]');
});
