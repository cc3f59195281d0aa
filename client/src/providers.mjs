// @ts-check
// OIDC token acquisition: one function per provider's documented protocol. A token source's
// `get()` returns a JWT; `canMint` tells whether calling it again yields a fresh token (needed
// after a replay, and for credential-process renewals).
import fs from 'node:fs';
import { ClientError, EXIT, usage } from './errors.mjs';
import { clean, redactions } from './log.mjs';
import { MAX_BODY, NetworkError, httpRequest, where } from './transport.mjs';
import { withRetries } from './retry.mjs';
import { parseJson } from './util.mjs';

// ---------------------------------------------------------------------------------------------
// OIDC token acquisition, one function per provider's documented protocol
// ---------------------------------------------------------------------------------------------
export const tokenError = (msg) => new ClientError(EXIT.TOKEN, msg);
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export function checkJwt(token, source) {
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

/**
 * Runs a command; `input` (e.g. a secret for a redactor) goes to its stdin, never its argv.
 * node:child_process is loaded here, when a provider needs it, not at every start.
 */
export async function runCommand(cmd, args, timeoutMs, input) {
  const { spawn } = await import('node:child_process');
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
  const inner = providerTokenSource(opts, env);
  const tracked = {
    ...inner,
    lastToken: undefined,
    get: async () => {
      tracked.lastToken = await inner.get();
      return tracked.lastToken;
    },
  };
  return tracked;
}

function providerTokenSource(opts, env) {
  const name = opts.provider ?? (opts.tokenFile || opts.tokenEnv ? 'generic' : detectProvider(env));
  const net = { retries: Math.min(opts.retries, 3), timeoutMs: opts.timeoutMs };
  const envOrFile = (defaultEnv, hint) => () =>
    opts.tokenFile ? fromFile(opts.tokenFile) : fromEnvVar(env, opts.tokenEnv ?? defaultEnv, hint);
  /** Where a token the job cannot renew comes from, for messages. */
  const from = (defaultEnv) => (opts.tokenFile ? `token file ${opts.tokenFile}` : `environment variable ${opts.tokenEnv ?? defaultEnv}`);
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
              // organization_id and pipeline_id are optional claims, present only when asked for:
              // they are the immutable ids a policy should bind on (and the default source identity).
              body: JSON.stringify({ audience: opts.audience, claims: ['organization_id', 'pipeline_id'] }),
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
        return { name, canMint: false, from: 'environment variable CIRCLE_OIDC_TOKEN_V2', get: async () => fromEnvVar(env, 'CIRCLE_OIDC_TOKEN_V2', 'enable OIDC for the project, or set --audience') };
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
      return { name, canMint: false, from: from('CREDBROKER_ID_TOKEN'), get: async () => envOrFile('CREDBROKER_ID_TOKEN', 'declare it under id_tokens: in .gitlab-ci.yml with aud: the broker audience')() };
    case 'bitbucket':
      return { name, canMint: false, from: from('BITBUCKET_STEP_OIDC_TOKEN'), get: async () => envOrFile('BITBUCKET_STEP_OIDC_TOKEN', 'set "oidc: true" on the step')() };
    case 'terraform':
      return { name, canMint: false, from: from('TFC_WORKLOAD_IDENTITY_TOKEN'), get: async () => envOrFile('TFC_WORKLOAD_IDENTITY_TOKEN', 'set the workspace variable TFC_WORKLOAD_IDENTITY_AUDIENCE')() };
    case 'jenkins':
      return { name, canMint: false, from: from('CREDBROKER_ID_TOKEN'), get: async () => envOrFile('CREDBROKER_ID_TOKEN', 'bind an OpenID Connect id token credential with withCredentials')() };
    case 'generic':
      if (!opts.tokenFile && !opts.tokenEnv) throw usage('--provider generic needs --token-file or --token-env');
      return { name, canMint: false, from: from(undefined), get: async () => envOrFile(undefined)() };
    default:
      throw tokenError('no CI provider detected: use --provider, --token-file or --token-env');
  }
}
