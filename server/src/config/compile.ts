// Raw (schema-valid) config → the frozen, typed configuration the broker runs on. Cross-field
// rules are checked here; every problem is collected and reported together.
import type { RawConfig, IssuerInput } from './schema.js';
import { ALLOWED_ALGORITHMS } from './schema.js';
import { PRESETS, GENERIC, type Preset } from '../core/presets.js';
import { issuerUrlProblem } from '../core/issuer-url.js';
import { compilePolicy, type CompiledPolicy, type PolicyIssuer } from '../core/policy.js';
import { lintPolicy } from '../core/lint.js';
import type { Problem } from '../core/problems.js';
import { isIP } from 'node:net';
import { adminListenerProblem, isLoopbackHost } from '../admin/listener.js';
import { readCaFile } from '../net/ca-file.js';
import { noProxyEntryProblem, proxyPlan, proxyUrlProblem } from '../net/proxy.js';
import type { NetworkConfig, TrustSettings } from '../net/network.js';
import { consoleConfigProblems } from '../console/settings.js';

export interface IssuerConfig {
  id: string;
  url: string;
  provider: string;
  preset: Preset | undefined;
  audiences: string[];
  allowMultipleAudiences: boolean;
  algorithms: Array<(typeof ALLOWED_ALGORITHMS)[number]>;
  clockSkewSeconds: number;
  maxTokenAgeSeconds: number;
  requiredClaims: string[];
  allowInsecureHttp: boolean;
  jwksRefreshSeconds: number;
  jwksCooldownSeconds: number;
  httpTimeoutMs: number;
  maxResponseBytes: number;
  /** issuers.<id>.ca_file, read at compile time: extra trust for discovery and JWKS. */
  caFile: string | undefined;
  trust: TrustSettings | undefined;
}

export interface Config {
  raw: RawConfig;
  server: RawConfig['server'];
  aws: RawConfig['aws'];
  logging: RawConfig['logging'];
  audit: RawConfig['audit'];
  store: RawConfig['store'];
  admin: RawConfig['admin'];
  metrics: RawConfig['metrics'];
  revocation: RawConfig['revocation'];
  /** Proxy settings and CA certificates (already read from network.ca_file). */
  network: NetworkConfig;
  issuers: Map<string, IssuerConfig>;
  policy: CompiledPolicy;
  rotation: RawConfig['rotation'];
}

/** A CA file's certificates; a file that cannot be used is a problem at `path`. */
function caCerts(file: string | undefined, only: boolean, path: string, problems: Problem[], warnings: Problem[]): string[] | undefined {
  if (file === undefined) {
    if (only) problems.push({ path: `${path}_only`, message: 'needs ca_file: with neither the system roots nor a CA file nothing would be trusted' });
    return undefined;
  }
  const bundle = readCaFile(file);
  if (typeof bundle === 'string') {
    problems.push({ path, message: bundle });
    return undefined;
  }
  for (const w of bundle.warnings) warnings.push({ path, message: w });
  return bundle.certs;
}

