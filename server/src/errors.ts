// One error type for the whole broker. `code` is stable and public; `reason` is the precise,
// internal cause (logged and audited, never sent to the caller); `detail` is free text for logs.

export const PUBLIC_CODES = {
  ERR_BAD_REQUEST: 400,
  ERR_TOKEN_MISSING: 401,
  ERR_TOKEN_INVALID: 401,
  ERR_TOKEN_EXPIRED: 401,
  ERR_TOKEN_REPLAYED: 401,
  ERR_POLICY_DENIED: 403,
  ERR_REVOKED: 403,
  ERR_NOT_FOUND: 404,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_PAYLOAD_TOO_LARGE: 413,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  ERR_RATE_LIMITED: 429,
  ERR_INTERNAL: 500,
  ERR_STS_CREDENTIALS: 500,
  ERR_STS_REJECTED: 502,
  ERR_STS_ACCESS_DENIED: 502,
  ERR_STS_THROTTLED: 503,
  ERR_STS_UNAVAILABLE: 503,
  ERR_IAM_REJECTED: 502,
  ERR_IAM_UNAVAILABLE: 503,
  ERR_NOT_READY: 503,
  ERR_TIMEOUT: 503,
  ERR_UNAUTHORIZED: 401,
  ERR_FORBIDDEN: 403,
} as const;

export type ErrorCode = keyof typeof PUBLIC_CODES;

/** Internal reasons: more precise than the public code, for logs, audit and `policy explain`. */
export type ReasonCode =
  | ErrorCode
  | 'ERR_TOKEN_MALFORMED'
  | 'ERR_TOKEN_SIGNATURE'
  | 'ERR_TOKEN_ALGORITHM'
  | 'ERR_TOKEN_AUDIENCE'
  | 'ERR_TOKEN_ISSUER_UNKNOWN'
  | 'ERR_TOKEN_KID_UNKNOWN'
  | 'ERR_TOKEN_NOT_YET_VALID'
  | 'ERR_TOKEN_TOO_OLD'
  | 'ERR_TOKEN_CLAIMS_MISSING'
  | 'ERR_TOKEN_CLAIM_TYPE'
  | 'ERR_TOKEN_TYPE'
  | 'ERR_ISSUER_KEYS_UNAVAILABLE'
  | 'ERR_POLICY_NO_MATCH'
  | 'ERR_POLICY_DENY_RULE'
  | 'ERR_POLICY_UNKNOWN_ROLE';

const PUBLIC_MESSAGES: Record<ErrorCode, string> = {
  ERR_BAD_REQUEST: 'The request is malformed.',
  ERR_TOKEN_MISSING: 'A bearer token is required.',
  ERR_TOKEN_INVALID: 'The identity token could not be verified.',
  ERR_TOKEN_EXPIRED: 'The identity token has expired or is too old.',
  ERR_TOKEN_REPLAYED: 'The identity token has already been used.',
  ERR_POLICY_DENIED: 'The policy does not allow this identity to assume this role.',
  ERR_REVOKED: 'Access for this identity has been revoked.',
  ERR_NOT_FOUND: 'Not found.',
  ERR_METHOD_NOT_ALLOWED: 'Method not allowed.',
  ERR_PAYLOAD_TOO_LARGE: 'The request body is too large.',
  ERR_UNSUPPORTED_MEDIA_TYPE: 'The request body must be application/json.',
  ERR_RATE_LIMITED: 'Too many requests.',
  ERR_INTERNAL: 'Internal error.',
  ERR_STS_CREDENTIALS: 'The broker has no usable AWS credentials of its own.',
  ERR_STS_REJECTED: 'AWS STS rejected the request.',
  ERR_STS_ACCESS_DENIED: 'AWS STS denied the broker access to the role.',
  ERR_STS_THROTTLED: 'AWS STS is throttling requests; retry later.',
  ERR_STS_UNAVAILABLE: 'AWS STS is unavailable; retry later.',
  ERR_IAM_REJECTED: 'AWS IAM refused the request.',
  ERR_IAM_UNAVAILABLE: 'AWS IAM is unavailable; retry later.',
  ERR_NOT_READY: 'The broker is not ready; retry later.',
  ERR_TIMEOUT: 'The request timed out; retry later.',
  ERR_UNAUTHORIZED: 'Authentication required.',
  ERR_FORBIDDEN: 'These credentials do not allow this request.',
};

export class BrokerError extends Error {
  override readonly name = 'BrokerError';
  readonly code: ErrorCode;
  readonly reason: ReasonCode;
  readonly status: number;
  /** Seconds the caller should wait before retrying (503/429). */
  readonly retryAfter: number | undefined;
  /** Structured detail for logs and audit (never sent to the caller). */
  readonly detail: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    opts: {
      reason?: ReasonCode;
      detail?: Record<string, unknown>;
      retryAfter?: number;
      cause?: unknown;
      message?: string;
    } = {},
  ) {
    super(opts.message ?? PUBLIC_MESSAGES[code], opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.reason = opts.reason ?? code;
    this.status = PUBLIC_CODES[code];
    this.retryAfter = opts.retryAfter;
    this.detail = opts.detail;
  }

  /** The only message a caller ever sees for this code. */
  get publicMessage(): string {
    return PUBLIC_MESSAGES[this.code];
  }
}

export const isBrokerError = (e: unknown): e is BrokerError => e instanceof BrokerError;

/**
 * A failure on the broker's side that a retry with the same token may get past (503: STS
 * throttled or down, not ready, timed out). Only these give a one-time token back; a permanent
 * failure (502 access denied or rejected by STS, 500) keeps it spent.
 */
export const isTransient = (e: BrokerError): boolean => e.status === 503;
