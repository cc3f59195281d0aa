// aws.http_timeout_ms, for every AWS SDK client the broker builds (STS, IAM, revoke-sessions):
// each request gets that long to connect and that long to be answered. The SDK's default for an
// exceeded requestTimeout is a warning while the request keeps waiting; here it is an error
// (`TimeoutError`), which the SDK retries like any transient failure and callers map to their
// transient code (ERR_STS_UNAVAILABLE, ERR_IAM_UNAVAILABLE).

export interface AwsRequestTimeouts {
  connectionTimeout: number;
  requestTimeout: number;
  throwOnRequestTimeout: true;
}

export function awsRequestTimeouts(timeoutMs: number): AwsRequestTimeouts {
  return { connectionTimeout: timeoutMs, requestTimeout: timeoutMs, throwOnRequestTimeout: true };
}

/** The SDK's names for a request that got no answer in time. */
const TIMED_OUT = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);

export const timedOut = (err: unknown): boolean =>
  err !== null && typeof err === 'object' && 'name' in err && TIMED_OUT.has(String((err as { name: unknown }).name));
