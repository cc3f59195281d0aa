// @ts-check
// Exit codes and the one error type. Exit codes are documented in --help and the docs; they are
// stable, and scripts may switch on them.

export const PROG = 'credbroker-client';
export const VERSION = '0.1.0';

export const EXIT = Object.freeze({
  OK: 0,
  INTERNAL: 1, // a bug or an unexpected local failure
  USAGE: 2, // bad option, missing --url/--role, invalid value
  TOKEN: 3, // could not obtain the job's OIDC token (provider not detected, endpoint failed, …)
  TOKEN_REJECTED: 4, // token missing/invalid/expired/replayed (broker 401), or already exchanged by this job
  DENIED: 5, // broker answered 403 (policy denied, revoked) or STS refused the role (502 ERR_STS_ACCESS_DENIED)
  UNAVAILABLE: 6, // broker unreachable, timed out, 429/5xx after all retries, a malformed answer, or 500 ERR_STS_CREDENTIALS (not retried)
  REJECTED: 7, // broker rejected the request itself (400, 413, 415, other 4xx, 502 ERR_STS_REJECTED, redirects)
  OUTPUT: 8, // could not write the output file
});

export class ClientError extends Error {
  /** @param {number} exitCode @param {string} message @param {{code?:string,requestId?:string,status?:number}} [info] */
  constructor(exitCode, message, info = {}) {
    super(message);
    this.exitCode = exitCode;
    this.code = info.code;
    this.requestId = info.requestId;
    this.status = info.status;
  }
}

/** @param {string} msg */
export const usage = (msg) => new ClientError(EXIT.USAGE, `${msg} (see --help)`);
