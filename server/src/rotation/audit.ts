// Audit records for rotation steps: `rotation.<step>`, key ids and sink ids only. Outcomes: `ok`,
// `failed`; for IAM changes also `intent` (written before the call) and, when a run finds a change
// its runner did not finish, `ok` or `not_applied` with `observed` (after_crash / after_no_answer).
import type { AuditRecord, AuditSink } from '../audit/types.js';

export interface RotationAuditFields {
  user: string;
  outcome: 'ok' | 'failed' | 'intent' | 'not_applied';
  key_id?: string | null;
  old_key_id?: string | null;
  new_key_id?: string | null;
  sink?: string;
  code?: string;
  message?: string;
  fence?: number;
  [field: string]: unknown;
}

export async function auditStep(sink: AuditSink, step: string, fields: RotationAuditFields, now: Date): Promise<void> {
  const record: AuditRecord = {
    time: now.toISOString(),
    event: `rotation.${step}`,
    ...(fields.outcome === 'failed' ? { decision: 'error' as const } : {}),
    ...fields,
  };
  await sink.write(record);
}
