// The admin HTTP API: a separate Express app on its own listener (127.0.0.1 by default), never
// mounted on the public port. Every route, known or not, requires an admin bearer token first.
import { randomUUID } from 'node:crypto';
import express, { type Request, type Response, type NextFunction } from 'express';
import helmet from 'helmet';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { z } from 'zod';
import { BrokerError, isBrokerError } from '../errors.js';
import type { Config } from '../config/compile.js';
import { conditionSchema } from '../config/schema.js';
import { explain } from '../core/policy.js';
import { compileRevocation, revocationProblems, type Revocation } from '../core/revocation.js';
import { chainVerifier } from '../core/audit-chain.js';
import type { OpsStore } from '../ops/types.js';
import type { AuditSink } from '../audit/types.js';
import type { Logger } from '../log.js';
import { sendError } from '../http/app.js';
import { adminIdentity } from './auth.js';

export interface AdminDeps {
  config(): Config;
  store: OpsStore;
  audit: AuditSink;
  logger: Logger;
  now(): Date;
  /** Attaches AWSRevokeOlderSessions to a role; injectable for tests. */
  revokeSessions(roleArn: string, now: Date): Promise<{ roleName: string; before: string }>;
  /** Re-reads and validates the config file on disk. */
  validateConfigFile?(): Promise<{ ok: boolean; problems: string[]; warnings: string[] }>;
  /** Extra routes (e.g. rotation: keys, rotate) mounted after authentication. */
  extraRoutes?: (router: express.Router) => void;
}

declare module 'express-serve-static-core' {
  interface Request {
    adminName?: string;
  }
}

const revocationInput = z.strictObject({
  issuer: z.string().optional(),
  claims: z.record(z.string(), conditionSchema).optional(),
  session_name: z.string().min(1).optional(),
  source_identity: z.string().min(1).optional(),
  reason: z.string().min(1).max(500),
  expires_at: z.string().optional(),
  expires_in_seconds: z.number().int().min(60).max(366 * 86_400).optional(),
});
export type RevocationInput = z.infer<typeof revocationInput>;

