// `credbroker rotate --config F (--user X | --all) [--force] [--dry-run] [--json]`
//   --user X   rotate X now (repeatable), even if its key is not due — the leak response.
//   --all      every managed user whose key is due; with --force, every managed user now (also the
//              way to try a rotation: max_key_age_seconds cannot go below an hour).
//   --dry-run  print what would happen; reads IAM and the store, changes nothing.
// SIGTERM / SIGINT: the step in flight is stopped safely (a push is aborted and its program killed;
// an IAM call finishes), a new key that no sink received is deleted, the lock is released, and the
// exit status is 128 + the signal number. A second signal exits at once.
import { constants as osConstants } from 'node:os';
import { Registry } from 'prom-client';
import { createLogger } from '../log.js';
import { openStore } from '../store/index.js';
import { iamKeysFromAws } from './loop.js';
import { createNetwork } from '../net/network.js';
import { cliAuditSink, loadRotationConfig, openStoreForRead, printUsageError, UsageError } from './cli-support.js';
import { parseCommand } from '../cli/args.js';
import { planRotation, runRotation } from './run.js';

export async function main(argv: string[]): Promise<number> {
  const stopping = new AbortController();
  let stoppedBy: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stoppedBy) process.exit(128 + (osConstants.signals[signal] ?? 1));
    stoppedBy = signal;
    process.stderr.write(`credbroker rotate: ${signal}: stopping after the step in flight, then releasing the rotation lock (again to exit at once)\n`);
    stopping.abort();
  };
  try {
    const args = parseCommand('rotate', argv);
    const values = { user: args.list('user'), all: args.flag('all'), force: args.flag('force'), 'dry-run': args.flag('dry-run'), json: args.flag('json'), config: args.string('config') };
    const users = values.user.length > 0 ? values.user : undefined;
    if ((users === undefined) === !values.all) throw new UsageError('give --user NAME (one or more) or --all, not both', 'rotate', true);
    // From here on a signal stops the run safely instead of killing the process holding the lock.
    if (!values['dry-run']) {
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    }
    const { config, rotation } = await loadRotationConfig(values.config);
    const logger = createLogger({ level: config.logging.level });
    const network = createNetwork(config.network);
    const iam = iamKeysFromAws(config.aws, network);
    const force = values.force === true || users !== undefined;

    if (values['dry-run']) {
      const store = await openStoreForRead(config);
      try {
        const plan = await planRotation({ config: rotation, store, iam, logger, network }, { ...(users ? { users } : {}), force, checkSinks: true });
        if (values.json) process.stdout.write(`${JSON.stringify(plan, null, 2)}\n`);
        else {
          for (const u of plan.users) {
            process.stdout.write(`${u.userName} (${u.phase}; keys: ${u.keys.map((k) => `${k.accessKeyId} ${k.status}`).join(', ') || 'none'})\n`);
            u.steps.forEach((s, i) => process.stdout.write(`  ${i + 1}. ${s}\n`));
            for (const p of u.sinkProblems) process.stdout.write(`  ! sink ${p.sink}: ${p.code}: ${p.message}\n`);
          }
          for (const p of plan.problems) process.stdout.write(`! ${p.userName ?? `rotation.users[${p.entryIndex}]`}: ${p.code}: ${p.message}\n`);
          process.stdout.write('dry run: nothing was changed\n');
        }
        return plan.problems.length > 0 || plan.users.some((u) => u.action === 'error' || u.sinkProblems.length > 0) ? 1 : 0;
      } finally {
        await store.close();
      }
    }

    const store = await openStore(config.store);
    try {
      if (stoppedBy) return 128 + (osConstants.signals[stoppedBy] ?? 1);
      const report = await runRotation(
        { config: rotation, store, iam, audit: cliAuditSink(config.audit, store), logger, registry: new Registry(), network },
        { ...(users ? { users } : {}), force, signal: stopping.signal },
      );
      if (stoppedBy) {
        // The summary of what was done before the signal: on stdout, like every summary.
        for (const r of report.users) process.stdout.write(`${r.userName}: ${r.outcome} [${r.phase}] ${r.steps.join(' → ')}${r.code ? ` ${r.code}` : ''}\n`);
        return 128 + (osConstants.signals[stoppedBy] ?? 1);
      }
      if (!report.leader) {
        process.stderr.write('another credbroker holds the rotation lock; try again later\n');
        return 3;
      }
      if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else {
        for (const r of report.users) {
          const extra = r.code ? ` ${r.code}: ${r.message}` : r.until ? ` (${r.message} until ${r.until})` : r.nextRotationAt ? ` (next ${r.nextRotationAt})` : '';
          process.stdout.write(`${r.userName}: ${r.outcome} [${r.phase}] ${r.steps.join(' → ')}${extra}\n`);
        }
        for (const p of report.problems) process.stdout.write(`! ${p.userName ?? `rotation.users[${p.entryIndex}]`}: ${p.code}: ${p.message}\n`);
      }
      return report.problems.length > 0 || report.users.some((r) => r.outcome === 'failed' || r.outcome === 'error') ? 1 : 0;
    } finally {
      await store.close();
    }
  } catch (err) {
    return printUsageError(err, 'rotate');
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
