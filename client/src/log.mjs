// @ts-check
// Diagnostics: one line each, on stderr, with every secret this process has seen removed, and
// anything token-like too. Secrets go only to stdout or to the target file.
import { PROG } from './errors.mjs';

/** Values never to print: tokens, minting credentials, issued credentials (added as they appear). */
export const redactions = new Set();
const JWT_LIKE = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g;

/** One printable line, secrets removed: safe for stderr and CI logs (no workflow-command injection). */
export function clean(text, max = 300) {
  let s = String(text);
  for (const secret of redactions) if (secret) s = s.split(secret).join('[redacted]');
  s = s.replace(JWT_LIKE, '[redacted-jwt]');
  s = s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

let verbose = false;
/** @param {boolean} on */
export const setVerbose = (on) => {
  verbose = on;
};
export const debug = (msg) => {
  if (verbose) process.stderr.write(`${PROG}: debug: ${clean(msg, 500)}\n`);
};
export const info = (msg) => process.stderr.write(`${PROG}: ${clean(msg, 500)}\n`);

/** `message (code X, request id Y, HTTP N)`, absent parts left out; the sh client prints the same. */
export function describeError(err) {
  const parts = [];
  if (err.code) parts.push(`code ${err.code}`);
  if (err.requestId) parts.push(`request id ${err.requestId}`);
  if (err.status) parts.push(`HTTP ${err.status}`);
  const suffix = parts.length ? ` (${clean(parts.join(', '), 200)})` : '';
  return `${clean(err.message, 400)}${suffix}`;
}

export const formatError = (err) => `${PROG}: error: ${describeError(err)}`;
