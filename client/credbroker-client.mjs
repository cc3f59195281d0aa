#!/usr/bin/env node
// @ts-check
// credbroker-client: gets this CI job's OIDC token, exchanges it at a credbroker for short-lived AWS
// credentials and hands them to the job. One file, Node >= 20 built-ins only (nothing to install).
//
// Secrets (the OIDC token and the AWS credentials) only ever go to stdout or to the target file;
// stderr carries one-line, secret-free diagnostics. See docs/client.md for the full reference.
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const VERSION = '0.1.0';
const PROG = 'credbroker-client';

// ---------------------------------------------------------------------------------------------
// Exit codes (documented in --help and docs/client.md; stable, scripts may switch on them)
// ---------------------------------------------------------------------------------------------
export const EXIT = Object.freeze({
  OK: 0,
  INTERNAL: 1, // a bug or an unexpected local failure
  USAGE: 2, // bad option, missing --url/--role, invalid value
  TOKEN: 3, // could not obtain the job's OIDC token (provider not detected, endpoint failed, …)
  TOKEN_REJECTED: 4, // broker answered 401: token missing/invalid/expired/replayed
  DENIED: 5, // broker answered 403 (policy denied, revoked) or STS refused the role (502 ERR_STS_ACCESS_DENIED)
  UNAVAILABLE: 6, // broker unreachable, timed out, 429/5xx after all retries, or a malformed answer
  REJECTED: 7, // broker rejected the request itself (400, 413, 415, other 4xx, 502 ERR_STS_REJECTED, redirects)
  OUTPUT: 8, // could not write the output file
});

class ClientError extends Error {
  /** @param {number} exitCode @param {string} message @param {{code?:string,requestId?:string,status?:number}} [info] */
  constructor(exitCode, message, info = {}) {
    super(message);
    this.exitCode = exitCode;
    this.code = info.code;
    this.requestId = info.requestId;
    this.status = info.status;
  }
}

const HELP = `Usage: ${PROG} --url URL --role NAME [options]

Gets this CI job's OIDC token, exchanges it at a credbroker for short-lived AWS credentials, and
writes them in the chosen format. Every option can also be set from the environment variable shown.

Broker request
  --url URL                  broker base URL (https; http only for loopback)      CREDBROKER_URL
  --role NAME                role to assume, as named in the broker's config      CREDBROKER_ROLE
  --duration SECONDS         session duration, 900..43200 (broker default if unset) CREDBROKER_DURATION
  --audience AUD             audience to request the OIDC token for               CREDBROKER_AUDIENCE
                             (default: the broker URL; used where the provider lets the job choose)
  --region REGION            also export AWS_REGION/AWS_DEFAULT_REGION (profile: region =) CREDBROKER_REGION
  --timeout SECONDS          per-request timeout (default 15)                     CREDBROKER_TIMEOUT
  --retries N                retries on network errors, 429 and 5xx (default 4)   CREDBROKER_RETRIES

OIDC token
  --provider NAME            github | gitlab | circleci | buildkite | bitbucket | jenkins | azure |
                             terraform | generic (default: detected from the environment) CREDBROKER_PROVIDER
  --token-env NAME           read the token from this env var (GitLab/Jenkins default CREDBROKER_ID_TOKEN)
                                                                                  CREDBROKER_TOKEN_ENV
  --token-file PATH          read the token from this file                        CREDBROKER_TOKEN_FILE
  --azure-service-connection-id ID  Azure service connection to request the token for
                                         CREDBROKER_AZURE_SERVICE_CONNECTION_ID (or AZURESUBSCRIPTION_SERVICE_CONNECTION_ID)

Output
  --format FORMAT            env (default) | github-env | dotenv | bash-env | credential-process |
                             profile | json                                       CREDBROKER_FORMAT
  --output FILE              env/dotenv/json: write FILE (mode 0600) instead of stdout;
                             github-env/bash-env: append to FILE instead of $GITHUB_ENV/$BASH_ENV
                                                                                  CREDBROKER_OUTPUT
  --profile NAME             profile name for --format profile (default credbroker) CREDBROKER_PROFILE
  --credentials-file PATH    for --format profile (default $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials)
                                                                                  CREDBROKER_CREDENTIALS_FILE
  --cache-dir DIR            credential-process cache (default $XDG_CACHE_HOME/credbroker or ~/.cache/credbroker)
                                                                                  CREDBROKER_CACHE_DIR
  --refresh-before SECONDS   credential-process: re-exchange when fewer seconds remain (default 600)
                                                                                  CREDBROKER_REFRESH_BEFORE
  --no-cache                 credential-process: always exchange, never read or write the cache
  --no-mask                  do not register the credentials with the CI's log masking   CREDBROKER_NO_MASK=1
                             (Buildkite redactor; GitHub ::add-mask:: / Azure ##vso[task.setsecret]
                             on stdout when stdout is not the output: profile, bash-env, --output)
  -q, --quiet                no informational line on stderr
  -v, --verbose              diagnostics on stderr (never secrets)                CREDBROKER_VERBOSE=1
  -h, --help                 this help
  --version                  print the version

Exit codes
  0 ok · 1 internal error · 2 usage · 3 OIDC token acquisition failed · 4 token rejected by the broker (401)
  5 denied (403, or STS refused the role) · 6 broker unavailable (network, timeout, 429/5xx after retries)
  7 request rejected by the broker (400/413/415/…) · 8 output file could not be written
`;

