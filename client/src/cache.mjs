// @ts-check
// credential-process: AWS tools run the client before every command (botocore: whenever fewer than
// 15 minutes are left), so it keeps the credentials in a private 0600 file and exchanges again
// only near expiry.
//
// An entry is bound to the identity that obtained it, and is served only to that identity:
// - a token the job cannot renew (GitLab, Jenkins, Bitbucket, HCP Terraform, --token-env/-file):
//   issuer, subject, job id and the SHA-256 of the token itself;
// - a provider that mints a token per call (GitHub, Buildkite, Azure, CircleCI's CLI): the job id
//   and the SHA-256 of the job's own minting credential (e.g. $ACTIONS_ID_TOKEN_REQUEST_TOKEN),
//   which no other job holds.
// So a later job on a persistent runner (a fork PR the broker would deny, say) never gets an
// earlier job's credentials: its identity differs, the broker is asked, and its answer stands.
// By default the cache is one directory per job.
//
// Calm when the broker or the provider is down: in the refresh window, a failed renewal serves the
// still-valid credentials at once, records the failure in the entry (shown by --status: the AWS CLI
// discards a successful credential_process's stderr) and waits a growing back-off before trying
// again; parallel invocations do not queue behind the one renewing. A token the job cannot renew
// is never presented twice: the hashes of tokens presented are remembered.
import fs from 'node:fs';
import path from 'node:path';
import { ClientError, EXIT, PROG } from './errors.mjs';
import { clean, debug, describeError, info } from './log.mjs';
import { exchange, CREDENTIAL_CHARS } from './exchange.mjs';
import { render } from './output.mjs';
import { tokenSource } from './providers.mjs';
import { writePrivateFile } from './files.mjs';
import { sleep } from './retry.mjs';
import { loadCrypto, parseJson, sha256 } from './util.mjs';

/** Below this, cached credentials are not worth handing out even when a renewal failed. */
const MIN_FALLBACK_MS = 60_000;
/** After a failed renewal, the next try waits this long, doubling per failure up to the cap. */
const BACKOFF_FIRST_MS = 30_000;
const BACKOFF_MAX_MS = 300_000;
/** A renewal with cached credentials to fall back on gets one attempt of at most this long. */
const RENEWAL_TIMEOUT_MS = 5_000;
/** botocore (AWS CLI, boto3) refreshes credentials that have fewer than 15 minutes left. */
export const BOTOCORE_REFRESH_S = 900;

/** The CI's own variables naming this job (for the per-job cache directory and the binding). */
const JOB_ID_VARS = {
  github: ['GITHUB_RUN_ID', 'GITHUB_RUN_ATTEMPT', 'GITHUB_JOB'],
  gitlab: ['CI_JOB_ID'],
  circleci: ['CIRCLE_WORKFLOW_JOB_ID'],
  buildkite: ['BUILDKITE_JOB_ID'],
  bitbucket: ['BITBUCKET_STEP_UUID'],
  jenkins: ['BUILD_TAG'],
  azure: ['SYSTEM_JOBID', 'BUILD_BUILDID'],
  terraform: ['TFC_RUN_ID'],
};
/** Per-job secrets that mint tokens, for providers whose token changes on every call. */
const MINT_CREDENTIAL_VARS = {
  github: 'ACTIONS_ID_TOKEN_REQUEST_TOKEN',
  buildkite: 'BUILDKITE_AGENT_ACCESS_TOKEN',
  azure: 'SYSTEM_ACCESSTOKEN',
  circleci: 'CIRCLE_OIDC_TOKEN_V2',
};
/** CI-provided per-job temporary directories, emptied between jobs. */
const JOB_TEMP_VARS = { github: 'RUNNER_TEMP', azure: 'AGENT_TEMPDIRECTORY' };

function jobIdOf(provider, env) {
  const values = (JOB_ID_VARS[provider] ?? []).map((k) => env[k] ?? '');
  return values.some(Boolean) ? values.join('/') : undefined;
}

