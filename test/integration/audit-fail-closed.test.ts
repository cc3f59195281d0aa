// No audit record, no credentials: when the audit sink cannot write, the exchange fails closed.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startFakeSts, type FakeSts } from '../support/fake-sts.js';
import { startTestBroker, requestCredentials, TEST_AUDIENCE } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';

let issuer: TestIssuer;
let sts: FakeSts;
const sign = () => issuer.sign({ ...providerClaims('github-actions'), aud: TEST_AUDIENCE });

beforeAll(async () => {
  [issuer, sts] = await Promise.all([startIssuer(), startFakeSts()]);
});
afterAll(async () => {
  await Promise.all([issuer?.close(), sts?.close()]);
});

it('refuses to start when the audit file cannot be opened', async () => {
  await expect(
    startTestBroker({ issuer, config: { aws: { sts_endpoint: sts.endpoint }, audit: { sink: 'file', path: '/nonexistent-dir/credbroker/audit.jsonl' } } }),
  ).rejects.toThrow(/ENOENT/);
});

it('withholds credentials (500, no secret in the answer) when the audit file cannot be written', async () => {
  // /dev/full opens fine and fails every write with ENOSPC: a real full disk.
  const tb = await startTestBroker({ issuer, config: { aws: { sts_endpoint: sts.endpoint }, audit: { sink: 'file', path: '/dev/full' } } });
  try {
    const res = await requestCredentials(tb.url, await sign());
    expect(res.status).toBe(500);
    expect(res.body.error.code).toBe('ERR_INTERNAL');
    expect(res.text).not.toMatch(/ASIAFAKE|SecretAccessKey|SessionToken/);
    expect(sts.requests.length).toBeGreaterThan(0); // STS was called: the audit is what failed
    expect(tb.logs.some((l) => l.includes('audit write failed'))).toBe(true);
  } finally {
    await tb.close();
  }
});

it('appends one JSON line per decision to the audit file, mode 0600', async () => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'credbroker-audit-')), 'audit.jsonl');
  const tb = await startTestBroker({ issuer, config: { aws: { sts_endpoint: sts.endpoint }, audit: { sink: 'file', path: file } } });
  try {
    const ok = await requestCredentials(tb.url, await sign());
    expect(ok.status).toBe(200);
    const denied = await requestCredentials(tb.url, await sign(), { role: 'nope' });
    expect(denied.status).toBe(403);
  } finally {
    await tb.close();
  }
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(lines.map((l) => l.decision)).toEqual(['allow', 'deny']);
  expect(statSync(file).mode & 0o777).toBe(0o600);
});
