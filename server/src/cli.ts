#!/usr/bin/env -S node --max-semi-space-size=32
// credbroker command line. (--max-semi-space-size=32: a larger young generation keeps the
// short-lived objects of each exchange out of old-space GC; measured +12–17 % throughput.)
// The commands are declared in cli/commands.ts (flags and help); each lives in its own module,
// loaded on demand so that `credbroker token decode` does not pay for the AWS SDK, and --help
// loads nothing but the declarations.

import { GROUPS, commandHelp, group, groupHelp, topHelp, type CommandGroup, type CommandSpec } from './cli/commands.js';

// The AWS SDK warns on Node 20, on stderr in plain text, that its releases after January 2027 need
// Node 22 (the README says so). It would break `serve`'s JSON lines: silenced unless asked for.
// (Static imports run first, but none of them loads the SDK.)
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

type Module = { main(argv: string[], command: string): Promise<number> };

/** The spec `argv` names within a group, and the arguments after it; undefined: the group itself. */
function resolve(g: CommandGroup, argv: string[]): { spec: CommandSpec | undefined; rest: string[] } {
  const sub = argv[0] !== undefined ? g.subcommands?.[argv[0]] : undefined;
  if (sub) return { spec: sub, rest: argv.slice(1) };
  return { spec: g.command, rest: argv };
}

async function version(): Promise<string> {
  // server/src/cli.ts runs from source (tsx) or from dist/server/src/cli.js: find package.json.
  const { readFileSync, existsSync } = await import('node:fs');
  const file = ['../../package.json', '../../../package.json'].map((p) => new URL(p, import.meta.url)).find((u) => existsSync(u));
  const pkg = file ? (JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string }) : {};
  return `credbroker ${pkg.name === 'credbroker' ? pkg.version : 'unknown'}\n`;
}

function usageError(message: string, hint = 'see credbroker --help'): number {
  process.stderr.write(`credbroker: ${message}; ${hint}\n`);
  return 2;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    process.stderr.write(topHelp());
    return 2;
  }
  if (name === '-h' || name === '--help') {
    process.stdout.write(topHelp());
    return 0;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(await version());
    return 0;
  }
  if (name === 'help') {
    // `credbroker help <cmd> [<sub>]`: the same as `credbroker <cmd> [<sub>] --help`.
    if (rest.length === 0) {
      process.stdout.write(topHelp());
      return 0;
    }
    const g = group(rest[0]!);
    if (!g) return usageError(`unknown command "${rest[0]}"`);
    const sub = rest[1] !== undefined ? g.subcommands?.[rest[1]] : undefined;
    if (rest[1] !== undefined && !sub) return usageError(`"${g.name}" has no subcommand "${rest[1]}"`, `see credbroker ${g.name} --help`);
    process.stdout.write(sub ? commandHelp(sub) : g.command && !g.subcommands ? commandHelp(g.command) : g.command ? `${commandHelp(g.command)}\n${groupHelp(g)}` : groupHelp(g));
    return 0;
  }
  const g = GROUPS.find((x) => x.name === name);
  if (!g) return usageError(`unknown command "${name}"`);
  const { spec, rest: args } = resolve(g, rest);
  const end = args.indexOf('--');
  const help = (end === -1 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
  if (!spec) {
    // A group of subcommands (`config`, `policy`, `token`) without a known one.
    if (help || rest[0] === 'help') {
      process.stdout.write(groupHelp(g));
      return 0;
    }
    const subs = Object.keys(g.subcommands ?? {}).join(', ');
    if (rest[0] === undefined) return usageError(`"${g.name}" needs a subcommand: ${subs}`, `see credbroker ${g.name} --help`);
    return usageError(`"${g.name}" has no subcommand "${rest[0]}" (${subs})`, `see credbroker ${g.name} --help`);
  }
  if (help) {
    process.stdout.write(spec === g.command && g.subcommands ? `${commandHelp(spec)}\n${groupHelp(g)}` : commandHelp(spec));
    return 0;
  }
  const { reportCliError } = await import('./cli/args.js');
  try {
    const mod = (await import(g.module)) as Module;
    return await mod.main(rest, name);
  } catch (err) {
    return reportCliError(err, spec.path);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`credbroker: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
