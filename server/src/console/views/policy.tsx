// Policy, read-only: roles, bindings and deny rules as compiled, the lint warnings, and an explain
// form (claims as JSON/YAML, or a JWT, decoded and not verified). Policy change review: what a
// change does to access, computed by the same core as `credbroker policy diff`.
import { describeCondition } from '../../core/conditions.js';
import type { CompiledPolicy, CompiledRule, RuleVerdict } from '../../core/policy.js';
import type { PolicyDiff, AccessChange, DenyChange } from '../../core/policy-diff.js';
import { Verdicts } from './decisions.js';
import { Csrf, Page, Problems, text, type ViewContext } from './layout.js';

function Rule(props: { rule: CompiledRule }) {
  const r = props.rule;
  return (
    <li>
      <code>{r.path}</code> {r.issuer ? <span class="muted">issuer {r.issuer}</span> : <span class="muted">every issuer</span>}
      <ul class="conditions">
        {r.conditions.map((c) => (
          <li>
            <code>{c.claim}</code>: {describeCondition(c.condition)}
          </li>
        ))}
      </ul>
    </li>
  );
}

export interface ExplainResult {
  role: string;
  issuer: string;
  decision: { effect: string; reason?: string; binding?: string; sessionName?: string; sourceIdentity?: string };
  deny: RuleVerdict[];
  allow: RuleVerdict[];
}

export interface ExplainForm {
  claims: string;
  role: string;
  issuer: string;
}

export function PolicyPage(props: {
  ctx: ViewContext;
  policy: CompiledPolicy;
  issuers: string[];
  warnings: string[];
  form: ExplainForm;
  result: ExplainResult | undefined;
  problems: string[];
}) {
  const { ctx, policy, form } = props;
  const roles = [...policy.roles.values()];
  return (
    <Page title="Policy" ctx={ctx}>
      <p class="muted">Read-only: the policy lives in git, and changes through the config file. Review a change under Policy change review.</p>
      <section aria-labelledby="explain">
        <h2 id="explain">Explain a decision</h2>
        <form method="post" action="/console/policy/explain" class="explain">
          <Csrf ctx={ctx} />
          <label class="block">
            Claims (JSON or YAML) or a JWT — a JWT is decoded, not verified, and never recorded
            <textarea name="claims" rows={10} cols={80} required spellcheck={false}>
              {form.claims}
            </textarea>
          </label>
          <label>
            Role{' '}
            <select name="role">
              {roles.map((r) => (
                <option value={r.name} selected={form.role === r.name}>
                  {r.name}
                </option>
              ))}
            </select>
          </label>{' '}
          <label>
            Issuer{' '}
            <select name="issuer">
              <option value="">from the claims' iss</option>
              {props.issuers.map((i) => (
                <option value={i} selected={form.issuer === i}>
                  {i}
                </option>
              ))}
            </select>
          </label>{' '}
          <button type="submit" class="primary">
            Explain
          </button>
        </form>
        <Problems items={props.problems} />
        {props.result && (
          <div class="explain-result" aria-live="polite">
            <p class={props.result.decision.effect === 'allow' ? 'verdict allow' : 'verdict deny'}>
              {props.result.decision.effect === 'allow'
                ? `ALLOW by ${props.result.decision.binding}: session ${props.result.decision.sessionName}, source identity ${props.result.decision.sourceIdentity}`
                : `DENY ${props.result.decision.reason}`}{' '}
              <span class="muted">
                (role {props.result.role}, issuer {props.result.issuer})
              </span>
            </p>
            <Verdicts title="Deny rules" verdicts={props.result.deny} />
            <Verdicts title="Allow bindings" verdicts={props.result.allow} />
          </div>
        )}
      </section>
      <section aria-labelledby="warnings">
        <h2 id="warnings">Lint warnings</h2>
        {props.warnings.length === 0 ? (
          <p class="muted">None.</p>
        ) : (
          <ul class="warnings">
            {props.warnings.map((w) => (
              <li>{w}</li>
            ))}
          </ul>
        )}
      </section>
      {policy.globalDeny.length > 0 && (
        <section aria-labelledby="global-deny">
          <h2 id="global-deny">Deny rules for every role</h2>
          <ul class="rules">
            {policy.globalDeny.map((r) => (
              <Rule rule={r} />
            ))}
          </ul>
        </section>
      )}
      <section aria-labelledby="roles">
        <h2 id="roles">Roles</h2>
        {roles.map((role) => (
          <article class="role" aria-labelledby={`role-${role.name}`}>
            <h3 id={`role-${role.name}`}>{role.name}</h3>
            <p class="mono wrap">{role.arn}</p>
            <p class="muted">
              max {role.maxDuration} s{role.region ? `, region ${role.region}` : ''}
            </p>
            <h4>Allow</h4>
            <ul class="rules">
              {role.bindings.map((b) => (
                <Rule rule={b} />
              ))}
            </ul>
            {role.deny.length > 0 && (
              <>
                <h4>Deny</h4>
                <ul class="rules">
                  {role.deny.map((r) => (
                    <Rule rule={r} />
                  ))}
                </ul>
              </>
            )}
          </article>
        ))}
      </section>
    </Page>
  );
}

export interface DiffForm {
  mode: 'file' | 'paste' | 'two';
  old: string;
  new: string;
}

