// The security team's console: server-rendered pages on the admin listener, under /console.
// Sign-in is OIDC SSO (console.sso), or a labelled dev login in `credbroker dev`; without either
// the console is off and /console answers as any unknown admin path does. Sessions live in this
// process. Every request of a signed-in person is an audit record carrying their identity, before
// it is answered; every state-changing request carries the session's CSRF token and comes from
// the console's own origin.
import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { VNode } from 'preact';
import type { AuditRecord, AuditSink } from '../audit/types.js';
import type { Config } from '../config/compile.js';
import type { ChainVerification } from '../core/audit-chain.js';
import { BrokerError, isBrokerError } from '../errors.js';
import type { Logger } from '../log.js';
import type { OpsStore } from '../ops/types.js';
import { missingRequiredClaim, personFromClaims, roleFor, type ConsoleRole, type Person } from './access.js';
import { loadAssets, type ConsoleAssets } from './assets.js';
import { clearCookie, cookieNames, hostAllowed, readCookie, render, safeNext, securityHeaders, setCookie, type CookieNames } from './http.js';
import type { ConsoleKeys } from './keys.js';
import { consoleRoutes } from './routes.js';
import { randomToken, sameToken, SessionStore, type Session } from './sessions.js';
import { consoleOrigin, secureCookies, type SsoSettings } from './settings.js';
import { ssoClients, type SsoClient } from './sso.js';
import { ChainWatch, type IssuerKeyStatus } from './status.js';
import { ErrorPage, LoginPage, SignedInPage } from './views/auth.js';
import type { Frame, ViewContext } from './views/layout.js';

export interface ConsoleDeps {
  config(): Config;
  store: OpsStore;
  audit: AuditSink;
  logger: Logger;
  now(): Date;
  /** `credbroker dev` only: a dev login instead of SSO (no configuration key turns it on). */
  devLogin: boolean;
  /** The admin listener's bind address: cookies may drop Secure only on loopback in dev mode. */
  adminHost: string;
  revokeSessions(roleArn: string, now: Date): Promise<{ roleName: string; before: string }>;
  verifyChain(): Promise<ChainVerification>;
  issuerKeys(): IssuerKeyStatus[];
  stsCircuitOpen(account: string): boolean;
  /** Static keys (rotation configured); without it the page says rotation is not configured. */
  keys?: ConsoleKeys | undefined;
  /** The config file the broker runs from, for the policy change review. */
  configFile?: string | undefined;
  /** The broker's outbound fetch (egress proxy, CA bundles), for the identity provider. */
  fetch?: typeof fetch;
  /** Injectable for tests; default openid-client against console.sso. */
  sso?: (s: SsoSettings) => SsoClient;
  assets?: ConsoleAssets;
}

/** What a signed-in request carries through the console's handlers. */
export interface ConsoleRequest {
  session: Session;
  role: ConsoleRole;
  ctx: ViewContext;
  /** Writes an audit record with the person's identity (and the request's id, path, address). */
  audit(event: string, fields?: Record<string, unknown>): Promise<void>;
}

declare module 'express-serve-static-core' {
  interface Request {
    console?: ConsoleRequest;
  }
}

const clip = (s: string, n = 256) => (s.length > n ? `${s.slice(0, n)}…` : s);

/** Wraps an async handler so that a rejection reaches the error handler. */
export const h =
  (fn: (req: Request, res: Response) => Promise<unknown> | unknown) =>
  (req: Request, res: Response, next: NextFunction): void => {
    Promise.resolve()
      .then(() => fn(req, res))
      .catch(next);
  };

