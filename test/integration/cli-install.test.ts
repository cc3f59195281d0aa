// The commands on PATH the way users put them there: `npx credbroker` in a checkout (the `prepare`
// script built dist/ at `npm ci`), and the packed tarball installed globally into a scratch prefix.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-install-'));
const npm = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync('npm', args, { cwd: root, encoding: 'utf8', timeout: 180_000, env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', ...env } });

beforeAll(() => {
  // What `npm ci` runs as `prepare` (a no-op when dist/ is up to date).
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  expect(pkg.scripts.prepare).toContain('scripts/build.mjs --prepare');
  const r = npm(['run', 'prepare', '--silent']);
  expect(r.status, r.stderr).toBe(0);
}, 300_000);

describe('credbroker on PATH', () => {
  it('npx credbroker works in the checkout', () => {
    const r = npm(['exec', '--yes', '--', 'credbroker', '--help'], { npm_config_cache: path.join(dir, 'npm-cache') });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^usage: credbroker <command> \[options\]/);
  }, 120_000);

  it('the packed tarball, installed with npm install -g --prefix, gives working commands', () => {
    const pack = npm(['pack', '--ignore-scripts', '--json', '--pack-destination', dir]);
    expect(pack.status, pack.stderr).toBe(0);
    const [info] = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = info!.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(['dist/server/src/cli.js', 'dist/server/openapi.json', 'client/credbroker-client.mjs', 'README.md', 'LICENSE']));
    expect(files.filter((f) => f.startsWith('test/') || f.startsWith('server/src/') || f.startsWith('node_modules/'))).toEqual([]);

    const prefix = path.join(dir, 'prefix');
    // Dependencies from the local npm cache when it has them (as after `npm ci`); no native build:
    // what is checked is that the commands are installed and run.
    const install = npm(['install', '--global', '--prefix', prefix, '--prefer-offline', '--ignore-scripts', path.join(dir, info!.filename)]);
    expect(install.status, install.stderr).toBe(0);
    const bin = path.join(prefix, 'bin', 'credbroker');
    expect(existsSync(bin)).toBe(true);
    const help = spawnSync(bin, ['--help'], { encoding: 'utf8' });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^usage: credbroker <command> \[options\]/);
    const validate = spawnSync(bin, ['config', 'validate', '--config', path.join(root, 'config/example.yaml')], { encoding: 'utf8' });
    expect(validate.status, validate.stderr).toBe(0);
    expect(validate.stdout).toMatch(/^ok: .*example\.yaml: 2 issuer\(s\), 2 role\(s\)/);
    const version = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    expect(version.stdout).toBe(`credbroker ${(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version}\n`);
    const client = spawnSync(path.join(prefix, 'bin', 'credbroker-client'), ['--help'], { encoding: 'utf8' });
    expect(client.status, client.stderr).toBe(0);
  }, 300_000);
});
