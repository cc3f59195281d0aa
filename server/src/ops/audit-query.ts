import type { AuditQuery } from './types.js';

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
