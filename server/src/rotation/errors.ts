// Rotation's stable error codes. Messages carry key ids, sink ids and HTTP statuses — never a
// secret, never a raw response body, never the underlying library error (which may hold the
// request with the secret in it).
export type RotationErrorCode =
  | 'ERR_ROTATION_TWO_ACTIVE_KEYS'
  | 'ERR_ROTATION_KEY_STATE'
  | 'ERR_ROTATION_VERIFY_FAILED'
  | 'ERR_ROTATION_USER_NOT_FOUND'
  | 'ERR_ROTATION_USER_AMBIGUOUS'
  | 'ERR_ROTATION_CONFIG'
  | 'ERR_ROTATION_LEASE_LOST'
  | 'ERR_ROTATION_ABORTED'
  | 'ERR_SINK_TOKEN_MISSING'
  | 'ERR_SINK_TEMPLATE'
  | 'ERR_SINK_TARGET_NOT_ALLOWED'
  | 'ERR_SINK_HTTP'
  | 'ERR_SINK_NETWORK'
  | 'ERR_SINK_COMMAND'
  | 'ERR_SINK_DEADLINE'
  | 'ERR_IAM'
  | 'ERR_IAM_THROTTLED'
  | 'ERR_IAM_UNAVAILABLE'
  | 'ERR_STS';

export class RotationError extends Error {
  override readonly name = 'RotationError';
  constructor(
    readonly code: RotationErrorCode,
    message: string,
    /** inFlight: a write may have been sent and still be applied (a timeout, an abort, a lost connection). */
    readonly opts: { retryable?: boolean; status?: number; inFlight?: boolean } = {},
  ) {
    super(message);
  }
  get retryable(): boolean {
    return this.opts.retryable ?? false;
  }
}

export const isRotationError = (e: unknown): e is RotationError => e instanceof RotationError;

/** The code of any error, for audit and metrics. */
export function errorCodeOf(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return 'ERR_INTERNAL';
}

/** A message safe to log: our own errors' messages only; anything else is reduced to its class. */
export function safeMessage(err: unknown): string {
  if (err instanceof RotationError) return err.message;
  if (err instanceof Error && err.name === 'StoreError') return err.message;
  if (err instanceof Error) return `unexpected ${err.name}`;
  return 'unexpected error';
}
