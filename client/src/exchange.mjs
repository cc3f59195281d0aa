// @ts-check
// The exchange with the broker: POST /v1/credentials with the token as bearer; transient failures
// retried (with a fresh token where the provider can mint one: tokens are one-time), answers
// mapped to exit codes and one-line messages the sh client words the same way.
import { ClientError, EXIT } from './errors.mjs';
import { clean, debug, redactions } from './log.mjs';
import { NetworkError, httpRequest, where } from './transport.mjs';
import { MAX_RETRY_AFTER_S, isRetryableStatus, retryAfterMs, withRetries } from './retry.mjs';
import { parseJson } from './util.mjs';

// ---------------------------------------------------------------------------------------------
// The exchange with the broker
// ---------------------------------------------------------------------------------------------
export const CREDENTIAL_CHARS = /^[\x21-\x7e]{1,4096}$/; // printable ASCII, no spaces or quotes issues for any format

function validateCredentials(body, requestId) {
  const bad = (what) => new ClientError(EXIT.UNAVAILABLE, `the broker answered 200 with ${what}`, { requestId });
  if (!body || typeof body !== 'object') throw bad('a body that is not JSON');
  for (const k of ['AccessKeyId', 'SecretAccessKey', 'SessionToken', 'Expiration']) {
    if (typeof body[k] !== 'string' || !CREDENTIAL_CHARS.test(body[k]) || /['"\\]/.test(body[k])) throw bad(`a missing or malformed ${k}`);
  }
  if (Number.isNaN(Date.parse(body.Expiration))) throw bad('an Expiration that is not a date');
  for (const k of ['AccessKeyId', 'SecretAccessKey', 'SessionToken']) redactions.add(body[k]);
  const pickStr = (k) => (typeof body[k] === 'string' ? body[k] : undefined);
  return {
    AccessKeyId: body.AccessKeyId,
    SecretAccessKey: body.SecretAccessKey,
    SessionToken: body.SessionToken,
    Expiration: body.Expiration,
    RoleArn: pickStr('RoleArn'),
    AssumedRoleArn: pickStr('AssumedRoleArn'),
    RoleSessionName: pickStr('RoleSessionName'),
    SourceIdentity: pickStr('SourceIdentity'),
    DurationSeconds: Number.isInteger(body.DurationSeconds) ? body.DurationSeconds : undefined,
    RequestId: pickStr('RequestId') ?? requestId,
  };
}

function brokerError(res) {
  const body = parseJson(res.text);
  const e = body && typeof body === 'object' && body.error && typeof body.error === 'object' ? body.error : {};
  const code = typeof e.code === 'string' ? clean(e.code, 60) : undefined;
  const requestId = (typeof e.request_id === 'string' && clean(e.request_id, 100)) || clean(res.headers.get('x-request-id') ?? '', 100) || undefined;
  const message = typeof e.message === 'string' ? clean(e.message, 200) : undefined;
  return { code, requestId, message, status: res.status };
}

/** 5xx answers that no retry can change: STS refused the role or the request, or the broker has no AWS credentials. */
const NON_TRANSIENT_5XX = new Set(['ERR_STS_ACCESS_DENIED', 'ERR_STS_REJECTED', 'ERR_STS_CREDENTIALS']);

/**
 * POSTs the token to the broker; retries transient failures; fetches a fresh token where allowed.
 * `onPresented(token)` is called for every token the broker may have consumed (it answered
 * anything but 503, or the request may have reached it): such a token must not be sent again.
 * @param {any} opts
 * @param {any} source
 * @param {{ onPresented?: (token: string) => void }} [hooks]
 */
export async function exchange(opts, source, hooks = {}) {
  let token = await source.get();
  debug(`OIDC token obtained from ${source.name}`);
  const url = `${opts.url}/v1/credentials?format=json`;
  const body = JSON.stringify(opts.duration ? { role: opts.role, duration_seconds: opts.duration } : { role: opts.role });
  let usedFresh = false;
  let history = '';

  const post = async () => {
    const sent = token;
    try {
      const res = await httpRequest(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${sent}`, 'content-type': 'application/json', accept: 'application/json' },
        body,
        timeoutMs: opts.timeoutMs,
      });
      if (res.status !== 503) hooks.onPresented?.(sent);
      return res;
    } catch (e) {
      if (!(e instanceof NetworkError) || e.maybeDelivered) hooks.onPresented?.(sent);
      throw e;
    }
  };

  const retryable = (status, res) => {
    if (!isRetryableStatus(status)) return false;
    if ((status === 500 || status === 502) && NON_TRANSIENT_5XX.has(brokerError(res).code ?? '')) return false;
    return true;
  };
  const onRetry = async (last) => {
    // The broker releases the token only when it answers 503 (or never saw it); otherwise a retry
    // with the same token would be a replay, so mint a new one where the provider allows it.
    const maybeSpent = last instanceof NetworkError ? last.maybeDelivered : last.status !== 503;
    history = last instanceof NetworkError ? last.message : `HTTP ${last.status}`;
    if (maybeSpent && source.canMint) {
      token = await source.get();
      debug('fresh OIDC token obtained for the retry');
    }
  };

  for (;;) {
    let res;
    try {
      res = await withRetries('broker', opts.retries, post, { retryable, onRetry });
    } catch (e) {
      if (e instanceof NetworkError) {
        throw new ClientError(EXIT.UNAVAILABLE, `broker ${where(opts.url)} unavailable after ${opts.retries + 1} attempt(s): ${e.message}`);
      }
      throw e;
    }
    const requestId = res.headers.get('x-request-id') ?? undefined;
    if (res.status === 200) {
      const credentials = validateCredentials(parseJson(res.text), requestId && clean(requestId, 100));
      debug(`credentials issued, request id ${credentials.RequestId ?? '-'}`);
      return credentials;
    }
    const be = brokerError(res);
    const detail = be.message ? `: ${be.message}` : '';
    const meta = { code: be.code, requestId: be.requestId, status: res.status };
    if (res.status === 401) {
      const retryWithFresh = be.code === 'ERR_TOKEN_REPLAYED' || be.code === 'ERR_TOKEN_EXPIRED';
      if (retryWithFresh && source.canMint && !usedFresh) {
        usedFresh = true;
        debug(`${be.code}: fetching a fresh OIDC token once`);
        token = await source.get();
        continue;
      }
      let hint = '';
      if (retryWithFresh && !source.canMint) {
        hint = `; ${source.name} cannot mint a fresh token from within the job${history ? ` (an earlier attempt failed: ${history})` : ''}; re-run the job`;
      }
      throw new ClientError(EXIT.TOKEN_REJECTED, `the broker rejected the OIDC token${detail}${hint}`, meta);
    }
    if (res.status === 403) throw new ClientError(EXIT.DENIED, `access denied by the broker${detail}`, meta);
    if (res.status === 502 && be.code === 'ERR_STS_ACCESS_DENIED') throw new ClientError(EXIT.DENIED, `AWS STS refused to assume the role${detail}`, meta);
    if (res.status === 500 && be.code === 'ERR_STS_CREDENTIALS') throw new ClientError(EXIT.UNAVAILABLE, `the broker cannot issue credentials, and retrying will not help${detail}`, meta);
    if (res.status >= 300 && res.status < 400) {
      throw new ClientError(EXIT.REJECTED, `the broker answered a redirect; check --url`, meta);
    }
    if (isRetryableStatus(res.status) && !(res.status === 502 && be.code === 'ERR_STS_REJECTED')) {
      const ra = retryAfterMs(res.headers);
      const why = ra !== undefined && ra > MAX_RETRY_AFTER_S * 1000 ? ` (asked to retry after ${Math.round(ra / 1000)}s)` : ` after ${opts.retries + 1} attempt(s)`;
      throw new ClientError(EXIT.UNAVAILABLE, `broker unavailable${why}${detail}`, meta);
    }
    throw new ClientError(EXIT.REJECTED, `the broker rejected the request${detail}`, meta);
  }
}