// ---------------------------------------------------------------------------------------------
// Diagnostics: one line each, on stderr, with anything token-like removed
// ---------------------------------------------------------------------------------------------
const redactions = new Set();
const JWT_LIKE = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g;

/** One printable line, secrets removed: safe for stderr and CI logs (no workflow-command injection). */
function clean(text, max = 300) {
  let s = String(text);
  for (const secret of redactions) if (secret) s = s.split(secret).join('[redacted]');
  s = s.replace(JWT_LIKE, '[redacted-jwt]');
  s = s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

let verbose = false;
const debug = (msg) => {
  if (verbose) process.stderr.write(`${PROG}: debug: ${clean(msg, 500)}\n`);
};
const info = (msg) => process.stderr.write(`${PROG}: ${clean(msg, 500)}\n`);

function formatError(err) {
  const parts = [];
  if (err.code) parts.push(`code ${err.code}`);
  if (err.requestId) parts.push(`request id ${err.requestId}`);
  if (err.status) parts.push(`HTTP ${err.status}`);
  const suffix = parts.length ? ` (${clean(parts.join(', '), 200)})` : '';
  return `${PROG}: error: ${clean(err.message, 400)}${suffix}`;
}

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------
const FORMATS = ['env', 'github-env', 'dotenv', 'bash-env', 'credential-process', 'profile', 'json'];
const PROVIDER_ALIASES = {
  github: 'github',
  'github-actions': 'github',
  gitlab: 'gitlab',
  circleci: 'circleci',
  buildkite: 'buildkite',
  bitbucket: 'bitbucket',
  jenkins: 'jenkins',
  azure: 'azure',
  'azure-devops': 'azure',
  'azure-pipelines': 'azure',
  terraform: 'terraform',
  'terraform-cloud': 'terraform',
  tfc: 'terraform',
  'hcp-terraform': 'terraform',
  generic: 'generic',
};

const usage = (msg) => new ClientError(EXIT.USAGE, `${msg} (see --help)`);

function isLoopback(hostname) {
  const h = hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function parseBrokerUrl(raw) {
  let u;
  try {
    u = new URL(raw);
  } catch {
    throw usage('--url is not a valid URL');
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopback(u.hostname))) {
    throw usage('--url must use https (plain http is accepted only for loopback addresses)');
  }
  if (u.username || u.password) throw usage('--url must not contain credentials');
  if (u.search || u.hash) throw usage('--url must not contain a query string or fragment');
  return u.href.replace(/\/+$/, '');
}

function intOption(name, raw, min, max) {
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(String(raw).trim())) throw usage(`${name} must be a whole number`);
  const n = Number(String(raw).trim());
  if (n < min || n > max) throw usage(`${name} must be between ${min} and ${max}`);
  return n;
}