/** The claims of a JWT, not verified (the broker verifies): only to record whom an entry is for. */
function unverifiedClaims(token) {
  const claims = parseJson(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
  return claims && typeof claims === 'object' ? claims : {};
}
const claimString = (v) => (typeof v === 'string' || typeof v === 'number' ? clean(String(v), 200) : undefined);

/**
 * Who is asking: the identity an entry must match, and the token to exchange when it was read to
 * find out (a token the job cannot renew). Undefined when nothing binds the caller to a job (a
 * minting provider without its per-job credential): then nothing is cached.
 */
async function callerIdentity(source, env) {
  const job = jobIdOf(source.name, env);
  if (!source.canMint) {
    const token = await source.get();
    const claims = unverifiedClaims(token);
    return { token, identity: { provider: source.name, iss: claimString(claims.iss), sub: claimString(claims.sub), job, token_sha256: sha256(token) } };
  }
  const credential = env[MINT_CREDENTIAL_VARS[source.name] ?? ''];
  if (!credential) return undefined;
  return { identity: { provider: source.name, job, job_credential_sha256: sha256(credential) } };
}

const IDENTITY_KEYS = ['provider', 'iss', 'sub', 'job', 'token_sha256', 'job_credential_sha256'];
const sameIdentity = (a, b) => Boolean(a && b && typeof a === 'object') && IDENTITY_KEYS.every((k) => (a[k] ?? null) === (b[k] ?? null));

/**
 * The cache directory: --cache-dir as given; by default one directory per job, under the CI's own
 * per-job temp directory where it has one ($RUNNER_TEMP, $AGENT_TEMPDIRECTORY), else under
 * $XDG_CACHE_HOME/credbroker or ~/.cache/credbroker.
 */
function cacheDirFor(opts, env, provider, identity) {
  if (opts.cacheDir) return { dir: opts.cacheDir, base: undefined };
  const jobTemp = env[JOB_TEMP_VARS[provider] ?? ''];
  const base = jobTemp ? path.join(jobTemp, 'credbroker') : opts.defaultCacheBase;
  const job = identity.job ?? identity.token_sha256 ?? identity.job_credential_sha256;
  return { dir: path.join(base, `job-${sha256(JSON.stringify([provider, job])).slice(0, 16)}`), base };
}

/** Removes other jobs' directories older than any session can live (their credentials expired). */
function pruneOldJobDirs(base, keep) {
  const cutoff = Date.now() - 13 * 3600_000;
  let names = [];
  try {
    names = fs.readdirSync(base);
  } catch {
    return;
  }
  for (const name of names) {
    if (!/^job-[0-9a-f]{16}$/.test(name) || path.join(base, name) === keep) continue;
    try {
      const st = fs.lstatSync(path.join(base, name));
      const own = typeof process.getuid !== 'function' || st.uid === process.getuid();
      if (st.isDirectory() && own && st.mtimeMs < cutoff) fs.rmSync(path.join(base, name), { recursive: true, force: true });
    } catch {
      /* raced with another job: fine */
    }
  }
}

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

/** A private regular file of ours, parsed as JSON; undefined otherwise. */
function readPrivateJson(file) {
  let fd;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0));
    const st = fs.fstatSync(fd);
    const own = typeof process.getuid !== 'function' || st.uid === process.getuid();
    if (!st.isFile() || !own || (st.mode & 0o077) !== 0) {
      debug(`${path.basename(file)} ignored: not a private regular file of ours`);
      return undefined;
    }
    return parseJson(fs.readFileSync(fd, 'utf8'));
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * The cached entry and how long it has left, or undefined (absent, not private, malformed,
 * expired, or obtained by another identity).
 */