function compileIssuer(id: string, input: IssuerInput, problems: Problem[], warnings: Problem[]): IssuerConfig {
  const path = `issuers.${id}`;
  const preset = input.preset ? PRESETS[input.preset] : undefined;
  let url = input.url;
  if (url === undefined) {
    if (!preset) problems.push({ path: `${path}.url`, message: 'required when no preset is given' });
    else {
      const derived = preset.issuerUrl({ host: input.host, org_id: input.org_id, workspace: input.workspace });
      if (typeof derived === 'string') url = derived;
      else problems.push({ path: `${path}.url`, message: derived.error });
    }
  }
  if (url !== undefined) {
    const problem = issuerUrlProblem(url, input.allow_insecure_http);
    if (problem) problems.push({ path: `${path}.url`, message: problem });
  }
  const certs = caCerts(input.ca_file, input.ca_file_only, `${path}.ca_file`, problems, warnings);
  return {
    id,
    url: url ?? '',
    provider: preset?.name ?? 'oidc',
    preset,
    audiences: input.audiences,
    allowMultipleAudiences: input.allow_multiple_audiences,
    algorithms: input.algorithms ?? ['RS256', 'ES256'],
    clockSkewSeconds: input.clock_skew_seconds,
    maxTokenAgeSeconds: input.max_token_age_seconds ?? preset?.defaultMaxTokenAge ?? GENERIC.defaultMaxTokenAge,
    requiredClaims: input.required_claims,
    allowInsecureHttp: input.allow_insecure_http,
    jwksRefreshSeconds: input.jwks_refresh_seconds,
    jwksCooldownSeconds: input.jwks_cooldown_seconds,
    httpTimeoutMs: input.http_timeout_ms,
    maxResponseBytes: input.max_response_bytes,
    caFile: input.ca_file,
    trust: certs ? { caCerts: certs, only: input.ca_file_only } : undefined,
  };
}

/**
 * network: the proxy URL and no_proxy entries must be usable, and so must the proxy variables of
 * the environment the config is loaded in (when it reads them): a malformed HTTPS_PROXY is refused
 * at start, not ignored.
 */
function compileNetwork(raw: RawConfig['network'], env: NodeJS.ProcessEnv | undefined, problems: Problem[], warnings: Problem[]): NetworkConfig {
  if (raw.proxy !== undefined) {
    const p = proxyUrlProblem(raw.proxy);
    if (p) problems.push({ path: 'network.proxy', message: `proxy URL ${p}` });
  }
  raw.no_proxy?.forEach((entry, i) => {
    const p = noProxyEntryProblem(entry);
    if (p) problems.push({ path: `network.no_proxy[${i}]`, message: p });
  });
  const settings = { proxy: raw.proxy, noProxy: raw.no_proxy, useEnv: raw.use_env_proxy };
  if (env !== undefined && raw.proxy === undefined) {
    for (const p of proxyPlan(settings, env).problems) problems.push({ path: `${p.path} (environment)`, message: p.message });
  }
  return {
    ...settings,
    caFile: raw.ca_file,
    caFileOnly: raw.ca_file_only,
    caCerts: caCerts(raw.ca_file, raw.ca_file_only, 'network.ca_file', problems, warnings),
  };
}

function issuerWarnings(issuers: Map<string, IssuerConfig>): Problem[] {
  const warnings: Problem[] = [];
  for (const issuer of issuers.values()) {
    // GitHub's default audience is https://<github host>/<owner>; on GHES the host is the issuer's.
    const urlHost = URL.canParse(issuer.url) ? new URL(issuer.url).host : undefined;
    const githubHost = issuer.preset?.name === 'github-actions' && urlHost ? (urlHost === 'token.actions.githubusercontent.com' ? 'github.com' : urlHost) : undefined;
    issuer.audiences.forEach((aud, i) => {
      if (githubHost !== undefined && aud.toLowerCase().startsWith(`https://${githubHost.toLowerCase()}/`)) {
        warnings.push({ path: `issuers.${issuer.id}.audiences[${i}]`, message: "GitHub's default audience is shared by every workflow of the owner: use a broker-specific audience" });
      }
    });
    if (issuer.allowInsecureHttp) warnings.push({ path: `issuers.${issuer.id}.allow_insecure_http`, message: 'http issuer allowed: for local testing only' });
  }
  return warnings;
}

