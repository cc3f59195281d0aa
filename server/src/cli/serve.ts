// `credbroker serve [--config F] [--port N] [--host H]`: run the broker until SIGTERM/SIGINT.
import { createBroker } from '../broker.js';
import { watchConfig } from '../reload.js';
import { loadOrReport, parse } from './args.js';

export async function main(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    config: { type: 'string', short: 'c' },
    port: { type: 'string' },
    host: { type: 'string' },
  });
  const loaded = await loadOrReport(values.config);
  if (!loaded) return 1; // never a partial start
  const { config } = loaded;
  const broker = createBroker(config);
  await broker.start();
  const port = values.port !== undefined ? Number(values.port) : config.server.port;
  const { url } = await broker.listen(port, values.host ?? config.server.host);
  const watcher = watchConfig(broker, loaded.path);
  broker.logger.info({ url, config: loaded.path, issuers: [...config.issuers.keys()], roles: [...config.policy.roles.keys()] }, 'credbroker listening');

  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      broker.logger.info({ signal }, 'shutting down');
      watcher.stop();
      void broker.close().then(() => resolve(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
