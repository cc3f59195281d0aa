// The audit chain's verifier: keyed records (HMAC under a key id), legacy unkeyed records before
// them, key rotation, and signed checkpoints. Each case builds a chain as credbroker writes it,
// tampers with it the way someone with write access to the database could, and names the
// problem the verifier must report.
import { describe, expect, it } from 'vitest';
import {
  chainHash,
  chainVerifier,
  deriveKeyId,
  GENESIS_HASH,
  parseCheckpointLine,
  signCheckpoint,
  type AuditCheckpoint,
  type ChainKey,
  type ChainedRecord,
  type Keyring,
} from '../../server/src/core/audit-chain.js';

const key = (text: string, id?: string): ChainKey => {
  const secret = Buffer.from(text);
  return { id: id ?? deriveKeyId(secret), secret };
};
const K1 = key('the first audit key, 32+ characters long');
const K2 = key('the second audit key, after rotation, long enough');
const WRONG = { ...key('an attacker key that is long enough to be used'), id: K1.id }; // claims K1's id
const keyring = (...keys: ChainKey[]): Keyring => ({ current: keys[0], byId: new Map(keys.map((k) => [k.id, k])) });
const T0 = new Date('2026-01-01T00:00:00Z');

/** Appends records the way a store does: each links to the previous row's hash. */
function append(rows: ChainedRecord[], count: number, k: ChainKey | undefined, from = rows.length): ChainedRecord[] {
  const out = rows.slice(0, from);
  for (let i = 0; i < count; i++) {
    const prev = out.at(-1);
    const seq = (prev?.seq ?? 0) + 1;
    const prevHash = prev?.hash ?? GENESIS_HASH;
    const record = { time: new Date(T0.getTime() + seq * 1000).toISOString(), event: 'exchange', decision: seq % 3 ? 'allow' : 'deny', subject: `repo:acme/app:${seq}` };
    out.push({ seq, prevHash, hash: chainHash(seq, prevHash, record, k), keyId: k?.id ?? null, record });
  }
  return out;
}

/** Recomputes every row from `from` (a 0-based index) with another key, or none: a database writer's rewrite. */
function rewrite(rows: ChainedRecord[], from: number, k: ChainKey | undefined, edit: (r: Record<string, unknown>) => void = () => undefined): ChainedRecord[] {
  const out = rows.slice(0, from).map((r) => structuredClone(r));
  for (const row of rows.slice(from)) {
    const record = structuredClone(row.record);
    edit(record);
    const prevHash = out.at(-1)?.hash ?? GENESIS_HASH;
    out.push({ seq: row.seq, prevHash, hash: chainHash(row.seq, prevHash, record, k), keyId: k?.id ?? null, record });
  }
  return out;
}

const checkpointOf = (rows: ChainedRecord[], k: ChainKey, at = rows.length): AuditCheckpoint => {
  const head = rows[at - 1];
  return signCheckpoint({ seq: head?.seq ?? 0, hash: head?.hash ?? GENESIS_HASH }, k, new Date(T0.getTime() + 3_600_000), 'host-a:42');
};

function verify(rows: ChainedRecord[], opts: { keys?: Keyring; checkpoints?: AuditCheckpoint[]; head?: string } = {}) {
  const v = chainVerifier({ keyring: opts.keys ?? keyring(K1), ...(opts.checkpoints ? { checkpoints: opts.checkpoints } : {}) });
  // Batches of 7, as a store scan would hand them over.
  for (let i = 0; i < rows.length; i += 7) v.add(rows.slice(i, i + 7));
  return v.result(opts.head);
}

const keyed = append([], 30, K1);
const cp = checkpointOf(keyed, K1);

