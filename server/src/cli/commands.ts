// Every command of the CLI, declared once: its flags (what `util.parseArgs` accepts), its help text
// (`credbroker <cmd> --help`, `credbroker help <cmd>`) and where its code lives. Pure data, so
// `credbroker --help` loads nothing else, and docs/cli.md is checked against it.

export interface FlagSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** The value's placeholder in help, e.g. FILE. */
  arg?: string;
  /** Refused when absent: the error names the flag and shows the usage. */
  required?: boolean;
  help: string;
}

export interface CommandSpec {
  /** `config validate`, `revoke`… */
  path: string;
  summary: string;
  /** What follows `credbroker <path>` in the usage line. */
  usage: string;
  /** Positional arguments: how many, and their names for errors. */
  positionals?: { min: number; max: number; name: string };
  flags: Record<string, FlagSpec>;
  /** A paragraph or two after the usage line. */
  details?: string;
  examples: string[];
  exit: string;
}

export interface CommandGroup {
  name: string;
  summary: string;
  module: string;
  /** The command itself when it takes no subcommand (`audit` queries; `audit verify` verifies). */
  command?: CommandSpec;
  subcommands?: Record<string, CommandSpec>;
}

const config: FlagSpec = { type: 'string', short: 'c', arg: 'FILE', help: 'the config file (default $CREDBROKER_CONFIG, else ./credbroker.yaml)' };
const json: FlagSpec = { type: 'boolean', help: 'print JSON (for scripts) instead of text' };

