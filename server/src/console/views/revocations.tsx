// Revocations: the active ones (who, why, when, until when), lifting one, revoking a role's older
// AWS sessions; and the confirmation page every action passes through.
import type { ComponentChildren } from 'preact';
import type { Revocation } from '../../core/revocation.js';
import { Csrf, Page, Time, text, type ViewContext } from './layout.js';

const matchOf = (r: Revocation): string =>
  [
    r.issuer ? `issuer ${r.issuer}` : 'every issuer',
    ...Object.entries(r.claims ?? {}).map(([k, v]) => `${k} = ${text(v)}`),
    ...(r.session_name ? [`session name ${r.session_name}`] : []),
    ...(r.source_identity ? [`source identity ${r.source_identity}`] : []),
  ].join(', ');

export function RevocationsPage(props: { ctx: ViewContext; revocations: Revocation[]; roles: Array<{ name: string; arn: string }>; created: string | undefined; message: string | undefined }) {
  const { ctx } = props;
  const operator = ctx.role === 'operator';
  return (
    <Page title="Revocations" ctx={ctx}>
      {props.message && (
        <p class="notice ok" role="status">
          {props.message}
        </p>
      )}
      <section aria-labelledby="active">
        <h2 id="active">Active revocations</h2>
        {props.revocations.length === 0 ? (
          <p class="muted">None. Block an identity from one of its decisions.</p>
        ) : (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">blocks</th>
                  <th scope="col">reason</th>
                  <th scope="col">by</th>
                  <th scope="col">since</th>
                  <th scope="col">until</th>
                  {operator && <th scope="col">action</th>}
                </tr>
              </thead>
              <tbody>
                {props.revocations.map((r) => (
                  <tr class={r.id === props.created ? 'highlight' : undefined} id={`revocation-${r.id}`}>
                    <td class="wrap">{matchOf(r)}</td>
                    <td class="wrap">{r.reason}</td>
                    <td>{r.created_by}</td>
                    <td>
                      <Time iso={r.created_at} />
                    </td>
                    <td>
                      <Time iso={r.expires_at} />
                    </td>
                    {operator && (
                      <td>
                        <a href={`/console/revocations/${encodeURIComponent(r.id)}/lift`}>Lift…</a>
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <section aria-labelledby="sessions">
        <h2 id="sessions">Sessions already issued</h2>
        <p>
          A revocation stops new exchanges. Credentials already issued stay valid until they expire, unless the role's older sessions are revoked (AWSRevokeOlderSessions: every
          session of the role issued before now stops working, the jobs running now included).
        </p>
        <table>
          <thead>
            <tr>
              <th scope="col">role</th>
              <th scope="col">ARN</th>
              {operator && <th scope="col">action</th>}
            </tr>
          </thead>
          <tbody>
            {props.roles.map((r) => (
              <tr>
                <td>{r.name}</td>
                <td class="mono wrap">{r.arn}</td>
                {operator && (
                  <td>
                    <a href={`/console/roles/${encodeURIComponent(r.name)}/revoke-sessions`}>Revoke older sessions…</a>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </Page>
  );
}

/** A confirmation step: what will happen, and a form that does it. */
export function ConfirmPage(props: {
  ctx: ViewContext;
  title: string;
  action: string;
  facts: Array<[string, string]>;
  warning: string;
  hidden: Record<string, string>;
  reason?: boolean;
  confirmLabel: string;
  cancel: string;
  problems?: string[];
  children?: ComponentChildren;
}) {
  const { ctx } = props;
  return (
    <Page title={props.title} ctx={ctx}>
      <dl class="facts">
        {props.facts.map(([k, v]) => (
          <>
            <dt>{k}</dt>
            <dd class="wrap">{v}</dd>
          </>
        ))}
      </dl>
      <p class="notice warn">{props.warning}</p>
      {props.problems && props.problems.length > 0 && (
        <ul class="notice error" role="alert">
          {props.problems.map((p) => (
            <li>{p}</li>
          ))}
        </ul>
      )}
      {props.children}
      <form method="post" action={props.action} class="confirm">
        <Csrf ctx={ctx} />
        {Object.entries(props.hidden).map(([k, v]) => (
          <input type="hidden" name={k} value={v} />
        ))}
        {props.reason && (
          <label class="block">
            Reason (required, recorded in the audit trail)
            <textarea name="reason" required minLength={3} maxLength={500} rows={3} cols={60} />
          </label>
        )}
        <button type="submit" class="danger">
          {props.confirmLabel}
        </button>{' '}
        <a href={props.cancel}>Cancel</a>
      </form>
    </Page>
  );
}
