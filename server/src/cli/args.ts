// Small helpers shared by the CLI commands.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, configPathFrom, loadConfigFile } from '../config/load.js';
import { formatProblem, type Problem } from '../core/problems.js';
import type { Config } from '../config/compile.js';

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, allowPositionals = false) {
  return parseArgs({ args: argv, options, allowPositionals, strict: true });
}

/**
 * Loads the config or prints every problem and returns undefined (caller exits non-zero). Lint
 * warnings are printed for a person, unless the caller logs them itself (`serve`: JSON lines).
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
      process.stderr.write(`credbroker: config file not found: ${path}\n`);
      return undefined;
    }
    throw err;
  }
}
