// The Node client and the sh client say the same thing for the same answer: one line, the same
// words, the same (code, request id, HTTP status) suffix with absent parts left out, and no
// trailing '/' in a URL. Both run against the same scripted answers; only the program name and
// the per-request ids differ. (A 200 that is not credentials is worded per format: the Node
// client asks for JSON, the sh client for export lines.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeJwt } from '../support/ci-providers/index.js';
import { freePort } from '../support/moto.js';
import { EXIT, runClient, runShClient, startFakeBroker, type FakeBroker, type ScriptedReply } from './helpers.js';

let broker: FakeBroker;
beforeAll(async () => {
  broker = await startFakeBroker();
});
afterAll(async () => {
  await broker.close();
});

const normalise = (stderr: string) => stderr.replace(/^credbroker-client(\.sh)?: /, 'CLIENT: ').replace(/request id [0-9a-f-]{36}/g, 'request id ID');

const cases: Array<{ name: string; replies: ScriptedReply[]; exit: number; message: string; url?: 'down'; args?: string[] }> = [
  { name: 'a server that is not the broker answers 405 in plain text', replies: [{ status: 405, body: 'Method Not Allowed', headers: { 'content-type': 'text/plain' } }], exit: EXIT.REJECTED, message: 'the broker rejected the request (request id ID, HTTP 405)' },
  { name: "a proxy answers 404 with its own JSON", replies: [{ status: 404, body: '{"message":"no route"}' }], exit: EXIT.REJECTED, message: 'the broker rejected the request (request id ID, HTTP 404)' },
  { name: 'the broker denies (403)', replies: [{ status: 403, code: 'ERR_POLICY_DENIED', message: 'no rule matches' }], exit: EXIT.DENIED, message: 'access denied by the broker: no rule matches (code ERR_POLICY_DENIED, request id ID, HTTP 403)' },
  { name: 'the broker rejects the request (400)', replies: [{ status: 400, code: 'ERR_BAD_REQUEST', message: 'role is required' }], exit: EXIT.REJECTED, message: 'the broker rejected the request: role is required (code ERR_BAD_REQUEST, request id ID, HTTP 400)' },
  { name: 'STS refuses the role (502 ERR_STS_ACCESS_DENIED)', replies: [{ status: 502, code: 'ERR_STS_ACCESS_DENIED', message: 'not trusted' }], exit: EXIT.DENIED, message: 'AWS STS refused to assume the role: not trusted (code ERR_STS_ACCESS_DENIED, request id ID, HTTP 502)' },
  { name: 'the broker has no AWS credentials (500 ERR_STS_CREDENTIALS): not retried', args: ['--retries', '2'], replies: [{ status: 500, code: 'ERR_STS_CREDENTIALS', message: 'The broker has no usable AWS credentials of its own.' }], exit: EXIT.UNAVAILABLE, message: 'the broker cannot issue credentials, and retrying will not help: The broker has no usable AWS credentials of its own. (code ERR_STS_CREDENTIALS, request id ID, HTTP 500)' },
  { name: 'a redirect', replies: [{ status: 307, body: '', headers: { location: 'http://127.0.0.1:1/x' } }], exit: EXIT.REJECTED, message: 'the broker answered a redirect; check --url (request id ID, HTTP 307)' },
  { name: '503 after every retry', args: ['--retries', '1'], replies: [{ status: 503, code: 'ERR_STS_UNAVAILABLE', message: 'try later', retryAfter: '0' }, { status: 503, code: 'ERR_STS_UNAVAILABLE', message: 'try later', retryAfter: '0' }], exit: EXIT.UNAVAILABLE, message: 'broker unavailable after 2 attempt(s): try later (code ERR_STS_UNAVAILABLE, request id ID, HTTP 503)' },
  { name: 'a Retry-After too long to wait for', replies: [{ status: 503, code: 'ERR_NOT_READY', message: 'starting', retryAfter: '600' }], exit: EXIT.UNAVAILABLE, message: 'broker unavailable (asked to retry after 600s): starting (code ERR_NOT_READY, request id ID, HTTP 503)' },
  { name: 'a 500 on GitLab, then the retry is a replay', args: ['--retries', '1'], replies: [{ status: 500, code: 'ERR_INTERNAL', message: 'oops' }], exit: EXIT.TOKEN_REJECTED, message: 'the broker rejected the OIDC token: token already used; gitlab cannot mint a fresh token from within the job (an earlier attempt failed: HTTP 500); re-run the job (code ERR_TOKEN_REPLAYED, request id ID, HTTP 401)' },
  { name: 'the broker is down', url: 'down', args: ['--retries', '1'], replies: [], exit: EXIT.UNAVAILABLE, message: 'broker BROKER unavailable after 2 attempt(s): cannot connect' },
];

describe('the same answer, the same message from both clients', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const url = c.url === 'down' ? `http://127.0.0.1:${await freePort()}` : broker.url;
      const results = [];
      for (const runOne of [runClient, runShClient]) {
        broker.script(...c.replies);
        const env = { HOME: '/nonexistent', CREDBROKER_URL: url, CREDBROKER_ROLE: 'deploy', GITLAB_CI: 'true', CREDBROKER_ID_TOKEN: fakeJwt({ c: c.name }) };
        results.push(await runOne(c.args ?? ['--retries', '0'], env));
      }
      const expected = `CLIENT: error: ${c.message.replace('BROKER', url)}\n`;
      expect(results.map((r) => r.code)).toEqual([c.exit, c.exit]);
      expect(results.map((r) => normalise(r.stderr))).toEqual([expected, expected]);
    });
  }
});
