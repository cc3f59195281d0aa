// Shared set-up for the rotation integration tests: moto as IAM/STS, the four CI API stand-ins,
// a command sink writing to a file, a SQLite store in a temp dir, a controllable clock, and
// captured logs and audit records.
import { mkdtempSync, readFileSync, existsSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { IAMClient, CreateUserCommand, CreateAccessKeyCommand, ListAccessKeysCommand, TagUserCommand } from '@aws-sdk/client-iam';
import { Registry } from 'prom-client';
import { startMoto, type Moto } from '../../support/moto.js';
import { startGithubApi, startGitlabApi, startCircleciApi, startTravisApi, type GithubApi, type GitlabApi, type CircleciApi, type TravisApi } from '../../support/ci-apis/index.js';
import { createLogger } from '../../../server/src/log.js';
import type { AuditRecord, AuditSink } from '../../../server/src/audit/types.js';
import { createIamKeys, type IamKeys } from '../../../server/src/aws/iam.js';
import { rotationConfigSchema, type RotationConfig, type RotationConfigInput } from '../../../server/src/rotation/config-schema.js';
import { SqliteStore } from '../../../server/src/store/sqlite.js';
import type { RotationDeps } from '../../../server/src/rotation/run.js';
import type { RotationHooks, SecretCache } from '../../../server/src/rotation/rotate-user.js';
import { createSink } from '../../../server/src/rotation/sinks/index.js';
import { SecretValue } from '../../../server/src/rotation/secret.js';

export interface Held {
  sink: string;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
}

export interface Env {
  moto: Moto;
  github: GithubApi;
  gitlab: GitlabApi;
  circleci: CircleciApi;
  travis: TravisApi;
  dir: string;
  dbPath: string;
  clock: { now: Date; advance(seconds: number): void };
  iamAdmin: IAMClient;
  iam: IamKeys;
  env: NodeJS.ProcessEnv;
  logs: string[];
  audit: AuditRecord[];
  auditSink: AuditSink;
  /** Every key count seen by the adapter's ListAccessKeys. */
  keyCounts: number[];
  /** Every key id the adapter saw (listed or created), per user. */
  keysSeen: Map<string, Set<string>>;
  registry: Registry;
  commandScript: string;
  close(): Promise<void>;
}

export async function startEnv(): Promise<Env> {
  const [moto, github, gitlab, circleci, travis] = await Promise.all([startMoto(), startGithubApi(), startGitlabApi(), startCircleciApi(), startTravisApi()]);
  const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-rotation-'));
  const commandScript = path.join(dir, 'sink.mjs');
  // The command sink under test: stores stdin and what it can see of argv and its environment.
  writeFileSync(
    commandScript,
    `import { writeFileSync } from 'node:fs';
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', () => {
  if (process.env.SINK_FAIL === '1') process.exit(3);
  writeFileSync(process.argv[2], JSON.stringify({ stdin: JSON.parse(input), argv: process.argv.slice(2), env: process.env }));
});
`,
  );
  const clock = {
    now: new Date('2026-01-01T00:00:00Z'),
    advance(seconds: number) {
      this.now = new Date(this.now.getTime() + seconds * 1000);
    },
  };
  const creds = { accessKeyId: moto.env.AWS_ACCESS_KEY_ID!, secretAccessKey: moto.env.AWS_SECRET_ACCESS_KEY! };
  const iamAdmin = new IAMClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: creds });
  const keyCounts: number[] = [];
  const keysSeen = new Map<string, Set<string>>();
  const saw = (user: string, id: string) => {
    let ids = keysSeen.get(user);
    if (!ids) keysSeen.set(user, (ids = new Set()));
    ids.add(id);
  };
  const real = createIamKeys({ region: 'us-east-1', iamEndpoint: moto.endpoint, stsEndpoint: moto.endpoint, credentials: creds, throttleBaseMs: 1 });
  const iam: IamKeys = {
    ...real,
    async listAccessKeys(user) {
      const keys = await real.listAccessKeys(user);
      keyCounts.push(keys.length);
      for (const k of keys) saw(user, k.accessKeyId);
      return keys;
    },
    async createAccessKey(user) {
      const key = await real.createAccessKey(user);
      saw(user, key.accessKeyId);
      return key;
    },
  };
  const logs: string[] = [];
  const audit: AuditRecord[] = [];
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    GH_TOKEN: github.token,
    GL_TOKEN: gitlab.token,
    CIRCLE_TOKEN: circleci.token,
    TRAVIS_TOKEN: travis.token,
    AWS_ACCESS_KEY_ID: creds.accessKeyId,
    AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
  };
  return {
    moto,
    github,
    gitlab,
    circleci,
    travis,
    dir,
    dbPath: path.join(dir, 'store.sqlite'),
    clock,
    iamAdmin,
    iam,
    env,
    logs,
    audit,
    auditSink: {
      async write(r) {
        audit.push(JSON.parse(JSON.stringify(r)) as AuditRecord);
      },
    },
    keyCounts,
    keysSeen,
    registry: new Registry(),
    commandScript,
    async close() {
      await Promise.all([moto.stop(), github.close(), gitlab.close(), circleci.close(), travis.close()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Sinks of every kind for one user, pointed at the stand-ins. */
export function allSinks(e: Env, user: string): RotationConfigInput['users'][number]['sinks'] {
  return [
    { type: 'github', token_env: 'GH_TOKEN', base_url: e.github.url, owner: 'acme', repo: user },
    { type: 'gitlab', token_env: 'GL_TOKEN', base_url: e.gitlab.url, project: `acme/${user}` },
    { type: 'circleci', token_env: 'CIRCLE_TOKEN', base_url: `${e.circleci.url}/api/v2`, project_slug: `gh/acme/${user}` },
    { type: 'travis', token_env: 'TRAVIS_TOKEN', base_url: e.travis.url, repo: `acme/${user}` },
    { type: 'command', name: 'file', command: [process.execPath, e.commandScript, path.join(e.dir, `${user}.json`)] },
  ];
}

export function rotationConfig(input: Partial<RotationConfigInput> & Pick<RotationConfigInput, 'users'>): RotationConfig {
  return rotationConfigSchema.parse({
    max_key_age_seconds: 30 * 86_400,
    grace_period_seconds: 3600,
    verify: { successes: 3, initial_backoff_ms: 5, max_backoff_ms: 20, timeout_seconds: 10 },
    sink_backoff_ms: 5,
    retry_backoff_seconds: 60,
    ...input,
  });
}

/** What each sink of `user` currently holds. */
export function held(e: Env, user: string): Held[] {
  const file = path.join(e.dir, `${user}.json`);
  const cmd = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { stdin: { access_key_id: string; secret_access_key: string } }).stdin : undefined;
  return [
    { sink: 'github', accessKeyId: e.github.decrypt(`repo:acme/${user}`, 'AWS_ACCESS_KEY_ID'), secretAccessKey: e.github.decrypt(`repo:acme/${user}`, 'AWS_SECRET_ACCESS_KEY') },
    { sink: 'gitlab', accessKeyId: e.gitlab.variable(`acme/${user}`, 'AWS_ACCESS_KEY_ID')?.value, secretAccessKey: e.gitlab.variable(`acme/${user}`, 'AWS_SECRET_ACCESS_KEY')?.value },
    { sink: 'circleci', accessKeyId: e.circleci.projects.get(`gh/acme/${user}`)?.get('AWS_ACCESS_KEY_ID'), secretAccessKey: e.circleci.projects.get(`gh/acme/${user}`)?.get('AWS_SECRET_ACCESS_KEY') },
    { sink: 'travis', accessKeyId: e.travis.value(`acme/${user}`, 'AWS_ACCESS_KEY_ID'), secretAccessKey: e.travis.value(`acme/${user}`, 'AWS_SECRET_ACCESS_KEY') },
    { sink: 'command', accessKeyId: cmd?.access_key_id, secretAccessKey: cmd?.secret_access_key },
  ];
}

export async function listKeys(e: Env, user: string): Promise<Array<{ id: string; status: string }>> {
  const out = await e.iamAdmin.send(new ListAccessKeysCommand({ UserName: user }));
  return (out.AccessKeyMetadata ?? []).map((k) => ({ id: k.AccessKeyId!, status: k.Status! }));
}

/**
 * Creates an IAM user with one Active key and delivers that key to every sink, as a human would
 * have done before credbroker took over. Returns the key id and every secret handed out.
 */
export async function createManagedUser(e: Env, user: string, opts: { tags?: Record<string, string>; path?: string; deliver?: boolean } = {}) {
  await e.iamAdmin.send(new CreateUserCommand({ UserName: user, Path: opts.path ?? '/ci/' }));
  if (opts.tags) await e.iamAdmin.send(new TagUserCommand({ UserName: user, Tags: Object.entries(opts.tags).map(([Key, Value]) => ({ Key, Value })) }));
  const k = (await e.iamAdmin.send(new CreateAccessKeyCommand({ UserName: user }))).AccessKey!;
  if (opts.deliver !== false) {
    const cfg = rotationConfig({ users: [{ name: user, sinks: allSinks(e, user) }] });
    for (const s of cfg.users[0]!.sinks) {
      await createSink(s, { env: e.env, timeoutMs: 5000 }).deliver({
        userName: user,
        accessKeyId: k.AccessKeyId!,
        secretAccessKey: new SecretValue(k.SecretAccessKey!),
        createdAt: new Date(),
      });
    }
  }
  return { keyId: k.AccessKeyId!, secret: k.SecretAccessKey! };
}

export function openStore(e: Env): SqliteStore {
  return SqliteStore.open(e.dbPath, { nowMs: () => e.clock.now.getTime() });
}

export function deps(e: Env, config: RotationConfig, store: SqliteStore, extra: { hooks?: RotationHooks; secrets?: SecretCache; holder?: string } = {}): RotationDeps {
  const logger = createLogger({
    level: 'debug',
    destination: {
      write(line: string) {
        e.logs.push(line);
      },
    },
  });
  return {
    config,
    store,
    iam: e.iam,
    audit: e.auditSink,
    logger,
    registry: e.registry,
    env: e.env,
    now: () => e.clock.now,
    sleep: async () => {},
    holder: extra.holder ?? 'test-runner',
    ...(extra.secrets ? { secrets: extra.secrets } : {}),
    ...(extra.hooks ? { hooks: extra.hooks } : {}),
  };
}

/**
 * The invariant after any persisted step: every sink holds a key that exists and is Active, the
 * pair it holds is consistent across sinks holding the same id, and the user has at most 2 keys.
 */
export async function invariantProblems(e: Env, user: string): Promise<string[]> {
  const keys = await listKeys(e, user);
  const problems: string[] = [];
  if (keys.length > 2) problems.push(`${keys.length} keys`);
  const secrets = new Map<string, string>();
  for (const h of held(e, user)) {
    const key = keys.find((k) => k.id === h.accessKeyId);
    if (!key) problems.push(`${h.sink} holds ${h.accessKeyId ?? 'nothing'}, which does not exist`);
    else if (key.status !== 'Active') problems.push(`${h.sink} holds ${h.accessKeyId}, which is ${key.status}`);
    if (h.accessKeyId && h.secretAccessKey) {
      const prior = secrets.get(h.accessKeyId);
      if (prior !== undefined && prior !== h.secretAccessKey) problems.push(`${h.sink} holds a different secret for ${h.accessKeyId}`);
      secrets.set(h.accessKeyId, h.secretAccessKey);
    }
  }
  return problems;
}

/**
 * IAM changes of `user` the audit trail does not show: every key the broker created has a
 * `rotation.create` ok record (its own, or one observed after a crash), every key that is gone has
 * an ok `rotation.delete` / `discard` / `delete_inactive`, every Inactive key an ok `deactivate`.
 * `humanKeys` were created outside the broker.
 */
export async function auditGaps(e: Env, user: string, humanKeys: string[]): Promise<string[]> {
  const now = new Set((await listKeys(e, user)).map((k) => k.id));
  const inactive = new Set((await listKeys(e, user)).filter((k) => k.status === 'Inactive').map((k) => k.id));
  const ok = (event: string, id: string) =>
    e.audit.some((r) => r.user === user && r.event === event && r.outcome === 'ok' && (r.key_id === id || (event === 'rotation.create' && r.new_key_id === id)));
  const gaps: string[] = [];
  for (const id of e.keysSeen.get(user) ?? []) {
    if (!humanKeys.includes(id) && !ok('rotation.create', id)) gaps.push(`created ${id}: no rotation.create`);
    if (!now.has(id) && !['rotation.delete', 'rotation.discard', 'rotation.delete_inactive'].some((ev) => ok(ev, id))) gaps.push(`deleted ${id}: no delete/discard record`);
    if (inactive.has(id) && !ok('rotation.deactivate', id)) gaps.push(`deactivated ${id}: no rotation.deactivate`);
  }
  return gaps;
}
