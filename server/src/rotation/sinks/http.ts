// Shared HTTP handling for the sinks that speak plain REST (CircleCI, Travis): timeouts, and the
// mapping of failures to RotationError. Response bodies are never copied into errors.
import { RotationError } from '../errors.js';

export const isRetryableStatus = (status: number): boolean => status === 408 || status === 429 || status >= 500;

export function httpError(sinkId: string, what: string, status: number): RotationError {
  return new RotationError('ERR_SINK_HTTP', `sink ${sinkId}: ${what} answered HTTP ${status}`, {
    retryable: isRetryableStatus(status),
    status,
  });
}

export function networkError(sinkId: string, what: string, err: unknown): RotationError {
  const name = err instanceof Error ? err.name : 'Error';
  return new RotationError('ERR_SINK_NETWORK', `sink ${sinkId}: ${what} failed (${name})`, { retryable: true });
}

export function requireToken(sinkId: string, env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (v === undefined || v === '') throw new RotationError('ERR_SINK_TOKEN_MISSING', `sink ${sinkId}: environment variable ${name} is not set`);
  return v;
}

/** fetch with a timeout; returns the response or throws a RotationError for network failures. */
export async function fetchWithTimeout(
  sinkId: string,
  what: string,
  url: string,
  init: RequestInit,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Response> {
  const signals = [AbortSignal.timeout(timeoutMs), ...(signal ? [signal] : [])];
  try {
    return await fetch(url, { ...init, signal: AbortSignal.any(signals), redirect: 'error' });
  } catch (err) {
    throw networkError(sinkId, what, err);
  }
}

export const trimSlash = (s: string): string => s.replace(/\/+$/, '');