/** The audit HMAC key: one source each, and required with the store sink unless explicitly waived. */
function auditKeyProblems(audit: RawConfig['audit']): Problem[] {
  const problems: Problem[] = [];
  if (audit.hmac_key_file !== undefined && audit.hmac_key_env !== undefined) {
    problems.push({ path: 'audit.hmac_key_env', message: 'give hmac_key_file or hmac_key_env, not both' });
  }
  audit.previous_hmac_keys.forEach((k, i) => {
    if ((k.file === undefined) === (k.env === undefined)) problems.push({ path: `audit.previous_hmac_keys[${i}]`, message: 'give file or env (one of them)' });
  });
  const keyed = audit.hmac_key_file !== undefined || audit.hmac_key_env !== undefined;
  if (audit.sink === 'store' && !keyed && !audit.allow_unkeyed_chain) {
    problems.push({
      path: 'audit.hmac_key_file',
      message:
        'audit.sink "store" needs an HMAC key (hmac_key_file or hmac_key_env), or anyone who can write to the database can rewrite the audit trail; set audit.allow_unkeyed_chain: true to accept that',
    });
  }
  if (!keyed && audit.previous_hmac_keys.length > 0) problems.push({ path: 'audit.previous_hmac_keys', message: 'retired keys need a current key (hmac_key_file or hmac_key_env)' });
  if (audit.checkpoints.sink === 'file' && !audit.checkpoints.path) problems.push({ path: 'audit.checkpoints.path', message: 'required when audit.checkpoints.sink is "file"' });
  return problems;
}

function operationsWarnings(raw: RawConfig): Problem[] {
  const warnings: Problem[] = [];
  if (raw.audit.sink === 'store' && raw.audit.allow_unkeyed_chain && raw.audit.hmac_key_file === undefined && raw.audit.hmac_key_env === undefined) {
    warnings.push({ path: 'audit.allow_unkeyed_chain', message: 'the audit chain is unkeyed: anyone who can write to the database can rewrite the trail undetected' });
  }
  if (raw.admin.enabled) {
    raw.admin.tokens.forEach((t, i) => {
      if (t.scopes === undefined) warnings.push({ path: `admin.tokens[${i}].scopes`, message: `not set: "${t.name}" can only read (add scopes: [operate] to revoke and rotate)` });
    });
    if (!isLoopbackHost(raw.admin.host) && raw.admin.allow_insecure_non_loopback && !raw.server.tls) {
      warnings.push({ path: 'admin.host', message: 'the admin API listens on a non-loopback address over plain HTTP' });
    }
  }
  if (raw.metrics.enabled && !isLoopbackHost(raw.metrics.host)) {
    warnings.push({ path: 'metrics.host', message: 'the metrics listener has no authentication and names accounts, issuers and IAM users: expose it only to the scraper' });
  }
  return warnings;
}

const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** An IP, a CIDR (IPv4 /0–32, IPv6 /0–128) or one of Express's named ranges. */
function proxyEntryProblem(entry: string): string | undefined {
  if (PROXY_NAMES.has(entry)) return undefined;
  const [address, bits, ...rest] = entry.split('/');
  const family = isIP(address ?? '');
  if (family === 0 || rest.length > 0) return `"${entry}" is not an IP address, a CIDR, or one of loopback, linklocal, uniquelocal`;
  if (bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128))) return `"${entry}": bad prefix length`;
  return undefined;
}

function serverChecks(raw: RawConfig, problems: Problem[], warnings: Problem[]): void {
  const tp = raw.server.trust_proxy;
  if (Array.isArray(tp)) {
    tp.forEach((entry, i) => {
      const p = proxyEntryProblem(entry);
      if (p) problems.push({ path: `server.trust_proxy[${i}]`, message: p });
    });
  }
  if (tp === true) {
    warnings.push({
      path: 'server.trust_proxy',
      message: 'true believes every X-Forwarded-For entry: any client can pick its own IP (per-IP limits, audit client_ip); set the number of proxies in front (e.g. 1) or their CIDRs',
    });
  }
}

