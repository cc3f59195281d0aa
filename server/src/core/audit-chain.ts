// Tamper evidence for stored audit records. Each record's hash covers its sequence number, the
// previous record's hash and the record itself (canonical JSON), so changing, inserting or
// deleting a record breaks the chain from that point on.
//
// Keyed chain: the hash of a record is an HMAC-SHA256 under a key the database never holds (the
// key id is stored with the row, so keys can be rotated). Someone who can write to the database
// can change rows but cannot recompute a valid chain. Older rows written before keying are
// "legacy" (plain SHA-256); they stay verifiable, and the first keyed row seals them (its HMAC
// covers the last legacy hash). A legacy row after a keyed row is a downgrade and is reported.
//
// Checkpoints: the head (seq, hash) signed with the key and written to a second sink the
// database writer cannot touch. They catch what a valid but shorter chain hides: the deletion of
// the newest records, or a chain rewritten from scratch.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const GENESIS_HASH = '0'.repeat(64);

export interface ChainedRecord {
  seq: number;
  prevHash: string;
  hash: string;
  /** Id of the HMAC key that produced `hash`; null for a legacy (unkeyed, SHA-256) row. */
  keyId: string | null;
  record: Record<string, unknown>;
}

export interface ChainKey {
  id: string;
  secret: Buffer;
}

/** The key new rows are written with (if any) and every key rows can be verified with. */
export interface Keyring {
  current: ChainKey | undefined;
  byId: ReadonlyMap<string, ChainKey>;
}

export const EMPTY_KEYRING: Keyring = { current: undefined, byId: new Map() };

/** JSON with object keys sorted at every level, so equal records always hash the same. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** A row's hash: HMAC-SHA256 under `key` (domain-separated, key id bound), or legacy SHA-256 without one. */
export function chainHash(seq: number, prevHash: string, record: Record<string, unknown>, key?: ChainKey): string {
  if (!key) return createHash('sha256').update(`${seq}\n${prevHash}\n${canonicalJson(record)}`).digest('hex');
  return createHmac('sha256', key.secret).update(`credbroker.audit.record.v2\n${seq}\n${prevHash}\n${key.id}\n${canonicalJson(record)}`).digest('hex');
}

/** A stable, non-secret id for a key: lets rows name their key without revealing anything about it. */
export function deriveKeyId(secret: Buffer): string {
  return `k-${createHmac('sha256', secret).update('credbroker.audit.key-id').digest('hex').slice(0, 16)}`;
}

export interface AuditCheckpoint {
  type: 'credbroker.audit.checkpoint';
  version: 1;
  /** When the checkpoint was taken (ISO 8601). */
  time: string;
  /** The newest record of the chain at that time, and its hash (0 and the genesis hash when empty). */
  seq: number;
  hash: string;
  key_id: string;
  /** Which process wrote it (host:pid), to tell replicas apart. */
  writer: string;
  /** HMAC-SHA256 of the fields above. */
  mac: string;
}

const checkpointMessage = (c: Omit<AuditCheckpoint, 'mac'>) =>
  `credbroker.audit.checkpoint.v1\n${c.time}\n${c.seq}\n${c.hash}\n${c.key_id}\n${c.writer}`;

export function signCheckpoint(head: { seq: number; hash: string }, key: ChainKey, time: Date, writer: string): AuditCheckpoint {
  const body = { type: 'credbroker.audit.checkpoint' as const, version: 1 as const, time: time.toISOString(), seq: head.seq, hash: head.hash, key_id: key.id, writer };
  return { ...body, mac: createHmac('sha256', key.secret).update(checkpointMessage(body)).digest('hex') };
}

/** 'valid', or why the checkpoint cannot be trusted. */
export function checkCheckpoint(c: AuditCheckpoint, keyring: Keyring): 'valid' | 'unknown-key' | 'signature-invalid' {
  const key = keyring.byId.get(c.key_id);
  if (!key) return 'unknown-key';
  const expected = createHmac('sha256', key.secret).update(checkpointMessage(c)).digest();
  const given = /^[0-9a-f]{64}$/.test(String(c.mac)) ? Buffer.from(c.mac, 'hex') : Buffer.alloc(0);
  return given.length === expected.length && timingSafeEqual(given, expected) ? 'valid' : 'signature-invalid';
}

/** Parses one checkpoint from a line: a bare checkpoint, or a log line carrying one as `audit_checkpoint`. */
export function parseCheckpointLine(line: string): AuditCheckpoint | 'unreadable' | undefined {
  if (!line.includes('credbroker.audit.checkpoint')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return 'unreadable';
  }
  const c = (value as { audit_checkpoint?: unknown })?.audit_checkpoint ?? value;
  const o = c as Partial<AuditCheckpoint> | null;
  if (
    o === null ||
    typeof o !== 'object' ||
    o.type !== 'credbroker.audit.checkpoint' ||
    o.version !== 1 ||
    typeof o.time !== 'string' ||
    !Number.isSafeInteger(o.seq) ||
    typeof o.hash !== 'string' ||
    typeof o.key_id !== 'string' ||
    typeof o.writer !== 'string' ||
    typeof o.mac !== 'string'
  ) {
    return 'unreadable';
  }
  return o as AuditCheckpoint;
}