export const GROUPS: CommandGroup[] = [
  {
    name: 'serve',
    summary: 'run the broker (HTTP API) until SIGTERM/SIGINT',
    module: './cli/serve.js',
    command: {
      path: 'serve',
      summary: 'run the broker (HTTP API) until SIGTERM/SIGINT',
      usage: '[--config FILE] [--port N] [--host ADDR]',
      flags: {
        config,
        port: { type: 'string', arg: 'N', help: 'listen on this port instead of server.port (0: any free port)' },
        host: { type: 'string', arg: 'ADDR', help: 'listen on this address instead of server.host' },
      },
      details:
        'Logs JSON lines on stderr (lint warnings included). SIGHUP or a change of the file reloads the\n' +
        'config (a bad file is rejected and the running config stays); SIGTERM drains and exits 0.',
      examples: ['credbroker serve --config /etc/credbroker/config.yaml', 'CREDBROKER_CONFIG=credbroker.yaml credbroker serve --port 0'],
      exit: '0 stopped by a signal; 1 the config, store or a listener failed at start; 2 usage',
    },
  },
  {
    name: 'dev',
    summary: 'dev mode on loopback: test issuer + moto, prints the commands to try it (npm start)',
    module: './cli/dev.js',
    command: {
      path: 'dev',
      summary: 'dev mode on loopback: a test issuer, moto as AWS, and the commands to try it',
      usage: '[--port N] [--host 127.0.0.1|::1|localhost] [--dir DIR]',
      flags: {
        port: { type: 'string', arg: 'N', help: 'broker port (default 8080; 0: any free port)' },
        host: { type: 'string', arg: 'ADDR', help: 'loopback address to bind (default 127.0.0.1); anything else is refused' },
        dir: { type: 'string', arg: 'DIR', help: 'where the dev config, SQLite store and audit key go (default .credbroker-dev, or $CREDBROKER_DEV_DIR)' },
      },
      details:
        'Runs the broker in dev mode on loopback: a built-in test OIDC issuer (GitHub Actions-shaped\n' +
        'tokens), moto as AWS STS/IAM, and a config that trusts only them. Prints the commands that get\n' +
        'credentials with the real client. The console is on the admin listener (the broker port + 1\n' +
        'when free), behind a dev login. Not for production: use `credbroker serve --config FILE`.',
      examples: ['credbroker dev', 'credbroker dev --port 9090 --dir /tmp/credbroker-dev'],
      exit: '0 stopped by a signal; 1 a port is taken or a child failed; 2 usage',
    },
  },
  {
    name: 'config',
    summary: 'config validate | config schema',
    module: './cli/config.js',
    subcommands: {
      validate: {
        path: 'config validate',
        summary: 'check a config file: every problem at once, with its path or line, and lint warnings',
        usage: '[--config FILE] [--json] [--strict]',
        flags: {
          config,
          json: { type: 'boolean', help: 'print {ok, file, problems, warnings, …} as JSON on stdout' },
          strict: { type: 'boolean', help: 'lint warnings fail the check too (exit 1)' },
        },
        details: 'Unset ${VAR} references are reported with their line, together with every other problem.',
        examples: ['credbroker config validate --config credbroker.yaml', 'credbroker config validate --strict --json > report.json'],
        exit: '0 valid; 1 invalid (or, with --strict, warnings); 2 usage',
      },
      schema: {
        path: 'config schema',
        summary: 'print the JSON Schema of the config file (for editors)',
        usage: '',
        flags: {},
        examples: ['credbroker config schema > credbroker.schema.json'],
        exit: '0',
      },
    },
  },
  {
    name: 'policy',
    summary: 'policy explain --claims F --role R | policy test CASES.yaml | policy diff OLD NEW',
    module: './cli/policy.js',
    subcommands: {
      explain: {
        path: 'policy explain',
        summary: 'why a claim set is allowed or denied a role: a verdict per rule and per condition',
        usage: '--claims FILE --role NAME [--issuer ID] [--config FILE] [--json]',
        flags: {
          claims: { type: 'string', arg: 'FILE', required: true, help: 'a claim set (JSON or YAML) or a JWT (decoded, not verified)' },
          role: { type: 'string', arg: 'NAME', required: true, help: 'the role asked for' },
          issuer: { type: 'string', arg: 'ID', help: "the issuer's id in the config (default: the one whose url is the claims' iss)" },
          config,
          json,
        },
        examples: ['credbroker policy explain --claims token.json --role deploy-production'],
        exit: '0 allow; 1 deny; 2 usage, or the config or the claims do not load',
      },
      test: {
        path: 'policy test',
        summary: 'run a table of claim sets against the policy, each with its expected decision',
        usage: 'CASES.yaml [--config FILE] [--json]',
        positionals: { min: 1, max: 1, name: 'CASES.yaml' },
        flags: { config, json: { type: 'boolean', help: 'print {passed, failed, cases} as JSON on stdout' } },
        details: 'A claim that no configured issuer is known to send is a warning on stderr (a typo never matches).',
        examples: ['credbroker policy test config/policy-tests.example.yaml --config config/example.yaml'],
        exit: '0 every case gets its expected decision; 1 some do not; 2 usage, or the config or a case does not load',
      },
      diff: {
        path: 'policy diff',
        summary: 'the access a config change gains and loses, as markdown for a pull request',
        usage: 'OLD NEW [--json]',
        positionals: { min: 2, max: 2, name: 'OLD NEW' },
        flags: { json },
        details: 'OLD and NEW are files or git revisions REV:PATH (e.g. origin/main:credbroker.yaml).',
        examples: ['credbroker policy diff origin/main:credbroker.yaml credbroker.yaml'],
        exit: '0; 2 usage, or either config does not load',
      },
    },
  },
  {
    name: 'token',
    summary: 'token decode [--file PATH | -]: header and claims, not verified',
    module: './cli/token.js',
    subcommands: {
      decode: {
        path: 'token decode',
        summary: "a JWT's header and claims, NOT verified (the signature is never printed)",
        usage: '[--file PATH | -]',
        positionals: { min: 0, max: 1, name: 'TOKEN' },
        flags: { file: { type: 'string', short: 'f', arg: 'PATH', help: 'read the token from this file (default: stdin)' } },
        details: 'A token on the command line stays in the shell history and the process list: use --file or stdin.',
        examples: ['credbroker token decode --file token.jwt', 'credbroker token decode - < token.jwt'],
        exit: '0 decoded; 1 not a JWT; 2 usage, or the file cannot be read',
      },
    },
  },
  {
    name: 'revoke',
    summary: 'block an identity (claims, session name, source identity) until it expires',
    module: './cli/ops.js',
    command: {
      path: 'revoke',
      summary: 'block an identity (claims, session name, source identity) on every replica until it expires',
      usage: '--reason TEXT [--issuer ID] (--claim NAME=VALUE ... | --claims-json JSON | --session-name GLOB | --source-identity GLOB) [--expires-in 24h | --expires-at ISO] [--config FILE]',
      flags: {
        reason: { type: 'string', arg: 'TEXT', required: true, help: 'why (recorded with the revocation and in the audit trail)' },
        issuer: { type: 'string', arg: 'ID', help: 'only tokens of this issuer (its id in the config)' },
        claim: { type: 'string', multiple: true, arg: 'NAME=VALUE', help: 'a claim the token must have (all must match)' },
        'claims-json': { type: 'string', arg: 'JSON', help: 'the claims as one JSON object' },
        'session-name': { type: 'string', arg: 'GLOB', help: 'sessions whose name matches' },
        'source-identity': { type: 'string', arg: 'GLOB', help: 'sessions whose source identity matches' },
        'expires-in': { type: 'string', arg: 'DURATION', help: 'e.g. 90m, 24h, 7d' },
        'expires-at': { type: 'string', arg: 'ISO', help: 'an ISO 8601 time' },
        config,
      },
      details:
        'Acts on the shared store (store.driver sqlite or postgres): the running replicas enforce it\n' +
        'within a second. A claim name no configured issuer is known to send is a warning.',
      examples: ['credbroker revoke --issuer github --claim repository_id=487920697 --reason "token leak" --expires-in 24h'],
      exit: '0 revoked (the revocation is printed as JSON); 1 refused; 2 usage or config',
    },
  },
  {
    name: 'unrevoke',
    summary: 'lift a revocation by id',
    module: './cli/ops.js',
    command: {
      path: 'unrevoke',
      summary: 'lift a revocation by id',
      usage: 'ID [--config FILE]',
      positionals: { min: 1, max: 1, name: 'ID' },
      flags: { config },
      examples: ['credbroker unrevoke 0b6c2f7e-5a0e-4c1e-9a43-1f0d7d8c9b21'],
      exit: '0 lifted; 1 no such revocation; 2 usage or config',
    },
  },
  {
    name: 'revocations',
    summary: 'list active (or --all) revocations',
    module: './cli/ops.js',
    command: {
      path: 'revocations',
      summary: 'list the active revocations as JSON',
      usage: '[--all] [--config FILE]',
      flags: { all: { type: 'boolean', help: 'include expired ones' }, config },
      examples: ['credbroker revocations', 'credbroker revocations --all'],
      exit: '0; 2 usage or config',
    },
  },
  {
    name: 'revoke-sessions',
    summary: 'revoke active sessions of a role (AWSRevokeOlderSessions)',
    module: './cli/ops.js',
    command: {
      path: 'revoke-sessions',
      summary: "invalidate every session of a role issued before now (IAM's AWSRevokeOlderSessions)",
      usage: '--role NAME [--config FILE]',
      flags: { role: { type: 'string', arg: 'NAME', required: true, help: 'the role (its name in the config)' }, config },
      examples: ['credbroker revoke-sessions --role deploy-production'],
      exit: '0 done; 1 IAM refused; 2 usage, config or unknown role',
    },
  },
  {
    name: 'audit',
    summary: 'query the audit trail | audit verify (hash chain)',
    module: './cli/ops.js',
    command: {
      path: 'audit',
      summary: 'query the audit trail: a table, or JSON lines with --json',
      usage: '[--since 1h|ISO] [--until ISO] [--subject S] [--role R] [--decision allow|deny|error] [--event E] [--limit N] [--json] [--config FILE]',
      flags: {
        since: { type: 'string', arg: 'WHEN', help: 'a duration ago (90m, 24h, 7d) or an ISO time' },
        until: { type: 'string', arg: 'WHEN', help: 'a duration ago or an ISO time' },
        subject: { type: 'string', arg: 'S', help: "the token's sub" },
        role: { type: 'string', arg: 'R', help: 'the role asked for' },
        decision: { type: 'string', arg: 'D', help: 'allow, deny or error' },
        event: { type: 'string', arg: 'E', help: 'exchange, admin.revoke, rotation.…' },
        limit: { type: 'string', arg: 'N', help: 'at most N records, newest first (default 100)' },
        json: { type: 'boolean', help: 'one JSON object per record and line (seq, hash and the whole record), for jq and scripts' },
        config,
      },
      details: 'Reads the shared store (audit.sink store). `credbroker audit verify` checks the hash chain.',
      examples: ['credbroker audit --since 24h --role deploy-production --decision allow', "credbroker audit --since 1h --event admin.revoke --json | jq .revocation"],
      exit: '0; 2 usage or config',
    },
    subcommands: {
      verify: {
        path: 'audit verify',
        summary: "verify the audit chain: every record's hash, the HMAC key, the signed checkpoints",
        usage: '[--checkpoints FILE ...] [--head HASH] [--config FILE]',
        flags: {
          checkpoints: { type: 'string', multiple: true, arg: 'FILE', help: 'also check the checkpoints in this file (e.g. the broker logs)' },
          head: { type: 'string', arg: 'HASH', help: 'the chain must reach this head hash' },
          config,
        },
        details: 'Prints the result as JSON on stdout; each problem and warning as a line on stderr.',
        examples: ['credbroker audit verify --checkpoints audit-checkpoints.jsonl'],
        exit: '0 intact; 1 a problem was found; 2 usage or config',
      },
    },
  },
  {
    name: 'rotate',
    summary: 'rotate static IAM user keys (--user X | --all) [--dry-run]',
    module: './rotation/cli.js',
    command: {
      path: 'rotate',
      summary: 'rotate static IAM user keys and deliver them to the CI secret stores',
      usage: '(--user NAME ... | --all) [--force] [--dry-run] [--json] [--config FILE]',
      flags: {
        user: { type: 'string', multiple: true, short: 'u', arg: 'NAME', help: 'rotate this user now, due or not: the leak response' },
        all: { type: 'boolean', help: 'every managed user whose key is due' },
        force: { type: 'boolean', help: 'with --all: every managed user, due or not' },
        'dry-run': { type: 'boolean', help: 'print what would happen; changes nothing' },
        json,
        config,
      },
      details:
        'The summary goes to stdout, log lines to stderr. SIGTERM/SIGINT stop after the step in flight,\n' +
        'delete a new key no sink received and release the lock (a second signal exits at once).',
      examples: ['credbroker rotate --all --dry-run', 'credbroker rotate --user ci-deployer'],
      exit: '0 done; 1 a user failed; 2 usage or config; 3 another broker holds the rotation lock; 128+N stopped by signal N',
    },
  },
  {
    name: 'keys',
    summary: 'list managed IAM users and their keys',
    module: './rotation/cli-keys.js',
    command: {
      path: 'keys',
      summary: 'the managed IAM users: key ids (never secrets), ages, last use, rotation state',
      usage: '[--json] [--config FILE]',
      flags: { json, config },
      examples: ['credbroker keys', 'credbroker keys --json | jq ".users[].keys"'],
      exit: '0; 1 a user has a problem; 2 usage or config',
    },
  },
];