export function parseOptions(argv, env) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        url: { type: 'string' },
        role: { type: 'string' },
        duration: { type: 'string' },
        audience: { type: 'string' },
        region: { type: 'string' },
        timeout: { type: 'string' },
        retries: { type: 'string' },
        provider: { type: 'string' },
        'token-env': { type: 'string' },
        'token-file': { type: 'string' },
        'azure-service-connection-id': { type: 'string' },
        format: { type: 'string' },
        output: { type: 'string' },
        profile: { type: 'string' },
        'credentials-file': { type: 'string' },
        'cache-dir': { type: 'string' },
        'refresh-before': { type: 'string' },
        'no-cache': { type: 'boolean' },
        'no-mask': { type: 'boolean' },
        quiet: { type: 'boolean', short: 'q' },
        verbose: { type: 'boolean', short: 'v' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    });
  } catch (e) {
    // parseArgs messages quote the offending argument; it is an option name, not a secret.
    throw usage(e instanceof Error ? e.message : 'invalid arguments');
  }
  const v = parsed.values;
  const pick = (flag, envName) => {
    const fromFlag = v[flag];
    if (typeof fromFlag === 'string' && fromFlag !== '') return fromFlag;
    const fromEnv = envName ? env[envName] : undefined;
    return fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined;
  };
  if (v.help) return { help: true };
  if (v.version) return { version: true };

  const format = pick('format', 'CREDBROKER_FORMAT') ?? 'env';
  if (!FORMATS.includes(format)) throw usage(`--format must be one of ${FORMATS.join(', ')}`);
  const rawUrl = pick('url', 'CREDBROKER_URL');
  if (!rawUrl) throw usage('the broker URL is required: --url or CREDBROKER_URL');
  const url = parseBrokerUrl(rawUrl);
  const role = pick('role', 'CREDBROKER_ROLE');
  if (!role) throw usage('the role is required: --role or CREDBROKER_ROLE');
  if (role.length > 256 || /[\u0000-\u001f\u007f]/.test(role)) throw usage('--role is not a valid role name');
  const duration = intOption('--duration', pick('duration', 'CREDBROKER_DURATION'), 900, 43200);
  const timeoutS = intOption('--timeout', pick('timeout', 'CREDBROKER_TIMEOUT'), 1, 600) ?? 15;
  const retries = intOption('--retries', pick('retries', 'CREDBROKER_RETRIES'), 0, 20) ?? 4;
  const refreshBefore =
    intOption('--refresh-before', pick('refresh-before', 'CREDBROKER_REFRESH_BEFORE'), 0, 43200) ?? 600;
  const region = pick('region', 'CREDBROKER_REGION');
  if (region !== undefined && !/^[a-z0-9-]{1,32}$/.test(region)) throw usage('--region is not a valid AWS region');
  const profile = pick('profile', 'CREDBROKER_PROFILE') ?? 'credbroker';
  if (!/^[A-Za-z0-9_.+@:-]{1,64}$/.test(profile)) throw usage('--profile may use letters, digits and _.+@:- only');

  let provider = pick('provider', 'CREDBROKER_PROVIDER');
  if (provider !== undefined) {
    const canonical = PROVIDER_ALIASES[provider.toLowerCase()];
    if (!canonical) throw usage(`--provider must be one of ${[...new Set(Object.values(PROVIDER_ALIASES))].join(', ')}`);
    provider = canonical;
  }
  const tokenEnv = pick('token-env', 'CREDBROKER_TOKEN_ENV');
  if (tokenEnv !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(tokenEnv)) throw usage('--token-env is not a valid variable name');
  const output = pick('output', 'CREDBROKER_OUTPUT');
  if (output !== undefined && (format === 'credential-process' || format === 'profile')) {
    throw usage(`--output does not apply to --format ${format}`);
  }
  // Check output targets now, before a one-time token is spent on credentials we could not deliver.
  if (format === 'github-env' && !output && !env.GITHUB_ENV) throw usage('--format github-env needs $GITHUB_ENV (or --output)');
  if (format === 'bash-env' && !output && !env.BASH_ENV) throw usage('--format bash-env needs $BASH_ENV (or --output)');
  const home = os.homedir();
  return {
    url,
    role,
    duration,
    audience: pick('audience', 'CREDBROKER_AUDIENCE') ?? url,
    audienceExplicit: pick('audience', 'CREDBROKER_AUDIENCE') !== undefined,
    region,
    timeoutMs: timeoutS * 1000,
    retries,
    provider,
    tokenEnv,
    tokenFile: pick('token-file', 'CREDBROKER_TOKEN_FILE'),
    azureServiceConnectionId:
      pick('azure-service-connection-id', 'CREDBROKER_AZURE_SERVICE_CONNECTION_ID') ??
      (env.AZURESUBSCRIPTION_SERVICE_CONNECTION_ID || undefined),
    format,
    output,
    profile,
    credentialsFile:
      pick('credentials-file', 'CREDBROKER_CREDENTIALS_FILE') ??
      (env.AWS_SHARED_CREDENTIALS_FILE || path.join(home, '.aws', 'credentials')),
    cacheDir:
      pick('cache-dir', 'CREDBROKER_CACHE_DIR') ??
      path.join(env.XDG_CACHE_HOME || path.join(home, '.cache'), 'credbroker'),
    refreshBeforeMs: refreshBefore * 1000,
    noCache: Boolean(v['no-cache']),
    noMask: Boolean(v['no-mask']) || env.CREDBROKER_NO_MASK === '1',
    quiet: Boolean(v.quiet),
    verbose: Boolean(v.verbose) || env.CREDBROKER_VERBOSE === '1',
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP: fetch with a timeout, no redirects, capped bodies; classifies failures
// ---------------------------------------------------------------------------------------------
const MAX_BODY = 256 * 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Where a request went, without query string (it may carry ids) — for messages. */
const where = (url) => {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return 'the endpoint';
  }
};

class NetworkError extends Error {
  /** @param {string} message @param {boolean} maybeDelivered whether the server may have seen the request */
  constructor(message, maybeDelivered) {
    super(message);
    this.maybeDelivered = maybeDelivered;
  }
}