describe('a chain that was not tampered with', () => {
  it('verifies when every record is keyed, and names the key and the range', () => {
    const r = verify(keyed, { checkpoints: [cp] });
    expect(r).toMatchObject({ ok: true, checked: 30, legacy: null, keyed: { from: 1, to: 30, keyIds: [K1.id] }, checkpoints: { read: 1, valid: 1, latest: { seq: 30 } }, problems: [] });
    expect(r.warnings).toEqual([]);
  });

  it('accepts legacy unkeyed records before the first keyed record, and reports them as legacy', () => {
    const upgraded = append(append([], 10, undefined), 5, K1);
    const r = verify(upgraded, { checkpoints: [checkpointOf(upgraded, K1)] });
    expect(r).toMatchObject({ ok: true, legacy: { from: 1, to: 10 }, keyed: { from: 11, to: 15 } });
    expect(r.warnings).toContainEqual(expect.stringMatching(/^records 1–10 are legacy \(unkeyed\): sealed by the first keyed record, 11, and pinned by the checkpoint of record 15 at /));
    const unpinned = verify(upgraded);
    expect(unpinned.warnings).toContain('records 1–10 are legacy (unkeyed) and no checkpoint covers them: the first keyed record, 11, only proves they did not change after it was written');
  });

  it('verifies a chain whose key was rotated, with the retired key kept for verification', () => {
    const rotated = append(append([], 10, K1), 10, K2);
    expect(verify(rotated, { keys: keyring(K2, K1) })).toMatchObject({ ok: true, keyed: { from: 1, to: 20, keyIds: [K1.id, K2.id].sort() } });
  });

  it('warns that neither deletions at the end nor a full rewrite can be seen without a checkpoint', () => {
    expect(verify(keyed).warnings).toContainEqual(expect.stringMatching(/no checkpoint was checked/));
  });
});

type TamperCase = [name: string, rows: () => ChainedRecord[], opts: { keys?: Keyring; checkpoints?: AuditCheckpoint[]; head?: string }, expected: Record<string, unknown>];

describe('tampering by someone who can write to the database', () => {
  const cases: TamperCase[] = [
    [
      'a record changed in place fails its HMAC',
      () => keyed.map((r) => (r.seq === 12 ? { ...r, record: { ...r.record, decision: 'allow' } } : r)),
      {},
      { kind: 'modified', seq: 12 },
    ],
    ['a record changed and the whole tail rechained without a key is a downgrade', () => rewrite(keyed, 11, undefined, (r) => (r.decision = 'allow')), {}, { kind: 'unkeyed-after-keyed', seq: 12, through: 30 }],
    ['the tail rechained with a wrong key under the real key id fails every HMAC, as one range', () => rewrite(keyed, 11, WRONG), {}, { kind: 'modified', seq: 12, through: 30 }],
    ['the tail rechained with a key of another id is unverifiable', () => rewrite(keyed, 11, key('yet another key that is long enough!!')), {}, { kind: 'unknown-key', seq: 12, through: 30 }],
    ['the whole chain rewritten without a key is caught by the checkpoint', () => rewrite(keyed, 0, undefined), { checkpoints: [cp] }, { kind: 'checkpoint-mismatch', seq: 30 }],
    ['the whole chain rewritten with a wrong key is caught by its HMACs', () => rewrite(keyed, 0, WRONG), {}, { kind: 'modified', seq: 1, through: 30 }],
    ['a record deleted in the middle leaves a gap', () => keyed.filter((r) => r.seq !== 7), {}, { kind: 'gap', afterSeq: 6, nextSeq: 8 }],
    ['a record inserted in the middle breaks the link', () => [...keyed.slice(0, 5), { ...keyed[5]!, seq: 6 }, ...keyed.slice(6)].map((r, i, a) => (i === 6 ? { ...r, prevHash: a[4]!.hash } : r)), {}, { kind: 'broken-link', seq: 7 }],
    ['the newest records deleted are caught by the checkpoint', () => keyed.slice(0, 25), { checkpoints: [cp] }, { kind: 'head-behind-checkpoint', headSeq: 25, checkpointSeq: 30 }],
    ['the newest records deleted are caught by a head hash noted elsewhere', () => keyed.slice(0, 25), { head: keyed[29]!.hash }, { kind: 'head-mismatch', expected: keyed[29]!.hash }],
    ['a forged checkpoint fails its signature', () => keyed, { checkpoints: [{ ...cp, seq: 40 }] }, { kind: 'checkpoint-signature-invalid', checkpoint: expect.objectContaining({ seq: 40 }) }],
    ['a checkpoint signed with a wrong key under the real key id fails its signature', () => keyed, { checkpoints: [checkpointOf(keyed, WRONG)] }, { kind: 'checkpoint-signature-invalid' }],
    ['a checkpoint of an unknown key cannot be checked', () => keyed, { checkpoints: [checkpointOf(keyed, K2)] }, { kind: 'checkpoint-unknown-key', keyId: K2.id }],
    ['records of a retired key that is no longer configured are unverifiable', () => append(append([], 5, K1), 5, K2), { keys: keyring(K2) }, { kind: 'unknown-key', seq: 1, through: 5, keyId: K1.id }],
  ];
  it.each(cases)('%s', (_name, rows, opts, expected) => {
    const r = verify(rows(), opts);
    expect(r.ok).toBe(false);
    expect(r.problems).toContainEqual(expect.objectContaining(expected));
    for (const p of r.problems) expect(p.message).toMatch(/record|checkpoint|key/);
  });

  it('says exactly which records, in words', () => {
    const r = verify(rewrite(keyed, 11, undefined));
    expect(r.problems.map((p) => p.message)).toEqual(['records 12–30: unkeyed record(s) after keyed records: rewritten without the key']);
    const gap = verify(keyed.filter((x) => x.seq < 5 || x.seq > 9));
    expect(gap.problems[0]!.message).toBe('records 5–9 are missing (deleted)');
    const cut = verify(keyed.slice(0, 25), { checkpoints: [cp] });
    expect(cut.problems[0]!.message).toMatch(/^the chain ends at record 25, but the checkpoint at .* saw record 30: records 26–30 were deleted$/);
  });

  it('catches a chain rewritten as legacy and then sealed by a genuine keyed record, by an earlier checkpoint', () => {
    // A writer rewrites everything without the key; the broker, not knowing, appends a keyed record on top.
    const sealed = append(rewrite(keyed, 0, undefined), 1, K1);
    expect(verify(sealed).ok).toBe(true); // nothing in the table itself betrays it…
    const r = verify(sealed, { checkpoints: [cp] }); // …but the checkpoint of record 30 does
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'checkpoint-mismatch', seq: 30 })]);
  });

  it('keeps earlier checkpoints useful: a rewrite below the newest checkpoint is caught at the older one too', () => {
    const cp10 = checkpointOf(keyed, K1, 10);
    const r = verify(rewrite(keyed, 0, undefined), { checkpoints: [cp10, cp] });
    expect(r.problems.filter((p) => p.kind === 'checkpoint-mismatch').map((p) => (p as { seq: number }).seq)).toEqual([10, 30]);
  });
});

