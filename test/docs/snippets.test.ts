// Every shell snippet in the README and docs/ is either run here, run by another named test, or
// marked as needing what a test cannot have (a real AWS account, a real CI provider). The marker is
// an HTML comment on the line right before the fence; docs/README.md ("Writing these pages")
// explains them. Runnable snippets run for real: the `credbroker` CLI from source, in a scratch
// directory, and next to a running broker where the marker asks for one.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse as parseYaml, stringify } from 'yaml';
import { loadConfigFile } from '../../server/src/config/load.js';
import { formatProblem } from '../../server/src/core/problems.js';
import { startServe, until, type ServeProcess } from '../support/serve-process.js';
import { ROOT, docFiles, exists, fences, read, type Fence } from './markdown.js';

const SHELL = new Set(['sh', 'bash', 'shell', 'console']);
const MARKER_LINE = /^\s*<!--\s*snippet:.*-->\s*$/;
const KINDS = ['run', 'file', 'tested', 'manual', 'cloud', 'ci'] as const;

export interface Marker {
  kind: (typeof KINDS)[number];
  /** run: the exit status the snippet must end with. */
  exit: number;
  /** run: next to a running broker. */
  broker: boolean;
  /** file: the name to write; tested: the test or script that runs it. */
  arg: string | undefined;
}

export function parseMarker(text: string): Marker | string {
  const [kind, ...args] = text.split(/\s+/);
  if (!(KINDS as readonly string[]).includes(kind!)) return `unknown snippet marker "${text}" (one of ${KINDS.join(', ')})`;
  const m: Marker = { kind: kind as Marker['kind'], exit: 0, broker: false, arg: undefined };
  for (const a of args) {
    if (m.kind === 'run' && /^exit=\d+$/.test(a)) m.exit = Number(a.slice(5));
    else if (m.kind === 'run' && a === 'broker') m.broker = true;
    else if ((m.kind === 'file' || m.kind === 'tested') && m.arg === undefined) m.arg = a;
    else return `unexpected "${a}" in snippet marker "${text}"`;
  }
  if ((m.kind === 'file' || m.kind === 'tested') && m.arg === undefined) return `snippet marker "${kind}" needs a path`;
  return m;
}

const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;

/** `manual` snippets may only run this repository's npm scripts, and those must exist. */
function manualProblem(body: string): string | undefined {
  for (const raw of body.split('\n')) {
    const line = raw.replace(/\s+#.*$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    for (const cmd of line.split('&&').map((c) => c.trim())) {
      const m = /^npm (ci|install|test|start|run ([\w:.-]+))$/.exec(cmd);
      if (!m) return `"${cmd}" is not an npm script of this repository: run it in a test, or mark it cloud/ci`;
      const script = m[2] ?? (m[1] === 'test' || m[1] === 'start' ? m[1] : undefined);
      if (script !== undefined && scripts[script] === undefined) return `npm script "${script}" does not exist in package.json`;
    }
  }
  return undefined;
}