async function readCapped(res, signal) {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    if (signal.aborted) throw signal.reason;
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY) {
      await reader.cancel().catch(() => {});
      throw new NetworkError('response too large', true);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function httpRequest(url, { method = 'GET', headers = {}, body, timeoutMs }) {
  const signal = AbortSignal.timeout(timeoutMs);
  let res;
  try {
    res = await fetch(url, {
      method,
      headers: { 'user-agent': `${PROG}/${VERSION} node/${process.versions.node}`, ...headers },
      body,
      redirect: 'manual',
      signal,
    });
  } catch (e) {
    if (e && (e.name === 'TimeoutError' || e.name === 'AbortError')) {
      throw new NetworkError(`timed out after ${timeoutMs / 1000}s`, true);
    }
    const cause = e && e.cause;
    const code = cause && typeof cause.code === 'string' ? cause.code : undefined;
    // Refused / unresolvable: the request never reached a server, so the token was not used.
    const neverSent = ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code ?? '');
    throw new NetworkError(code ? `network error ${code}` : 'network error', !neverSent);
  }
  let text;
  try {
    text = await readCapped(res, signal);
  } catch (e) {
    if (e instanceof NetworkError) throw e;
    if (e && (e.name === 'TimeoutError' || e.name === 'AbortError')) {
      throw new NetworkError(`timed out after ${timeoutMs / 1000}s reading the response`, true);
    }
    throw new NetworkError('connection lost while reading the response', true);
  }
  return { status: res.status, headers: res.headers, text };
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Equal-jitter exponential backoff: half fixed, half random, so retries spread out but still wait. */
function backoffMs(attempt) {
  const ceiling = Math.min(10_000, 500 * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

const MAX_RETRY_AFTER_S = 120;
/** Retry-After in ms (delta-seconds or HTTP-date), or undefined when absent/unparseable. */
function retryAfterMs(headers) {
  const raw = headers.get('retry-after');
  if (!raw) return undefined;
  if (/^\s*\d+\s*$/.test(raw)) return Number(raw.trim()) * 1000;
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

const isRetryableStatus = (s) => s === 408 || s === 429 || (s >= 500 && s <= 599);

/**
 * Runs a request with retries on network errors, 408/429/5xx; honours Retry-After. `attempt`
 * returns a response; `onRetry` may swap inputs (e.g. a fresh token) before the next try.
 * @param {string} label
 * @param {number} retries
 * @param {(i: number) => Promise<{status: number, headers: Headers, text: string}>} attempt
 * @param {{ retryable?: (status: number, res: any) => boolean, onRetry?: (last: any) => Promise<void> }} [options]
 */
async function withRetries(label, retries, attempt, { retryable = isRetryableStatus, onRetry } = {}) {
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
      debug(`${label}: ${e.message}`);
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

// ---------------------------------------------------------------------------------------------
// OIDC token acquisition, one function per provider's documented protocol
// ---------------------------------------------------------------------------------------------
const tokenError = (msg) => new ClientError(EXIT.TOKEN, msg);
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

function checkJwt(token, source) {
  const t = typeof token === 'string' ? token.trim() : '';
  if (!t) throw tokenError(`${source} is empty`);
  if (!JWT_SHAPE.test(t)) throw tokenError(`${source} does not hold a JWT`);
  redactions.add(t);
  return t;
}

function fromEnvVar(env, name, hint) {
  const value = env[name];
  if (value === undefined || value === '') throw tokenError(`environment variable ${name} is not set${hint ? `: ${hint}` : ''}`);
  return checkJwt(value, `environment variable ${name}`);
}

function fromFile(file) {
  let fd;
  try {
    fd = fs.openSync(file, 'r');
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw tokenError(`token file ${file} is not a regular file`);
    if (st.size > MAX_BODY) throw tokenError(`token file ${file} is too large`);
    return checkJwt(fs.readFileSync(fd, 'utf8'), `token file ${file}`);
  } catch (e) {
    if (e instanceof ClientError) throw e;
    throw tokenError(`cannot read token file ${file}: ${e && e.code ? e.code : 'error'}`);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Fetches a token from a provider endpoint, with retries; `extract` picks the JWT from the JSON. */
async function fromEndpoint(name, url, init, extract, opts) {
  let res;
  try {
    res = await withRetries(`${name} token endpoint`, opts.retries, () => httpRequest(url, { ...init, timeoutMs: opts.timeoutMs }));
  } catch (e) {
    if (e instanceof NetworkError) throw tokenError(`${name} token endpoint ${where(url)} failed: ${e.message}`);
    throw e;
  }
  if (res.status < 200 || res.status > 299) throw tokenError(`${name} token endpoint ${where(url)} answered HTTP ${res.status}`);
  const body = parseJson(res.text);
  const token = body && typeof body === 'object' ? extract(body) : undefined;
  if (typeof token !== 'string') throw tokenError(`${name} token endpoint ${where(url)} returned no token`);
  return checkJwt(token, `the ${name} token endpoint's answer`);
}

/** Runs a command; `input` (e.g. a secret for a redactor) goes to its stdin, never its argv. */
function runCommand(cmd, args, timeoutMs, input) {
  return new Promise((resolve, reject) => {
    let child;
    try {
      child = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    } catch (e) {
      reject(e);
      return;
    }
    if (input !== undefined) {
      child.stdin.on('error', () => {}); // a command that exits early must not crash us (EPIPE)
      child.stdin.end(input);
    }
    let out = '';
    let errText = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      errText = (errText + d).slice(-500);
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      resolve({ code, signal: sig, out, err: errText });
    });
  });
}

/** Which provider this job runs on, from each CI's own well-known variables. */
export function detectProvider(env) {
  if (env.GITHUB_ACTIONS === 'true') return 'github';
  if (env.GITLAB_CI === 'true') return 'gitlab';
  if (env.CIRCLECI === 'true') return 'circleci';
  if (env.BUILDKITE === 'true') return 'buildkite';
  if (env.BITBUCKET_BUILD_NUMBER || env.BITBUCKET_STEP_OIDC_TOKEN) return 'bitbucket';
  if ((env.TF_BUILD || '').toLowerCase() === 'true') return 'azure';
  if (env.TFC_WORKLOAD_IDENTITY_TOKEN || env.TFC_RUN_ID) return 'terraform';
  if (env.JENKINS_URL) return 'jenkins';
  return undefined;
}

/**
 * A token source: `get()` returns a JWT; `canMint` tells whether calling it again yields a fresh
 * token (needed after a replay, or for credential-process re-exchange).
 */
export function tokenSource(opts, env) {
  const name = opts.provider ?? (opts.tokenFile || opts.tokenEnv ? 'generic' : detectProvider(env));
  const net = { retries: Math.min(opts.retries, 3), timeoutMs: opts.timeoutMs };
  const envOrFile = (defaultEnv, hint) => () =>
    opts.tokenFile ? fromFile(opts.tokenFile) : fromEnvVar(env, opts.tokenEnv ?? defaultEnv, hint);
  switch (name) {
    case 'github':
      return {
        name,
        canMint: true,
        get: async () => {
          const base = env.ACTIONS_ID_TOKEN_REQUEST_URL;
          const bearer = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
          if (!base || !bearer) {
            throw tokenError('ACTIONS_ID_TOKEN_REQUEST_URL/ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set: give the job "permissions: id-token: write"');
          }
          redactions.add(bearer);
          // The URL already carries a query string, hence '&' (per GitHub's protocol).
          const url = `${base}${base.includes('?') ? '&' : '?'}audience=${encodeURIComponent(opts.audience)}`;
          return fromEndpoint('GitHub', url, { headers: { authorization: `bearer ${bearer}`, accept: 'application/json' } }, (b) => b.value, net);
        },
      };
    case 'buildkite':
      return {
        name,
        canMint: true,
        get: async () => {
          const endpoint = (env.BUILDKITE_AGENT_ENDPOINT || 'https://agent.buildkite.com/v3').replace(/\/+$/, '');
          const job = env.BUILDKITE_JOB_ID;
          const agentToken = env.BUILDKITE_AGENT_ACCESS_TOKEN;
          if (!job || !agentToken) throw tokenError('BUILDKITE_JOB_ID/BUILDKITE_AGENT_ACCESS_TOKEN are not set');
          redactions.add(agentToken);
          const url = `${endpoint}/jobs/${encodeURIComponent(job)}/oidc/tokens`;
          return fromEndpoint(
            'Buildkite',
            url,
            {
              method: 'POST',
              headers: { authorization: `Token ${agentToken}`, 'content-type': 'application/json', accept: 'application/json' },
              body: JSON.stringify({ audience: opts.audience }),
            },
            (b) => b.token,
            net,
          );
        },
      };
    case 'azure':
      return {
        name,
        canMint: true,
        get: async () => {
          const base = env.SYSTEM_OIDCREQUESTURI;
          const access = env.SYSTEM_ACCESSTOKEN;
          if (!base) throw tokenError('SYSTEM_OIDCREQUESTURI is not set: run inside an Azure Pipelines job');
          if (!access) throw tokenError('SYSTEM_ACCESSTOKEN is not set: map it into the step with env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)');
          if (!opts.azureServiceConnectionId) throw tokenError('no service connection: set --azure-service-connection-id or CREDBROKER_AZURE_SERVICE_CONNECTION_ID');
          redactions.add(access);
          const sep = base.includes('?') ? '&' : '?';
          const url = `${base}${sep}api-version=7.1&serviceConnectionId=${encodeURIComponent(opts.azureServiceConnectionId)}`;
          return fromEndpoint(
            'Azure',
            url,
            { method: 'POST', headers: { authorization: `Bearer ${access}`, 'content-type': 'application/json', accept: 'application/json' }, body: '{}' },
            (b) => b.oidcToken,
            net,
          );
        },
      };
    case 'circleci':
      // CIRCLE_OIDC_TOKEN_V2 has the org id as audience; a chosen audience needs the CLI, which
      // mints a new token on every call (so re-exchange works).
      if (!opts.audienceExplicit) {
        return { name, canMint: false, get: async () => fromEnvVar(env, 'CIRCLE_OIDC_TOKEN_V2', 'enable OIDC for the project, or set --audience') };
      }
      return {
        name,
        canMint: true,
        get: async () => {
          let r;
          try {
            r = await runCommand('circleci', ['run', 'oidc', 'get', '--claims', JSON.stringify({ aud: opts.audience })], opts.timeoutMs);
          } catch (e) {
            throw tokenError(`cannot run "circleci run oidc get": ${e && e.code ? e.code : 'error'} (the CircleCI CLI is needed for a custom audience)`);
          }
          if (r.code !== 0) throw tokenError(`"circleci run oidc get" failed with exit ${r.code ?? r.signal}: ${clean(r.err, 200)}`);
          return checkJwt(r.out, 'the output of "circleci run oidc get"');
        },
      };
    case 'gitlab':
      return { name, canMint: false, get: async () => envOrFile('CREDBROKER_ID_TOKEN', 'declare it under id_tokens: in .gitlab-ci.yml with aud: the broker audience')() };
    case 'bitbucket':
      return { name, canMint: false, get: async () => envOrFile('BITBUCKET_STEP_OIDC_TOKEN', 'set "oidc: true" on the step')() };
    case 'terraform':
      return { name, canMint: false, get: async () => envOrFile('TFC_WORKLOAD_IDENTITY_TOKEN', 'set the workspace variable TFC_WORKLOAD_IDENTITY_AUDIENCE')() };
    case 'jenkins':
      return { name, canMint: false, get: async () => envOrFile('CREDBROKER_ID_TOKEN', 'bind an OpenID Connect id token credential with withCredentials')() };
    case 'generic':
      if (!opts.tokenFile && !opts.tokenEnv) throw usage('--provider generic needs --token-file or --token-env');
      return { name, canMint: false, get: async () => envOrFile(undefined)() };
    default:
      throw tokenError('no CI provider detected: use --provider, --token-file or --token-env');
  }
}

// ---------------------------------------------------------------------------------------------
// The exchange with the broker
// ---------------------------------------------------------------------------------------------
const CREDENTIAL_CHARS = /^[\x21-\x7e]{1,4096}$/; // printable ASCII, no spaces or quotes issues for any format

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

const NON_TRANSIENT_5XX = new Set(['ERR_STS_ACCESS_DENIED', 'ERR_STS_REJECTED']);

/** POSTs the token to the broker; retries transient failures; fetches a fresh token where allowed. */
export async function exchange(opts, source) {
  let token = await source.get();
  debug(`OIDC token obtained from ${source.name}`);
  const url = `${opts.url}/v1/credentials?format=json`;
  const body = JSON.stringify(opts.duration ? { role: opts.role, duration_seconds: opts.duration } : { role: opts.role });
  let usedFresh = false;
  let history = '';

  const post = () =>
    httpRequest(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' },
      body,
      timeoutMs: opts.timeoutMs,
    });

  const retryable = (status, res) => {
    if (!isRetryableStatus(status)) return false;
    if (status === 502 && NON_TRANSIENT_5XX.has(brokerError(res).code ?? '')) return false;
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
        hint = `; ${source.name} cannot mint a fresh token from within the job${history ? ` (an earlier attempt failed: ${history})` : ''} — re-run the job`;
      }
      throw new ClientError(EXIT.TOKEN_REJECTED, `the broker rejected the OIDC token${detail}${hint}`, meta);
    }
    if (res.status === 403) throw new ClientError(EXIT.DENIED, `access denied by the broker${detail}`, meta);
    if (res.status === 502 && be.code === 'ERR_STS_ACCESS_DENIED') throw new ClientError(EXIT.DENIED, `AWS STS refused to assume the role${detail}`, meta);
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

// ---------------------------------------------------------------------------------------------
// Files: private, atomic writes; append for CI-owned files
// ---------------------------------------------------------------------------------------------
const outputError = (file, e) => new ClientError(EXIT.OUTPUT, `cannot write ${file}: ${e && e.code ? e.code : e instanceof Error ? e.message : 'error'}`);

/** Writes `content` to `file` with mode 0600 via a temp file + rename, so no reader sees a partial file. */
function writePrivateFile(file, content) {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    try {
      fs.writeFileSync(fd, content);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, file);
  } catch (e) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* nothing to clean */
    }
    throw outputError(file, e);
  }
}

function readIfExists(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (e && e.code === 'ENOENT') return '';
    throw outputError(file, e);
  }
}