export type ChainProblem =
  | { kind: 'modified'; seq: number; through?: number; message: string }
  | { kind: 'gap'; afterSeq: number; nextSeq: number; message: string }
  | { kind: 'broken-link'; seq: number; message: string }
  | { kind: 'unknown-key'; seq: number; through?: number; keyId: string; message: string }
  | { kind: 'unkeyed-after-keyed'; seq: number; through?: number; message: string }
  | { kind: 'head-mismatch'; expected: string; actual: string; message: string }
  | { kind: 'checkpoint-signature-invalid'; checkpoint: { seq: number; time: string; writer: string }; message: string }
  | { kind: 'checkpoint-unknown-key'; checkpoint: { seq: number; time: string; writer: string }; keyId: string; message: string }
  | { kind: 'checkpoint-mismatch'; seq: number; expected: string; actual: string; checkpointTime: string; message: string }
  | { kind: 'head-behind-checkpoint'; headSeq: number; checkpointSeq: number; checkpointTime: string; message: string };

export interface ChainVerification {
  ok: boolean;
  checked: number;
  /** The newest record read (the head of the chain as stored). */
  head: { seq: number; hash: string };
  /** Unkeyed rows accepted as legacy: before the first keyed row. */
  legacy: { from: number; to: number } | null;
  /** Keyed rows, and the key ids they name. */
  keyed: { from: number; to: number; keyIds: string[] } | null;
  checkpoints: { read: number; valid: number; latest: { seq: number; time: string; writer: string } | null };
  problems: ChainProblem[];
  /** What this verification could not establish (not tampering, but limits of what was checked). */
  warnings: string[];
}

export interface ChainVerifier {
  /** Feed records in ascending seq order (any batch size). */
  add(rows: ChainedRecord[]): void;
  result(expectHead?: string): ChainVerification;
}

const range = (seq: number, through: number | undefined) => (through === undefined || through === seq ? `record ${seq}` : `records ${seq}–${through}`);

/**
 * Walks the chain. `checkpoints` are verified (signature, then the stored hash at their seq);
 * `unreadableCheckpoints` counts lines that looked like checkpoints but did not parse.
 */
