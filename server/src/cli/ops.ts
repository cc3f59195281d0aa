// Store-backed admin commands: revoke / unrevoke / revocations / revoke-sessions / audit /
// audit verify. They act on the shared store named in the config (sqlite or postgres), the same
// one the running replicas use; admin actions are recorded in the store's audit chain, keyed with
// the audit HMAC key when the config names one.
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { openStore } from '../store/index.js';
import type { OpsStore } from '../ops/types.js';
import type { Config } from '../config/compile.js';
import type { AuditRecord } from '../audit/types.js';
import { buildRevocation } from '../admin/app.js';
import { loadAuditKeyring } from '../audit/keys.js';
import { readCheckpointFiles } from '../audit/checkpoints.js';
import { verifyAuditChain } from '../audit/verify.js';
import { revokeOlderSessions } from '../aws/revoke-sessions.js';
import { isBrokerError } from '../errors.js';
import { loadOrReport, parse } from './args.js';

const USAGE = `usage:
  credbroker revoke [--config F] --reason TEXT [--issuer ID --claim NAME=VALUE ... | --claims-json JSON]
                    [--session-name GLOB] [--source-identity GLOB] [--expires-in 24h | --expires-at ISO]
  credbroker unrevoke [--config F] ID
  credbroker revocations [--config F] [--all]
  credbroker revoke-sessions [--config F] --role NAME
  credbroker audit [--config F] [--since 1h|ISO] [--until ISO] [--subject S] [--role R] [--decision allow|deny|error] [--event E] [--limit N]
  credbroker audit verify [--config F] [--checkpoints FILE ...] [--head HASH]
`;

/** "90s", "15m", "24h", "7d" → seconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+)([smhd])$/.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

const actor = () => `cli:${userInfo().username}`;

async function withStore<T>(config: Config, fn: (store: OpsStore) => Promise<T>): Promise<T> {
  if (config.store.driver === 'memory') {
    throw new Error('this command needs the shared store (store.driver sqlite or postgres); with the memory store, use the admin API of the running broker');
  }
  const store = await openStore(config.store);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Appends to the store's chain with the config's audit key (a process without it cannot downgrade a keyed chain). */
const appendAudit = (config: Config, store: OpsStore, record: AuditRecord) => store.appendAudit(record, loadAuditKeyring(config.audit).current);

const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

async function revoke(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    config: { type: 'string', short: 'c' },
    reason: { type: 'string' },
    issuer: { type: 'string' },
    claim: { type: 'string', multiple: true },
    'claims-json': { type: 'string' },
    'session-name': { type: 'string' },
    'source-identity': { type: 'string' },
    'expires-in': { type: 'string' },
    'expires-at': { type: 'string' },
  });
  const loaded = await loadOrReport(values.config);
  if (!loaded) return 2;
  const claims: Record<string, unknown> = values['claims-json'] ? (JSON.parse(values['claims-json']) as Record<string, unknown>) : {};
  for (const pair of values.claim ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      process.stderr.write(`credbroker: --claim expects NAME=VALUE, got "${pair}"\n`);
      return 2;
    }
    claims[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const expiresIn = values['expires-in'] !== undefined ? parseDuration(values['expires-in']) : undefined;
  if (values['expires-in'] !== undefined && expiresIn === undefined) {
    process.stderr.write('credbroker: --expires-in expects e.g. 90m, 24h, 7d\n');
    return 2;
  }
  const now = new Date();
  const revocation = buildRevocation(
    {
      ...(values.issuer ? { issuer: values.issuer } : {}),
      ...(Object.keys(claims).length ? { claims } : {}),
      ...(values['session-name'] ? { session_name: values['session-name'] } : {}),
      ...(values['source-identity'] ? { source_identity: values['source-identity'] } : {}),
      ...(values.reason ? { reason: values.reason } : {}),
      ...(values['expires-at'] ? { expires_at: values['expires-at'] } : {}),
      ...(expiresIn !== undefined ? { expires_in_seconds: expiresIn } : {}),
    },
    loaded.config,
    actor(),
    now,
  );
  await withStore(loaded.config, async (store) => {
    await store.addRevocation(revocation);
    await appendAudit(loaded.config, store, { time: now.toISOString(), event: 'admin.revoke', admin: actor(), revocation });
  });
  print(revocation);
  return 0;
}

async function unrevoke(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { config: { type: 'string', short: 'c' } }, true);
  const id = positionals[0];
  if (!id) {
    process.stderr.write(USAGE);
    return 2;
  }
  const loaded = await loadOrReport(values.config);
  if (!loaded) return 2;
  const removed = await withStore(loaded.config, async (store) => {
    const ok = await store.removeRevocation(id);
    if (ok) await appendAudit(loaded.config, store, { time: new Date().toISOString(), event: 'admin.unrevoke', admin: actor(), revocation_id: id });
    return ok;
  });
  if (!removed) {
    process.stderr.write(`credbroker: no revocation ${id}\n`);
    return 1;
  }
  process.stdout.write(`unrevoked ${id}\n`);
  return 0;
}

async function revocations(argv: string[]): Promise<number> {
  const { values } = parse(argv, { config: { type: 'string', short: 'c' }, all: { type: 'boolean' } });
  const loaded = await loadOrReport(values.config);
  if (!loaded) return 2;
  const list = await withStore(loaded.config, (store) => store.listRevocations(new Date(), { includeExpired: values.all ?? false }));
  print({ revocations: list });
  return 0;
}

