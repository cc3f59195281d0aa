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
import { CliExit, loadOrReport, parseCommand, UsageError } from './args.js';
import { unknownClaimProblem } from '../core/lint.js';

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
  const args = parseCommand('revoke', argv);
  const values = {
    reason: args.string('reason'),
    issuer: args.string('issuer'),
    'claims-json': args.string('claims-json'),
    'session-name': args.string('session-name'),
    'source-identity': args.string('source-identity'),
    'expires-in': args.string('expires-in'),
    'expires-at': args.string('expires-at'),
  };
  let claims: Record<string, unknown> = {};
  if (values['claims-json'] !== undefined) {
    try {
      claims = JSON.parse(values['claims-json']) as Record<string, unknown>;
    } catch (err) {
      throw new UsageError(`--claims-json is not JSON: ${(err as Error).message}`, 'revoke');
    }
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) throw new UsageError('--claims-json expects a JSON object of claims', 'revoke');
  }
  for (const pair of args.list('claim')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--claim expects NAME=VALUE, got ${JSON.stringify(pair)}`, 'revoke');
    claims[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  if (values['expires-in'] !== undefined && parseDuration(values['expires-in']) === undefined) {
    throw new UsageError(`--expires-in expects a duration such as 90m, 24h or 7d, got ${JSON.stringify(values['expires-in'])}`, 'revoke');
  }
  const loaded = await loadOrReport(args.string('config'));
  if (!loaded) return 2;
  // A claim no token of the issuer(s) carries: the revocation would never match anything.
  const issuers = values.issuer !== undefined ? [loaded.config.issuers.get(values.issuer)].filter((i) => i !== undefined) : [...loaded.config.issuers.values()];
  for (const claim of Object.keys(claims)) {
    const problem = unknownClaimProblem(issuers, claim);
    const flag = args.list('claim').some((pair) => pair.startsWith(`${claim}=`)) ? '--claim' : '--claims-json';
    if (problem) process.stderr.write(`warning: ${flag} ${claim}: ${problem}: this revocation matches no token\n`);
  }
  const expiresIn = values['expires-in'] !== undefined ? parseDuration(values['expires-in']) : undefined;
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
  const args = parseCommand('unrevoke', argv);
  const id = args.positionals[0]!;
  const loaded = await loadOrReport(args.string('config'));
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
  const args = parseCommand('revocations', argv);
  const loaded = await loadOrReport(args.string('config'));
  if (!loaded) return 2;
  const list = await withStore(loaded.config, (store) => store.listRevocations(new Date(), { includeExpired: args.flag('all') }));
  print({ revocations: list });
  return 0;
}

async function revokeSessions(argv: string[]): Promise<number> {
  const args = parseCommand('revoke-sessions', argv);
  const loaded = await loadOrReport(args.string('config'));
  if (!loaded) return 2;
  const roleName = args.string('role')!;
  const role = loaded.config.policy.roles.get(roleName);
  if (!role) {
    process.stderr.write(`credbroker revoke-sessions: --role ${roleName}: no such role in ${loaded.path} (known: ${[...loaded.config.policy.roles.keys()].join(', ') || 'none'})\n`);
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
    const args = parseCommand('audit verify', argv.slice(1));
    const values = { head: args.string('head'), checkpoints: args.list('checkpoints') };
    const loaded = await loadOrReport(args.string('config'));
    if (!loaded) return 2;
    const { audit: auditConfig } = loaded.config;
    const keyring = loadAuditKeyring(auditConfig);
    // The configured checkpoint file, and any file given (e.g. the logs where stderr checkpoints went).
    const files = [...(auditConfig.checkpoints.sink === 'file' && auditConfig.checkpoints.path ? [auditConfig.checkpoints.path] : []), ...values.checkpoints];
    for (const f of values.checkpoints) {
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
  const args = parseCommand('audit', argv);
  const values = {
    since: args.string('since'),
    until: args.string('until'),
    subject: args.string('subject'),
    role: args.string('role'),
    decision: args.string('decision'),
    event: args.string('event'),
    limit: args.string('limit'),
  };
  const limit = values.limit === undefined ? 100 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit expects a whole number of records, got ${JSON.stringify(values.limit)}`, 'audit');
  const loaded = await loadOrReport(args.string('config'));
  if (!loaded) return 2;
  const when = (v: string | undefined) => {
    if (v === undefined) return undefined;
    const ago = parseDuration(v);
    const d = ago !== undefined ? new Date(Date.now() - ago * 1000) : new Date(v);
    if (Number.isNaN(d.getTime())) throw new UsageError(`--since/--until expects a duration ago (90m, 24h, 7d) or an ISO time, got ${JSON.stringify(v)}`, 'audit');
    return d;
  };
  const decision = values.decision;
  if (decision !== undefined && decision !== 'allow' && decision !== 'deny' && decision !== 'error') {
    throw new UsageError(`--decision is allow, deny or error, got ${JSON.stringify(decision)}`, 'audit');
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
      limit,
    }),
  );
  if (args.flag('json')) {
    // One JSON object per line: easy to grep, jq, or ship.
    for (const row of rows) process.stdout.write(`${JSON.stringify({ seq: row.seq, hash: row.hash, ...row.record })}\n`);
  } else {
    process.stdout.write(auditTable(rows.map((r) => ({ seq: r.seq, ...r.record }))));
  }
  return 0;
}

const text = (v: unknown): string => (v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v));

/** The records as a table for a person: who, what, which role, and why for refusals. */
export function auditTable(records: Array<Record<string, unknown> & { seq: number }>): string {
  if (records.length === 0) return 'no matching records\n';
  const columns = ['SEQ', 'TIME', 'EVENT', 'DECISION', 'ROLE', 'WHO', 'DETAIL'];
  const rows = records.map((r) => [
    String(r.seq),
    text(r.time),
    text(r.event),
    text(r.decision),
    text(r.role),
    text(r.subject ?? r.admin ?? r.user),
    text(r.code ?? r.binding ?? (r.revocation as { reason?: string } | undefined)?.reason ?? r.revocation_id ?? r.outcome),
  ]);
  const widths = columns.map((c, i) => Math.min(60, Math.max(c.length, ...rows.map((row) => row[i]!.length))));
  const cell = (v: string, i: number) => (v.length > widths[i]! ? `${v.slice(0, widths[i]! - 1)}…` : v.padEnd(widths[i]!));
  const line = (row: string[]) => row.map(cell).join('  ').trimEnd();
  return `${[line(columns), ...rows.map(line)].join('\n')}\n${records.length} record(s), newest first; --json for every field\n`;
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
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof CliExit) throw err;
    // Admin-facing: validation detail is theirs to see (never secrets: none pass through here).
    const message = isBrokerError(err) ? err.message : err instanceof Error ? err.message : String(err);
    process.stderr.write(`credbroker ${command}: ${message}\n`);
    return 1;
  }
}
