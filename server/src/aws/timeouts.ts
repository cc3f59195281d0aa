// aws.http_timeout_ms (and the outbound network), for every AWS SDK client the broker builds (STS, IAM, revoke-sessions):
// each request gets that long to connect and that long to be answered. The SDK's default for an
// exceeded requestTimeout is a warning while the request keeps waiting; here it is an error
// (`TimeoutError`), which the SDK retries like any transient failure and callers map to their
// transient code (ERR_STS_UNAVAILABLE, ERR_IAM_UNAVAILABLE).

import type http from 'node:http';
import type https from 'node:https';
import type { Network } from '../net/network.js';

export interface AwsRequestTimeouts {
  connectionTimeout: number;
  requestTimeout: number;
  throwOnRequestTimeout: true;
  /** With a network: its agents (proxy, CA bundle, shared keep-alive pools). */
  httpAgent?: http.Agent;
  httpsAgent?: https.Agent;
}

/** The NodeHttpHandler settings of an SDK client: timeouts, and the network's agents when one is given. */
export function awsRequestTimeouts(timeoutMs: number, network?: Network): AwsRequestTimeouts {
  return {
    connectionTimeout: timeoutMs,
    requestTimeout: timeoutMs,
    throwOnRequestTimeout: true,
    ...(network ? { httpAgent: network.httpAgent, httpsAgent: network.httpsAgent } : {}),
  };
}

/** The SDK's names for a request that got no answer in time. */
const TIMED_OUT = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);

export const timedOut = (err: unknown): boolean =>
  err !== null && typeof err === 'object' && 'name' in err && TIMED_OUT.has(String((err as { name: unknown }).name));