/** Appends to a file the CI owns ($GITHUB_ENV, $BASH_ENV); a file we create is 0600. */
function appendPrivate(file, content) {
  try {
    fs.appendFileSync(file, content, { mode: 0o600 });
  } catch (e) {
    throw outputError(file, e);
  }
}

// ---------------------------------------------------------------------------------------------
// Output formats
// ---------------------------------------------------------------------------------------------
const shQuote = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

function envPairs(c, region) {
  const pairs = [
    ['AWS_ACCESS_KEY_ID', c.AccessKeyId],
    ['AWS_SECRET_ACCESS_KEY', c.SecretAccessKey],
    ['AWS_SESSION_TOKEN', c.SessionToken],
    ['AWS_CREDENTIAL_EXPIRATION', c.Expiration],
  ];
  if (region) pairs.push(['AWS_REGION', region], ['AWS_DEFAULT_REGION', region]);
  return pairs;
}

export const render = {
  env: (c, o) => envPairs(c, o.region).map(([k, v]) => `export ${k}=${shQuote(v)}\n`).join(''),
  dotenv: (c, o) => envPairs(c, o.region).map(([k, v]) => `${k}=${v}\n`).join(''),
  'credential-process': (c) =>
    `${JSON.stringify({ Version: 1, AccessKeyId: c.AccessKeyId, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, Expiration: c.Expiration })}\n`,
  json: (c) => `${JSON.stringify(Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)), null, 2)}\n`,
};

