// The GitLab CI/CD component (templates/credbroker.yml), run the way a runner runs a job that
// extends its hidden job: inputs interpolated into `$[[ inputs.* ]]` (spec: inputs: checked as
// GitLab does: unknown or missing inputs, regex), the job's variables expanded, an id_token minted
// for the `aud` the job declares, and before_script + script run line by line by `sh -e`, each
// line echoed as the runner's log shows it (and once with CI_DEBUG_TRACE's `set -x`). The client is
// downloaded from a local server holding `npm run release:client`'s files and verified against
// SHA256SUMS. Real broker, moto, and the AWS CLI as the job's own command.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { startMoto, freePort, type Moto } from '../support/moto.js';
import { startIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { providerClaims } from '../support/fixtures.js';
import { POSIX_SH, expectNoSecrets, fileMode, run, tempDir } from './helpers.js';
import { ASSUMED_ROLE, AWS_CLI } from './stack.js';
import { startFront, type Front } from './tcp-front.js';

interface InputSpec {
  description?: string;
  default?: string;
  regex?: string;
}
const [specDoc, jobDoc] = parseAllDocuments(readFileSync('templates/credbroker.yml', 'utf8'));
const SPEC = (specDoc!.toJS() as { spec: { inputs: Record<string, InputSpec> } }).spec.inputs;
const TEMPLATE_BODY = jobDoc!.toString();

/** GitLab's `include: component … inputs:`: every input known, required ones given, regex matched. */
function interpolate(inputs: Record<string, string>): Record<string, any> {
  const values: Record<string, string> = {};
  for (const [name, spec] of Object.entries(SPEC)) {
    const v = inputs[name] ?? spec.default;
    if (v === undefined) throw new Error(`\`${name}\` input: required value not provided`);
    if (spec.regex && !new RegExp(spec.regex).test(v)) throw new Error(`\`${name}\` input: provided value does not match required RegEx pattern`);
    values[name] = v;
  }
  for (const name of Object.keys(inputs)) if (!(name in SPEC)) throw new Error(`unknown input arguments: ${name}`);
  const text = TEMPLATE_BODY.replace(/\$\[\[\s*inputs\.([\w-]+)\s*\]\]/g, (_m, name: string) => {
    if (!(name in values)) throw new Error(`unknown interpolation key: \`${name}\``);
    return values[name]!;
  });
  return parseAllDocuments(text)[0]!.toJS() as Record<string, any>;
}

/** The runner expands $VAR and ${VAR} in job variables from the variables defined so far. */
const expand = (value: string, env: Record<string, string>) => value.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a: string, b: string) => env[a ?? b] ?? '');

let moto: Moto;
let issuer: TestIssuer;
let broker: TestBroker;
let front: Front;
let files: http.Server;
let filesUrl: string;
let tmp: { dir: string; cleanup(): void };
let sums: Record<string, string>;

