// A persistent self-hosted runner: job A (allowed) runs the AWS CLI with the client as its
// credential_process and leaves a cache behind; job B, whose token the broker denies (a fork's pull
// request), runs the same command on the same machine, as the same user. B must be refused by the
// broker — never served A's credentials from the cache.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { EXIT, NODE_CLIENT, expectNoSecrets, runClient, tempDir } from './helpers.js';
import { ASSUMED_ROLE, callerArn, startStack, type Stack } from './stack.js';

let stack: Stack;
let runnerHome: { dir: string; cleanup(): void };

beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
});

/** A GitLab job's step on the shared runner: same HOME, its own job id and id_token. */
function gitlabJob(jobId: string, token: string, extra: Record<string, string> = {}): Record<string, string> {
  const config = path.join(runnerHome.dir, `aws-config-${jobId}`);
  writeFileSync(config, `[profile ci]\ncredential_process = ${process.execPath} ${NODE_CLIENT} --format credential-process ${extra.CACHE_FLAG ?? ''}\n`);
  return stack.stepEnv(runnerHome.dir, { GITLAB_CI: 'true', CI_JOB_ID: jobId, CREDBROKER_ID_TOKEN: token, AWS_CONFIG_FILE: config, AWS_DEFAULT_REGION: 'us-east-1' });
}

describe.each([
  ['the default per-job cache location', ''],
  ['one --cache-dir shared by both jobs', '--cache-dir SHARED'],
])('job A caches, then denied job B asks, with %s', (_name, cacheFlag) => {
  it('B gets the broker\'s denial (exit 5, audited), not A\'s credentials', async () => {
    runnerHome = tempDir();
    try {
      const flag = cacheFlag.replace('SHARED', path.join(runnerHome.dir, 'shared-cache'));
      const tokenA = await stack.sign();
      const a = await callerArn(gitlabJob('1001', tokenA, { CACHE_FLAG: flag }), ['--profile', 'ci']);
      expect(a.stderr).toBe('');
      expect(a.arn).toMatch(ASSUMED_ROLE);

      const from = stack.broker.audit.length;
      const tokenB = await stack.sign({ repository_id: '1' }); // not allowed by the policy
      const b = await callerArn(gitlabJob('1002', tokenB, { CACHE_FLAG: flag }), ['--profile', 'ci']);
      expect(b.code).not.toBe(0);
      expect(b.arn).toBeUndefined();
      expect(b.stderr).toMatch(/access denied by the broker.*code ERR_POLICY_DENIED/);
      // The broker was asked, and said no.
      const records = stack.exchanges(from);
      expect(records.map((r) => [r.decision, r.code])).toEqual([['deny', 'ERR_POLICY_DENIED']]);

      // The client alone, as B's next step (a new token: B's first one is spent): exit 5, nothing on stdout.
      const tokenB2 = await stack.sign({ repository_id: '1' });
      const direct = await runClient(['--format', 'credential-process', ...(flag ? flag.split(' ') : [])], gitlabJob('1003', tokenB2));
      expect(direct.code).toBe(EXIT.DENIED);
      expect(direct.stdout).toBe('');
      expectNoSecrets('stderr', direct.stderr, { OIDCToken: tokenB2 });
    } finally {
      runnerHome.cleanup();
    }
  });
});