/** Replaces (or adds) `[name]` in an INI text, keeping every other section and comment as it was. */
export function upsertIniSection(text, name, entries) {
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const out = [];
  const section = [`[${name}]`, ...entries.map(([k, v]) => `${k} = ${v}`)];
  let inTarget = false;
  let placed = false;
  for (const line of lines) {
    const header = /^\s*\[\s*([^\]]+?)\s*\]\s*$/.exec(line);
    if (header) {
      inTarget = header[1] === name;
      if (inTarget) {
        if (!placed) out.push(...section);
        placed = true;
        continue;
      }
    }
    if (!inTarget) out.push(line);
  }
  if (!placed) {
    if (out.length && out[out.length - 1].trim() !== '') out.push('');
    out.push(...section);
  }
  return `${out.join('\n')}\n`;
}

/** Replaces our variables in a dotenv file (GitLab's dotenv report), keeping the others. */
function upsertDotenv(text, content) {
  const ours = new Set(content.split('\n').filter(Boolean).map((l) => l.slice(0, l.indexOf('='))));
  const kept = text
    .split('\n')
    .filter((l) => l !== '' && !ours.has(l.slice(0, l.indexOf('='))));
  return `${kept.map((l) => `${l}\n`).join('')}${content}`;
}

function expiresNote(c) {
  return `credentials${c.AssumedRoleArn ? ` for ${c.AssumedRoleArn}` : ''} expire at ${c.Expiration}`;
}

