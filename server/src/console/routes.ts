// The console's pages and actions, behind sign-in (see app.ts). Reads are for every signed-in
// person; actions that change anything are for operators, pass through a confirmation page, and
// are audited with the person's identity — the same events as the admin API's (admin.revoke,
// admin.unrevoke, admin.revoke_sessions, admin.rotate), marked via: console.
import type express from 'express';
import type { Request, Response } from 'express';
import type { VNode } from 'preact';
import { decodeJwt } from 'jose';
import { parse as parseYaml } from 'yaml';
import { buildRevocation } from '../admin/app.js';
import { compileConfig, type Config } from '../config/compile.js';
import { ConfigError, loadConfigFile, parseConfig } from '../config/load.js';
import { explain } from '../core/policy.js';
import { diffIsEmpty, diffMarkdown, diffPolicies } from '../core/policy-diff.js';
import { formatProblem, type Problem } from '../core/problems.js';
import { BrokerError } from '../errors.js';
import { h, type ConsoleDeps, type ConsoleRequest } from './app.js';
import { parseFilters, toSearch } from './filters.js';
import { render } from './http.js';
import type { SessionStore } from './sessions.js';
import type { ChainWatch } from './status.js';
import { DecisionPage, DecisionsPage, DURATIONS, type DecisionData, type RevokeTarget } from './views/decisions.js';
import { KeysPage, RotationResultPage, type Delivery, type KeysData } from './views/keys.js';
import { OverviewPage } from './views/overview.js';
import { DiffPage, PolicyPage, type DiffForm, type ExplainForm, type ExplainResult } from './views/policy.js';
import { ConfirmPage, RevocationsPage } from './views/revocations.js';

type Deps = ConsoleDeps & { chain: ChainWatch; sessions: SessionStore };

const cx = (req: Request): ConsoleRequest => req.console!;
const page = (res: Response, node: unknown, status = 200) => render(res, status, node as VNode);
const field = (req: Request, name: string): string => {
  const v = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : '';
};
const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Waits for `p` at most `ms`: a page shows what is known by then rather than hang. */
const within = (p: Promise<unknown>, ms: number) => Promise.race([p, new Promise((r) => setTimeout(r, ms).unref())]);

/** Operators only: anyone else gets 403, and the refusal is audited. */
const operator = (req: Request, _res: Response, next: express.NextFunction) => {
  const c = cx(req);
  if (c.role === 'operator') return next();
  c.audit('admin.forbidden', { required_role: 'operator' }).then(
    () => next(new BrokerError('ERR_FORBIDDEN', { message: 'Only operators may do this.' })),
    next,
  );
};

/** Labels for the immutable claims a revocation can block on. */
const TARGET_LABELS: Record<string, string> = {
  repository_id: 'this repository',
  project_id: 'this project',
  'oidc.circleci.com/project-id': 'this project',
  pipeline_id: 'this pipeline',
  repositoryUuid: 'this repository',
  repository_owner_id: 'this owner (organization)',
  namespace_id: 'this namespace',
  actor_id: 'this actor',
  user_id: 'this user',
};

/** What a decision's identity can be blocked on: the preset's immutable ids, the subject, the source identity. */
function revokeTargets(config: Config, r: Record<string, unknown>): RevokeTarget[] {
  if (r.event !== 'exchange' || typeof r.issuer !== 'string' || !config.issuers.has(r.issuer)) return [];
  const claims = (r.claims ?? {}) as Record<string, unknown>;
  const scalar = (v: unknown): v is string | number | boolean => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
  const preset = config.issuers.get(r.issuer)!.preset;
  const out: RevokeTarget[] = [];
  for (const name of [...(preset?.immutableClaims ?? []).filter((c) => c !== 'sub'), 'sub']) {
    const v = claims[name] ?? (name === 'sub' ? r.subject : undefined);
    if (!scalar(v)) continue;
    out.push({ key: `claim:${name}`, label: `${name === 'sub' ? 'this subject' : (TARGET_LABELS[name] ?? name)} (${name} = ${String(v)})`, match: { issuer: r.issuer, [name]: String(v) } });
  }
  // Revocations match source identities as globs: a value holding * or ? would match more than itself.
  if (typeof r.source_identity === 'string' && !/[*?]/.test(r.source_identity)) {
    out.push({ key: 'source_identity', label: `this source identity (${r.source_identity})`, match: { issuer: r.issuer, source_identity: r.source_identity } });
  }
  return out;
}

