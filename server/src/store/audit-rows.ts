// How an audit record becomes a chain row in the SQL drivers: the record is stored as the JSON it
// was hashed from (so verification recomputes the same hash from what it reads back), plus a few
// columns copied out of it for indexed queries.
import type { AuditRecord } from '../audit/types.js';
import type { AuditQuery, AuditSearch } from '../ops/types.js';

export interface AuditColumns {
  json: string;
  record: Record<string, unknown>;
  timeMs: number | null;
  event: string | null;
  subject: string | null;
  role: string | null;
  decision: string | null;
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export function auditColumns(input: AuditRecord): AuditColumns {
  // JSON round trip first: undefined fields vanish, Dates become strings — as they will read back.
  const json = JSON.stringify(input);
  const record = JSON.parse(json) as Record<string, unknown>;
  const time = typeof record.time === 'string' ? Date.parse(record.time) : NaN;
  return {
    json,
    record,
    timeMs: Number.isNaN(time) ? null : time,
    event: str(record.event),
    subject: str(record.subject),
    role: str(record.role),
    decision: str(record.decision),
  };
}

/** WHERE clause for an audit query; `param(v)` returns the placeholder for a bound value. */
export function auditWhere(q: AuditQuery, param: (v: unknown) => string, timeColumn: string, time: (d: Date) => unknown): string {
  const where: string[] = [];
  if (q.since) where.push(`${timeColumn} >= ${param(time(q.since))}`);
  if (q.until) where.push(`${timeColumn} < ${param(time(q.until))}`);
  if (q.subject !== undefined) where.push(`subject = ${param(q.subject)}`);
  if (q.role !== undefined) where.push(`role = ${param(q.role)}`);
  if (q.decision !== undefined) where.push(`decision = ${param(q.decision)}`);
  if (q.event !== undefined) where.push(`event = ${param(q.event)}`);
  return where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
}

/** How one SQL driver spells the parts of an audit search. */
export interface AuditDialect {
  /** Placeholder for a bound value. */
  param(v: unknown): string;
  timeColumn: string;
  time(d: Date): unknown;
  /** A top-level string field of the record, as text. */
  field(name: 'issuer' | 'reason' | 'code'): string;
  /** record.claims[name] as text (strings as is, other values as JSON). */
  claim(name: string): string;
  /** `expr` matches `pattern`, where `*` is any run of characters and nothing else is special. */
  glob(expr: string, pattern: string): string;
  /** The record's JSON contains `text`, case-insensitive. */
  contains(text: string): string;
}

/** WHERE clause of the console's search (AuditSearch), without the keyset bounds' ORDER BY. */
export function auditSearchWhere(q: AuditSearch, d: AuditDialect): string {
  const where: string[] = [];
  const base = auditWhere(q, (v) => d.param(v), d.timeColumn, d.time);
  if (base) where.push(base.slice('WHERE '.length));
  if (q.issuer !== undefined) where.push(`${d.field('issuer')} = ${d.param(q.issuer)}`);
  if (q.eventPrefix !== undefined) where.push(`substr(event, 1, ${d.param(q.eventPrefix.length)}) = ${d.param(q.eventPrefix)}`);
  for (const c of q.claims ?? []) {
    const expr = d.claim(c.name);
    where.push(c.value.includes('*') ? d.glob(expr, c.value) : `${expr} = ${d.param(c.value)}`);
  }
  if (q.text !== undefined) where.push(d.contains(q.text));
  if (q.beforeSeq !== undefined) where.push(`seq < ${d.param(q.beforeSeq)}`);
  if (q.afterSeq !== undefined) where.push(`seq > ${d.param(q.afterSeq)}`);
  return where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
}
