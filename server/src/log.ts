// Structured JSON logs. Redaction is the second line of defence: code never passes secrets to the
// logger on purpose, and these paths catch the places where one could slip in.
import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'token',
  '*.token',
  'id_token',
  '*.id_token',
  'SecretAccessKey',
  '*.SecretAccessKey',
  'SessionToken',
  '*.SessionToken',
  'secretAccessKey',
  '*.secretAccessKey',
  'sessionToken',
  '*.sessionToken',
  'secret_access_key',
  '*.secret_access_key',
  'session_token',
  '*.session_token',
  'credentials',
  '*.credentials',
];

export function createLogger(opts: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      // `credbroker dev` sets CREDBROKER_MODE=dev so that every line it logs says so.
      base: { service: 'credbroker', ...(process.env.CREDBROKER_MODE === 'dev' ? { mode: 'dev' } : {}) },
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination ?? pino.destination({ fd: 2, sync: true }),
  );
}