function revocationInput(r: Record<string, unknown>, target: string, duration: string, reason: string) {
  const seconds = { '1h': 3600, '24h': 86_400, '7d': 7 * 86_400, '30d': 30 * 86_400 }[duration];
  if (seconds === undefined) throw new BrokerError('ERR_BAD_REQUEST', { message: 'pick a duration' });
  const claims = (r.claims ?? {}) as Record<string, unknown>;
  if (target.startsWith('claim:')) {
    const name = target.slice('claim:'.length);
    const value = claims[name] ?? (name === 'sub' ? r.subject : undefined);
    return { issuer: r.issuer, claims: { [name]: value }, reason, expires_in_seconds: seconds };
  }
  if (target === 'source_identity') return { issuer: r.issuer, source_identity: r.source_identity, reason, expires_in_seconds: seconds };
  throw new BrokerError('ERR_BAD_REQUEST', { message: 'pick what to block' });
}

const ACCOUNT = (arn: string) => arn.split(':')[4] ?? '?';

function runningWarnings(config: Config): Problem[] {
  return compileConfig(config.raw).warnings;
}

const DONE: Record<string, string> = {
  created: 'Revocation created: the next exchange that matches it is refused (403 ERR_REVOKED) on every replica within about one poll.',
  lifted: 'Revocation lifted.',
  sessions: 'Older sessions revoked: credentials of this role issued before now no longer work.',
};