/**
 * Registers the secrets with the CI's log masking, where it has one: Buildkite's redactor (values
 * on stdin) for every format; GitHub's ::add-mask:: and Azure's ##vso[task.setsecret] on stdout,
 * but only when stdout is not the output itself (profile, bash-env, --output).
 */
async function maskCommands(opts, env, c) {
  if (opts.noMask) return '';
  const secrets = [c.AccessKeyId, c.SecretAccessKey, c.SessionToken];
  if (env.BUILDKITE === 'true') {
    for (const secret of secrets) {
      let r;
      try {
        r = await runCommand('buildkite-agent', ['redactor', 'add'], opts.timeoutMs, `${secret}\n`);
      } catch (e) {
        r = { code: e && e.code ? e.code : 'error' };
      }
      if (r.code !== 0) {
        if (!opts.quiet) info(`warning: "buildkite-agent redactor add" failed (${r.code ?? r.signal}): the credentials are not redacted from the log`);
        break;
      }
    }
  }
  const stdoutFree = opts.format === 'profile' || opts.format === 'bash-env' || (opts.output && opts.format !== 'github-env');
  if (!stdoutFree) return '';
  if (env.GITHUB_ACTIONS === 'true') return secrets.map((v) => `::add-mask::${v}\n`).join('');
  if ((env.TF_BUILD || '').toLowerCase() === 'true') return secrets.map((v) => `##vso[task.setsecret]${v}\n`).join('');
  return '';
}

async function emit(opts, env, c) {
  switch (opts.format) {
    case 'env':
    case 'json':
      if (opts.output) {
        writePrivateFile(opts.output, render[opts.format](c, opts));
        if (!opts.quiet) info(`wrote ${opts.output}: ${expiresNote(c)}`);
        return '';
      }
      return render[opts.format](c, opts);
    case 'dotenv':
      if (opts.output) {
        writePrivateFile(opts.output, upsertDotenv(readIfExists(opts.output), render.dotenv(c, opts)));
        if (!opts.quiet) info(`wrote ${opts.output}: ${expiresNote(c)}`);
        return '';
      }
      return render.dotenv(c, opts);
    case 'github-env': {
      const file = opts.output ?? env.GITHUB_ENV;
      if (!file) throw usage('--format github-env needs $GITHUB_ENV (or --output)');
      appendPrivate(file, envPairs(c, opts.region).map(([k, v]) => `${k}=${v}\n`).join(''));
      if (!opts.quiet) info(`added AWS credentials to ${opts.output ? file : '$GITHUB_ENV'}: ${expiresNote(c)}`);
      // Workflow commands go to stdout, where the runner reads them.
      return [c.AccessKeyId, c.SecretAccessKey, c.SessionToken].map((v) => `::add-mask::${v}\n`).join('');
    }
    case 'bash-env': {
      const file = opts.output ?? env.BASH_ENV;
      if (!file) throw usage('--format bash-env needs $BASH_ENV (or --output)');
      appendPrivate(file, render.env(c, opts));
      if (!opts.quiet) info(`added AWS credentials to ${opts.output ? file : '$BASH_ENV'}: ${expiresNote(c)}`);
      return '';
    }
    case 'profile': {
      const entries = [
        ['aws_access_key_id', c.AccessKeyId],
        ['aws_secret_access_key', c.SecretAccessKey],
        ['aws_session_token', c.SessionToken],
      ];
      if (opts.region) entries.push(['region', opts.region]);
      writePrivateFile(opts.credentialsFile, upsertIniSection(readIfExists(opts.credentialsFile), opts.profile, entries));
      if (!opts.quiet) info(`wrote profile ${opts.profile} to ${opts.credentialsFile}: ${expiresNote(c)}`);
      return '';
    }
    default:
      throw new ClientError(EXIT.INTERNAL, `unhandled format ${opts.format}`);
  }
}

// ---------------------------------------------------------------------------------------------
// credential-process cache: a private 0600 file per (broker, role, duration, audience, provider);
// re-exchange only when the cached credentials are close to expiry.
// ---------------------------------------------------------------------------------------------
function cacheDirUsable(dir) {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = fs.lstatSync(dir);
    if (!st.isDirectory()) return 'is not a directory';
    if (typeof process.getuid === 'function' && st.uid !== process.getuid()) return 'is owned by another user';
    if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
    return undefined;
  } catch (e) {
    return `cannot be created (${e && e.code ? e.code : 'error'})`;
  }
}

/** The cached entry and how long it has left, or undefined (absent, not private, malformed, expired). */
function readCache(file) {
  let fd;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0));
    const st = fs.fstatSync(fd);
    const own = typeof process.getuid !== 'function' || st.uid === process.getuid();
    if (!st.isFile() || !own || (st.mode & 0o077) !== 0) {
      debug('cache file ignored: not a private regular file of ours');
      return undefined;
    }
    const c = parseJson(fs.readFileSync(fd, 'utf8'));
    if (!c || typeof c !== 'object' || c.Version !== 1) return undefined;
    for (const k of ['AccessKeyId', 'SecretAccessKey', 'SessionToken']) {
      if (typeof c[k] !== 'string' || !CREDENTIAL_CHARS.test(c[k])) return undefined;
    }
    const remainingMs = Date.parse(c.Expiration) - Date.now();
    if (!(remainingMs > 0)) return undefined;
    return { creds: c, remainingMs };
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