export function compileConfig(
  raw: RawConfig,
  opts: { unparsedIssuerIds?: string[]; env?: NodeJS.ProcessEnv } = {},
): { config?: Config; problems: Problem[]; warnings: Problem[] } {
  const problems: Problem[] = [];
  const fileWarnings: Problem[] = [];
  const issuers = new Map<string, IssuerConfig>();
  const byUrl = new Map<string, string>();
  const network = compileNetwork(raw.network, opts.env, problems, fileWarnings);
  for (const [id, input] of Object.entries(raw.issuers)) {
    const issuer = compileIssuer(id, input, problems, fileWarnings);
    const prior = byUrl.get(issuer.url);
    if (issuer.url && prior !== undefined) problems.push({ path: `issuers.${id}.url`, message: `same issuer URL as issuers.${prior}` });
    byUrl.set(issuer.url, id);
    issuers.set(id, issuer);
  }
  const policyIssuers = new Map<string, PolicyIssuer>(
    [...issuers.values()].map((i) => [i.id, { id: i.id, provider: i.provider, preset: i.preset }]),
  );
  // Issuers that failed schema validation still exist as names, so references to them are not
  // reported as unknown on top of their own problems.
  for (const id of opts.unparsedIssuerIds ?? []) policyIssuers.set(id, { id, provider: 'oidc', preset: undefined });
  const policy = compilePolicy(
    { roles: raw.roles, deny: raw.deny, brokerMaxDuration: raw.server.max_session_duration_seconds },
    policyIssuers,
    problems,
  );
  if (raw.audit.sink === 'file' && !raw.audit.path) problems.push({ path: 'audit.path', message: 'required when audit.sink is "file"' });
  if (raw.store.driver === 'postgres' && !raw.store.postgres_url) problems.push({ path: 'store.postgres_url', message: 'required when store.driver is "postgres"' });
  if (raw.rotation?.enabled && raw.store.driver === 'memory') problems.push({ path: 'store.driver', message: 'rotation needs a persistent store: "sqlite" or "postgres"' });
  if (raw.admin.client_ca_file !== undefined && !raw.server.tls) {
    problems.push({ path: 'admin.client_ca_file', message: 'client certificates need TLS: set server.tls too' });
  }
  // With console SSO, people sign in with their identity provider; tokens are for scripts.
  if (raw.admin.enabled && raw.admin.tokens.length === 0 && !raw.console.sso) problems.push({ path: 'admin.tokens', message: 'the admin API needs at least one token hash (or console.sso)' });
  if (raw.admin.enabled && raw.admin.port === raw.server.port && raw.admin.port !== 0) {
    problems.push({ path: 'admin.port', message: 'must differ from server.port: the admin API is never on the public listener' });
  }
  // With server.tls the admin listener is HTTPS, so it may bind beyond loopback.
  const adminHost = raw.admin.enabled ? adminListenerProblem(raw.admin.host, raw.admin.allow_insecure_non_loopback || raw.server.tls !== undefined) : undefined;
  if (adminHost) problems.push({ path: 'admin.host', message: adminHost });
  if (raw.metrics.enabled && raw.metrics.port !== 0) {
    if (raw.metrics.port === raw.server.port) problems.push({ path: 'metrics.port', message: 'must differ from server.port: metrics are never on the public listener' });
    else if (raw.admin.enabled && raw.metrics.port === raw.admin.port) problems.push({ path: 'metrics.port', message: 'must differ from admin.port' });
  }
  problems.push(...auditKeyProblems(raw.audit));

  const consoleChecks = consoleConfigProblems(raw);
  problems.push(...consoleChecks.problems);
  const warnings = [...issuerWarnings(issuers), ...lintPolicy(policy), ...operationsWarnings(raw), ...consoleChecks.warnings, ...fileWarnings];
  serverChecks(raw, problems, warnings);
  if (problems.length > 0) return { problems, warnings };
  const config: Config = {
    raw,
    server: raw.server,
    aws: raw.aws,
    logging: raw.logging,
    audit: raw.audit,
    store: raw.store,
    admin: raw.admin,
    metrics: raw.metrics,
    revocation: raw.revocation,
    network,
    issuers,
    policy,
    rotation: raw.rotation,
  };
  return { config: Object.freeze(config), problems, warnings };
}