function readCache(file, identity) {
  const c = readPrivateJson(file);
  if (!c || typeof c !== 'object' || c.Version !== 1) return undefined;
  if (!sameIdentity(c.Identity, identity)) {
    debug('cache entry ignored: obtained by another identity');
    return undefined;
  }
  for (const k of ['AccessKeyId', 'SecretAccessKey', 'SessionToken']) {
    if (typeof c[k] !== 'string' || !CREDENTIAL_CHARS.test(c[k])) return undefined;
  }
  const remainingMs = Date.parse(c.Expiration) - Date.now();
  if (!(remainingMs > 0)) return undefined;
  return { entry: c, remainingMs };
}

const usable = (hit) => Boolean(hit && hit.remainingMs > MIN_FALLBACK_MS);
const fresh = (hit, opts) => Boolean(hit && hit.remainingMs > opts.refreshBeforeMs);
const inBackoff = (hit) => Boolean(hit && hit.entry.Renewal && Date.parse(hit.entry.Renewal.next_attempt_at) > Date.now());
const serve = (entry) => render['credential-process'](entry);

/** Hashes of tokens this job has presented to the broker (a token the job cannot renew is spent). */
function readSpent(dir) {
  const s = readPrivateJson(path.join(dir, 'presented-tokens.json'));
  return s && typeof s === 'object' && !Array.isArray(s) ? s : {};
}
function recordSpent(dir, hashes) {
  if (hashes.length === 0) return;
  const spent = readSpent(dir);
  const now = new Date().toISOString();
  for (const h of hashes) spent[h] ??= now;
  try {
    writePrivateFile(path.join(dir, 'presented-tokens.json'), `${JSON.stringify(spent)}\n`);
  } catch {
    debug('could not record the presented token');
  }
}

/** A lock file so parallel AWS tool invocations do not spend the same one-time token twice. */
async function acquireLock(lockFile, { wait }) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const fd = fs.openSync(lockFile, 'wx', 0o600);
      return () => {
        fs.closeSync(fd);
        try {
          fs.unlinkSync(lockFile);
        } catch {
          /* already gone */
        }
      };
    } catch (e) {
      if (!e || e.code !== 'EEXIST') return () => {}; // cannot lock: proceed unlocked rather than fail
      try {
        if (Date.now() - fs.statSync(lockFile).mtimeMs > 90_000) fs.unlinkSync(lockFile); // stale
      } catch {
        /* raced with its owner */
      }
      if (!wait) return undefined;
      if (Date.now() > deadline) return () => {};
      await sleep(100 + Math.random() * 100);
    }
  }
}

function warnIfBelowRefreshWindow(opts) {
  if (opts.duration && opts.duration < 2 * BOTOCORE_REFRESH_S && !opts.quiet) {
    info(
      `warning: --duration ${opts.duration} leaves little or nothing outside botocore's 15-minute refresh window: the AWS CLI and boto3 will start this client before almost every call; ask for ${2 * BOTOCORE_REFRESH_S} or more`,
    );
  }
}

/** Where this caller's entry is, and who it is; undefined when it cannot be cached. */
async function locate(opts, env, source) {
  const caller = await callerIdentity(source, env);
  if (!caller) return { caller };
  const { identity } = caller;
  const { dir, base } = cacheDirFor(opts, env, source.name, identity);
  const key = sha256(
    JSON.stringify([opts.url, opts.role, opts.duration ?? null, opts.audience, opts.provider ?? null, opts.tokenEnv ?? null, opts.tokenFile ?? null, identity.token_sha256 ?? identity.job_credential_sha256]),
  ).slice(0, 32);
  return { caller, dir, base, file: path.join(dir, `${key}.json`) };
}

