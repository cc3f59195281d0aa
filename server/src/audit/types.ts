// Audit records: one per decision (credential exchange) or per rotation step. They never hold a
// token, a SecretAccessKey or a SessionToken: tokens appear only as a SHA-256, keys only by id.

export interface AuditRecord {
  /** ISO 8601 time of the decision. */
  time: string;
  /** What happened: `exchange` for credential issuance, `rotation.*` for key rotation steps, `admin.*`. */
  event: string;
  request_id?: string;
  decision?: 'allow' | 'deny' | 'error';
  [field: string]: unknown;
}

export interface AuditSink {
  /** Resolves once the record is durably handed to the sink (before the caller gets an answer). */
  write(record: AuditRecord): Promise<void>;
  /** Checks the sink can be written before the broker serves (fail at start, not per request). */
  open?(): Promise<void>;
  close?(): Promise<void>;
}