describe('checkpoint lines', () => {
  const cases: Array<[name: string, line: string, expected: 'checkpoint' | 'unreadable' | undefined]> = [
    ['reads a bare checkpoint', JSON.stringify(cp), 'checkpoint'],
    ['reads one carried by a log line', JSON.stringify({ level: 'info', msg: 'audit checkpoint', audit_checkpoint: cp }), 'checkpoint'],
    ['ignores other log lines', JSON.stringify({ level: 'info', msg: 'credbroker listening' }), undefined],
    ['ignores lines that are not JSON and say nothing of checkpoints', 'Jan 1 00:00:00 host kernel: hello', undefined],
    ['flags a truncated checkpoint line', JSON.stringify(cp).slice(0, 60), 'unreadable'],
    ['flags a checkpoint with a field of the wrong type', JSON.stringify({ ...cp, seq: '30' }), 'unreadable'],
  ];
  it.each(cases)('%s', (_name, line, expected) => {
    const parsed = parseCheckpointLine(line);
    expect(typeof parsed === 'object' ? 'checkpoint' : parsed).toBe(expected);
  });
});

describe('keys', () => {
  it('derives a stable key id that reveals nothing of the key', () => {
    expect(deriveKeyId(K1.secret)).toBe(K1.id);
    expect(K1.id).toMatch(/^k-[0-9a-f]{16}$/);
    expect(K1.secret.toString('hex')).not.toContain(K1.id.slice(2));
    expect(deriveKeyId(K2.secret)).not.toBe(K1.id);
  });

  it('binds the key id into the HMAC: the same key under another id gives another hash', () => {
    expect(chainHash(1, GENESIS_HASH, { a: 1 }, K1)).not.toBe(chainHash(1, GENESIS_HASH, { a: 1 }, { ...K1, id: 'other' }));
    expect(chainHash(1, GENESIS_HASH, { a: 1 }, K1)).not.toBe(chainHash(1, GENESIS_HASH, { a: 1 }));
  });
});
