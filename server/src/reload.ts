// Hot reload of the config file, on SIGHUP and on file change. The new file is validated first;
// a bad file is rejected with a log line and a metric, and the running config stays. Requests in
// flight keep the config they started with (each exchange takes one snapshot).
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Broker } from './broker.js';
import { ConfigError, loadConfigFile } from './config/load.js';
import { formatProblem } from './core/problems.js';

/** Settings read only at start: a change is applied at the next restart, and said so. */
const RESTART_ONLY = [
  'server.host',
  'server.port',
  'server.trust_proxy',
  'server.tls',
  'server.keep_alive_timeout_ms',
  'store',
  'audit',
  'logging',
  'rotation',
  'revocation',
  'admin.enabled',
  'admin.host',
  'admin.port',
  'admin.client_ca_file',
  'admin.allow_insecure_non_loopback',
  'metrics',
  'network',
] as const;

export interface ConfigWatcher {
  reloadNow(trigger: string): Promise<'applied' | 'rejected' | 'unchanged'>;
  stop(): void;
}

export function watchConfig(broker: Broker, file: string, opts: { debounceMs?: number; signal?: boolean } = {}): ConfigWatcher {
  const { logger, metrics } = broker;
  let lastText = '';
  let running: Promise<'applied' | 'rejected' | 'unchanged'> = Promise.resolve('unchanged');

  const reloadOnce = async (trigger: string): Promise<'applied' | 'rejected' | 'unchanged'> => {
    let loaded;
    try {
      loaded = await loadConfigFile(file);
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems.map(formatProblem) : [err instanceof Error ? err.message : String(err)];
      metrics.configReloads.inc({ outcome: 'rejected' });
      logger.error({ trigger, file, problems }, 'config reload rejected; the running config stays in effect');
      return 'rejected';
    }
    const text = JSON.stringify(loaded.config.raw);
    if (text === lastText) {
      // Said, so that an operator who sent SIGHUP knows the file was read and nothing differs.
      logger.info({ trigger, file }, 'config unchanged');
      return 'unchanged';
    }
    const current = broker.config().raw;
    const restartOnly = RESTART_ONLY.filter((key) => {
      const [a, b] = key.split('.') as [keyof typeof current, string | undefined];
      const pick = (raw: typeof current) => JSON.stringify(b ? (raw[a] as Record<string, unknown>)[b] : raw[a]);
      return pick(current) !== pick(loaded.config.raw);
    });
    await broker.reload(loaded.config);
    lastText = text;
    metrics.configReloads.inc({ outcome: 'applied' });
    for (const w of loaded.warnings) logger.warn({ warning: formatProblem(w) }, 'config lint warning');
    logger.info(
      { trigger, file, roles: loaded.config.policy.roles.size, issuers: loaded.config.issuers.size, ...(restartOnly.length ? { needs_restart: restartOnly } : {}) },
      'config reloaded',
    );
    return 'applied';
  };

  const reloadNow = (trigger: string) => {
    // Serialize reloads: a burst of file events applies in order, never concurrently.
    running = running.then(() => reloadOnce(trigger));
    return running;
  };

  lastText = JSON.stringify(broker.config().raw);
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    // Watch the directory: editors and config-map updates replace the file rather than write it.
    watcher = watch(path.dirname(path.resolve(file)), (_event, name) => {
      if (name !== null && name !== path.basename(file) && !String(name).startsWith('..')) return;
      clearTimeout(timer);
      timer = setTimeout(() => void reloadNow('file-change'), opts.debounceMs ?? 250);
    });
    watcher.unref();
  } catch (err) {
    logger.warn({ file, error: String(err) }, 'cannot watch the config file; reload with SIGHUP');
  }
  const onHup = () => void reloadNow('SIGHUP');
  if (opts.signal !== false) process.on('SIGHUP', onHup);

  return {
    reloadNow,
    stop() {
      clearTimeout(timer);
      watcher?.close();
      process.off('SIGHUP', onHup);
    },
  };
}