async function revokeSessions(argv: string[]): Promise<number> {
  const { values } = parse(argv, { config: { type: 'string', short: 'c' }, role: { type: 'string' } });
  const loaded = await loadOrReport(values.config);
  if (!loaded) return 2;
  const role = values.role ? loaded.config.policy.roles.get(values.role) : undefined;
  if (!role) {
    process.stderr.write(`credbroker: unknown role ${JSON.stringify(values.role ?? '')} (known: ${[...loaded.config.policy.roles.keys()].join(', ')})\n`);
    return 2;
  }
  const { aws } = loaded.config;
  const network = (await import('../net/network.js')).createNetwork(loaded.config.network);
  const result = await revokeOlderSessions(role.arn, { region: aws.region, endpoint: aws.iam_endpoint, httpTimeoutMs: aws.http_timeout_ms, maxAttempts: aws.max_attempts, network });
  if (loaded.config.store.driver !== 'memory') {
    await withStore(loaded.config, (store) =>
      appendAudit(loaded.config, store, { time: new Date().toISOString(), event: 'admin.revoke_sessions', admin: actor(), role: role.name, role_arn: role.arn, before: result.before }),
    );
  }
  print({ role: role.name, role_arn: role.arn, policy: 'AWSRevokeOlderSessions', sessions_issued_before: result.before });
  return 0;
}

async function audit(argv: string[]): Promise<number> {
  if (argv[0] === 'verify') {
    const { values } = parse(argv.slice(1), {
      config: { type: 'string', short: 'c' },
      head: { type: 'string' },
      checkpoints: { type: 'string', multiple: true },
    });
    const loaded = await loadOrReport(values.config);
    if (!loaded) return 2;
    const { audit: auditConfig } = loaded.config;
    const keyring = loadAuditKeyring(auditConfig);
    // The configured checkpoint file, and any file given (e.g. the logs where stderr checkpoints went).
    const files = [...(auditConfig.checkpoints.sink === 'file' && auditConfig.checkpoints.path ? [auditConfig.checkpoints.path] : []), ...(values.checkpoints ?? [])];
    for (const f of values.checkpoints ?? []) {
      if (!existsSync(f)) {
        process.stderr.write(`credbroker: --checkpoints ${f}: no such file\n`);
        return 2;
      }
    }
    const cps = await readCheckpointFiles(files);
    const result = await withStore(loaded.config, (store) =>
      verifyAuditChain(store, {
        keyring,
        checkpoints: cps.checkpoints,
        unreadableCheckpoints: cps.unreadable,
        ...(values.head ? { expectHead: values.head } : {}),
      }),
    );
    print(result);
    for (const p of result.problems) process.stderr.write(`problem: ${p.message}\n`);
    for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
    return result.ok ? 0 : 1;
  }
  const { values } = parse(argv, {
    config: { type: 'string', short: 'c' },
    since: { type: 'string' },
    until: { type: 'string' },
    subject: { type: 'string' },
    role: { type: 'string' },
    decision: { type: 'string' },
    event: { type: 'string' },
    limit: { type: 'string' },
  });
  const loaded = await loadOrReport(values.config);
  if (!loaded) return 2;
  const when = (v: string | undefined) => {
    if (v === undefined) return undefined;
    const ago = parseDuration(v);
    const d = ago !== undefined ? new Date(Date.now() - ago * 1000) : new Date(v);
    if (Number.isNaN(d.getTime())) throw new Error(`not a time or a duration: ${v}`);
    return d;
  };
  const decision = values.decision;
  if (decision !== undefined && decision !== 'allow' && decision !== 'deny' && decision !== 'error') {
    process.stderr.write('credbroker: --decision is allow, deny or error\n');
    return 2;
  }
  const since = when(values.since);
  const until = when(values.until);
  const rows = await withStore(loaded.config, (store) =>
    store.queryAudit({
      ...(since ? { since } : {}),
      ...(until ? { until } : {}),
      ...(values.subject ? { subject: values.subject } : {}),
      ...(values.role ? { role: values.role } : {}),
      ...(decision ? { decision } : {}),
      ...(values.event ? { event: values.event } : {}),
      limit: Number(values.limit ?? 100) || 100,
    }),
  );
  // One JSON object per line: easy to grep, jq, or ship.
  for (const row of rows) process.stdout.write(`${JSON.stringify({ seq: row.seq, hash: row.hash, ...row.record })}\n`);
  return 0;
}

export async function main(argv: string[], command = ''): Promise<number> {
  try {
    switch (command) {
      case 'revoke':
        return await revoke(argv);
      case 'unrevoke':
        return await unrevoke(argv);
      case 'revocations':
        return await revocations(argv);
      case 'revoke-sessions':
        return await revokeSessions(argv);
      case 'audit':
        return await audit(argv);
      default:
        process.stderr.write(USAGE);
        return 2;
    }
  } catch (err) {
    // Admin-facing: validation detail is theirs to see (never secrets: none pass through here).
    const message = isBrokerError(err) ? err.message : err instanceof Error ? err.message : String(err);
    process.stderr.write(`credbroker ${command}: ${message}\n`);
    return 1;
  }
}