/** Everything wrong with the markers of one page; an unmarked shell snippet first of all. */
export function markerProblems(file: string, text = read(file)): string[] {
  const problems: string[] = [];
  const all = fences(file, text);
  const fenceLines = new Set(all.map((f) => f.line));
  // A marker must sit right before a fence, or it marks nothing.
  text.split('\n').forEach((l, i) => {
    if (MARKER_LINE.test(l) && !fenceLines.has(i + 2)) problems.push(`${file}:${i + 1}: snippet marker not followed by a fence on the next line`);
  });
  for (const f of all) {
    const at = `${file}:${f.line}`;
    if (f.marker === undefined) {
      if (SHELL.has(f.lang)) problems.push(`${at}: ${f.lang} snippet without a marker (<!-- snippet: run | tested PATH | manual | cloud | ci -->)`);
      continue;
    }
    const m = parseMarker(f.marker);
    if (typeof m === 'string') {
      problems.push(`${at}: ${m}`);
      continue;
    }
    if (m.kind === 'file' && SHELL.has(f.lang)) problems.push(`${at}: a shell snippet cannot be a file; mark it run`);
    if (m.kind !== 'file' && !SHELL.has(f.lang)) problems.push(`${at}: "${m.kind}" marks a ${f.lang || 'plain'} block; only shell snippets run`);
    if (m.kind === 'file' && (path.isAbsolute(m.arg!) || m.arg!.split('/').includes('..'))) problems.push(`${at}: file ${m.arg} must stay in the scratch directory`);
    if (m.kind === 'tested' && !exists(path.join(ROOT, m.arg!))) problems.push(`${at}: "tested ${m.arg}": no such file`);
    if (m.kind === 'manual') {
      const why = manualProblem(f.body);
      if (why) problems.push(`${at}: ${why}`);
    }
  }
  const markers = all.flatMap((f) => (f.marker === undefined ? [] : [parseMarker(f.marker)])).filter((m): m is Marker => typeof m !== 'string');
  if (markers.some((m) => m.broker) && markers.some((m) => m.kind === 'file' && m.arg === 'credbroker.yaml')) {
    problems.push(`${file}: a page with "run broker" snippets gets its credbroker.yaml from the test; do not write one`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Running them.

const scratchDirs: string[] = [];
afterAll(() => {
  for (const d of scratchDirs) rmSync(d, { recursive: true, force: true });
});

/** `credbroker` on PATH: the CLI from source, whatever the working directory. */
function cliShim(dir: string): string {
  const require = createRequire(path.join(ROOT, 'package.json'));
  const tsxPackage = require.resolve('tsx/package.json');
  const loader = (JSON.parse(readFileSync(tsxPackage, 'utf8')) as { exports: Record<string, string> }).exports['.']!;
  const bin = path.join(dir, '.bin');
  mkdirSync(bin);
  const shim = path.join(bin, 'credbroker');
  writeFileSync(
    shim,
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} --import ${JSON.stringify(pathToFileURL(path.join(path.dirname(tsxPackage), loader)).href)} ${JSON.stringify(path.join(ROOT, 'server/src/cli.ts'))} "$@"\n`,
  );
  chmodSync(shim, 0o755);
  return bin;
}

/** A scratch directory with what the snippets refer to: config/, test/fixtures/, client/. */
function scratch(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-docs-'));
  scratchDirs.push(dir);
  cpSync(path.join(ROOT, 'config'), path.join(dir, 'config'), { recursive: true });
  cpSync(path.join(ROOT, 'test/fixtures'), path.join(dir, 'test/fixtures'), { recursive: true });
  symlinkSync(path.join(ROOT, 'client'), path.join(dir, 'client'));
  return dir;
}

/** The broker that `run broker` snippets talk to: the example policy, a SQLite store with a keyed audit chain, the admin API, metrics. */
async function startDocsBroker(dir: string): Promise<{ broker: ServeProcess; env: Record<string, string> }> {
  const example = parseYaml(read('config/example.yaml')) as Record<string, unknown>;
  const adminToken = randomBytes(24).toString('base64url');
  const config = {
    server: { host: '127.0.0.1', port: 0, readiness_wait_ms: 0 },
    store: { driver: 'sqlite', sqlite_path: path.join(dir, 'credbroker.sqlite') },
    audit: { sink: 'store', hmac_key_file: path.join(dir, 'audit-hmac.key'), checkpoints: { sink: 'file', path: path.join(dir, 'audit-checkpoints.jsonl') } },
    metrics: { host: '127.0.0.1', port: 0 },
    admin: { enabled: true, host: '127.0.0.1', port: 0, tokens: [{ name: 'docs', sha256: createHash('sha256').update(adminToken).digest('hex'), scopes: ['operate'] }] },
    issuers: example.issuers,
    roles: example.roles,
    deny: example.deny,
  };
  const file = path.join(dir, 'credbroker.yaml');
  writeFileSync(file, stringify(config));
  writeFileSync(path.join(dir, 'audit-hmac.key'), randomBytes(32).toString('base64'), { mode: 0o600 });
  const broker = await startServe(file);
  const adminUrl = () => /"admin_url":"(http:\/\/[^"]+)"/.exec(broker.stderr())?.[1];
  await until(() => adminUrl() !== undefined || broker.child.exitCode !== null, 30_000, () => broker.stderr());
  if (!adminUrl()) throw new Error(`the docs broker has no admin listener:\n${broker.stderr().slice(-2000)}`);
  return { broker, env: { BROKER: broker.url, ADMIN_URL: adminUrl()!, ADMIN_TOKEN: adminToken, METRICS_URL: broker.metricsUrl! } };
}

/** Runs a script with bash -e; stdout and stderr together, in the order they came. */
function bash(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** A console block: `$ ` lines (with `\` continuations) are commands, the rest expected output. */
export function splitConsole(body: string): { commands: string; expected: string[] } {
  const commands: string[] = [];
  const expected: string[] = [];
  let continued = false;
  for (const line of body.split('\n')) {
    if (continued || line.startsWith('$ ')) {
      commands.push(continued ? line : line.slice(2));
      continued = line.endsWith('\\');
    } else if (line.trim() !== '') expected.push(line.trimEnd());
  }
  return { commands: commands.join('\n'), expected };
}

/** Expected lines that do not appear, in order, among the actual ones. */
export function missingLines(expected: string[], actual: string): string[] {
  const lines = actual.split('\n').map((l) => l.trimEnd());
  let at = 0;
  const missing: string[] = [];
  for (const want of expected) {
    const found = lines.indexOf(want, at);
    if (found === -1) missing.push(want);
    else at = found + 1;
  }
  return missing;
}

/** A broker config written by a page must load with no problem and no lint warning. */
async function checkBrokerConfig(fence: Fence, file: string): Promise<void> {
  const doc = fence.lang === 'yaml' || fence.lang === 'yml' ? (parseYaml(fence.body) as unknown) : undefined;
  if (doc === null || typeof doc !== 'object' || !('issuers' in doc) || !('roles' in doc)) return;
  const { warnings } = await loadConfigFile(file);
  expect(warnings.map(formatProblem), `${fence.file}:${fence.line}: lint warnings`).toEqual([]);
}

async function runPage(page: string): Promise<number> {
  const all = fences(page).filter((f) => f.marker !== undefined);
  const steps = all.map((f) => ({ fence: f, marker: parseMarker(f.marker!) as Marker })).filter(({ marker }) => marker.kind === 'run' || marker.kind === 'file');
  const dir = scratch();
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${cliShim(dir)}${path.delimiter}${process.env.PATH ?? ''}` };
  let broker: ServeProcess | undefined;
  if (steps.some(({ marker }) => marker.broker)) {
    const started = await startDocsBroker(dir);
    broker = started.broker;
    Object.assign(env, started.env);
  }
  let ran = 0;
  try {
    for (const { fence, marker } of steps) {
      const at = `${fence.file}:${fence.line}`;
      if (marker.kind === 'file') {
        const target = path.join(dir, marker.arg!);
        mkdirSync(path.dirname(target), { recursive: true });
        writeFileSync(target, `${fence.body}\n`);
        await checkBrokerConfig(fence, target);
        continue;
      }
      const { commands, expected } = fence.lang === 'console' ? splitConsole(fence.body) : { commands: fence.body, expected: [] };
      const result = await bash(commands, dir, env);
      const report = `${at}: exit ${result.code}\n${result.output.slice(-3000)}`;
      expect(result.code, report).toBe(marker.exit);
      expect(missingLines(expected, result.output), `${at}: documented output not found, in order\n${result.output.slice(-3000)}`).toEqual([]);
      ran++;
    }
  } finally {
    if (broker) expect(await broker.stop('SIGTERM')).toBe(0);
  }
  return ran;
}

describe('snippet markers', () => {
  it.each(docFiles())('every shell snippet in %s is run by a test or marked', (file) => {
    expect(markerProblems(file)).toEqual([]);
  });

  it('flags an unmarked snippet, an unknown marker, a marker that marks nothing, and a test that does not exist', () => {
    const page = [
      '```sh',
      'credbroker serve',
      '```',
      '<!-- snippet: maybe -->',
      '```bash',
      'true',
      '```',
      '<!-- snippet: cloud -->',
      '',
      '```sh',
      'aws sts get-caller-identity',
      '```',
      '<!-- snippet: tested test/nowhere.test.ts -->',
      '```console',
      '$ true',
      '```',
      '<!-- snippet: manual -->',
      '```sh',
      'npm run no-such-script && curl https://example.com',
      '```',
      '```yaml',
      'a: 1',
      '```',
    ].join('\n');
    const problems = markerProblems('page.md', page);
    expect(problems).toEqual([
      'page.md:8: snippet marker not followed by a fence on the next line',
      'page.md:1: sh snippet without a marker (<!-- snippet: run | tested PATH | manual | cloud | ci -->)',
      'page.md:5: unknown snippet marker "maybe" (one of run, file, tested, manual, cloud, ci)',
      'page.md:10: sh snippet without a marker (<!-- snippet: run | tested PATH | manual | cloud | ci -->)',
      'page.md:14: "tested test/nowhere.test.ts": no such file',
      'page.md:18: npm script "no-such-script" does not exist in package.json',
    ]);
  });

  it('reads the options of a marker', () => {
    expect(parseMarker('run exit=1')).toEqual({ kind: 'run', exit: 1, broker: false, arg: undefined });
    expect(parseMarker('run broker')).toEqual({ kind: 'run', exit: 0, broker: true, arg: undefined });
    expect(parseMarker('file credbroker.yaml')).toMatchObject({ kind: 'file', arg: 'credbroker.yaml' });
    expect(parseMarker('tested')).toBe('snippet marker "tested" needs a path');
    expect(parseMarker('cloud exit=1')).toBe('unexpected "exit=1" in snippet marker "cloud exit=1"');
    expect(manualProblem('npm ci && npm start   # dev mode\nnpm test')).toBeUndefined();
    expect(manualProblem('npm run bench')).toBeUndefined();
    expect(manualProblem('credbroker serve')).toMatch(/not an npm script/);
  });

  it('splits a console block into commands and the output they must print', () => {
    expect(splitConsole('$ a \\\n  --b\nout 1\n\n$ c\nout 2')).toEqual({ commands: 'a \\\n  --b\nc', expected: ['out 1', 'out 2'] });
    expect(missingLines(['x', 'z'], 'x\ny\nz  \n')).toEqual([]);
    expect(missingLines(['z', 'x'], 'x\ny\nz\n')).toEqual(['x']);
  });
});

describe('runnable snippets', () => {
  const pages = docFiles().filter((f) => fences(f).some((x) => x.marker !== undefined && (parseMarker(x.marker) as Marker).kind === 'run'));

  it('exist on the pages a newcomer reads first', () => {
    expect(pages).toEqual(expect.arrayContaining(['README.md', 'docs/policy.md', 'docs/configuration.md', 'docs/operations.md', 'docs/providers/github-actions.md']));
  });

  it.each(pages)('%s: every run snippet does what the page says', async (page) => {
    expect(await runPage(page)).toBeGreaterThan(0);
  }, 180_000);
});