const isFresh = (entry, opts) => {
  if (!entry) return false;
  const fresh = entry.remainingMs > opts.refreshBeforeMs;
  debug(`cached credentials expire in ${Math.round(entry.remainingMs / 1000)}s${fresh ? '' : ': re-exchanging'}`);
  return fresh;
};

/** Below this, cached credentials are not worth handing out even when a re-exchange failed. */
const MIN_FALLBACK_MS = 60_000;

/** A lock file so parallel AWS tool invocations do not spend the same one-time token twice. */
async function withLock(lockFile, fn) {
  const deadline = Date.now() + 60_000;
  let fd;
  for (;;) {
    try {
      fd = fs.openSync(lockFile, 'wx', 0o600);
      break;
    } catch (e) {
      if (!e || e.code !== 'EEXIST') return fn(); // cannot lock: proceed unlocked rather than fail
      try {
        if (Date.now() - fs.statSync(lockFile).mtimeMs > 90_000) fs.unlinkSync(lockFile); // stale
      } catch {
        /* raced with its owner */
      }
      if (Date.now() > deadline) return fn();
      await sleep(100 + Math.random() * 100);
    }
  }
  try {
    return await fn();
  } finally {
    fs.closeSync(fd);
    try {
      fs.unlinkSync(lockFile);
    } catch {
      /* already gone */
    }
  }
}

async function credentialProcess(opts, env) {
  const source = () => tokenSource(opts, env);
  if (opts.noCache) return render['credential-process'](await exchange(opts, source()));
  const problem = cacheDirUsable(opts.cacheDir);
  if (problem) {
    debug(`cache directory ${opts.cacheDir} ${problem}: not caching`);
    return render['credential-process'](await exchange(opts, source()));
  }
  const key = createHash('sha256')
    .update(JSON.stringify([opts.url, opts.role, opts.duration ?? null, opts.audience, opts.provider ?? null, opts.tokenEnv ?? null, opts.tokenFile ?? null]))
    .digest('hex')
    .slice(0, 32);
  const file = path.join(opts.cacheDir, `${key}.json`);
  const hit = readCache(file);
  if (isFresh(hit, opts)) return render['credential-process'](hit.creds);
  return withLock(`${file}.lock`, async () => {
    const cached = readCache(file); // another process may have refreshed meanwhile
    if (isFresh(cached, opts)) return render['credential-process'](cached.creds);
    let c;
    try {
      c = await exchange(opts, source());
    } catch (e) {
      // A re-exchange that fails for want of a fresh token (env-var providers) or a reachable
      // broker should not cut a job off while its credentials still work. A denial (403: revoked,
      // policy changed) must, so it is not covered.
      const fallback = [EXIT.TOKEN, EXIT.TOKEN_REJECTED, EXIT.UNAVAILABLE].includes(e.exitCode);
      if (fallback && cached && cached.remainingMs > MIN_FALLBACK_MS) {
        info(`warning: re-exchange failed (${formatError(e).replace(`${PROG}: error: `, '')}); using cached credentials that expire in ${Math.round(cached.remainingMs / 1000)}s`);
        return render['credential-process'](cached.creds);
      }
      throw e;
    }
    const out = render['credential-process'](c);
    try {
      writePrivateFile(file, out);
    } catch {
      debug('could not write the cache file: continuing without it');
    }
    return out;
  });
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------
function writeStdout(text) {
  return new Promise((resolve, reject) => {
    if (!text) return resolve();
    process.stdout.write(text, (e) => (e ? reject(e) : resolve()));
  });
}

export async function main(argv = process.argv.slice(2), env = process.env) {
  try {
    const opts = parseOptions(argv, env);
    if (opts.help) {
      await writeStdout(HELP);
      return EXIT.OK;
    }
    if (opts.version) {
      await writeStdout(`${VERSION}\n`);
      return EXIT.OK;
    }
    verbose = opts.verbose;
    let out;
    if (opts.format === 'credential-process') {
      out = await credentialProcess(opts, env);
    } else {
      const c = await exchange(opts, tokenSource(opts, env));
      out = (await maskCommands(opts, env, c)) + (await emit(opts, env, c));
    }
    await writeStdout(out);
    return EXIT.OK;
  } catch (e) {
    if (e instanceof ClientError) {
      process.stderr.write(`${formatError(e)}\n`);
      return e.exitCode;
    }
    // Unexpected: the class and a cleaned message only (a stack could carry request details).
    process.stderr.write(`${PROG}: internal error: ${clean(e instanceof Error ? `${e.name}: ${e.message}` : 'unknown', 300)}\n`);
    return EXIT.INTERNAL;
  }
}

const invokedDirectly = (() => {
  try {
    return fs.realpathSync(process.argv[1] ?? '') === fs.realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();
if (invokedDirectly) {
  main().then((code) => {
    process.exitCode = code;
  });
}
