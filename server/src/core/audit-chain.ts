// Tamper evidence for stored audit records: each record's hash covers its sequence number, the
// previous record's hash and the record itself (canonical JSON). Changing, inserting or deleting
// a record breaks the chain from that point on. Deleting the newest records leaves a shorter but
// valid chain: compare against a head hash kept elsewhere (the broker logs it) to detect that.
import { createHash } from 'node:crypto';

export const GENESIS_HASH = '0'.repeat(64);

export interface ChainedRecord {
  seq: number;
  prevHash: string;
  hash: string;
  record: Record<string, unknown>;
}

/** JSON with object keys sorted at every level, so equal records always hash the same. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function chainHash(seq: number, prevHash: string, record: Record<string, unknown>): string {
  return createHash('sha256').update(`${seq}\n${prevHash}\n${canonicalJson(record)}`).digest('hex');
}

export type ChainProblem =
  | { kind: 'modified'; seq: number }
  | { kind: 'gap'; afterSeq: number; nextSeq: number }
  | { kind: 'broken-link'; seq: number }
  | { kind: 'head-mismatch'; expected: string; actual: string };

export interface ChainVerifier {
  /** Feed records in ascending seq order (any batch size). */
  add(rows: ChainedRecord[]): void;
  /** Problems found, and the last good seq/hash (the head). */
  result(expectHead?: string): { ok: boolean; checked: number; head: { seq: number; hash: string }; problems: ChainProblem[] };
}

export function chainVerifier(): ChainVerifier {
  let prev: { seq: number; hash: string } = { seq: 0, hash: GENESIS_HASH };
  let checked = 0;
  const problems: ChainProblem[] = [];
  return {
    add(rows) {
      for (const row of rows) {
        checked++;
        if (row.seq !== prev.seq + 1) problems.push({ kind: 'gap', afterSeq: prev.seq, nextSeq: row.seq });
        else if (row.prevHash !== prev.hash) problems.push({ kind: 'broken-link', seq: row.seq });
        if (chainHash(row.seq, row.prevHash, row.record) !== row.hash) problems.push({ kind: 'modified', seq: row.seq });
        prev = { seq: row.seq, hash: row.hash };
      }
    },
    result(expectHead) {
      const all = [...problems];
      if (expectHead !== undefined && expectHead !== prev.hash) all.push({ kind: 'head-mismatch', expected: expectHead, actual: prev.hash });
      return { ok: all.length === 0, checked, head: prev, problems: all };
    },
  };
}