export function chainVerifier(opts: { keyring?: Keyring; checkpoints?: readonly AuditCheckpoint[]; unreadableCheckpoints?: number } = {}): ChainVerifier {
  const keyring = opts.keyring ?? EMPTY_KEYRING;
  const checkpoints = opts.checkpoints ?? [];
  let prev: { seq: number; hash: string } = { seq: 0, hash: GENESIS_HASH };
  let checked = 0;
  let legacy: { from: number; to: number } | null = null;
  let keyed: { from: number; to: number; keyIds: Set<string> } | null = null;
  const problems: ChainProblem[] = [];
  const validCheckpoints: AuditCheckpoint[] = [];
  const wanted = new Map<number, string>(); // seq → hash stored there, for checkpoints

  for (const c of checkpoints) {
    const verdict = checkCheckpoint(c, keyring);
    const where = { seq: c.seq, time: c.time, writer: c.writer };
    if (verdict === 'unknown-key') {
      problems.push({ kind: 'checkpoint-unknown-key', checkpoint: where, keyId: c.key_id, message: `checkpoint of record ${c.seq} at ${c.time} names key ${c.key_id}, which is not configured: it cannot be checked` });
    } else if (verdict === 'signature-invalid') {
      problems.push({ kind: 'checkpoint-signature-invalid', checkpoint: where, message: `checkpoint of record ${c.seq} at ${c.time} has an invalid signature: it was not written by credbroker with this key` });
    } else {
      validCheckpoints.push(c);
      if (c.seq > 0) wanted.set(c.seq, '');
    }
  }

  /** Extends an open range of the same kind when this seq continues it (one range, not N entries). */
  const open = new Map<string, { seq: number; through?: number }>();
  const rangeProblem = (kind: 'modified' | 'unknown-key' | 'unkeyed-after-keyed', seq: number, keyId?: string) => {
    const slot = `${kind}:${keyId ?? ''}`;
    const last = open.get(slot);
    if (last && (last.through ?? last.seq) === seq - 1) {
      last.through = seq;
      return;
    }
    const p = (kind === 'unknown-key' ? { kind, seq, keyId: keyId!, message: '' } : { kind, seq, message: '' }) as ChainProblem & { seq: number; through?: number };
    problems.push(p);
    open.set(slot, p);
  };

  return {
    add(rows) {
      for (const row of rows) {
        checked++;
        if (row.seq !== prev.seq + 1) {
          problems.push({ kind: 'gap', afterSeq: prev.seq, nextSeq: row.seq, message: `records ${prev.seq + 1}–${row.seq - 1} are missing (deleted)` });
        } else if (row.prevHash !== prev.hash) {
          problems.push({ kind: 'broken-link', seq: row.seq, message: `record ${row.seq} does not link to record ${prev.seq} (its prev_hash differs): a record was replaced or inserted` });
        }
        const keyId = row.keyId ?? null;
        if (keyId === null) {
          if (keyed) rangeProblem('unkeyed-after-keyed', row.seq);
          else legacy = legacy ? { ...legacy, to: row.seq } : { from: row.seq, to: row.seq };
          if (chainHash(row.seq, row.prevHash, row.record) !== row.hash) rangeProblem('modified', row.seq);
        } else {
          keyed = keyed ? { ...keyed, to: row.seq } : { from: row.seq, to: row.seq, keyIds: new Set() };
          keyed.keyIds.add(keyId);
          const key = keyring.byId.get(keyId);
          if (!key) rangeProblem('unknown-key', row.seq, keyId);
          else if (chainHash(row.seq, row.prevHash, row.record, key) !== row.hash) rangeProblem('modified', row.seq);
        }
        if (wanted.has(row.seq)) wanted.set(row.seq, row.hash);
        prev = { seq: row.seq, hash: row.hash };
      }
    },
    result(expectHead) {
      const all = [...problems];
      for (const p of all) {
        if (p.kind === 'modified') p.message = `${range(p.seq, p.through)}: content does not match the stored hash (modified, or rewritten with another key)`;
        if (p.kind === 'unknown-key') p.message = `${range(p.seq, p.through)}: signed with key ${p.keyId}, which is not configured (unverifiable, or forged with another key)`;
        if (p.kind === 'unkeyed-after-keyed') p.message = `${range(p.seq, p.through)}: unkeyed record(s) after keyed records: rewritten without the key`;
      }
      if (expectHead !== undefined && expectHead !== prev.hash) {
        all.push({ kind: 'head-mismatch', expected: expectHead, actual: prev.hash, message: `the newest record's hash is ${prev.hash}, not the expected ${expectHead}` });
      }
      let latest: AuditCheckpoint | undefined;
      for (const c of validCheckpoints) {
        if (!latest || c.seq > latest.seq || (c.seq === latest.seq && c.time > latest.time)) latest = c;
        if (c.seq > prev.seq) continue; // reported once below, for the newest checkpoint
        const stored = c.seq === 0 ? GENESIS_HASH : wanted.get(c.seq);
        if (stored === '' || stored === undefined) continue; // that seq is missing: reported as a gap
        if (stored !== c.hash) {
          all.push({ kind: 'checkpoint-mismatch', seq: c.seq, expected: c.hash, actual: stored, checkpointTime: c.time, message: `record ${c.seq} has hash ${stored}, but the checkpoint at ${c.time} saw ${c.hash}: the chain up to record ${c.seq} was rewritten` });
        }
      }
      if (latest && latest.seq > prev.seq) {
        all.push({
          kind: 'head-behind-checkpoint',
          headSeq: prev.seq,
          checkpointSeq: latest.seq,
          checkpointTime: latest.time,
          message: `the chain ends at record ${prev.seq}, but the checkpoint at ${latest.time} saw record ${latest.seq}: records ${prev.seq + 1}–${latest.seq} were deleted`,
        });
      }
      const warnings: string[] = [];
      if (checkpoints.length === 0) warnings.push('no checkpoint was checked: the deletion of the newest records, or a rewrite of the whole chain, cannot be detected without one');
      if (opts.unreadableCheckpoints) warnings.push(`${opts.unreadableCheckpoints} checkpoint line(s) could not be read`);
      if (legacy && keyed) {
        // The first keyed record links to the last legacy hash, but it proves only that the legacy
        // records did not change after it was written: a writer could have rewritten them (as
        // legacy) just before. A checkpoint taken since pins them.
        const l = legacy;
        const pin = validCheckpoints.filter((c) => c.seq >= l.to && c.seq <= prev.seq && wanted.get(c.seq) === c.hash).sort((a, b) => a.time.localeCompare(b.time))[0];
        warnings.push(
          pin
            ? `records ${l.from}–${l.to} are legacy (unkeyed): sealed by the first keyed record, ${keyed.from}, and pinned by the checkpoint of record ${pin.seq} at ${pin.time}`
            : `records ${l.from}–${l.to} are legacy (unkeyed) and no checkpoint covers them: the first keyed record, ${keyed.from}, only proves they did not change after it was written`,
        );
      }
      if (legacy && !keyed) warnings.push(`records ${legacy.from}–${legacy.to} are legacy (unkeyed) and no keyed record follows: a database writer could rewrite them undetected`);
      if (!keyring.current && keyring.byId.size === 0) warnings.push('no audit HMAC key is configured: keyed records cannot be verified');
      return {
        ok: all.length === 0,
        checked,
        head: prev,
        legacy,
        keyed: keyed ? { from: keyed.from, to: keyed.to, keyIds: [...keyed.keyIds].sort() } : null,
        checkpoints: { read: checkpoints.length, valid: validCheckpoints.length, latest: latest ? { seq: latest.seq, time: latest.time, writer: latest.writer } : null },
        problems: all,
        warnings,
      };
    },
  };
}
