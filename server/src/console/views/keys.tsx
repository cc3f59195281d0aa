// Static keys: active key ages as a histogram, the managed users (rotation state, sinks and their
// last delivery, next step), the users no rotation entry manages, and a dry run or a rotation of
// one user (after a confirmation).
import type { InventoryUser, PlannedUser, RunReport } from '../../rotation/run.js';
import type { DiscoveryProblem } from '../../rotation/users.js';
import type { UnmanagedUser } from '../keys.js';
import { Page, Time, ago, text, type ViewContext } from './layout.js';

export const AGE_BUCKETS: Array<[string, number]> = [
  ['< 30 d', 30],
  ['30–60 d', 60],
  ['60–90 d', 90],
  ['90–180 d', 180],
  ['180 d +', Infinity],
];

export function histogram(ageDays: number[]): number[] {
  const counts = AGE_BUCKETS.map(() => 0);
  for (const d of ageDays) counts[AGE_BUCKETS.findIndex(([, max]) => d < max)]!++;
  return counts;
}

export interface Delivery {
  user: string;
  sink: string;
  outcome: string;
  time: string;
  code: string | undefined;
}

export interface KeysData {
  configured: boolean;
  error: string | undefined;
  users: InventoryUser[];
  problems: DiscoveryProblem[];
  unmanaged: UnmanagedUser[];
  unmanagedError: string | undefined;
  deliveries: Delivery[];
}

