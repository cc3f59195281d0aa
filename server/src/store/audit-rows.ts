// How an audit record becomes a chain row in the SQL drivers: the record is stored as the JSON it
// was hashed from (so verification recomputes the same hash from what it reads back), plus a few
// columns copied out of it for indexed queries.
import type { AuditRecord } from '../audit/types.js';
import type { AuditQuery } from '../ops/types.js';

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
