import type { AuditQuery, AuditSearch, AuditSummary, AuditSummaryQuery } from './types.js';

/** The audit query filter, shared by implementations that filter in code. */
export function matchesAuditQuery(record: Record<string, unknown>, q: AuditQuery): boolean {
  const time = typeof record.time === 'string' ? Date.parse(record.time) : NaN;
  if (q.since && !(time >= q.since.getTime())) return false;
  if (q.until && !(time < q.until.getTime())) return false;
  if (q.subject !== undefined && record.subject !== q.subject) return false;
  if (q.role !== undefined && record.role !== q.role) return false;
  if (q.decision !== undefined && record.decision !== q.decision) return false;
  if (q.event !== undefined && record.event !== q.event) return false;
  return true;
}

/** A claim value as text, the way the SQL drivers compare it (strings as is, others as JSON). */
export const claimText = (v: unknown): string | undefined => (v === undefined || v === null ? undefined : typeof v === 'string' ? v : JSON.stringify(v));

/** `*` matches any run of characters (also `/`); everything else is literal; anchored. */
export function searchGlob(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[\\s\\S]*')}$`);
}

/** The console's search filter, for implementations that filter in code (the memory store). */
export function matchesAuditSearch(seq: number, record: Record<string, unknown>, q: AuditSearch): boolean {
  if (q.beforeSeq !== undefined && !(seq < q.beforeSeq)) return false;
  if (q.afterSeq !== undefined && !(seq > q.afterSeq)) return false;
  if (!matchesAuditQuery(record, q)) return false;
  if (q.issuer !== undefined && record.issuer !== q.issuer) return false;
  if (q.eventPrefix !== undefined && !(typeof record.event === 'string' && record.event.startsWith(q.eventPrefix))) return false;
  const claims = (record.claims ?? {}) as Record<string, unknown>;
  for (const c of q.claims ?? []) {
    const v = claimText(Object.hasOwn(claims, c.name) ? claims[c.name] : undefined);
    if (v === undefined || !(c.value.includes('*') ? searchGlob(c.value).test(v) : v === c.value)) return false;
  }
  if (q.text !== undefined && !JSON.stringify(record).toLowerCase().includes(q.text.toLowerCase())) return false;
  return true;
}

/** Per-bucket rows (bucket index, decision, count) into the summary's bucket list. */
export function foldBuckets(rows: Array<{ b: number; decision: string | null; n: number }>, bucketMs: number): AuditSummary['buckets'] {
  const byStart = new Map<number, AuditSummary['buckets'][number]>();
  for (const r of rows) {
    const start = Number(r.b) * bucketMs;
    let b = byStart.get(start);
    if (!b) byStart.set(start, (b = { start, allow: 0, deny: 0, error: 0 }));
    if (r.decision === 'allow' || r.decision === 'deny' || r.decision === 'error') b[r.decision] += Number(r.n);
  }
  return [...byStart.values()].sort((a, b) => a.start - b.start);
}

/** The summary computed in code (the memory store). */
export function summarizeInCode(records: Iterable<Record<string, unknown>>, q: AuditSummaryQuery): AuditSummary {
  const rows: Array<{ b: number; decision: string | null; n: number }> = [];
  const reasons = new Map<string, number>();
  const identities = new Map<string, AuditSummary['identities'][number]>();
  for (const r of records) {
    const time = typeof r.time === 'string' ? Date.parse(r.time) : NaN;
    if (r.event !== 'exchange' || !(time >= q.since.getTime() && time < q.until.getTime())) continue;
    const decision = typeof r.decision === 'string' ? r.decision : null;
    rows.push({ b: Math.floor(time / q.bucketMs), decision, n: 1 });
    if (decision === 'deny') {
      const reason = String(r.reason ?? r.code ?? '?');
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    }
    if (typeof r.subject === 'string') {
      const issuer = typeof r.issuer === 'string' ? r.issuer : null;
      const key = JSON.stringify([issuer, r.subject]);
      let id = identities.get(key);
      if (!id) identities.set(key, (id = { issuer, subject: r.subject, allow: 0, deny: 0, error: 0, total: 0 }));
      if (decision === 'allow' || decision === 'deny' || decision === 'error') id[decision]++;
      id.total++;
    }
  }
  return {
    buckets: foldBuckets(rows, q.bucketMs),
    denyReasons: [...reasons].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason)).slice(0, q.top),
    identities: [...identities.values()].sort((a, b) => b.total - a.total).slice(0, q.top),
  };
}