export function KeysPage(props: { ctx: ViewContext; data: KeysData }) {
  const { ctx, data } = props;
  const operator = ctx.role === 'operator';
  const ages = [
    ...data.users.flatMap((u) => u.keys.filter((k) => k.status === 'Active').map((k) => k.ageSeconds / 86_400)),
    ...data.unmanaged.flatMap((u) => u.keys.filter((k) => k.status === 'Active').map((k) => k.ageSeconds / 86_400)),
  ];
  const counts = histogram(ages);
  const lastDelivery = (user: string, sink: string) => data.deliveries.find((d) => d.user === user && d.sink === sink);
  return (
    <Page title="Static keys" ctx={ctx}>
      {!data.configured && <p class="notice">No rotation: section in the config: no IAM users are managed. See docs/rotation.md.</p>}
      {data.error && (
        <p class="notice error" role="alert">
          Cannot read the key inventory: {data.error}
        </p>
      )}
      <section aria-labelledby="ages">
        <h2 id="ages">Active keys by age</h2>
        <figure class="chart-box">
          <figcaption id="ages-caption">
            {ages.length} active key{ages.length === 1 ? '' : 's'}: {AGE_BUCKETS.map(([label], i) => `${label}: ${counts[i]}`).join(', ')}
          </figcaption>
          <div class="chart small" id="chart-ages" role="img" aria-labelledby="ages-caption" data-chart="histogram" data-labels={JSON.stringify(AGE_BUCKETS.map(([l]) => l))} data-counts={JSON.stringify(counts)} />
        </figure>
      </section>
      <section aria-labelledby="managed">
        <h2 id="managed">Rotated users</h2>
        {data.users.length === 0 ? (
          <p class="muted">None.</p>
        ) : (
          <div class="table-wrap">
            <table class="keys">
              <thead>
                <tr>
                  <th scope="col">user</th>
                  <th scope="col">keys (age)</th>
                  <th scope="col">state</th>
                  <th scope="col">last rotation</th>
                  <th scope="col">next</th>
                  <th scope="col">sinks (last delivery)</th>
                  {operator && <th scope="col">action</th>}
                </tr>
              </thead>
              <tbody>
                {data.users.map((u) => (
                  <tr>
                    <td>{u.userName}</td>
                    <td>
                      <ul class="plain">
                        {u.keys.map((k) => (
                          <li>
                            <span class="mono">{k.accessKeyId}</span> {k.status === 'Active' ? '' : `(${k.status}) `}
                            <strong class="key-age">{ago(k.ageSeconds)}</strong>
                          </li>
                        ))}
                      </ul>
                    </td>
                    <td>
                      {u.phase}
                      {u.errorCode && <span class="state bad"> {u.errorCode}</span>}
                    </td>
                    <td>
                      <Time iso={u.lastCompletedAt} />
                    </td>
                    <td class="wrap">{u.next}</td>
                    <td>
                      <ul class="plain">
                        {u.sinks.map((s) => {
                          const d = lastDelivery(u.userName, s);
                          return (
                            <li>
                              <span class="mono">{s}</span>{' '}
                              {d ? (
                                <span class={d.outcome === 'ok' ? 'state good' : 'state bad'}>
                                  {d.outcome === 'ok' ? 'delivered' : `failed ${d.code ?? ''}`} <Time iso={d.time} />
                                </span>
                              ) : (
                                <span class="muted">no delivery yet</span>
                              )}
                            </li>
                          );
                        })}
                      </ul>
                    </td>
                    {operator && (
                      <td>
                        <a href={`/console/keys/${encodeURIComponent(u.userName)}/rotate?mode=dry-run`}>Dry run…</a>
                        <br />
                        <a href={`/console/keys/${encodeURIComponent(u.userName)}/rotate?mode=rotate`}>Rotate…</a>
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {data.problems.length > 0 && (
          <ul class="notice warn">
            {data.problems.map((p) => (
              <li>
                {p.userName ?? `rotation.users[${p.entryIndex}]`}: {p.code} {p.message}
              </li>
            ))}
          </ul>
        )}
      </section>
      <section aria-labelledby="unmanaged">
        <h2 id="unmanaged">Users with keys and no rotation</h2>
        {data.unmanagedError ? (
          <p class="notice">Cannot list IAM users: {data.unmanagedError}</p>
        ) : data.unmanaged.length === 0 ? (
          <p class="muted">None.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">user</th>
                <th scope="col">keys (age)</th>
              </tr>
            </thead>
            <tbody>
              {data.unmanaged.map((u) => (
                <tr>
                  <td title={u.arn}>{u.userName}</td>
                  <td>
                    {u.keys.map((k) => (
                      <span class="key">
                        <span class="mono">{k.accessKeyId}</span> {k.status === 'Active' ? '' : `(${k.status}) `}
                        <strong class="key-age">{ago(k.ageSeconds)}</strong>{' '}
                      </span>
                    ))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </Page>
  );
}

export function RotationResultPage(props: { ctx: ViewContext; user: string; plan?: { users: PlannedUser[]; problems: DiscoveryProblem[] }; report?: RunReport }) {
  const { ctx, plan, report } = props;
  return (
    <Page title={plan ? `Dry run: ${props.user}` : `Rotation: ${props.user}`} ctx={ctx}>
      {plan && (
        <>
          <p class="notice">Dry run: nothing was changed.</p>
          {plan.users.map((u) => (
            <section>
              <h2>{u.userName}</h2>
              <p>
                Phase <strong>{u.phase}</strong>, next action <strong>{u.action}</strong>.
              </p>
              <ol>
                {u.steps.map((s) => (
                  <li>{s}</li>
                ))}
              </ol>
              {u.sinkProblems.length > 0 && (
                <ul class="notice error">
                  {u.sinkProblems.map((p) => (
                    <li>
                      {p.sink}: {p.code} {p.message}
                    </li>
                  ))}
                </ul>
              )}
            </section>
          ))}
          {plan.problems.map((p) => (
            <p class="notice error">
              {p.code}: {p.message}
            </p>
          ))}
        </>
      )}
      {report && (
        <>
          {!report.leader && <p class="notice error">Another replica holds the rotation lock: nothing was done. Try again later.</p>}
          {report.users.map((u) => (
            <section>
              <h2>{u.userName}</h2>
              <p>
                Outcome <strong class={u.outcome === 'failed' || u.outcome === 'error' ? 'state bad' : 'state good'}>{u.outcome}</strong>, phase {u.phase}
                {u.code ? ` — ${u.code}` : ''}
              </p>
              {u.message && <p>{u.message}</p>}
              <ol>
                {u.steps.map((s) => (
                  <li>{text(s)}</li>
                ))}
              </ol>
            </section>
          ))}
          {report.problems.map((p) => (
            <p class="notice error">
              {p.code}: {p.message}
            </p>
          ))}
        </>
      )}
      <p>
        <a href="/console/keys">← static keys</a>
      </p>
    </Page>
  );
}
