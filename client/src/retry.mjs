// @ts-check
// Retries: network errors, 408, 429 and 5xx, with equal-jitter exponential backoff or exactly the
// server's Retry-After (an unreasonable one ends the run).
import { NetworkError } from './transport.mjs';
import { debug } from './log.mjs';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Equal-jitter exponential backoff: half fixed, half random, so retries spread out but still wait. */
export function backoffMs(attempt) {
  const ceiling = Math.min(10_000, 500 * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

export const MAX_RETRY_AFTER_S = 120;
/** Retry-After in ms (delta-seconds or HTTP-date), or undefined when absent/unparseable. */
export function retryAfterMs(headers) {
  const raw = headers.get('retry-after');
  if (!raw) return undefined;
  if (/^\s*\d+\s*$/.test(raw)) return Number(raw.trim()) * 1000;
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

export const isRetryableStatus = (s) => s === 408 || s === 429 || (s >= 500 && s <= 599);

/**
 * Runs a request with retries on network errors, 408/429/5xx; honours Retry-After. `attempt`
 * returns a response; `onRetry` may swap inputs (e.g. a fresh token) before the next try.
 * @param {string} label
 * @param {number} retries
 * @param {(i: number) => Promise<import('./transport.mjs').HttpResponse>} attempt
 * @param {{ retryable?: (status: number, res: any) => boolean, onRetry?: (last: any) => Promise<void> }} [options]
 */
export async function withRetries(label, retries, attempt, { retryable = isRetryableStatus, onRetry } = {}) {
  let last;
  for (let i = 0; ; i += 1) {
    let waitMs;
    try {
      const res = await attempt(i);
      if (!retryable(res.status, res)) return res;
      last = res;
      const ra = retryAfterMs(res.headers);
      if (ra !== undefined && ra > MAX_RETRY_AFTER_S * 1000) {
        debug(`${label}: HTTP ${res.status} with Retry-After ${Math.round(ra / 1000)}s, longer than ${MAX_RETRY_AFTER_S}s: giving up`);
        return res;
      }
      waitMs = ra !== undefined ? ra + Math.random() * 250 : backoffMs(i);
      debug(`${label}: HTTP ${res.status}${ra !== undefined ? ` (Retry-After ${ra / 1000}s)` : ''}`);
    } catch (e) {
      if (!(e instanceof NetworkError)) throw e;
      last = e;
      waitMs = backoffMs(i);
      debug(`${label}: ${e.message}${e.detail ? ` (${e.detail})` : ''}`);
    }
    if (i >= retries) {
      if (last instanceof NetworkError) throw last;
      return last;
    }
    debug(`${label}: retry ${i + 1}/${retries} in ${Math.round(waitMs)}ms`);
    await sleep(waitMs);
    if (onRetry) await onRetry(last);
  }
}
