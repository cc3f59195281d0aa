// `credbroker keys --config F [--json]`: the security team's view of the static keys left —
// every managed user, key ids (never secrets), ages, last use, rotation state and what comes next.
import { createLogger } from '../log.js';
import { iamKeysFromAws } from './loop.js';
import { createNetwork } from '../net/network.js';
import { loadRotationConfig, openStoreForRead, printUsageError } from './cli-support.js';
import { parseCommand } from '../cli/args.js';
import { inventory } from './run.js';

const days = (s: number) => `${(s / 86_400).toFixed(1)}d`;

export async function main(argv: string[]): Promise<number> {
  try {
    const args = parseCommand('keys', argv);
    const values = { config: args.string('config'), json: args.flag('json') };
    const { config, rotation } = await loadRotationConfig(values.config);
    const logger = createLogger({ level: config.logging.level });
    const store = await openStoreForRead(config);
    try {
      const inv = await inventory({ config: rotation, store, iam: iamKeysFromAws(config.aws, createNetwork(config.network)), logger });
      if (values.json) {
        process.stdout.write(`${JSON.stringify(inv, null, 2)}\n`);
      } else {
        for (const u of inv.users) {
          process.stdout.write(`${u.userName}  ${u.arn}\n  state: ${u.phase}${u.errorCode ? ` (${u.errorCode}: ${u.errorMessage})` : ''}; next: ${u.next}\n`);
          process.stdout.write(`  sinks: ${u.sinks.join(', ')}\n`);
          for (const k of u.keys) {
            const used = k.lastUsed.lastUsedDate ? `${k.lastUsed.lastUsedDate.toISOString()} ${k.lastUsed.serviceName ?? ''}`.trim() : 'never';
            process.stdout.write(`  ${k.accessKeyId}  ${k.status.padEnd(8)}  age ${days(k.ageSeconds).padStart(7)}  last used ${used}${k.undelivered ? `  UNDELIVERED: ${k.undelivered}` : ''}\n`);
          }
          if (u.keys.length === 0) process.stdout.write('  (no access keys)\n');
        }
        for (const p of inv.problems) process.stdout.write(`! ${p.userName ?? `rotation.users[${p.entryIndex}]`}: ${p.code}: ${p.message}\n`);
      }
      return inv.problems.length > 0 ? 1 : 0;
    } finally {
      await store.close();
    }
  } catch (err) {
    return printUsageError(err, 'keys');
  }
}
