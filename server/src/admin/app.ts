// The admin HTTP API: a separate Express app on its own listener (127.0.0.1 by default), never
// mounted on the public port. Every route, known or not, requires an admin bearer token first;
// each route declares the scope it needs (`read` or `operate`), and every request is audited
// with the admin's name before it runs — reads included. Failed authentication is audited too
// (never the presented token), at most FAILED_AUTH_AUDITS_PER_MINUTE per client address.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import express, { type Request, type Response, type NextFunction } from 'express';
import helmet from 'helmet';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { z } from 'zod';
import { BrokerError, isBrokerError } from '../errors.js';
import type { Config } from '../config/compile.js';
import { conditionSchema, type AdminScope } from '../config/schema.js';
import { explain } from '../core/policy.js';
import { compileRevocation, revocationProblems, type Revocation } from '../core/revocation.js';
import type { AuditCheckpoint, Keyring } from '../core/audit-chain.js';
import type { OpsStore } from '../ops/types.js';
import type { AuditRecord, AuditSink } from '../audit/types.js';
import { verifyAuditChain } from '../audit/verify.js';
import type { Logger } from '../log.js';
import { sendError } from '../http/app.js';
import { authenticateAdmin } from './auth.js';
import type { ConsoleDeps } from '../console/app.js';

export const ADMIN_OPENAPI_DOCUMENT: unknown = JSON.parse(readFileSync(new URL('../../admin-openapi.json', import.meta.url), 'utf8'));

/** One admin route: its path under /v1/admin (Express syntax), the scope it needs, its handler. */
export interface AdminRoute {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  access: AdminScope;
  handler(req: Request, res: Response): unknown;
}

export interface AdminDeps {
  config(): Config;
  store: OpsStore;
  audit: AuditSink;
  logger: Logger;
  now(): Date;
  /** Attaches AWSRevokeOlderSessions to a role; injectable for tests. */
  revokeSessions(roleArn: string, now: Date): Promise<{ roleName: string; before: string }>;
  /** Re-reads and validates the config file on disk (`serve` passes it; without it the route answers 404). */
  validateConfigFile?(): Promise<{ ok: boolean; problems: string[]; warnings: string[] }>;
  /** Keys to verify the audit chain with. */
  keyring?: Keyring;
  /** Checkpoints to verify the chain against (those this process wrote, and the checkpoint file). */
  checkpoints?(): Promise<{ checkpoints: AuditCheckpoint[]; unreadable: number }>;
  /** More routes (e.g. rotation: keys, rotate), each with its scope, mounted after authentication. */
  extraRoutes?: AdminRoute[];
  /** The console at /console, with its own sign-in (mounted before the bearer check; off unless SSO or dev mode). */
  console?: ConsoleOptions;
}

/** What the console needs beyond the admin API's own dependencies. */
export type ConsoleOptions = Omit<ConsoleDeps, 'config' | 'store' | 'audit' | 'logger' | 'now' | 'revokeSessions' | 'verifyChain'>;

/** Verifies the store's audit chain against the checkpoints at hand (the API's route and the console). */
async function verifyChain(deps: AdminDeps, expectHead?: string) {
  // Checkpoints first: a checkpoint written during the scan must not look newer than the chain read.
  const cps = (await deps.checkpoints?.()) ?? { checkpoints: [], unreadable: 0 };
  return verifyAuditChain(deps.store, {
    ...(deps.keyring ? { keyring: deps.keyring } : {}),
    checkpoints: cps.checkpoints,
    unreadableCheckpoints: cps.unreadable,
    ...(expectHead !== undefined ? { expectHead } : {}),
  });
}

