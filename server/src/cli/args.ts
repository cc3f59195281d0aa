// Small helpers shared by the CLI commands.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, configPathFrom, loadConfigFile } from '../config/load.js';
import { formatProblem } from '../core/problems.js';
import type { Config } from '../config/compile.js';

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, allowPositionals = false) {
  return parseArgs({ args: argv, options, allowPositionals, strict: true });
}

/** Loads the config or prints every problem and returns undefined (caller exits non-zero). */
export async function loadOrReport(flag: string | undefined): Promise<{ config: Config; path: string } | undefined> {
  const path = configPathFrom(flag);
  try {
    const { config, warnings } = await loadConfigFile(path);
    for (const w of warnings) process.stderr.write(`warning: ${formatProblem(w)}\n`);
    return { config, path };
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return undefined;
    }
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      process.stderr.write(`credbroker: config file not found: ${path}\n`);
      return undefined;
    }
    throw err;
  }
}
