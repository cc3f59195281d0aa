// `credbroker serve [--config F] [--port N] [--host H]`: run the broker until SIGTERM/SIGINT.
// Wires the pieces together: the store from `store:` (shared by every replica on PostgreSQL), the
// public listener (exchange, health, OpenAPI only), the metrics listener when `metrics.enabled`,
// the admin listener when `admin.enabled`, the rotation loop when `rotation:` is configured (only
// the replica holding the rotation lease rotates), and hot reload.
import { z } from 'zod';
import { createBroker, type Broker } from '../broker.js';
import type { AdminRoute } from '../admin/app.js';
import type { Config } from '../config/compile.js';
import { ConfigError, loadConfigFile } from '../config/load.js';
import { formatProblem } from '../core/problems.js';
import { BrokerError } from '../errors.js';
import type { IamKeys } from '../aws/iam.js';
import { watchConfig } from '../reload.js';
import type { RotationLoop } from '../rotation/loop.js';
import { openStore, StoreError, type Store } from '../store/index.js';
import { loadOrReport, parseCommand, UsageError } from './args.js';
import { consoleKeys } from '../console/keys.js';

const rotateInput = z
  .strictObject({
    users: z.array(z.string().min(1)).min(1).optional(),
    all: z.boolean().optional(),
    force: z.boolean().optional(),
  })
  .refine((b) => (b.users !== undefined) !== (b.all === true), { message: 'give users (one or more) or all: true' });

/** GET /v1/admin/keys (read) and POST /v1/admin/rotate (operate): the `keys` and `rotate` commands over the admin API. */
export function rotationRoutes(deps: { config: Config; store: Store; broker: () => Broker }): AdminRoute[] {
  let iam: IamKeys | undefined;
  // Rotation (IAM client, sinks) is loaded on first use: a broker that does not rotate never pays for it.
  const rotation = async () => {
    const r = deps.config.rotation;
    if (!r) throw new BrokerError('ERR_NOT_FOUND', { message: 'the configuration has no rotation: section' });
    const [{ iamKeysFromAws }, run] = await Promise.all([import('../rotation/loop.js'), import('../rotation/run.js')]);
    iam ??= iamKeysFromAws(deps.config.aws, deps.broker().network);
    return { rotation: r, iam, run };
  };
  return [
    {
      method: 'GET',
      path: '/keys',
      access: 'read',
      handler: async (_req, res) => {
        const { rotation: config, iam, run } = await rotation();
        res.json(await run.inventory({ config, store: deps.store, iam, logger: deps.broker().logger }));
      },
    },
    {
      method: 'POST',
      path: '/rotate',
      access: 'operate',
      handler: async (req, res) => {
        const { rotation: config, iam, run } = await rotation();
        const body = rotateInput.safeParse(req.body ?? {});
        if (!body.success) throw new BrokerError('ERR_BAD_REQUEST', { message: body.error.issues.map((i) => i.message).join('; ') });
        const broker = deps.broker();
        try {
          // A holder of its own: if the loop of this replica is mid-run, this run is refused, not merged.
          const report = await run.runRotation(
            { config, store: deps.store, iam, audit: broker.audit, logger: broker.logger, registry: broker.metrics.registry, holder: run.defaultHolder(), network: broker.network },
            { ...(body.data.users ? { users: body.data.users } : {}), force: body.data.force === true || body.data.users !== undefined },
          );
          await broker.audit.write({
            time: new Date().toISOString(),
            event: 'admin.rotate',
            request_id: req.requestId,
            admin: req.adminName,
            ...(body.data.users ? { users: body.data.users } : { all: true }),
            leader: report.leader,
            results: report.users.map((u) => ({ user: u.userName, outcome: u.outcome })),
          });
          if (!report.leader) {
            res.status(409).json({ ...report, message: 'another replica holds the rotation lock; try again later' });
            return;
          }
          res.json(report);
        } catch (err) {
          if (err instanceof StoreError && err.code === 'ERR_STORE_NOT_PERSISTENT') throw new BrokerError('ERR_BAD_REQUEST', { message: err.message });
          throw err;
        }
      },
    },
  ];
}

/** GET /v1/admin/config/validate: the file on disk, validated as a reload would (nothing is applied). */
export function configFileValidator(file: string) {
  return async (): Promise<{ ok: boolean; file: string; problems: string[]; warnings: string[] }> => {
    try {
      const { warnings } = await loadConfigFile(file);
      return { ok: true, file, problems: [], warnings: warnings.map(formatProblem) };
    } catch (err) {
      if (err instanceof ConfigError) return { ok: false, file, problems: err.problems.map(formatProblem), warnings: [] };
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ok: false, file, problems: ['the config file does not exist'], warnings: [] };
      throw err;
    }
  };
}

