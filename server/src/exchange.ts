// One credential exchange: verify the token, accept it once, decide by policy, call STS, audit.
// Every outcome — issued, denied, failed — produces exactly one audit record, written before the
// caller gets an answer. If the record cannot be written, no credentials leave (fail closed).
import { performance } from 'node:perf_hooks';
import { decodeJwt } from 'jose';
import { BrokerError, isBrokerError, isTransient } from './errors.js';
import type { Config } from './config/compile.js';
import { evaluate, type AllowDecision } from './core/policy.js';
import type { TokenVerifier, VerifiedToken } from './oidc/verifier.js';
import { hashToken } from './oidc/verifier.js';
import type { CredentialIssuer, IssuedCredentials } from './aws/sts.js';
import { replayKey, type ReplayLedger } from './replay/ledger.js';
import type { AuditRecord, AuditSink } from './audit/types.js';
import type { BrokerMetrics } from './metrics.js';
import type { Logger } from './log.js';
import type { IdentityLimiter } from './http/rate-limit.js';

export interface ExchangeRequest {
  token: string;
  role: string;
  durationSeconds: number | undefined;
  requestId: string;
  clientIp: string | undefined;
  signal?: AbortSignal;
}

export interface ExchangeResult {
  credentials: IssuedCredentials;
  roleArn: string;
  sessionName: string;
  sourceIdentity: string;
  durationSeconds: number;
}

/** A check run after the policy allowed, before STS (revocations plug in here). */
export type PreIssueCheck = (ctx: { verified: VerifiedToken; decision: AllowDecision; role: string; now: Date }) => Promise<void>;

export interface ExchangeDeps {
  config(): Config;
  verifier(): TokenVerifier;
  sts: CredentialIssuer;
  ledger: ReplayLedger;
  audit: AuditSink;
  metrics: BrokerMetrics;
  logger: Logger;
  now(): Date;
  preIssueChecks?: PreIssueCheck[];
  /** Per-identity rate limit, applied to verified identities only. */
  identityLimiter?: IdentityLimiter;
}

/** Unverified iss/sub of a rejected token, for forensics. Marked as such in the record. */
function unverifiedIdentity(token: string): Record<string, unknown> {
  try {
    const c = decodeJwt(token);
    return { unverified_iss: String(c.iss ?? '').slice(0, 200), unverified_sub: String(c.sub ?? '').slice(0, 200) };
  } catch {
    return {};
  }
}

function throwIfTimedOut(signal: AbortSignal | undefined, detail?: Record<string, unknown>): void {
  if (signal?.aborted) throw new BrokerError('ERR_TIMEOUT', { retryAfter: 1, ...(detail ? { detail } : {}) });
}

async function roleChaining(deps: ExchangeDeps, config: Config): Promise<boolean> {
  const mode = config.aws.role_chaining;
  if (mode !== 'auto') return mode === 'always';
  return deps.sts.runsOnTemporaryCredentials();
}