export async function credentialProcess(opts, env) {
  await loadCrypto();
  const source = tokenSource(opts, env);
  if (opts.noCache) {
    warnIfBelowRefreshWindow(opts);
    return serve(await exchange(opts, source));
  }
  const { caller, dir, base, file } = await locate(opts, env, source);
  if (!caller) debug(`no per-job credential of ${source.name} to bind a cache entry to: not caching`);
  const problem = caller ? cacheDirUsable(dir) : undefined;
  if (problem) debug(`cache directory ${dir} ${problem}: not caching`);
  if (!caller || problem) {
    warnIfBelowRefreshWindow(opts);
    return serve(await exchange(opts, caller?.token ? { ...source, get: async () => caller.token } : source));
  }
  const { identity } = caller;

  const hit = readCache(file, identity);
  if (fresh(hit, opts)) return serve(hit.entry);
  if (usable(hit) && inBackoff(hit)) {
    debug(`renewal failed earlier; next attempt after ${hit.entry.Renewal.next_attempt_at}: serving the cached credentials`);
    return serve(hit.entry);
  }
  // A token the job cannot renew, once presented, is spent: say so rather than send it again.
  // Without a usable entry, decide under the lock: a parallel invocation may be writing the entry
  // for the very exchange that spent the token.
  if (caller.token && usable(hit)) {
    const presentedAt = readSpent(dir)[identity.token_sha256] ?? hit.entry.ObtainedAt ?? 'earlier';
    return spentToken(opts, source, file, hit, presentedAt);
  }

  const release = await acquireLock(`${file}.lock`, { wait: !usable(hit) });
  if (!release) {
    debug('another invocation is renewing: serving the cached credentials');
    return serve(hit.entry);
  }
  try {
    const cached = readCache(file, identity); // another process may have renewed meanwhile
    if (fresh(cached, opts) || (usable(cached) && inBackoff(cached))) return serve(cached.entry);
    if (caller.token) {
      // An entry bound to this very token (its hash is part of the identity) also means it was exchanged.
      const presentedAt = readSpent(dir)[identity.token_sha256] ?? (cached ? cached.entry.ObtainedAt ?? 'earlier' : undefined);
      if (presentedAt) return spentToken(opts, source, file, cached, presentedAt);
    }
    const presented = [];
    const exchangeSource = caller.token ? { ...source, get: async () => caller.token } : source;
    // With credentials to fall back on, one quick attempt: the back-off, not retries, paces renewals.
    const attemptOpts = usable(cached) ? { ...opts, retries: 0, timeoutMs: Math.min(opts.timeoutMs, RENEWAL_TIMEOUT_MS) } : opts;
    let c;
    try {
      c = await exchange(attemptOpts, exchangeSource, { onPresented: (t) => caller.token && presented.push(sha256(t)) });
    } catch (e) {
      recordSpent(dir, presented);
      // A renewal that fails for want of a fresh token or a reachable broker does not cut a job
      // off while its credentials still work. A denial (403: revoked, policy changed) does.
      const fallback = e instanceof ClientError && [EXIT.TOKEN, EXIT.TOKEN_REJECTED, EXIT.UNAVAILABLE].includes(e.exitCode);
      if (fallback && usable(cached)) return fallBack(opts, file, cached, describeError(e));
      throw e;
    }
    warnIfBelowRefreshWindow(opts);
    const entry = { ...JSON.parse(serve(c)), Identity: identity, ObtainedAt: new Date().toISOString() };
    if (!caller.token && source.lastToken) {
      // Minted per call: whom the last token named, for --status (the binding is the job credential).
      const claims = unverifiedClaims(source.lastToken);
      entry.IssuedTo = { iss: claimString(claims.iss), sub: claimString(claims.sub) };
    }
    try {
      writePrivateFile(file, `${JSON.stringify(entry)}\n`);
      if (base) pruneOldJobDirs(base, dir);
    } catch {
      debug('could not write the cache file: continuing without it');
    }
    // After the entry: whoever sees the token as spent also finds what it bought.
    recordSpent(dir, presented);
    return serve(c);
  } finally {
    release();
  }
}

