// Verification that a new key works: STS GetCallerIdentity signed with that key must return the
// user's ARN several times in a row. New IAM keys take seconds to propagate, so failures reset the
// count and back off (exponentially, capped) until the timeout.
import type { IamKeys } from '../aws/iam.js';
import type { RotationConfig } from './config-schema.js';
import { RotationError, errorCodeOf } from './errors.js';
import type { NewAccessKey } from './secret.js';

export interface VerifyResult {
  attempts: number;
  successes: number;
}

export async function verifySignedWithKey(
  iam: IamKeys,
  key: NewAccessKey,
  expectedArn: string,
  cfg: RotationConfig['verify'],
  sleep: (ms: number) => Promise<void>,
  signal?: AbortSignal,
): Promise<VerifyResult> {
  const started = performance.now();
  let successes = 0;
  let attempts = 0;
  let delay = cfg.initial_backoff_ms;
  let last = 'none';
  for (;;) {
    if (signal?.aborted) throw new RotationError('ERR_ROTATION_ABORTED', 'verification interrupted');
    attempts++;
    try {
      const who = await iam.callerIdentityWith(key);
      if (who.arn === expectedArn) {
        successes++;
        if (successes >= cfg.successes) return { attempts, successes };
      } else {
        successes = 0;
        last = 'ARN mismatch';
      }
    } catch (err) {
      successes = 0;
      last = errorCodeOf(err);
    }
    if (performance.now() - started > cfg.timeout_seconds * 1000) {
      throw new RotationError('ERR_ROTATION_VERIFY_FAILED', `key ${key.accessKeyId} did not verify in ${cfg.timeout_seconds}s (${attempts} attempts, last: ${last})`, {
        retryable: true,
      });
    }
    if (successes > 0) await sleep(cfg.initial_backoff_ms);
    else {
      await sleep(delay);
      delay = Math.min(Math.max(delay * 2, 1), cfg.max_backoff_ms);
    }
  }
}