beforeAll(async () => {
  tmp = tempDir();
  // The release a user pins, served over HTTP.
  const releaseDir = path.join(tmp.dir, 'release');
  const r = await run(process.execPath, ['scripts/release-client.mjs', '--out', releaseDir], {}, { cwd: process.cwd() });
  expect(r.code).toBe(0);
  sums = Object.fromEntries(readFileSync(path.join(releaseDir, 'SHA256SUMS'), 'utf8').trim().split('\n').map((l) => l.split('  ').reverse() as [string, string]));
  files = http.createServer((req, res) => {
    try {
      const body = readFileSync(path.join(releaseDir, path.basename(req.url ?? '')));
      res.writeHead(200).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', () => resolve()));
  filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
  // The broker's URL is the id_token's audience, so its port is chosen before it starts.
  [moto, issuer] = await Promise.all([startMoto(), startIssuer()]);
  const port = await freePort();
  broker = await startTestBroker({ moto, issuer, issuerSettings: { test: { preset: 'github-actions', audiences: [`http://127.0.0.1:${port}`] } } });
  front = await startFront(broker.url, { port });
});
afterAll(async () => {
  await front?.close();
  await broker?.close();
  await Promise.all([issuer?.close(), moto?.stop()]);
  files?.close();
  tmp?.cleanup();
});

const inputs = (extra: Record<string, string> = {}) => ({
  url: front.url,
  role: 'deploy',
  region: 'eu-west-1',
  'client-url': `${filesUrl}/credbroker-client.sh`,
  'client-sha256': sums['credbroker-client.sh']!,
  ...extra,
});

/** Runs `job` (a job extending the component's hidden job) as the runner would; returns its log. */
async function runJob(job: Record<string, any>, jobId: string, opts: { debugTrace?: boolean; claims?: Record<string, unknown> } = {}) {
  const projectDir = path.join(tmp.dir, `builds-${jobId}`, 'group', 'project');
  mkdirSync(projectDir, { recursive: true });
  let env: Record<string, string> = {
    PATH: `${path.dirname(AWS_CLI)}:${process.env.PATH}`,
    HOME: path.join(tmp.dir, `builds-${jobId}`),
    GITLAB_CI: 'true',
    CI: 'true',
    CI_JOB_ID: jobId,
    CI_PROJECT_DIR: projectDir,
    // The job's AWS CLI talks to moto; nothing else configures it.
    AWS_ENDPOINT_URL_STS: moto.endpoint,
    AWS_CONFIG_FILE: path.join(tmp.dir, 'no-aws-config'),
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  for (const [k, v] of Object.entries(job.variables ?? {})) env = { ...env, [k]: expand(String(v), env) };
  // id_tokens: the runner puts a token minted for the declared audience into the named variable.
  for (const [name, spec] of Object.entries(job.id_tokens ?? {})) {
    env[name] = await issuer.sign({ ...providerClaims('github-actions'), ...opts.claims, aud: (spec as { aud: string }).aud });
  }
  const lines: string[] = [...(job.before_script ?? []), ...(job.script ?? [])];
  const script = [
    'set -e',
    opts.debugTrace ? 'set -x' : '',
    ...lines.map((l) => `printf '%s\\n' ${JSON.stringify(`$ ${l}`).replace(/\$/g, '\\$')}\n${l}`),
  ].join('\n');
  const r = await run(POSIX_SH, ['-c', script], env, { cwd: projectDir, timeoutMs: 60_000 });
  return { ...r, env };
}

const extendsComponent = (component: Record<string, any>, own: Record<string, unknown>) => ({ ...component['.credbroker'], ...own });

describe('spec: inputs', () => {
  it('requires url, role, region, client-url and client-sha256; checks the checksum\'s shape', () => {
    expect(() => interpolate({ url: 'https://b.example', role: 'r', region: 'eu-west-1', 'client-url': 'https://x' })).toThrow('`client-sha256` input: required value not provided');
    expect(() => interpolate({ ...inputs(), 'client-sha256': 'abc' })).toThrow('does not match required RegEx');
    expect(() => interpolate({ ...inputs(), audience: 'x' })).toThrow('unknown input arguments: audience');
    expect(Object.keys(interpolate(inputs()))).toEqual(['.credbroker']);
    expect(Object.keys(interpolate(inputs({ as: '.aws-prod' })))).toEqual(['.aws-prod']);
  });

  it('asks for an id_token whose audience is the broker URL', () => {
    expect(interpolate(inputs())['.credbroker'].id_tokens).toEqual({ CREDBROKER_ID_TOKEN: { aud: front.url } });
  });
});

describe.each([
  ['the default job log', false],
  ['CI_DEBUG_TRACE (set -x)', true],
])('a job extending the component, with %s', (_name, debugTrace) => {
  it('downloads and verifies the client, and its aws command is the assumed role; the log holds no token or credential', async () => {
    const jobId = debugTrace ? '7002' : '7001';
    const job = extendsComponent(interpolate(inputs()), { script: ['aws sts get-caller-identity'] });
    const r = await runJob(job, jobId, { debugTrace });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`$ sh "$CREDBROKER_DIR/credbroker-client.sh" --provider gitlab --format profile`);
    expect(r.stdout).toContain('/credbroker-client.sh: OK');
    const identity = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'), r.stdout.lastIndexOf('}') + 1));
    expect(identity.Arn).toMatch(ASSUMED_ROLE);
    const credentials = readFileSync(r.env.AWS_SHARED_CREDENTIALS_FILE!, 'utf8');
    expect(fileMode(r.env.AWS_SHARED_CREDENTIALS_FILE!)).toBe(0o600);
    expect(r.env.AWS_SHARED_CREDENTIALS_FILE!.startsWith(r.env.CI_PROJECT_DIR!)).toBe(false); // never in artifacts
    const value = (k: string) => new RegExp(`^${k} = (.+)$`, 'm').exec(credentials)![1]!;
    expectNoSecrets('the job log', r.stdout + r.stderr, {
      OIDCToken: r.env.CREDBROKER_ID_TOKEN!,
      AccessKeyId: value('aws_access_key_id'),
      SecretAccessKey: value('aws_secret_access_key'),
      SessionToken: value('aws_session_token'),
    });
    if (debugTrace) expect(r.stderr).toMatch(/^\+ sh \/tmp\/credbroker-7002\/credbroker-client\.sh --provider gitlab --format profile$/m);
  });
});

it('a client that does not match the pinned checksum is never run: the job fails before any exchange', async () => {
  const before = broker.audit.length;
  const job = extendsComponent(interpolate(inputs({ 'client-sha256': sums['credbroker-client.mjs']! })), { script: ['aws sts get-caller-identity'] });
  const r = await runJob(job, '7003');
  expect(r.code).not.toBe(0);
  expect(r.stdout + r.stderr).toMatch(/credbroker-client\.sh: FAILED/);
  expect(r.stdout).not.toContain('$ sh "$CREDBROKER_DIR/credbroker-client.sh"');
  expect(broker.audit.length).toBe(before);
});

it('a job the policy denies fails with the broker\'s code', async () => {
  const job = extendsComponent(interpolate(inputs()), { script: ['aws sts get-caller-identity'] });
  const r = await runJob(job, '7004', { claims: { repository_id: '1' } });
  expect(r.code, r.stderr).toBe(5);
  expect(r.stderr).toMatch(/^credbroker-client\.sh: error: access denied by the broker: .*\(code ERR_POLICY_DENIED, request id [^,]+, HTTP 403\)$/m);
});