/** Serves still-valid credentials after a failed renewal; records it, with the next attempt's time. */
function fallBack(opts, file, hit, why) {
  const failures = (hit.entry.Renewal?.failures ?? 0) + 1;
  const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (failures - 1), Math.max(0, hit.remainingMs - MIN_FALLBACK_MS));
  const now = Date.now();
  const entry = {
    ...hit.entry,
    Renewal: { failures, last_failure_at: new Date(now).toISOString(), last_error: clean(why, 300), next_attempt_at: new Date(now + backoff).toISOString() },
  };
  try {
    writePrivateFile(file, `${JSON.stringify(entry)}\n`);
  } catch {
    debug('could not record the failed renewal');
  }
  if (!opts.quiet) {
    info(`warning: renewal failed (${why}); using cached credentials that expire in ${Math.round(hit.remainingMs / 1000)}s; next attempt in ${Math.round(backoff / 1000)}s`);
  }
  return serve(entry);
}

/** A token the job cannot renew was already presented: serve what is still valid, or say what is needed. */
function spentToken(opts, source, file, hit, presentedAt) {
  const why = `the OIDC token from ${source.from ?? source.name} was already exchanged (at ${presentedAt}); a fresh token is needed, and ${source.name} cannot mint one from within the job`;
  if (usable(hit)) return fallBack(opts, file, hit, why);
  throw new ClientError(EXIT.TOKEN_REJECTED, `${why}: re-run the job, or ask for a --duration that covers it (the token was not sent again)`);
}

/** --status: this job's entry, its expiry, failed renewals and back-off; never a secret. */
export async function cacheStatus(opts, env) {
  await loadCrypto();
  const source = tokenSource(opts, env);
  const { caller, dir, file } = await locate(opts, env, source);
  const lines = [`${PROG}: credential-process cache`];
  if (!caller) return `${lines[0]}: none (${source.name} has no per-job credential to bind an entry to)\n`;
  lines.push(`  entry: ${file}`);
  const id = caller.identity;
  lines.push(`  identity: ${[id.provider, id.job && `job ${id.job}`, id.iss && `iss ${id.iss}`, id.sub && `sub ${id.sub}`].filter(Boolean).join(', ')}`);
  const raw = readPrivateJson(file);
  const hit = readCache(file, id);
  if (!hit) {
    lines.push(`  credentials: ${raw && sameIdentity(raw.Identity, id) ? 'expired' : 'none'}`);
  } else {
    const left = Math.round(hit.remainingMs / 1000);
    const state = fresh(hit, opts) ? 'served from the cache' : usable(hit) ? 'in the refresh window' : 'about to expire';
    lines.push(`  credentials: expire at ${hit.entry.Expiration} (in ${left}s; ${state})`);
    const obtained = Date.parse(hit.entry.ObtainedAt);
    const lifetime = Math.round((Date.parse(hit.entry.Expiration) - obtained) / 1000);
    if (lifetime > 0 && lifetime < 2 * BOTOCORE_REFRESH_S) lines.push(`  warning: a ${lifetime}s session leaves little or nothing outside botocore's 15-minute refresh window`);
  }
  const renewal = hit?.entry.Renewal ?? (raw && sameIdentity(raw.Identity, id) ? raw.Renewal : undefined);
  lines.push(
    renewal
      ? `  failed renewals: ${renewal.failures} (last at ${renewal.last_failure_at}: ${renewal.last_error}); next attempt after ${renewal.next_attempt_at}`
      : '  failed renewals: 0',
  );
  if (caller.token) {
    const presentedAt = readSpent(dir)[id.token_sha256] ?? (raw && sameIdentity(raw.Identity, id) ? raw.ObtainedAt : undefined);
    lines.push(`  token: ${presentedAt ? `already exchanged at ${presentedAt}; renewing needs a fresh token` : 'not exchanged yet'}`);
  }
  return `${lines.map((l) => (l.startsWith('  ') ? `  ${clean(l, 600)}` : clean(l, 600))).join('\n')}\n`;
}
