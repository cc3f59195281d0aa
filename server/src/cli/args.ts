// The one flag parser of the CLI: Node's util.parseArgs, driven by the declarative specs in
// commands.ts (which also make the help). Usage errors are one line that names the flag and points
// to --help, with exit status 2.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, configPathFrom, loadConfigFile } from '../config/load.js';
import { formatProblem, type Problem } from '../core/problems.js';
import type { Config } from '../config/compile.js';
import { commandHelp, commandSpec, type CommandSpec } from './commands.js';

/** A command line the command cannot run: printed as one line naming the flag, exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    /** The command (`config validate`), for "see credbroker <cmd> --help". */
    readonly command?: string,
    /** Also print the usage line (a required flag or argument is missing). */
    readonly showUsage = false,
  ) {
    super(message);
  }
}

/** Ends the command with this status once what it had to say is said (e.g. after --help). */
export class CliExit extends Error {
  override readonly name = 'CliExit';
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** Prints a usage error (or does nothing for CliExit) and gives the exit status; rethrows anything else. */
export function reportCliError(err: unknown, command?: string): number {
  if (err instanceof CliExit) return err.code;
  if (!(err instanceof UsageError)) throw err;
  const cmd = err.command ?? command;
  const lines = [`credbroker${cmd ? ` ${cmd}` : ''}: ${err.message}${cmd ? `; see credbroker ${cmd} --help` : ''}`];
  if (err.showUsage && cmd) {
    const spec = commandSpec(cmd);
    lines.push(`usage: credbroker ${spec.path}${spec.usage ? ` ${spec.usage}` : ''}`);
  }
  process.stderr.write(`${lines.join('\n')}\n`);
  return 2;
}

/** --help or -h before any `--`. */
export const wantsHelp = (argv: string[]): boolean => {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
};

export interface Args {
  readonly positionals: string[];
  /** A string flag's value (undefined when absent). */
  string(name: string): string | undefined;
  /** A boolean flag: true when given. */
  flag(name: string): boolean;
  /** A repeatable flag's values, in order. */
  list(name: string): string[];
}

/** `--x` from parseArgs' messages ("Option '-c, --config <value>' argument missing"). */
const optionIn = (message: string) => /'(?:-\w, )?(--?[\w-]+)/.exec(message)?.[1] ?? '';

function translate(err: unknown, spec: CommandSpec): UsageError {
  const { code, message } = err as { code?: string; message: string };
  const option = optionIn(message);
  const flag = spec.flags[option.replace(/^--?/, '')] ?? Object.values(spec.flags).find((f) => `-${f.short}` === option);
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new UsageError(`unknown option ${option}`, spec.path);
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return new UsageError(`unexpected argument ${JSON.stringify(/'([^']*)'/.exec(message)?.[1] ?? '')}: this command takes none`, spec.path);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/does not take an argument/.test(message)) return new UsageError(`${option} takes no value`, spec.path);
      if (/ambiguous/.test(message)) return new UsageError(`${option} needs a value${flag?.arg ? ` (${flag.arg})` : ''}; for a value that starts with "-", write ${option}=VALUE`, spec.path);
      return new UsageError(`${option} needs a value${flag?.arg ? ` (${flag.arg})` : ''}`, spec.path);
    default:
      return new UsageError(message.split('\n')[0]!, spec.path);
  }
}

/**
 * Parses `argv` for the command at `path` (`revoke`, `config validate`): unknown flags, missing
 * values, extra or missing arguments and absent required flags are UsageErrors; --help prints the
 * command's help and ends it with status 0.
 */
export function parseCommand(path: string, argv: string[]): Args {
  const spec = commandSpec(path);
  if (wantsHelp(argv)) {
    process.stdout.write(commandHelp(spec));
    throw new CliExit(0);
  }
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, f] of Object.entries(spec.flags)) {
    options[name] = { type: f.type, ...(f.short ? { short: f.short } : {}), ...(f.multiple ? { multiple: true } : {}) };
  }
  let parsed: { values: Record<string, string | boolean | Array<string | boolean> | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: spec.positionals !== undefined, strict: true });
  } catch (err) {
    throw translate(err, spec);
  }
  const { values, positionals } = parsed;
  if (spec.positionals) {
    if (positionals.length > spec.positionals.max) {
      throw new UsageError(`unexpected argument ${JSON.stringify(positionals[spec.positionals.max])} (takes ${spec.positionals.name})`, path);
    }
    if (positionals.length < spec.positionals.min) throw new UsageError(`needs ${spec.positionals.name}`, path, true);
  }
  for (const [name, f] of Object.entries(spec.flags)) {
    const v = values[name];
    if (f.required && (v === undefined || v === '')) throw new UsageError(`--${name} is required: ${f.help}`, path, true);
  }
  const known = (name: string, type: 'string' | 'boolean', multiple: boolean) => {
    const f = spec.flags[name];
    // A programming error, not a usage error: the code asked for a flag its spec does not declare.
    if (!f || f.type !== type || (f.multiple === true) !== multiple) throw new Error(`credbroker ${path}: no ${type}${multiple ? '[]' : ''} flag --${name} in its spec`);
  };
  return {
    positionals,
    string(name) {
      known(name, 'string', false);
      return values[name] as string | undefined;
    },
    flag(name) {
      known(name, 'boolean', false);
      return values[name] === true;
    },
    list(name) {
      known(name, 'string', true);
      return (values[name] as string[] | undefined) ?? [];
    },
  };
}

/**
 * Loads the config or prints every problem and returns undefined (caller exits non-zero). Lint
 * warnings are printed for a person, unless the caller reports them itself (`serve`: JSON lines;
 * `config validate --json`).
 */
export async function loadOrReport(
  flag: string | undefined,
  opts: { printWarnings?: boolean } = {},
): Promise<{ config: Config; path: string; warnings: Problem[] } | undefined> {
  const path = configPathFrom(flag);
  try {
    const { config, warnings } = await loadConfigFile(path);
    if (opts.printWarnings !== false) for (const w of warnings) process.stderr.write(`warning: ${formatProblem(w)}\n`);
    return { config, path, warnings };
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return undefined;
    }
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      process.stderr.write(`credbroker: config file not found: ${path}${flag === undefined ? ' (give --config FILE or set CREDBROKER_CONFIG)' : ''}\n`);
      return undefined;
    }
    throw err;
  }
}