const who = (c: Record<string, string>) =>
  Object.entries(c)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ') || '(any token)';

/** One table of the diff: access gained or lost (by role and issuer), or deny rules added or removed. */
function ChangeTable(props: { title: string; items: Array<AccessChange | DenyChange>; deny?: boolean }) {
  if (props.items.length === 0) return null;
  const head = props.deny ? ['applies to role', 'issuer', 'matches', 'rule'] : ['role', 'issuer', 'who (every condition must hold)', 'binding'];
  return (
    <section>
      <h3>
        {props.title} ({props.items.length})
      </h3>
      <table>
        <thead>
          <tr>
            {head.map((h) => (
              <th scope="col">{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.items.map((a) => (
            <tr>
              <td>{a.role === '*' ? 'every role' : a.role}</td>
              <td>{a.issuer ?? 'every issuer'}</td>
              <td class="wrap">{who(a.conditions)}</td>
              <td class="mono">{a.path}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function DiffPage(props: {
  ctx: ViewContext;
  form: DiffForm;
  configFile: string | undefined;
  problems: string[];
  result: { diff: PolicyDiff; markdown: string; empty: boolean; labels: { old: string; new: string } } | undefined;
}) {
  const { ctx, form, result } = props;
  return (
    <Page title="Policy change review" ctx={ctx}>
      <p>
        What a change to the config does to access: which role, issuer and identity pattern gain or lose access, which deny rules change reach, and which lint warnings
        appear or go — from the compiled policies, as <code>credbroker policy diff</code> computes it for pull requests. Nothing is applied.
      </p>
      <form method="post" action="/console/policy/diff" class="diff-form">
        <Csrf ctx={ctx} />
        <fieldset>
          <legend>Compare</legend>
          {props.configFile && (
            <label class="choice">
              <input type="radio" name="mode" value="file" checked={form.mode === 'file'} /> the running config with the config file on disk ({props.configFile})
            </label>
          )}
          <label class="choice">
            <input type="radio" name="mode" value="paste" checked={form.mode === 'paste'} /> the running config with a config pasted below (NEW)
          </label>
          <label class="choice">
            <input type="radio" name="mode" value="two" checked={form.mode === 'two'} /> two pasted configs (OLD and NEW)
          </label>
        </fieldset>
        <div class="columns">
          <label class="block">
            OLD (only for two pasted configs)
            <textarea name="old" rows={12} cols={60} spellcheck={false}>
              {form.old}
            </textarea>
          </label>
          <label class="block">
            NEW
            <textarea name="new" rows={12} cols={60} spellcheck={false}>
              {form.new}
            </textarea>
          </label>
        </div>
        <p class="muted">Pasted text is read as YAML and never expanded: a $&#123;NAME&#125; placeholder stays as it is.</p>
        <button type="submit" class="primary">
          Compare
        </button>
      </form>
      <Problems items={props.problems} />
      {result && (
        <section aria-labelledby="diff-result" class="diff-result">
          <h2 id="diff-result">
            {result.labels.old} → {result.labels.new}
          </h2>
          {result.empty ? (
            <p class="verdict allow">No change to who may assume which role, to deny rules, roles or lint warnings.</p>
          ) : (
            <>
              <ChangeTable title="Access gained" items={result.diff.gained} />
              <ChangeTable title="Access lost" items={result.diff.lost} />
              {result.diff.sessions.length > 0 && (
                <section>
                  <h3>Sessions changed ({result.diff.sessions.length})</h3>
                  <ul>
                    {result.diff.sessions.map((s) => (
                      <li>
                        {s.role} / {s.issuer} / {who(s.conditions)}:{' '}
                        {Object.entries(s.fields)
                          .map(([k, [a, b]]) => `${k} ${text(a) || '—'} → ${text(b) || '—'}`)
                          .join('; ')}
                      </li>
                    ))}
                  </ul>
                </section>
              )}
              <ChangeTable deny title="Deny rules added (narrow access)" items={result.diff.denyAdded} />
              <ChangeTable deny title="Deny rules removed (may restore access)" items={result.diff.denyRemoved} />
              {result.diff.roles.length > 0 && (
                <section>
                  <h3>Roles ({result.diff.roles.length})</h3>
                  <ul>
                    {result.diff.roles.map((r) => (
                      <li>
                        {r.change} {r.role}
                        {r.fields &&
                          `: ${Object.entries(r.fields)
                            .map(([k, [a, b]]) => `${k} ${text(a) || '—'} → ${text(b) || '—'}`)
                            .join('; ')}`}
                      </li>
                    ))}
                  </ul>
                </section>
              )}
              {result.diff.warningsAdded.length + result.diff.warningsRemoved.length > 0 && (
                <section>
                  <h3>Lint warnings</h3>
                  <ul>
                    {result.diff.warningsAdded.map((w) => (
                      <li>new: {w}</li>
                    ))}
                    {result.diff.warningsRemoved.map((w) => (
                      <li>gone: {w}</li>
                    ))}
                  </ul>
                </section>
              )}
            </>
          )}
          <label class="block">
            Markdown for the pull request
            <textarea readOnly rows={10} cols={80} class="mono">
              {result.markdown}
            </textarea>
          </label>
        </section>
      )}
    </Page>
  );
}
