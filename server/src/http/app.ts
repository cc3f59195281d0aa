// The public HTTP API (express + helmet). Routes are thin: parse, call the exchange, render.
// Errors leave through one middleware that builds `{"error": {code, message, request_id}}` from a
// fixed list of fields: never a stack trace, never a secret, never the precise token failure.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import express, { type Request, type Response, type NextFunction } from 'express';
import helmet from 'helmet';
import { z } from 'zod';
import { BrokerError, isBrokerError } from '../errors.js';
import { exchange, type ExchangeDeps, type ExchangeResult } from '../exchange.js';
import { FORMATS, renderCredentials, type Format } from './responses.js';

export const OPENAPI_DOCUMENT: unknown = JSON.parse(readFileSync(new URL('../../openapi.json', import.meta.url), 'utf8'));

const bodySchema = z.strictObject({
  role: z.string().min(1).max(128).regex(/^[A-Za-z0-9_.-]+$/),
  duration_seconds: z.number().int().min(900).max(43_200).optional(),
});

export interface AppDeps extends ExchangeDeps {
  ready(): { ready: boolean; issuers: Record<string, boolean>; issuer_errors?: Record<string, string> };
  /** Middleware run before the exchange (rate limits plug in here). */
  limiters?: express.RequestHandler[];
}

declare module 'express-serve-static-core' {
  interface Request {
    requestId: string;
  }
}

function bearerToken(req: Request): string {
  const header = req.get('authorization');
  if (!header) throw new BrokerError('ERR_TOKEN_MISSING');
  const m = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
  if (!m) throw new BrokerError('ERR_TOKEN_MISSING', { detail: { error: 'Authorization is not a Bearer token' } });
  return m[1]!;
}

export function sendError(res: Response, err: BrokerError, requestId: string): void {
  if (err.retryAfter !== undefined) res.set('Retry-After', String(err.retryAfter));
  res.set('Cache-Control', 'no-store');
  res.status(err.status).json({ error: { code: err.code, message: err.publicMessage, request_id: requestId } });
}

/**
 * At most `limit()` exchanges in progress; the others wait their turn, in order, before their body
 * is read. A waiting request costs a socket and a small object; an exchange in progress costs its
 * token verification, policy decision, STS call and their garbage. Beyond what the CPU can serve,
 * more exchanges at once only add memory (and latency for all), not throughput.
 */
function admission(limit: () => number): express.RequestHandler {
  let running = 0;
  const waiting: Array<() => void> = [];
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else running--;
  };
  return (_req, res, next) => {
    let started = false;
    const start = () => {
      started = true;
      res.once('close', release);
      next();
    };
    if (running < limit()) {
      running++;
      start();
      return;
    }
    waiting.push(start);
    // A caller that gives up while waiting leaves the queue (it holds no slot).
    res.once('close', () => {
      if (started) return;
      const i = waiting.indexOf(start);
      if (i >= 0) waiting.splice(i, 1);
    });
  };
}

async function auditUndelivered(deps: AppDeps, requestId: string, result: ExchangeResult): Promise<void> {
  const record = {
    time: deps.now().toISOString(),
    event: 'exchange.undelivered',
    request_id: requestId,
    code: 'ERR_TIMEOUT',
    access_key_id: result.credentials.accessKeyId,
    role_arn: result.roleArn,
    session_name: result.sessionName,
  };
  await deps.audit.write(record).catch((err: unknown) => deps.logger.error({ request_id: requestId, error: String(err) }, 'audit write failed'));
  deps.logger.warn({ request_id: requestId, access_key_id: result.credentials.accessKeyId }, 'credentials issued after the request timed out were not delivered');
}

