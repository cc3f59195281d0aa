// Audit records for rotation steps: `rotation.<step>`, key ids and sink ids only.
import type { AuditRecord, AuditSink } from '../audit/types.js';

export interface RotationAuditFields {
  user: string;
  outcome: 'ok' | 'failed' | 'planned';
  key_id?: string;
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
