// Decisions: the searchable table of audit records (filters in the URL), and one decision's page
// with its verdicts, claims, the AWS names to search in CloudTrail, and — for operators — the
// start of a revocation.
import type { ChainedRecord } from '../../core/audit-chain.js';
import type { ConditionResult } from '../../core/conditions.js';
import type { RuleVerdict } from '../../core/policy.js';
import { EVENT_KINDS, PAGE_SIZES, filtersQuery, type DecisionFilters } from '../filters.js';
import { Outcome, Page, Problems, Time, text, type ViewContext } from './layout.js';

/** Claims that name the repository or project, per provider (the first present is shown). */
const REPOSITORY_CLAIMS = ['repository', 'project_path', 'oidc.circleci.com/vcs-origin', 'pipeline_slug', 'repositoryUuid', 'terraform_workspace_name', 'job_name'];
const REF_CLAIMS = ['ref', 'oidc.circleci.com/vcs-ref', 'build_branch', 'branchName', 'sourceRef'];

const claimsOf = (r: Record<string, unknown>): Record<string, unknown> => (r.claims && typeof r.claims === 'object' ? (r.claims as Record<string, unknown>) : {});
const firstClaim = (r: Record<string, unknown>, names: string[]) => {
  const c = claimsOf(r);
  for (const n of names) if (c[n] !== undefined) return text(c[n]);
  return undefined;
};

export interface DecisionsData {
  filters: DecisionFilters;
  problems: string[];
  records: ChainedRecord[];
  count: number;
  countCap: number;
  newer: number | undefined;
  older: number | undefined;
  roles: string[];
  issuers: string[];
  auditInStore: boolean;
}