export function createApp(deps: AppDeps): express.Express {
  const app = express();
  // One body parser per limit (the limit follows reloads), not one built for every request.
  let parser: { limit: number; handler: express.RequestHandler } | undefined;
  const jsonBody = (limit: number): express.RequestHandler => {
    if (parser?.limit !== limit) parser = { limit, handler: express.json({ limit, strict: true }) };
    return parser.handler;
  };
  const cfg = () => deps.config().server;
  app.disable('x-powered-by');
  // Every answer is no-store and most are one-time credentials: an ETag is work for nothing.
  app.set('etag', false);
  app.set('trust proxy', cfg().trust_proxy);
  app.use(helmet());

  app.use((req, res, next) => {
    req.requestId = randomUUID();
    res.set('X-Request-Id', req.requestId);
    // Only when debug logging is on: a listener and a clock read per request are not free.
    if (deps.logger.isLevelEnabled('debug')) {
      const started = process.hrtime.bigint();
      res.on('finish', () => {
        deps.logger.debug(
          { request_id: req.requestId, method: req.method, path: req.path, status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 },
          'request',
        );
      });
    }
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    const r = deps.ready();
    res.status(r.ready ? 200 : 503).json({ status: r.ready ? 'ready' : 'not ready', issuers: r.issuers, ...(r.issuer_errors ? { issuer_errors: r.issuer_errors } : {}) });
  });
  app.get('/openapi.json', (_req, res) => {
    res.json(OPENAPI_DOCUMENT);
  });

  const v1 = express.Router();
  v1.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    res.set('Pragma', 'no-cache');
    next();
  });
  v1.post(
    '/credentials',
    admission(() => cfg().max_concurrent_exchanges),
    (req, _res, next) => {
      if (!req.is('application/json')) return next(new BrokerError('ERR_UNSUPPORTED_MEDIA_TYPE'));
      next();
    },
    (req, res, next) => jsonBody(cfg().body_limit_bytes)(req, res, next),
    ...(deps.limiters ?? []),
    async (req, res) => {
      const format = (req.query.format ?? 'json') as string;
      if (typeof format !== 'string' || !(FORMATS as readonly string[]).includes(format)) {
        throw new BrokerError('ERR_BAD_REQUEST', { detail: { error: 'unknown format' } });
      }
      const parsed = bodySchema.safeParse(req.body);
      if (!parsed.success) {
        throw new BrokerError('ERR_BAD_REQUEST', { detail: { issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) } });
      }
      const token = bearerToken(req);
      const timeout = AbortSignal.timeout(cfg().request_timeout_ms);
      const running = exchange(deps, {
        token,
        role: parsed.data.role,
        durationSeconds: parsed.data.duration_seconds,
        requestId: req.requestId,
        clientIp: req.ip,
        signal: timeout,
      });
      let settled = false;
      running.then(
        () => (settled = true),
        () => (settled = true),
      );
      const result = await Promise.race([
        running,
        new Promise<never>((_, reject) =>
          timeout.addEventListener(
            'abort',
            () => {
              if (settled) return; // answered in time: the timer firing later means nothing
              // The caller gets 503 now. The exchange stops at its next step; if it was already
              // writing its allow record, say in the trail that nobody received those credentials.
              running.then((late) => auditUndelivered(deps, req.requestId, late), () => undefined);
              reject(new BrokerError('ERR_TIMEOUT', { retryAfter: 1 }));
            },
            { once: true },
          ),
        ),
      ]);
      const { contentType, body } = renderCredentials(result, format as Format, req.requestId);
      res.status(200).type(contentType).send(body);
    },
  );
  app.use('/v1', v1);

  // Known paths with another method: 405 with Allow, not 404.
  const allow = (methods: string) => (_req: Request, res: Response, next: NextFunction) => {
    res.set('Allow', methods);
    next(new BrokerError('ERR_METHOD_NOT_ALLOWED'));
  };
  app.all(['/healthz', '/readyz', '/openapi.json'], allow('GET, HEAD'));
  app.all('/v1/credentials', allow('POST'));
  app.use((_req, _res, next) => next(new BrokerError('ERR_NOT_FOUND')));

  // One place turns every failure into a response.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const requestId = req.requestId ?? randomUUID();
    let be: BrokerError;
    if (isBrokerError(err)) be = err;
    else {
      const type = (err as { type?: string })?.type;
      if (type === 'entity.too.large') be = new BrokerError('ERR_PAYLOAD_TOO_LARGE');
      else if (type === 'entity.parse.failed' || type === 'encoding.unsupported' || type === 'charset.unsupported') {
        be = new BrokerError('ERR_BAD_REQUEST', { detail: { error: type } });
      } else {
        be = new BrokerError('ERR_INTERNAL', { cause: err });
        deps.logger.error({ request_id: requestId, error: err instanceof Error ? err.message : String(err) }, 'unhandled error');
      }
    }
    if (res.headersSent) return;
    sendError(res, be, requestId);
  });
  return app;
}