/** How `credbroker dev` runs serve: with the console's dev login (no configuration key turns it on). */
export interface ServeOptions {
  devLogin?: boolean;
  /** Called once every listener is up (dev mode prints the console's address). */
  onListening?(urls: { url: string; adminUrl: string | undefined }): void;
}

export async function main(argv: string[], opts: ServeOptions = {}): Promise<number> {
  const args = parseCommand('serve', argv);
  const values = { port: args.string('port'), host: args.string('host') };
  const port = values.port !== undefined ? Number(values.port) : undefined;
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65_535)) throw new UsageError(`--port expects 0..65535, got ${JSON.stringify(values.port)}`, 'serve');
  // Lint warnings are logged as JSON lines below, with the broker's logger. A config that does not
  // load, or a store that does not open, is said in text, once: nothing runs yet.
  const loaded = await loadOrReport(args.string('config'), { printWarnings: false });
  if (!loaded) return 1; // never a partial start
  const { config } = loaded;
  let store: Store;
  try {
    store = await openStore(config.store);
  } catch (err) {
    process.stderr.write(`credbroker: cannot open the store (store.driver ${config.store.driver}): ${(err as Error).message}\n`);
    return 1;
  }
  let broker: Broker | undefined;
  const extraRoutes = rotationRoutes({ config, store, broker: () => broker! });
  let iam: IamKeys | undefined;
  const keys = config.rotation
    ? consoleKeys({
        config: config.rotation,
        store,
        iam: async () => (iam ??= (await import('../rotation/loop.js')).iamKeysFromAws(config.aws)),
        runtime: () => ({ audit: broker!.audit, logger: broker!.logger, registry: broker!.metrics.registry }),
      })
    : undefined;
  try {
    broker = createBroker(config, {
      ops: store,
      admin: { extraRoutes, validateConfigFile: configFileValidator(loaded.path) },
      console: { devLogin: opts.devLogin === true, keys, configFile: loaded.path },
    });
  } catch (err) {
    // E.g. the audit HMAC key cannot be read: never start without it.
    await store.close();
    process.stderr.write(`credbroker: ${(err as Error).message}\n`);
    return 1;
  }
  const { logger } = broker;
  for (const w of loaded.warnings) logger.warn({ warning: formatProblem(w) }, 'config lint warning');
  let watcher: ReturnType<typeof watchConfig> | undefined;
  const onHup = () => broker!.reloadTls('SIGHUP');
  let rotation: RotationLoop | undefined;
  try {
    await broker.start();
    const { url } = await broker.listen(port ?? config.server.port, values.host ?? config.server.host);
    // Every listener is up before the one line that says so (tests and operators wait for it).
    const metricsUrl = config.metrics.enabled ? `${(await broker.listenMetrics()).url}/metrics` : undefined;
    const adminUrl = config.admin.enabled ? (await broker.listenAdmin()).url : undefined;
    watcher = watchConfig(broker, loaded.path);
    process.on('SIGHUP', onHup);
    logger.info(
      {
        url,
        ...(metricsUrl ? { metrics_url: metricsUrl } : {}),
        ...(adminUrl ? { admin_url: adminUrl } : {}),
        config: loaded.path,
        store: config.store.driver,
        issuers: [...config.issuers.keys()],
        roles: [...config.policy.roles.keys()],
      },
      'credbroker listening',
    );
    opts.onListening?.({ url, adminUrl });
    if (config.rotation) {
      const { startRotationLoop } = await import('../rotation/loop.js');
      rotation = startRotationLoop({
        config: config.rotation,
        aws: config.aws,
        store,
        audit: broker.audit,
        logger,
        registry: broker.metrics.registry,
        network: broker.network,
      });
    }
  } catch (err) {
    // E.g. a port in use: release everything so the process exits instead of idling on the pool.
    watcher?.stop();
    process.off('SIGHUP', onHup);
    await broker.close().catch(() => undefined);
    await store.close();
    throw err;
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      watcher?.stop();
      process.off('SIGHUP', onHup);
      // The rotation step in flight finishes and the lease is released before the store closes.
      void (async () => {
        await rotation?.stop();
        await broker!.close();
        await store.close();
        resolve(0);
      })();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
