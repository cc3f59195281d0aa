// @ts-check
// Options: flags and their CREDBROKER_* environment variables (a flag wins), validated up front so
// that a mistake costs no one-time token.
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PROG, usage } from './errors.mjs';
import { checkProxyEnvironment } from './proxy.mjs';

export const HELP = `Usage: ${PROG} --url URL --role NAME [options]

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
  --ca-file FILE             PEM CA certificate(s) to trust for the broker (instead of the
                             system's), for a broker with a private CA                CREDBROKER_CA_FILE

Proxy (as curl): HTTPS_PROXY for https:// URLs, HTTP_PROXY for http:// ones (lower case first),
  NO_PROXY: hosts (and their subdomains), IP addresses, CIDRs, or *; for the token endpoint and the
  broker alike; -v says which proxy each origin went through, never its credentials

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
  --cache-dir DIR            credential-process cache (default: a directory per job under $RUNNER_TEMP,
                             $AGENT_TEMPDIRECTORY, $XDG_CACHE_HOME/credbroker or ~/.cache/credbroker;
                             entries are served only to the identity that obtained them) CREDBROKER_CACHE_DIR
  --refresh-before SECONDS   credential-process: re-exchange when fewer seconds remain (default 600)
                                                                                  CREDBROKER_REFRESH_BEFORE
  --no-cache                 credential-process: always exchange, never read or write the cache
  --status                   credential-process: describe the cache entry of this job (expiry, failed
                             renewals and back-off), never a secret; exchanges nothing
  --no-mask                  do not register the credentials with the CI's log masking   CREDBROKER_NO_MASK=1
                             (Buildkite redactor; GitHub ::add-mask:: / Azure ##vso[task.setsecret]
                             on stdout when stdout is not the output: profile, bash-env, --output)
  -q, --quiet                no informational line on stderr
  -v, --verbose              diagnostics on stderr (never secrets)                CREDBROKER_VERBOSE=1
  -h, --help                 this help
  --version                  print the version

Exit codes
  0 ok · 1 internal error · 2 usage · 3 OIDC token acquisition failed
  4 token rejected by the broker (401), or already exchanged by this job (a fresh token is needed)
  5 denied (403, or STS refused the role) · 6 broker unavailable (network, timeout, 429/5xx after retries)
  7 request rejected by the broker (400/413/415/…) · 8 output file could not be written
`;

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


export function isLoopback(hostname) {
  const h = hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

export function parseBrokerUrl(raw) {
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

/** The options, from argv and the environment (a flag wins), validated; throws a usage error. */
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
        'ca-file': { type: 'string' },
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
        status: { type: 'boolean' },
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
  // Read now: a CA file that cannot be used must not cost the job its one-time token.
  const caFile = pick('ca-file', 'CREDBROKER_CA_FILE');
  let ca;
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile);
    } catch (e) {
      throw usage(`--ca-file ${caFile}: cannot read it (${e && e.code ? e.code : 'error'})`);
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw usage(`--ca-file ${caFile}: no PEM certificate in it`);
  }
  // A proxy variable that cannot be used stops the client now, before a token is spent.
  checkProxyEnvironment(env);
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
  if (v.status && format !== 'credential-process') throw usage('--status describes the credential-process cache: use it with --format credential-process');
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
    ca,
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
    cacheDir: pick('cache-dir', 'CREDBROKER_CACHE_DIR'),
    defaultCacheBase: path.join(env.XDG_CACHE_HOME || path.join(home, '.cache'), 'credbroker'),
    refreshBeforeMs: refreshBefore * 1000,
    noCache: Boolean(v['no-cache']),
    status: Boolean(v.status),
    noMask: Boolean(v['no-mask']) || env.CREDBROKER_NO_MASK === '1',
    quiet: Boolean(v.quiet),
    verbose: Boolean(v.verbose) || env.CREDBROKER_VERBOSE === '1',
  };
}
