// "Revoke active sessions" of a target role, as the IAM console does: attach the inline policy
// AWSRevokeOlderSessions, which denies everything to sessions whose token was issued before now.
// Sessions issued afterwards (the next CI job) are unaffected.
import { IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { awsRequestTimeouts, timedOut } from './timeouts.js';
import { BrokerError } from '../errors.js';
import { defaultNetwork, type Network } from '../net/network.js';

export const REVOKE_POLICY_NAME = 'AWSRevokeOlderSessions';

export function revokeOlderSessionsPolicy(before: Date): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Deny',
        Action: ['*'],
        Resource: ['*'],
        Condition: { DateLessThan: { 'aws:TokenIssueTime': before.toISOString().replace(/\.\d{3}Z$/, 'Z') } },
      },
    ],
  });
}

export function roleNameFromArn(arn: string): string {
  const name = arn.split('/').pop();
  if (!name || !arn.includes(':role/')) throw new Error(`not a role ARN: ${arn}`);
  return name;
}

export async function revokeOlderSessions(
  roleArn: string,
  opts: { region: string; endpoint?: string | undefined; now?: Date; client?: IAMClient; httpTimeoutMs?: number; maxAttempts?: number; network?: Network },
): Promise<{ roleName: string; before: string }> {
  const before = opts.now ?? new Date();
  const client =
    opts.client ??
    new IAMClient({
      region: opts.region,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      maxAttempts: opts.maxAttempts ?? 3,
      // aws.http_timeout_ms (default 5 s): a hung IAM endpoint fails the call instead of holding it.
      requestHandler: awsRequestTimeouts(opts.httpTimeoutMs ?? 5000, opts.network ?? defaultNetwork()),
    });
  try {
    const roleName = roleNameFromArn(roleArn);
    try {
      await client.send(new PutRolePolicyCommand({ RoleName: roleName, PolicyName: REVOKE_POLICY_NAME, PolicyDocument: revokeOlderSessionsPolicy(before) }));
    } catch (err) {
      throw iamError(err, roleArn);
    }
    return { roleName, before: before.toISOString() };
  } finally {
    if (!opts.client) client.destroy();
  }
}

/** No answer, a 5xx or a network failure is transient (503); anything IAM refused is 502. */
function iamError(err: unknown, roleArn: string): BrokerError {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number }; message?: string };
  const status = e?.$metadata?.httpStatusCode;
  const detail = { iam_error: e?.name, http_status: status, role_arn: roleArn, error: e?.message?.slice(0, 300) };
  if (timedOut(err) || status === undefined || status >= 500 || status === 429 || e?.name === 'Throttling') {
    return new BrokerError('ERR_IAM_UNAVAILABLE', { detail, retryAfter: 2, cause: err });
  }
  return new BrokerError('ERR_IAM_REJECTED', { detail, cause: err });
}