export function createConsole(deps: ConsoleDeps): express.Router {
  const router = express.Router();
  const sessions = new SessionStore(() => deps.now().getTime());
  const sso = deps.sso ?? ssoClients(process.env, deps.fetch);
  const assets = deps.assets ?? loadAssets();
  if (!assets.script || !assets.style) deps.logger.warn({ component: 'console' }, 'console assets are not built (dist/console): pages work without charts and styles; run npm run build');
  const chain = new ChainWatch(deps.verifyChain, deps.now);
  const settings = () => deps.config().raw.console;
  const mode = (): 'sso' | 'dev' | 'off' => (settings().sso ? 'sso' : deps.devLogin ? 'dev' : 'off');
  const dev = () => mode() === 'dev';
  const cookies = (): CookieNames => cookieNames(mode() === 'sso' || secureCookies(true, deps.adminHost));
  const frame = (): Frame => ({ dev: dev(), script: assets.script, style: assets.style, icon: assets.icon });
  const limits = () => ({ idleMs: settings().session_idle_seconds * 1000, maxMs: settings().session_max_seconds * 1000 });

  const write = (record: AuditRecord) => deps.audit.write(record);
  const baseRecord = (req: Request) => ({
    time: deps.now().toISOString(),
    request_id: req.requestId,
    via: 'console',
    client_ip: req.ip,
    method: req.method,
    path: clip(req.originalUrl.split('?')[0]!),
  });

  const errorPage = (req: Request, res: Response, status: number, title: string, message: string) =>
    render(res, status, ErrorPage({ frame: frame(), status, title, message, requestId: req.requestId, signedIn: req.console !== undefined }) as VNode);

  // Off: fall through to the admin API's own handling (authentication first, then 404).
  router.use((_req, _res, next) => next(mode() === 'off' ? 'router' : undefined));
  router.use((req, res, next) => {
    req.requestId = randomUUID();
    res.set('X-Request-Id', req.requestId);
    securityHeaders(res);
    if (!hostAllowed(req.headers.host, mode() === 'sso' ? settings().url : undefined)) {
      deps.logger.warn({ component: 'console', request_id: req.requestId, host: clip(String(req.headers.host ?? '')) }, 'console request for another host name refused');
      res.status(421).type('text/plain').send('misdirected request\n');
      return;
    }
    next();
  });
  router.get('/assets/:file', (req, res) => assets.serve(req, res));
  router.use(express.urlencoded({ extended: false, limit: '512kb', parameterLimit: 200 }));

  /** Where the browser says a state-changing request comes from must be the console itself. */
  const sameOrigin = (req: Request): boolean => {
    const expected = mode() === 'sso' ? consoleOrigin(settings().url ?? '') : { origin: `http://${req.headers.host}` };
    if (!('origin' in expected)) return false;
    const site = req.get('sec-fetch-site');
    if (site !== undefined && site !== 'same-origin') return false;
    return req.get('origin') === expected.origin;
  };
  router.use((req, res, next) => {
    if (req.method !== 'POST' || sameOrigin(req)) return next();
    deps.logger.warn({ component: 'console', request_id: req.requestId, origin: clip(String(req.get('origin') ?? '(none)')) }, 'console POST from another origin refused');
    errorPage(req, res, 403, 'Refused', 'This request did not come from the console itself.');
  });

  // --- signing in and out

  router.get('/login', (req, res) => {
    const next = safeNext(req.query.next);
    const names = cookies();
    if (sessions.get(readCookie(req, names.session), limits())) return res.redirect(303, next);
    const m = mode() as 'sso' | 'dev';
    let csrf: string | undefined;
    if (m === 'dev') {
      csrf = randomToken();
      setCookie(res, names, names.prelogin, csrf, { sameSite: 'strict', maxAgeMs: 30 * 60_000 });
    }
    const message = req.query.signed_out === '1' ? 'You are signed out.' : req.query.expired === '1' ? 'Your session ended. Sign in again.' : undefined;
    render(res, 200, LoginPage({ frame: frame(), mode: m, next, csrf, message, issuer: settings().sso?.issuer }) as VNode);
  });

  const redirectUri = () => `${settings().url}/console/auth/callback`;

  router.get(
    '/auth/start',
    h(async (req, res) => {
      const s = settings().sso;
      if (!s) return errorPage(req, res, 404, 'Not found', 'SSO is not configured.');
      let started;
      try {
        started = await sso(s).start(redirectUri());
      } catch (err) {
        deps.logger.error({ component: 'console', request_id: req.requestId, error: err instanceof Error ? err.message : String(err) }, 'cannot start SSO sign-in');
        return errorPage(req, res, 502, 'Identity provider unavailable', 'The identity provider could not be reached or is misconfigured. The broker log has the detail.');
      }
      const names = cookies();
      const id = sessions.startLogin(safeNext(req.query.next), { state: started.state, nonce: started.nonce, verifier: started.verifier });
      // Lax: the identity provider's redirect back is a cross-site navigation, which Strict would strip.
      setCookie(res, names, names.login, id, { sameSite: 'lax', maxAgeMs: 10 * 60_000 });
      res.redirect(303, started.url);
    }),
  );

  const signIn = async (req: Request, res: Response, person: Person, role: ConsoleRole) => {
    const names = cookies();
    const { id } = sessions.create(person);
    await write({ ...baseRecord(req), event: 'console.login', admin: person.id, console_role: role, groups: person.groups, ...(dev() ? { dev_login: true } : {}) });
    setCookie(res, names, names.session, id, { sameSite: 'strict' });
  };

  router.get(
    '/auth/callback',
    h(async (req, res) => {
      const s = settings().sso;
      const origin = consoleOrigin(settings().url ?? '');
      if (!s || !('origin' in origin)) return errorPage(req, res, 404, 'Not found', 'SSO is not configured.');
      const names = cookies();
      const pending = sessions.takeLogin(readCookie(req, names.login));
      clearCookie(res, names, names.login, 'lax');
      if (!pending) return errorPage(req, res, 400, 'Sign-in expired', 'This sign-in was not started here, or took more than ten minutes. Start again.');
      let claims: Record<string, unknown>;
      try {
        claims = await sso(s).finish(new URL(req.originalUrl, origin.origin), pending);
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        deps.logger.warn({ component: 'console', request_id: req.requestId, error: clip(reason) }, 'SSO sign-in failed');
        await write({ ...baseRecord(req), event: 'console.login_failed', reason: clip(reason, 200) });
        return errorPage(req, res, 401, 'Sign-in failed', 'The identity provider did not confirm who you are. The broker log has the detail.');
      }
      const person = personFromClaims(claims, { emailClaim: s.email_claim, groupsClaim: s.groups_claim });
      const missing = missingRequiredClaim(claims, s.required_claims);
      if (missing !== undefined) {
        await write({ ...baseRecord(req), event: 'console.login_refused', admin: person.id, reason: `required claim ${missing} does not hold` });
        return errorPage(req, res, 403, 'Not allowed', `This account does not belong here (its ${missing} claim is not the one required).`);
      }
      const access = roleFor(person, settings());
      if (!access.ok) {
        await write({ ...baseRecord(req), event: 'console.login_refused', admin: person.id, groups: person.groups });
        return errorPage(req, res, 403, 'Not allowed', `${person.id} is not in console.viewers or console.operators. Ask the security team to add you (by group or e-mail address).`);
      }
      await signIn(req, res, person, access.role);
      render(res, 200, SignedInPage({ frame: frame(), next: pending.returnTo }) as VNode);
    }),
  );

  router.post(
    '/auth/dev',
    h(async (req, res) => {
      const names = cookies();
      if (!dev()) return errorPage(req, res, 404, 'Not found', 'The dev login exists only in credbroker dev.');
      const body = req.body as Record<string, unknown>;
      const pre = readCookie(req, names.prelogin);
      if (!pre || !sameToken(typeof body._csrf === 'string' ? body._csrf : undefined, pre)) return errorPage(req, res, 403, 'Refused', 'The sign-in form expired. Load it again.');
      const role = body.role === 'operator' ? 'operator' : body.role === 'viewer' ? 'viewer' : undefined;
      if (!role) return errorPage(req, res, 400, 'Bad request', 'Pick operator or viewer.');
      clearCookie(res, names, names.prelogin);
      await signIn(req, res, { id: `dev-${role} (dev login)`, email: undefined, name: undefined, groups: [], devRole: role }, role);
      res.redirect(303, safeNext(body.next));
    }),
  );

  router.post(
    '/logout',
    h(async (req, res) => {
      const names = cookies();
      const id = readCookie(req, names.session);
      const session = sessions.get(id, limits());
      if (session) {
        const body = req.body as Record<string, unknown>;
        if (!sameToken(typeof body._csrf === 'string' ? body._csrf : undefined, session.csrf)) return errorPage(req, res, 403, 'Refused', 'The form expired. Load the page again.');
        sessions.delete(id);
        await write({ ...baseRecord(req), event: 'console.logout', admin: session.person.id });
      }
      clearCookie(res, names, names.session);
      res.redirect(303, '/console/login?signed_out=1');
    }),
  );

  // --- everything else needs a session

  router.use((req, res, next) => {
    void (async () => {
      const names = cookies();
      const session = sessions.get(readCookie(req, names.session), limits());
      if (!session) {
        if (req.method === 'GET' || req.method === 'HEAD') return res.redirect(303, `/console/login?next=${encodeURIComponent(safeNext(req.originalUrl))}`);
        return errorPage(req, res, 401, 'Signed out', 'Your session ended. Sign in again.');
      }
      const access = roleFor(session.person, settings());
      if (!access.ok) {
        // Removed from the lists since signing in: the session ends now.
        sessions.delete(readCookie(req, names.session));
        await write({ ...baseRecord(req), event: 'console.login_refused', admin: session.person.id, groups: session.person.groups, reason: 'no longer allowed' });
        return errorPage(req, res, 403, 'Not allowed', 'Your account is no longer in console.viewers or console.operators.');
      }
      const role = access.role;
      const audit = (event: string, fields: Record<string, unknown> = {}) => write({ ...baseRecord(req), event, admin: session.person.id, console_role: role, ...fields });
      req.console = {
        session,
        role,
        audit,
        ctx: { ...frame(), person: session.person, role, csrf: session.csrf, path: req.path },
      };
      if (req.method === 'POST') {
        const body = req.body as Record<string, unknown>;
        if (!sameToken(typeof body._csrf === 'string' ? body._csrf : undefined, session.csrf)) {
          await audit('admin.forbidden', { reason: 'csrf token missing or wrong' });
          return errorPage(req, res, 403, 'Refused', 'The form expired or did not come from this console. Load the page again.');
        }
      }
      // Before the handler runs: a read is on record even if answering it fails.
      const query = req.method === 'GET' && Object.keys(req.query).length > 0 ? { query: req.query } : {};
      await audit('admin.request', { route: `/console${req.path}`, ...query });
      next();
    })().catch(next);
  });

  consoleRoutes(router, { ...deps, chain, sessions });

  router.use((req, res) => errorPage(req, res, 404, 'Not found', 'No such page in the console.'));
  router.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    void (async () => {
      let be = isBrokerError(err) ? err : new BrokerError('ERR_INTERNAL', { cause: err });
      if (!isBrokerError(err)) deps.logger.error({ component: 'console', request_id: req.requestId, error: err instanceof Error ? err.message : String(err) }, 'console error');
      // A signed-in request that failed says so in the trail (403s were recorded where they happened).
      if (req.console && be.code !== 'ERR_FORBIDDEN') {
        await req.console.audit('admin.failed', { code: be.code, status: be.status }).catch((auditErr: unknown) => {
          deps.logger.error({ component: 'console', request_id: req.requestId, error: auditErr instanceof Error ? auditErr.message : String(auditErr) }, 'cannot audit a failed console request');
          be = new BrokerError('ERR_INTERNAL');
        });
      }
      if (res.headersSent) return;
      const message = be.code === 'ERR_BAD_REQUEST' ? be.message : be.status >= 500 ? `Something went wrong: ${be.publicMessage} The broker log has the detail.` : be.publicMessage;
      errorPage(req, res, be.status, be.status === 404 ? 'Not found' : be.status === 403 ? 'Not allowed' : be.status >= 500 ? 'Error' : 'Cannot do that', message);
    })();
  });
  return router;
}
