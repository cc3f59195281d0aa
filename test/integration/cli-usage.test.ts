// The command line as people meet it: --help on every command, `credbroker help <cmd>`, one-line
// usage errors that name the flag, and nothing unprintable in any output. Every case is a real
// process.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { allCommands, GROUPS } from '../../server/src/cli/commands.js';

const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-usage-'));

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/src/cli.ts', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (status) => {
      // No NUL byte (or other control character but newline and tab) in anything the CLI prints.
      const control = /[\u0000-\u0008\u000b-\u001f]/.exec(`${stdout}${stderr}`);
      if (control) reject(new Error(`credbroker ${args.join(' ')} printed U+${control[0].charCodeAt(0).toString(16).padStart(4, '0')}`));
      else resolve({ status, stdout, stderr });
    });
  });
}

/** Runs many command lines, a few at a time (each is a Node process with tsx). */
async function each<T>(items: T[], fn: (item: T) => Promise<void>, parallel = 4): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: parallel }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
  }));
}

const commands = allCommands();

describe('--help', () => {
  it('works on every command and subcommand: exit 0, its own flags and examples on stdout', async () => {
    expect(commands.map((c) => c.path)).toEqual(expect.arrayContaining(['serve', 'revoke', 'audit', 'audit verify', 'config validate', 'policy test', 'keys', 'rotate']));
    await each(commands, async (spec) => {
      const r = await cli([...spec.path.split(' '), '--help']);
      expect(r.status, `${spec.path} --help: ${r.stderr}`).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(new RegExp(`^usage: credbroker ${spec.path}\\b`));
      for (const flag of Object.keys(spec.flags)) expect(r.stdout, spec.path).toContain(`--${flag}`);
      expect(r.stdout).toContain('examples:');
      expect(r.stdout).toContain(`\n  ${spec.examples[0]}\n`);
      expect(r.stdout).toMatch(/^exit status: /m);
    });
  }, 120_000);

  it('says the same as `credbroker help <cmd>`, and -h too', async () => {
    await each(['revoke', 'audit verify', 'config validate', 'serve'], async (path) => {
      const [viaFlag, viaHelp, viaShort] = await Promise.all([cli([...path.split(' '), '--help']), cli(['help', ...path.split(' ')]), cli([...path.split(' '), '-h'])]);
      expect(viaHelp.status).toBe(0);
      expect(viaHelp.stdout).toBe(viaFlag.stdout);
      expect(viaShort.stdout).toBe(viaFlag.stdout);
    }, 2);
  }, 60_000);

  it('on a command with subcommands lists them, exit 0; without one, exit 2 in one line', async () => {
    for (const g of GROUPS.filter((x) => x.subcommands && !x.command)) {
      const r = await cli([g.name, '--help']);
      expect(r.status).toBe(0);
      for (const sub of Object.keys(g.subcommands!)) expect(r.stdout).toContain(`credbroker ${g.name} ${sub}`);
    }
    const bare = await cli(['config']);
    expect(bare.status).toBe(2);
    expect(bare.stderr).toBe('credbroker: "config" needs a subcommand: validate, schema; see credbroker config --help\n');
    const wrong = await cli(['policy', 'explian']);
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toBe('credbroker: "policy" has no subcommand "explian" (explain, test, diff); see credbroker policy --help\n');
  }, 60_000);

  it('the top level: --help exit 0, an unknown command exit 2 in one line', async () => {
    const top = await cli(['--help']);
    expect(top.status).toBe(0);
    for (const g of GROUPS) expect(top.stdout).toContain(`  ${g.name} `);
    const unknown = await cli(['frobnicate']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toBe('credbroker: unknown command "frobnicate"; see credbroker --help\n');
  });
});

describe('usage errors', () => {
  it('an unknown flag, on any command: one line naming it and pointing to --help, exit 2', async () => {
    await each(commands, async (spec) => {
      const r = await cli([...spec.path.split(' '), '--bogus']);
      expect(r.status, spec.path).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`credbroker ${spec.path}: unknown option --bogus; see credbroker ${spec.path} --help\n`);
    });
  }, 120_000);

  it('a flag without its value, or a value for a switch, is named with what it expects', async () => {
    const missing = await cli(['config', 'validate', '--config']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toBe('credbroker config validate: --config needs a value (FILE); see credbroker config validate --help\n');
    const extra = await cli(['keys', '--json=yes']);
    expect(extra.status).toBe(2);
    expect(extra.stderr).toBe('credbroker keys: --json takes no value; see credbroker keys --help\n');
    const positional = await cli(['serve', 'credbroker.yaml']);
    expect(positional.status).toBe(2);
    expect(positional.stderr).toBe('credbroker serve: unexpected argument "credbroker.yaml": this command takes none; see credbroker serve --help\n');
  });

  it('revoke without --reason names it and shows the usage, before reading any config', async () => {
    const r = await cli(['revoke', '--claim', 'repository_id=1', '--config', path.join(dir, 'absent.yaml')]);
    expect(r.status).toBe(2);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe('credbroker revoke: --reason is required: why (recorded with the revocation and in the audit trail); see credbroker revoke --help');
    expect(lines[1]).toMatch(/^usage: credbroker revoke --reason TEXT /);
    expect(lines).toHaveLength(2);
  });

  it('policy test without its cases file says what it needs', async () => {
    const r = await cli(['policy', 'test']);
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe('credbroker policy test: needs CASES.yaml; see credbroker policy test --help');
  });
});

describe('errors that name the file', () => {
  const config = path.join(dir, 'credbroker.yaml');
  writeFileSync(
    config,
    [
      'issuers:',
      '  gh: { preset: github-actions, url: "https://token.actions.githubusercontent.com", audiences: [https://broker.example] }',
      'roles:',
      '  deploy:',
      '    arn: arn:aws:iam::123456789012:role/deploy',
      '    allow: [{ issuer: gh, claims: { repository_owner_id: "9919", repository_id: "487920697" } }]',
    ].join('\n'),
  );

  it('policy test: a claims_file that does not exist names the case, exit 2 (not a raw ENOENT)', async () => {
    const cases = path.join(dir, 'cases.yaml');
    writeFileSync(cases, ['cases:', '  - name: main deploys', '    role: deploy', '    claims_file: tokens/main.json', '    expect: allow'].join('\n'));
    const r = await cli(['policy', 'test', cases, '--config', config]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`credbroker policy test: ${cases}: case 1 "main deploys": claims_file tokens/main.json: no such file: ${path.join(dir, 'tokens/main.json')}\n`);
    expect(r.stderr).not.toContain('ENOENT');
  });

  it('policy explain: a --claims file that does not exist is named, exit 2', async () => {
    const r = await cli(['policy', 'explain', '--claims', path.join(dir, 'nope.json'), '--role', 'deploy', '--config', config]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`credbroker policy explain: --claims ${path.join(dir, 'nope.json')}: no such file: ${path.join(dir, 'nope.json')}\n`);
  });
});