export function consoleRoutes(router: express.Router, deps: Deps): void {
  const now = () => deps.now();
  const auditInStore = () => deps.config().audit.sink === 'store';

  async function findRecord(seqText: string) {
    if (!/^\d{1,15}$/.test(seqText)) throw new BrokerError('ERR_NOT_FOUND');
    const seq = Number(seqText);
    const [entry] = await deps.store.scanAudit(seq - 1, 1);
    if (!entry || entry.seq !== seq) throw new BrokerError('ERR_NOT_FOUND');
    return entry;
  }

  // --- overview

  router.get(
    '/',
    h(async (req, res) => {
      const t = now();
      const config = deps.config();
      if (auditInStore()) await within(deps.chain.refresh(), 1500);
      const day = await deps.store.summarizeAudit({ since: new Date(Math.floor(t.getTime() / 60_000) * 60_000 - 1439 * 60_000), until: new Date(t.getTime() + 60_000), bucketMs: 60_000, top: 10 });
      const accounts = new Map<string, string[]>();
      for (const role of config.policy.roles.values()) accounts.set(ACCOUNT(role.arn), [...(accounts.get(ACCOUNT(role.arn)) ?? []), role.name]);
      page(
        res,
        OverviewPage({
          ctx: cx(req).ctx,
          data: {
            auditInStore: auditInStore(),
            now: t,
            day,
            circuits: [...accounts].map(([account, roles]) => ({ account, roles, open: deps.stsCircuitOpen(account) })),
            keys: deps.issuerKeys(),
            chain: deps.chain.current(),
          },
        }),
      );
    }),
  );

  router.post(
    '/audit/verify',
    h(async (_req, res) => {
      await within(deps.chain.refresh(true), 10_000);
      res.redirect(303, '/console/#chain');
    }),
  );

  // --- decisions

  router.get(
    '/decisions',
    h(async (req, res) => {
      const config = deps.config();
      const { filters, problems } = parseFilters(req.query as Record<string, unknown>);
      let records: Awaited<ReturnType<typeof deps.store.searchAudit>> = [];
      let count = 0;
      let newer: number | undefined;
      let older: number | undefined;
      const cap = 10_000;
      if (problems.length === 0) {
        const search = toSearch(filters, now());
        records = await deps.store.searchAudit(search);
        const { beforeSeq: _b, afterSeq: _a, ...unpaged } = search;
        count = await deps.store.countAudit(unpaged, cap);
        if (records.length > 0) {
          const [first, last] = [records[0]!.seq, records.at(-1)!.seq];
          if ((await deps.store.searchAudit({ ...unpaged, afterSeq: first, limit: 1 })).length > 0) newer = first;
          if ((await deps.store.searchAudit({ ...unpaged, beforeSeq: last, limit: 1 })).length > 0) older = last;
        }
      }
      page(
        res,
        DecisionsPage({
          ctx: cx(req).ctx,
          data: { filters, problems, records, count, countCap: cap, newer, older, roles: [...config.policy.roles.keys()], issuers: [...config.issuers.keys()], auditInStore: auditInStore() },
        }),
      );
    }),
  );

  router.get(
    '/decisions/:seq',
    h(async (req, res) => {
      const entry = await findRecord(String(req.params.seq));
      const config = deps.config();
      const r = entry.record;
      const detail = (r.detail ?? {}) as { rules?: unknown };
      const data: DecisionData = { entry, recorded: Array.isArray(detail.rules) ? (detail.rules as DecisionData['recorded']) : undefined, current: undefined, targets: revokeTargets(config, r) };
      if (r.event === 'exchange' && typeof r.issuer === 'string' && config.issuers.has(r.issuer) && typeof r.role === 'string' && r.claims && typeof r.claims === 'object') {
        const e = explain(config.policy, { issuer: r.issuer, role: r.role, claims: r.claims as Record<string, unknown>, requestedDuration: undefined, tokenHash: '0'.repeat(64), roleChaining: config.aws.role_chaining === 'always', now: now() });
        data.current = { effect: e.decision.effect, ...(e.decision.effect === 'deny' ? { reason: e.decision.reason } : { binding: e.decision.binding }), deny: e.deny, allow: e.allow };
      }
      page(res, DecisionPage({ ctx: cx(req).ctx, data }));
    }),
  );

  const revokeConfirm = async (req: Request, res: Response, values: { target: string; duration: string }, problems: string[] = []) => {
    const entry = await findRecord(String(req.params.seq));
    const target = revokeTargets(deps.config(), entry.record).find((t) => t.key === values.target);
    if (!target) throw new BrokerError('ERR_BAD_REQUEST', { message: 'this decision cannot be blocked that way' });
    const duration = DURATIONS.find(([v]) => v === values.duration);
    if (!duration) throw new BrokerError('ERR_BAD_REQUEST', { message: 'pick a duration' });
    page(
      res,
      ConfirmPage({
        ctx: cx(req).ctx,
        title: 'Block this identity?',
        action: `/console/decisions/${entry.seq}/revoke`,
        facts: [...Object.entries(target.match), ['for', duration[1]], ['from decision', String(entry.seq)]],
        warning: `Every exchange that matches — on every replica, within about a second — will be refused with 403 ERR_REVOKED for ${duration[1]}. Credentials already issued stay valid until they expire: revoke the role's older sessions for those.`,
        hidden: { target: target.key, duration: duration[0] },
        reason: true,
        confirmLabel: 'Revoke',
        cancel: `/console/decisions/${entry.seq}`,
        problems,
      }),
      problems.length ? 400 : 200,
    );
  };

  router.get(
    '/decisions/:seq/revoke',
    operator,
    h((req, res) => revokeConfirm(req, res, { target: String(req.query.target ?? ''), duration: String(req.query.duration ?? '24h') })),
  );

  router.post(
    '/decisions/:seq/revoke',
    operator,
    h(async (req, res) => {
      const reason = field(req, 'reason').trim();
      const values = { target: field(req, 'target'), duration: field(req, 'duration') };
      if (reason.length < 3) return revokeConfirm(req, res, values, ['Give a reason (at least 3 characters): it is recorded with the revocation.']);
      const entry = await findRecord(String(req.params.seq));
      if (!revokeTargets(deps.config(), entry.record).some((t) => t.key === values.target)) throw new BrokerError('ERR_BAD_REQUEST', { message: 'this decision cannot be blocked that way' });
      const c = cx(req);
      const revocation = buildRevocation(revocationInput(entry.record, values.target, values.duration, reason), deps.config(), `${c.session.person.id} (console)`, now());
      await deps.store.addRevocation(revocation);
      await c.audit('admin.revoke', { revocation, from_decision: entry.seq });
      res.redirect(303, `/console/revocations?done=created&id=${encodeURIComponent(revocation.id)}`);
    }),
  );

  // --- revocations

  router.get(
    '/revocations',
    h(async (req, res) => {
      const config = deps.config();
      page(
        res,
        RevocationsPage({
          ctx: cx(req).ctx,
          revocations: await deps.store.listRevocations(now()),
          roles: [...config.policy.roles.values()].map((r) => ({ name: r.name, arn: r.arn })),
          created: typeof req.query.id === 'string' ? req.query.id : undefined,
          message: typeof req.query.done === 'string' ? DONE[req.query.done] : undefined,
        }),
      );
    }),
  );

  const findRevocation = async (id: string) => {
    const r = (await deps.store.listRevocations(now(), { includeExpired: true })).find((x) => x.id === id);
    if (!r) throw new BrokerError('ERR_NOT_FOUND');
    return r;
  };

  router.get(
    '/revocations/:id/lift',
    operator,
    h(async (req, res) => {
      const r = await findRevocation(String(req.params.id));
      page(
        res,
        ConfirmPage({
          ctx: cx(req).ctx,
          title: 'Lift this revocation?',
          action: `/console/revocations/${encodeURIComponent(r.id)}/lift`,
          facts: [
            ['issuer', r.issuer ?? 'every issuer'],
            ...Object.entries(r.claims ?? {}).map(([k, v]): [string, string] => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
            ...(r.source_identity ? [['source identity', r.source_identity] as [string, string]] : []),
            ...(r.session_name ? [['session name', r.session_name] as [string, string]] : []),
            ['reason', r.reason],
            ['by', r.created_by],
            ['until', r.expires_at],
          ],
          warning: 'The identity it blocks can get credentials again at once.',
          hidden: {},
          confirmLabel: 'Lift',
          cancel: '/console/revocations',
        }),
      );
    }),
  );

  router.post(
    '/revocations/:id/lift',
    operator,
    h(async (req, res) => {
      const id = String(req.params.id);
      if (!(await deps.store.removeRevocation(id))) throw new BrokerError('ERR_NOT_FOUND');
      await cx(req).audit('admin.unrevoke', { revocation_id: id });
      res.redirect(303, '/console/revocations?done=lifted');
    }),
  );

  const roleOf = (name: string) => {
    const role = deps.config().policy.roles.get(name);
    if (!role) throw new BrokerError('ERR_NOT_FOUND');
    return role;
  };

  const sessionsConfirm = (req: Request, res: Response, problems: string[] = []) => {
    const role = roleOf(String(req.params.name));
    page(
      res,
      ConfirmPage({
        ctx: cx(req).ctx,
        title: `Revoke the older sessions of ${role.name}?`,
        action: `/console/roles/${encodeURIComponent(role.name)}/revoke-sessions`,
        facts: [
          ['role', role.name],
          ['ARN', role.arn],
        ],
        warning:
          'Attaches AWSRevokeOlderSessions to the role: every session of this role issued before now stops working at once, including jobs running now. Jobs that exchange again afterwards are unaffected.',
        hidden: {},
        reason: true,
        confirmLabel: 'Revoke older sessions',
        cancel: '/console/revocations',
        problems,
      }),
      problems.length ? 400 : 200,
    );
  };

  router.get('/roles/:name/revoke-sessions', operator, h((req, res) => sessionsConfirm(req, res)));

  router.post(
    '/roles/:name/revoke-sessions',
    operator,
    h(async (req, res) => {
      const role = roleOf(String(req.params.name));
      const reason = field(req, 'reason').trim();
      if (reason.length < 3) return sessionsConfirm(req, res, ['Give a reason (at least 3 characters): it is recorded in the audit trail.']);
      const result = await deps.revokeSessions(role.arn, now());
      await cx(req).audit('admin.revoke_sessions', { role: role.name, role_arn: role.arn, before: result.before, reason });
      res.redirect(303, '/console/revocations?done=sessions');
    }),
  );

  // --- static keys

  router.get(
    '/keys',
    h(async (req, res) => {
      const data: KeysData = { configured: deps.keys !== undefined, error: undefined, users: [], problems: [], unmanaged: [], unmanagedError: undefined, deliveries: [] };
      if (deps.keys) {
        try {
          const inv = await deps.keys.inventory();
          data.users = inv.users;
          data.problems = inv.problems;
        } catch (err) {
          data.error = errorText(err);
        }
        try {
          data.unmanaged = await deps.keys.unmanaged(200);
        } catch (err) {
          data.unmanagedError = errorText(err);
        }
        // A push or a re-push that a sink confirmed (or that failed); intents are not deliveries.
        const pushes = [...(await deps.store.searchAudit({ event: 'rotation.push', limit: 1000 })), ...(await deps.store.searchAudit({ event: 'rotation.repush', limit: 1000 }))]
          .filter(({ record: r }) => r.outcome === 'ok' || r.outcome === 'failed')
          .sort((a, b) => b.seq - a.seq);
        data.deliveries = pushes.map(({ record: r }): Delivery => ({ user: String(r.user ?? ''), sink: String(r.sink ?? ''), outcome: String(r.outcome ?? ''), time: String(r.time ?? ''), code: typeof r.code === 'string' ? r.code : undefined }));
      }
      page(res, KeysPage({ ctx: cx(req).ctx, data }));
    }),
  );

  const keysOrFail = () => {
    if (!deps.keys) throw new BrokerError('ERR_NOT_FOUND', { message: 'rotation is not configured' });
    return deps.keys;
  };

  router.get(
    '/keys/:user/rotate',
    operator,
    h(async (req, res) => {
      keysOrFail();
      const user = String(req.params.user);
      const dry = req.query.mode !== 'rotate';
      page(
        res,
        ConfirmPage({
          ctx: cx(req).ctx,
          title: dry ? `Dry run for ${user}?` : `Rotate the key of ${user} now?`,
          action: `/console/keys/${encodeURIComponent(user)}/rotate`,
          facts: [
            ['user', user],
            ['what', dry ? 'plan the next rotation and check every sink; nothing is changed' : 'rotate now, even if not due: new key, delivered to every sink, verified, old key deactivated'],
          ],
          warning: dry ? 'Reads IAM and the rotation state, and asks each sink whether it can be written.' : 'Creates a new access key and pushes it to every sink of this user; the old key is deactivated once every sink holds the new one.',
          hidden: { mode: dry ? 'dry-run' : 'rotate' },
          confirmLabel: dry ? 'Run the dry run' : 'Rotate now',
          cancel: '/console/keys',
        }),
      );
    }),
  );

  router.post(
    '/keys/:user/rotate',
    operator,
    h(async (req, res) => {
      const keys = keysOrFail();
      const user = String(req.params.user);
      const c = cx(req);
      if (field(req, 'mode') === 'rotate') {
        const report = await keys.rotate(user);
        await c.audit('admin.rotate', { users: [user], leader: report.leader, results: report.users.map((u) => ({ user: u.userName, outcome: u.outcome })) });
        return page(res, RotationResultPage({ ctx: c.ctx, user, report }), report.leader ? 200 : 409);
      }
      const plan = await keys.plan(user);
      await c.audit('admin.rotate_dry_run', { users: [user], actions: plan.users.map((u) => ({ user: u.userName, action: u.action })) });
      page(res, RotationResultPage({ ctx: c.ctx, user, plan }));
    }),
  );

  // --- policy

  const policyPage = (req: Request, res: Response, form: ExplainForm, result?: ExplainResult, problems: string[] = []) => {
    const config = deps.config();
    page(
      res,
      PolicyPage({ ctx: cx(req).ctx, policy: config.policy, issuers: [...config.issuers.keys()], warnings: runningWarnings(config).map(formatProblem), form, result, problems }),
      problems.length ? 400 : 200,
    );
  };

  router.get(
    '/policy',
    h((req, res) => policyPage(req, res, { claims: '', role: String(req.query.role ?? ''), issuer: '' })),
  );

  router.post(
    '/policy/explain',
    h((req, res) => {
      const config = deps.config();
      const form: ExplainForm = { claims: field(req, 'claims'), role: field(req, 'role'), issuer: field(req, 'issuer') };
      const input = form.claims.trim();
      let claims: Record<string, unknown>;
      try {
        const data: unknown = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(input) ? decodeJwt(input) : parseYaml(input);
        if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new Error('expected an object of claims');
        claims = data as Record<string, unknown>;
      } catch (err) {
        return policyPage(req, res, { ...form, claims: /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\./.test(input) ? '' : form.claims }, undefined, [`The claims cannot be read: ${errorText(err).split('\n')[0]}`]);
      }
      // A JWT is not echoed back into the page: it may still be valid.
      const shown = { ...form, claims: /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\./.test(input) ? JSON.stringify(claims, null, 2) : form.claims };
      const issuer = form.issuer || [...config.issuers.values()].find((i) => i.url === claims.iss)?.id || (config.issuers.size === 1 ? [...config.issuers.keys()][0] : undefined);
      if (!issuer || !config.issuers.has(issuer)) {
        return policyPage(req, res, shown, undefined, [`Cannot tell the issuer from iss ${JSON.stringify(claims.iss)}: pick one.`]);
      }
      const e = explain(config.policy, { issuer, role: form.role, claims, requestedDuration: undefined, tokenHash: '0'.repeat(64), roleChaining: config.aws.role_chaining === 'always', now: now() });
      const d = e.decision;
      policyPage(req, res, shown, {
        role: form.role,
        issuer,
        decision: d.effect === 'allow' ? { effect: 'allow', binding: d.binding, sessionName: d.sessionName, sourceIdentity: d.sourceIdentity } : { effect: 'deny', reason: d.reason },
        deny: e.deny,
        allow: e.allow,
      });
    }),
  );

  // --- policy change review: the core of `credbroker policy diff`, on the running config, the file on disk, or pasted text

  const diffPage = (req: Request, res: Response, form: DiffForm, result?: Parameters<typeof DiffPage>[0]['result'], problems: string[] = []) =>
    page(res, DiffPage({ ctx: cx(req).ctx, form, configFile: deps.configFile, problems, result }), problems.length ? 400 : 200);

  router.get(
    '/policy/diff',
    h((req, res) => diffPage(req, res, { mode: deps.configFile ? 'file' : 'paste', old: '', new: '' })),
  );

  router.post(
    '/policy/diff',
    h(async (req, res) => {
      const mode = field(req, 'mode');
      const form: DiffForm = { mode: mode === 'file' || mode === 'two' ? mode : 'paste', old: field(req, 'old'), new: field(req, 'new') };
      if (form.mode === 'file' && !deps.configFile) form.mode = 'paste';
      const running = () => {
        const c = deps.config();
        return { policy: c.policy, warnings: runningWarnings(c) };
      };
      const pasted = (text: string, label: string) => {
        if (text.trim() === '') throw new ConfigError([{ path: label, message: 'paste a config (YAML)' }], label);
        const p = parseConfig(text, label);
        return { policy: p.config.policy, warnings: p.warnings };
      };
      try {
        let sides: [{ policy: Config['policy']; warnings: Problem[] }, { policy: Config['policy']; warnings: Problem[] }];
        let labels: { old: string; new: string };
        if (form.mode === 'file') {
          const loaded = await loadConfigFile(deps.configFile!);
          sides = [running(), { policy: loaded.config.policy, warnings: loaded.warnings }];
          labels = { old: 'running config', new: deps.configFile! };
        } else if (form.mode === 'paste') {
          sides = [running(), pasted(form.new, 'NEW')];
          labels = { old: 'running config', new: 'pasted config' };
        } else {
          sides = [pasted(form.old, 'OLD'), pasted(form.new, 'NEW')];
          labels = { old: 'OLD (pasted)', new: 'NEW (pasted)' };
        }
        const diff = diffPolicies(sides[0], sides[1]);
        diffPage(req, res, form, { diff, markdown: diffMarkdown(diff, labels), empty: diffIsEmpty(diff), labels });
      } catch (err) {
        if (err instanceof ConfigError) return diffPage(req, res, form, undefined, err.problems.map((p) => `${err.source}: ${formatProblem(p)}`));
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return diffPage(req, res, form, undefined, ['the config file does not exist any more']);
        throw err;
      }
    }),
  );
}