declare module 'express-serve-static-core' {
  interface Request {
    adminName?: string;
    adminScopes?: ReadonlySet<AdminScope>;
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

/** Records an admin action (the admin's name and the request id come from the request). */
export type AdminAuditor = (req: Request, event: string, fields: Record<string, unknown>) => Promise<void>;

const explainInput = z.strictObject({ claims: z.record(z.string(), z.unknown()), role: z.string(), issuer: z.string() });

function coreRoutes(deps: AdminDeps, audit: AdminAuditor): AdminRoute[] {
  return [
    {
      method: 'GET',
      path: '/openapi.json',
      access: 'read',
      handler: (_req, res) => res.json(ADMIN_OPENAPI_DOCUMENT),
    },
    {
      method: 'GET',
      path: '/revocations',
      access: 'read',
      handler: async (req, res) => {
        res.json({ revocations: await deps.store.listRevocations(deps.now(), { includeExpired: req.query.all === 'true' }) });
      },
    },
    {
      method: 'POST',
      path: '/revocations',
      access: 'operate',
      handler: async (req, res) => {
        const revocation = buildRevocation(req.body, deps.config(), req.adminName!, deps.now());
        await deps.store.addRevocation(revocation);
        await audit(req, 'admin.revoke', { revocation });
        res.status(201).json({ revocation });
      },
    },
    {
      method: 'DELETE',
      path: '/revocations/:id',
      access: 'operate',
      handler: async (req, res) => {
        const id = String(req.params.id);
        if (!(await deps.store.removeRevocation(id))) throw new BrokerError('ERR_NOT_FOUND');
        await audit(req, 'admin.unrevoke', { revocation_id: id });
        res.status(204).end();
      },
    },
    {
      method: 'POST',
      path: '/roles/:name/revoke-sessions',
      access: 'operate',
      handler: async (req, res) => {
        const role = deps.config().policy.roles.get(String(req.params.name));
        if (!role) throw new BrokerError('ERR_NOT_FOUND');
        const result = await deps.revokeSessions(role.arn, deps.now());
        await audit(req, 'admin.revoke_sessions', { role: role.name, role_arn: role.arn, before: result.before });
        res.json({ role: role.name, role_arn: role.arn, policy: 'AWSRevokeOlderSessions', sessions_issued_before: result.before });
      },
    },
    {
      method: 'POST',
      path: '/policy/explain',
      access: 'read',
      handler: (req, res) => {
        const body = explainInput.safeParse(req.body);
        if (!body.success) throw new BrokerError('ERR_BAD_REQUEST', { message: body.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ') });
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
      },
    },
    {
      method: 'POST',
      path: '/token/decode',
      access: 'read',
      handler: (req, res) => {
        const token = typeof req.body?.token === 'string' ? req.body.token : '';
        try {
          res.json({ verified: false, header: decodeProtectedHeader(token), claims: decodeJwt(token) });
        } catch {
          throw new BrokerError('ERR_BAD_REQUEST', { message: 'not a JWT' });
        }
      },
    },
    {
      method: 'GET',
      path: '/audit',
      access: 'read',
      handler: async (req, res) => {
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
      },
    },
    {
      method: 'GET',
      path: '/audit/verify',
      access: 'read',
      handler: async (req, res) => {
        const result = await verifyChain(deps, typeof req.query.head === 'string' ? req.query.head : undefined);
        res.status(result.ok ? 200 : 409).json(result);
      },
    },
    {
      method: 'GET',
      path: '/config/validate',
      access: 'read',
      handler: async (_req, res) => {
        if (!deps.validateConfigFile) throw new BrokerError('ERR_NOT_FOUND', { message: 'this broker was not started from a config file' });
        res.json(await deps.validateConfigFile());
      },
    },
  ];
}

/** Failed authentications audited per client address and minute; beyond that they are counted, not recorded one by one. */
export const FAILED_AUTH_AUDITS_PER_MINUTE = 20;

function failedAuthLimiter(now: () => Date) {
  const windows = new Map<string, { resetAt: number; audited: number; suppressed: number }>();
  return (ip: string): { audit: boolean; suppressedBefore: number } => {
    const t = now().getTime();
    if (windows.size > 10_000) for (const [k, w] of windows) if (w.resetAt <= t) windows.delete(k);
    let w = windows.get(ip);
    let suppressedBefore = 0;
    if (!w || w.resetAt <= t) {
      suppressedBefore = w?.suppressed ?? 0;
      w = { resetAt: t + 60_000, audited: 0, suppressed: 0 };
      windows.set(ip, w);
    }
    if (w.audited >= FAILED_AUTH_AUDITS_PER_MINUTE) {
      w.suppressed++;
      return { audit: false, suppressedBefore: 0 };
    }
    w.audited++;
    return { audit: true, suppressedBefore };
  };
}

/** Every route of the admin API with its scope (the OpenAPI document is checked against this). */
export function listAdminRoutes(deps: AdminDeps): Array<Pick<AdminRoute, 'method' | 'path' | 'access'>> {
  return [...coreRoutes(deps, async () => undefined), ...(deps.extraRoutes ?? [])].map(({ method, path, access }) => ({ method, path, access }));
}

const clip = (s: string, n = 256) => (s.length > n ? `${s.slice(0, n)}…` : s);

/** Express path syntax to the pattern used in audit records and the OpenAPI document. */
export const openApiPath = (path: string): string => `/v1/admin${path.replace(/:([A-Za-z_]+)/g, '{$1}')}`;

export function createAdminApp(deps: AdminDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(helmet());

  const write = (record: AuditRecord) => deps.audit.write(record);
  const base = (req: Request) => ({
    time: deps.now().toISOString(),
    request_id: req.requestId,
    admin: req.adminName,
    client_ip: req.ip,
    method: req.method,
    path: clip(req.path),
  });
  const audit: AdminAuditor = (req, event, fields) => write({ ...base(req), event, ...fields });
  const failedAuth = failedAuthLimiter(deps.now);

  // The console signs people in itself (SSO sessions), so it sits before the bearer check. Its code
  // (templates, the OIDC client) is loaded on the first request while it is on: SSO configured, or
  // dev mode; off, /console falls through to the bearer check like any unknown path.
  if (deps.console) {
    const options = deps.console;
    const on = () => deps.config().raw.console.sso !== undefined || options.devLogin;
    let router: Promise<express.Router> | undefined;
    app.use('/console', (req, res, next) => {
      if (!on()) return next();
      router ??= import('../console/app.js').then(({ createConsole }) => {
        const { config, store, audit: sink, logger, now, revokeSessions } = deps;
        return createConsole({ config, store, audit: sink, logger, now, revokeSessions, verifyChain: () => verifyChain(deps), ...options });
      });
      router.then((r) => r(req, res, next), next);
    });
  }

  app.use((req, res, next) => {
    req.requestId = randomUUID();
    res.set('X-Request-Id', req.requestId);
    res.set('Cache-Control', 'no-store');
    const auth = authenticateAdmin(req.get('authorization'), deps.config().admin.tokens);
    if (!auth.ok) {
      deps.logger.warn({ request_id: req.requestId, method: req.method, path: clip(req.path), reason: auth.reason }, 'admin request without valid credentials');
      const { audit: record, suppressedBefore } = failedAuth(req.ip ?? '');
      const recorded = record
        ? write({ ...base(req), event: 'admin.auth_failed', reason: auth.reason, ...(suppressedBefore ? { suppressed_before: suppressedBefore } : {}) })
        : Promise.resolve();
      recorded.then(
        () => next(new BrokerError('ERR_UNAUTHORIZED')),
        (err: unknown) => next(err),
      );
      return;
    }
    req.adminName = auth.name;
    req.adminScopes = auth.scopes;
    next();
  });
  app.use(express.json({ limit: '256kb' }));

  const routes = [...coreRoutes(deps, audit), ...(deps.extraRoutes ?? [])];
  const r = express.Router();
  for (const route of routes) {
    const pattern = openApiPath(route.path);
    const guard = async (req: Request, res: Response, next: NextFunction) => {
      try {
        if (!req.adminScopes?.has(route.access)) {
          await audit(req, 'admin.forbidden', { route: pattern, required_scope: route.access, scopes: [...(req.adminScopes ?? [])] });
          throw new BrokerError('ERR_FORBIDDEN', { detail: { required_scope: route.access } });
        }
        res.locals.adminRoute = pattern;
        // Before the handler runs: a read is on record even if answering it fails.
        await audit(req, 'admin.request', { route: pattern, access: route.access, ...(route.method === 'GET' && Object.keys(req.query).length ? { query: req.query } : {}) });
        next();
      } catch (err) {
        next(err);
      }
    };
    const handler = async (req: Request, res: Response) => {
      await route.handler(req, res);
    };
    if (route.method === 'GET') r.get(route.path, guard, handler);
    else if (route.method === 'POST') r.post(route.path, guard, handler);
    else r.delete(route.path, guard, handler);
  }
  // Known paths with another method: 405 with Allow.
  const byPath = new Map<string, string[]>();
  for (const route of routes) byPath.set(route.path, [...(byPath.get(route.path) ?? []), route.method]);
  for (const [path, methods] of byPath) {
    r.all(path, (_req, res, next) => {
      res.set('Allow', methods.flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m])).join(', '));
      next(new BrokerError('ERR_METHOD_NOT_ALLOWED'));
    });
  }
  app.use('/v1/admin', r);
  app.use((_req, _res, next) => next(new BrokerError('ERR_NOT_FOUND')));

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    void (async () => {
      let be: BrokerError;
      const type = (err as { type?: string })?.type;
      if (isBrokerError(err)) be = err;
      else if (type === 'entity.too.large') be = new BrokerError('ERR_PAYLOAD_TOO_LARGE');
      else if (type === 'entity.parse.failed' || type === 'encoding.unsupported' || type === 'charset.unsupported') be = new BrokerError('ERR_BAD_REQUEST', { message: 'the body is not valid JSON' });
      else {
        be = new BrokerError('ERR_INTERNAL', { cause: err });
        deps.logger.error({ request_id: req.requestId, error: err instanceof Error ? err.message : String(err) }, 'admin error');
      }
      // An authenticated request that failed (after its admin.request record, or instead of the
      // route's own record) says so in the trail; 401 and 403 were recorded where they happened.
      if (req.adminName !== undefined && be.code !== 'ERR_FORBIDDEN') {
        await audit(req, 'admin.failed', { route: res.locals.adminRoute as string | undefined, code: be.code, status: be.status }).catch((auditErr: unknown) => {
          deps.logger.error({ request_id: req.requestId, error: auditErr instanceof Error ? auditErr.message : String(auditErr) }, 'cannot audit a failed admin request');
          be = new BrokerError('ERR_INTERNAL');
        });
      }
      if (res.headersSent) return;
      // Admins get the validation detail of their own input; never anything else.
      if (be.code === 'ERR_BAD_REQUEST' && be.message !== be.publicMessage) {
        res.status(400).json({ error: { code: be.code, message: be.message, request_id: req.requestId } });
        return;
      }
      sendError(res, be, req.requestId ?? randomUUID());
    })();
  });
  return app;
}
