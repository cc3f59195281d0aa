// Traced shells: Jenkins runs every `sh` step with `-xe`, and any CI shell may have `set -x`. The
// documented snippets run here exactly as written, under `sh -xe` (dash where installed) and
// `bash -x`, against the real broker, moto and the AWS CLI: the later `aws` call works, the trace
// is there, and neither the OIDC token nor any credential reaches it. The sh client, itself run
// with -x, keeps its body out of the trace.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { EXIT, NODE_CLIENT, POSIX_SH, SH_CLIENT, expectNoSecrets, run, tempDir } from './helpers.js';
import { ASSUMED_ROLE, AWS_CLI, startStack, type Stack } from './stack.js';
import { EVAL_UNDER_TRACE, SNIPPETS } from './snippets.js';

let stack: Stack;
let tmp: { dir: string; cleanup(): void };

beforeAll(async () => {
  stack = await startStack();
  tmp = tempDir();
});
afterAll(async () => {
  await stack?.close();
  tmp?.cleanup();
});

/** A Jenkins workspace with the clients vendored as the docs suggest (.ci/), and its step environment. */
function workspace(name: string, token: string): { dir: string; env: Record<string, string> } {
  const dir = path.join(tmp.dir, name);
  mkdirSync(path.join(dir, '.ci'), { recursive: true });
  symlinkSync(NODE_CLIENT, path.join(dir, '.ci', 'credbroker-client.mjs'));
  symlinkSync(SH_CLIENT, path.join(dir, '.ci', 'credbroker-client.sh'));
  const env = stack.stepEnv(dir, {
    // node and aws on PATH, as on a Jenkins agent.
    PATH: `${path.dirname(process.execPath)}:${path.dirname(AWS_CLI)}:${process.env.PATH}`,
    JENKINS_URL: 'https://jenkins.example.test/',
    WORKSPACE_TMP: path.join(dir, '..', `${name}@tmp`),
    // withCredentials binds the OIDC token credential to this variable.
    CREDBROKER_ID_TOKEN: token,
  });
  delete (env as Record<string, string | undefined>).AWS_SHARED_CREDENTIALS_FILE; // the snippet sets it
  return { dir, env };
}

/** The values the client wrote to the profile: everything that must stay out of the log. */
function profileSecrets(file: string): Record<string, string> {
  const text = readFileSync(file, 'utf8');
  const value = (k: string) => new RegExp(`^${k} = (.+)$`, 'm').exec(text)?.[1] ?? `missing ${k}`;
  return { AccessKeyId: value('aws_access_key_id'), SecretAccessKey: value('aws_secret_access_key'), SessionToken: value('aws_session_token') };
}

const shells: Array<[string, string[]]> = [
  [`${path.basename(POSIX_SH)} -xe (as Jenkins runs sh steps)`, [POSIX_SH, '-xe']],
  ['bash -x', ['bash', '-x']],
];

describe.each(shells)('the documented Jenkins snippets under %s', (_name, [shell, ...flags]) => {
  for (const [snippet, client] of [
    ['jenkinsNode', 'credbroker-client.mjs'],
    ['jenkinsSh', 'credbroker-client.sh'],
  ] as const) {
    it(`${client}: the next command is the assumed role, and the trace holds no token or credential`, async () => {
      const token = await stack.sign();
      const ws = workspace(`${snippet}-${path.basename(shell!)}`, token);
      const script = path.join(ws.dir, 'step.sh');
      writeFileSync(script, `${SNIPPETS[snippet]}\n`);
      const r = await run(shell!, [...flags, script], ws.env, { cwd: ws.dir, timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).Arn).toMatch(ASSUMED_ROLE);
      // The shell did trace (so the test would see a leak), and the trace is clean.
      expect(r.stderr).toMatch(/^\+ .*credbroker-client\.(mjs|sh) --provider jenkins --format profile$/m);
      const secrets = { OIDCToken: token, ...profileSecrets(path.join(ws.env.WORKSPACE_TMP!, 'aws-credentials')) };
      expectNoSecrets('the traced step log', r.stderr + r.stdout, secrets);
    });
  }

  it('credbroker-client.sh itself run with -x keeps its body, and so the token and credentials, out of the trace', async () => {
    const token = await stack.sign();
    const ws = workspace(`direct-${path.basename(shell!)}`, token);
    const out = path.join(ws.dir, 'aws.env');
    const r = await run(shell!, [...flags, SH_CLIENT, '--provider', 'jenkins', '--output', out], ws.env, { cwd: ws.dir, timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(EXIT.OK);
    const text = readFileSync(out, 'utf8');
    const value = (k: string) => new RegExp(`^export ${k}='(.+)'$`, 'm').exec(text)![1]!;
    expectNoSecrets('stderr', r.stderr, {
      OIDCToken: token,
      AccessKeyId: value('AWS_ACCESS_KEY_ID'),
      SecretAccessKey: value('AWS_SECRET_ACCESS_KEY'),
      SessionToken: value('AWS_SESSION_TOKEN'),
    });
    // Only the one line that turns tracing off (silenced) and the client's own message remain.
    expect(r.stderr).toMatch(/^credbroker-client\.sh: wrote .*aws\.env: credentials expire at \S+\n$/);
  });
});

it('why the docs avoid eval under a traced shell: `eval "$(…)"` under sh -x prints every credential', async () => {
  const ws = workspace('eval-hazard', await stack.sign());
  const r = await run(POSIX_SH, ['-xe', '-c', `${EVAL_UNDER_TRACE}\nprintf '%s' "$AWS_SESSION_TOKEN" > session-token`], ws.env, { cwd: ws.dir, timeoutMs: 60_000 });
  expect(r.code).toBe(0);
  const sessionToken = readFileSync(path.join(ws.dir, 'session-token'), 'utf8');
  expect(sessionToken.length).toBeGreaterThan(20);
  expect(r.stderr.includes(sessionToken)).toBe(true);
});
