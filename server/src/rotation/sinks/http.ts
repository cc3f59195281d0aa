// Shared HTTP handling for the sinks (GitHub, GitLab, CircleCI, Travis): timeouts, the push fence,
// and the mapping of failures to RotationError. Response bodies are never copied into errors, and
// redirects are refused (a redirect must not carry a secret to another host).
import { RotationError } from '../errors.js';
import { defaultNetwork } from '../../net/network.js';
import type { PushFence, SinkContext } from './types.js';

export const isRetryableStatus = (status: number): boolean => status === 408 || status === 429 || status >= 500;

export function httpError(sinkId: string, what: string, status: number): RotationError {
  return new RotationError('ERR_SINK_HTTP', `sink ${sinkId}: ${what} answered HTTP ${status}`, {
    retryable: isRetryableStatus(status),
    status,
  });
}

/** `why`: what failed on the way (TLS reason and host, the proxy), never a request's content. */
export function networkError(sinkId: string, what: string, err: unknown, why?: string): RotationError {
  const name = err instanceof Error ? err.name : 'Error';
  return new RotationError('ERR_SINK_NETWORK', `sink ${sinkId}: ${what} failed (${why ?? name})`, { retryable: true, inFlight: true });
}

/** The push reached its deadline: nothing more may be written, because the lease may be gone by then. */
export function deadlineError(sinkId: string, what: string, started: boolean, inFlight = started): RotationError {
  return new RotationError('ERR_SINK_DEADLINE', `sink ${sinkId}: ${what} ${started ? 'stopped at' : 'not started: past'} the push deadline (before the rotation lease expires)`, {
    retryable: true,
    inFlight,
  });
}

export function requireToken(sinkId: string, env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (v === undefined || v === '') throw new RotationError('ERR_SINK_TOKEN_MISSING', `sink ${sinkId}: environment variable ${name} is not set`);
  return v;
}

/**
 * fetch under a timeout and a push fence: no request starts after the fence's deadline, and the one
 * in flight is aborted at it. Network failures become RotationErrors; the response is returned as is.
 * The request goes through the broker's network (egress proxy, network.ca_file).
 */
export async function fencedFetch(
  sinkId: string,
  what: string,
  url: string,
  init: RequestInit,
  ctx: Pick<SinkContext, 'timeoutMs' | 'network'>,
  fence: PushFence = {},
): Promise<Response> {
  const { timeoutMs } = ctx;
  const network = ctx.network ?? defaultNetwork();
  const left = fence.deadline === undefined ? Infinity : fence.deadline - Date.now();
  if (left <= 0) throw deadlineError(sinkId, what, false);
  if (fence.signal?.aborted) throw new RotationError('ERR_ROTATION_ABORTED', `sink ${sinkId}: ${what} not started: the run is stopping`);
  const signals = [AbortSignal.timeout(Math.min(timeoutMs, left)), ...(fence.signal ? [fence.signal] : []), ...(init.signal ? [init.signal] : [])];
  try {
    return await network.fetch(url, { ...init, signal: AbortSignal.any(signals), redirect: 'error' });
  } catch (err) {
    if (fence.deadline !== undefined && Date.now() >= fence.deadline) throw deadlineError(sinkId, what, true);
    if (fence.signal?.aborted) throw new RotationError('ERR_ROTATION_ABORTED', `sink ${sinkId}: ${what} aborted: the run is stopping`, { inFlight: true });
    const timedOut = err instanceof Error && (err.name === 'TimeoutError' || (err.cause as Error | undefined)?.name === 'TimeoutError');
    throw networkError(sinkId, what, err, timedOut ? `no answer within ${timeoutMs} ms` : network.describeError(err, url));
  }
}

export const trimSlash = (s: string): string => s.replace(/\/+$/, '');