/** Builds a validated revocation from admin input (shared by the API and the CLI). */
export function buildRevocation(input: unknown, config: Config, createdBy: string, now: Date): Revocation {
  const parsed = revocationInput.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`);
    throw new BrokerError('ERR_BAD_REQUEST', { detail: { issues }, message: issues.join('; ') });
  }
  const r = parsed.data;
  const expiresAt = r.expires_at ?? new Date(now.getTime() + (r.expires_in_seconds ?? 86_400) * 1000).toISOString();
  const revocation: Revocation = {
    id: randomUUID(),
    issuer: r.issuer ?? null,
    claims: r.claims ?? null,
    session_name: r.session_name ?? null,
    source_identity: r.source_identity ?? null,
    reason: r.reason,
    created_by: createdBy,
    created_at: now.toISOString(),
    expires_at: expiresAt,
  };
  const problems = revocationProblems(revocation, new Set(config.issuers.keys()));
  const compiled = compileRevocation(revocation, revocation.issuer ? config.issuers.get(revocation.issuer)?.preset : undefined);
  if ('error' in compiled) problems.push(compiled.error);
  if (problems.length > 0) throw new BrokerError('ERR_BAD_REQUEST', { detail: { problems }, message: problems.join('; ') });
  return revocation;
}

export function createAdminApp(deps: AdminDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(helmet());
  app.use((req, res, next) => {
    req.requestId = randomUUID();
    res.set('X-Request-Id', req.requestId);
    res.set('Cache-Control', 'no-store');
    const name = adminIdentity(req.get('authorization'), deps.config().admin.tokens);
    if (!name) {
      deps.logger.warn({ request_id: req.requestId, method: req.method, path: req.path }, 'admin request without valid credentials');
      return next(new BrokerError('ERR_UNAUTHORIZED'));
    }
    req.adminName = name;
    next();
  });
  app.use(express.json({ limit: '256kb' }));

  const audit = async (req: Request, event: string, fields: Record<string, unknown>) => {
    await deps.audit.write({ time: deps.now().toISOString(), event, request_id: req.requestId, admin: req.adminName, ...fields });
  };

  const r = express.Router();
  r.get('/revocations', async (req, res) => {
    res.json({ revocations: await deps.store.listRevocations(deps.now(), { includeExpired: req.query.all === 'true' }) });
  });
  r.post('/revocations', async (req, res) => {
    const revocation = buildRevocation(req.body, deps.config(), req.adminName!, deps.now());
    await deps.store.addRevocation(revocation);
    await audit(req, 'admin.revoke', { revocation });
    res.status(201).json({ revocation });
  });
  r.delete('/revocations/:id', async (req, res) => {
    const id = String(req.params.id);
    if (!(await deps.store.removeRevocation(id))) throw new BrokerError('ERR_NOT_FOUND');
    await audit(req, 'admin.unrevoke', { revocation_id: id });
    res.status(204).end();
  });
  r.post('/roles/:name/revoke-sessions', async (req, res) => {
    const role = deps.config().policy.roles.get(String(req.params.name));
    if (!role) throw new BrokerError('ERR_NOT_FOUND');
    const result = await deps.revokeSessions(role.arn, deps.now());
    await audit(req, 'admin.revoke_sessions', { role: role.name, role_arn: role.arn, before: result.before });
    res.json({ role: role.name, role_arn: role.arn, policy: 'AWSRevokeOlderSessions', sessions_issued_before: result.before });
  });
  r.post('/policy/explain', async (req, res) => {
    const body = z.strictObject({ claims: z.record(z.string(), z.unknown()), role: z.string(), issuer: z.string() }).safeParse(req.body);
    if (!body.success) throw new BrokerError('ERR_BAD_REQUEST');
    const cfg = deps.config();
    if (!cfg.issuers.has(body.data.issuer)) throw new BrokerError('ERR_BAD_REQUEST', { message: `unknown issuer ${body.data.issuer}` });
    res.json(
      explain(cfg.policy, {
        issuer: body.data.issuer,
        role: body.data.role,
        claims: body.data.claims,
        requestedDuration: undefined,
        tokenHash: '0'.repeat(64),
        roleChaining: cfg.aws.role_chaining === 'always',
        now: deps.now(),
      }),
    );
  });
  r.post('/token/decode', (req, res) => {
    const token = typeof req.body?.token === 'string' ? req.body.token : '';
    try {
      res.json({ verified: false, header: decodeProtectedHeader(token), claims: decodeJwt(token) });
    } catch {
      throw new BrokerError('ERR_BAD_REQUEST', { message: 'not a JWT' });
    }
  });
  r.get('/audit', async (req, res) => {
    const q = req.query;
    const date = (v: unknown) => (typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? new Date(v) : undefined);
    const decision = q.decision === 'allow' || q.decision === 'deny' || q.decision === 'error' ? q.decision : undefined;
    const rows = await deps.store.queryAudit({
      ...(date(q.since) ? { since: date(q.since)! } : {}),
      ...(date(q.until) ? { until: date(q.until)! } : {}),
      ...(typeof q.subject === 'string' ? { subject: q.subject } : {}),
      ...(typeof q.role === 'string' ? { role: q.role } : {}),
      ...(typeof q.event === 'string' ? { event: q.event } : {}),
      ...(decision ? { decision } : {}),
      limit: Math.min(Number(q.limit ?? 100) || 100, 10_000),
    });
    res.json({ records: rows.map((row) => ({ seq: row.seq, hash: row.hash, ...row.record })) });
  });
  r.get('/audit/verify', async (req, res) => {
    const result = await verifyAuditChain(deps.store, typeof req.query.head === 'string' ? req.query.head : undefined);
    res.status(result.ok ? 200 : 409).json(result);
  });
  r.get('/config/validate', async (_req, res) => {
    if (!deps.validateConfigFile) throw new BrokerError('ERR_NOT_FOUND');
    res.json(await deps.validateConfigFile());
  });
  deps.extraRoutes?.(r);
  app.use('/v1/admin', r);
  app.use((_req, _res, next) => next(new BrokerError('ERR_NOT_FOUND')));
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const be = isBrokerError(err) ? err : new BrokerError('ERR_INTERNAL', { cause: err });
    if (!isBrokerError(err)) deps.logger.error({ request_id: req.requestId, error: err instanceof Error ? err.message : String(err) }, 'admin error');
    if (res.headersSent) return;
    // Admins get the validation detail of their own input; never anything else.
    if (be.code === 'ERR_BAD_REQUEST' && be.message !== be.publicMessage) {
      res.status(400).json({ error: { code: be.code, message: be.message, request_id: req.requestId } });
      return;
    }
    sendError(res, be, req.requestId ?? randomUUID());
  });
  return app;
}

export async function verifyAuditChain(store: OpsStore, expectHead?: string) {
  const v = chainVerifier();
  let after = 0;
  for (;;) {
    const rows = await store.scanAudit(after, 1000);
    if (rows.length === 0) break;
    v.add(rows);
    after = rows.at(-1)!.seq;
  }
  return v.result(expectHead);
}
