// `credbroker dev` (what `npm start` runs): the whole exchange on a laptop, offline. It starts a dev
// OIDC issuer and moto (the STS/IAM stand-in) on loopback, writes a config that trusts only that
// issuer, creates the demo roles in moto, prints the commands that complete the loop, and runs the
// broker exactly as `serve` does (SQLite store, keyed audit chain in it), with the admin listener
// and the console on loopback behind a dev login. Stopping it stops every child.
// Loopback only, refused otherwise; every line it prints says "dev". Production is `serve`.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCommand, UsageError } from './args.js';
import { isLoopbackHost } from '../admin/listener.js';
import { DEV_REPOSITORY, startDevIssuer, type DevIssuer } from '../dev/issuer.js';
import { DEV_AWS_CREDENTIALS, MotoUnavailable, createDevRoles, ensureMoto, freeLoopbackPort, startDevMoto, venvDir, type DevMoto } from '../dev/moto.js';

const ACCOUNT = '123456789012'; // moto's account
export const DEV_ROLES = {
  'dev-deploy': `arn:aws:iam::${ACCOUNT}:role/credbroker-dev/deploy`,
  'dev-production': `arn:aws:iam::${ACCOUNT}:role/credbroker-dev/production`,
} as const;

const say = (line: string) => process.stderr.write(`credbroker dev │ ${line}\n`);

/** The repository root (where scripts/, client/ and the venv live), from source or from dist/. */
function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'client'))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function devConfigYaml(o: { host: string; port: number; adminPort: number; adminTokenSha256: string; issuerUrl: string; brokerUrl: string; stsEndpoint: string; dir: string }): string {
  const pin = `repository_owner_id: "${DEV_REPOSITORY.ownerId}", repository_id: "${DEV_REPOSITORY.id}"`;
  return `# Written by \`credbroker dev\` at each start: trusts only the dev issuer and uses moto as AWS.
# Dev mode only — never a production config.
server: { host: ${JSON.stringify(o.host)}, port: ${o.port}, readiness_wait_ms: 5000 }
aws: { region: us-east-1, sts_endpoint: ${JSON.stringify(o.stsEndpoint)}, iam_endpoint: ${JSON.stringify(o.stsEndpoint)}, role_chaining: never, max_attempts: 1 }
audit:
  sink: store
  hmac_key_file: ${JSON.stringify(path.join(o.dir, 'audit-hmac.key'))}
  checkpoints: { sink: file, path: ${JSON.stringify(path.join(o.dir, 'audit-checkpoints.jsonl'))} }
store: { driver: sqlite, sqlite_path: ${JSON.stringify(path.join(o.dir, 'credbroker.sqlite'))} }
metrics: { host: ${JSON.stringify(o.host)}, port: 0 }
# The console's dev login comes from \`credbroker dev\` itself, not from this file. The token below
# is random at each start and printed nowhere: the console needs none.
admin: { enabled: true, host: ${JSON.stringify(o.host)}, port: ${o.adminPort}, tokens: [{ name: dev, sha256: ${JSON.stringify(o.adminTokenSha256)}, scopes: [operate] }] }
issuers:
  dev:
    preset: github-actions
    url: ${JSON.stringify(o.issuerUrl)}
    audiences: [${JSON.stringify(o.brokerUrl)}]
    allow_insecure_http: true
roles:
  dev-deploy:
    description: The demo repository's main branch may deploy.
    arn: ${DEV_ROLES['dev-deploy']}
    allow:
      - { issuer: dev, claims: { ${pin}, ref: refs/heads/main } }
  dev-production:
    description: Only the production environment may; the dev token has none, so this is denied.
    arn: ${DEV_ROLES['dev-production']}
    allow:
      - { issuer: dev, claims: { ${pin}, environment: production } }
`;
}

/**
 * Holds host:port (0: any free port) until released, so that the dev issuer and moto, which take
 * free ports while dev mode starts, can never land on the broker's or the console's port. Resolves
 * undefined when the port is taken.
 */
function holdPort(host: string, port: number): Promise<{ port: number; release(): Promise<void> } | undefined> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, host, () => {
      const addr = srv.address() as net.AddressInfo;
      resolve({ port: addr.port, release: () => new Promise<void>((done) => srv.close(() => done())) });
    });
  });
}

/** Ends dev mode when its parent goes away (`kill <npm pid>` must not leave a broker running). */
function stopWithParent(): NodeJS.Timeout {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM');
  }, 500);
  timer.unref();
  return timer;
}

