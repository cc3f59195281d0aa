// `credbroker config validate [--config F] [--json] [--strict]` and `credbroker config schema`.
import { readFile } from 'node:fs/promises';
import { configJsonSchema } from '../config/schema.js';
import { ConfigError, configPathFrom, parseConfigText } from '../config/load.js';
import { formatProblem, type Problem } from '../core/problems.js';
import type { Config } from '../config/compile.js';
import { parseCommand } from './args.js';

interface Report {
  ok: boolean;
  file: string;
  problems: Problem[];
  warnings: Problem[];
  issuers?: number;
  roles?: number;
  bindings?: number;
}

async function check(file: string): Promise<Report> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, file, problems: [{ path: '', message: code === 'ENOENT' ? `config file not found: ${file}` : `cannot read ${file}: ${code ?? String(err)}` }], warnings: [] };
  }
  let config: Config;
  let warnings: Problem[];
  try {
    ({ config, warnings } = parseConfigText(text, file));
  } catch (err) {
    if (err instanceof ConfigError) return { ok: false, file, problems: err.problems, warnings: [] };
    throw err;
  }
  const bindings = [...config.policy.roles.values()].reduce((n, r) => n + r.bindings.length, 0);
  return { ok: true, file, problems: [], warnings, issuers: config.issuers.size, roles: config.policy.roles.size, bindings };
}

async function validate(argv: string[]): Promise<number> {
  const args = parseCommand('config validate', argv);
  const strict = args.flag('strict');
  const report = await check(configPathFrom(args.string('config')));
  const failed = !report.ok || (strict && report.warnings.length > 0);
  if (args.flag('json')) {
    process.stdout.write(`${JSON.stringify({ ...report, ok: !failed, strict }, null, 2)}\n`);
    return failed ? 1 : 0;
  }
  if (report.problems.length === 1 && report.problems[0]!.path === '') {
    process.stderr.write(`credbroker config validate: ${report.problems[0]!.message}\n`);
  } else if (report.problems.length > 0) {
    process.stderr.write(`invalid configuration (${report.file}):\n${report.problems.map((p) => `  - ${formatProblem(p)}`).join('\n')}\n`);
  }
  for (const w of report.warnings) process.stderr.write(`warning: ${formatProblem(w)}\n`);
  if (!report.ok) return 1;
  if (failed) {
    process.stderr.write(`credbroker config validate: --strict: ${report.warnings.length} warning(s) fail the check\n`);
    return 1;
  }
  process.stdout.write(`ok: ${report.file}: ${report.issuers} issuer(s), ${report.roles} role(s), ${report.bindings} binding(s)\n`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'validate') return validate(rest);
  parseCommand('config schema', rest);
  process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
  return 0;
}
