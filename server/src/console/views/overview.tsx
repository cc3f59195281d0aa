// The overview: exchanges per minute (last hour, last day), top denial reasons and identities,
// STS circuits, issuer keys, and the audit chain's verification.
import type { AuditSummary } from '../../ops/types.js';
import type { ChainStatus, IssuerKeyStatus } from '../status.js';
import { Csrf, Page, Time, type ViewContext } from './layout.js';

export interface OverviewData {
  auditInStore: boolean;
  now: Date;
  day: AuditSummary;
  circuits: Array<{ account: string; roles: string[]; open: boolean }>;
  keys: IssuerKeyStatus[];
  chain: ChainStatus;
}

/** Dense per-minute series for the chart, oldest first, from the store's non-empty buckets. */
export function series(buckets: AuditSummary['buckets'], endMs: number, minutes: number) {
  const step = 60_000;
  const first = Math.floor(endMs / step) * step - (minutes - 1) * step;
  const at = new Map(buckets.map((b) => [b.start, b]));
  const out = { start: first / 1000, allow: [] as number[], deny: [] as number[], error: [] as number[] };
  for (let i = 0; i < minutes; i++) {
    const b = at.get(first + i * step);
    out.allow.push(b?.allow ?? 0);
    out.deny.push(b?.deny ?? 0);
    out.error.push(b?.error ?? 0);
  }
  return out;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

function Chart(props: { id: string; label: string; data: ReturnType<typeof series> }) {
  const { data } = props;
  return (
    <figure class="chart-box">
      <figcaption id={`${props.id}-caption`}>
        {props.label}: {sum(data.allow)} issued, {sum(data.deny)} denied, {sum(data.error)} failed
      </figcaption>
      <div
        class="chart"
        id={props.id}
        role="img"
        aria-labelledby={`${props.id}-caption`}
        data-chart="decisions"
        data-start={String(data.start)}
        data-step="60"
        data-allow={JSON.stringify(data.allow)}
        data-deny={JSON.stringify(data.deny)}
        data-error={JSON.stringify(data.error)}
      />
    </figure>
  );
}

export function OverviewPage(props: { ctx: ViewContext; data: OverviewData }) {
  const { data, ctx } = props;
  const end = data.now.getTime();
  const hour = series(data.day.buckets, end, 60);
  const day = series(data.day.buckets, end, 1440);
  const chain = data.chain;
  return (
    <Page title="Overview" ctx={ctx}>
      {!data.auditInStore && (
        <p class="notice" role="status">
          The audit trail is not in the store (audit.sink is not "store"): the charts, top lists and decisions are empty. See docs/console.md.
        </p>
      )}
      <section aria-labelledby="rate">
        <h2 id="rate">Exchanges per minute</h2>
        <div class="charts">
          <Chart id="chart-hour" label="Last hour" data={hour} />
          <Chart id="chart-day" label="Last 24 hours" data={day} />
        </div>
      </section>
      <div class="columns">
        <section aria-labelledby="reasons">
          <h2 id="reasons">Top denial reasons (24 h)</h2>
          {data.day.denyReasons.length === 0 ? (
            <p class="muted">No denials.</p>
          ) : (
            <table>
              <thead>
                <tr>
                  <th scope="col">reason</th>
                  <th scope="col" class="num">
                    denials
                  </th>
                </tr>
              </thead>
              <tbody>
                {data.day.denyReasons.map((r) => (
                  <tr>
                    <td>
                      <a href={`/console/decisions?outcome=deny&since=24h&q=${encodeURIComponent(r.reason)}`}>{r.reason}</a>
                    </td>
                    <td class="num">{r.count}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
        <section aria-labelledby="identities">
          <h2 id="identities">Top identities (24 h)</h2>
          {data.day.identities.length === 0 ? (
            <p class="muted">No exchanges.</p>
          ) : (
            <table>
              <thead>
                <tr>
                  <th scope="col">issuer</th>
                  <th scope="col">subject</th>
                  <th scope="col" class="num">
                    issued
                  </th>
                  <th scope="col" class="num">
                    denied
                  </th>
                  <th scope="col" class="num">
                    failed
                  </th>
                </tr>
              </thead>
              <tbody>
                {data.day.identities.map((i) => (
                  <tr>
                    <td>{i.issuer ?? '—'}</td>
                    <td class="wrap">
                      <a href={`/console/decisions?since=24h&claim=${encodeURIComponent(`sub=${i.subject}`)}${i.issuer ? `&issuer=${encodeURIComponent(i.issuer)}` : ''}`}>{i.subject}</a>
                    </td>
                    <td class="num">{i.allow}</td>
                    <td class="num">{i.deny}</td>
                    <td class="num">{i.error}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      </div>
      <div class="columns">
        <section aria-labelledby="sts">
          <h2 id="sts">STS circuit per account</h2>
          <table>
            <thead>
              <tr>
                <th scope="col">account</th>
                <th scope="col">roles</th>
                <th scope="col">circuit</th>
              </tr>
            </thead>
            <tbody>
              {data.circuits.map((c) => (
                <tr>
                  <td>{c.account}</td>
                  <td>{c.roles.join(', ')}</td>
                  <td>{c.open ? <span class="state bad">open — STS not called</span> : <span class="state good">closed</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
        <section aria-labelledby="keys">
          <h2 id="keys">Issuer keys</h2>
          <table>
            <thead>
              <tr>
                <th scope="col">issuer</th>
                <th scope="col">keys</th>
                <th scope="col">last fetched</th>
                <th scope="col">last failure</th>
              </tr>
            </thead>
            <tbody>
              {data.keys.map((k) => (
                <tr>
                  <td>{k.issuer}</td>
                  <td>{k.loaded ? <span class="state good">loaded</span> : <span class="state bad">not loaded</span>}</td>
                  <td>
                    <Time iso={k.lastSuccessAt} />
                  </td>
                  <td>
                    {k.lastFailureAt ? (
                      <>
                        <Time iso={k.lastFailureAt} /> <span class="muted">{k.lastError}</span>
                      </>
                    ) : (
                      <span class="muted">—</span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      </div>
      <section aria-labelledby="chain">
        <h2 id="chain">Audit chain</h2>
        {!data.auditInStore ? (
          <p class="muted">Not in the store: nothing to verify here.</p>
        ) : chain.result ? (
          <p>
            {chain.result.ok ? <span class="state good">verified</span> : <span class="state bad">{`${chain.result.problems.length} problem(s)`}</span>} up to record{' '}
            <strong>{chain.result.head.seq}</strong>, at <Time iso={chain.at} /> ({chain.result.checkpoints.valid} of {chain.result.checkpoints.read} checkpoint(s) valid)
            {chain.running && ' — verifying again…'}
          </p>
        ) : chain.error ? (
          <p class="state bad">Verification failed: {chain.error}</p>
        ) : (
          <p class="muted">{chain.running ? 'Verifying…' : 'Not verified yet.'}</p>
        )}
        {chain.result && chain.result.problems.length > 0 && (
          <ul>
            {chain.result.problems.slice(0, 20).map((p) => (
              <li>{p.message}</li>
            ))}
          </ul>
        )}
        {chain.result && chain.result.warnings.length > 0 && (
          <ul class="muted">
            {chain.result.warnings.map((w) => (
              <li>{w}</li>
            ))}
          </ul>
        )}
        {data.auditInStore && (
          <form method="post" action="/console/audit/verify">
            <Csrf ctx={ctx} />
            <button type="submit">Verify now</button>
          </form>
        )}
      </section>
    </Page>
  );
}