export async function main(argv: string[]): Promise<number> {
  const args = parseCommand('dev', argv);
  const values = { port: args.string('port'), host: args.string('host'), dir: args.string('dir') };
  const host = values.host ?? '127.0.0.1';
  if (!isLoopbackHost(host)) {
    process.stderr.write(`credbroker dev: refusing --host ${host}: dev mode binds to loopback only (127.0.0.1, ::1, localhost)\n`);
    return 2;
  }
  const bindHost = host === 'localhost' ? '127.0.0.1' : host;
  const requestedPort = values.port === undefined ? 8080 : Number(values.port);
  if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65_535) {
    throw new UsageError(`--port expects 0..65535, got ${JSON.stringify(values.port)}`, 'dev');
  }
  const root = repoRoot();
  const dir = path.resolve(values.dir ?? process.env.CREDBROKER_DEV_DIR ?? path.join(root, '.credbroker-dev'));
  mkdirSync(dir, { recursive: true, mode: 0o700 });

  // Every log line of this process says dev; the broker never sees the caller's real AWS keys.
  process.env.CREDBROKER_MODE = 'dev';
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  process.env.AWS_ACCESS_KEY_ID = DEV_AWS_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = DEV_AWS_CREDENTIALS.secretAccessKey;
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;

  say('DEV MODE — a built-in test issuer and moto stand in for your CI provider and AWS. Not for production.');
  const watchdog = stopWithParent();
  let issuer: DevIssuer | undefined;
  let moto: DevMoto | undefined;
  const held: { release(): Promise<void> }[] = [];
  try {
    const brokerHold = await holdPort(bindHost, requestedPort);
    if (brokerHold === undefined) {
      say(`port ${requestedPort} on ${bindHost} is in use: stop what holds it, or pass --port N (0: any free port)`);
      return 1;
    }
    held.push(brokerHold);
    const port = brokerHold.port;
    const adminHold = (port < 65_535 ? await holdPort(bindHost, port + 1) : undefined) ?? (await holdPort(bindHost, 0));
    if (adminHold === undefined) throw new Error('no free loopback port for the console');
    held.push(adminHold);
    const adminPort = adminHold.port;
    issuer = await startDevIssuer(bindHost);
    const brokerUrl = `http://${bindHost.includes(':') ? `[${bindHost}]` : bindHost}:${port}`;
    let stsEndpoint: string;
    try {
      moto = await startDevMoto(ensureMoto(root, say), bindHost);
      await createDevRoles(moto.endpoint, Object.values(DEV_ROLES));
      stsEndpoint = moto.endpoint;
    } catch (err) {
      if (!(err instanceof MotoUnavailable)) throw err;
      say(`WARNING: no STS stand-in: ${err.message}`);
      say('the broker starts anyway; exchanges answer 503 ERR_STS_UNAVAILABLE until moto is available');
      stsEndpoint = `http://${bindHost}:${await freeLoopbackPort(bindHost)}`; // nothing listens there
    }
    const configFile = path.join(dir, 'credbroker-dev.yaml');
    const keyFile = path.join(dir, 'audit-hmac.key');
    // Kept across starts: the chain in the dev store stays verifiable.
    if (!existsSync(keyFile)) writeFileSync(keyFile, randomBytes(48).toString('base64'), { mode: 0o600 });
    const adminTokenSha256 = createHash('sha256').update(randomBytes(32)).digest('hex');
    writeFileSync(configFile, devConfigYaml({ host: bindHost, port, adminPort, adminTokenSha256, issuerUrl: issuer.url, brokerUrl, stsEndpoint, dir }), { mode: 0o600 });
    say(`issuer ${issuer.url} · STS/IAM ${moto ? stsEndpoint : '(none)'} · config ${configFile}`);
    printLoop({ root, brokerUrl, issuer, stsEndpoint, haveMoto: moto !== undefined });

    const serve = await import('./serve.js');
    for (const h of held.splice(0)) await h.release();
    return await serve.main(['--config', configFile], {
      devLogin: true,
      onListening: ({ adminUrl }) => {
        if (adminUrl) say(`console ${adminUrl}/console/ — dev login (no SSO), loopback only`);
      },
    });
  } finally {
    for (const h of held) await h.release();
    clearInterval(watchdog);
    await moto?.stop();
    await issuer?.close();
    say('stopped');
  }
}

function printLoop(o: { root: string; brokerUrl: string; issuer: DevIssuer; stsEndpoint: string; haveMoto: boolean }): void {
  const rel = path.relative(process.cwd(), path.join(o.root, 'client', 'credbroker-client.mjs'));
  const client = rel.startsWith('..') ? path.join(o.root, 'client', 'credbroker-client.mjs') : rel;
  const onPath = spawnSync('sh', ['-c', 'command -v aws'], { stdio: 'ignore' }).status === 0;
  const aws = onPath ? 'aws' : path.join(venvDir(o.root), 'bin', 'aws');
  const lines = [
    `export ACTIONS_ID_TOKEN_REQUEST_URL=${q(o.issuer.tokenRequestUrl)}`,
    `export ACTIONS_ID_TOKEN_REQUEST_TOKEN=${q(o.issuer.requestToken)}`,
    `export AWS_ENDPOINT_URL=${q(o.stsEndpoint)}`,
    `eval "$(node ${client} --url ${o.brokerUrl} --role dev-deploy --provider github --region us-east-1)"`,
    `${aws} sts get-caller-identity`,
  ];
  say('complete the loop in another shell (the dev token is GitHub Actions-shaped):');
  const width = Math.max(...lines.map((l) => l.length));
  process.stdout.write(`${lines.map((l) => `${l.padEnd(width)}  # dev`).join('\n')}\n`);
  say('--role dev-production shows a denial; the console below shows why, condition by condition');
  if (!o.haveMoto) say('(without moto the exchange answers 503 — see the warning above)');
}
