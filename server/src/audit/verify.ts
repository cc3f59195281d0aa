// Verifies the audit chain stored in a database, in batches: hashes and links, keys, and the
// checkpoints written elsewhere. Shared by `credbroker audit verify` and the admin API.
import { chainVerifier, type AuditCheckpoint, type ChainVerification, type Keyring } from '../core/audit-chain.js';
import type { AuditStore } from '../ops/types.js';

export interface VerifyOptions {
  keyring?: Keyring;
  checkpoints?: readonly AuditCheckpoint[];
  unreadableCheckpoints?: number;
  /** A head hash noted elsewhere (legacy `--head`): the newest record must have it. */
  expectHead?: string;
}

export async function verifyAuditChain(store: Pick<AuditStore, 'scanAudit'>, opts: VerifyOptions = {}): Promise<ChainVerification> {
  const v = chainVerifier({
    ...(opts.keyring ? { keyring: opts.keyring } : {}),
    ...(opts.checkpoints ? { checkpoints: opts.checkpoints } : {}),
    ...(opts.unreadableCheckpoints ? { unreadableCheckpoints: opts.unreadableCheckpoints } : {}),
  });
  let after = 0;
  for (;;) {
    const rows = await store.scanAudit(after, 1000);
    if (rows.length === 0) break;
    v.add(rows);
    after = rows.at(-1)!.seq;
  }
  return v.result(opts.expectHead);
}