export function DecisionsPage(props: { ctx: ViewContext; data: DecisionsData }) {
  const { data, ctx } = props;
  const f = data.filters;
  const claimInputs = [...f.claims.map((c) => `${c.name}=${c.value}`), ''];
  return (
    <Page title="Decisions" ctx={ctx}>
      <form method="get" action="/console/decisions" class="filters" role="search" aria-label="Filter decisions">
        <label>
          Outcome
          <select name="outcome">
            <option value="">any</option>
            {(['allow', 'deny', 'error'] as const).map((o) => (
              <option value={o} selected={f.outcome === o}>
                {o === 'allow' ? 'issued' : o === 'deny' ? 'denied' : 'failed'}
              </option>
            ))}
          </select>
        </label>
        <label>
          Role
          <input name="role" value={f.role ?? ''} list="roles" size={16} />
        </label>
        <datalist id="roles">
          {data.roles.map((r) => (
            <option value={r} />
          ))}
        </datalist>
        <label>
          Issuer
          <select name="issuer">
            <option value="">any</option>
            {data.issuers.map((i) => (
              <option value={i} selected={f.issuer === i}>
                {i}
              </option>
            ))}
          </select>
        </label>
        {claimInputs.map((c, i) => (
          <label>
            {i === 0 ? 'Claim' : 'and claim'}
            <input name="claim" value={c} placeholder="repository_id=487920697" size={24} />
          </label>
        ))}
        <label>
          Since
          <input name="since" value={f.since ?? ''} placeholder="24h or 2026-01-31T12:00Z" size={14} />
        </label>
        <label>
          Until
          <input name="until" value={f.until ?? ''} placeholder="ISO time" size={14} />
        </label>
        <label>
          Text
          <input name="q" value={f.text ?? ''} type="search" size={16} />
        </label>
        <label>
          Events
          <select name="event">
            {EVENT_KINDS.map((e) => (
              <option value={e} selected={f.event === e}>
                {e === 'exchange' ? 'exchanges' : e === 'all' ? 'all records' : `${e}.*`}
              </option>
            ))}
          </select>
        </label>
        <label>
          Per page
          <select name="size">
            {PAGE_SIZES.map((n) => (
              <option value={String(n)} selected={f.size === n}>
                {n}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" class="primary">
          Search
        </button>{' '}
        <a href="/console/decisions">Clear</a>
      </form>
      <Problems items={data.problems} />
      {!data.auditInStore && <p class="notice">The audit trail is not in the store (audit.sink is not "store"): nothing to search.</p>}
      <p class="result-count" role="status">
        {data.count > data.countCap ? `more than ${data.countCap}` : data.count} matching record{data.count === 1 ? '' : 's'}
        {' · '}
        <a href={`/console/decisions?${filtersQuery(f, { withoutPage: true })}`}>link to this search</a>
      </p>
      <div class="table-wrap">
        <table class="decisions">
          <thead>
            <tr>
              <th scope="col">time</th>
              <th scope="col">outcome</th>
              <th scope="col">role</th>
              <th scope="col">issuer</th>
              <th scope="col">repository / project</th>
              <th scope="col">ref</th>
              <th scope="col">session name</th>
              <th scope="col">source identity</th>
              <th scope="col">request id</th>
            </tr>
          </thead>
          <tbody>
            {data.records.map(({ seq, record: r }) => (
              <tr>
                <td>
                  <a href={`/console/decisions/${seq}`} aria-label={`decision ${seq}`}>
                    <Time iso={text(r.time)} />
                  </a>
                </td>
                <td>{r.event === 'exchange' ? <Outcome decision={r.decision} /> : <span class="event">{text(r.event)}</span>}</td>
                <td>{text(r.role)}</td>
                <td>{text(r.issuer ?? r.unverified_iss)}</td>
                <td class="wrap">{firstClaim(r, REPOSITORY_CLAIMS) ?? text(r.subject ?? r.unverified_sub ?? r.admin ?? r.user)}</td>
                <td class="wrap">{firstClaim(r, REF_CLAIMS) ?? ''}</td>
                <td class="wrap">{text(r.session_name)}</td>
                <td class="wrap">{text(r.source_identity)}</td>
                <td class="mono">{text(r.request_id)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {data.records.length === 0 && <p class="muted">No records match.</p>}
      <nav class="pager" aria-label="Pages">
        {data.newer !== undefined ? <a href={`/console/decisions?${filtersQuery(f, { page: { after: data.newer } })}`}>← newer</a> : <span class="muted">← newer</span>}
        {data.older !== undefined ? <a href={`/console/decisions?${filtersQuery(f, { page: { before: data.older } })}`}>older →</a> : <span class="muted">older →</span>}
      </nav>
    </Page>
  );
}

function Conditions(props: { items: ConditionResult[] }) {
  return (
    <ul class="conditions">
      {props.items.map((c) => (
        <li class={c.matched ? 'ok' : 'failed'}>
          <span class="mark" aria-label={c.matched ? 'holds' : 'fails'}>
            {c.matched ? '✓' : '✗'}
          </span>{' '}
          <code>{c.claim}</code>: expected {c.expected}, got {c.actual}
          {c.mismatch ? ` (${c.mismatch})` : ''}
          {c.asText ? ' (matched as text)' : ''}
        </li>
      ))}
    </ul>
  );
}

export function Verdicts(props: { title: string; verdicts: RuleVerdict[] }) {
  return (
    <div class="verdicts">
      <h3>{props.title}</h3>
      {props.verdicts.length === 0 ? (
        <p class="muted">(none)</p>
      ) : (
        <ol>
          {props.verdicts.map((v) => (
            <li>
              <code>{v.path}</code> <strong class={v.matched ? 'state good' : 'state'}>{v.matched ? 'MATCH' : v.conditions.length === 0 ? 'other issuer' : 'no match'}</strong>
              <Conditions items={v.conditions} />
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}

export interface RevokeTarget {
  /** Form value: claim:<name>, source_identity, session_name. */
  key: string;
  label: string;
  /** What the revocation will match, shown before confirming. */
  match: Record<string, string>;
}

export interface DecisionData {
  entry: ChainedRecord;
  recorded: RuleVerdict[] | undefined;
  current: { effect: string; reason?: string; binding?: string; deny: RuleVerdict[]; allow: RuleVerdict[] } | undefined;
  targets: RevokeTarget[];
}

export const DURATIONS: Array<[string, string]> = [
  ['1h', '1 hour'],
  ['24h', '24 hours'],
  ['7d', '7 days'],
  ['30d', '30 days'],
];

export function DecisionPage(props: { ctx: ViewContext; data: DecisionData }) {
  const { ctx, data } = props;
  const r = data.entry.record;
  const claims = claimsOf(r);
  const detail = r.detail && typeof r.detail === 'object' ? (r.detail as Record<string, unknown>) : undefined;
  const facts: Array<[string, unknown]> = [
    ['time', r.time],
    ['event', r.event],
    ['outcome', r.decision],
    ['code', r.code],
    ['reason', r.reason],
    ['role', r.role],
    ['issuer', r.issuer ?? r.unverified_iss],
    ['subject', r.subject ?? r.unverified_sub],
    ['binding', r.binding],
    ['request id', r.request_id],
    ['client ip', r.client_ip],
    ['admin', r.admin],
  ];
  return (
    <Page title={`Decision ${data.entry.seq}`} ctx={ctx}>
      <p>
        <a href="/console/decisions">← all decisions</a>
      </p>
      <div class="columns">
        <section aria-labelledby="facts">
          <h2 id="facts">What happened</h2>
          <dl class="facts">
            {facts
              .filter(([, v]) => v !== undefined && v !== null)
              .map(([k, v]) => (
                <>
                  <dt>{k}</dt>
                  <dd>{k === 'outcome' ? <Outcome decision={v} /> : text(v)}</dd>
                </>
              ))}
          </dl>
        </section>
        <section aria-labelledby="aws">
          <h2 id="aws">In CloudTrail</h2>
          <dl class="facts">
            <dt>session name</dt>
            <dd class="mono">{text(r.session_name) || '—'}</dd>
            <dt>source identity</dt>
            <dd class="mono">{text(r.source_identity) || '—'}</dd>
            <dt>role ARN</dt>
            <dd class="mono">{text(r.role_arn) || '—'}</dd>
            <dt>assumed role ARN</dt>
            <dd class="mono">{text(r.assumed_role_arn) || '—'}</dd>
            <dt>access key id</dt>
            <dd class="mono">{text(r.access_key_id) || '—'}</dd>
            <dt>expiration</dt>
            <dd>{text(r.expiration) || '—'}</dd>
          </dl>
          <p class="muted">Search CloudTrail for userIdentity.sessionContext.sourceIdentity or the access key id. The console never shows a token or a credential.</p>
        </section>
      </div>
      <section aria-labelledby="verdicts">
        <h2 id="verdicts">Verdict per rule and condition</h2>
        {data.recorded ? (
          <Verdicts title="As recorded at the time" verdicts={data.recorded} />
        ) : (
          <p class="muted">{r.decision === 'allow' ? `Allowed by ${text(r.binding)}.` : 'No rule verdicts were recorded (the token was refused before the policy was evaluated).'}</p>
        )}
        {detail && !data.recorded && (
          <pre class="json" aria-label="detail">
            {JSON.stringify(detail, null, 2)}
          </pre>
        )}
        {data.current && (
          <details open={!data.recorded}>
            <summary>
              Under the policy running now: <strong>{data.current.effect === 'allow' ? `ALLOW by ${data.current.binding}` : `DENY ${data.current.reason}`}</strong>
            </summary>
            <Verdicts title="Deny rules" verdicts={data.current.deny} />
            <Verdicts title="Allow bindings" verdicts={data.current.allow} />
          </details>
        )}
      </section>
      <section aria-labelledby="claims">
        <h2 id="claims">Claims</h2>
        {Object.keys(claims).length === 0 ? (
          <p class="muted">No claims recorded.</p>
        ) : (
          <table class="claims">
            <tbody>
              {Object.entries(claims).map(([k, v]) => (
                <tr>
                  <th scope="row">{k}</th>
                  <td class="wrap mono">{text(v)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      {ctx.role === 'operator' && data.targets.length > 0 && (
        <section aria-labelledby="revoke" class="danger-zone">
          <h2 id="revoke">Block this identity</h2>
          <form method="get" action={`/console/decisions/${data.entry.seq}/revoke`}>
            <fieldset>
              <legend>Block</legend>
              {data.targets.map((t, i) => (
                <label class="choice">
                  <input type="radio" name="target" value={t.key} checked={i === 0} /> {t.label}
                </label>
              ))}
            </fieldset>
            <label>
              for{' '}
              <select name="duration">
                {DURATIONS.map(([v, l]) => (
                  <option value={v} selected={v === '24h'}>
                    {l}
                  </option>
                ))}
              </select>
            </label>{' '}
            <button type="submit" class="danger">
              Revoke…
            </button>
          </form>
        </section>
      )}
    </Page>
  );
}