export async function exchange(deps: ExchangeDeps, req: ExchangeRequest): Promise<ExchangeResult> {
  const started = performance.now();
  const now = deps.now();
  // One snapshot per request: a hot reload never changes the rules halfway through an exchange.
  const config = deps.config();
  const verifier = deps.verifier();
  const tokenHash = hashToken(req.token);
  const record: AuditRecord = {
    time: now.toISOString(),
    event: 'exchange',
    request_id: req.requestId,
    client_ip: req.clientIp,
    role: req.role,
    requested_duration_seconds: req.durationSeconds,
    token_sha256: tokenHash,
  };
  let verified: VerifiedToken | undefined;
  let ledgerKey: string | undefined;
  try {
    verified = await verifier.verify(req.token);
    Object.assign(record, { issuer: verified.issuer.id, issuer_url: verified.issuer.url, subject: verified.claims.sub, jti: verified.claims.jti });
    // Before the token is claimed: a rate-limited caller may retry with the same token.
    await deps.identityLimiter?.check(verified.issuer.url, verified.claims.sub as string);

    const exp = typeof verified.claims.exp === 'number' ? verified.claims.exp : now.getTime() / 1000;
    ledgerKey = replayKey(verified.issuer.url, verified.claims.jti, verified.signedHash);
    const expiresAt = new Date((exp + verified.issuer.clockSkewSeconds) * 1000);
    if (!(await deps.ledger.claim(ledgerKey, expiresAt, now))) {
      ledgerKey = undefined; // not ours to release
      throw new BrokerError('ERR_TOKEN_REPLAYED', { detail: { jti: verified.claims.jti } });
    }

    const decision = evaluate(config.policy, {
      issuer: verified.issuer.id,
      claims: verified.claims,
      role: req.role,
      requestedDuration: req.durationSeconds,
      tokenHash,
      roleChaining: await roleChaining(deps, config),
      now,
    });
    record.claims = decision.usedClaims;
    if (decision.effect === 'deny') {
      throw new BrokerError('ERR_POLICY_DENIED', {
        reason: decision.reason,
        detail: { rules: decision.detail, ...(decision.omitted ? { rules_omitted: decision.omitted } : {}) },
      });
    }
    Object.assign(record, {
      binding: decision.binding,
      role_arn: decision.roleArn,
      session_name: decision.sessionName,
      source_identity: decision.sourceIdentity,
      session_tags: decision.tags,
      ...(decision.omittedTags.length > 0 ? { session_tags_omitted: decision.omittedTags } : {}),
      duration_seconds: decision.durationSeconds,
    });
    for (const check of deps.preIssueChecks ?? []) await check({ verified, decision, role: req.role, now });

    // Nobody is waiting any more: don't issue credentials that no one would receive.
    throwIfTimedOut(req.signal);
    const stsStarted = performance.now();
    let credentials: IssuedCredentials;
    try {
      credentials = await deps.sts.assumeRole(decision, req.signal);
      deps.metrics.stsLatency.observe({ outcome: 'success' }, (performance.now() - stsStarted) / 1000);
    } catch (err) {
      deps.metrics.stsLatency.observe({ outcome: 'failure' }, (performance.now() - stsStarted) / 1000);
      throwIfTimedOut(req.signal, { sts_error: isBrokerError(err) ? err.reason : String(err) });
      throw err;
    }
    Object.assign(record, {
      access_key_id: credentials.accessKeyId,
      assumed_role_arn: credentials.assumedRoleArn,
      expiration: credentials.expiration.toISOString(),
    });
    // STS answered after the caller was told the request timed out: these credentials are
    // withheld, and the record (with their key id, for CloudTrail) says so.
    throwIfTimedOut(req.signal, { credentials_withheld: true });
    Object.assign(record, { decision: 'allow', latency_ms: Math.round(performance.now() - started) });
    await deps.audit.write(record);
    deps.metrics.exchanges.inc({ outcome: 'issued', code: 'OK' });
    // Debug, not info: the audit record written just above carries the same fields, and a log
    // line per exchange was a tenth of the broker's CPU under load.
    if (deps.logger.isLevelEnabled('debug')) {
      deps.logger.debug(
        { request_id: req.requestId, issuer: verified.issuer.id, subject: verified.claims.sub, role: req.role, session_name: decision.sessionName, access_key_id: credentials.accessKeyId },
        'credentials issued',
      );
    }
    return {
      credentials,
      roleArn: decision.roleArn,
      sessionName: decision.sessionName,
      sourceIdentity: credentials.sourceIdentity ?? decision.sourceIdentity,
      durationSeconds: decision.durationSeconds,
    };
  } catch (err) {
    const be = isBrokerError(err) ? err : new BrokerError('ERR_INTERNAL', { detail: { error: err instanceof Error ? err.message : String(err) }, cause: err });
    // A transient failure on our side must not burn the caller's one-time token.
    if (ledgerKey !== undefined && isTransient(be)) await deps.ledger.release(ledgerKey).catch(() => undefined);
    const denied = be.status === 401 || be.status === 403;
    Object.assign(record, {
      decision: denied ? 'deny' : 'error',
      code: be.code,
      reason: be.reason,
      detail: be.detail,
      latency_ms: Math.round(performance.now() - started),
      ...(verified ? {} : unverifiedIdentity(req.token)),
    });
    // If STS issued credentials that are now withheld (the allow record could not be written),
    // access_key_id stays in this record: it is not secret, and it is what CloudTrail shows.
    try {
      await deps.audit.write(record);
    } catch (auditErr) {
      deps.logger.error({ request_id: req.requestId, error: String(auditErr) }, 'audit write failed');
    }
    deps.metrics.exchanges.inc({ outcome: denied ? 'denied' : 'error', code: be.code });
    deps.logger[denied ? 'info' : 'warn'](
      { request_id: req.requestId, code: be.code, reason: be.reason, detail: be.detail, role: req.role, issuer: record.issuer, subject: record.subject },
      'exchange rejected',
    );
    throw be;
  }
}