export const group = (name: string): CommandGroup | undefined => GROUPS.find((g) => g.name === name);

/** Every command spec, for help and for the docs check. */
export function allCommands(): CommandSpec[] {
  return GROUPS.flatMap((g) => [...(g.command ? [g.command] : []), ...Object.values(g.subcommands ?? {})]);
}

/** The spec for `credbroker <words…>`: `config validate`, `audit`, `audit verify`. */
export function commandSpec(path: string): CommandSpec {
  const spec = allCommands().find((c) => c.path === path);
  if (!spec) throw new Error(`no command spec "${path}"`);
  return spec;
}

const flagLabel = (name: string, f: FlagSpec) => `${f.short ? `-${f.short}, ` : '    '}--${name}${f.arg ? ` ${f.arg}` : ''}`;

export function commandHelp(spec: CommandSpec): string {
  const flags: Array<[string, FlagSpec]> = [...Object.entries(spec.flags), ['help', { type: 'boolean', short: 'h', help: 'this help' }]];
  const width = Math.max(...flags.map(([n, f]) => flagLabel(n, f).length));
  const lines = [`usage: credbroker ${spec.path}${spec.usage ? ` ${spec.usage}` : ''}`, '', `${spec.summary[0]!.toUpperCase()}${spec.summary.slice(1)}.`];
  if (spec.details) lines.push('', spec.details);
  lines.push('', 'options:');
  for (const [name, f] of flags) lines.push(`  ${flagLabel(name, f).padEnd(width)}  ${f.required ? 'required: ' : ''}${f.help}${f.multiple ? '; repeatable' : ''}`);
  lines.push('', 'examples:', ...spec.examples.map((e) => `  ${e}`), '', `exit status: ${spec.exit}`);
  return `${lines.join('\n')}\n`;
}

