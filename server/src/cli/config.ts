// `credbroker config validate [--config F]` and `credbroker config schema`.
import { configJsonSchema } from '../config/schema.js';
import { loadOrReport, parse } from './args.js';

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'schema') {
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    return 0;
  }
  if (sub === 'validate') {
    const { values } = parse(rest, { config: { type: 'string', short: 'c' } });
    const loaded = await loadOrReport(values.config);
    if (!loaded) return 1;
    const { config } = loaded;
    process.stdout.write(
      `ok: ${loaded.path}: ${config.issuers.size} issuer(s), ${config.policy.roles.size} role(s), ` +
        `${[...config.policy.roles.values()].reduce((n, r) => n + r.bindings.length, 0)} binding(s)\n`,
    );
    return 0;
  }
  process.stderr.write('usage: credbroker config validate [--config FILE] | credbroker config schema\n');
  return 2;
}