export function groupHelp(g: CommandGroup): string {
  const subs = Object.values(g.subcommands ?? {});
  const all = [...(g.command ? [g.command] : []), ...subs];
  const width = Math.max(...all.map((c) => c.path.length));
  const names = subs.map((s) => s.path.split(' ')[1]).join('|');
  const lines = [`usage: credbroker ${g.name} ${g.command ? `[${names}]` : `<${names}>`} [options]`, '', 'commands:'];
  for (const c of all) lines.push(`  credbroker ${c.path.padEnd(width)}  ${c.summary}`);
  lines.push('', `Each takes --help: ${all.map((c) => `credbroker ${c.path} --help`).join(', ')}.`);
  return `${lines.join('\n')}\n`;
}

export function topHelp(): string {
  const width = Math.max(...GROUPS.map((g) => g.name.length));
  return (
    'usage: credbroker <command> [options]\n\ncommands:\n' +
    GROUPS.map((g) => `  ${g.name.padEnd(width)}  ${g.summary}`).join('\n') +
    '\n\n' +
    `  ${'help <command>'.padEnd(width)}  the same as credbroker <command> --help\n` +
    `  ${'--version'.padEnd(width)}  the version\n\n` +
    'Every command takes --help. Reference: docs/cli.md.\n'
  );
}
